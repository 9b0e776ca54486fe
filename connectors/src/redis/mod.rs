//! Redis Streams: a source that joins a consumer group, so that several brigade
//! processes share one stream's work, and two sinks (`XADD` to a stream, `HSET` to a
//! hash per record).
//!
//! The source ([`RedisSource`]) reads with `XREADGROUP` under a consumer name unique
//! per process and stable across its restarts ([`ConsumerName`]). Its guarantees:
//!
//! - **Acknowledged only when finished.** An entry is `XACK`ed only when the runtime
//!   acknowledges its position ([`Source::ack`](brigade_runtime::Source::ack)): its
//!   record and every output of it written or dead-lettered. Acks go in pipelined
//!   batches; those a lost connection refused are sent again after it comes back.
//! - **Own pending entries first.** On start, the entries delivered to this consumer
//!   and never acknowledged (a crash, a `kill -9`) are read again before new ones.
//! - **Nothing stranded.** The janitor claims (`XAUTOCLAIM`) the entries
//!   of any consumer idle longer than `claim_idle`, so a dead process's work is done by
//!   the others. A live consumer touches its own in-flight entries (`XCLAIM … JUSTID`)
//!   every third of `claim_idle`, so a slow pipeline is not robbed.
//! - **Poison goes aside.** An entry delivered `max_deliveries` times and still not
//!   acknowledged is added to `dead_letter_stream` with its history (stream, id, group,
//!   last consumer, deliveries, the entry's fields) and acknowledged: it does not block
//!   the group.
//! - **Outages stall, never lose.** A lost connection (Redis restarting) is reconnected
//!   with backoff; meanwhile the source reads nothing. An error Redis will not get over
//!   (a key of the wrong type, a permission refused) fails the source: the run drains
//!   and reports it.
//!
//! Delivery is at least once: an entry in flight in a process that dies is processed
//! again by whoever claims it. A sink with an upsert key (SQLite `key`, the
//! `redis_hash` sink) makes the result exactly once. Order is kept only within one
//! stream as read; parallel stages may reorder.
//!
//! The group's figures (lag, pending own and others', consumers alive, claims) are in
//! [`GroupStats`], shared with the running source through an `Arc`.
//!
//! The sinks ([`StreamWriter`], [`HashWriter`]) write a batch as one pipelined round
//! trip; a lost connection fails the batch as transient (it is retried whole, so a
//! stream sink may add an entry twice after a failure; the hash sink's `HSET` of the
//! same values is idempotent).

mod check;
mod consumer;
mod error;
mod group;
mod janitor;
mod link;
mod reply;
mod sink;
mod source;
mod stats;
mod streams;

#[cfg(test)]
mod test;

use std::path::PathBuf;

use serde::Deserialize;

use crate::units::Span;

pub use consumer::ConsumerName;
pub use error::RedisConnectorError;
pub use sink::{HashWriter, StreamWriter};
pub use source::RedisSource;
pub use stats::{GroupFigures, GroupStats};
pub use streams::expand_streams;

/// `[source] type = "redis"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisSourceConfig {
    /// `redis://[user[:password]@]host[:port][/db]`.
    pub url: String,
    /// The stream read. Give this or `streams`.
    #[serde(default)]
    pub stream: Option<String>,
    /// Several streams read as partitions: names, each may hold a range `{0..3}`
    /// (both ends included: `s:{0..3}` is `s:0` … `s:3`).
    #[serde(default)]
    pub streams: Vec<String>,
    /// The consumer group; created (with `MKSTREAM`) on every stream if missing.
    pub group: String,
    /// This process's name in the group. Default: the host name and an id kept in
    /// `state_dir`, so that a restart keeps its name.
    #[serde(default)]
    pub consumer: Option<String>,
    /// Where the default consumer's id is kept (relative to the pipeline file's
    /// directory). Default `brigade-state`.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// The entry field holding the record as JSON (parsed by the decode stage).
    /// Default: the record is an object of the entry's fields, as strings.
    #[serde(default)]
    pub field: Option<String>,
    /// How long one read waits for new entries. Default 500ms.
    #[serde(default)]
    pub block: Option<Span>,
    /// The most entries one read takes, per stream. Default 100.
    #[serde(default)]
    pub count: Option<usize>,
    /// Entries pending this long with their consumer are claimed by the janitor.
    /// Longer than a record's slowest trip through the pipeline. Default 30s.
    #[serde(default)]
    pub claim_idle: Option<Span>,
    /// An entry delivered this often without being acknowledged goes to the dead-letter
    /// stream. Default 5.
    #[serde(default)]
    pub max_deliveries: Option<u64>,
    /// Where entries past `max_deliveries` go. Default `<group>:dead`.
    #[serde(default)]
    pub dead_letter_stream: Option<String>,
    /// Where a group created now starts: `"0"` (the whole stream, the default) or `"$"`
    /// (only entries added from now on).
    #[serde(default)]
    pub start: Option<String>,
    /// End the run after this long without a new entry (for batch jobs and tests).
    /// Default: never.
    #[serde(default)]
    pub stop_when_idle: Option<Span>,
}

/// `[sink] type = "redis_stream"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisStreamSinkConfig {
    /// `redis://[user[:password]@]host[:port][/db]`.
    pub url: String,
    /// The stream written to (`XADD`).
    pub stream: String,
    /// The entry field holding the record as JSON. Default: one entry field per field
    /// of the record (an object), strings as they are, other values as JSON.
    #[serde(default)]
    pub field: Option<String>,
    /// Trim the stream to about this many entries (`MAXLEN ~`). Default: no trim.
    #[serde(default)]
    pub maxlen: Option<u64>,
}

/// `[sink] type = "redis_hash"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisHashSinkConfig {
    /// `redis://[user[:password]@]host[:port][/db]`.
    pub url: String,
    /// The hash's key, with the record's fields in braces: `"user:{id}"`.
    pub key: String,
    /// The record's fields written to the hash. Default: all of them.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}
