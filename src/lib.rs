//! brigade: an adaptive, self-tuning stage runtime for ETL and stream pipelines.
//!
//! This facade re-exports the parts a library user needs: the runtime
//! ([`runtime`], with [`Pipeline`] at its door) and the controller vocabulary and
//! policies ([`controller`]).

pub use brigade_controller as controller;
pub use brigade_runtime as runtime;
pub use brigade_runtime::{Pipeline, Report, Running};
