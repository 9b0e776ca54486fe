//! What a controller asks for ([`Decision`]) and what became of it ([`DecisionRecord`]).

use serde::{Deserialize, Serialize};

/// One knob to set. Stage indices count from 0 in pipeline order; a stage's queue is
/// its input queue.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "knob", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Resize a stage's worker pool.
    SetWorkers {
        /// Stage index.
        stage: usize,
        /// New target worker count.
        workers: usize,
    },
    /// Change the capacity of a stage's input queue.
    SetQueueCapacity {
        /// Stage index.
        stage: usize,
        /// New capacity, records.
        capacity: usize,
    },
    /// Change how many records a batching sink takes per call.
    SetBatchSize {
        /// Stage index.
        stage: usize,
        /// Most records per call.
        size: usize,
    },
    /// Limit how many calls of a stage run at once (`None` lifts the limit).
    SetConcurrencyLimit {
        /// Stage index.
        stage: usize,
        /// Most calls at once.
        limit: Option<usize>,
    },
    /// Limit how many records per second a stage takes (`None` lifts the limit).
    SetRateLimit {
        /// Stage index.
        stage: usize,
        /// Records per second.
        per_second: Option<f64>,
    },
    /// Records weighing at least this go through the serial lane (`None` = lane off).
    SetSerialThreshold {
        /// Bytes.
        bytes: Option<u64>,
    },
    /// Cap bytes in flight (never above the operator's budget; `None` = the
    /// operator's budget).
    SetMemoryBudget {
        /// Bytes.
        bytes: Option<u64>,
    },
}

impl Action {
    /// The stage this action touches, if it touches one.
    pub fn stage(&self) -> Option<usize> {
        match *self {
            Action::SetWorkers { stage, .. }
            | Action::SetQueueCapacity { stage, .. }
            | Action::SetBatchSize { stage, .. }
            | Action::SetConcurrencyLimit { stage, .. }
            | Action::SetRateLimit { stage, .. } => Some(stage),
            Action::SetSerialThreshold { .. } | Action::SetMemoryBudget { .. } => None,
        }
    }
}

/// A knob change with the rule that fired and the numbers behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// What to set.
    pub action: Action,
    /// Why, in words an operator reads: the rule and its numbers.
    pub reason: String,
}

impl Decision {
    /// A decision to do `action` because of `reason`.
    pub fn new(action: Action, reason: impl Into<String>) -> Self {
        Self {
            action,
            reason: reason.into(),
        }
    }
}

/// What the runtime (or simulator) did with a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Applied as asked.
    Applied,
    /// Applied, but limited to this value (a pool's min/max, the operator's budget).
    Clamped {
        /// The value actually set.
        value: u64,
    },
    /// Not applied.
    Ignored {
        /// Why (a pin, an unknown stage, a knob the stage does not have).
        why: String,
    },
}

/// A decision as it went into the log: when, what, why, and what became of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The tick whose snapshot led to it.
    pub tick: u64,
    /// Seconds since the start when it was applied.
    pub at_s: f64,
    /// Who made it: the policy's name, or `operator`.
    pub by: String,
    /// The decision.
    pub decision: Decision,
    /// What became of it.
    pub outcome: Outcome,
}
