//! The dead-letter file: one JSON line per record that could not be finished.

use std::path::PathBuf;

use serde::Deserialize;

use crate::units::Size;

/// `[dead_letter]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// The file, appended to (created if missing).
    pub path: PathBuf,
    /// The largest the file may grow to; past it admission stops with a clear message.
    /// Unlimited by default.
    #[serde(default)]
    pub max_size: Option<Size>,
}
