//! Closing a metrics window: the engine's figures since the last tick become the same
//! [`Snapshot`] the runtime builds, with the same fields and meanings, and a new
//! window starts.

use brigade_controller::{
    GlobalStats, Histogram, HistogramData, QueueStats, SerialStats, Snapshot, SourceStats,
    SpillStats, StageStats, Totals, WorkerStats,
};

use super::stage::StageSim;
use super::{source, Engine};

/// Pipeline-wide figures of the current window.
pub(super) struct GlobalWindow {
    pub(super) inflight_s: f64,
    pub(super) inflight_max: u64,
    pub(super) cpu_core_s: f64,
    pub(super) latency_us: Histogram<u64>,
}

impl Engine {
    /// Closes the window that ends now into a Snapshot and starts the next one.
    pub(crate) fn close_window(&mut self, tick: u64, encode: bool) -> Snapshot {
        let window_s = (self.now - self.window_start).max(1e-9);
        let summarize = |histogram: &Histogram<u64>| {
            if encode {
                HistogramData::from_histogram(histogram)
            } else {
                HistogramData::summarize(histogram)
            }
        };
        let stages = self
            .stages
            .iter()
            .map(|stage| {
                let w = &stage.window;
                StageStats {
                    name: stage.spec.name.clone(),
                    role: stage.role,
                    records_in: w.records_in,
                    records_out: w.records_out,
                    bytes_in: w.bytes_in,
                    bytes_out: w.bytes_out,
                    busy_s: w.busy_s,
                    wait_in_s: w.wait_in_s,
                    wait_out_s: w.wait_out_s,
                    worker_s: w.worker_s,
                    workers: WorkerStats {
                        live: stage.live,
                        target: stage.target,
                        min: 1,
                        max: self.scenario.runtime.max_workers,
                        // The operator's: the simulation sets it.
                        pinned: false,
                    },
                    queue: QueueStats {
                        mean_depth: w.depth_s / window_s,
                        max_depth: w.max_depth,
                        capacity: stage.capacity as u64,
                    },
                    service_time_us: summarize(&w.service_us),
                    wait_in_us: summarize(&w.wait_in_us),
                    record_size_bytes: summarize(&w.size_bytes),
                    errors: w.errors,
                    retries: w.retries,
                    dead_lettered: w.dead_lettered,
                    running_calls_s: self.running_calls_s(stage),
                    // The model's workers need nothing opened.
                    open_failures: 0,
                    open_error: None,
                }
            })
            .collect();
        if self.source.head.is_some() {
            self.source.note_idle(self.now);
        }
        let waiting_bytes = match self.source.head {
            Some(bytes) if self.goes_serial(bytes) => bytes,
            _ => 0,
        };
        let source = &self.source;
        let machine = &self.scenario.machine;
        let snapshot = Snapshot {
            tick,
            at_s: self.now,
            window_s,
            stages,
            global: GlobalStats {
                inflight_bytes_mean: self.window.inflight_s / window_s,
                inflight_bytes_max: self.window.inflight_max,
                memory_budget: self.budget,
                rss_bytes: self.inflight,
                cpu_percent: self.window.cpu_core_s / window_s * 100.0,
                cores: machine.cores,
                machine_memory_bytes: machine.memory_bytes,
                machine_available_bytes: machine.memory_bytes.saturating_sub(self.inflight),
                latency_us: summarize(&self.window.latency_us),
                serial: SerialStats {
                    threshold_bytes: self.serial_threshold,
                    records: self.lane.records,
                    bytes: self.lane.bytes,
                    busy_s: self.lane.busy_s,
                    current_bytes: if self.lane.idle() { 0 } else { self.lane.held },
                    waiting_bytes,
                },
                source: SourceStats {
                    records: source.window.records,
                    bytes: source.window.bytes,
                    rate: source.window.records as f64 / window_s,
                    longest_idle_s: source.window.longest_idle_s,
                    idle_timeout_s: source.idle_timeout(),
                    guard_reads: source.window.guard_reads,
                    exhausted: source.exhausted,
                    progress: None,
                    group: None,
                    spill: SpillStats {
                        capacity_bytes: self.scenario.runtime.spill,
                        records: self.spill.len() as u64,
                        bytes: self.spill.bytes,
                        total_records: self.spill.total_records,
                        total_bytes: self.spill.total_bytes,
                    },
                },
                totals: Totals {
                    in_flight: self.records_in_system,
                    ..self.totals.clone()
                },
            },
            knobs: self.knobs.clone(),
            // The operator's: the simulation sets it.
            paused: false,
        };
        self.start_window();
        snapshot
    }

    /// How long each of `stage`'s calls in progress has run, longest first.
    fn running_calls_s(&self, stage: &StageSim) -> Vec<f64> {
        let mut ages: Vec<f64> = stage
            .finishing
            .iter()
            .map(|entry| self.now - self.slots[entry.0 .1 as usize].started)
            .collect();
        ages.sort_by(|a, b| b.total_cmp(a));
        ages
    }

    fn start_window(&mut self) {
        self.window_start = self.now;
        self.next_tick = self.now + self.scenario.tick_s;
        for stage in &mut self.stages {
            let depth = stage.queue.len();
            stage.window.reset(depth);
        }
        self.window.inflight_s = 0.0;
        self.window.inflight_max = self.inflight;
        self.window.cpu_core_s = 0.0;
        self.window.latency_us.reset();
        self.lane.records = 0;
        self.lane.bytes = 0;
        self.lane.busy_s = 0.0;
        self.source.window = source::SourceWindow::default();
    }
}
