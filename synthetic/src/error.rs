//! What can go wrong with a synthetic run.

use brigade_runtime::BuildError;

/// Why a synthetic run could not start, or how it failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The runtime refused the pipeline built from the scenario (the runtime's error
    /// is the source).
    #[error("the scenario's pipeline cannot start")]
    Build(#[from] BuildError),
    /// The source went unread past its idle timeout and the scenario says that kills
    /// the run (`on_timeout = "fail"`).
    #[error(
        "source timeout: the source went unread for longer than its idle timeout of \
         {timeout_s:.3} s at {at_s:.3} s into the run, and on_timeout = \"fail\" ended the run"
    )]
    SourceTimeout {
        /// When it timed out, seconds since the start.
        at_s: f64,
        /// The idle timeout, seconds.
        timeout_s: f64,
    },
}
