//! The JSON-lines sinks: a file (written, flushed and fsynced per batch before the
//! batch is acknowledged) and standard output.

use std::path::PathBuf;

use serde::Deserialize;

/// `[sink] type = "file"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The file, appended to (created if missing).
    pub path: PathBuf,
}

/// `[sink] type = "stdout"`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {}
