//! The [`Controller`] trait and the policies that implement it.
//!
//! A policy sees one [`Snapshot`] per tick and answers with [`Decision`]s. It is pure:
//! no threads, no clock, no I/O, so the same snapshots always give the same decisions,
//! whether a real pipeline or the simulator produced them.

mod ds2;
mod hill;
mod seda;
mod static_policy;
#[cfg(test)]
pub(crate) mod test_support;

pub use ds2::Ds2;
pub use hill::Hill;
pub use seda::Seda;
pub use static_policy::Static;

use crate::{Decision, Snapshot, WorkerStats};

/// A feedback policy: turns each window's measurements into knob changes.
///
/// # Example
///
/// A policy that adds a worker to any stage whose workers never wait for input:
///
/// ```
/// use brigade_controller::{Action, Controller, Decision, Snapshot};
///
/// struct Greedy;
///
/// impl Controller for Greedy {
///     fn name(&self) -> &str {
///         "greedy"
///     }
///
///     fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision> {
///         snapshot
///             .stages
///             .iter()
///             .enumerate()
///             .filter(|(_, s)| s.records_in > 0 && s.waiting_share() < 0.01)
///             .map(|(i, s)| {
///                 Decision::new(
///                     Action::SetWorkers { stage: i, workers: s.workers.target + 1 },
///                     format!("greedy: {} never waited for input", s.name),
///                 )
///             })
///             .collect()
///     }
/// }
///
/// assert!(Greedy.decide(&Snapshot::default()).is_empty());
/// ```
pub trait Controller: Send {
    /// The policy's name, as reports and decision logs show it.
    fn name(&self) -> &str;

    /// Decides what to change after a window. Called once per tick, in order.
    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision>;
}

impl<C: Controller + ?Sized> Controller for Box<C> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision> {
        (**self).decide(snapshot)
    }
}

/// The worker count stage `index` is converging to: its knob, or the pool's target
/// when the snapshot carries no knob for it.
fn current_workers(snapshot: &Snapshot, index: usize) -> usize {
    snapshot
        .knobs
        .stages
        .get(index)
        .map_or(snapshot.stages[index].workers.target, |knobs| knobs.workers)
}

/// `workers` kept within the pool's bounds, and never below 1.
fn clamp_workers(pool: &WorkerStats, workers: usize) -> usize {
    let min = pool.min.max(1);
    workers.clamp(min, pool.max.max(min))
}
