//! The HTTP sink: batches POSTed as JSON lines, or as an Elasticsearch/OpenSearch
//! `_bulk` body, one HTTP agent (its own keep-alive connection) per worker.
//!
//! An [`HttpWriter`] is one worker's agent. Each [`write`](HttpWriter::write) is one
//! POST of the whole batch (gzip-compressed with `gzip = true`):
//!
//! - A connection error, a timeout, 429 or a 5xx fails the whole batch as transient
//!   ([`HttpError::is_transient`]): it is sent again after the runtime's backoff, or
//!   after the response's `Retry-After` (seconds or an HTTP date, at most
//!   [`MAX_RETRY_AFTER`]) if longer. Any other status fails it for good, with the
//!   body's reason.
//! - A `_bulk` answer with `errors: true` is read item by item ([`Written`]): items
//!   with 429 or a 5xx are sent again (alone), items with another 4xx are
//!   dead-lettered with the item's error type and reason, the others are written.
//!   Records that cannot become a bulk item (not an object, no `id_field`) are
//!   rejected before the request, with the field named.
//!
//! Delivery is at least once: a request that timed out or lost its answer may have
//! been stored, and is sent again. With `format = "bulk"` and an `id_field`, the
//! document's `_id` is its key, so the replay overwrites (`action = "index"`) or is
//! refused as already there (`action = "create"`: a 409 on `create` counts as
//! written); nothing is duplicated. Without an `id_field` (and with `jsonl`) a replay
//! duplicates the documents it resends.

mod body;
mod check;
mod error;
mod outcome;
mod response;
mod writer;

#[cfg(test)]
mod test;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::units::Span;

pub use error::HttpError;
pub use response::{parse_retry_after, MAX_RETRY_AFTER};
pub use writer::{HttpWriter, Written};

/// How long a request may take, connection to answer, unless the file says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `[sink] type = "http"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpSinkConfig {
    /// The endpoint each batch is POSTed to, as written (`http://host:9200/_bulk`).
    pub url: String,
    /// The body: `jsonl` (one record per line, the default) or `bulk`.
    #[serde(default)]
    pub format: HttpFormat,
    /// `bulk`: the index each document goes to (`_index`). Required with `bulk`.
    #[serde(default)]
    pub index: Option<String>,
    /// `bulk`: the record's field whose value (a string or a number) is the
    /// document's `_id`, so that a replay overwrites instead of duplicating.
    #[serde(default)]
    pub id_field: Option<String>,
    /// `bulk`: `index` (create or overwrite, the default) or `create` (only if
    /// absent).
    #[serde(default)]
    pub action: BulkAction,
    /// Headers sent with every request (`Authorization = "Bearer ${TOKEN}"`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How long one request may take, from connecting to the end of the answer;
    /// default 30s.
    #[serde(default)]
    pub timeout: Option<Span>,
    /// Compress request bodies with gzip (`Content-Encoding: gzip`). Default false.
    #[serde(default)]
    pub gzip: bool,
}

impl HttpSinkConfig {
    /// The request timeout: `timeout`, else [`DEFAULT_TIMEOUT`].
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(DEFAULT_TIMEOUT, |span| span.0)
    }
}

/// `format`: what a batch's body is.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HttpFormat {
    /// One record's JSON per line (`application/x-ndjson`).
    #[default]
    Jsonl,
    /// Elasticsearch/OpenSearch `_bulk`: an action line, then the document, per record.
    Bulk,
}

/// `action`: the `_bulk` operation per document.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BulkAction {
    /// Create the document, or replace the one with the same `_id`.
    #[default]
    Index,
    /// Create the document only if its `_id` is new.
    Create,
}

impl BulkAction {
    /// The action's name in a `_bulk` body.
    pub fn name(self) -> &'static str {
        match self {
            BulkAction::Index => "index",
            BulkAction::Create => "create",
        }
    }
}
