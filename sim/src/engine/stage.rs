//! One stage of the model: its input queue, its pool counted by state, the calls in
//! progress under processor sharing and the Universal Scalability Law, and the
//! figures of the current window.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use brigade_controller::{Histogram, StageRole};

use brigade_scenario::draws::{Rng, StageDraws};
use brigade_scenario::{StageKind, StageSpec};

/// A record in the model: which it is, when it was admitted and what it weighs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rec {
    /// Its position in the source (outputs of a fan-out get derived ids): the key of
    /// every random draw made for it, so that every policy meets the same records.
    pub(crate) id: u64,
    pub(crate) admitted_at: f64,
    pub(crate) bytes: u64,
}

/// A call in progress (or sleeping before a retry).
#[derive(Debug, Default)]
pub(crate) struct Call {
    pub(crate) recs: Vec<Rec>,
    pub(crate) started: f64,
    pub(crate) attempt: u32,
    pub(crate) serial: bool,
    /// This attempt fails (drawn when it starts).
    pub(crate) fails: bool,
    /// Begun while a concurrency limit was in force, so counted against it until its
    /// worker is free again (see [`StageSim::limited_calls`]).
    pub(crate) limited: bool,
}

/// A worker that finished a call and waits to hand its outputs on: for the budget to
/// hold their growth, then for room in the next queue.
#[derive(Debug)]
pub(crate) struct Blocked {
    pub(crate) outputs: VecDeque<Rec>,
    /// Bytes of growth still to be granted by the budget (0 = granted).
    pub(crate) growth: u64,
    /// Weight of the inputs, moved off this stage once the growth is granted.
    pub(crate) old: u64,
    /// Weight of the outputs, moved onto the next stage once the growth is granted.
    pub(crate) new: u64,
    /// The call was counted against the concurrency limit, and still is.
    pub(crate) limited: bool,
}

/// An `f64` ordered by `total_cmp`, for the heap of finishing points.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Point(pub(crate) f64);

impl Eq for Point {}

impl PartialOrd for Point {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Point {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The figures of one stage for the current window.
pub(crate) struct StageWindow {
    pub(crate) records_in: u64,
    pub(crate) records_out: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) busy_s: f64,
    pub(crate) wait_in_s: f64,
    pub(crate) wait_out_s: f64,
    pub(crate) worker_s: f64,
    pub(crate) depth_s: f64,
    pub(crate) max_depth: u64,
    pub(crate) errors: u64,
    pub(crate) retries: u64,
    pub(crate) dead_lettered: u64,
    pub(crate) service_us: Histogram<u64>,
    pub(crate) wait_in_us: Histogram<u64>,
    pub(crate) size_bytes: Histogram<u64>,
}

impl StageWindow {
    fn new() -> Self {
        let histogram = || Histogram::new(2).expect("2 significant figures is valid");
        Self {
            records_in: 0,
            records_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            busy_s: 0.0,
            wait_in_s: 0.0,
            wait_out_s: 0.0,
            worker_s: 0.0,
            depth_s: 0.0,
            max_depth: 0,
            errors: 0,
            retries: 0,
            dead_lettered: 0,
            service_us: histogram(),
            wait_in_us: histogram(),
            size_bytes: histogram(),
        }
    }

    /// Starts a new window with `depth` records waiting.
    pub(crate) fn reset(&mut self, depth: usize) {
        self.records_in = 0;
        self.records_out = 0;
        self.bytes_in = 0;
        self.bytes_out = 0;
        self.busy_s = 0.0;
        self.wait_in_s = 0.0;
        self.wait_out_s = 0.0;
        self.worker_s = 0.0;
        self.depth_s = 0.0;
        self.max_depth = depth as u64;
        self.errors = 0;
        self.retries = 0;
        self.dead_lettered = 0;
        self.service_us.reset();
        self.wait_in_us.reset();
        self.size_bytes.reset();
    }
}

/// A stage of the model.
pub(crate) struct StageSim {
    pub(crate) spec: StageSpec,
    pub(crate) role: StageRole,
    /// Its random draws, keyed by record rather than taken in call order, so that
    /// whatever the policy does the same record meets the same service time, error
    /// and fan-out at the same stage: policies are compared on common random numbers.
    pub(crate) draws: StageDraws,
    pub(crate) queue: VecDeque<Rec>,
    pub(crate) capacity: usize,
    /// Workers in the pool, whatever they are doing.
    pub(crate) live: usize,
    /// The size the pool converges to: idle workers above it retire at once, busy
    /// ones when their call ends.
    pub(crate) target: usize,
    /// When each idle worker began to wait; its length is the idle count.
    pub(crate) idle_since: VecDeque<f64>,
    /// Parallel calls in progress.
    pub(crate) in_call: usize,
    /// Parallel workers sleeping before a retry.
    pub(crate) sleeping: usize,
    /// Calls counted against the concurrency limit, as the runtime counts them: those
    /// begun while a limit was in force, from their start until their worker is free
    /// (retries and, for a transform, handing its outputs on included). Calls already
    /// running when a limit is first set run past it.
    pub(crate) limited_calls: usize,
    /// Workers holding outputs they cannot hand on yet, oldest first.
    pub(crate) blocked: VecDeque<Blocked>,
    /// Serial-lane calls in progress here (0 or 1).
    pub(crate) serial_calls: usize,
    /// Work done by each call in progress since the start (processor-sharing clock).
    pub(crate) progress: f64,
    /// Speed of every call in progress, work-seconds per second.
    pub(crate) speed: f64,
    /// Calls in progress by the progress point at which they finish.
    pub(crate) finishing: BinaryHeap<Reverse<(Point, u32)>>,
    pub(crate) batch_size: usize,
    pub(crate) concurrency_limit: Option<usize>,
    pub(crate) rate_limit: Option<f64>,
    /// Earliest time the rate limit lets the next call start.
    pub(crate) rate_next: f64,
    /// A timer is set for `rate_next`.
    pub(crate) rate_timer: bool,
    /// The phase's service-time scale in force.
    pub(crate) scale: f64,
    /// A `stall` phase holds every call of the stage until this time (0: none yet).
    pub(crate) stalled_until: f64,
    pub(crate) window: StageWindow,
}

impl StageSim {
    pub(crate) fn new(
        spec: &StageSpec,
        last: bool,
        draws: StageDraws,
        workers: usize,
        capacity: usize,
        batch_size: usize,
    ) -> Self {
        let role = match (last, spec.batch) {
            (true, true) => StageRole::BatchSink,
            (true, false) => StageRole::Sink,
            (false, _) => StageRole::Transform,
        };
        Self {
            spec: spec.clone(),
            role,
            draws,
            queue: VecDeque::new(),
            capacity,
            live: workers,
            target: workers,
            idle_since: std::iter::repeat_n(0.0, workers).collect(),
            in_call: 0,
            sleeping: 0,
            limited_calls: 0,
            blocked: VecDeque::new(),
            serial_calls: 0,
            progress: 0.0,
            speed: 1.0,
            finishing: BinaryHeap::new(),
            batch_size: if role == StageRole::BatchSink {
                batch_size.max(1)
            } else {
                1
            },
            concurrency_limit: None,
            rate_limit: None,
            rate_next: 0.0,
            rate_timer: false,
            scale: 1.0,
            stalled_until: 0.0,
            window: StageWindow::new(),
        }
    }

    pub(crate) fn is_cpu(&self) -> bool {
        self.spec.kind == StageKind::Cpu
    }

    /// True while a stall holds the stage's calls at `now`.
    pub(crate) fn is_stalled(&self, now: f64) -> bool {
        now < self.stalled_until
    }

    pub(crate) fn is_sink(&self) -> bool {
        self.role != StageRole::Transform
    }

    /// Calls in progress, both lanes: what contention and processor sharing see.
    pub(crate) fn calls(&self) -> usize {
        self.in_call + self.serial_calls
    }

    /// Work of a call over `bytes` with these draws: service plus the per-MiB cost,
    /// times the scale in force.
    pub(crate) fn draw_work(&self, draws: &mut Rng, bytes: u64) -> f64 {
        self.spec
            .work(draws.sample(&self.spec.service), bytes, self.scale)
    }

    /// Accrues the window's time integrals over `dt` seconds.
    pub(crate) fn accrue(&mut self, dt: f64) {
        let window = &mut self.window;
        let idle = self.idle_since.len() as f64;
        window.busy_s += (self.in_call + self.sleeping + self.serial_calls) as f64 * dt;
        let held_by_limits = if self.queue.is_empty() { 0.0 } else { idle };
        window.wait_in_s += (idle - held_by_limits) * dt;
        window.wait_out_s += (self.blocked.len() as f64 + held_by_limits) * dt;
        window.worker_s += self.live as f64 * dt;
        window.depth_s += self.queue.len() as f64 * dt;
        self.progress += self.speed * dt;
    }

    /// Time at which the next call finishes, if any is in progress and moving.
    pub(crate) fn next_finish(&self, now: f64) -> Option<f64> {
        let Reverse((Point(point), _)) = self.finishing.peek()?;
        if self.speed == 0.0 {
            return None;
        }
        Some(now + ((point - self.progress) / self.speed).max(0.0))
    }

    /// A worker is free: it retires if the pool is above target, else waits for input.
    pub(crate) fn free_worker(&mut self, now: f64) {
        if self.live > self.target {
            self.live -= 1;
        } else {
            self.idle_since.push_back(now);
        }
    }

    /// Sets the pool's target: new workers start idle at once, idle workers above the
    /// target retire at once, busy ones when their call ends.
    pub(crate) fn set_target(&mut self, target: usize, now: f64) {
        self.target = target;
        while self.live < target {
            self.live += 1;
            self.idle_since.push_back(now);
        }
        while self.live > target && self.idle_since.pop_back().is_some() {
            self.live -= 1;
        }
    }
}
