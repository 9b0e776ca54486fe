//! The settings a controller turns ([`Knobs`]) and the operator's overrides on top of
//! them ([`Override`]).

use serde::{Deserialize, Serialize};

use crate::decision::Action;

/// One stage's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageKnobs {
    /// Target size of the worker pool.
    pub workers: usize,
    /// Capacity of the stage's input queue, in records.
    pub queue_capacity: usize,
    /// Most records per call of a batching sink (1 for every other stage).
    pub batch_size: usize,
    /// Most calls of this stage in progress at once, independent of workers; `None` =
    /// as many as there are workers.
    pub concurrency_limit: Option<usize>,
    /// Most records per second this stage may take; `None` = unlimited.
    pub rate_limit: Option<f64>,
}

impl Default for StageKnobs {
    fn default() -> Self {
        Self {
            workers: 1,
            queue_capacity: 64,
            batch_size: 1,
            concurrency_limit: None,
            rate_limit: None,
        }
    }
}

/// Every setting of a pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Knobs {
    /// Per stage, in pipeline order.
    pub stages: Vec<StageKnobs>,
    /// Records weighing at least this many bytes go through the serial lane; `None` =
    /// no serial lane.
    pub serial_threshold: Option<u64>,
    /// Most bytes admitted and not yet finished; `None` = no cap.
    pub memory_budget: Option<u64>,
}

/// Why an [`Action`] could not be applied to [`Knobs`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KnobError {
    /// The action names a stage the pipeline does not have.
    #[error("no stage {stage}: the pipeline has {stages} stages")]
    NoSuchStage {
        /// The index the action gave.
        stage: usize,
        /// How many stages there are.
        stages: usize,
    },
    /// A count that must be at least 1 was 0.
    #[error("{what} must be at least 1")]
    Zero {
        /// Which setting.
        what: &'static str,
    },
}

impl Knobs {
    /// Sets what `action` sets. Returns whether anything changed.
    pub fn apply(&mut self, action: &Action) -> Result<bool, KnobError> {
        fn stage(list: &mut [StageKnobs], index: usize) -> Result<&mut StageKnobs, KnobError> {
            let stages = list.len();
            list.get_mut(index).ok_or(KnobError::NoSuchStage {
                stage: index,
                stages,
            })
        }
        fn set<T: PartialEq>(slot: &mut T, value: T) -> bool {
            let changed = *slot != value;
            *slot = value;
            changed
        }
        fn nonzero(value: usize, what: &'static str) -> Result<usize, KnobError> {
            if value == 0 {
                Err(KnobError::Zero { what })
            } else {
                Ok(value)
            }
        }
        Ok(match *action {
            Action::SetWorkers { stage: i, workers } => {
                let workers = nonzero(workers, "workers")?;
                set(&mut stage(&mut self.stages, i)?.workers, workers)
            }
            Action::SetQueueCapacity { stage: i, capacity } => {
                let capacity = nonzero(capacity, "queue capacity")?;
                set(&mut stage(&mut self.stages, i)?.queue_capacity, capacity)
            }
            Action::SetBatchSize { stage: i, size } => {
                let size = nonzero(size, "batch size")?;
                set(&mut stage(&mut self.stages, i)?.batch_size, size)
            }
            Action::SetConcurrencyLimit { stage: i, limit } => {
                if let Some(limit) = limit {
                    nonzero(limit, "concurrency limit")?;
                }
                set(&mut stage(&mut self.stages, i)?.concurrency_limit, limit)
            }
            Action::SetRateLimit {
                stage: i,
                per_second,
            } => set(&mut stage(&mut self.stages, i)?.rate_limit, per_second),
            Action::SetSerialThreshold { bytes } => set(&mut self.serial_threshold, bytes),
            Action::SetMemoryBudget { bytes } => set(&mut self.memory_budget, bytes),
        })
    }
}

/// What the operator does on top of the controller (dashboard keys, daemon endpoints).
///
/// Overrides apply at once; the controller sees their effect in the next
/// [`Snapshot`](crate::Snapshot) and plans around it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Override {
    /// Hold a stage at this many workers; the controller's changes to it are ignored.
    PinWorkers {
        /// Stage index.
        stage: usize,
        /// Worker count to hold.
        workers: usize,
    },
    /// Give a pinned stage back to the controller.
    Unpin {
        /// Stage index.
        stage: usize,
    },
    /// Stop consulting the controller; the knobs stay where they are.
    Pause,
    /// Consult the controller again.
    Resume,
    /// Set the operator's memory budget (`None` removes the cap). Policies may set a
    /// lower budget, never a higher one.
    SetBudget {
        /// Bytes, or `None` for no cap.
        bytes: Option<u64>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_stages() -> Knobs {
        Knobs {
            stages: vec![StageKnobs::default(), StageKnobs::default()],
            ..Default::default()
        }
    }

    #[test]
    fn apply_reports_change() {
        let mut knobs = two_stages();
        let action = Action::SetWorkers {
            stage: 1,
            workers: 4,
        };
        assert_eq!(knobs.apply(&action), Ok(true));
        assert_eq!(knobs.stages[1].workers, 4);
        assert_eq!(knobs.apply(&action), Ok(false));
    }

    #[test]
    fn apply_rejects_bad_stage_and_zero() {
        let mut knobs = two_stages();
        assert_eq!(
            knobs.apply(&Action::SetWorkers {
                stage: 5,
                workers: 1
            }),
            Err(KnobError::NoSuchStage {
                stage: 5,
                stages: 2
            })
        );
        assert_eq!(
            knobs.apply(&Action::SetQueueCapacity {
                stage: 0,
                capacity: 0
            }),
            Err(KnobError::Zero {
                what: "queue capacity"
            })
        );
        assert_eq!(knobs, two_stages());
    }

    #[test]
    fn override_serializes_with_tag() {
        let json = serde_json::to_string(&Override::PinWorkers {
            stage: 2,
            workers: 3,
        })
        .unwrap();
        assert_eq!(json, r#"{"op":"pin_workers","stage":2,"workers":3}"#);
    }
}
