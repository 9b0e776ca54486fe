//! Applying decisions and overrides: the one home of the rules that stand between a
//! policy's [`Action`] and the knob it turns.
//!
//! The runtime (real pools and queues) and the simulator (its model of them) each
//! implement [`Actuator`]: the bare setters, which clamp only to what the thing itself
//! allows (a pool's range, a thread the system refuses). Everything else is decided
//! here, once, by the [`Operator`]: an action naming a stage the pipeline lacks is
//! ignored; a pinned stage keeps its workers; a batch size goes only to a batching
//! sink; counts below one become one; a policy's memory budget never rises above the
//! operator's; and each [`Override`] has one meaning. So the simulator applies
//! decisions exactly as the runtime does, by construction.
//!
//! ```
//! use brigade_controller::{Action, Actuator, Operator, Outcome, Override};
//!
//! /// Two stages' worker counts, nothing else.
//! #[derive(Default)]
//! struct Pools([usize; 2]);
//!
//! impl Actuator for Pools {
//!     fn stages(&self) -> usize { 2 }
//!     fn stage_name(&self, stage: usize) -> String { format!("stage {stage}") }
//!     fn takes_batches(&self, _: usize) -> bool { false }
//!     fn set_workers(&mut self, stage: usize, workers: usize) -> Result<usize, String> {
//!         self.0[stage] = workers.min(8);
//!         Ok(self.0[stage])
//!     }
//!     fn set_queue_capacity(&mut self, _: usize, _: usize) {}
//!     fn set_batch_size(&mut self, _: usize, _: usize) {}
//!     fn set_concurrency_limit(&mut self, _: usize, _: Option<usize>) {}
//!     fn set_rate_limit(&mut self, _: usize, _: Option<f64>) {}
//!     fn set_serial_threshold(&mut self, _: Option<u64>) {}
//!     fn set_memory_budget(&mut self, _: Option<u64>) {}
//! }
//!
//! let mut pools = Pools::default();
//! let mut operator = Operator::new(2, None);
//! let grow = Action::SetWorkers { stage: 1, workers: 12 };
//! assert_eq!(operator.apply(&grow, &mut pools), Outcome::Clamped { value: 8 });
//! operator.operate(Override::PinWorkers { stage: 1, workers: 2 }, &mut pools);
//! assert!(matches!(operator.apply(&grow, &mut pools), Outcome::Ignored { .. }));
//! assert_eq!(pools.0[1], 2);
//! ```

use crate::decision::{Action, Outcome};
use crate::knobs::Override;

/// The knobs of a running pipeline, real or simulated: the setters [`Operator`] calls
/// once it has decided that an action applies.
///
/// Stage indices given to these methods exist; counts are at least one.
pub trait Actuator {
    /// How many stages the pipeline has.
    fn stages(&self) -> usize;
    /// A stage's name, for the reasons of ignored actions.
    fn stage_name(&self, stage: usize) -> String;
    /// Whether the stage is a batching sink (the only stage that takes a batch size).
    fn takes_batches(&self, stage: usize) -> bool;
    /// Sets the stage's target pool size; the count set (clamped to the pool's range),
    /// or why nothing was set (the system refused a thread).
    fn set_workers(&mut self, stage: usize, workers: usize) -> Result<usize, String>;
    /// Sets the capacity, in records, of the stage's input queue.
    fn set_queue_capacity(&mut self, stage: usize, capacity: usize);
    /// Sets the most records per call of a batching sink.
    fn set_batch_size(&mut self, stage: usize, size: usize);
    /// Sets the most calls of the stage in progress at once (`None`: one per worker).
    fn set_concurrency_limit(&mut self, stage: usize, limit: Option<usize>);
    /// Sets the most records per second the stage takes (`None`: unlimited).
    fn set_rate_limit(&mut self, stage: usize, per_second: Option<f64>);
    /// Sets the size from which records take the serial lane (`None`: no lane).
    fn set_serial_threshold(&mut self, bytes: Option<u64>);
    /// Sets the memory budget in force (`None`: no cap).
    fn set_memory_budget(&mut self, bytes: Option<u64>);
}

/// The operator's standing orders (pins, the pause, the memory budget cap), and the
/// rules by which actions and overrides are applied under them.
#[derive(Clone, Debug, PartialEq)]
pub struct Operator {
    pins: Vec<bool>,
    paused: bool,
    budget: Option<u64>,
}

/// An override that changed a knob, as it goes into the decision log.
#[derive(Clone, Debug, PartialEq)]
pub struct Operated {
    /// The knob change the override made.
    pub action: Action,
    /// Why, in the log's words.
    pub reason: String,
    /// What became of it.
    pub outcome: Outcome,
}

impl Operator {
    /// No pins, not paused, the operator's memory budget `budget` (`None`: no cap).
    pub fn new(stages: usize, budget: Option<u64>) -> Operator {
        Operator {
            pins: vec![false; stages],
            paused: false,
            budget,
        }
    }

    /// Whether the operator holds `stage`'s workers.
    pub fn is_pinned(&self, stage: usize) -> bool {
        self.pins.get(stage) == Some(&true)
    }

    /// Whether the policy is paused (windows still close; it is not consulted).
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The operator's memory budget: policies may set less, never more.
    pub fn budget(&self) -> Option<u64> {
        self.budget
    }

    /// Applies a policy's action: as [`configure`](Self::configure), but a pinned
    /// stage keeps its workers.
    pub fn apply(&self, action: &Action, to: &mut impl Actuator) -> Outcome {
        match *action {
            Action::SetWorkers { stage, .. } if self.is_pinned(stage) => Outcome::Ignored {
                why: format!("stage {stage} is pinned by the operator"),
            },
            _ => self.configure(action, to),
        }
    }

    /// Applies an action past any pin, as a configuration does before a run starts:
    /// an unknown stage or a batch size for a stage that takes none is ignored, a
    /// count below one set as one, a memory budget held under the operator's.
    pub fn configure(&self, action: &Action, to: &mut impl Actuator) -> Outcome {
        if let Some(stage) = action.stage() {
            if stage >= to.stages() {
                return Outcome::Ignored {
                    why: format!("no stage {stage}: the pipeline has {} stages", to.stages()),
                };
            }
        }
        let exact_or_clamped = |asked: u64, set: u64| {
            if asked == set {
                Outcome::Applied
            } else {
                Outcome::Clamped { value: set }
            }
        };
        match *action {
            Action::SetWorkers { stage, workers } => match to.set_workers(stage, workers.max(1)) {
                Ok(set) => exact_or_clamped(workers as u64, set as u64),
                Err(why) => Outcome::Ignored { why },
            },
            Action::SetQueueCapacity { stage, capacity } => {
                to.set_queue_capacity(stage, capacity.max(1));
                exact_or_clamped(capacity as u64, capacity.max(1) as u64)
            }
            Action::SetBatchSize { stage, size } => {
                if !to.takes_batches(stage) {
                    return Outcome::Ignored {
                        why: format!("{} does not take batches", to.stage_name(stage)),
                    };
                }
                to.set_batch_size(stage, size.max(1));
                exact_or_clamped(size as u64, size.max(1) as u64)
            }
            Action::SetConcurrencyLimit { stage, limit } => {
                to.set_concurrency_limit(stage, limit.filter(|&limit| limit > 0));
                Outcome::Applied
            }
            Action::SetRateLimit { stage, per_second } => {
                to.set_rate_limit(stage, per_second);
                Outcome::Applied
            }
            Action::SetSerialThreshold { bytes } => {
                to.set_serial_threshold(bytes);
                Outcome::Applied
            }
            Action::SetMemoryBudget { bytes } => {
                let set = match (bytes, self.budget) {
                    (Some(asked), Some(cap)) => Some(asked.min(cap)),
                    (Some(asked), None) => Some(asked),
                    (None, cap) => cap,
                };
                to.set_memory_budget(set);
                match (bytes, set) {
                    (Some(asked), Some(set)) if asked != set => Outcome::Clamped { value: set },
                    _ => Outcome::Applied,
                }
            }
        }
    }

    /// Carries out an operator's override at once. Returns the knob change it made,
    /// for the log, when it made one:
    ///
    /// - `PinWorkers` sets the stage's workers (past an earlier pin) and holds them:
    ///   the policy's worker changes to that stage are then ignored.
    /// - `Unpin` gives the stage back to the policy.
    /// - `Pause` stops consulting the policy; `Resume` consults it again.
    /// - `SetBudget` sets the memory budget in force, which the policy may then lower
    ///   but never raise above it (`None` removes the cap).
    ///
    /// Unpin, pause and resume change no knob and return `None`.
    pub fn operate(&mut self, change: Override, to: &mut impl Actuator) -> Option<Operated> {
        match change {
            Override::PinWorkers { stage, workers } => {
                let action = Action::SetWorkers { stage, workers };
                let outcome = self.configure(&action, to);
                let reason = match self.pins.get_mut(stage) {
                    Some(pin) => {
                        *pin = true;
                        format!("operator pinned {workers} workers")
                    }
                    None => "operator pin".into(),
                };
                Some(Operated {
                    action,
                    reason,
                    outcome,
                })
            }
            Override::Unpin { stage } => {
                if let Some(pin) = self.pins.get_mut(stage) {
                    *pin = false;
                }
                None
            }
            Override::Pause => {
                self.paused = true;
                None
            }
            Override::Resume => {
                self.paused = false;
                None
            }
            Override::SetBudget { bytes } => {
                self.budget = bytes;
                to.set_memory_budget(bytes);
                Some(Operated {
                    action: Action::SetMemoryBudget { bytes },
                    reason: "operator set the memory budget".into(),
                    outcome: Outcome::Applied,
                })
            }
        }
    }
}

#[cfg(test)]
mod test;
