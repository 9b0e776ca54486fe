//! What is wrong with a pipeline file: each error names the file, the line and column,
//! and the key, and says what was expected.

use std::fmt;

use thiserror::Error;

/// One thing wrong with a pipeline file.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub struct PipelineError {
    /// The file as it was named.
    pub file: String,
    /// 1-based line and column (in characters); `None` when the file could not be read.
    pub at: Option<(usize, usize)>,
    /// The key at fault as a path (`sink.table`, `stage.enrich.workers.min`); `None` for
    /// a syntax error or an unreadable file.
    pub key: Option<String>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for PipelineError {
    /// `FILE:LINE:COL: KEY: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, column)) = self.at {
            write!(f, ":{line}:{column}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every error found in a pipeline file, in the order of the file (at least one).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub struct Errors(pub Vec<PipelineError>);

impl fmt::Display for Errors {
    /// One error a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}
