//! Scenario files, format 1 (`docs/scenarios.md`): a pipeline's load and resources, read
//! into a [`Scenario`] that the simulator runs in virtual time.
//!
//! [`load`] and [`parse_str`] check everything the format promises (keys, types, units,
//! ranges, stage names) and fail with a [`ScenarioError`] that names the file, the line
//! and the key. [`units`] reads the durations and sizes the files are written in.

mod error;
mod model;
mod parse;
#[cfg(test)]
mod test;

/// The units scenario files are written in (the controller's, shared with the CLI and
/// the daemon).
pub use brigade_controller::units;
pub use error::ScenarioError;
pub use model::{
    Dist, Giant, Machine, OnTimeout, Phase, RuntimeSettings, Scenario, SourceSpec, StageKind,
    StageSpec,
};
pub use parse::{load, parse_str};
