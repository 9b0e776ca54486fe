//! The discrete-event model of a pipeline in virtual time.
//!
//! The model holds what the runtime holds (bounded queues, worker pools, the memory
//! budget and its admission, the serial lane, sink limits, the source guard) and what
//! the scenario describes (service times, contention, processor sharing of the cores,
//! record sizes, giants, errors, phases). It moves from one event to the next, one
//! event at a time, and closes a metrics window at every tick exactly as the runtime
//! does, so that the policy sees the same [`Snapshot`] either way.
//!
//! # How time is kept
//!
//! Every call of a stage in progress runs at the same speed: 1 / the USL slowdown for
//! the stage's calls in progress, times the share of a core for cpu stages when more
//! cpu calls run than there are cores. So each stage keeps one progress clock that
//! advances at that speed, and a heap of the points on that clock at which its calls
//! finish; a call's work (its service time) is drawn when it starts. The next event is
//! the earliest of: each stage's next finishing call, the source's next record, the
//! guard and timeout of a stalled source, retry and rate-limit timers, phases, the
//! tick and the end. Each event costs a handful of operations per stage, which is what
//! lets 30 virtual minutes of 1.5 million records run in about a second.

mod source;
mod spill;
mod stage;
mod window;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use brigade_controller::{Actuator, Histogram, Knobs, StageKnobs, StageRole, Totals};

use source::SourceSim;
use spill::SpillSim;
use stage::{Blocked, Call, Point, Rec, StageSim};
use window::GlobalWindow;

use brigade_scenario::draws::{output_id, Sizes, StageDraws};
use brigade_scenario::{OnTimeout, Scenario};

/// The runtime's default retry policy: 5 calls in all, 10 ms doubling to 2 s between.
const RETRY_ATTEMPTS: u32 = 5;
const RETRY_INITIAL_S: f64 = 0.010;
const RETRY_MAX_S: f64 = 2.0;

/// What one event did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A window closed: the policy's turn.
    Tick,
    /// The run is over.
    Ended,
    /// Anything else.
    Moved,
}

/// Why a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Still running.
    Running,
    /// Every record of a finite source finished.
    Finished,
    /// The scenario's duration passed.
    Duration,
    /// Bytes in flight passed the machine's memory.
    Crashed,
    /// The source timed out with `on_timeout = "fail"`.
    SourceFailed,
}

/// A timer: `(time, sequence)` orders them; sequence numbers keep ties deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// A sleeping call retries.
    Retry { stage: usize, slot: u32 },
    /// A stage's rate limit lets the next call start.
    RateLimit { stage: usize },
}

/// The next thing to happen.
#[derive(Clone, Copy, Debug)]
enum Event {
    Tick,
    End,
    Phase,
    Timer,
    Finish(usize),
    StallEnds,
    SourceReady,
    Guard,
    Timeout,
}

/// The serial lane: giants, one call at a time, through every stage in turn.
#[derive(Default)]
struct Lane {
    /// Records waiting for their next call, with the stage it is at.
    items: VecDeque<(usize, Rec)>,
    /// A call of the lane is in progress (or sleeping before a retry).
    busy: bool,
    /// Outputs of the last call waiting for the budget to hold their growth.
    blocked: Option<Blocked>,
    /// The stage `blocked` came from.
    blocked_at: usize,
    /// Bytes held in the lane.
    held: u64,
    records: u64,
    bytes: u64,
    busy_s: f64,
}

impl Lane {
    fn idle(&self) -> bool {
        !self.busy && self.items.is_empty() && self.blocked.is_none()
    }
}

/// The model of one run.
pub(crate) struct Engine {
    pub(crate) scenario: Scenario,
    pub(crate) now: f64,
    stages: Vec<StageSim>,
    source: SourceSim,
    /// Guard reads the budget could not hold, waiting on disk.
    pub(crate) spill: SpillSim,
    lane: Lane,
    slots: Vec<Call>,
    free_slots: Vec<u32>,
    timers: BinaryHeap<Reverse<(Point, u64, TimerKind)>>,
    timer_seq: u64,
    next_tick: f64,
    next_phase: usize,
    /// Bytes admitted and not finished.
    inflight: u64,
    /// Bytes held per stage (its queue, its calls, outputs handed to it).
    held: Vec<u64>,
    /// Outputs waiting for the budget to hold their growth; admission waits for them.
    growers: usize,
    budget: Option<u64>,
    serial_threshold: Option<u64>,
    cpu_calls: usize,
    /// Of those, the calls not held by a stall: the ones that share the cores.
    cpu_running: usize,
    pub(crate) knobs: Knobs,
    window: GlobalWindow,
    window_start: f64,
    pub(crate) totals: Totals,
    records_in_system: u64,
    pub(crate) sink_completed: u64,
    pub(crate) last_completion: f64,
    pub(crate) peak_inflight: u64,
    pub(crate) latency_run_us: Histogram<u64>,
    pub(crate) end: End,
    spare: Vec<VecDeque<Rec>>,
    outputs: Vec<Rec>,
    /// Calls in progress at the sink in a fleet's other processes (0 alone).
    external_sink_calls: usize,
}

impl Engine {
    /// A model of `scenario` at t = 0, knobs as the scenario's `[runtime]` sets them.
    pub(crate) fn new(scenario: &Scenario) -> Self {
        let runtime = &scenario.runtime;
        let last = scenario.stages.len() - 1;
        let stages: Vec<StageSim> = scenario
            .stages
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                StageSim::new(
                    spec,
                    i == last,
                    StageDraws::new(scenario.seed, i),
                    runtime.initial_workers.min(runtime.max_workers).max(1),
                    runtime.queue_capacity,
                    runtime.batch_size,
                )
            })
            .collect();
        let knobs = Knobs {
            stages: stages
                .iter()
                .map(|stage| StageKnobs {
                    workers: stage.target,
                    queue_capacity: stage.capacity,
                    batch_size: stage.batch_size,
                    concurrency_limit: None,
                    rate_limit: None,
                })
                .collect(),
            serial_threshold: None,
            memory_budget: runtime.memory_budget,
        };
        let histogram = || Histogram::new(2).expect("2 significant figures is valid");
        Self {
            now: 0.0,
            source: SourceSim::new(
                &scenario.source,
                Sizes::new(scenario.seed, &scenario.source),
            ),
            spill: SpillSim::new(runtime.spill),
            held: vec![0; stages.len()],
            stages,
            lane: Lane::default(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            timers: BinaryHeap::new(),
            timer_seq: 0,
            next_tick: scenario.tick_s,
            next_phase: 0,
            inflight: 0,
            growers: 0,
            budget: runtime.memory_budget,
            serial_threshold: None,
            cpu_calls: 0,
            cpu_running: 0,
            knobs,
            window: GlobalWindow {
                inflight_s: 0.0,
                inflight_max: 0,
                cpu_core_s: 0.0,
                latency_us: histogram(),
            },
            window_start: 0.0,
            totals: Totals::default(),
            records_in_system: 0,
            sink_completed: 0,
            last_completion: 0.0,
            peak_inflight: 0,
            latency_run_us: histogram(),
            end: End::Running,
            spare: Vec::new(),
            outputs: Vec::new(),
            external_sink_calls: 0,
            scenario: scenario.clone(),
        }
    }

    /// Runs events until the next tick (true) or the end of the run (false).
    pub(crate) fn run_to_tick(&mut self) -> bool {
        loop {
            match self.step() {
                Step::Tick => return true,
                Step::Ended => return false,
                Step::Moved => {}
            }
        }
    }

    /// When the next event happens (`None` once the run is over).
    pub(crate) fn next_at(&self) -> Option<f64> {
        (self.end == End::Running).then(|| self.next_event().0)
    }

    /// Moves the clock to `at` (no later than [`next_at`](Self::next_at)) without
    /// handling an event: how a fleet keeps its processes' clocks together.
    pub(crate) fn advance_to(&mut self, at: f64) {
        if self.end == End::Running && at > self.now {
            self.advance(at);
        }
    }

    /// Handles the next event.
    pub(crate) fn step(&mut self) -> Step {
        if self.end != End::Running {
            return Step::Ended;
        }
        let (at, event) = self.next_event();
        self.advance(at);
        match event {
            Event::Tick => return Step::Tick,
            Event::End => {
                self.end = End::Duration;
                return Step::Ended;
            }
            Event::Phase => self.apply_phase(),
            Event::Timer => self.fire_timer(),
            Event::Finish(stage) => self.finish_call(stage),
            // The calls move again: `pump` gives the stage its speed back.
            Event::StallEnds => {}
            Event::SourceReady => self.source.draw_head(),
            Event::Guard => self.guard_read(),
            Event::Timeout => self.source_timed_out(),
        }
        self.pump();
        if self.inflight > self.scenario.machine.memory_bytes {
            self.end = End::Crashed;
        } else if self.source.exhausted && self.records_in_system == 0 {
            self.end = End::Finished;
        }
        if self.end == End::Running {
            Step::Moved
        } else {
            Step::Ended
        }
    }

    /// Calls in progress at the sink, both lanes.
    pub(crate) fn sink_calls(&self) -> usize {
        self.stages.last().map_or(0, StageSim::calls)
    }

    /// Sets the calls in progress at the sink in the fleet's other processes, which
    /// slow this process's sink calls as its own do.
    pub(crate) fn set_external_sink_calls(&mut self, calls: usize) {
        if calls != self.external_sink_calls {
            self.external_sink_calls = calls;
            self.set_speeds();
        }
    }

    fn next_event(&self) -> (f64, Event) {
        let mut best = (self.next_tick, Event::Tick);
        let mut consider = |at: f64, event: Event| {
            if at < best.0 {
                best = (at, event);
            }
        };
        consider(self.scenario.duration_s, Event::End);
        if let Some(phase) = self.scenario.phases.get(self.next_phase) {
            consider(phase.at_s, Event::Phase);
        }
        if let Some(Reverse((Point(at), _, _))) = self.timers.peek() {
            consider(*at, Event::Timer);
        }
        for (i, stage) in self.stages.iter().enumerate() {
            if let Some(at) = stage.next_finish(self.now) {
                consider(at, Event::Finish(i));
            }
            // Held by a stall until its end, even when a tick falls at that instant.
            if stage.speed == 0.0 {
                consider(stage.stalled_until, Event::StallEnds);
            }
        }
        let source = &self.source;
        if !source.exhausted {
            if source.head.is_none() {
                consider(source.ready_at.max(source.paused_until), Event::SourceReady);
            } else if let Some(timeout) = source.idle_timeout() {
                let since = source.last_read.max(source.paused_until);
                if !source.guard_tried {
                    consider(since + timeout / 2.0, Event::Guard);
                }
                consider(since + timeout, Event::Timeout);
            }
        }
        // Ties (ends of windows first) keep a fixed order; time never runs backwards.
        (best.0.max(self.now), best.1)
    }

    /// Moves the clock to `at`, accruing every time integral.
    fn advance(&mut self, at: f64) {
        let dt = at - self.now;
        if dt > 0.0 {
            for stage in &mut self.stages {
                stage.accrue(dt);
            }
            if self.lane.busy {
                self.lane.busy_s += dt;
            }
            self.window.inflight_s += self.inflight as f64 * dt;
            let cores = self.scenario.machine.cores as f64;
            self.window.cpu_core_s += (self.cpu_running as f64).min(cores) * dt;
        }
        self.now = at;
    }

    /// Re-derives every stage's speed after the calls in progress changed, or a
    /// stall began or ended. A stalled stage's calls make no progress and take no
    /// core: they wait on a lock.
    fn set_speeds(&mut self) {
        let now = self.now;
        let stalled_cpu_calls: usize = self
            .stages
            .iter()
            .filter(|stage| stage.is_cpu() && stage.is_stalled(now))
            .map(|stage| stage.calls())
            .sum();
        self.cpu_running = self.cpu_calls.saturating_sub(stalled_cpu_calls);
        let cores = self.scenario.machine.cores as f64;
        let share = if self.cpu_running as f64 > cores {
            cores / self.cpu_running as f64
        } else {
            1.0
        };
        let sink = self.stages.len() - 1;
        for (i, stage) in self.stages.iter_mut().enumerate() {
            let external = if i == sink {
                self.external_sink_calls
            } else {
                0
            };
            let calls = (stage.calls() + external).max(1);
            let share = if stage.is_cpu() { share } else { 1.0 };
            stage.speed = if stage.is_stalled(now) {
                0.0
            } else {
                share / stage.spec.slowdown(calls)
            };
        }
    }

    fn add_timer(&mut self, at: f64, kind: TimerKind) {
        self.timer_seq += 1;
        self.timers.push(Reverse((Point(at), self.timer_seq, kind)));
    }

    fn fire_timer(&mut self) {
        let Some(Reverse((_, _, kind))) = self.timers.pop() else {
            return;
        };
        match kind {
            TimerKind::Retry { stage, slot } => {
                let call = &self.slots[slot as usize];
                if call.serial {
                    self.stages[stage].serial_calls += 1;
                } else {
                    self.stages[stage].sleeping -= 1;
                    self.stages[stage].in_call += 1;
                }
                self.start_work(stage, slot);
            }
            TimerKind::RateLimit { stage } => self.stages[stage].rate_timer = false,
        }
    }

    fn apply_phase(&mut self) {
        let phase = self.scenario.phases[self.next_phase].clone();
        self.next_phase += 1;
        if let Some((stage, scale)) = phase.service_scale {
            self.stages[stage].scale = scale;
        }
        if let Some(rate) = phase.source_rate {
            self.source.rate = rate;
        }
        if let Some((stage, stall_s)) = phase.stall {
            let stage = &mut self.stages[stage];
            stage.stalled_until = stage.stalled_until.max(self.now + stall_s);
        }
    }

    /// Whether the budget can admit `bytes` now (a record larger than the whole budget
    /// only into an empty pipeline).
    fn budget_admits(&self, bytes: u64) -> bool {
        self.growers == 0
            && match self.budget {
                None => true,
                Some(limit) => {
                    self.inflight + bytes <= limit || (bytes > limit && self.inflight == 0)
                }
            }
    }

    fn budget_holds_growth(&self, growth: u64) -> bool {
        self.budget
            .is_none_or(|limit| self.inflight + growth <= limit)
    }

    fn goes_serial(&self, bytes: u64) -> bool {
        self.serial_threshold
            .is_some_and(|threshold| bytes >= threshold)
    }

    fn note_inflight(&mut self) {
        self.window.inflight_max = self.window.inflight_max.max(self.inflight);
        self.peak_inflight = self.peak_inflight.max(self.inflight);
    }

    /// Lets everything that can move, move: blocked outputs, calls, admission.
    pub(crate) fn pump(&mut self) {
        loop {
            let mut moved = false;
            for i in (0..self.stages.len()).rev() {
                moved |= self.unblock(i);
                moved |= self.dispatch(i);
            }
            moved |= self.run_lane();
            moved |= self.admit();
            if !moved {
                break;
            }
        }
        self.set_speeds();
    }

    /// Admits the spill's oldest record if the budget can hold it; else, with the
    /// spill empty, the source's ready record if its lane, queue and the budget allow.
    fn admit(&mut self) -> bool {
        if let Some(rec) = self.spill.front() {
            if !self.guard_may_enter(rec.bytes) {
                return false;
            }
            let rec = self.spill.pop().expect("checked above");
            self.enter(rec);
            return true;
        }
        let Some(bytes) = self.source.head else {
            return false;
        };
        if self.now < self.source.paused_until || !self.budget_admits(bytes) {
            return false;
        }
        if self.goes_serial(bytes) {
            if !self.lane.idle() {
                return false;
            }
        } else if self.stages[0].queue.len() >= self.stages[0].capacity {
            return false;
        }
        self.take_from_source(bytes);
        true
    }

    /// Whether a guard read (or a spilled record) of `bytes` may enter now, past a
    /// full queue: the budget holds it and, for a record of the serial lane, the lane
    /// is idle.
    fn guard_may_enter(&self, bytes: u64) -> bool {
        (!self.goes_serial(bytes) || self.lane.idle()) && self.budget_admits(bytes)
    }

    /// The source guard: a source idle for half its timeout is read past a full queue,
    /// if the budget can hold the record; if it cannot (or records already wait in
    /// the spill, which go first), into the spill while it has room. A full spill is
    /// as no spill.
    fn guard_read(&mut self) {
        self.source.guard_tried = true;
        let Some(bytes) = self.source.head else {
            return;
        };
        if self.spill.is_empty() && self.guard_may_enter(bytes) {
            self.source.window.guard_reads += 1;
            self.take_from_source(bytes);
        } else if self.spill.has_room(bytes) {
            self.source.window.guard_reads += 1;
            let rec = self.read_head(bytes);
            // Writing it out and reading it back keeps the source busy.
            let disk_s = self.scenario.machine.disk_per_mib_s * bytes as f64 / (1024.0 * 1024.0);
            self.source.ready_at += disk_s;
            self.spill.push(rec);
        } else if self.guard_may_enter(bytes) {
            self.source.window.guard_reads += 1;
            self.take_from_source(bytes);
        }
    }

    fn source_timed_out(&mut self) {
        self.source.note_idle(self.now);
        self.source.timeouts += 1;
        match self.source.spec.on_timeout {
            OnTimeout::Fail => {
                self.source.exhausted = true;
                self.end = End::SourceFailed;
            }
            OnTimeout::Reconnect => {
                self.source.paused_until = self.now + self.source.spec.reconnect_s;
                self.source.last_read = self.source.paused_until;
                self.source.guard_tried = false;
            }
        }
    }

    /// Reads the source's ready record and puts it in the pipeline.
    fn take_from_source(&mut self, bytes: u64) {
        let rec = self.read_head(bytes);
        self.enter(rec);
    }

    /// Reads the source's ready record: it is in the system from now on.
    fn read_head(&mut self, bytes: u64) -> Rec {
        let rec = Rec {
            id: self.source.read,
            admitted_at: self.now,
            bytes,
        };
        self.source.take_head(self.now, bytes);
        self.totals.admitted += 1;
        self.records_in_system += 1;
        rec
    }

    /// Puts a read record in the first queue (or the serial lane), in the budget.
    fn enter(&mut self, rec: Rec) {
        let bytes = rec.bytes;
        self.inflight += bytes;
        self.note_inflight();
        if self.goes_serial(bytes) {
            self.lane.held += bytes;
            self.lane.items.push_back((0, rec));
        } else {
            self.held[0] += bytes;
            let stage = &mut self.stages[0];
            stage.queue.push_back(rec);
            stage.window.max_depth = stage.window.max_depth.max(stage.queue.len() as u64);
        }
    }

    /// Starts calls on stage `i` while it has idle workers, input and limits allow.
    fn dispatch(&mut self, i: usize) -> bool {
        let mut moved = false;
        loop {
            let now = self.now;
            let stage = &mut self.stages[i];
            if stage.idle_since.is_empty() || stage.queue.is_empty() {
                break;
            }
            if stage
                .concurrency_limit
                .is_some_and(|limit| stage.limited_calls >= limit)
            {
                break;
            }
            let take = stage.batch_size.min(stage.queue.len());
            if let Some(rate) = stage.rate_limit {
                if now < stage.rate_next {
                    if !stage.rate_timer {
                        stage.rate_timer = true;
                        let at = stage.rate_next;
                        self.add_timer(at, TimerKind::RateLimit { stage: i });
                    }
                    break;
                }
                stage.rate_next = stage.rate_next.max(now) + take as f64 / rate.max(1e-9);
            }
            let since = stage.idle_since.pop_front().unwrap_or(now);
            let _ = stage.window.wait_in_us.record(((now - since) * 1e6) as u64);
            let slot = self.new_slot(false);
            let stage = &mut self.stages[i];
            let call = &mut self.slots[slot as usize];
            call.recs.extend(stage.queue.drain(..take));
            call.limited = stage.concurrency_limit.is_some();
            stage.limited_calls += usize::from(call.limited);
            stage.in_call += 1;
            self.start_call(i, slot);
            moved = true;
        }
        moved
    }

    fn new_slot(&mut self, serial: bool) -> u32 {
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Call::default());
                (self.slots.len() - 1) as u32
            }
        };
        let call = &mut self.slots[slot as usize];
        call.recs.clear();
        call.attempt = 1;
        call.serial = serial;
        call.limited = false;
        slot
    }

    /// Counts a new call's input and starts its work.
    fn start_call(&mut self, i: usize, slot: u32) {
        let stage = &mut self.stages[i];
        let call = &self.slots[slot as usize];
        stage.window.records_in += call.recs.len() as u64;
        for rec in &call.recs {
            stage.window.bytes_in += rec.bytes;
            let _ = stage.window.size_bytes.record(rec.bytes);
        }
        self.start_work(i, slot);
    }

    /// Draws the work of an attempt of the call in `slot` and puts it in progress.
    fn start_work(&mut self, i: usize, slot: u32) {
        let stage = &mut self.stages[i];
        let call = &mut self.slots[slot as usize];
        call.started = self.now;
        let bytes: u64 = call.recs.iter().map(|rec| rec.bytes).sum();
        let mut draws = stage
            .draws
            .call(call.recs.first().map_or(0, |rec| rec.id), call.attempt);
        let work = stage.draw_work(&mut draws, bytes);
        call.fails = draws.chance(stage.spec.error_rate);
        stage
            .finishing
            .push(Reverse((Point(stage.progress + work), slot)));
        if stage.is_cpu() {
            self.cpu_calls += 1;
        }
    }

    /// The earliest call of stage `i` finishes.
    fn finish_call(&mut self, i: usize) {
        let stage = &mut self.stages[i];
        let Some(Reverse((Point(point), slot))) = stage.finishing.pop() else {
            return;
        };
        stage.progress = stage.progress.max(point);
        if stage.is_cpu() {
            self.cpu_calls -= 1;
        }
        let serial = self.slots[slot as usize].serial;
        if serial {
            stage.serial_calls -= 1;
        } else {
            stage.in_call -= 1;
        }
        if self.slots[slot as usize].fails {
            stage.window.errors += 1;
            let attempt = self.slots[slot as usize].attempt;
            if attempt < RETRY_ATTEMPTS {
                stage.window.retries += 1;
                self.slots[slot as usize].attempt += 1;
                if !serial {
                    stage.sleeping += 1;
                }
                let backoff = (RETRY_INITIAL_S * 2f64.powi(attempt as i32 - 1)).min(RETRY_MAX_S);
                self.add_timer(self.now + backoff, TimerKind::Retry { stage: i, slot });
                return;
            }
            self.dead_letter(i, slot);
        } else {
            let started = self.slots[slot as usize].started;
            let _ = stage
                .window
                .service_us
                .record(((self.now - started) * 1e6) as u64);
            if stage.is_sink() {
                self.complete(i, slot);
            } else {
                self.transform(i, slot);
                return;
            }
        }
        self.free_slots.push(slot);
        if serial {
            self.lane.busy = false;
        } else {
            let stage = &mut self.stages[i];
            stage.limited_calls -= usize::from(self.slots[slot as usize].limited);
            stage.free_worker(self.now);
        }
    }

    fn release(&mut self, i: usize, serial: bool, bytes: u64) {
        self.inflight -= bytes;
        if serial {
            self.lane.held -= bytes;
        } else {
            self.held[i] -= bytes;
        }
    }

    fn dead_letter(&mut self, i: usize, slot: u32) {
        let recs = std::mem::take(&mut self.slots[slot as usize].recs);
        let serial = self.slots[slot as usize].serial;
        for rec in &recs {
            self.release(i, serial, rec.bytes);
            self.totals.dead_lettered += 1;
            self.records_in_system -= 1;
        }
        self.stages[i].window.dead_lettered += recs.len() as u64;
        self.slots[slot as usize].recs = recs;
    }

    /// The sink finished the records of `slot`.
    fn complete(&mut self, i: usize, slot: u32) {
        let recs = std::mem::take(&mut self.slots[slot as usize].recs);
        let serial = self.slots[slot as usize].serial;
        for rec in &recs {
            self.release(i, serial, rec.bytes);
            let latency = ((self.now - rec.admitted_at) * 1e6) as u64;
            let _ = self.window.latency_us.record(latency);
            let _ = self.latency_run_us.record(latency);
            let window = &mut self.stages[i].window;
            window.bytes_out += rec.bytes;
            if serial {
                self.lane.records += 1;
                self.lane.bytes += rec.bytes;
            }
        }
        self.stages[i].window.records_out += recs.len() as u64;
        self.totals.completed += recs.len() as u64;
        self.records_in_system -= recs.len() as u64;
        self.sink_completed += recs.len() as u64;
        self.last_completion = self.now;
        self.slots[slot as usize].recs = recs;
    }

    /// A transform finished the records of `slot`: weigh its outputs, ask the budget
    /// for their growth, hand them on (or block until it can).
    fn transform(&mut self, i: usize, slot: u32) {
        let serial = self.slots[slot as usize].serial;
        let limited = self.slots[slot as usize].limited;
        let mut outputs = std::mem::take(&mut self.outputs);
        let (mut old, mut new) = (0u64, 0u64);
        {
            let stage = &mut self.stages[i];
            for rec in &self.slots[slot as usize].recs {
                old += rec.bytes;
                let count = stage.draws.outputs(rec.id, stage.spec.output_ratio);
                let bytes = stage.spec.output_bytes(rec.bytes);
                for k in 0..count {
                    outputs.push(Rec {
                        id: output_id(rec.id, k),
                        admitted_at: rec.admitted_at,
                        bytes,
                    });
                    new += bytes;
                }
            }
            stage.window.records_out += outputs.len() as u64;
            stage.window.bytes_out += new;
        }
        let records_in = self.slots[slot as usize].recs.len() as u64;
        self.records_in_system = self.records_in_system + outputs.len() as u64 - records_in;
        self.free_slots.push(slot);
        let mut queue = self.spare.pop().unwrap_or_default();
        queue.extend(outputs.drain(..));
        self.outputs = outputs;
        let blocked = Blocked {
            outputs: queue,
            growth: new.saturating_sub(old),
            old,
            new,
            limited,
        };
        if blocked.growth > 0 {
            self.growers += 1;
        } else {
            self.inflight -= old - new;
            self.move_held(i, serial, old, new);
        }
        if serial {
            self.lane.busy = false;
            self.lane.blocked = Some(blocked);
            self.lane.blocked_at = i;
        } else {
            self.stages[i].blocked.push_back(blocked);
        }
    }

    fn move_held(&mut self, i: usize, serial: bool, old: u64, new: u64) {
        if serial {
            self.lane.held = self.lane.held - old + new;
        } else {
            self.held[i] -= old;
            self.held[i + 1] += new;
        }
    }

    /// Grants growth if the budget holds it, or if nothing downstream of `i` holds any
    /// bytes (the runtime's escape from a deadlock: nothing could free room).
    fn grant_growth(&mut self, blocked_growth: u64, downstream_empty: bool) -> bool {
        if self.budget_holds_growth(blocked_growth) || downstream_empty {
            self.inflight += blocked_growth;
            self.note_inflight();
            self.growers -= 1;
            true
        } else {
            false
        }
    }

    /// Hands on the outputs of stage `i`'s blocked workers, oldest first.
    fn unblock(&mut self, i: usize) -> bool {
        let mut moved = false;
        while let Some(front) = self.stages[i].blocked.front() {
            if front.growth > 0 {
                let (growth, old, new) = (front.growth, front.old, front.new);
                let downstream_empty = self.held[i + 1..].iter().all(|&held| held == 0);
                if !self.grant_growth(growth, downstream_empty) {
                    break;
                }
                self.move_held(i, false, old, new);
                self.stages[i].blocked[0].growth = 0;
                moved = true;
            }
            let (head, tail) = self.stages.split_at_mut(i + 1);
            let (stage, next) = (&mut head[i], &mut tail[0]);
            let front = stage.blocked.front_mut().expect("checked above");
            while next.queue.len() < next.capacity {
                let Some(rec) = front.outputs.pop_front() else {
                    break;
                };
                next.queue.push_back(rec);
                moved = true;
            }
            next.window.max_depth = next.window.max_depth.max(next.queue.len() as u64);
            if !front.outputs.is_empty() {
                break;
            }
            let done = stage.blocked.pop_front().expect("checked above");
            stage.limited_calls -= usize::from(done.limited);
            self.spare.push(done.outputs);
            stage.free_worker(self.now);
        }
        moved
    }

    /// Moves the serial lane on: grants its growth, starts its next call.
    fn run_lane(&mut self) -> bool {
        let mut moved = false;
        if let Some(blocked) = &self.lane.blocked {
            let (growth, old, new) = (blocked.growth, blocked.old, blocked.new);
            if growth > 0 {
                let parallel_empty = self.held.iter().all(|&held| held == 0);
                if !self.grant_growth(growth, parallel_empty) {
                    return false;
                }
                self.move_held(0, true, old, new);
            }
            let mut blocked = self.lane.blocked.take().expect("checked above");
            let next = self.lane.blocked_at + 1;
            for rec in blocked.outputs.drain(..).rev() {
                self.lane.items.push_front((next, rec));
            }
            self.spare.push(blocked.outputs);
            moved = true;
        }
        if !self.lane.busy {
            if let Some((i, rec)) = self.lane.items.pop_front() {
                self.lane.busy = true;
                let slot = self.new_slot(true);
                self.slots[slot as usize].recs.push(rec);
                self.stages[i].serial_calls += 1;
                self.start_call(i, slot);
                moved = true;
            }
        }
        moved
    }

    /// Live workers per stage now.
    pub(crate) fn workers(&self) -> impl Iterator<Item = usize> + '_ {
        self.stages.iter().map(|stage| stage.live)
    }

    /// Bytes that went through the spill so far.
    pub(crate) fn spilled_bytes(&self) -> u64 {
        self.spill.total_bytes
    }

    /// Source timeouts so far.
    pub(crate) fn source_timeouts(&self) -> u64 {
        self.source.timeouts
    }
}

/// The model's knobs, as the [`Operator`](brigade_controller::Operator) turns them.
/// A change takes effect at once; the caller lets the model move after it
/// ([`Engine::pump`]).
impl Actuator for Engine {
    fn stages(&self) -> usize {
        self.stages.len()
    }

    fn stage_name(&self, stage: usize) -> String {
        self.stages[stage].spec.name.clone()
    }

    fn takes_batches(&self, stage: usize) -> bool {
        self.stages[stage].role == StageRole::BatchSink
    }

    fn set_workers(&mut self, stage: usize, workers: usize) -> Result<usize, String> {
        let set = workers.clamp(1, self.scenario.runtime.max_workers);
        let now = self.now;
        self.stages[stage].set_target(set, now);
        self.knobs.stages[stage].workers = set;
        Ok(set)
    }

    fn set_queue_capacity(&mut self, stage: usize, capacity: usize) {
        self.stages[stage].capacity = capacity;
        self.knobs.stages[stage].queue_capacity = capacity;
    }

    fn set_batch_size(&mut self, stage: usize, size: usize) {
        self.stages[stage].batch_size = size;
        self.knobs.stages[stage].batch_size = size;
    }

    fn set_concurrency_limit(&mut self, stage: usize, limit: Option<usize>) {
        self.stages[stage].concurrency_limit = limit;
        self.knobs.stages[stage].concurrency_limit = limit;
    }

    fn set_rate_limit(&mut self, stage: usize, per_second: Option<f64>) {
        // As in the runtime, a new limit voids the slots of the old one: the next
        // call may start now.
        let now = self.now;
        let stage_sim = &mut self.stages[stage];
        if stage_sim.rate_limit != per_second {
            stage_sim.rate_limit = per_second;
            stage_sim.rate_next = now;
            stage_sim.rate_timer = false;
        }
        self.knobs.stages[stage].rate_limit = per_second;
    }

    fn set_serial_threshold(&mut self, bytes: Option<u64>) {
        self.serial_threshold = bytes;
        self.knobs.serial_threshold = bytes;
    }

    fn set_memory_budget(&mut self, bytes: Option<u64>) {
        self.budget = bytes;
        self.knobs.memory_budget = bytes;
    }
}

#[cfg(test)]
mod test;
