//! Scenario files, format 1 (`SCENARIOS.md`): the parsed model, [`units`], which reads
//! the durations and sizes the files are written in, and [`ScenarioError`], which says
//! where a file is wrong.

mod error;
mod model;
pub mod units;

pub use error::ScenarioError;
pub use model::{
    Dist, Giant, Machine, OnTimeout, Phase, RuntimeSettings, Scenario, SourceSpec, StageKind,
    StageSpec,
};
