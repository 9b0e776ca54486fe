//! The standard-input source: lines or JSON lines, each with its line number.

use serde::Deserialize;

use crate::file::Format;

/// `[source] type = "stdin"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StdinSourceConfig {
    /// `lines` or `jsonl` (CSV is for files).
    pub format: Format,
}
