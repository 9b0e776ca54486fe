//! The PostgreSQL sink: one connection per worker, a batch per transaction, written
//! with `COPY … FROM STDIN` (appends), `COPY` into a temporary table then
//! `INSERT … ON CONFLICT (key) DO UPDATE` (upserts), or multi-row `INSERT` statements.
//!
//! A [`PostgresWriter`] is one worker's connection. Each
//! [`write`](PostgresWriter::write) commits a batch in one transaction. Guarantees:
//!
//! - **Bad rows alone are refused.** A record that is not an object or lacks a key
//!   field is rejected before anything is sent. A batch the server refuses for a
//!   row's data (SQLSTATE classes 22 and 23: bad syntax, out of range, not null,
//!   unique, check, foreign key) is rolled back and written again in halves, each in
//!   its own savepoint of one new transaction, recursively, until the rows the server
//!   refuses alone are found; only those are returned, with the server's message
//!   (naming the column where it does), and the rest is committed.
//! - **Transient failures fail the whole batch.** A lost connection, a shutdown, too
//!   many connections, a serialization failure or a deadlock ([`is_transient`])
//!   roll the batch back entirely, even in the middle of a split, so the runtime's
//!   retry writes it whole again; a writer whose connection was lost connects again
//!   at its next write.
//! - **Replays.** With a `key`, a replayed batch (after a crash, or a commit whose
//!   acknowledgement the connection lost) updates rows to the values they already
//!   have: the table ends exact. A key repeated within a batch keeps its last row.
//!   Without a `key`, a replay appends the rows again: at-least-once.
//!
//! Values are sent as text and cast by the server to each column's type: strings as
//! they are, numbers and booleans as their JSON text, objects and arrays as JSON text
//! (for `json`/`jsonb` columns), null or a missing field as SQL `NULL`.
//!
//! [`is_transient`]: crate::postgres::is_transient

mod check;
mod copy;
mod param;
mod row;
mod sql;
mod table;
mod writer;

#[cfg(test)]
mod test;

use serde::Deserialize;

use crate::units::Span;

pub use writer::PostgresWriter;

/// `[sink] type = "postgres"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PostgresSinkConfig {
    /// The server: a libpq keyword string (`host=… port=… user=… dbname=…`) or a
    /// `postgres://` URI; `${ENV}` in a pipeline file keeps a password out of it.
    pub url: String,
    /// The table, `name` or `schema.name`, each part exactly as in the catalog (it
    /// is quoted).
    pub table: String,
    /// The record's fields written, one column each, same names.
    pub columns: Vec<String>,
    /// Columns identifying a row: an upsert on them (the table needs a primary key or
    /// unique index on exactly these), so a replay duplicates nothing. Without it,
    /// appends.
    #[serde(default)]
    pub key: Vec<String>,
    /// How rows are sent: `copy` (default) or `insert`.
    #[serde(default)]
    pub method: Method,
    /// Create the table if it is missing: every column `text`, the key as its primary
    /// key. Default false.
    #[serde(default)]
    pub create_table: bool,
    /// How long connecting may take; default the url's `connect_timeout`, else 10s.
    #[serde(default)]
    pub connect_timeout: Option<Span>,
    /// The session's `statement_timeout`: the server cancels a longer statement (the
    /// batch is retried). Default the server's.
    #[serde(default)]
    pub statement_timeout: Option<Span>,
}

/// `method`: how a batch's rows reach the server.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// `COPY … FROM STDIN` in text format: the fastest.
    #[default]
    Copy,
    /// Multi-row `INSERT … VALUES`, at most 65,535 parameters a statement: for
    /// servers or poolers where COPY does not fit.
    Insert,
}
