//! brigade-connectors: real data in and out of a brigade pipeline.
//!
//! Each connector is a module with its configuration (as a pipeline file writes it),
//! its check of the environment, and the runtime pieces it builds:
//!
//! - [`file`](mod@file): files by glob (lines, JSON lines, CSV; gzip by `.gz`), with
//!   checkpoints of acknowledged positions, per file, by fingerprint;
//! - [`stdin`]: standard input, lines or JSON lines;
//! - [`exec`]: a stage of long-lived external processes, one per worker, speaking
//!   JSON lines;
//! - [`fields`]: a stage renaming, dropping and setting fields of object records;
//! - [`out`]: JSON lines to a file (flushed and fsynced per batch) or standard output;
//! - [`sqlite`]: batched, idempotent inserts into SQLite;
//! - [`postgres`](mod@postgres): PostgreSQL: a query read through a cursor in key order,
//!   resumable, or split into key ranges read in parallel; COPY, upserts and multi-row
//!   inserts, bad rows found by splitting the batch;
//! - [`http`](mod@http): batches POSTed as JSON lines or an Elasticsearch `_bulk`
//!   body, read item by item;
//! - [`redis`](mod@redis): a Redis Streams consumer-group source (a fleet of brigade
//!   processes sharing one stream) and stream and hash sinks;
//! - [`dead_letter`]: the dead-letter file.
//!
//! [`pipeline`] reads a pipeline file into a validated description and builds a
//! runtime [`Pipeline`](brigade_runtime::Pipeline) from it. Every record is a
//! [`Record`]: a JSON value and its [`Origin`]. The file and stdin sources yield
//! [`raw::Raw`] lines and rows, parsed into records by [`raw::decode`] in a parallel
//! stage.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dead_letter;
pub mod exec;
pub mod fields;
pub mod file;
pub mod http;
pub mod out;
pub mod pipeline;
pub mod postgres;
pub mod raw;
mod record;
pub mod redis;
mod spill;
pub mod sqlite;
pub mod stdin;
#[cfg(test)]
mod testing;
pub mod units;
mod writable;

pub use record::{weigh_value, Origin, Record, RowOrigin, StreamEntry};

/// One thing wrong with a pipeline's environment, found by a healthcheck: what
/// (the connector and its key) and why, in one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: `source`, `stages.enrich`, `sink`, `dead_letter`, `checkpoint`.
    pub part: String,
    /// What is wrong, in one line.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.part, self.message)
    }
}
