//! The dashboard on a made-up pipeline, to try the keys by hand:
//! `cargo run -p brigade-tui --example synthetic` (add `replay` to steer its clock).
//!
//! Three stages (parse, geocode, a batching sink); the throughput is what the slowest
//! stage allows with its workers. Pins set the workers, the budget caps bytes in
//! flight, and a drain empties the pipeline over a few ticks.

use std::time::{Duration, Instant};

use brigade_controller::{
    Action, Decision, DecisionRecord, GlobalStats, Knobs, Outcome, Override, QueueStats, Snapshot,
    SourceStats, StageKnobs, StageRole, StageStats, Totals, WorkerStats,
};
use brigade_tui::{Feed, Options};

const MIB: u64 = 1 << 20;

/// Per stage: name, role, records per second one worker does.
const STAGES: [(&str, StageRole, f64); 3] = [
    ("parse", StageRole::Transform, 1500.0),
    ("geocode", StageRole::Transform, 400.0),
    ("write_pg", StageRole::BatchSink, 700.0),
];

struct Synthetic {
    replay: bool,
    paused: bool,
    speed: f64,
    clock: Instant,
    virtual_s: f64,
    tick: u64,
    workers: [usize; 3],
    pinned: [bool; 3],
    controller_paused: bool,
    budget: Option<u64>,
    in_flight: u64,
    draining: bool,
    decisions: Vec<DecisionRecord>,
}

impl Synthetic {
    fn new(replay: bool) -> Self {
        Self {
            replay,
            paused: false,
            speed: 1.0,
            clock: Instant::now(),
            virtual_s: 0.0,
            tick: 0,
            workers: [2, 3, 4],
            pinned: [false; 3],
            controller_paused: false,
            budget: Some(256 * MIB),
            in_flight: 1200,
            draining: false,
            decisions: Vec::new(),
        }
    }

    fn snapshot(&mut self) -> Snapshot {
        self.tick += 1;
        let capacity: Vec<f64> = STAGES
            .iter()
            .zip(self.workers)
            .map(|(&(_, _, per_worker), w)| per_worker * w as f64)
            .collect();
        let wobble = 1.0 + 0.1 * (self.tick as f64 * 0.9).sin();
        let mut rate = capacity.iter().copied().fold(f64::MAX, f64::min) * wobble;
        if self.draining {
            self.in_flight = self.in_flight.saturating_sub(250);
            rate = rate.min(self.in_flight as f64);
        }
        let stages = STAGES
            .iter()
            .enumerate()
            .map(|(i, &(name, role, _))| {
                let worker_s = self.workers[i] as f64;
                let busy = (rate / capacity[i]).min(1.0);
                StageStats {
                    name: name.into(),
                    role,
                    records_in: rate as u64,
                    records_out: rate as u64,
                    bytes_in: rate as u64 * 2000,
                    bytes_out: rate as u64 * 2000,
                    busy_s: busy * worker_s,
                    wait_in_s: (1.0 - busy) * worker_s * 0.8,
                    wait_out_s: (1.0 - busy) * worker_s * 0.2,
                    worker_s,
                    workers: WorkerStats {
                        live: self.workers[i],
                        target: self.workers[i],
                        min: 1,
                        max: 16,
                        pinned: self.pinned[i],
                    },
                    queue: QueueStats {
                        mean_depth: 64.0 * busy * busy,
                        max_depth: (64.0 * busy) as u64,
                        capacity: 64,
                    },
                    ..Default::default()
                }
            })
            .collect();
        Snapshot {
            tick: self.tick,
            at_s: self.virtual_s,
            window_s: 1.0,
            stages,
            global: GlobalStats {
                inflight_bytes_mean: (self.in_flight * 150_000) as f64,
                inflight_bytes_max: self.in_flight * 170_000,
                memory_budget: self.budget,
                rss_bytes: 400 * MIB + self.in_flight * 150_000,
                cpu_percent: 100.0 * self.workers.iter().sum::<usize>() as f64 / 3.0,
                cores: 4,
                source: SourceStats {
                    rate,
                    longest_idle_s: 0.2,
                    idle_timeout_s: Some(30.0),
                    ..Default::default()
                },
                totals: Totals {
                    in_flight: self.in_flight,
                    ..Default::default()
                },
                ..Default::default()
            },
            knobs: Knobs {
                stages: vec![
                    StageKnobs::default(),
                    StageKnobs::default(),
                    StageKnobs {
                        batch_size: 500,
                        ..Default::default()
                    },
                ],
                memory_budget: self.budget,
                ..Default::default()
            },
            paused: self.controller_paused,
        }
    }

    fn log(&mut self, action: Action, reason: &str) {
        self.decisions.push(DecisionRecord {
            tick: self.tick,
            at_s: self.virtual_s,
            by: "operator".into(),
            decision: Decision::new(action, reason),
            outcome: Outcome::Applied,
        });
    }
}

impl Feed for Synthetic {
    fn poll(&mut self) -> Vec<(Snapshot, Vec<DecisionRecord>)> {
        let elapsed = self.clock.elapsed();
        self.clock = Instant::now();
        if !self.paused {
            self.virtual_s += elapsed.as_secs_f64() * self.speed;
        }
        let mut ticks = Vec::new();
        while (self.tick as f64) < self.virtual_s.floor() && !self.finished() {
            let snapshot = self.snapshot();
            ticks.push((snapshot, std::mem::take(&mut self.decisions)));
        }
        ticks
    }

    fn apply(&mut self, change: Override) {
        match change {
            Override::PinWorkers { stage, workers } => {
                self.workers[stage] = workers;
                self.pinned[stage] = true;
                self.log(
                    Action::SetWorkers { stage, workers },
                    "pinned by the operator",
                );
            }
            Override::Unpin { stage } => self.pinned[stage] = false,
            Override::Pause => self.controller_paused = true,
            Override::Resume => self.controller_paused = false,
            Override::SetBudget { bytes } => {
                self.budget = bytes;
                self.log(Action::SetMemoryBudget { bytes }, "set by the operator");
            }
            _ => {}
        }
    }

    fn set_replay(&mut self, paused: bool, speed: f64) {
        self.paused = paused;
        self.speed = speed;
    }

    fn is_replay(&self) -> bool {
        self.replay
    }

    fn drain(&mut self) {
        self.draining = true;
    }

    fn finished(&self) -> bool {
        self.draining && self.in_flight == 0
    }
}

fn main() -> std::io::Result<()> {
    let replay = std::env::args().any(|a| a == "replay");
    brigade_tui::run(
        Synthetic::new(replay),
        Options {
            title: "synthetic".into(),
            redraw: Duration::from_millis(150),
            ..Options::default()
        },
    )
}
