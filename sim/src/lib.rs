//! brigade-sim: the discrete-event simulator.
//!
//! It takes scenarios (format 1, `docs/scenarios.md`, read by brigade-scenario), models a pipeline's load and
//! resources in virtual time, and drives any policy through the same
//! [`Snapshot`](brigade_controller::Snapshot)/[`Decision`](brigade_controller::Decision)
//! interface as the real runtime, thousands of times faster than real time. It does
//! not depend on the runtime: both speak only the controller's vocabulary.
//!
//! - [`Simulation`]: one policy through one scenario, tick by tick, with the
//!   operator's overrides on top;
//! - [`Replay`]: a simulation paced by the wall clock, for viewers that show it live;
//! - [`oracle`]: the best static configuration, found by search and verified by
//!   simulation;
//! - [`experiment`]: policies side by side with the oracle, as `brigade sim` reports
//!   them;
//! - [`seeds`]: an experiment repeated over other seeds, each against its own oracle,
//!   to tell a policy's result from one seed's luck;
//! - [`report`] and [`render`]: a run's figures, and the table, JSON and CSV that
//!   `brigade sim` prints of them;
//! - [`plot`]: runs over time as an SVG file;
//! - the engine (private): the discrete-event model itself.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod engine;
pub mod experiment;
pub mod fleet;
pub mod oracle;
pub mod plot;
pub mod render;
mod replay;
pub mod report;
pub mod seeds;
mod simulation;

pub use replay::{Replay, MAX_TICKS_PER_POLL};
pub use simulation::{RunEnd, RunResult, Simulation, TickOutput, TickSample};
