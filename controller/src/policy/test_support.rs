//! Hand-made [`Snapshot`]s for policy tests, and a loop that drives a policy against a
//! model of a pipeline.
//!
//! ```text
//! let snapshot = SnapshotBuilder::new()
//!     .source_rate(1000.0)
//!     .stage(StageBuilder::new("parse").workers(4).busy(1.0).records(800, 800))
//!     .stage(StageBuilder::new("write").sink().workers(2).queue(57.0, 64))
//!     .build();
//! ```
//!
//! Shares (`busy`, `waiting`, `blocked`) are fractions of the stage's worker-seconds
//! (workers × window), so `busy(1.0)` with 4 workers over a 1 s window is 4 busy
//! seconds. Knobs follow the stages: each stage's `workers` is both its live and its
//! target count, and its queue capacity is the knob's.

use crate::{Action, Controller, Decision, Knobs, Snapshot, StageKnobs, StageRole, StageStats};

/// One stage of a hand-made snapshot. Defaults: a transform with 1 worker (bounds
/// 1..=64, not pinned), an empty queue of capacity 64, no records, no time accounted.
#[derive(Clone, Debug)]
pub(crate) struct StageBuilder {
    name: String,
    role: StageRole,
    workers: usize,
    min: usize,
    max: usize,
    pinned: bool,
    mean_depth: f64,
    max_depth: Option<u64>,
    capacity: u64,
    busy: f64,
    waiting: f64,
    blocked: f64,
    records_in: u64,
    records_out: u64,
}

impl StageBuilder {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            role: StageRole::Transform,
            workers: 1,
            min: 1,
            max: 64,
            pinned: false,
            mean_depth: 0.0,
            max_depth: None,
            capacity: 64,
            busy: 0.0,
            waiting: 0.0,
            blocked: 0.0,
            records_in: 0,
            records_out: 0,
        }
    }

    /// Makes this stage a (record-at-a-time) sink.
    pub(crate) fn sink(mut self) -> Self {
        self.role = StageRole::Sink;
        self
    }

    /// Live and target worker count.
    pub(crate) fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// The pool's bounds.
    pub(crate) fn bounds(mut self, min: usize, max: usize) -> Self {
        self.min = min;
        self.max = max;
        self
    }

    /// Pinned by the operator.
    pub(crate) fn pinned(mut self) -> Self {
        self.pinned = true;
        self
    }

    /// Mean input-queue depth and capacity; the max depth is the mean rounded up
    /// unless [`max_depth`](Self::max_depth) says otherwise.
    pub(crate) fn queue(mut self, mean_depth: f64, capacity: u64) -> Self {
        self.mean_depth = mean_depth;
        self.capacity = capacity;
        self
    }

    /// Most records waiting at once.
    pub(crate) fn max_depth(mut self, depth: u64) -> Self {
        self.max_depth = Some(depth);
        self
    }

    /// Share of worker-seconds spent inside the stage's function.
    pub(crate) fn busy(mut self, share: f64) -> Self {
        self.busy = share;
        self
    }

    /// Share of worker-seconds spent waiting for input.
    pub(crate) fn waiting(mut self, share: f64) -> Self {
        self.waiting = share;
        self
    }

    /// Share of worker-seconds spent blocked on output.
    pub(crate) fn blocked(mut self, share: f64) -> Self {
        self.blocked = share;
        self
    }

    /// Records taken in and finished during the window.
    pub(crate) fn records(mut self, records_in: u64, records_out: u64) -> Self {
        self.records_in = records_in;
        self.records_out = records_out;
        self
    }

    pub(crate) fn build(&self, window_s: f64) -> (StageStats, StageKnobs) {
        let worker_s = self.workers as f64 * window_s;
        let mut stats = StageStats {
            name: self.name.clone(),
            role: self.role,
            records_in: self.records_in,
            records_out: self.records_out,
            busy_s: self.busy * worker_s,
            wait_in_s: self.waiting * worker_s,
            wait_out_s: self.blocked * worker_s,
            worker_s,
            ..StageStats::default()
        };
        stats.workers.live = self.workers;
        stats.workers.target = self.workers;
        stats.workers.min = self.min;
        stats.workers.max = self.max;
        stats.workers.pinned = self.pinned;
        stats.queue.mean_depth = self.mean_depth;
        stats.queue.max_depth = self.max_depth.unwrap_or(self.mean_depth.ceil() as u64);
        stats.queue.capacity = self.capacity;
        let knobs = StageKnobs {
            workers: self.workers,
            queue_capacity: self.capacity as usize,
            ..StageKnobs::default()
        };
        (stats, knobs)
    }
}

/// A hand-made snapshot. Defaults: tick 1, a 1 s window, no stages, a silent source.
#[derive(Clone, Debug)]
pub(crate) struct SnapshotBuilder {
    tick: u64,
    window_s: f64,
    source_rate: f64,
    stages: Vec<StageBuilder>,
}

impl SnapshotBuilder {
    pub(crate) fn new() -> Self {
        Self {
            tick: 1,
            window_s: 1.0,
            source_rate: 0.0,
            stages: Vec::new(),
        }
    }

    /// The window number.
    pub(crate) fn tick(mut self, tick: u64) -> Self {
        self.tick = tick;
        self
    }

    /// The window's length, seconds.
    pub(crate) fn window(mut self, window_s: f64) -> Self {
        self.window_s = window_s;
        self
    }

    /// Records per second the source read.
    pub(crate) fn source_rate(mut self, rate: f64) -> Self {
        self.source_rate = rate;
        self
    }

    /// Appends a stage (pipeline order: the sink last).
    pub(crate) fn stage(mut self, stage: StageBuilder) -> Self {
        self.stages.push(stage);
        self
    }

    pub(crate) fn build(&self) -> Snapshot {
        let (stages, knobs): (Vec<_>, Vec<_>) =
            self.stages.iter().map(|s| s.build(self.window_s)).unzip();
        let mut snapshot = Snapshot {
            tick: self.tick,
            at_s: self.tick as f64 * self.window_s,
            window_s: self.window_s,
            stages,
            knobs: Knobs {
                stages: knobs,
                ..Knobs::default()
            },
            ..Snapshot::default()
        };
        snapshot.global.source.rate = self.source_rate;
        snapshot.global.source.records = (self.source_rate * self.window_s).round() as u64;
        snapshot
    }
}

/// The `SetWorkers` actions among `decisions`, as (stage, workers) pairs.
pub(crate) fn set_workers(decisions: &[Decision]) -> Vec<(usize, usize)> {
    decisions
        .iter()
        .filter_map(|d| match d.action {
            Action::SetWorkers { stage, workers } => Some((stage, workers)),
            _ => None,
        })
        .collect()
}

/// The `(stage, per_second)` of every `SetRateLimit` among `decisions`.
pub(crate) fn rate_limits(decisions: &[Decision]) -> Vec<(usize, Option<f64>)> {
    decisions
        .iter()
        .filter_map(|d| match d.action {
            Action::SetRateLimit { stage, per_second } => Some((stage, per_second)),
            _ => None,
        })
        .collect()
}

/// Runs `policy` for ticks 1..=`ticks` against a model of a pipeline: each tick,
/// `model` builds the window's snapshot from the current worker counts (its tick is
/// set here), and the policy's `SetWorkers` decisions update the counts for the next
/// tick. Returns every `SetWorkers` as (tick, stage, workers).
pub(crate) fn drive(
    policy: &mut dyn Controller,
    mut workers: Vec<usize>,
    ticks: u64,
    model: impl Fn(&[usize]) -> SnapshotBuilder,
) -> Vec<(u64, usize, usize)> {
    let mut moves = Vec::new();
    for tick in 1..=ticks {
        let snapshot = model(&workers).tick(tick).build();
        for (stage, count) in set_workers(&policy.decide(&snapshot)) {
            workers[stage] = count;
            moves.push((tick, stage, count));
        }
    }
    moves
}

#[test]
fn shares_become_seconds_and_knobs_follow_stages() {
    let snapshot = SnapshotBuilder::new()
        .window(2.0)
        .source_rate(100.0)
        .stage(
            StageBuilder::new("parse")
                .workers(4)
                .busy(0.5)
                .waiting(0.25)
                .blocked(0.125)
                .records(10, 20)
                .queue(7.5, 16),
        )
        .stage(StageBuilder::new("write").sink().bounds(2, 8).pinned())
        .build();
    let parse = &snapshot.stages[0];
    assert_eq!(
        (
            parse.worker_s,
            parse.busy_s,
            parse.wait_in_s,
            parse.wait_out_s
        ),
        (8.0, 4.0, 2.0, 1.0)
    );
    assert_eq!((parse.records_in, parse.records_out), (10, 20));
    assert_eq!((parse.queue.max_depth, parse.queue.capacity), (8, 16));
    assert_eq!(snapshot.knobs.stages[0].workers, 4);
    assert_eq!(snapshot.knobs.stages[0].queue_capacity, 16);
    let write = &snapshot.stages[1];
    assert_eq!(write.role, StageRole::Sink);
    assert_eq!((write.workers.min, write.workers.max), (2, 8));
    assert!(write.workers.pinned);
    assert_eq!(snapshot.global.source.records, 200);
    assert_eq!(snapshot.window_s, 2.0);
}
