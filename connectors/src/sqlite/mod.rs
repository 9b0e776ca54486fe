//! The SQLite sink: one connection per worker, WAL, batched transactions, `INSERT` or
//! upsert on a key, locked-database errors retried.
//!
//! A [`SqliteWriter`] is one worker's connection. Each [`write`](SqliteWriter::write)
//! is one `BEGIN IMMEDIATE` transaction: a row SQLite refuses for its data (a
//! constraint, a missing key field, a record that is not an object) is rejected alone
//! and the rest committed; a locked database or an I/O error fails the whole batch as
//! transient ([`SqliteError::is_transient`]) and it is rolled back, so it can be
//! retried as a whole. With a `key`, rows are upserted, so a batch replayed after a
//! crash duplicates nothing.
//!
//! Durability: the database is in WAL mode with `synchronous=NORMAL`. A committed
//! batch survives the brigade process crashing (even `kill -9`): it is in the WAL file,
//! which the next connection replays. A power loss or an OS crash may lose the last
//! batches committed before it, never corrupt the database.

mod check;
mod error;
mod value;
mod writer;

#[cfg(test)]
mod test;

use std::path::PathBuf;

use serde::Deserialize;

use crate::units::Span;

pub use error::SqliteError;
pub use writer::SqliteWriter;

/// `[sink] type = "sqlite"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SqliteSinkConfig {
    /// The database file (created if missing); a relative path is relative to the
    /// pipeline file's directory.
    pub path: PathBuf,
    /// The table written to.
    pub table: String,
    /// The record's fields written, one column each, same names. Every key column must
    /// be one of them.
    pub columns: Vec<String>,
    /// Columns that identify a row: an upsert on them (`ON CONFLICT … DO UPDATE`), so a
    /// replay after a crash duplicates nothing. Without it, plain `INSERT`.
    #[serde(default)]
    pub key: Vec<String>,
    /// Create the table if missing (the key as its primary key, columns untyped).
    /// Default true.
    #[serde(default)]
    pub create_table: Option<bool>,
    /// How long a write waits for a lock held by another connection before it fails
    /// (and is retried). Default 5s.
    #[serde(default)]
    pub busy_timeout: Option<Span>,
}
