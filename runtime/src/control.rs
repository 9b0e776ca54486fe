//! The control loop: every few milliseconds it samples queue depths, pool sizes and
//! bytes in flight and applies the operator's overrides; every tick it closes the
//! metrics window into a [`Snapshot`], asks the controller, applies its decisions,
//! and publishes both to the [`Monitor`].

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use brigade_controller::{
    Actuator, Controller, Decision, DecisionRecord, GlobalStats, Knobs, Operator, Override,
    QueueStats, SerialStats, Snapshot, SourceStats, StageKnobs, StageRole, StageStats, Totals,
    WorkerStats,
};
use crossbeam_channel::Receiver;
use hdrhistogram::Histogram;
use sysinfo::System;

use crate::clock::Instant;
use crate::context::Shared;
use crate::metrics::StageRollup;
use crate::monitor::Monitor;
use crate::serial::SerialLane;
use crate::source::SourceCell;
use crate::stage::StageControl;
use crate::usage::ProcessUsage;

const SAMPLE: Duration = Duration::from_millis(10);

/// Running sums of one stage over the whole run, for the report.
#[derive(Clone, Debug, Default)]
pub(crate) struct StageTotals {
    pub records_in: u64,
    pub records_out: u64,
    pub errors: u64,
    pub retries: u64,
    pub dead_lettered: u64,
    pub busy_s: f64,
    pub worker_s: f64,
    pub most_workers: usize,
}

/// What the control loop hands back when the pipeline has drained.
pub(crate) struct ControlSummary {
    pub stages: Vec<StageTotals>,
    pub peak_rss_bytes: u64,
    pub decisions: usize,
}

/// Samples taken between two ticks.
#[derive(Default)]
struct Samples {
    depth_area: Vec<f64>,
    depth_max: Vec<u64>,
    worker_area: Vec<f64>,
    /// Most workers seen live at a sample: a run shorter than a tick ends its only
    /// window with every worker gone.
    most_live: Vec<usize>,
    inflight_area: f64,
    span: f64,
}

/// The control thread's state.
pub(crate) struct Control {
    pub shared: Arc<Shared>,
    pub stages: Vec<Arc<dyn StageControl>>,
    pub source: Arc<SourceCell>,
    pub lane: Arc<SerialLane>,
    pub controller: Box<dyn Controller>,
    pub monitor: Monitor,
    pub overrides: Receiver<Override>,
    pub tick: Duration,
    /// The operator's budget at the start: policies may go below it, never above.
    pub operator_budget: Option<u64>,
    /// Set when every thread of the pipeline has ended.
    pub done: Arc<AtomicBool>,
}

struct LoopState {
    operator: Operator,
    rollups: Vec<StageRollup>,
    samples: Samples,
    totals: Vec<StageTotals>,
    operator_log: Vec<DecisionRecord>,
    tick: u64,
    decisions: usize,
    system: System,
    usage: ProcessUsage,
    peak_rss: u64,
    window_start: Instant,
}

impl Control {
    /// Runs until `done` is set, then closes the last window and returns the totals.
    pub(crate) fn run(mut self) -> ControlSummary {
        let n = self.stages.len();
        let mut state = LoopState {
            operator: Operator::new(n, self.operator_budget),
            rollups: (0..n).map(|_| StageRollup::default()).collect(),
            samples: Samples::default(),
            totals: vec![StageTotals::default(); n],
            operator_log: Vec::new(),
            tick: 0,
            decisions: 0,
            system: System::new(),
            usage: ProcessUsage::new(),
            peak_rss: 0,
            window_start: self.shared.started_tick,
        };
        state.samples.reset(n);
        self.refresh_system(&mut state);
        let mut last_sample = Instant::now();
        let mut next_tick = self.shared.started_tick + self.tick;
        loop {
            let finished = self.done.load(SeqCst);
            let now = Instant::now();
            self.sample(&mut state.samples, (now - last_sample).as_secs_f64());
            last_sample = now;
            for change in self.overrides.try_iter().collect::<Vec<_>>() {
                self.apply_override(&mut state, change);
            }
            if now >= next_tick || finished {
                self.close_window(&mut state, now, !finished);
                next_tick += self.tick;
                if next_tick < now {
                    next_tick = now + self.tick;
                }
            }
            if finished {
                self.monitor.close();
                break;
            }
            // Parked rather than asleep, so that the end of the run wakes it at once.
            std::thread::park_timeout(
                SAMPLE.min(next_tick.saturating_duration_since(Instant::now())),
            );
        }
        ControlSummary {
            stages: state.totals,
            peak_rss_bytes: state.peak_rss,
            decisions: state.decisions,
        }
    }

    fn sample(&self, samples: &mut Samples, dt: f64) {
        for (i, stage) in self.stages.iter().enumerate() {
            let depth = stage.queue_len();
            samples.depth_area[i] += depth as f64 * dt;
            samples.depth_max[i] = samples.depth_max[i].max(depth as u64);
            let live = stage.pool().live();
            samples.worker_area[i] += live as f64 * dt;
            samples.most_live[i] = samples.most_live[i].max(live);
        }
        samples.inflight_area += self.shared.budget.used() as f64 * dt;
        samples.span += dt;
    }

    /// Machine memory into `state.system`; returns this process's RSS and CPU use.
    fn refresh_system(&self, state: &mut LoopState) -> (u64, f64) {
        state.system.refresh_memory();
        state.usage.sample()
    }

    fn knobs(&self) -> Knobs {
        Knobs {
            stages: self
                .stages
                .iter()
                .map(|stage| StageKnobs {
                    workers: stage.pool().target(),
                    queue_capacity: stage.queue_capacity(),
                    batch_size: stage.batch_size(),
                    concurrency_limit: stage.limits().concurrency(),
                    rate_limit: stage.limits().rate(),
                })
                .collect(),
            serial_threshold: self.shared.serial_threshold(),
            memory_budget: self.shared.budget.limit(),
        }
    }

    /// Closes the window that ends at `now`. Its length and the time counted for calls
    /// and waits still in progress (in each stage and the serial lane) all end at that
    /// one instant, so a call that spans the whole window counts exactly its length.
    fn close_window(&mut self, state: &mut LoopState, now: Instant, decide: bool) {
        let window_s = (now - state.window_start).as_secs_f64();
        state.window_start = now;
        state.tick += 1;
        let (rss, cpu) = self.refresh_system(state);
        state.peak_rss = state.peak_rss.max(rss);
        let span = state.samples.span.max(f64::EPSILON);
        let mut latency = Histogram::<u64>::new(2).expect("2 significant figures is valid");
        let mut stages = Vec::with_capacity(self.stages.len());
        for (i, stage) in self.stages.iter().enumerate() {
            let rollup = &mut state.rollups[i];
            stage.collect(rollup, now);
            stage.pool().reap();
            let (open_failures, open_error) = stage.take_open_failures();
            let mut stats = StageStats {
                name: stage.name().to_owned(),
                role: stage.role(),
                worker_s: state.samples.worker_area[i],
                workers: WorkerStats {
                    live: stage.pool().live(),
                    target: stage.pool().target(),
                    min: stage.pool().min,
                    max: stage.pool().max,
                    pinned: state.operator.is_pinned(i),
                },
                queue: QueueStats {
                    mean_depth: state.samples.depth_area[i] / span,
                    max_depth: state.samples.depth_max[i],
                    capacity: stage.queue_capacity() as u64,
                },
                open_failures,
                open_error,
                ..StageStats::default()
            };
            let sink_latency = rollup.close(&mut stats);
            latency
                .add(&sink_latency)
                .expect("auto-resizing histograms accept any values");
            let totals = &mut state.totals[i];
            totals.records_in += stats.records_in;
            totals.records_out += stats.records_out;
            totals.errors += stats.errors;
            totals.retries += stats.retries;
            totals.dead_lettered += stats.dead_lettered;
            totals.busy_s += stats.busy_s;
            totals.worker_s += stats.worker_s;
            totals.most_workers = totals
                .most_workers
                .max(stats.workers.live)
                .max(state.samples.most_live[i]);
            stages.push(stats);
        }
        let source_window = std::mem::take(&mut *self.source.window.lock());
        let exhausted = self.source.exhausted.load(SeqCst);
        let ongoing_gap = if exhausted {
            Duration::ZERO
        } else {
            self.source
                .current_gap((now - self.shared.started_tick).as_nanos() as u64)
        };
        let serial_window = self.lane.take_window(now);
        let (admitted, completed, dead_lettered) = self.shared.ledger.counts();
        let snapshot = Snapshot {
            tick: state.tick,
            at_s: (now - self.shared.started_tick).as_secs_f64(),
            window_s,
            stages,
            global: GlobalStats {
                inflight_bytes_mean: state.samples.inflight_area / span,
                inflight_bytes_max: self.shared.budget.take_window_peak(),
                memory_budget: self.shared.budget.limit(),
                rss_bytes: rss,
                cpu_percent: cpu,
                cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
                machine_memory_bytes: state.system.total_memory(),
                machine_available_bytes: state.system.available_memory(),
                latency_us: brigade_controller::HistogramData::from_histogram(&latency),
                serial: SerialStats {
                    threshold_bytes: self.shared.serial_threshold(),
                    records: serial_window.records,
                    bytes: serial_window.bytes,
                    busy_s: serial_window.busy_ns as f64 * 1e-9,
                    current_bytes: self.lane.current_bytes.load(SeqCst),
                    waiting_bytes: self.lane.waiting_bytes.load(SeqCst),
                },
                source: SourceStats {
                    records: source_window.records,
                    bytes: source_window.bytes,
                    rate: if window_s > 0.0 {
                        source_window.records as f64 / window_s
                    } else {
                        0.0
                    },
                    longest_idle_s: source_window.longest_gap.max(ongoing_gap).as_secs_f64(),
                    idle_timeout_s: self.source.idle_timeout.map(|t| t.as_secs_f64()),
                    guard_reads: source_window.guard_reads,
                    exhausted,
                    progress: *self.source.progress.lock(),
                    group: *self.source.group.lock(),
                    spill: self.source.spill.stats(),
                },
                totals: Totals {
                    admitted,
                    completed,
                    dead_lettered,
                    in_flight: admitted - completed - dead_lettered,
                },
            },
            knobs: self.knobs(),
            paused: state.operator.is_paused(),
        };
        state.samples.reset(self.stages.len());
        let mut records = std::mem::take(&mut state.operator_log);
        if decide && !state.operator.is_paused() {
            let by = self.controller.name().to_owned();
            let mut knobs = RuntimeKnobs {
                stages: &self.stages,
                shared: &self.shared,
            };
            for decision in self.controller.decide(&snapshot) {
                let outcome = state.operator.apply(&decision.action, &mut knobs);
                records.push(DecisionRecord {
                    tick: state.tick,
                    at_s: self.shared.elapsed_s(),
                    by: by.clone(),
                    decision,
                    outcome,
                });
            }
        }
        state.decisions += records.len();
        self.monitor.publish(snapshot, records);
    }

    fn apply_override(&mut self, state: &mut LoopState, change: Override) {
        let mut knobs = RuntimeKnobs {
            stages: &self.stages,
            shared: &self.shared,
        };
        if let Some(operated) = state.operator.operate(change, &mut knobs) {
            state.operator_log.push(DecisionRecord {
                tick: state.tick,
                at_s: self.shared.elapsed_s(),
                by: "operator".into(),
                decision: Decision::new(operated.action, operated.reason),
                outcome: operated.outcome,
            });
        }
    }
}

/// The running pipeline's knobs, as the [`Operator`] turns them.
struct RuntimeKnobs<'a> {
    stages: &'a [Arc<dyn StageControl>],
    shared: &'a Shared,
}

impl Actuator for RuntimeKnobs<'_> {
    fn stages(&self) -> usize {
        self.stages.len()
    }

    fn stage_name(&self, stage: usize) -> String {
        self.stages[stage].name().to_owned()
    }

    fn takes_batches(&self, stage: usize) -> bool {
        self.stages[stage].role() == StageRole::BatchSink
    }

    fn set_workers(&mut self, stage: usize, workers: usize) -> Result<usize, String> {
        let stage = &self.stages[stage];
        Arc::clone(stage).set_workers(workers).map_err(|error| {
            format!(
                "the system refused a worker thread ({error}); `{}` keeps {} workers",
                stage.name(),
                stage.pool().target()
            )
        })
    }

    fn set_queue_capacity(&mut self, stage: usize, capacity: usize) {
        self.stages[stage].set_queue_capacity(capacity);
    }

    fn set_batch_size(&mut self, stage: usize, size: usize) {
        self.stages[stage].set_batch_size(size);
    }

    fn set_concurrency_limit(&mut self, stage: usize, limit: Option<usize>) {
        self.stages[stage].limits().set_concurrency(limit);
    }

    fn set_rate_limit(&mut self, stage: usize, per_second: Option<f64>) {
        self.stages[stage].limits().set_rate(per_second);
    }

    fn set_serial_threshold(&mut self, bytes: Option<u64>) {
        self.shared.set_serial_threshold(bytes);
    }

    fn set_memory_budget(&mut self, bytes: Option<u64>) {
        self.shared.budget.set_limit(bytes);
    }
}

impl Samples {
    fn reset(&mut self, stages: usize) {
        *self = Samples {
            depth_area: vec![0.0; stages],
            depth_max: vec![0; stages],
            worker_area: vec![0.0; stages],
            most_live: vec![0; stages],
            inflight_area: 0.0,
            span: 0.0,
        };
    }
}
