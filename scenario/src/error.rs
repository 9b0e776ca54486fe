//! What can be wrong with a scenario file, and where.

use thiserror::Error;

/// A scenario file that could not be read, is not TOML, or breaks format 1.
///
/// Every variant names the file as it was given; the others also name the 1-based line
/// when it is known (it is not for a key missing from the top level). Key paths count
/// array entries from 0: `stage[1]` is the second `[[stage]]`.
///
/// Displayed as
///
/// ```text
/// scenarios/x.toml:14: key `stage[1].kind`: expected "cpu" or "io", got "gpu"
/// ```
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file, as given.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{file}{}: not valid TOML: {message}", at(.line))]
    Syntax {
        /// The file, as given.
        file: String,
        /// 1-based line of the fault, when known.
        line: Option<usize>,
        /// The TOML parser's description.
        message: String,
    },
    /// Valid TOML that breaks the scenario format.
    #[error("{file}{}: key `{key}`: {message}", at(.line))]
    Invalid {
        /// The file, as given.
        file: String,
        /// 1-based line of the key (or of its table, for a missing key), when known.
        line: Option<usize>,
        /// Path of the key, such as `stage[2].service.median` or `source.rate`.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ScenarioError {
    /// The file, as given.
    pub fn file(&self) -> &str {
        match self {
            Self::Io { file, .. } | Self::Syntax { file, .. } | Self::Invalid { file, .. } => file,
        }
    }

    /// The 1-based line, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Io { .. } => None,
            Self::Syntax { line, .. } | Self::Invalid { line, .. } => *line,
        }
    }

    /// The key path, for a file that breaks the format.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } => Some(key),
            Self::Io { .. } | Self::Syntax { .. } => None,
        }
    }
}

/// `:line`, or nothing when the line is unknown.
fn at(line: &Option<usize>) -> String {
    line.map(|line| format!(":{line}")).unwrap_or_default()
}
