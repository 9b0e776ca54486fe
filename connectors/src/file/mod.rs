//! The file source: files matched by a glob, read in name or modification order, as
//! lines, JSON lines or CSV (gzip by the `.gz` extension), with checkpoints.
//!
//! The source only splits files into [`Raw`](crate::raw::Raw) records, each with its
//! origin (file and line); [`decode`](crate::raw::decode) parses them in a parallel
//! stage. Blank lines of a JSON-lines file are skipped (they still count as lines).
//! A line longer than `max_line`, a truncated gzip stream or a read error becomes an
//! [`Unreadable`](crate::raw::RawData::Unreadable) record, to be dead-lettered with
//! its origin; the run goes on (with the next line, or the next file).

mod checkpoint;
mod csv_rows;
mod fingerprint;
mod ledger;
mod lines;
mod source;
mod stats;
#[cfg(test)]
mod test;

use std::path::Path;

use serde::Deserialize;

use crate::units::{Size, Span};
use crate::Problem;

pub use checkpoint::{Checkpoint, CheckpointError, CheckpointStore, FileCheckpoint, VERSION};
pub use fingerprint::{Fingerprint, PREFIX};
pub(crate) use lines::{LineReader, Piece};
pub use source::{FileError, FileSource};
pub use stats::FileStats;

/// The longest line (or CSV row) read unless `max_line` says otherwise: 16 MiB.
pub const DEFAULT_MAX_LINE: usize = 16 << 20;

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
    /// Names the source's checkpoint (default: the glob as written). Set it to keep
    /// the checkpoint when the glob changes.
    #[serde(default)]
    pub id: Option<String>,
    /// How often the checkpoint is written while acknowledgements come (default 1s);
    /// it is always written when the source is dropped. A pipeline file sets it in
    /// `[checkpoint] interval`, with the other checkpoint settings.
    #[serde(skip)]
    pub checkpoint_interval: Option<Span>,
}

impl FileSourceConfig {
    /// What `brigade validate` reports: the glob must be valid and match at least one
    /// readable file (relative globs resolve against `base`).
    pub fn check(&self, base: &Path) -> Vec<Problem> {
        let problem = |message| Problem {
            part: "source".to_owned(),
            message,
        };
        let pattern = source::resolve(&self.path, base);
        let paths = match glob::glob(&pattern) {
            Ok(paths) => paths,
            Err(error) => {
                return vec![problem(format!("the glob `{pattern}` is invalid: {error}"))]
            }
        };
        let mut problems = Vec::new();
        let mut readable = 0;
        for entry in paths {
            match entry {
                Ok(path) if path.is_file() => match std::fs::File::open(&path) {
                    Ok(_) => readable += 1,
                    Err(error) => {
                        problems.push(problem(format!("cannot read {}: {error}", path.display())));
                    }
                },
                Ok(_) => {}
                Err(error) => problems.push(problem(error.to_string())),
            }
        }
        if readable == 0 && problems.is_empty() {
            problems.push(problem(format!("the glob `{pattern}` matches no file")));
        }
        problems
    }
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
