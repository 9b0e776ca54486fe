//! What can go wrong starting an exec process or running one record through it.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::Record;

/// An error of the exec stage: starting its process, or one record's call.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// `command` names no program.
    #[error("exec stage: `command` is empty")]
    EmptyCommand,
    /// A bare program name that is on no directory of `PATH`.
    #[error("program `{program}` not found on PATH")]
    NotFound {
        /// The name looked up.
        program: String,
    },
    /// The program's path is not an executable file.
    #[error("program {path} is not an executable file")]
    NotExecutable {
        /// The resolved path.
        path: PathBuf,
    },
    /// The working directory is not a directory.
    #[error("working directory {path} is not a directory")]
    NoDirectory {
        /// The resolved directory.
        path: PathBuf,
    },
    /// The process (or a thread reading it) could not be started.
    #[error("cannot start {program}: {source}")]
    Spawn {
        /// The resolved program.
        program: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The process answered `{"error": …}` for the record.
    #[error("the program answered error: {0}")]
    Answered(String),
    /// The process answered `{"retry": …}` for the record.
    #[error("the program asked for a retry: {0}")]
    Retry(String),
    /// The answer line is not an answer (not JSON, not an object with exactly one of
    /// `out`, `outs`, `error`, `retry`).
    #[error("the program's answer is not an answer ({reason}): {excerpt}")]
    BadAnswer {
        /// What is wrong with it.
        reason: String,
        /// Its start.
        excerpt: String,
    },
    /// The answer line is longer than `max_answer`.
    #[error("the program's answer is longer than {limit} bytes")]
    AnswerTooLong {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The process exited (or closed its standard output) while it held the record.
    #[error("process {how}; stderr tail: {stderr}")]
    Exited {
        /// `exited with status 3`, `was killed by signal 11`.
        how: String,
        /// The last few KiB of its standard error.
        stderr: String,
    },
    /// The process gave no answer within the timeout; it was killed.
    #[error("no answer within {after:?}; stderr tail: {stderr}")]
    Timeout {
        /// The timeout.
        after: Duration,
        /// The last few KiB of its standard error.
        stderr: String,
    },
}

impl ExecError {
    /// Whether the record may succeed later: the program asked for a retry, or the
    /// process could not be (re)started, which is no fault of the record.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ExecError::Retry(_)
                | ExecError::NotFound { .. }
                | ExecError::NotExecutable { .. }
                | ExecError::NoDirectory { .. }
                | ExecError::Spawn { .. }
        )
    }
}

/// A record that failed in the exec stage, handed back with why.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ExecFailure {
    /// The record, as it came in.
    pub record: Record,
    /// Why it failed.
    #[source]
    pub error: ExecError,
    /// Whether the process was killed or had died, and a new one was started.
    pub restarted: bool,
}

impl ExecFailure {
    /// Whether the record may succeed if tried again ([`ExecError::is_transient`]).
    pub fn is_transient(&self) -> bool {
        self.error.is_transient()
    }
}
