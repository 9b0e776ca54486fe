//! The PostgreSQL source: `[source] type = "postgres"`.
//!
//! It reads a query (or a whole table) and yields each row as a JSON object of its
//! columns (converted exactly, `numeric` as a string: the table is in
//! `docs/pipelines.md`), with an [`Origin::Row`](crate::Origin::Row) naming its key.
//!
//! - `partitions = 1` (the default): one server-side cursor in key order on the
//!   source thread ([`PgSource`]), in a read-only repeatable-read transaction,
//!   `fetch` rows at a time. A dropped connection is reopened with backoff and the
//!   cursor declared again after the last key fetched: no row lost, none repeated.
//!   The server's `idle_in_transaction_session_timeout` is the source's
//!   [`idle_timeout`](brigade_runtime::Source::idle_timeout), so the runtime's source
//!   guard keeps the transaction alive under back pressure.
//! - `partitions = N`: the integer key's range split into pages ([`PagePlanner`]),
//!   read by up to N workers of a `read` stage, each on its own connection
//!   ([`PageReader`]).
//!
//! With `key` and a `[checkpoint]`, the last acknowledged key is kept
//! ([`checkpoint_path`]) and a rerun reads the rows after it: at least once, so rows
//! in flight at a crash are read again. Without `key` nothing can be resumed, and a
//! `[checkpoint]` is refused. The key must be unique: a repeated key stops the read.

mod check;
mod checkpoint;
mod connect;
mod cursor;
mod error;
mod partitions;
mod query;
#[cfg(test)]
mod test;
mod value;

use serde::Deserialize;

pub use checkpoint::checkpoint_path;
pub use cursor::PgSource;
pub use error::PgSourceError;
pub use partitions::{Page, PagePlanner, PageReader};

/// `[source] type = "postgres"`: where and what to read.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgSourceConfig {
    /// `url`: a libpq connection string (`host=… dbname=…`) or a `postgres://` URI.
    pub url: String,
    /// `query`: the SELECT to read; or `table`.
    #[serde(default)]
    pub query: Option<String>,
    /// `table`: a table to read whole (`name` or `schema.name`, as written); or
    /// `query`.
    #[serde(default)]
    pub table: Option<String>,
    /// `key`: a unique column of the result to read in order of, resume after and
    /// split by.
    #[serde(default)]
    pub key: Option<String>,
    /// `fetch`: rows per FETCH (and about per page with partitions); default 1000.
    #[serde(default = "default_fetch")]
    pub fetch: usize,
    /// `partitions`: the most pages read at once; default 1 (one cursor).
    #[serde(default = "default_partitions")]
    pub partitions: usize,
    /// `id`: the checkpoint's name; default the table, else `query-<hash>`.
    #[serde(default)]
    pub id: Option<String>,
}

fn default_fetch() -> usize {
    1000
}

fn default_partitions() -> usize {
    1
}

impl PgSourceConfig {
    /// The checkpoint's name: `id`, else the table, else `query-` and a hash of the
    /// query.
    pub fn id(&self) -> String {
        if let Some(id) = &self.id {
            return id.clone();
        }
        match (&self.table, &self.query) {
            (Some(table), _) => table.clone(),
            (None, query) => {
                let query = query.as_deref().unwrap_or_default();
                let hash = query.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                    (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
                });
                format!("query-{hash:016x}")
            }
        }
    }

    /// The name rows' origins give: `id`, else the table, else `query`.
    pub fn name(&self) -> String {
        self.id
            .clone()
            .or_else(|| self.table.clone())
            .unwrap_or_else(|| "query".to_owned())
    }

    /// What is wrong with the settings themselves, as (key, message): one of `query`
    /// and `table`, `fetch` and `partitions` at least 1, `key` with partitions.
    pub fn invalid(&self) -> Option<(&'static str, String)> {
        match (&self.query, &self.table) {
            (Some(_), Some(_)) => {
                return Some(("table", "expected `query` or `table`, not both".to_owned()))
            }
            (None, None) => {
                return Some(("query", "missing key `query` or `table`".to_owned()));
            }
            _ => {}
        }
        if self.fetch == 0 {
            return Some(("fetch", "expected a whole number, at least 1".to_owned()));
        }
        if self.partitions == 0 {
            return Some((
                "partitions",
                "expected a whole number, at least 1".to_owned(),
            ));
        }
        if self.partitions > 1 && self.key.is_none() {
            return Some((
                "partitions",
                "partitions split the range of `key`, an integer column; expected `key`".to_owned(),
            ));
        }
        None
    }
}
