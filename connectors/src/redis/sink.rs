//! The Redis sinks: `XADD` to a stream and `HSET` to a hash per record, each a batch
//! in one pipelined round trip on one worker's connection.

use std::time::Duration;

use redis::Value;
use serde_json::Value as Json;

use super::link::Link;
use super::{RedisConnectorError, RedisHashSinkConfig, RedisStreamSinkConfig};
use crate::record::json_kind;
use crate::Record;

/// How long a batch's replies may take to come.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// One worker's connection for `type = "redis_stream"`.
pub struct StreamWriter {
    link: Link,
    config: RedisStreamSinkConfig,
}

impl StreamWriter {
    /// Connects (and pings) the stream sink's Redis.
    pub fn open(config: &RedisStreamSinkConfig) -> Result<StreamWriter, RedisConnectorError> {
        if config.stream.is_empty() {
            return Err(RedisConnectorError::Config("`stream` is empty".into()));
        }
        let mut link = Link::new(&config.url, REPLY_TIMEOUT)?;
        ping(&mut link)?;
        Ok(StreamWriter {
            link,
            config: config.clone(),
        })
    }

    /// Adds each record of `batch` as an entry (`XADD … MAXLEN ~ n *`), in order, in
    /// one pipeline. Returns the records rejected for their own data (not an object,
    /// without a `field`), as (index, why). Err means the batch may be partly written:
    /// retried whole, some entries are added twice.
    pub fn write(&mut self, batch: &[Record]) -> Result<Vec<(usize, String)>, RedisConnectorError> {
        let mut rejected = Vec::new();
        let mut pipe = redis::pipe();
        let mut any = false;
        for (index, record) in batch.iter().enumerate() {
            let fields = match &self.config.field {
                Some(name) => vec![(name.clone(), record.value.to_string())],
                None => match object_fields(&record.value, None) {
                    Ok(fields) if !fields.is_empty() => fields,
                    Ok(_) => {
                        rejected.push((index, "an empty object has no field to add".into()));
                        continue;
                    }
                    Err(why) => {
                        rejected.push((index, why));
                        continue;
                    }
                },
            };
            let command = pipe.cmd("XADD").arg(&self.config.stream);
            if let Some(most) = self.config.maxlen {
                command.arg("MAXLEN").arg("~").arg(most);
            }
            command.arg("*");
            for (name, value) in fields {
                command.arg(name).arg(value);
            }
            command.ignore();
            any = true;
        }
        if any {
            let stream = &self.config.stream;
            self.link.run(
                || format!("XADD to stream `{stream}`"),
                |connection| pipe.query::<()>(connection),
            )?;
        }
        Ok(rejected)
    }
}

/// One worker's connection for `type = "redis_hash"`.
pub struct HashWriter {
    link: Link,
    key: KeyTemplate,
    fields: Option<Vec<String>>,
}

impl HashWriter {
    /// Checks the key template and connects (and pings) the hash sink's Redis.
    pub fn open(config: &RedisHashSinkConfig) -> Result<HashWriter, RedisConnectorError> {
        let key = validate_hash(config)?;
        let mut link = Link::new(&config.url, REPLY_TIMEOUT)?;
        ping(&mut link)?;
        Ok(HashWriter {
            link,
            key,
            fields: config.fields.clone(),
        })
    }

    /// Sets each record's fields in the hash its key names (`HSET`), in one pipeline.
    /// Writing the same record again changes nothing, so a retried batch duplicates
    /// nothing. Returns the records rejected for their own data (not an object, a
    /// key field missing or not a string or number), as (index, why).
    pub fn write(&mut self, batch: &[Record]) -> Result<Vec<(usize, String)>, RedisConnectorError> {
        let mut rejected = Vec::new();
        let mut pipe = redis::pipe();
        let mut any = false;
        for (index, record) in batch.iter().enumerate() {
            let prepared = self.key.render(&record.value).and_then(|key| {
                let fields = object_fields(&record.value, self.fields.as_deref())?;
                if fields.is_empty() {
                    return Err("none of the record's fields is written".to_owned());
                }
                Ok((key, fields))
            });
            let (key, fields) = match prepared {
                Ok(prepared) => prepared,
                Err(why) => {
                    rejected.push((index, why));
                    continue;
                }
            };
            let command = pipe.cmd("HSET").arg(key);
            for (name, value) in fields {
                command.arg(name).arg(value);
            }
            command.ignore();
            any = true;
        }
        if any {
            self.link.run(
                || "HSET".to_owned(),
                |connection| pipe.query::<()>(connection),
            )?;
        }
        Ok(rejected)
    }
}

/// The hash sink's key template, if it and `fields` are right.
pub(super) fn validate_hash(
    config: &RedisHashSinkConfig,
) -> Result<KeyTemplate, RedisConnectorError> {
    if config.fields.as_ref().is_some_and(Vec::is_empty) {
        return Err(RedisConnectorError::Config("`fields` is empty".into()));
    }
    KeyTemplate::parse(&config.key).map_err(RedisConnectorError::Config)
}

fn ping(link: &mut Link) -> Result<(), RedisConnectorError> {
    link.run(
        || "connecting".to_owned(),
        |connection| redis::cmd("PING").query::<Value>(connection),
    )
    .map(drop)
}

/// An object record's fields (only `wanted`, if given, in its order) as entry or hash
/// fields: strings as they are, other values as JSON.
fn object_fields(value: &Json, wanted: Option<&[String]>) -> Result<Vec<(String, String)>, String> {
    let Json::Object(object) = value else {
        return Err(format!("the record is {}, not an object", json_kind(value)));
    };
    let text = |value: &Json| match value {
        Json::String(text) => text.clone(),
        other => other.to_string(),
    };
    Ok(match wanted {
        Some(names) => names
            .iter()
            .filter_map(|name| Some((name.clone(), text(object.get(name)?))))
            .collect(),
        None => object
            .iter()
            .map(|(name, value)| (name.clone(), text(value)))
            .collect(),
    })
}

/// A key with record fields in braces: `user:{id}`, `{tenant}:{id}`.
#[derive(Debug)]
pub(super) struct KeyTemplate {
    /// Literal text and field names, alternating, starting with text.
    parts: Vec<String>,
}

impl KeyTemplate {
    fn parse(written: &str) -> Result<KeyTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = written;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .map(|at| open + at)
                .ok_or_else(|| format!("`key` `{written}`: a `{{` without its `}}`"))?;
            let name = &rest[open + 1..close];
            if name.is_empty() || name.contains('{') {
                return Err(format!(
                    "`key` `{written}`: expected a field name in braces"
                ));
            }
            parts.push(rest[..open].to_owned());
            parts.push(name.to_owned());
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("`key` `{written}`: a `}}` without its `{{`"));
        }
        if parts.is_empty() {
            return Err(format!(
                "`key` `{written}` names no field; expected one in braces, like \"user:{{id}}\", \
                 so each record has its own hash"
            ));
        }
        parts.push(rest.to_owned());
        Ok(KeyTemplate { parts })
    }

    /// The key of `value`'s record: each field a string or a number.
    fn render(&self, value: &Json) -> Result<String, String> {
        let mut key = String::new();
        for (index, part) in self.parts.iter().enumerate() {
            if index % 2 == 0 {
                key.push_str(part);
                continue;
            }
            match value.get(part) {
                Some(Json::String(text)) => key.push_str(text),
                Some(Json::Number(number)) => key.push_str(&number.to_string()),
                Some(other) => {
                    return Err(format!(
                        "key field `{part}` is {}, expected a string or a number",
                        json_kind(other)
                    ))
                }
                None => return Err(format!("the record has no key field `{part}`")),
            }
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_templates_name_each_records_hash() {
        let key = KeyTemplate::parse("t:{tenant}:user:{id}").unwrap();
        assert_eq!(
            key.render(&json!({"tenant": "a", "id": 7})).unwrap(),
            "t:a:user:7"
        );
        assert_eq!(
            key.render(&json!({"tenant": "a"})).unwrap_err(),
            "the record has no key field `id`"
        );
        assert_eq!(
            key.render(&json!({"tenant": [1], "id": 1})).unwrap_err(),
            "key field `tenant` is an array, expected a string or a number"
        );
        assert!(KeyTemplate::parse("users")
            .unwrap_err()
            .contains("names no field"));
        assert!(KeyTemplate::parse("u:{id")
            .unwrap_err()
            .contains("without its"));
        assert!(KeyTemplate::parse("u:{}")
            .unwrap_err()
            .contains("field name"));
    }
}
