//! brigade-scenario: scenario files, format 1 (`docs/scenarios.md`), and the keyed
//! random draws of their model.
//!
//! A scenario describes a pipeline's load and resources: the source's rate and record
//! sizes, each stage's service times, contention, errors and fan-out, the machine, and
//! phases that change them over time. The simulator (brigade-sim) runs it in virtual
//! time; a synthetic run (brigade-synthetic, `brigade demo`) runs it for real on the
//! runtime. Both read it here, and both draw the same records from [`draws`], so
//! neither depends on the other.
//!
//! [`load`] and [`parse_str`] check everything the format promises (keys, types, units,
//! ranges, stage names) and fail with a [`ScenarioError`] that names the file, the line
//! and the key. [`units`] reads the durations and sizes the files are written in.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod draws;
mod error;
mod model;
mod parse;
pub mod rng;
#[cfg(test)]
mod test;

/// The units scenario files are written in (the controller's, shared with the CLI and
/// the daemon).
pub use brigade_controller::units;
pub use error::ScenarioError;
pub use model::{
    Coordination, Dist, Fleet, Giant, Machine, OnTimeout, Phase, RuntimeSettings, Scenario,
    SourceSpec, StageKind, StageSpec,
};
pub use parse::{load, parse_str};
