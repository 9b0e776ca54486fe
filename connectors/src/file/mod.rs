//! The file source: files matched by a glob, read in name or modification order, as
//! lines, JSON lines or CSV (gzip by the `.gz` extension), with checkpoints.

use serde::Deserialize;

use crate::units::Size;

/// `[source] type = "file"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// A glob: `data/*.jsonl`, `logs/**/*.csv.gz`.
    pub path: String,
    /// How each file is split into records.
    pub format: Format,
    /// In which order the matched files are read.
    #[serde(default)]
    pub order: FileOrder,
    /// The longest line (or CSV row) read; a longer one is dead-lettered with its
    /// origin. Default 16MiB.
    #[serde(default)]
    pub max_line: Option<Size>,
}

/// How a file (or standard input) is split into records.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Each line a JSON string.
    Lines,
    /// Each line a JSON value.
    Jsonl,
    /// A header line, then each row a JSON object of the header's names to strings.
    Csv,
}

/// In which order a file source reads the files its glob matches.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileOrder {
    /// By path, bytewise.
    #[default]
    Name,
    /// Oldest modification time first (ties by path).
    Modified,
}
