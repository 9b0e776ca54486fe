//! The SQLite sink: one connection per worker, WAL, batched transactions, `INSERT` or
//! upsert on a key, locked-database errors retried.

use std::path::PathBuf;

use serde::Deserialize;

use crate::units::Span;

/// `[sink] type = "sqlite"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SqliteSinkConfig {
    /// The database file (created if missing).
    pub path: PathBuf,
    /// The table written to.
    pub table: String,
    /// The record's fields written, one column each, same names.
    pub columns: Vec<String>,
    /// Columns that identify a row: an upsert on them (`ON CONFLICT … DO UPDATE`), so a
    /// replay after a crash duplicates nothing. Without it, plain `INSERT`.
    #[serde(default)]
    pub key: Vec<String>,
    /// Create the table if missing (the key as its primary key). Default true.
    #[serde(default)]
    pub create_table: Option<bool>,
    /// How long a write waits for a lock held by another connection before it fails
    /// (and is retried). Default 5s.
    #[serde(default)]
    pub busy_timeout: Option<Span>,
}
