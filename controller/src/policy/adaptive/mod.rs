//! `adaptive`: brigade's own policy, the default. The rules and why are in
//! `DESIGN.md` beside this file, the measurements behind them in `EXPERIMENTS.md`,
//! and every number they use in [`Tuning`].

mod batch;
mod breaker;
mod buffer;
mod knee;
mod open_ceiling;
mod phases;
mod right_size;
mod throttle;
mod tuning;
mod usl;

use super::{clamp_workers, current_workers};
use crate::units::format_bytes;
use crate::{Action, Controller, Decision, Snapshot, StageRole, StageStats};

use breaker::Trip;
use knee::Probe;
use open_ceiling::{cap_decisions, OpenCeiling};
use throttle::{merge_caps, Throttle};
pub use tuning::Tuning;
use usl::Usl;

/// brigade's policy: finds the bottleneck and grows it fast, stops at the knee where
/// more workers stop paying, right-sizes every other stage to its load, shrinks
/// lazily, tunes batches, and sets the memory budget and serial threshold.
///
/// # The rules, in the order they run each tick
///
/// 0. **Breaker** (`adaptive/breaker`): a stage 95% busy, with records waiting, that
///    finished less than 5% of what it took before, two windows in a row, and is not
///    busy on a giant (a record 64× its usual 90th-percentile weight, taken since it
///    last finished one), is stuck (a locked database): every
///    call it starts would hang too, and hung calls outlive the lock. The breaker
///    opens: the target drops to 1, so workers whose calls end retire instead of
///    starting a call that would hang again. After 30 s it half-opens: a rate limit
///    lets one call start at once and then one a minute, each one a probe, made by a
///    worker whose hung call ended (the others wait), or by one fresh worker when
///    every worker is in a call. Once a call ends within 10× its usual call time (it
///    did not hang), or more calls end in a window than it had workers (some worker
///    made several), the rate limit goes (back to the operator's from before, unless
///    the operator set another meanwhile) and the stage gets its count from before
///    the lock back, plus one worker for each call still hung from the lock (running
///    past 10× the usual call time, and since before the recovery): those hold
///    workers and serve nothing. The extra workers go in steps of an eighth of that
///    count as the hung calls end, and once fewer than a step are left the breaker
///    lets go. Until then the stage is the breaker's: no other rule resizes it.
/// 1. **Budget** (`adaptive/budget`): when the operator set no memory budget, set one
///    at 80% of the machine's memory; the serial threshold at half the budget, so
///    that no two giants hold the whole budget between them.
/// 2. **Judge** (`adaptive/knee`): a stage grown two windows ago that is still busy
///    (≥ 85%) and not held back by its output must show at least 15% of the
///    proportional gain in the sink's throughput (doubling from 8 to 16 workers must
///    bring at least +15%; steps under 25% are not judged). When the cores are full,
///    or were when a stage with a worker per core already grew, the step is judged
///    even if the stage now waits on its output. If it brought
///    less but still 1.5% or more (or, on full cores, nothing lost at the sink while
///    the stage itself delivers 1.5% more), the peak lies between the two counts:
///    the stage settles in the middle. If it brought less than 1.5%, the stage is past its
///    knee: contention (a database's peak), the cores (cpu stages share them), or a
///    lock; its count goes back to the count before the step. Where the fitted
///    USL curve puts the peak between the two counts it wins, and it bounds both
///    from above; where it puts the peak at or past the new count, a step with
///    some gain stays. Either way the stage is capped there. The sink's throughput
///    counts for no more than the grown stage delivered (where every later stage
///    passes one record for one): a sink working off a backlog is no baseline.
/// 3. **Grow the bottleneck** (`adaptive/bottleneck`): the stage that is busy (≥ 85%)
///    with a backlog (input queue ≥ 30% full) and not held back by its output.
///    - A batching sink whose batches are full first gets bigger batches (×4 a step,
///      up to where the fixed cost of a call is 5% of it, from a linear fit of
///      call time against batch size, and no bigger than leaves ten calls in a
///      worker's window) and a queue that holds two batches.
///    - Otherwise its workers double (scale up fast), but never past its cap or the
///      peak its USL curve predicts.
///
///    One growth step at a time across the pipeline, so that the throughput it
///    brings is its own. Stages that are all bottlenecks in the same windows grow in
///    the same step: grown alone, each would pass the limit straight to the other.
/// 4. **Buffer** (`adaptive/buffer`): a bottleneck capped at its knee (or at its
///    most workers) that holds the source back, while under 70% of the budget is in flight, gets a
///    queue 4× deeper (at most 60% of the budget at its mean record size): the
///    backlog is worked off when the load drops. Latency for throughput, bounded:
///    the queue holds at most 30 s of the stage's work. Not while the cores are
///    full, unless the bottleneck is the first stage: filling its queue would take
///    cores from it, where the source alone fills the first.
/// 5. **Bursts** (`adaptive/burst`): with no stage short of workers, the last stage
///    whose input queue filled at some moment of two windows in a row, while the
///    first queue did too (the source waited), gets a queue 4× deeper, up to 2 s of
///    its work within 60% of the budget: heavy-tailed calls back records up while
///    the stage keeps up on average.
/// 6. **Right-size the rest** (`adaptive/right-size`): a stage busy ≥ 90% without a
///    backlog, while the cores are not full, grows to `ceil(calls in progress /
///    0.85)`; a stage whose smoothed load
///    fits fewer workers, with its queue under a quarter full, for 30 windows in a
///    row shrinks to that count (scale down lazily, never while a backlog drains);
///    windows in which a giant or a full pipeline holds the source up, or a stage
///    upstream short of workers holds this one's input back, do not count.
/// 7. **Open failures** (`adaptive/open-ceiling`): a stage whose workers failed to
///    open their resource (a connection, a process) in a window is capped at the
///    workers live then (at least its minimum) for 30 s of snapshot time, so no rule
///    grows it into the failure again and again; then it may probe one worker more,
///    and a probe that passes another 30 s without a failure lifts the cap.
/// 8. **Throttling** (`adaptive/throttle`, run right after the breaker): a stage that
///    retried at least 5% of its calls after transient failures (429s, deadlocks,
///    serialization failures), and at least 5 of them, two windows in a row, is past
///    its knee however busy it looks: it does not grow, steps halfway back toward its last
///    unthrottled count (or to ¾ of its workers if throttled there too), seeks the
///    knee halfway between, and stays capped for 30 s after its last throttled
///    window; then it may probe one worker more, and a probe that passes another
///    30 s unthrottled lifts the cap.
///
/// A stage waits a window after a change before its figures count; a stage that
/// reversed direction does not reverse again for 300 ticks, and after two reversals
/// not at all, under the same load: no oscillation. A new load lifts both (its
/// intake, or its calls in progress, risen by 30% since it last moved, for ten
/// windows as the bottleneck, to grow; fallen by 30% to shrink), so a stage shrunk
/// in a slow spell grows back when the spell ends, or when its calls slow. Pinned
/// stages are left alone, and nothing happens while the operator has paused the
/// controller.
///
/// Every figure above is a field of [`Tuning`], and these are its defaults.
#[derive(Debug, Default)]
pub struct Adaptive {
    /// The numbers it decides by.
    tuning: Tuning,
    stages: Vec<StageState>,
    budget_checked: bool,
    /// The sink's throughput of the last two windows, newest last.
    recent: [f64; 2],
}

/// What the policy remembers of a stage.
#[derive(Debug, Default)]
struct StageState {
    /// Tick of the last change to the stage's workers or batch.
    changed_at: u64,
    /// A growth step waiting to be judged.
    probe: Option<Probe>,
    /// Count past which growth was judged useless.
    cap: Option<usize>,
    /// Windows in a row the stage has been a bottleneck.
    streak: u32,
    /// Windows in a row the stage has been stuck.
    stuck_streak: u32,
    /// Windows in a row the stage's input queue was full at some moment.
    full_streak: u32,
    /// The breaker, while it holds new calls back from a stuck stage.
    trip: Option<Trip>,
    /// The stage's call time against its concurrency.
    usl: Usl,
    /// Calls in progress, smoothed over windows.
    load: f64,
    /// Windows in a row the stage looked oversized.
    calm: u32,
    /// Direction of the last worker change: −1, 0 or +1.
    direction: i8,
    /// Tick of the last reversal.
    reversed_at: Option<u64>,
    /// Reversals so far.
    reversals: u32,
    /// Records per second the stage took, smoothed over windows.
    intake: f64,
    /// The same, smoothed over many more windows.
    slow_intake: f64,
    /// `intake` when the stage's workers last changed.
    intake_at_move: Option<f64>,
    /// `load` when the stage's workers last changed.
    load_at_move: Option<f64>,
    /// Median call time of the last window with enough calls, while not stuck.
    usual_call_s: Option<f64>,
    /// 90th-percentile record weight of the last window with enough records.
    usual_record_bytes: Option<f64>,
    /// The stage took a giant and has finished nothing since.
    giant_pending: bool,
    /// (records per call, seconds per call) of recent windows, for batch sinks.
    batch_points: Vec<(f64, f64)>,
    /// The cap after its workers failed to open their resource.
    open_ceiling: Option<OpenCeiling>,
    /// The cap after its calls were throttled, and its last unthrottled count.
    throttle: Throttle,
    /// Bigger batches stopped paying.
    batch_done: bool,
    /// Records per second the stage finished in the last two windows, newest last.
    out_recent: [f64; 2],
    /// Records taken and finished since the start.
    in_total: u64,
    out_total: u64,
}

/// What right-sizing needs to know of the tick.
#[derive(Clone, Copy, Debug)]
struct Now {
    tick: u64,
    /// The sink's throughput this window.
    rate: f64,
    /// The source was held back this window.
    stalled: bool,
    /// A stage upstream was short of workers this window, and may still grow: what
    /// reaches this one is held back, and says nothing of its load once that stage
    /// has grown.
    held_upstream: bool,
    /// A growth step is waiting to be judged.
    probing: bool,
    /// The process uses the cores to the full.
    cpu_full: bool,
}

/// One window's view of a stage, derived from its StageStats.
#[derive(Clone, Copy, Debug)]
struct View {
    workers: usize,
    utilisation: f64,
    blocked: f64,
    /// Input queue depth as a share of its capacity.
    fill: f64,
    /// Mean calls in progress.
    concurrency: f64,
    /// Mean seconds per call; `None` when the stage made no call.
    call_s: Option<f64>,
    /// Mean records per call.
    per_call: f64,
    /// Busy workers mean too few workers. Not for a batching sink whose batches are
    /// not full: it takes all that waits in each call, so it is always busy, and
    /// keeps up.
    short_of_workers: bool,
}

impl View {
    fn of(
        tuning: &Tuning,
        stats: &StageStats,
        workers: usize,
        batch: usize,
        window_s: f64,
    ) -> Self {
        let calls = stats.service_time_us.count;
        let capacity = stats.queue.capacity.max(1) as f64;
        let per_call = if calls > 0 {
            stats.records_in as f64 / calls as f64
        } else {
            0.0
        };
        Self {
            short_of_workers: stats.role != StageRole::BatchSink
                || per_call >= tuning.full_batch * batch as f64,
            workers,
            utilisation: stats.utilisation(),
            blocked: stats.blocked_share(),
            fill: (stats.queue.mean_depth / capacity).min(1.0),
            concurrency: stats.busy_s / window_s,
            call_s: (calls > 0 && stats.busy_s > 0.0).then(|| stats.busy_s / calls as f64),
            per_call,
        }
    }

    fn bottleneck(&self, tuning: &Tuning) -> bool {
        self.utilisation >= tuning.busy
            && self.fill >= tuning.backlog
            && self.blocked < tuning.held_back
            && self.short_of_workers
    }

    /// Workers that would run this window's load at the target utilisation.
    fn right_size(&self, tuning: &Tuning) -> usize {
        ((self.concurrency / tuning.target_utilisation).ceil() as usize).max(1)
    }
}

impl StageState {
    /// Windows in a row the stage must be the bottleneck to grow: two while it is
    /// being sized, ten once it has been left alone for a while (a burst then is
    /// likelier than a new load).
    fn streak_needed(&self, tuning: &Tuning, tick: u64) -> u32 {
        if tick > self.changed_at + tuning.settled_ticks {
            tuning.settled_streak
        } else {
            tuning.streak
        }
    }

    /// Records per second the stage finished over the last two windows.
    fn delivered(&self) -> f64 {
        (self.out_recent[0] + self.out_recent[1]) / 2.0
    }

    /// What the stage took per second before it got stuck: the larger of its smoothed
    /// intake and the slow one, which a few stuck windows barely move.
    fn intake_before_stuck(&self) -> f64 {
        self.intake.max(self.slow_intake)
    }
}

impl Adaptive {
    /// The policy with its defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The policy deciding by `tuning` instead of the defaults: for experiments.
    pub fn with_tuning(tuning: Tuning) -> Self {
        Self {
            tuning,
            ..Self::default()
        }
    }

    /// The throughput a step of stage `i` is judged on: the sink's over the last two
    /// windows (`sink_rate`), but no more than stage `i` delivered. A sink working off
    /// a backlog queued behind `i` (a stage downstream just grew) writes faster than
    /// the pipeline can keep up, and a baseline taken then would hide the next step's
    /// gain. Counted in records, so only where every stage after `i` turns one record
    /// into one (no fan-out, no filter, as seen so far).
    fn rate_past(&self, i: usize, sink_rate: f64) -> f64 {
        let downstream = &self.stages[i + 1..];
        let one_to_one = downstream.iter().all(|state| {
            state.in_total > 0 && state.out_total.abs_diff(state.in_total) * 100 <= state.in_total
        });
        if downstream.is_empty() || !one_to_one {
            return sink_rate;
        }
        sink_rate.min(self.stages[i].delivered())
    }

    fn set_budget(&mut self, snapshot: &Snapshot, out: &mut Vec<Decision>) {
        if self.budget_checked {
            return;
        }
        self.budget_checked = true;
        let memory = snapshot.global.machine_memory_bytes;
        let budget = match snapshot.knobs.memory_budget {
            Some(budget) => budget,
            None if memory > 0 => {
                let budget = (memory as f64 * self.tuning.budget_share) as u64;
                out.push(Decision::new(
                    Action::SetMemoryBudget {
                        bytes: Some(budget),
                    },
                    format!(
                        "adaptive/budget: no budget given; {:.0}% of the machine's {} = {}",
                        self.tuning.budget_share * 100.0,
                        format_bytes(memory),
                        format_bytes(budget)
                    ),
                ));
                budget
            }
            None => return,
        };
        if snapshot.knobs.serial_threshold.is_none() {
            let divisor = self.tuning.serial_divisor;
            let threshold = budget / divisor;
            out.push(Decision::new(
                Action::SetSerialThreshold {
                    bytes: Some(threshold),
                },
                format!(
                    "adaptive/budget: records above budget {} / {divisor} = {} go through the serial lane",
                    format_bytes(budget),
                    format_bytes(threshold)
                ),
            ));
        }
    }
}

impl Controller for Adaptive {
    fn name(&self) -> &str {
        "adaptive"
    }

    /// One tick: the budget once, then the phases in order, each adding its
    /// decisions after the last's; the open-failure caps bound them all.
    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision> {
        let mut out = Vec::new();
        if snapshot.paused || snapshot.stages.is_empty() || snapshot.window_s <= 0.0 {
            return out;
        }
        self.set_budget(snapshot, &mut out);
        let mut window = self.observe(snapshot);
        out.extend(self.breakers(snapshot, &window));
        let before = out.len();
        let throttle_caps = self.throttles(snapshot, &mut out);
        let stepped_down = out.len() > before;
        merge_caps(&mut window.caps, &throttle_caps);
        let undone = self.judge_steps(snapshot, &window, &mut out) || stepped_down;
        let bottlenecks = self.bottlenecks(snapshot, &window);
        // One growth step at a time, so that its effect on throughput is its own. A
        // step undone this tick changes the throughput too: the next step waits.
        let probing = undone || self.probing();
        let grown = if probing {
            Vec::new()
        } else {
            self.grow_bottlenecks(snapshot, &window, &bottlenecks, &mut out)
        };
        let bottleneck = bottlenecks.first().copied();
        self.deepen_queues(snapshot, &window, bottleneck, &grown, probing, &mut out);
        self.right_size_rest(snapshot, &window, bottleneck, &grown, undone, &mut out);
        let throttled = format!(
            "it was throttled within {:.0} s",
            self.tuning.throttle_cooldown_s
        );
        cap_decisions(&mut out, &throttle_caps, &throttled, |i| {
            current_workers(snapshot, i)
        });
        let failed = format!(
            "its workers failed to open their resource within {:.0} s",
            self.tuning.open_cooldown_s
        );
        cap_decisions(&mut out, &window.caps, &failed, |i| {
            current_workers(snapshot, i)
        });
        out
    }
}

impl Adaptive {
    /// Sets stage `i` to `to` workers whatever its direction before: the breaker acts
    /// on an emergency, not on a trend.
    fn force_resize(&mut self, i: usize, to: usize, tick: u64, reason: String) -> Option<Decision> {
        let state = &mut self.stages[i];
        state.changed_at = tick;
        state.direction = 0;
        Some(Decision::new(
            Action::SetWorkers {
                stage: i,
                workers: to,
            },
            reason,
        ))
    }

    /// Sets stage `i` from `from` to `to` workers unless that would reverse its
    /// direction too soon.
    fn resize(
        &mut self,
        i: usize,
        from: usize,
        to: usize,
        tick: u64,
        reason: String,
    ) -> Option<Decision> {
        if to == from {
            return None;
        }
        let state = &mut self.stages[i];
        let direction = if to > from { 1 } else { -1 };
        if state.direction == -direction {
            // Reversing under the load the stage last moved under is oscillation;
            // growing under a load that rose since, or shrinking under one that
            // fell, answers a new load: more (or fewer) records (a slow spell that
            // ended), or more (or less) time in each (a database that slowed), so
            // more (or fewer) calls in progress. A rise counts once it has lasted: a
            // stage filling a queue just made deeper is busy for a moment only.
            // Calls in progress cannot show more than the workers: a stage shrunk to
            // run its load at the target utilisation that now keeps every worker
            // busy has seen its load rise past the target's headroom.
            let tuning = &self.tuning;
            let moved = |now: f64, then: Option<f64>| {
                then.is_some_and(|r| (now - r) * f64::from(direction) >= tuning.load_change * r)
            };
            let load_moved = if direction > 0 {
                state
                    .load_at_move
                    .is_some_and(|r| state.load >= r / tuning.target_utilisation)
            } else {
                moved(state.load, state.load_at_move)
            };
            let new_load = (moved(state.intake, state.intake_at_move) || load_moved)
                && (direction < 0 || state.streak >= tuning.settled_streak);
            let cooling = state
                .reversed_at
                .is_some_and(|at| tick < at + tuning.reversal_cooldown);
            if !new_load && (cooling || state.reversals >= tuning.free_reversals) {
                return None;
            }
            state.reversed_at = Some(tick);
            state.reversals += 1;
        }
        state.intake_at_move = Some(state.intake);
        state.load_at_move = Some(state.load);
        state.direction = direction;
        state.changed_at = tick;
        Some(Decision::new(
            Action::SetWorkers {
                stage: i,
                workers: to,
            },
            reason,
        ))
    }
}

/// True if the process uses the machine's cores to the full.
fn cores_full(tuning: &Tuning, snapshot: &Snapshot) -> bool {
    let cores = snapshot.global.cores as f64;
    cores > 0.0 && snapshot.global.cpu_percent >= tuning.cpu_full * cores * 100.0
}

/// The stage's typical call time this window, seconds: the median, which a few giant
/// records do not drag as they drag the mean.
fn typical_call_s(tuning: &Tuning, stats: &StageStats) -> Option<f64> {
    let histogram = &stats.service_time_us;
    (histogram.count >= tuning.typical_calls && histogram.p50 > 0)
        .then(|| histogram.p50 as f64 / 1e6)
}

#[cfg(test)]
mod design_test;
#[cfg(test)]
mod test;
