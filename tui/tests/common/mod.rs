//! Hand-made snapshots of a three-stage pipeline, a fake feed that records what the
//! dashboard sends it, and rendering into a test terminal.

// Each test file uses its own part of these helpers.
#![allow(dead_code)]

use std::collections::VecDeque;

use brigade_controller::{
    Action, Decision, DecisionRecord, GlobalStats, Histogram, HistogramData, Knobs, Outcome,
    Override, Progress, QueueStats, SerialStats, Snapshot, SourceStats, SpillStats, StageKnobs,
    StageRole, StageStats, Totals, WorkerStats,
};
use brigade_tui::{App, Feed, Options};
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

pub const MIB: u64 = 1 << 20;

/// The figures every stage is built from, at full speed.
struct Shape {
    name: &'static str,
    role: StageRole,
    live: usize,
    target: usize,
    pinned: bool,
    busy: f64,
    wait_in: f64,
    wait_out: f64,
    rate: f64,
    queue: (f64, u64, u64),
    p50_us: u64,
    p99_us: u64,
    errors: u64,
}

const SHAPES: [Shape; 3] = [
    Shape {
        name: "parse",
        role: StageRole::Transform,
        live: 2,
        target: 2,
        pinned: false,
        busy: 0.45,
        wait_in: 0.50,
        wait_out: 0.05,
        rate: 2400.0,
        queue: (3.2, 9, 64),
        p50_us: 380,
        p99_us: 1900,
        errors: 0,
    },
    Shape {
        name: "geocode",
        role: StageRole::Transform,
        live: 6,
        target: 8,
        pinned: false,
        busy: 0.93,
        wait_in: 0.02,
        wait_out: 0.03,
        rate: 2380.0,
        queue: (58.0, 64, 64),
        p50_us: 2400,
        p99_us: 18_000,
        errors: 3,
    },
    Shape {
        name: "write_pg",
        role: StageRole::BatchSink,
        live: 4,
        target: 4,
        pinned: true,
        busy: 0.60,
        wait_in: 0.20,
        wait_out: 0.15,
        rate: 2350.0,
        queue: (12.0, 20, 32),
        p50_us: 41_000,
        p99_us: 120_000,
        errors: 0,
    },
];

/// The pipeline at `tick` (one-second windows): it ramps up over the first 30 ticks,
/// then runs at full speed, give or take 8 %.
pub fn snapshot(tick: u64) -> Snapshot {
    let ramp = (tick as f64 / 30.0).min(1.0);
    let stages = SHAPES
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let live = if i == 1 {
                2 + ((shape.live - 2) as f64 * ramp).round() as usize
            } else {
                shape.live
            };
            let worker_s = live as f64;
            let wobble = 1.0 + 0.08 * (tick as f64 * 0.7 + i as f64).sin();
            let rate = (shape.rate * ramp * wobble).round();
            let records = rate as u64;
            StageStats {
                name: shape.name.into(),
                role: shape.role,
                records_in: records + 4,
                records_out: records,
                bytes_in: records * 2100,
                bytes_out: records * 2000,
                busy_s: shape.busy * worker_s,
                wait_in_s: shape.wait_in * worker_s,
                wait_out_s: shape.wait_out * worker_s,
                worker_s,
                workers: WorkerStats {
                    live,
                    target: if i == 1 { shape.target } else { live },
                    min: 1,
                    max: 16,
                    pinned: shape.pinned,
                },
                queue: QueueStats {
                    mean_depth: shape.queue.0,
                    max_depth: shape.queue.1,
                    capacity: shape.queue.2,
                },
                service_time_us: if i == 1 {
                    geocode_service_time()
                } else {
                    summary(records, shape.p50_us, shape.p99_us)
                },
                wait_in_us: summary(records / 4, 40, 900),
                record_size_bytes: HistogramData {
                    count: records,
                    min: 180,
                    max: 96 * MIB,
                    mean: 2100.0,
                    p50: 1800,
                    p90: 4200,
                    p99: 380_000,
                    p999: 24 * MIB,
                    encoded: String::new(),
                },
                errors: shape.errors,
                retries: shape.errors * 2,
                dead_lettered: 0,
                running_calls_s: if i == 1 {
                    vec![12.4, 0.031, 0.002]
                } else {
                    Vec::new()
                },
                open_failures: 0,
                open_error: None,
            }
        })
        .collect();
    Snapshot {
        tick,
        at_s: tick as f64,
        window_s: 1.0,
        stages,
        global: GlobalStats {
            inflight_bytes_mean: 180.0 * MIB as f64,
            inflight_bytes_max: 201 * MIB,
            memory_budget: Some(256 * MIB),
            rss_bytes: 1229 * MIB,
            cpu_percent: 310.0,
            cores: 4,
            machine_memory_bytes: 16 << 30,
            machine_available_bytes: 9 << 30,
            latency_us: HistogramData::default(),
            serial: SerialStats {
                threshold_bytes: Some(64 * MIB),
                records: 1,
                bytes: 96 * MIB,
                busy_s: 0.8,
                current_bytes: 96 * MIB,
                waiting_bytes: 0,
            },
            source: SourceStats {
                records: 2410,
                bytes: 2410 * 2100,
                rate: 2410.0,
                longest_idle_s: 0.4,
                idle_timeout_s: Some(30.0),
                guard_reads: 0,
                exhausted: false,
                progress: None,
                group: None,
                spill: SpillStats::default(),
            },
            totals: Totals {
                admitted: 120_000,
                completed: 118_800,
                dead_lettered: 12,
                in_flight: 1188,
            },
        },
        knobs: Knobs {
            stages: vec![
                StageKnobs::default(),
                StageKnobs {
                    workers: 8,
                    ..Default::default()
                },
                StageKnobs {
                    workers: 4,
                    queue_capacity: 32,
                    batch_size: 500,
                    concurrency_limit: Some(4),
                    ..Default::default()
                },
            ],
            serial_threshold: Some(64 * MIB),
            memory_budget: Some(256 * MIB),
        },
        paused: false,
    }
}

/// A summary-only histogram (no serialized payload), as simulations send them.
fn summary(count: u64, p50: u64, p99: u64) -> HistogramData {
    HistogramData {
        count,
        min: p50 / 4,
        max: p99 * 3,
        mean: p50 as f64 * 1.3,
        p50,
        p90: (p50 + p99) / 2,
        p99,
        p999: p99 * 2,
        encoded: String::new(),
    }
}

/// A full histogram: a body around 2.4 ms, a shoulder near 8 ms and a tail to 40 ms.
fn geocode_service_time() -> HistogramData {
    let mut histogram = Histogram::<u64>::new(3).unwrap();
    for i in 0..2000u64 {
        let value = match i % 20 {
            0..=13 => 1500 + (i * 37) % 1900,
            14..=17 => 6000 + (i * 53) % 4000,
            _ => 12_000 + (i * 97) % 28_000,
        };
        histogram.record(value).unwrap();
    }
    HistogramData::from_histogram(&histogram)
}

/// Three decisions: a resize applied, the operator's budget, a resize a pin ignored.
pub fn decisions() -> Vec<DecisionRecord> {
    vec![
        DecisionRecord {
            tick: 28,
            at_s: 28.0,
            by: "adaptive".into(),
            decision: Decision::new(
                Action::SetWorkers {
                    stage: 1,
                    workers: 8,
                },
                "busy 93%, waiting 2%: short of workers; 410/s per worker → 8 for 2.4k/s",
            ),
            outcome: Outcome::Applied,
        },
        DecisionRecord {
            tick: 29,
            at_s: 29.0,
            by: "operator".into(),
            decision: Decision::new(
                Action::SetMemoryBudget {
                    bytes: Some(256 * MIB),
                },
                "operator set the memory budget",
            ),
            outcome: Outcome::Applied,
        },
        DecisionRecord {
            tick: 30,
            at_s: 30.0,
            by: "adaptive".into(),
            decision: Decision::new(
                Action::SetWorkers {
                    stage: 2,
                    workers: 6,
                },
                "blocked 15% on the sink limit; try 6 writers",
            ),
            outcome: Outcome::Ignored {
                why: "pinned by the operator".into(),
            },
        },
    ]
}

/// Ticks 1 to `last`, with the three decisions on ticks 28 to 30.
pub fn run_to(last: u64) -> Vec<(Snapshot, Vec<DecisionRecord>)> {
    let decisions = decisions();
    (1..=last)
        .map(|tick| {
            let made = decisions
                .iter()
                .filter(|d| d.tick == tick)
                .cloned()
                .collect();
            (snapshot(tick), made)
        })
        .collect()
}

/// A dashboard that has seen ticks 1 to `last`.
pub fn app_at(last: u64) -> App {
    let mut app = App::new(Options {
        title: "roads.toml".into(),
        ..Options::default()
    });
    for (snapshot, decisions) in run_to(last) {
        app.ingest(snapshot, decisions);
    }
    app
}

/// The screen `app` draws on a `width`×`height` terminal.
pub fn screen(app: &App, width: u16, height: u16) -> TestBackend {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| app.render(frame)).unwrap();
    terminal.backend().clone()
}

/// A key press.
pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// A feed that hands out queued ticks and records everything sent to it.
#[derive(Default)]
pub struct FakeFeed {
    pub ticks: VecDeque<(Snapshot, Vec<DecisionRecord>)>,
    pub applied: Vec<Override>,
    pub replay: Option<(bool, f64)>,
    pub is_replay: bool,
    pub drains: usize,
    pub finished: bool,
}

impl Feed for FakeFeed {
    fn poll(&mut self) -> Vec<(Snapshot, Vec<DecisionRecord>)> {
        self.ticks.drain(..).collect()
    }

    fn apply(&mut self, change: Override) {
        self.applied.push(change);
    }

    fn set_replay(&mut self, paused: bool, speed: f64) {
        self.replay = Some((paused, speed));
    }

    fn is_replay(&self) -> bool {
        self.is_replay
    }

    fn drain(&mut self) {
        self.drains += 1;
    }

    fn finished(&self) -> bool {
        self.finished
    }
}

/// The pipeline at `tick` reading ten files of 400 MiB, 40 MiB a second (totals known
/// only if `totals`), with two of geocode's workers failing to connect on tick 29.
pub fn reading_files(tick: u64, totals: bool) -> Snapshot {
    let mut snapshot = snapshot(tick);
    snapshot.global.source.idle_timeout_s = None;
    snapshot.global.source.progress = Some(Progress {
        files_done: tick / 10,
        files_total: totals.then_some(10),
        bytes_done: tick * 40 * MIB,
        bytes_total: totals.then_some(4000 * MIB),
    });
    if tick == 29 {
        snapshot.stages[1].open_failures = 2;
        snapshot.stages[1].open_error =
            Some("connect to geo.internal:443: connection refused (os error 111)".into());
    }
    snapshot
}

/// A dashboard that has seen ticks 1 to `last` of [`reading_files`].
pub fn app_reading_files(last: u64, totals: bool) -> App {
    let mut app = App::new(Options {
        title: "roads.toml".into(),
        ..Options::default()
    });
    for tick in 1..=last {
        app.ingest(reading_files(tick, totals), Vec::new());
    }
    app
}
