//! brigade-controller: the vocabulary every part of brigade speaks, and the policies.
//!
//! The runtime (real threads) and the simulator (virtual time) both close a metrics
//! window every tick into a [`Snapshot`], hand it to a [`Controller`], and apply the
//! [`Decision`]s it returns to their [`Knobs`], with the operator's [`Override`]s on
//! top, both through one [`Operator`], so that they apply them alike. The dashboard
//! and the daemon read the same Snapshots and [`DecisionRecord`]s.
//!
//! This crate is pure: no threads, no clock, no I/O. A policy given the same snapshots
//! makes the same decisions, which is what lets a simulation say something true about a
//! real run. Everything here is serde-serializable.
//!
//! The policies: [`Static`] (fixed knobs) and three published baselines, [`Seda`]
//! (queue-length thread pools), [`Ds2`] (rate model with Flink's utilisation band) and
//! [`Hill`] (hill climbing on throughput). [`from_name`] builds one from its name.
//!
//! [`units`] reads and writes durations and sizes as people write them, for scenario
//! files, the command line and the daemon alike.
//!
//! ```
//! use brigade_controller::{Action, Controller, Knobs, Snapshot, StageKnobs, Static};
//!
//! let snapshot = Snapshot {
//!     knobs: Knobs { stages: vec![StageKnobs::default()], ..Default::default() },
//!     ..Default::default()
//! };
//! let decisions = Static::new().workers(3).decide(&snapshot);
//! assert_eq!(decisions[0].action, Action::SetWorkers { stage: 0, workers: 3 });
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod decision;
pub mod fleet;
mod histogram;
mod knobs;
mod operator;
mod policy;
mod snapshot;
pub mod units;

pub use decision::{Action, Decision, DecisionRecord, Outcome};
pub use histogram::{HistogramData, HistogramError};
pub use knobs::{Knobs, Override, StageKnobs};
pub use operator::{Actuator, Operated, Operator};
pub use policy::{
    from_name, Adaptive, Controller, Ds2, Hill, Seda, Static, Tuning, UnknownPolicy, POLICY_NAMES,
};
pub use snapshot::{
    GlobalStats, GroupStats, Progress, QueueStats, SerialStats, Snapshot, SourceStats, SpillStats,
    StageRole, StageStats, Totals, WorkerStats,
};

/// Re-exported so users of [`HistogramData::decode`] need not name the crate.
pub use hdrhistogram::Histogram;
