//! Scenario files, format 1 (`SCENARIOS.md`): the parsed model.

mod model;

pub use model::{
    Dist, Giant, Machine, OnTimeout, Phase, RuntimeSettings, Scenario, SourceSpec, StageKind,
    StageSpec,
};
