//! The record every connector reads and writes: a JSON value and where it came from.

use std::fmt;
use std::sync::Arc;

use brigade_runtime::Weigh;
use serde_json::Value;

/// A record moving through a pipeline built from a pipeline file.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The data: a JSON object for JSON lines and CSV rows, a string for plain lines.
    pub value: Value,
    /// Where it was read, for dead letters.
    pub origin: Origin,
}

/// Where a record was read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// Line `line` (1-based) of `source`: a file's path, or `-` for standard input.
    Line {
        /// The file's path as matched, or `-`.
        source: Arc<str>,
        /// 1-based; for CSV, the line the row starts on.
        line: u64,
    },
    /// A row of a database source (boxed: records stay small).
    Row(Box<RowOrigin>),
    /// An entry of a Redis stream (boxed: a record stays as small as a line's).
    StreamEntry(Arc<StreamEntry>),
}

/// Where a record read from a Redis stream came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    /// The stream's key.
    pub stream: Arc<str>,
    /// The entry's id, `1700000000000-0`.
    pub id: String,
}

/// Where a database row was read: the source and the row's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowOrigin {
    /// The source's name: its `id`, else its table, else `query`.
    pub source: Arc<str>,
    /// The key column and value, `id=42`; `row N` (1-based) without a key.
    pub key: String,
}

impl Origin {
    /// The origin of a row of `source` with `key` (`id=42`).
    pub fn row(source: Arc<str>, key: String) -> Origin {
        Origin::Row(Box::new(RowOrigin { source, key }))
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line { source, line } => write!(f, "{source}:{line}"),
            Origin::Row(row) => write!(f, "{}[{}]", row.source, row.key),
            Origin::StreamEntry(entry) => write!(f, "{}#{}", entry.stream, entry.id),
        }
    }
}

impl Weigh for Record {
    fn weigh(&self) -> u64 {
        size_of::<Record>() as u64 + weigh_value(&self.value)
    }
}

/// The heap a JSON value holds, approximately: what the memory budget counts.
pub fn weigh_value(value: &Value) -> u64 {
    const SLOT: u64 = size_of::<Value>() as u64;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(text) => text.capacity() as u64,
        Value::Array(items) => items.iter().map(|item| SLOT + weigh_value(item)).sum(),
        // A map entry holds its key, its value, and the map's own bookkeeping.
        Value::Object(map) => map
            .iter()
            .map(|(key, item)| 2 * SLOT + key.capacity() as u64 + weigh_value(item))
            .sum(),
    }
}

/// What kind of JSON value `value` is, for messages: `a string`, `an object`, …
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
