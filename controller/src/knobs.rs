//! The settings a controller turns ([`Knobs`]) and the operator's overrides on top of
//! them ([`Override`]).

use serde::{Deserialize, Serialize};

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
