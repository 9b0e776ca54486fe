//! Every number the adaptive policy decides by, in one place: what each one means,
//! its unit, and where its default comes from. `DESIGN.md` beside this file quotes
//! them as `` `tuning.NAME = VALUE` ``, and a test checks that the two agree;
//! `EXPERIMENTS.md` has the measurements behind those that were tuned.

use serde::Serialize;

/// The adaptive policy's tunables. [`Default`] is the policy brigade runs; change a
/// field and pass it to [`Adaptive::with_tuning`](super::Adaptive::with_tuning) for an
/// experiment. Shares are fractions (0.85 is 85%), times are in ticks (one per
/// window), seconds of snapshot time, or windows in a row, as each field says.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tuning {
    // Reading a window.
    /// Share of busy time at or above which a stage with a backlog is the bottleneck.
    /// Default 0.85: the same as `target_utilisation`, so a right-sized stage is not
    /// a bottleneck.
    pub busy: f64,
    /// Share of its input queue's capacity that counts as a backlog. Default 0.3: a
    /// queue a third full is more than a burst's worth.
    pub backlog: f64,
    /// Share of a window a stage may spend blocked on its output before it counts as
    /// held back by something downstream. Default 0.3, as `backlog`.
    pub held_back: f64,
    /// Share of the machine's cores (cpu_percent / cores / 100) at which the cores
    /// are full. Default 0.9: the process's own threads leave some idle.
    pub cpu_full: f64,
    /// Share of a window the source may stay unread before the window counts as
    /// stalled (held back by the budget, a giant, a full queue). Default 0.25.
    pub stall_share: f64,
    /// Weight of the newest window in a stage's smoothed calls in progress and
    /// intake (an exponential moving average). Default 0.2: about five windows.
    pub load_smoothing: f64,
    /// Weight of the newest window in the slowly smoothed intake the breaker compares
    /// a stuck stage with. Default 0.02: about fifty windows, which a few stuck
    /// windows barely move.
    pub slow_smoothing: f64,
    /// Calls a window needs before its median call time stands for the stage's, and
    /// records before its 90th-percentile weight does. Default 20.
    pub typical_calls: u64,
    /// A record this many times the stage's usual 90th-percentile record weight is a
    /// giant: a stage busy on one finishes nothing for a while, and is not locked.
    /// Default 64: with weights as spread as s3-idle-timeout's, one record in four
    /// thousand weighs 64 medians; shapefile-etl seed 107 (EXPERIMENTS.md, "Giants").
    pub giant: f64,

    // Settling and oscillation.
    /// Windows after the first full window following a change of a stage before its
    /// figures are trusted again. Default 1.
    pub settle_ticks: u64,
    /// Windows in a row a stage must be the bottleneck before it grows, while it is
    /// being sized: a burst (a giant, a hiccup downstream) is not a shortage of
    /// workers. Default 2.
    pub streak: u32,
    /// Ticks after its last change when a stage counts as settled. Default 30.
    pub settled_ticks: u64,
    /// Windows in a row a settled stage must be the bottleneck before it grows (a
    /// burst then is likelier than a new load), and before a stage that shrank
    /// grows back under a new load. Default 10: the demo's 90 s slow spell
    /// (EXPERIMENTS.md, "A new load lifts the cooldown").
    pub settled_streak: u32,
    /// Ticks a stage whose worker count reversed direction waits before it may reverse
    /// again under the same load. Default 300.
    pub reversal_cooldown: u64,
    /// Reversals a stage may make under the same load; past them it reverses only
    /// under a new load. Default 2: the goal allows two reversals per stage and phase.
    pub free_reversals: u32,
    /// Change of intake, or of calls in progress, since a stage last moved that counts
    /// as a new load (a share of the old one). Default 0.3.
    pub load_change: f64,

    // Memory.
    /// Share of the machine's memory given to records in flight when the operator set
    /// no budget; the rest is for the process itself and one record's growth past
    /// the cap. Default 0.8.
    pub budget_share: f64,
    /// Records above budget / this go through the serial lane, so that no two giants
    /// hold the whole budget between them. Default 2.
    pub serial_divisor: u64,

    // Growing the bottleneck and judging the step.
    /// Below this many workers a bottleneck grows ×4 a step, above it ×2. Default 8:
    /// 32 workers in three steps, about 6 s at 1 s ticks.
    pub fast_start: usize,
    /// Share of the cores in use (cpu_percent / cores / 100) from which a small pool
    /// grows ×2 rather than ×4: a cpu stage would take cores from the others before
    /// the step can be judged. Default 0.5.
    pub fast_start_cpu: f64,
    /// A growth step must bring at least this share of the proportional gain in
    /// throughput, or the stage is past its knee. Default 0.15: doubling must bring
    /// +15%; `unseen-step-short-of-the-threshold` (EXPERIMENTS.md, "A step toward a
    /// peak past it").
    pub knee: f64,
    /// A gain in throughput this large pays for a step whatever its size: a percent
    /// or two of the oracle's throughput is worth a worker. Default 0.015: cpu-bound's
    /// decode step, truly +2.1%, measured +1.4% (EXPERIMENTS.md, "Full cores").
    pub measurable_gain: f64,
    /// Growth steps smaller than this share of the count are not judged: their effect
    /// is within the noise of a window. Default 0.25.
    pub judged_step: f64,

    // Batching sinks.
    /// A batching sink whose calls take at least this share of the batch size has
    /// full batches: it could take more per call. Default 0.8.
    pub full_batch: f64,
    /// Batches grow until the per-record part of a call is this many times its fixed
    /// part. Default 19: the fixed cost is then 1/(1 + 19) = 5% of a call.
    pub batch_amortised: f64,
    /// Most records per call a batching sink is given. Default 16384.
    pub max_batch: usize,
    /// Fewest calls a worker's window must hold at the bigger batch for a batch to
    /// grow: fewer are too coarse to judge a step or a throttled window by. Default
    /// 10: at 1-s windows a call of at most 100 ms; with 2-4 calls a window the bulk
    /// knee experiment's steps were judged on noise (EXPERIMENTS.md, "Batches a
    /// window can judge").
    pub batch_calls: u64,
    /// Windows of (batch, call time) kept for the batch fit. Default 16.
    pub batch_points: usize,
    /// Each batch step multiplies the batch size by at most this. Default 4.
    pub batch_step: usize,
    /// A batch holds at most the memory budget / this, at the sink's mean record
    /// weight. Default 16.
    pub batch_budget_divisor: f64,

    // Deeper queues: buffer and bursts.
    /// A queue deepens only while bytes in flight are under this share of the budget.
    /// Default 0.7.
    pub buffer_room: f64,
    /// A deepened queue holds at most this share of the budget, at the stage's mean
    /// record weight. Default 0.6.
    pub buffer_share: f64,
    /// Share of its capacity at or above which a queue counts as full for the buffer
    /// rule: the bottleneck's own queue, and the first stage's (the source is held
    /// back). Default 0.9.
    pub buffer_full: f64,
    /// Most seconds of the stage's work a queue deepened behind a capped bottleneck
    /// holds: the latency a buffered record may pay. Default 30.
    pub max_buffer_s: f64,
    /// Deepest queue the policy asks for, records. Default 65536.
    pub max_queue: usize,
    /// Each deepening multiplies a queue's capacity by at most this. Default 4.
    pub deeper: usize,
    /// Windows in a row a queue must fill at some moment to be deepened for bursts.
    /// Default 2.
    pub burst_windows: u32,
    /// Most seconds of a stage's work a queue deepened for bursts holds. Default 2:
    /// `unseen-bursty-batch-sink` (EXPERIMENTS.md, "Bursts").
    pub burst_s: f64,

    // Right-sizing the other stages.
    /// Utilisation a right-sized stage aims for: headroom for bursts without paying
    /// for idle workers. Default 0.85; 0.88 was tried and dropped (EXPERIMENTS.md,
    /// "Cost on small pools").
    pub target_utilisation: f64,
    /// A stage that is not the bottleneck grows at once when at least this busy with
    /// no backlog. Default 0.9.
    pub grow_busy: f64,
    /// An input queue fuller than this share of its capacity is a backlog to drain
    /// before shrinking. Default 0.25.
    pub calm_fill: f64,
    /// Windows in a row a stage must look oversized before it shrinks (scale down
    /// lazily). Default 30, not measured against other counts; the windows that do
    /// not count toward it are in EXPERIMENTS.md, "Right-sizing".
    pub calm_ticks: u32,

    // The breaker.
    /// A stage at least this busy, with records waiting, may be stuck. Default 0.95.
    pub stuck_busy: f64,
    /// A busy stage that finished less than this share of what it took before is
    /// stuck (a locked database). Default 0.05.
    pub stuck: f64,
    /// Windows in a row a stage must be stuck before the breaker trips. Default 2.
    pub stuck_ticks: u32,
    /// A call that ends within this many times the stage's usual call time did not
    /// hang behind the lock: the lock is over. Default 10.
    pub unhung_call: f64,
    /// Seconds a tripped breaker stays open before it half-opens and makes its first
    /// probe. Default 30: Envoy's default base ejection time for an outlier host;
    /// measured against other waits in EXPERIMENTS.md, "Probing".
    pub first_probe_s: f64,
    /// Seconds between the probes after the first. Default 60: resilience4j's default
    /// wait in the open state; EXPERIMENTS.md, "Probing".
    pub probe_s: f64,
    /// After a recovery the pool follows the calls still hung in steps of at least
    /// this share of its count from before the lock (and at least one worker).
    /// Default 0.125: an eighth.
    pub hung_step: f64,

    // Open failures.
    /// Seconds of snapshot time a stage stays capped after its last failed open, and
    /// a probe of one worker more must pass before the cap lifts. Default 30.
    pub open_cooldown_s: f64,

    // Throttling.
    /// Share of a window's calls retried after a transient failure (429s, deadlocks,
    /// serialization failures) at or above which the window is throttled. Default
    /// 0.05: five times the highest error rate of the simulator's scenarios (1%, at
    /// random), whose windows reached 2% often enough to cost two of them 5% and 13%
    /// of their throughput (EXPERIMENTS.md, "Throttling").
    pub throttle_share: f64,
    /// Fewest retries in a window that can count as throttling, whatever the share.
    /// Default 5: a window of a hundred calls at a 1% error rate has 5 or more one
    /// time in three hundred.
    pub throttle_retries: u64,
    /// Throttled windows in a row before a stage is held or stepped down. Default 2,
    /// as `streak`: one window of errors can be chance, two in a row at 5% hardly.
    pub throttle_windows: u32,
    /// A stage throttled at (or below) its last unthrottled count steps down to this
    /// share of its workers. Default 0.75: between TCP CUBIC's 0.7 and vector's
    /// adaptive request concurrency's 0.9.
    pub throttle_decrease: f64,
    /// Seconds of snapshot time a stage stays capped after its last throttled
    /// window, and a probe of one worker more must pass before the cap lifts.
    /// Default 30, as `open_cooldown_s`.
    pub throttle_cooldown_s: f64,

    // The USL fit.
    /// Concurrency buckets per doubling: points closer than that are averaged
    /// together. Default 4.
    pub usl_buckets_per_doubling: f64,
    /// Windows a bucket averages over before older ones start to fade. Default 20.
    pub usl_bucket_memory: f64,
    /// The cheapest count whose predicted throughput is within this share of the
    /// peak is the one growth stops at. Default 0.99; 0.97 was tried and dropped
    /// (EXPERIMENTS.md, "s3-idle-timeout").
    pub usl_near_peak: f64,
    /// A call time this many times off the one seen before at the same concurrency
    /// (either way) is a shifted one. Default 1.5.
    pub usl_shift: f64,
    /// Shifted windows in a row, the same way, that mean the calls themselves changed.
    /// Default 3: `unseen-sink-slows-mid-run` (EXPERIMENTS.md, "Calls that change").
    pub usl_shift_windows: usize,
    /// Weight a bucket needs before a window is judged against it. Default 3.
    pub usl_settled_weight: f64,
    /// How far past the concurrencies it was fitted on the curve is trusted to say
    /// what a call should take (a factor). Default 1.25.
    pub usl_span_margin: f64,
    /// Least mean calls in progress for a window to join the fit. Default 0.05.
    pub usl_min_concurrency: f64,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            busy: 0.85,
            backlog: 0.3,
            held_back: 0.3,
            cpu_full: 0.9,
            stall_share: 0.25,
            load_smoothing: 0.2,
            slow_smoothing: 0.02,
            typical_calls: 20,
            giant: 64.0,
            settle_ticks: 1,
            streak: 2,
            settled_ticks: 30,
            settled_streak: 10,
            reversal_cooldown: 300,
            free_reversals: 2,
            load_change: 0.3,
            budget_share: 0.8,
            serial_divisor: 2,
            fast_start: 8,
            fast_start_cpu: 0.5,
            knee: 0.15,
            measurable_gain: 0.015,
            judged_step: 0.25,
            full_batch: 0.8,
            batch_amortised: 19.0,
            max_batch: 16_384,
            batch_calls: 10,
            batch_points: 16,
            batch_step: 4,
            batch_budget_divisor: 16.0,
            buffer_room: 0.7,
            buffer_share: 0.6,
            buffer_full: 0.9,
            max_buffer_s: 30.0,
            max_queue: 65_536,
            deeper: 4,
            burst_windows: 2,
            burst_s: 2.0,
            target_utilisation: 0.85,
            grow_busy: 0.9,
            calm_fill: 0.25,
            calm_ticks: 30,
            stuck_busy: 0.95,
            stuck: 0.05,
            stuck_ticks: 2,
            unhung_call: 10.0,
            first_probe_s: 30.0,
            probe_s: 60.0,
            hung_step: 0.125,
            open_cooldown_s: 30.0,
            throttle_share: 0.05,
            throttle_retries: 5,
            throttle_windows: 2,
            throttle_decrease: 0.75,
            throttle_cooldown_s: 30.0,
            usl_buckets_per_doubling: 4.0,
            usl_bucket_memory: 20.0,
            usl_near_peak: 0.99,
            usl_shift: 1.5,
            usl_shift_windows: 3,
            usl_settled_weight: 3.0,
            usl_span_margin: 1.25,
            usl_min_concurrency: 0.05,
        }
    }
}
