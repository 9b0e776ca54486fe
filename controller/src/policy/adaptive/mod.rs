//! `adaptive`: brigade's own policy, the default. The design notes are in `README.md`
//! beside this file.

mod usl;

use super::{clamp_workers, current_workers};
use crate::units::format_bytes;
use crate::{Action, Controller, Decision, Snapshot, StageKnobs, StageRole, StageStats};

use usl::Usl;

/// Utilisation a right-sized stage aims for: headroom for bursts without paying for
/// idle workers.
const TARGET_UTILISATION: f64 = 0.85;
/// A stage at or above this utilisation with a backlog is the bottleneck.
const BUSY: f64 = 0.85;
/// Share of its input queue's capacity that counts as a backlog.
const BACKLOG: f64 = 0.3;
/// A stage blocked on output more than this is held back by something downstream.
const HELD_BACK: f64 = 0.3;
/// A growth step must bring at least this share of the proportional gain in
/// throughput, or the stage is past its knee.
const KNEE: f64 = 0.15;
/// The cores are full when the process uses this share of them.
const CPU_FULL: f64 = 0.9;
/// A source unread for longer than this share of a window is stalled.
const STALL_SHARE: f64 = 0.25;
/// An input queue fuller than this share of its capacity is a backlog to drain
/// before shrinking.
const CALM_FILL: f64 = 0.25;
/// Weight of the newest window in the smoothed load.
const LOAD_SMOOTHING: f64 = 0.2;
/// Weight of the newest window in the slowly smoothed intake.
const SLOW_SMOOTHING: f64 = 0.02;
/// A gain in throughput this large pays for a step whatever its size: the oracle is
/// the most throughput, and a percent or two of it is worth a worker.
const MEASURABLE_GAIN: f64 = 0.015;
/// Windows in a row a stage must be the bottleneck before it grows: a burst (a giant,
/// a hiccup downstream) is not a shortage of workers.
const STREAK: u32 = 2;
/// Ticks after its last change when a stage counts as settled.
const SETTLED_TICKS: u64 = 30;
/// Windows in a row a settled stage must be the bottleneck before it grows.
const SETTLED_STREAK: u32 = 10;
/// Below this many workers a bottleneck grows ×4 a step, above it ×2.
const FAST_START: usize = 8;
/// Growth steps smaller than this share of the count are not judged: their effect is
/// within the noise of a window.
const JUDGED_STEP: f64 = 0.25;
/// Windows in a row a stage must look oversized before it shrinks (scale down lazily).
const CALM_TICKS: u32 = 30;
/// Windows after the first full window following a change of a stage before its
/// figures are trusted again.
const SETTLE_TICKS: u64 = 1;
/// A stage whose worker count reversed direction waits this many ticks before it
/// may reverse again under the same load.
const REVERSAL_COOLDOWN: u64 = 300;
/// Reversals a stage may make under the same load; past them, a stage reverses again
/// only when its intake has changed by `LOAD_CHANGE` since its last reversal.
const FREE_REVERSALS: u32 = 2;
/// A change of intake that counts as a new load.
const LOAD_CHANGE: f64 = 0.3;
/// A busy stage that finished less than this share of what it took before is stuck
/// (a locked database): every call it starts now will hang too.
const STUCK: f64 = 0.05;
/// Windows in a row a stage must be stuck before the breaker trips.
const STUCK_TICKS: u32 = 2;
/// A call that ends within this many times the stage's usual call time did not hang
/// behind the lock: the lock is over.
const UNHUNG_CALL: f64 = 10.0;
/// A record this many times the stage's usual 90th-percentile record weight is a
/// giant: a stage busy on one finishes nothing for a while, and is not locked. (The
/// tail, not the median: with weights as spread as s3-idle-timeout's, one record in
/// four thousand weighs 64 medians.)
const GIANT: f64 = 64.0;
/// Seconds a tripped breaker stays open (workers retire as their hung calls end)
/// before it half-opens and makes its first probe: Envoy's default base ejection time
/// for an outlier host. A short lock is over by then.
const FIRST_PROBE_S: f64 = 30.0;
/// Seconds between the probes after the first: resilience4j's default wait in the
/// open state. A lock that outlasted the first probe is a long one, and every probe
/// made during it hangs as long as the calls it caught.
const PROBE_S: f64 = 60.0;
/// After a recovery the pool makes room for the calls still hung, in steps of at least
/// this share of its count from before the lock (and at least one worker); fewer hung
/// calls than a step are counted back into that count, and the breaker lets go.
const HUNG_STEP: f64 = 0.125;
/// Share of the machine's memory given to records in flight when the operator set no
/// budget; the rest is for the process itself and one record's growth past the cap.
const BUDGET_SHARE: f64 = 0.8;
/// Records above budget / this go through the serial lane, so that no few giants
/// can hold the whole budget between them.
const SERIAL_DIVISOR: u64 = 2;
/// A deeper queue only while bytes in flight are under this share of the budget.
const BUFFER_ROOM: f64 = 0.7;
/// A queue holds at most this share of the budget, at the stage's mean record size.
const BUFFER_SHARE: f64 = 0.6;
/// A deeper queue holds at most this many seconds of the stage's work: the latency a
/// buffered record may pay.
const MAX_BUFFER_S: f64 = 30.0;
/// Deepest queue the policy asks for, records.
const MAX_QUEUE: usize = 65_536;
/// Windows in a row a queue must fill at some moment to be deepened for bursts.
const BURST_WINDOWS: u32 = 2;
/// Most seconds of a stage's work a queue deepened for bursts holds.
const BURST_S: f64 = 2.0;
/// Calls a window needs before its median call time stands for the stage's.
const TYPICAL_CALLS: u64 = 20;
/// A batching sink whose calls take at least this share of the batch size has full
/// batches: it could take more per call.
const FULL_BATCH: f64 = 0.8;
/// Batches grow until the per-record part of a call is this many times its fixed
/// part (the fixed cost is then 1/(1 + this) of a call: 5%).
const BATCH_AMORTISED: f64 = 19.0;
/// Most records per call a batching sink is given.
const MAX_BATCH: usize = 16_384;
/// Windows of (batch, call time) kept for the batch fit.
const BATCH_POINTS: usize = 16;
/// Each batch step multiplies the batch size by at most this.
const BATCH_STEP: usize = 4;

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
///      up to where the per-call cost is a fifth of the call, from a linear fit of
///      call time against batch size) and a queue that holds two batches.
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
///
/// A stage waits a window after a change before its figures count; a stage that
/// reversed direction does not reverse again for 300 ticks, and after two reversals
/// not at all, under the same load: no oscillation. A new load lifts both (its
/// intake, or its calls in progress, risen by 30% since it last moved, for ten
/// windows as the bottleneck, to grow; fallen by 30% to shrink), so a stage shrunk
/// in a slow spell grows back when the spell ends, or when its calls slow. Pinned
/// stages are left alone, and nothing happens while the operator has paused the
/// controller.
#[derive(Debug, Default)]
pub struct Adaptive {
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
    /// Bigger batches stopped paying.
    batch_done: bool,
    /// Records per second the stage finished in the last two windows, newest last.
    out_recent: [f64; 2],
    /// Records taken and finished since the start.
    in_total: u64,
    out_total: u64,
}

/// A tripped breaker: the stage was stuck, new calls are held back.
#[derive(Clone, Copy, Debug)]
struct Trip {
    /// The stage's count when it tripped, given back when it recovers.
    restore: usize,
    /// Its median call time before it got stuck.
    usual_call_s: Option<f64>,
    /// The rate limit in force before it tripped, given back when it recovers.
    rate_limit: Option<f64>,
    /// Seconds since it tripped.
    open_s: f64,
    /// Where the breaker stands.
    phase: TripPhase,
}

/// The states of a tripped breaker.
#[derive(Clone, Copy, Debug, PartialEq)]
enum TripPhase {
    /// Workers retire as their hung calls end.
    Open,
    /// One call per [`PROBE_S`] may start (a rate limit of `probe_rate` records per
    /// second), each one a probe; a fresh worker is added for a probe only when every
    /// worker is in a call. `spared_s` is `open_s` when the last probe's worker was
    /// added or found waiting.
    HalfOpen { spared_s: f64, probe_rate: f64 },
    /// Calls end again, but those that started during the lock still hang and hold
    /// workers: the pool is its count from before the lock plus `hung` more. `since_s`
    /// is `open_s` when the stage recovered.
    Draining { since_s: f64, hung: usize },
}

/// A growth step: from `from` to `to` workers, with the sink's throughput before it.
#[derive(Clone, Copy, Debug)]
struct Probe {
    from: usize,
    to: usize,
    rate_before: f64,
    /// What the stage itself delivered per second before it.
    delivered_before: f64,
    /// The cores were full when the step was taken and the stage had a worker per
    /// core already: more workers could only share the cores, unless they wait on
    /// I/O, and the throughput tells which.
    past_the_cores: bool,
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
    fn of(stats: &StageStats, workers: usize, batch: usize, window_s: f64) -> Self {
        let calls = stats.service_time_us.count;
        let capacity = stats.queue.capacity.max(1) as f64;
        let per_call = if calls > 0 {
            stats.records_in as f64 / calls as f64
        } else {
            0.0
        };
        Self {
            short_of_workers: stats.role != StageRole::BatchSink
                || per_call >= FULL_BATCH * batch as f64,
            workers,
            utilisation: stats.utilisation(),
            blocked: stats.blocked_share(),
            fill: (stats.queue.mean_depth / capacity).min(1.0),
            concurrency: stats.busy_s / window_s,
            call_s: (calls > 0 && stats.busy_s > 0.0).then(|| stats.busy_s / calls as f64),
            per_call,
        }
    }

    fn bottleneck(&self) -> bool {
        self.utilisation >= BUSY
            && self.fill >= BACKLOG
            && self.blocked < HELD_BACK
            && self.short_of_workers
    }

    /// Workers that would run this window's load at the target utilisation.
    fn right_size(&self) -> usize {
        ((self.concurrency / TARGET_UTILISATION).ceil() as usize).max(1)
    }
}

impl StageState {
    /// Windows in a row the stage must be the bottleneck to grow: two while it is
    /// being sized, ten once it has been left alone for a while (a burst then is
    /// likelier than a new load).
    fn streak_needed(&self, tick: u64) -> u32 {
        if tick > self.changed_at + SETTLED_TICKS {
            SETTLED_STREAK
        } else {
            STREAK
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
                let budget = (memory as f64 * BUDGET_SHARE) as u64;
                out.push(Decision::new(
                    Action::SetMemoryBudget {
                        bytes: Some(budget),
                    },
                    format!(
                        "adaptive/budget: no budget given; {:.0}% of the machine's {} = {}",
                        BUDGET_SHARE * 100.0,
                        format_bytes(memory),
                        format_bytes(budget)
                    ),
                ));
                budget
            }
            None => return,
        };
        if snapshot.knobs.serial_threshold.is_none() {
            let threshold = budget / SERIAL_DIVISOR;
            out.push(Decision::new(
                Action::SetSerialThreshold {
                    bytes: Some(threshold),
                },
                format!(
                    "adaptive/budget: records above budget {} / {SERIAL_DIVISOR} = {} go through the serial lane",
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

    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision> {
        let mut out = Vec::new();
        if snapshot.paused || snapshot.stages.is_empty() || snapshot.window_s <= 0.0 {
            return out;
        }
        self.set_budget(snapshot, &mut out);
        self.stages
            .resize_with(snapshot.stages.len(), StageState::default);
        let tick = snapshot.tick;
        let views: Vec<View> = snapshot
            .stages
            .iter()
            .enumerate()
            .map(|(i, stats)| {
                let batch = snapshot.knobs.stages.get(i).map_or(1, |k| k.batch_size);
                View::of(
                    stats,
                    current_workers(snapshot, i),
                    batch,
                    snapshot.window_s,
                )
            })
            .collect();
        let sink = snapshot.stages.last().expect("checked non-empty");
        let now_rate = sink.observed_rate(snapshot.window_s);
        self.recent = [self.recent[1], now_rate];
        for (state, stats) in self.stages.iter_mut().zip(&snapshot.stages) {
            let out = stats.records_out as f64 / snapshot.window_s;
            state.out_recent = [state.out_recent[1], out];
            state.in_total += stats.records_in;
            state.out_total += stats.records_out;
        }
        // Steps are judged, and their baselines taken, on two windows: one window
        // of a bursty pipeline is too noisy to tell a few percent.
        let rate = (self.recent[0] + self.recent[1]) / 2.0;
        // A source left unread for a good part of the window is held back (by the
        // budget, a giant, a full queue): low utilisation then is a stall, not a
        // drop in load, and no reason to shrink.
        // A source read to its end leaves a pipeline draining: no load to size for.
        let stalled = snapshot.global.source.longest_idle_s > STALL_SHARE * snapshot.window_s
            || snapshot.global.source.exhausted;
        let cpu_full = cores_full(snapshot);
        for (i, view) in views.iter().enumerate() {
            let state = &mut self.stages[i];
            state.streak = if view.bottleneck() {
                state.streak + 1
            } else {
                0
            };
            let queue = &snapshot.stages[i].queue;
            state.full_streak = if queue.capacity > 0 && queue.max_depth >= queue.capacity {
                state.full_streak + 1
            } else {
                0
            };
            let intake = snapshot.stages[i].records_in as f64 / snapshot.window_s;
            state.intake += LOAD_SMOOTHING * (intake - state.intake);
            state.slow_intake += SLOW_SMOOTHING * (intake - state.slow_intake);
            if state.trip.is_none() && state.stuck_streak == 0 {
                state.usual_call_s = typical_call_s(&snapshot.stages[i]).or(state.usual_call_s);
            }
            // Against the usual weight, or the window's own before there is one (a
            // giant in the very first window).
            let sizes = &snapshot.stages[i].record_size_bytes;
            let took_giant = state
                .usual_record_bytes
                .or_else(|| (sizes.count >= 2 && sizes.p90 > 0).then_some(sizes.p90 as f64))
                .is_some_and(|usual| sizes.max as f64 >= GIANT * usual);
            state.giant_pending =
                took_giant || (state.giant_pending && snapshot.stages[i].records_out == 0);
            if sizes.count >= TYPICAL_CALLS && sizes.p90 > 0 {
                state.usual_record_bytes = Some(sizes.p90 as f64);
            }
            if tick > state.changed_at + SETTLE_TICKS {
                if let Some(typical) = typical_call_s(&snapshot.stages[i]) {
                    if state.usl.observe(view.concurrency, typical) {
                        // The calls changed: what batches cost before says nothing now.
                        state.batch_points.clear();
                        state.batch_done = false;
                    }
                }
                state.load = if state.load > 0.0 {
                    state.load + LOAD_SMOOTHING * (view.concurrency - state.load)
                } else {
                    view.concurrency
                };
                if let Some(call_s) = view.call_s {
                    if snapshot.stages[i].role == StageRole::BatchSink {
                        if state.batch_points.len() == BATCH_POINTS {
                            state.batch_points.remove(0);
                        }
                        state.batch_points.push((view.per_call, call_s));
                    }
                }
            }
        }
        for (i, view) in views.iter().enumerate() {
            let stats = &snapshot.stages[i];
            if stats.workers.pinned {
                continue;
            }
            let knobs = snapshot.knobs.stages.get(i).cloned().unwrap_or_default();
            out.extend(self.breaker(i, stats, &knobs, view, tick, snapshot.window_s));
        }
        let mut undone = false;
        for (i, view) in views.iter().enumerate() {
            let stats = &snapshot.stages[i];
            if stats.workers.pinned
                || self.stages[i].trip.is_some()
                || tick <= self.stages[i].changed_at + SETTLE_TICKS
            {
                continue;
            }
            let rate = self.rate_past(i, rate);
            if let Some(decision) = self.judge(i, stats, view, rate, tick, cpu_full) {
                undone = true;
                out.push(decision);
            }
        }
        // Every stage short of workers, the fullest queue first.
        let mut bottlenecks: Vec<usize> = views
            .iter()
            .enumerate()
            .filter(|(i, view)| {
                view.bottleneck()
                    && self.stages[*i].streak >= self.stages[*i].streak_needed(tick)
                    && self.stages[*i].trip.is_none()
                    && self.stages[*i].stuck_streak == 0
                    && !snapshot.stages[*i].workers.pinned
                    && tick > self.stages[*i].changed_at + SETTLE_TICKS
            })
            .map(|(i, _)| i)
            .collect();
        bottlenecks.sort_by(|&a, &b| views[b].fill.total_cmp(&views[a].fill));
        let bottleneck = bottlenecks.first().copied();
        // One growth step at a time, so that its effect on throughput is its own.
        // A step undone this tick changes the throughput too: the next step waits.
        // Stages short of workers in the same windows grow in the same step: each
        // alone would only pass the limit to the other.
        let probing = undone || self.stages.iter().any(|state| state.probe.is_some());
        let mut grown = Vec::new();
        if !probing {
            for &b in &bottlenecks {
                let rate = self.rate_past(b, rate);
                let decisions = self.grow(b, &snapshot.stages[b], &views[b], rate, tick, snapshot);
                if !decisions.is_empty() {
                    grown.push(b);
                }
                out.extend(decisions);
            }
        }
        // Capped at its knee, or at the most workers it may have: it cannot grow.
        let capped = |b: usize| {
            self.stages[b].cap.is_some() || views[b].workers >= snapshot.stages[b].workers.max
        };
        if let Some(b) = bottleneck.filter(|&b| !grown.contains(&b) && capped(b)) {
            out.extend(buffer(b, &snapshot.stages[b], &views[b], snapshot));
        }
        if !probing && !views.iter().any(View::bottleneck) {
            out.extend(absorb(&self.stages, snapshot));
        }
        for (i, view) in views.iter().enumerate() {
            let stats = &snapshot.stages[i];
            if grown.contains(&i)
                || Some(i) == bottleneck
                || stats.workers.pinned
                || self.stages[i].trip.is_some()
                || tick <= self.stages[i].changed_at + SETTLE_TICKS
            {
                continue;
            }
            let now = Now {
                tick,
                rate: self.rate_past(i, rate),
                stalled,
                held_upstream: (0..i).any(|j| {
                    let stats = &snapshot.stages[j];
                    let most = self.stages[j].cap.unwrap_or(stats.workers.max);
                    views[j].bottleneck() && views[j].workers < most && !stats.workers.pinned
                }),
                probing: undone || self.stages.iter().any(|state| state.probe.is_some()),
                cpu_full,
            };
            if let Some(decision) = self.right_size(i, stats, view, now) {
                out.push(decision);
            }
        }
        out
    }
}

impl Adaptive {
    /// Rule 0: the breaker. A stage whose workers are all busy and finish nothing
    /// (a locked database) gets no new calls: every one would hang too, and hung calls
    /// outlive the lock. Open, its workers retire as their hung calls end; half-open,
    /// one call may start at once and then one every [`PROBE_S`], each one a probe;
    /// once calls end as they did before, it gets its workers back, plus one for every
    /// call still hung, until those end.
    fn breaker(
        &mut self,
        i: usize,
        stats: &StageStats,
        knobs: &StageKnobs,
        view: &View,
        tick: u64,
        window_s: f64,
    ) -> Vec<Decision> {
        let state = &mut self.stages[i];
        let finished = stats.records_out as f64 / window_s;
        // With nothing waiting there is no call to hold back: the workers left in
        // calls at the end of a drain, say.
        let stuck = state.intake > 0.0
            && !state.giant_pending
            && stats.queue.mean_depth >= 1.0
            && view.utilisation >= 0.95
            && finished < STUCK * state.intake_before_stuck();
        state.stuck_streak = if stuck { state.stuck_streak + 1 } else { 0 };
        if let Some(trip) = state.trip.as_mut() {
            trip.open_s += window_s;
            if let TripPhase::Draining { since_s, hung } = trip.phase {
                if state.stuck_streak < STUCK_TICKS {
                    return self
                        .drain(i, stats, tick, since_s, hung)
                        .into_iter()
                        .collect();
                }
            } else {
                return self.recover(i, stats, knobs, view, tick, finished);
            }
        }
        if state.stuck_streak < STUCK_TICKS {
            return Vec::new();
        }
        state.stuck_streak = 0;
        let intake = state.intake_before_stuck();
        // Stuck again while draining: the count to give back is still the one from
        // before the first lock, not the one swollen by the calls it left hung.
        let restore = state.trip.map_or(view.workers, |trip| trip.restore);
        state.trip = Some(Trip {
            restore,
            usual_call_s: state.usual_call_s,
            rate_limit: knobs.rate_limit,
            open_s: 0.0,
            phase: TripPhase::Open,
        });
        state.probe = None;
        let reason = format!(
            "adaptive/breaker: {} is {:.0}% busy and finished {finished:.0} records/s \
             (it took {intake:.0}/s): stuck; open: workers retire as their calls end: {} → 1",
            stats.name,
            view.utilisation * 100.0,
            view.workers
        );
        self.force_resize(i, 1, tick, reason).into_iter().collect()
    }

    /// Stage `i`'s tripped breaker.
    fn trip(&mut self, i: usize) -> &mut Trip {
        self.stages[i]
            .trip
            .as_mut()
            .expect("the breaker is tripped")
    }

    /// The breaker while open or half-open: recovers the stage once its calls end
    /// again; half-opens it after [`FIRST_PROBE_S`], and then finds a worker for a
    /// probe every [`PROBE_S`].
    fn recover(
        &mut self,
        i: usize,
        stats: &StageStats,
        knobs: &StageKnobs,
        view: &View,
        tick: u64,
        finished: f64,
    ) -> Vec<Decision> {
        let trip = self.trip(i);
        // A call that ended in about its usual time did not hang; and a hung
        // call ends once, so more calls ending in a window than the workers held
        // before means some worker made several. Either way calls end again.
        let calls = &stats.service_time_us;
        let fastest_s = calls.min as f64 / 1e6;
        let unhung = calls.count > 0
            && trip
                .usual_call_s
                .is_some_and(|usual| fastest_s <= UNHUNG_CALL * usual);
        if unhung || calls.count > trip.restore as u64 {
            let restore = trip.restore;
            let rate_limit = trip.rate_limit;
            // The probes' rate limit goes, unless the operator has set another since.
            let paced = match trip.phase {
                TripPhase::HalfOpen { probe_rate, .. } => knobs
                    .rate_limit
                    .is_some_and(|limit| (limit / probe_rate - 1.0).abs() < 1e-6),
                _ => false,
            };
            let hung = hung_calls(stats, trip.usual_call_s, 0.0);
            let since_s = trip.open_s;
            let held = if hung >= hung_step(restore) {
                trip.phase = TripPhase::Draining { since_s, hung };
                clamp_workers(&stats.workers, restore + hung)
            } else {
                self.stages[i].trip = None;
                restore
            };
            self.stages[i].probe = None;
            self.stages[i].stuck_streak = 0;
            let reason = format!(
                "adaptive/breaker: {} finished {finished:.0} records/s again, its \
                 fastest call in {:.1} ms; giving back its {restore} workers, plus one \
                 for each of the {hung} calls still hung: {} → {held}",
                stats.name,
                fastest_s * 1e3,
                view.workers
            );
            let mut out = Vec::new();
            if paced {
                out.push(Decision::new(
                    Action::SetRateLimit {
                        stage: i,
                        per_second: rate_limit,
                    },
                    format!(
                        "adaptive/breaker: {} calls end again: no more paced probes",
                        stats.name
                    ),
                ));
            }
            out.extend(self.force_resize(i, held, tick, reason));
            return out;
        }
        let open_s = trip.open_s;
        let in_calls = stats.running_calls_s.len() >= stats.workers.live;
        match trip.phase {
            TripPhase::Open if open_s >= FIRST_PROBE_S => {
                // One call (one batch) per PROBE_S, the first at once.
                let per_second = knobs.batch_size.max(1) as f64 / PROBE_S;
                trip.phase = TripPhase::HalfOpen {
                    spared_s: open_s,
                    probe_rate: per_second,
                };
                let to = stats.workers.live + usize::from(in_calls);
                let reason = format!(
                    "adaptive/breaker: {} still stuck after {open_s:.0} s ({finished:.0} \
                     records/s); half-open: one call every {PROBE_S:.0} s, each a probe, \
                     made by a worker whose hung call ended or by one fresh worker: {} → {to}",
                    stats.name, view.workers
                );
                let mut out = vec![Decision::new(
                    Action::SetRateLimit {
                        stage: i,
                        per_second: Some(per_second),
                    },
                    format!(
                        "adaptive/breaker: {} half-open: one call every {PROBE_S:.0} s",
                        stats.name
                    ),
                )];
                out.extend(self.force_resize(i, to, tick, reason));
                out
            }
            TripPhase::HalfOpen {
                spared_s,
                probe_rate,
            } if open_s - spared_s >= PROBE_S => {
                trip.phase = TripPhase::HalfOpen {
                    spared_s: open_s,
                    probe_rate,
                };
                if !in_calls {
                    // A worker whose hung call ended waits for the next probe.
                    return Vec::new();
                }
                let to = stats.workers.live + 1;
                let reason = format!(
                    "adaptive/breaker: {} still stuck after {open_s:.0} s, every worker in \
                     a call: one fresh worker for the next probe: {} → {to}",
                    stats.name, view.workers
                );
                self.force_resize(i, to, tick, reason).into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// The breaker after a recovery: the pool keeps room for the calls that started
    /// during the lock and still hang (`hung` of them when it last moved), and lets go
    /// once fewer than a step of them are left.
    fn drain(
        &mut self,
        i: usize,
        stats: &StageStats,
        tick: u64,
        since_s: f64,
        hung: usize,
    ) -> Option<Decision> {
        let trip = self.trip(i);
        let restore = trip.restore;
        let now_hung = hung_calls(stats, trip.usual_call_s, trip.open_s - since_s);
        let step = hung_step(restore);
        let held = stats.workers.target;
        if now_hung < step {
            self.stages[i].trip = None;
            let reason = format!(
                "adaptive/breaker: {} has {now_hung} calls left hung from the lock; \
                 counting them back into its {restore} workers: {held} → {restore}",
                stats.name
            );
            return self.force_resize(i, restore, tick, reason);
        }
        if now_hung.abs_diff(hung) < step {
            return None;
        }
        trip.phase = TripPhase::Draining {
            since_s,
            hung: now_hung,
        };
        let to = clamp_workers(&stats.workers, restore + now_hung);
        let reason = format!(
            "adaptive/breaker: {} has {now_hung} calls hung since the lock (the longest \
             for {:.0} s); its {restore} workers plus one for each: {held} → {to}",
            stats.name,
            stats.running_calls_s.first().copied().unwrap_or(0.0)
        );
        self.force_resize(i, to, tick, reason)
    }

    /// Rule 2: judges last tick's growth step of stage `i`.
    fn judge(
        &mut self,
        i: usize,
        stats: &StageStats,
        view: &View,
        rate: f64,
        tick: u64,
        cpu_full: bool,
    ) -> Option<Decision> {
        let probe = self.stages[i].probe.take()?;
        // A stage that now has time to spare, or waits on its output, passed the
        // limit on to another stage: the step did what it could. Unless the cores
        // are full: then a cpu stage's new workers only took cores from the others,
        // and the throughput alone says whether the step paid.
        // A step past the cores taken on full cores is judged so too: the burst that
        // filled them may be over by now, and leave the stage idle.
        let cpu_full = cpu_full || probe.past_the_cores;
        let passed_on = view.utilisation < BUSY || view.blocked >= HELD_BACK;
        if (passed_on && !cpu_full) || probe.rate_before <= 0.0 {
            return None;
        }
        let gain = rate / probe.rate_before - 1.0;
        let proportional = probe.to as f64 / probe.from as f64 - 1.0;
        let pays = KNEE * proportional;
        if proportional < JUDGED_STEP || gain >= pays {
            return None;
        }
        // Some gain, less than the step's share: the peak lies between the two
        // counts, so settle in the (geometric) middle. No measurable gain: back to where it was.
        // On full cores a gain under the threshold may still be real: the stage
        // delivers measurably more and the sink lost nothing.
        let delivered_gain = self.stages[i].delivered() / probe.delivered_before - 1.0;
        let some_gain = gain >= MEASURABLE_GAIN
            || (cpu_full && gain >= 0.0 && delivered_gain >= MEASURABLE_GAIN);
        let (best, verdict) = if some_gain {
            (
                (((probe.from * probe.to) as f64).sqrt().round() as usize)
                    .clamp(probe.from + 1, probe.to),
                "near its knee",
            )
        } else {
            (probe.from, "past its knee")
        };
        let state = &mut self.stages[i];
        // The fitted curve knows better where the peak lies between the two counts,
        // and below them (cpu stages sharing full cores fit as heavy contention,
        // with a peak at a few workers); one window's throughput knows better above.
        // A step that brought some gain toward a peak the curve puts at or past it
        // stays: the middle would give back part of a gain both saw.
        let best = match state.usl.cheapest_near_peak(stats.workers.max.max(1)) {
            Some(peak) if peak > probe.from && peak < probe.to => peak,
            Some(peak) if some_gain && peak >= probe.to => probe.to,
            Some(peak) => best.min(peak),
            None => best,
        };
        let best = clamp_workers(&stats.workers, best);
        state.cap = Some(best);
        let reason = format!(
            "adaptive/knee: {} went {} → {} workers and the sink's throughput moved {:+.1}% \
             (a step that pays brings ≥ {:+.1}%); {verdict}, holding at {best}{}",
            stats.name,
            probe.from,
            probe.to,
            gain * 100.0,
            pays * 100.0,
            state.usl.describe()
        );
        self.resize(i, view.workers, best, tick, reason)
    }

    /// Rule 3: grows the bottleneck `b`.
    fn grow(
        &mut self,
        b: usize,
        stats: &StageStats,
        view: &View,
        rate: f64,
        tick: u64,
        snapshot: &Snapshot,
    ) -> Vec<Decision> {
        let mut out = Vec::new();
        if stats.role == StageRole::BatchSink {
            if let Some(decisions) = self.grow_batch(b, stats, view, tick, snapshot) {
                return decisions;
            }
        }
        let state = &self.stages[b];
        let most = state.cap.unwrap_or(stats.workers.max);
        // Scale up fast: ×4 while the pool is small, ×2 after
        // (Not ×4 on a machine already half busy: a cpu stage would take cores from
        // the others before the step can be judged.)
        let cores = snapshot.global.cores as f64;
        let half_busy = cores > 0.0 && snapshot.global.cpu_percent >= 50.0 * cores;
        let factor = if view.workers < FAST_START && !half_busy {
            4
        } else {
            2
        };
        let mut to = (view.workers * factor).min(most);
        if let Some(peak) = state.usl.cheapest_near_peak(stats.workers.max.max(1)) {
            // Up to the fitted peak, but in a step big enough to be judged: small
            // unjudged steps would ratchet a noisy stage up for nothing.
            let judged = (view.workers as f64 * (1.0 + JUDGED_STEP)).ceil() as usize;
            to = to.min(peak.max(judged));
        }
        let to = clamp_workers(&stats.workers, to);
        if to <= view.workers {
            return out;
        }
        let reason = format!(
            "adaptive/bottleneck: {} is {:.0}% busy with its queue {:.0}% full; {} → {to} workers{}",
            stats.name,
            view.utilisation * 100.0,
            view.fill * 100.0,
            view.workers,
            self.stages[b].usl.describe()
        );
        if let Some(decision) = self.resize(b, view.workers, to, tick, reason) {
            let delivered_before = self.stages[b].delivered();
            self.stages[b].probe = Some(Probe {
                from: view.workers,
                to,
                rate_before: rate,
                delivered_before,
                past_the_cores: cores_full(snapshot) && view.workers >= snapshot.global.cores,
            });
            out.push(decision);
        }
        out
    }

    /// Rule 3 for a batching sink whose batches are full: bigger batches first.
    fn grow_batch(
        &mut self,
        b: usize,
        stats: &StageStats,
        view: &View,
        tick: u64,
        snapshot: &Snapshot,
    ) -> Option<Vec<Decision>> {
        let knobs = snapshot.knobs.stages.get(b)?;
        let batch = knobs.batch_size.max(1);
        let state = &mut self.stages[b];
        if state.batch_done || view.per_call < FULL_BATCH * batch as f64 {
            return None;
        }
        let mut target = (batch * BATCH_STEP).min(MAX_BATCH);
        let fit = fit_line(&state.batch_points);
        if let Some((fixed, per_record)) = fit {
            if per_record > 0.0 {
                let enough = (BATCH_AMORTISED * fixed / per_record).ceil() as usize;
                target = target.min(enough.max(1));
            }
        }
        if let Some(budget) = snapshot.global.memory_budget {
            let size = stats.record_size_bytes.mean.max(1.0);
            target = target.min(((budget as f64 / 16.0 / size) as usize).max(1));
        }
        // Within a quarter of where it should be: close enough, stop tuning it.
        if target * 4 <= batch * 5 {
            state.batch_done = true;
            return None;
        }
        state.changed_at = tick;
        let describe = fit.map_or(String::new(), |(fixed, per_record)| {
            format!(
                "; calls cost {:.2} ms + {:.1} µs per record",
                fixed * 1e3,
                per_record * 1e6
            )
        });
        let mut out = vec![Decision::new(
            Action::SetBatchSize {
                stage: b,
                size: target,
            },
            format!(
                "adaptive/bottleneck: {} is {:.0}% busy and its batches are full ({:.0} of {batch}); batch {batch} → {target}{describe}",
                stats.name,
                view.utilisation * 100.0,
                view.per_call
            ),
        )];
        let capacity = knobs.queue_capacity;
        if capacity < 2 * target {
            out.push(Decision::new(
                Action::SetQueueCapacity {
                    stage: b,
                    capacity: 2 * target,
                },
                format!(
                    "adaptive/bottleneck: {}'s queue holds two batches of {target}: {capacity} → {}",
                    stats.name,
                    2 * target
                ),
            ));
        }
        Some(out)
    }

    /// Rule 6: sizes a stage that is not the bottleneck to its load.
    fn right_size(
        &mut self,
        i: usize,
        stats: &StageStats,
        view: &View,
        now: Now,
    ) -> Option<Decision> {
        let Now {
            tick,
            rate,
            stalled,
            held_upstream,
            probing,
            cpu_full,
        } = now;
        let state = &mut self.stages[i];
        let target = clamp_workers(&stats.workers, view.right_size());
        let working = state.stuck_streak == 0 && view.short_of_workers;
        if view.utilisation >= 0.9
            && view.fill < BACKLOG
            && working
            && !cpu_full
            && target > view.workers
            && !probing
        {
            state.calm = 0;
            let target = state
                .cap
                .map_or(target, |cap| target.min(cap.max(view.workers)));
            let reason = format!(
                "adaptive/right-size: {} is {:.0}% busy with {:.1} calls in progress; {} → {target} workers for {:.0}% utilisation",
                stats.name,
                view.utilisation * 100.0,
                view.concurrency,
                view.workers,
                TARGET_UTILISATION * 100.0
            );
            let decision = self.resize(i, view.workers, target, tick, reason)?;
            let delivered_before = self.stages[i].delivered();
            self.stages[i].probe = Some(Probe {
                from: view.workers,
                to: target,
                rate_before: rate,
                delivered_before,
                // This rule grows a stage only on cores with room to spare.
                past_the_cores: false,
            });
            return Some(decision);
        }
        let smoothed = ((state.load / TARGET_UTILISATION).ceil() as usize).max(1);
        let target = clamp_workers(&stats.workers, smoothed);
        // A queue backed up behind a stage that mostly waits on its own output is
        // not a backlog this stage could drain faster.
        let no_backlog = view.fill < CALM_FILL || view.blocked >= HELD_BACK;
        // A stalled window says nothing either way, nor does one held back by a
        // stage upstream: the count neither grows nor starts again (with a giant
        // every few seconds it never got to 30).
        if !stalled && !held_upstream {
            state.calm = if no_backlog && target < view.workers {
                state.calm + 1
            } else {
                0
            };
        }
        if state.calm < CALM_TICKS {
            return None;
        }
        state.calm = 0;
        let reason = format!(
            "adaptive/right-size: {} ran {:.1} calls in progress on {} workers for {CALM_TICKS} windows with no backlog; {} → {target} workers for {:.0}% utilisation",
            stats.name,
            state.load,
            view.workers,
            view.workers,
            TARGET_UTILISATION * 100.0
        );
        self.resize(i, view.workers, target, tick, reason)
    }

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
            let moved = |now: f64, then: Option<f64>| {
                then.is_some_and(|r| (now - r) * f64::from(direction) >= LOAD_CHANGE * r)
            };
            let load_moved = if direction > 0 {
                state
                    .load_at_move
                    .is_some_and(|r| state.load >= r / TARGET_UTILISATION)
            } else {
                moved(state.load, state.load_at_move)
            };
            let new_load = (moved(state.intake, state.intake_at_move) || load_moved)
                && (direction < 0 || state.streak >= SETTLED_STREAK);
            let cooling = state
                .reversed_at
                .is_some_and(|at| tick < at + REVERSAL_COOLDOWN);
            if !new_load && (cooling || state.reversals >= FREE_REVERSALS) {
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

/// Rule 4: a bottleneck capped at its knee, with the source held back behind
/// it and the budget mostly free, gets a deeper input queue: the source keeps
/// reading, and the backlog is there to be worked off when the load drops (a phase
/// of lighter input, the end of a slow spell). It trades latency for throughput,
/// bounded by a quarter of the budget.
fn buffer(b: usize, stats: &StageStats, view: &View, snapshot: &Snapshot) -> Option<Decision> {
    let budget = snapshot.global.memory_budget?;
    let capacity = snapshot.knobs.stages.get(b)?.queue_capacity;
    let held_back = snapshot
        .stages
        .first()
        .is_some_and(|first| first.queue.mean_depth >= 0.9 * first.queue.capacity as f64);
    let room = (snapshot.global.inflight_bytes_max as f64) < BUFFER_ROOM * budget as f64;
    // On full cores, the stages upstream would fill the deeper queue with cores taken
    // from the bottleneck: the buffer would cost throughput now. The first stage's
    // queue is filled by the source alone.
    if view.fill < 0.9 || !held_back || !room || (b > 0 && cores_full(snapshot)) {
        return None;
    }
    let size = stats.record_size_bytes.mean.max(1.0);
    deeper_queue(stats, capacity, budget, MAX_BUFFER_S, snapshot.window_s).map(|to| {
        Decision::new(
            Action::SetQueueCapacity {
                stage: b,
                capacity: to,
            },
            format!(
                "adaptive/buffer: {} cannot keep up and holds the source back, with {} of \
                 the {} budget in flight; its queue {capacity} → {to} records (≤ {:.0}% of \
                 the budget at {}, ≤ {MAX_BUFFER_S:.0} s of its work)",
                stats.name,
                format_bytes(snapshot.global.inflight_bytes_max),
                format_bytes(budget),
                BUFFER_SHARE * 100.0,
                format_bytes(size as u64)
            ),
        )
    })
}

/// Rule 5: bursts. With no stage short of workers, a queue that fills at some
/// moment of every window holds the source back all the same: calls far slower
/// than their median (a heavy tail, a batch after a stall) back the records up behind
/// them, and the source waits while the stage keeps up on average. The queue of
/// the last stage where that happens (the one the others back up behind) gets 4×
/// deeper, to hold [`BURST_S`] of the stage's work at most, within the budget.
fn absorb(states: &[StageState], snapshot: &Snapshot) -> Option<Decision> {
    let budget = snapshot.global.memory_budget?;
    let first = snapshot.stages.first()?;
    let held_back = first.queue.capacity > 0 && first.queue.max_depth >= first.queue.capacity;
    let room = (snapshot.global.inflight_bytes_max as f64) < BUFFER_ROOM * budget as f64;
    if !held_back || !room {
        return None;
    }
    let (b, stats) = snapshot
        .stages
        .iter()
        .enumerate()
        .rev()
        .find(|(i, _)| states[*i].full_streak >= BURST_WINDOWS)?;
    let capacity = snapshot.knobs.stages.get(b)?.queue_capacity;
    deeper_queue(stats, capacity, budget, BURST_S, snapshot.window_s).map(|to| {
        Decision::new(
            Action::SetQueueCapacity {
                stage: b,
                capacity: to,
            },
            format!(
                "adaptive/burst: {}'s queue filled at some moment of each of the last \
                 {} windows while no stage was short of workers, and the source waited; \
                 its queue {capacity} → {to} records (≤ {BURST_S:.0} s of its work)",
                stats.name, states[b].full_streak
            ),
        )
    })
}

/// A queue of `capacity` records in front of `stats`' stage made 4× deeper, but to
/// hold no more than `work_s` seconds of what the stage delivered this window (a
/// window of `window_s`), nor records of its mean weight past 60% of `budget`;
/// `None` when that is no deeper.
fn deeper_queue(
    stats: &StageStats,
    capacity: usize,
    budget: u64,
    work_s: f64,
    window_s: f64,
) -> Option<usize> {
    let size = stats.record_size_bytes.mean.max(1.0);
    let most = ((budget as f64 * BUFFER_SHARE / size) as usize)
        .min((stats.observed_rate(window_s) * work_s) as usize)
        .min(MAX_QUEUE);
    let to = (capacity * BATCH_STEP).min(most);
    (to > capacity).then_some(to)
}

/// True if the process uses the machine's cores to the full.
fn cores_full(snapshot: &Snapshot) -> bool {
    let cores = snapshot.global.cores as f64;
    cores > 0.0 && snapshot.global.cpu_percent >= CPU_FULL * cores * 100.0
}

/// Calls of a stage running for longer than `since_s` (they started before then) and
/// far past its usual call time: hung behind a lock that has since ended.
fn hung_calls(stats: &StageStats, usual_call_s: Option<f64>, since_s: f64) -> usize {
    let past = since_s.max(usual_call_s.map_or(0.0, |usual| UNHUNG_CALL * usual));
    stats
        .running_calls_s
        .iter()
        .take_while(|&&age| age > past)
        .count()
}

/// The least change in hung calls the pool follows, for a stage of `restore` workers.
fn hung_step(restore: usize) -> usize {
    ((restore as f64 * HUNG_STEP).ceil() as usize).max(1)
}

/// The stage's typical call time this window, seconds: the median, which a few giant
/// records do not drag as they drag the mean.
fn typical_call_s(stats: &StageStats) -> Option<f64> {
    let histogram = &stats.service_time_us;
    (histogram.count >= TYPICAL_CALLS && histogram.p50 > 0).then(|| histogram.p50 as f64 / 1e6)
}

/// Least-squares line `y = a + b·x` through `points`; `None` with fewer than two
/// distinct x.
fn fit_line(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if n < 2.0 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx <= 1e-9 * n {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    Some((mean_y - slope * mean_x, slope))
}

#[cfg(test)]
mod test;
