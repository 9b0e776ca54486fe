//! Pipeline-wide settings, and the errors a pipeline's description can have. Every
//! setting is checked when the pipeline starts, before any thread runs.

use std::time::Duration;

use brigade_controller::Controller;

use crate::context::DeadLetterHandler;
use crate::failure::RetryPolicy;

/// What to do with a record heavier than the whole memory budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Oversize {
    /// Wait until nothing else is in flight, then admit it alone (the default).
    #[default]
    Wait,
    /// Send it to the dead-letter output with an error naming its size and the budget.
    Refuse,
}

/// Why a pipeline cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Two stages share a name; names identify stages in metrics and decisions.
    #[error("two stages are named `{name}`: stage names must be unique")]
    DuplicateStage {
        /// The name.
        name: String,
    },
    /// A stage has an empty name.
    #[error("stage {index} has an empty name")]
    EmptyStageName {
        /// Its position in the pipeline.
        index: usize,
    },
    /// A stage's worker bounds are inconsistent.
    #[error("stage `{stage}`: workers must satisfy 1 <= min ({min}) <= initial ({initial}) <= max ({max})")]
    Workers {
        /// The stage.
        stage: String,
        /// Its minimum.
        min: usize,
        /// Its initial count.
        initial: usize,
        /// Its maximum.
        max: usize,
    },
    /// A setting that must be positive is zero.
    #[error("{what} must be greater than zero")]
    Zero {
        /// The setting, and the stage if it belongs to one.
        what: String,
    },
    /// A per-stage setting was given before any stage was added.
    #[error("`{option}` applies to the last stage added, but no stage was added yet")]
    NoStageYet {
        /// The builder method.
        option: &'static str,
    },
    /// The system refused a thread the pipeline needs to start; the threads already
    /// started were stopped.
    #[error("could not start the {thread} thread: {error}")]
    Spawn {
        /// Which thread (`control`, `source`, `serial lane`, or a stage's worker).
        thread: String,
        /// The system's error.
        error: String,
    },
}

/// The settings of a pipeline as a whole.
pub(crate) struct Config {
    pub tick: Duration,
    pub memory_budget: Option<u64>,
    pub serial_threshold: Option<u64>,
    pub oversize: Oversize,
    pub retry: RetryPolicy,
    pub history: usize,
    pub decision_log: usize,
    pub queue_capacity: usize,
    pub max_workers: usize,
    pub batch_size: usize,
    pub controller: Option<Box<dyn Controller>>,
    pub dead_letters: Option<DeadLetterHandler>,
    /// The first misuse of a per-stage method, reported at start.
    pub misuse: Option<BuildError>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            memory_budget: None,
            serial_threshold: None,
            oversize: Oversize::Wait,
            retry: RetryPolicy::default(),
            history: 600,
            decision_log: 1000,
            queue_capacity: 64,
            max_workers: 64,
            batch_size: 1,
            controller: None,
            dead_letters: None,
            misuse: None,
        }
    }
}

impl Config {
    pub(crate) fn validate(&self) -> Result<(), BuildError> {
        if let Some(misuse) = &self.misuse {
            return Err(misuse.clone());
        }
        let zero = |what: &str| {
            Err(BuildError::Zero {
                what: what.to_owned(),
            })
        };
        if self.tick.is_zero() {
            return zero("tick");
        }
        if self.memory_budget == Some(0) {
            return zero("memory budget");
        }
        if self.serial_threshold == Some(0) {
            return zero("serial threshold");
        }
        if self.retry.attempts == 0 {
            return zero("retry attempts");
        }
        if self.history == 0 {
            return zero("history");
        }
        if self.decision_log == 0 {
            return zero("decision log");
        }
        if self.batch_size == 0 {
            return zero("batch size");
        }
        Ok(())
    }
}
