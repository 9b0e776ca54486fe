//! `static`: fixed knobs, the hand-tuned (or default) configuration every other policy
//! is measured against.

use crate::{Action, Controller, Decision, Knobs, Snapshot};

/// Sets the configured knobs at the first tick and never touches them again.
///
/// Knobs left unconfigured keep whatever the pipeline started with. `Static::new()`
/// changes nothing at all: the pipeline runs as built.
///
/// Its name says how it sets workers: `static`, `static:4` (4 per stage), or
/// `static:1,3` (per stage, in pipeline order).
///
/// ```
/// use brigade_controller::{Controller, Knobs, Snapshot, StageKnobs, Static};
///
/// let mut policy = Static::new().workers(4);
/// let snapshot = Snapshot {
///     knobs: Knobs { stages: vec![StageKnobs::default(); 2], ..Default::default() },
///     ..Default::default()
/// };
/// assert_eq!(policy.decide(&snapshot).len(), 2); // both stages to 4 workers
/// assert!(policy.decide(&snapshot).is_empty()); // and never again
/// ```
#[derive(Clone, Debug)]
pub struct Static {
    name: String,
    workers: Workers,
    queue_capacity: Option<usize>,
    batch_size: Option<usize>,
    memory_budget: Option<u64>,
    serial_threshold: Option<u64>,
    done: bool,
}

#[derive(Clone, Debug, Default)]
enum Workers {
    #[default]
    Keep,
    Uniform(usize),
    PerStage(Vec<usize>),
}

impl Default for Static {
    fn default() -> Self {
        Self {
            name: "static".to_owned(),
            workers: Workers::default(),
            queue_capacity: None,
            batch_size: None,
            memory_budget: None,
            serial_threshold: None,
            done: false,
        }
    }
}

impl Static {
    /// A policy that keeps the knobs the pipeline was built with.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same worker count for every stage.
    pub fn workers(mut self, workers: usize) -> Self {
        self.name = format!("static:{workers}");
        self.workers = Workers::Uniform(workers);
        self
    }

    /// A worker count per stage, in pipeline order; stages past the list keep theirs.
    pub fn workers_per_stage(mut self, workers: Vec<usize>) -> Self {
        let counts: Vec<_> = workers.iter().map(usize::to_string).collect();
        self.name = format!("static:{}", counts.join(","));
        self.workers = Workers::PerStage(workers);
        self
    }

    /// The same input-queue capacity for every stage.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = Some(capacity);
        self
    }

    /// The batch size of batching sinks.
    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = Some(size);
        self
    }

    /// A memory budget, bytes (never above the operator's).
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = Some(bytes);
        self
    }

    /// The serial-lane threshold, bytes.
    pub fn serial_threshold(mut self, bytes: u64) -> Self {
        self.serial_threshold = Some(bytes);
        self
    }

    fn wanted_workers(&self, stage: usize) -> Option<usize> {
        match &self.workers {
            Workers::Keep => None,
            Workers::Uniform(n) => Some(*n),
            Workers::PerStage(list) => list.get(stage).copied(),
        }
    }

    fn plan(&self, knobs: &Knobs) -> Vec<Decision> {
        let mut decisions = Vec::new();
        let mut push = |action: Action, what: String| {
            decisions.push(Decision::new(action, format!("static: configured {what}")));
        };
        for (stage, current) in knobs.stages.iter().enumerate() {
            if let Some(workers) = self.wanted_workers(stage) {
                if workers != current.workers {
                    push(
                        Action::SetWorkers { stage, workers },
                        format!("{workers} workers (was {})", current.workers),
                    );
                }
            }
            if let Some(capacity) = self.queue_capacity {
                if capacity != current.queue_capacity {
                    push(
                        Action::SetQueueCapacity { stage, capacity },
                        format!("queue capacity {capacity} (was {})", current.queue_capacity),
                    );
                }
            }
        }
        if let (Some(size), Some(last)) = (self.batch_size, knobs.stages.len().checked_sub(1)) {
            if size != knobs.stages[last].batch_size {
                push(
                    Action::SetBatchSize { stage: last, size },
                    format!("batch size {size}"),
                );
            }
        }
        if let Some(bytes) = self.memory_budget {
            if knobs.memory_budget != Some(bytes) {
                push(
                    Action::SetMemoryBudget { bytes: Some(bytes) },
                    format!("memory budget {bytes} B"),
                );
            }
        }
        if let Some(bytes) = self.serial_threshold {
            if knobs.serial_threshold != Some(bytes) {
                push(
                    Action::SetSerialThreshold { bytes: Some(bytes) },
                    format!("serial threshold {bytes} B"),
                );
            }
        }
        decisions
    }
}

impl Controller for Static {
    fn name(&self) -> &str {
        &self.name
    }

    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision> {
        if self.done {
            return Vec::new();
        }
        self.done = true;
        self.plan(&snapshot.knobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StageKnobs;

    fn snapshot(stages: usize) -> Snapshot {
        Snapshot {
            knobs: Knobs {
                stages: vec![StageKnobs::default(); stages],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_name_says_how_workers_are_set() {
        assert_eq!(Static::new().name(), "static");
        assert_eq!(Static::default().queue_capacity(8).name(), "static");
        assert_eq!(Static::new().workers(4).name(), "static:4");
        assert_eq!(
            Static::new().workers_per_stage(vec![1, 3]).name(),
            "static:1,3"
        );
    }

    #[test]
    fn keep_changes_nothing() {
        assert!(Static::new().decide(&snapshot(3)).is_empty());
    }

    #[test]
    fn sets_only_what_differs_once() {
        let mut policy = Static::new()
            .workers_per_stage(vec![1, 3])
            .batch_size(50)
            .memory_budget(1 << 20);
        let decisions = policy.decide(&snapshot(3));
        let actions: Vec<_> = decisions.iter().map(|d| d.action).collect();
        assert_eq!(
            actions,
            vec![
                Action::SetWorkers {
                    stage: 1,
                    workers: 3
                },
                Action::SetBatchSize { stage: 2, size: 50 },
                Action::SetMemoryBudget {
                    bytes: Some(1 << 20)
                },
            ]
        );
        assert!(decisions.iter().all(|d| d.reason.starts_with("static:")));
        assert!(policy.decide(&snapshot(3)).is_empty());
    }
}
