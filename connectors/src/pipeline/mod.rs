//! Pipeline files: a TOML file naming a source, a chain of stages and a sink, read
//! into a validated description ([`PipelineSpec`]) and checked against the environment
//! ([`check_environment`]). `docs/pipelines.md` describes every key.
//!
//! Every error names the file, line, column and key, and says what was expected:
//! `orders.toml:14:1: sink: unknown key \`tabel\` for a \`file\` sink; expected one of:
//! path`. `${NAME}` in a string value is the environment variable `NAME`.

mod build;
mod environment;
mod error;
mod interpolate;
mod probe;
mod read;
mod spec;
mod suggest;
#[cfg(test)]
mod test;

use std::path::Path;

pub use build::{build, BuildError, Built, Figures, Overrides, DECODE_STAGE, READ_STAGE};
pub use environment::check_environment;
pub use error::{Errors, PipelineError};
pub use spec::{
    Attempts, CheckpointSettings, PipelineSpec, RetrySettings, RuntimeSettings, SinkConfig,
    SinkSpec, SourceConfig, SourceSpec, StageKind, StageSettings, StageSpec,
};

/// Reads and checks the pipeline file at `path`, interpolating `${NAME}` from the
/// process's environment. Errors name the file as `path.display()` shows it.
pub fn load(path: &Path) -> Result<PipelineSpec, Errors> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(err) => Err(Errors(vec![PipelineError {
            file: path.display().to_string(),
            at: None,
            key: None,
            message: format!("cannot read the pipeline file: {err}"),
        }])),
    }
}

/// Checks `text` as the pipeline file at `path` (which names it in errors and gives
/// the directory relative paths resolve against), interpolating `${NAME}` from the
/// process's environment.
pub fn parse(text: &str, path: &Path) -> Result<PipelineSpec, Errors> {
    read::read(text, path, &interpolate::from_process)
}
