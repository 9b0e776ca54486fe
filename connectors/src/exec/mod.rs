//! The exec stage: a pool of long-lived external processes, one per worker, each
//! reading JSON lines on standard input and answering each on standard output.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::units::Span;

/// `[[stages]] type = "exec"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The program and its arguments, e.g. `["python3", "enrich.py"]`; not run through a
    /// shell.
    pub command: Vec<String>,
    /// The longest one record may take; past it the process is killed and restarted,
    /// and the record dead-lettered. Default 30s.
    #[serde(default)]
    pub timeout: Option<Span>,
    /// The working directory; the pipeline file's directory by default.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Environment variables added to the process's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}
