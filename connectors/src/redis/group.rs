//! The consumer group a source reads in: creating it, and reading its figures.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use super::link::Link;
use super::reply::{field, int, items, pairs, text};
use super::stats::GroupStats;
use super::RedisConnectorError;

/// One consumer's place in a group over one or more streams.
#[derive(Debug)]
pub(crate) struct Group {
    /// The streams, as partitions, in the order read.
    pub streams: Vec<Arc<str>>,
    /// The group's name.
    pub name: String,
    /// This consumer's name.
    pub consumer: String,
    /// Where a group created now starts: `0` or `$`.
    pub start: String,
    /// Entries idle this long with their consumer may be claimed.
    pub claim_idle: Duration,
    /// Deliveries after which an entry goes to the dead-letter stream.
    pub max_deliveries: u64,
    /// Where those go.
    pub dead_letter_stream: String,
}

impl Group {
    /// `claim_idle` in the milliseconds Redis takes.
    pub(crate) fn claim_idle_ms(&self) -> u64 {
        self.claim_idle.as_millis().max(1) as u64
    }

    /// Creates the group on every stream that lacks it (`XGROUP CREATE … MKSTREAM`);
    /// one that exists is left as it is.
    pub(crate) fn create(&self, link: &mut Link) -> Result<(), RedisConnectorError> {
        for stream in &self.streams {
            let created = link.run(
                || format!("creating group `{}` on stream `{stream}`", self.name),
                |connection| {
                    redis::cmd("XGROUP")
                        .arg("CREATE")
                        .arg(&**stream)
                        .arg(&self.name)
                        .arg(&self.start)
                        .arg("MKSTREAM")
                        .query::<Value>(connection)
                },
            );
            match created {
                Ok(_) => {}
                Err(RedisConnectorError::Redis { source, .. })
                    if source.code() == Some("BUSYGROUP") => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Reads the group's lag, pending entries, live consumers and the streams' entries
    /// added (for the arrival rate) into `stats` (one pipelined round trip).
    pub(crate) fn refresh(
        &self,
        link: &mut Link,
        stats: &GroupStats,
    ) -> Result<(), RedisConnectorError> {
        let mut pipe = redis::pipe();
        for stream in &self.streams {
            pipe.cmd("XINFO").arg("GROUPS").arg(&**stream);
            pipe.cmd("XPENDING").arg(&**stream).arg(&self.name);
            pipe.cmd("XINFO")
                .arg("CONSUMERS")
                .arg(&**stream)
                .arg(&self.name);
            pipe.cmd("XINFO").arg("STREAM").arg(&**stream);
        }
        let replies: Vec<Value> = link.run(
            || format!("reading the figures of group `{}`", self.name),
            |connection| pipe.query(connection),
        )?;
        let (mut lag, mut known) = (0u64, true);
        let (mut own, mut all) = (0u64, 0u64);
        let mut alive = BTreeSet::new();
        let (mut added, mut added_known) = (0u64, true);
        let idle_limit = self.claim_idle_ms() as i64;
        for reply in replies.chunks(4) {
            let [groups, pending, consumers, stream] = reply else {
                continue;
            };
            match field(stream, "entries-added").and_then(int) {
                Some(count) => added += count.max(0) as u64,
                None => added_known = false,
            }
            let ours = items(groups)
                .iter()
                .find(|group| field(group, "name").and_then(text).as_deref() == Some(&self.name));
            match ours.and_then(|group| field(group, "lag")).and_then(int) {
                Some(behind) => lag += behind.max(0) as u64,
                None => known = false,
            }
            if let [count, _, _, by_consumer, ..] = items(pending) {
                all += int(count).unwrap_or(0).max(0) as u64;
                for row in items(by_consumer) {
                    if let [name, count] = items(row) {
                        if text(name).as_deref() == Some(&self.consumer) {
                            own += int(count).unwrap_or(0).max(0) as u64;
                        }
                    }
                }
            }
            for consumer in items(consumers) {
                let fields = pairs(consumer);
                let get = |key: &str| {
                    fields
                        .iter()
                        .find(|(name, _)| name == key)
                        .map(|(_, value)| *value)
                };
                let idle = get("idle").and_then(int).unwrap_or(i64::MAX);
                if idle < idle_limit {
                    if let Some(name) = get("name").and_then(text) {
                        alive.insert(name);
                    }
                }
            }
        }
        stats.lag.store(if known { lag } else { u64::MAX }, Relaxed);
        stats.pending_own.store(own, Relaxed);
        stats.pending_others.store(all.saturating_sub(own), Relaxed);
        stats.consumers_alive.store(alive.len() as u64, Relaxed);
        if added_known {
            stats.note_added(added);
        }
        Ok(())
    }
}
