//! Scenario files, format 1 (`SCENARIOS.md`): the parsed model, and [`units`], which
//! reads the durations and sizes the files are written in.

mod model;
pub mod units;

pub use model::{
    Dist, Giant, Machine, OnTimeout, Phase, RuntimeSettings, Scenario, SourceSpec, StageKind,
    StageSpec,
};
