//! The Redis connectors' healthchecks: the server answers, each key the pipeline uses
//! is of the right type (or absent), and the source's group could be created. They
//! change nothing in Redis (the group's creation is a dry run).

use std::path::Path;
use std::time::Duration;

use redis::Value;

use super::link::Link;
use super::reply::text;
use super::source::Settings;
use super::{expand_streams, RedisHashSinkConfig, RedisSourceConfig, RedisStreamSinkConfig};
use crate::Problem;

/// How long a check waits for a reply.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

impl RedisSourceConfig {
    /// What stops this source from starting: the configuration, an unreachable
    /// server, a read-only replica, a stream key (or the dead-letter stream's) holding
    /// another type, or a refusal to create the group (an ACL). Part `source`.
    pub fn check(&self, _base: &Path) -> Vec<Problem> {
        problems("source", self.find_problems())
    }

    fn find_problems(&self) -> Result<Vec<String>, String> {
        let streams = expand_streams(self.stream.as_deref(), &self.streams)?;
        let settings = Settings::of(self).map_err(|error| error.to_string())?;
        let mut link = reach(&self.url)?;
        let mut found = Vec::new();
        let role = run(&mut link, "ROLE", &["ROLE"])?;
        if role.first().map(String::as_str) == Some("slave") {
            return Ok(vec![format!(
                "redis {} is a read-only replica: the group cannot be created nor entries \
                 acknowledged there; expected the primary's url",
                link.url()
            )]);
        }
        let dead = self
            .dead_letter_stream
            .clone()
            .unwrap_or_else(|| format!("{}:dead", self.group));
        let keys = streams.iter().map(|s| (s.as_str(), "stream"));
        for (key, what) in keys.chain([(dead.as_str(), "dead-letter stream")]) {
            if let Some(problem) = wrong_type(&mut link, key, what)? {
                found.push(problem);
            }
        }
        let who = run(&mut link, "ACL WHOAMI", &["ACL", "WHOAMI"]).ok();
        if let Some(user) = who.and_then(|words| words.into_iter().next()) {
            for stream in &streams {
                let trial = [
                    "ACL",
                    "DRYRUN",
                    &user,
                    "XGROUP",
                    "CREATE",
                    stream,
                    &self.group,
                    &settings.start,
                    "MKSTREAM",
                ];
                // A user who may not run ACL DRYRUN itself: nothing to learn here.
                if let Ok(answer) = run(&mut link, "ACL DRYRUN", &trial) {
                    if answer.first().map(String::as_str) != Some("OK") {
                        found.push(format!(
                            "redis {}: user `{user}` may not create group `{}` on stream \
                             `{stream}`: {}",
                            link.url(),
                            self.group,
                            answer.join(" ")
                        ));
                    }
                }
            }
        }
        Ok(found)
    }
}

impl RedisStreamSinkConfig {
    /// What stops this sink from starting: an unreachable server, or the stream's key
    /// holding another type. Part `sink`.
    pub fn check(&self, _base: &Path) -> Vec<Problem> {
        problems(
            "sink",
            reach(&self.url).and_then(|mut link| {
                Ok(wrong_type(&mut link, &self.stream, "stream")?
                    .into_iter()
                    .collect())
            }),
        )
    }
}

impl RedisHashSinkConfig {
    /// What stops this sink from starting: the key template, or an unreachable
    /// server. Part `sink`.
    pub fn check(&self, _base: &Path) -> Vec<Problem> {
        if let Err(error) = super::sink::validate_hash(self) {
            return problems("sink", Err(error.to_string()));
        }
        problems("sink", reach(&self.url).map(|_| Vec::new()))
    }
}

fn problems(part: &str, found: Result<Vec<String>, String>) -> Vec<Problem> {
    found
        .unwrap_or_else(|message| vec![message])
        .into_iter()
        .map(|message| Problem {
            part: part.to_owned(),
            message,
        })
        .collect()
}

/// A connection that answered `PING`, or why not.
fn reach(url: &str) -> Result<Link, String> {
    let mut link = Link::new(url, CHECK_TIMEOUT).map_err(|error| error.to_string())?;
    run(&mut link, "PING", &["PING"]).map_err(|error| format!("{error}; is it running?"))?;
    Ok(link)
}

/// A problem if `key` holds something other than a stream.
fn wrong_type(link: &mut Link, key: &str, what: &str) -> Result<Option<String>, String> {
    let kind = run(link, "TYPE", &["TYPE", key])?;
    Ok(match kind.first().map(String::as_str) {
        Some("stream" | "none") | None => None,
        Some(other) => Some(format!(
            "redis {}: key `{key}` (the {what}) holds a {other}, not a stream",
            link.url()
        )),
    })
}

/// Runs one command; its reply as words (a string, or an array's strings).
fn run(link: &mut Link, what: &str, words: &[&str]) -> Result<Vec<String>, String> {
    let (name, args) = words.split_first().expect("a command");
    let reply: Value = link
        .run(
            || what.to_owned(),
            |connection| redis::cmd(name).arg(args).query(connection),
        )
        .map_err(|error| error.to_string())?;
    Ok(match &reply {
        Value::Array(items) => items.iter().filter_map(text).collect(),
        other => text(other).into_iter().collect(),
    })
}
