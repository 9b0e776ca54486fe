//! The exec stage: a pool of long-lived external processes, one per worker, each
//! reading JSON lines on standard input and answering each on standard output.
//!
//! An [`ExecWorker`] is one worker's process. [`ExecWorker::call`] writes a record's
//! value as one JSON line and reads exactly one answer line: `{"out": v}`,
//! `{"outs": [v, …]}`, `{"error": "why"}` or `{"retry": "why"}` (the protocol is in
//! `docs/exec.md`). A process that exits or does not answer within the timeout is
//! killed, reaped and restarted; the record it held fails with the tail of its
//! standard error. A line that is not an answer fails that record alone.

mod answer;
mod check;
mod error;
mod launch;
mod process;
mod tail;
mod worker;

#[cfg(test)]
mod test;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::units::{Size, Span};

pub use error::{ExecError, ExecFailure};
pub use worker::ExecWorker;

/// `[[stages]] type = "exec"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// The program and its arguments, e.g. `["python3", "enrich.py"]`; not run through a
    /// shell. A program with a `/` is relative to the pipeline file's directory; a bare
    /// name is looked up on `PATH` (the one in `env` if set there).
    pub command: Vec<String>,
    /// The longest one record may take; past it the process is killed and restarted,
    /// and the record dead-lettered. Default 30s.
    #[serde(default)]
    pub timeout: Option<Span>,
    /// The working directory, relative to the pipeline file's directory; that directory
    /// by default.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Environment variables added to the process's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The longest answer line; a longer one fails its record. Default 64MiB.
    #[serde(default)]
    pub max_answer: Option<Size>,
}
