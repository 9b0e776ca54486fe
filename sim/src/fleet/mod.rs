//! A fleet in virtual time: a scenario's `[fleet]` processes, each a whole
//! [`Simulation`] (its own machine, stages and policy), all writing to one sink whose
//! slowdown counts every process's calls in progress.
//!
//! The processes' clocks move together, one event at a time, the earliest first: an
//! event in one process that starts or finishes a sink call changes the speed of
//! every process's sink calls. They close their windows at the same moments; then,
//! with [`Coordination::Leader`], the fleet's [`FleetLimit`] takes every process's
//! figures for the sink and sets the total, and each process holds its share
//! ([`shares`]) while its own policy tunes its other stages. With
//! [`Coordination::None`] each policy tunes its own writers as if it were alone.
//!
//! Each process reads an equal part of the scenario's source: its rate (and its
//! total, if finite) divided by the processes, as consumers of one group share the
//! entries; its draws come from its own seed. With `join`, the processes start that
//! far apart: until then a process's first stage holds everything (a stall).
//!
//! ```no_run
//! use brigade_controller::from_name;
//! use brigade_sim::fleet::Fleet;
//!
//! let scenario = brigade_scenario::load("scenarios/fleet-db.toml".as_ref())?;
//! let run = Fleet::new(&scenario, || from_name("adaptive").unwrap(), "adaptive").run();
//! println!("{:.0}/s with {} writers in all", run.throughput(), run.final_writers());
//! # Ok::<(), brigade_scenario::ScenarioError>(())
//! ```

use brigade_controller::fleet::{shares, FleetLimit, ShareFigures};
use brigade_controller::{Controller, Snapshot};
use brigade_scenario::{Coordination, Phase, Scenario};
use serde::Serialize;

use crate::engine::Step;
use crate::{RunResult, Simulation};

/// Who sizes the fleet's writers to the sink.
enum Sizing {
    /// Every process's policy, alone.
    Alone,
    /// The elected leader's search.
    Leader(FleetLimit),
    /// A fixed total (the oracle's static settings).
    Fixed(usize),
}

/// One window of the fleet, as its plots and tests need it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleetSample {
    /// Seconds since the start, at the end of the window.
    pub at_s: f64,
    /// Records the fleet's sink finished during the window, all processes.
    pub completed: u64,
    /// The window's length, seconds.
    pub window_s: f64,
    /// Sink workers live at the end of the window, all processes.
    pub writers: usize,
}

/// The figures of a fleet's run: each process's, and the fleet's windows.
#[derive(Clone, Debug)]
pub struct FleetResult {
    /// Each process's run.
    pub processes: Vec<RunResult>,
    /// Every window, in order.
    pub series: Vec<FleetSample>,
    /// The fleet's decisions on the total, `(at_s, total, why)`.
    pub limits: Vec<(f64, usize, String)>,
}

impl FleetResult {
    /// Records the fleet finished per second: the processes' throughputs added.
    pub fn throughput(&self) -> f64 {
        self.processes.iter().map(RunResult::throughput).sum()
    }

    /// Sink workers in all at the end of the last full window.
    pub fn final_writers(&self) -> usize {
        self.series.last().map_or(0, |sample| sample.writers)
    }

    /// Records per second over the windows from `from_s` on.
    pub fn throughput_since(&self, from_s: f64) -> f64 {
        let windows = self.series.iter().filter(|s| s.at_s > from_s);
        let (completed, seconds) =
            windows.fold((0, 0.0), |(c, t), s| (c + s.completed, t + s.window_s));
        if seconds > 0.0 {
            completed as f64 / seconds
        } else {
            0.0
        }
    }

    /// Times the fleet's total sink workers changed direction from `from_s` on.
    pub fn writer_reversals_since(&self, from_s: f64) -> usize {
        let mut direction = 0i64;
        let mut reversals = 0;
        let writers: Vec<usize> = self
            .series
            .iter()
            .filter(|s| s.at_s > from_s)
            .map(|s| s.writers)
            .collect();
        for pair in writers.windows(2) {
            let now = (pair[1] as i64 - pair[0] as i64).signum();
            if now != 0 {
                if now == -direction {
                    reversals += 1;
                }
                direction = now;
            }
        }
        reversals
    }
}

/// One line of a fleet experiment: a policy, or a fixed total, over the whole run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FleetRow {
    /// `adaptive (leader)`, `adaptive (alone)`, `fixed 15`.
    pub label: String,
    /// Records per second over the run.
    pub throughput: f64,
    /// Records per second over its last third.
    pub final_throughput: f64,
    /// Sink workers in all at the end.
    pub final_writers: usize,
    /// Times the fleet's sink workers changed direction over the last third.
    pub final_reversals: usize,
}

/// The fleet experiment of a `[fleet]` scenario: each policy sized by a leader and
/// alone, and the fixed totals `1×` to `8×` the processes, side by side.
pub fn experiment(scenario: &Scenario, policies: &[String]) -> Vec<FleetRow> {
    let from_s = scenario.duration_s * 2.0 / 3.0;
    let row = |label: String, run: FleetResult| FleetRow {
        label,
        throughput: run.throughput(),
        final_throughput: run.throughput_since(from_s),
        final_writers: run.final_writers(),
        final_reversals: run.writer_reversals_since(from_s),
    };
    let mut rows = Vec::new();
    for name in policies {
        let policy = || brigade_controller::from_name(name).expect("a policy name checked before");
        for coordination in [Coordination::Leader, Coordination::None] {
            let mut scenario = scenario.clone();
            if let Some(fleet) = scenario.fleet.as_mut() {
                fleet.coordination = coordination;
            }
            let how = match coordination {
                Coordination::Leader => "leader",
                Coordination::None => "alone",
            };
            let run = Fleet::new(&scenario, policy, name).run();
            rows.push(row(format!("{name} ({how})"), run));
        }
    }
    let processes = scenario.fleet.as_ref().map_or(1, |f| f.processes);
    for total in (1..=8).map(|times| times * processes) {
        let policy = || brigade_controller::from_name("adaptive").expect("a policy");
        let run = Fleet::with_total(scenario, total, policy, "fixed").run();
        rows.push(row(format!("fixed {total}"), run));
    }
    rows
}

/// A scenario's fleet, each process driven by its own policy.
pub struct Fleet {
    processes: Vec<Simulation>,
    sizing: Sizing,
    series: Vec<FleetSample>,
    limits: Vec<(f64, usize, String)>,
    /// This window's snapshots, per process, until every running one has closed it.
    window: Vec<Option<Snapshot>>,
    /// Seconds between two processes' starts (0: all at once).
    join_s: f64,
    /// The processes that had joined at the last window.
    members: usize,
}

impl Fleet {
    /// The scenario's `[fleet]` (one process without it), each process with a policy
    /// made by `policy`, labelled `label`; sized as its `coordination` says.
    pub fn new(scenario: &Scenario, policy: impl Fn() -> Box<dyn Controller>, label: &str) -> Self {
        let (count, coordination) = scenario
            .fleet
            .as_ref()
            .map_or((1, Coordination::None), |f| (f.processes, f.coordination));
        let sizing = match coordination {
            Coordination::None => Sizing::Alone,
            Coordination::Leader => {
                Sizing::Leader(FleetLimit::new(count, count * scenario.runtime.max_workers))
            }
        };
        Self::with_sizing(scenario, count, policy, label, sizing)
    }

    /// The scenario's fleet with the sink's workers fixed at `total` in all (split
    /// as [`shares`] splits it): the static settings the leader is measured against.
    pub fn with_total(
        scenario: &Scenario,
        total: usize,
        policy: impl Fn() -> Box<dyn Controller>,
        label: &str,
    ) -> Self {
        let count = scenario.fleet.as_ref().map_or(1, |f| f.processes);
        Self::with_sizing(scenario, count, policy, label, Sizing::Fixed(total))
    }

    fn with_sizing(
        scenario: &Scenario,
        count: usize,
        policy: impl Fn() -> Box<dyn Controller>,
        label: &str,
        sizing: Sizing,
    ) -> Self {
        let join_s = scenario.fleet.as_ref().map_or(0.0, |f| f.join_s);
        let processes = (0..count)
            .map(|i| {
                let mut part = scenario.clone();
                part.fleet = None;
                if i > 0 && join_s > 0.0 {
                    part.phases.insert(
                        0,
                        Phase {
                            at_s: 0.0,
                            service_scale: None,
                            source_rate: None,
                            stall: Some((0, join_s * i as f64)),
                        },
                    );
                }
                part.seed = scenario.seed.wrapping_add(i as u64);
                part.source.rate /= count as f64;
                part.source.total = part.source.total.map(|total| {
                    total / count as u64 + u64::from((i as u64) < total % count as u64)
                });
                Simulation::new(&part, policy(), format!("{label} #{}", i + 1))
            })
            .collect();
        let mut fleet = Self {
            processes,
            sizing,
            series: Vec::new(),
            limits: Vec::new(),
            window: vec![None; count],
            join_s,
            members: 0,
        };
        fleet.members = fleet.members(0.0);
        if let Sizing::Leader(limit) = &mut fleet.sizing {
            limit.set_processes(fleet.members);
        }
        let start = match &fleet.sizing {
            Sizing::Alone => None,
            Sizing::Leader(limit) => Some(limit.limit()),
            Sizing::Fixed(total) => Some(*total),
        };
        if let Some(total) = start {
            fleet.hold(total, format!("the fleet starts at {total} writers in all"));
        }
        fleet
    }

    /// Runs every process to its end.
    pub fn run(mut self) -> FleetResult {
        loop {
            let next = self
                .processes
                .iter_mut()
                .enumerate()
                .filter_map(|(i, p)| p.engine().next_at().map(|at| (at, i)))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            let Some((at, i)) = next else { break };
            for process in &mut self.processes {
                process.engine().advance_to(at);
            }
            match self.processes[i].engine().step() {
                Step::Tick => {
                    let output = self.processes[i].tick_over();
                    self.window[i] = Some(output.snapshot);
                    self.close_window_if_all_in();
                }
                Step::Ended => {
                    self.processes[i].close_last_window();
                    self.close_window_if_all_in();
                }
                Step::Moved => {}
            }
            self.share_sink_load();
        }
        FleetResult {
            processes: self.processes.into_iter().map(Simulation::finish).collect(),
            series: self.series,
            limits: self.limits,
        }
    }

    /// Tells each process how many sink calls the others have in progress.
    fn share_sink_load(&mut self) {
        let calls: Vec<usize> = self
            .processes
            .iter_mut()
            .map(|p| p.engine().sink_calls())
            .collect();
        let total: usize = calls.iter().sum();
        for (process, own) in self.processes.iter_mut().zip(calls) {
            process.engine().set_external_sink_calls(total - own);
        }
    }

    /// Once every running process has closed this window: the fleet's sample, and
    /// the leader's turn.
    fn close_window_if_all_in(&mut self) {
        let running = |p: &mut Simulation| p.engine().next_at().is_some();
        let all_in = self
            .processes
            .iter_mut()
            .zip(&self.window)
            .all(|(p, snapshot)| snapshot.is_some() || !running(p));
        if !all_in || self.window.iter().all(Option::is_none) {
            return;
        }
        let snapshots: Vec<Snapshot> = self.window.iter_mut().filter_map(Option::take).collect();
        let sinks = snapshots.iter().filter_map(|s| s.stages.last());
        let at_s = snapshots.iter().map(|s| s.at_s).fold(0.0, f64::max);
        let window_s = snapshots.iter().map(|s| s.window_s).fold(0.0, f64::max);
        self.series.push(FleetSample {
            at_s,
            completed: sinks.clone().map(|sink| sink.records_out).sum(),
            window_s,
            writers: sinks.clone().map(|sink| sink.workers.live).sum(),
        });
        let figures: Vec<ShareFigures> = snapshots
            .iter()
            .filter_map(|snapshot| {
                let sink = snapshot.stages.last()?;
                let batch = snapshot
                    .knobs
                    .stages
                    .last()
                    .map_or(1, |k| k.batch_size.max(1));
                Some(ShareFigures {
                    records_out: sink.records_out,
                    window_s: snapshot.window_s,
                    calls: sink.records_in.div_ceil(batch as u64) + sink.retries,
                    retries: sink.retries,
                })
            })
            .collect();
        let members = self.members(at_s);
        let joined = members != self.members;
        self.members = members;
        let decision = match &mut self.sizing {
            Sizing::Leader(limit) if joined => limit.set_processes(members),
            Sizing::Leader(limit) => limit.decide(&figures),
            Sizing::Fixed(total) if joined => Some((*total, format!("{members} processes"))),
            _ => None,
        };
        if let Some((total, why)) = decision {
            self.limits.push((at_s, total, why.clone()));
            self.hold(total, why);
        }
    }

    /// The processes that have joined by `at_s`.
    fn members(&self, at_s: f64) -> usize {
        if self.join_s <= 0.0 {
            return self.processes.len();
        }
        (0..self.processes.len())
            .filter(|&i| i as f64 * self.join_s <= at_s + 1e-9)
            .count()
    }

    /// Every member holds its share of `total` sink workers; a process that has not
    /// joined yet holds one.
    fn hold(&mut self, total: usize, why: String) {
        let members = shares(total, self.members)
            .into_iter()
            .chain(std::iter::repeat(1));
        for (process, share) in self.processes.iter_mut().zip(members) {
            process.hold_share(share, format!("{why} (this process's share: {share})"));
        }
    }
}

#[cfg(test)]
mod test;
