//! One policy driven through one scenario: the engine's ticks handed to the policy as
//! Snapshots, its Decisions applied and logged, the operator's overrides applied on
//! top as the runtime's control loop applies them, and the run's figures gathered.
//!
//! ```no_run
//! use brigade_controller::Static;
//! use brigade_scenario as scenario;
//! use brigade_sim::Simulation;
//!
//! let scenario = scenario::load("scenarios/cpu-bound.toml".as_ref())?;
//! let run = Simulation::new(&scenario, Box::new(Static::new().workers(2)), "static:2").run();
//! println!("{} records at {:.0}/s", run.completed, run.throughput());
//! # Ok::<(), brigade_scenario::ScenarioError>(())
//! ```

use brigade_controller::{
    Action, Actuator, Controller, Decision, DecisionRecord, Knobs, Operator, Outcome, Override,
    Snapshot,
};
use serde::Serialize;

use crate::engine::{End, Engine};
use brigade_scenario::Scenario;

/// One tick of a run as the plots and reports need it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TickSample {
    /// Seconds since the start, at the end of the window.
    pub at_s: f64,
    /// Length of the window, seconds.
    pub window_s: f64,
    /// Records the sink finished during the window.
    pub completed: u64,
    /// Live workers per stage at the end of the window.
    pub workers: Vec<usize>,
    /// Most bytes in flight during the window.
    pub inflight_bytes: u64,
    /// The memory budget in force at the end of the window.
    pub budget: Option<u64>,
}

impl TickSample {
    /// Records per second the sink finished during the window.
    pub fn throughput(&self) -> f64 {
        if self.window_s > 0.0 {
            self.completed as f64 / self.window_s
        } else {
            0.0
        }
    }
}

/// What one tick produced: the Snapshot the policy saw and what became of its
/// decisions.
#[derive(Clone, Debug)]
pub struct TickOutput {
    /// The window just closed.
    pub snapshot: Snapshot,
    /// The operator's overrides since the last tick, then the policy's decisions, as
    /// applied (the order in which the runtime publishes them).
    pub decisions: Vec<DecisionRecord>,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// Every record of a finite source finished.
    Finished,
    /// The scenario's duration passed.
    Duration,
    /// Bytes in flight passed the machine's memory.
    Crashed,
    /// The source timed out and the scenario says that kills the run.
    SourceFailed,
}

/// The raw figures of a finished run; [`crate::report`] turns them into a report.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The policy as named on the command line.
    pub policy: String,
    /// How the run ended.
    pub end: RunEnd,
    /// Virtual seconds the run lasted.
    pub elapsed_s: f64,
    /// The scenario's duration, seconds.
    pub duration_s: f64,
    /// Records the sink finished.
    pub completed: u64,
    /// Seconds from the start to the last completion.
    pub last_completion_s: f64,
    /// Integral over time of the sum of all pools' sizes.
    pub worker_seconds: f64,
    /// Most bytes in flight at once.
    pub peak_inflight_bytes: u64,
    /// Times the source timed out.
    pub source_timeouts: u64,
    /// Bytes that went through the spill (0 without one).
    pub spilled_bytes: u64,
    /// 99th percentile of admission-to-completion time, seconds.
    pub p99_latency_s: f64,
    /// The policy's decisions that changed a knob (the operator's are not counted).
    pub changes: u64,
    /// Times a stage's worker count changed direction.
    pub reversals: u64,
    /// Most reversals of one stage within one phase (the stretches between phases).
    pub max_reversals_per_stage_phase: u64,
    /// Every tick, in order.
    pub series: Vec<TickSample>,
    /// Every decision, the policy's and the operator's, in order.
    pub decisions: Vec<DecisionRecord>,
    /// The moments the load changed, seconds, ascending: 0, then each phase's start
    /// (for a stall, its end); [`settle_s`](Self::settle_s) judges the spans between.
    pub load_changes_s: Vec<f64>,
}

impl RunResult {
    /// completed / seconds until the last completion when every record finished,
    /// else completed / the scenario's duration.
    pub fn throughput(&self) -> f64 {
        let seconds = if self.end == RunEnd::Finished {
            self.last_completion_s
        } else {
            self.duration_s
        };
        if seconds > 0.0 {
            self.completed as f64 / seconds
        } else {
            0.0
        }
    }

    /// True if the run crashed or a source timeout failed it.
    pub fn failed(&self) -> bool {
        matches!(self.end, RunEnd::Crashed | RunEnd::SourceFailed)
    }

    /// The longest settling time over the run's start and each phase that changes
    /// the load, as docs/scenarios.md "Reports" defines it (`simulation/settle/`).
    pub fn settle_s(&self) -> f64 {
        settle::settle_s(&self.series, &self.load_changes_s, self.elapsed_s)
    }
}

/// Who the operator's decisions are by, as the runtime logs them.
const OPERATOR: &str = "operator";
/// Who a fleet's shares are set by.
const FLEET: &str = "fleet";

/// A policy driving the model of a scenario, one tick at a time, and the operator's
/// overrides on top of it ([`operate`](Self::operate)).
pub struct Simulation {
    engine: Engine,
    policy: Box<dyn Controller>,
    label: String,
    encode_histograms: bool,
    tick: u64,
    series: Vec<TickSample>,
    decisions: Vec<DecisionRecord>,
    changes: u64,
    /// Per stage: the direction of its last worker change (−1, 0, +1).
    direction: Vec<i8>,
    /// Per stage: reversals in the current phase.
    phase_reversals: Vec<u64>,
    phase: usize,
    reversals: u64,
    max_phase_reversals: u64,
    worker_seconds: f64,
    /// The operator's pins, pause and budget, and the rules that apply every change.
    operator: Operator,
    /// The operator's decisions since the last tick, handed out with the next one.
    operator_log: Vec<DecisionRecord>,
}

impl Simulation {
    /// `policy`, named `label` in reports, driving `scenario` from t = 0.
    pub fn new(scenario: &Scenario, policy: Box<dyn Controller>, label: impl Into<String>) -> Self {
        let stages = scenario.stages.len();
        Self {
            engine: Engine::new(scenario),
            policy,
            label: label.into(),
            encode_histograms: false,
            tick: 0,
            series: Vec::new(),
            decisions: Vec::new(),
            changes: 0,
            direction: vec![0; stages],
            phase_reversals: vec![0; stages],
            phase: 0,
            reversals: 0,
            max_phase_reversals: 0,
            worker_seconds: 0.0,
            operator: Operator::new(stages, scenario.runtime.memory_budget),
            operator_log: Vec::new(),
        }
    }

    /// Serializes every histogram into the Snapshots (for viewers that redraw them);
    /// off by default, because experiments do not need it and it costs time.
    pub fn with_histograms(mut self) -> Self {
        self.encode_histograms = true;
        self
    }

    /// The scenario being run.
    pub fn scenario(&self) -> &Scenario {
        &self.engine.scenario
    }

    /// The knobs in force now: after the last [`step`](Self::step), the configuration
    /// the run ended with.
    pub fn knobs(&self) -> &Knobs {
        &self.engine.knobs
    }

    /// Runs to the next tick, hands its Snapshot to the policy (unless the operator
    /// paused it) and applies the decisions. `None` once the run is over.
    pub fn step(&mut self) -> Option<TickOutput> {
        if !self.engine.run_to_tick() {
            self.close_last_window();
            return None;
        }
        Some(self.tick_over())
    }

    /// The engine, for a fleet that moves its processes' clocks together.
    pub(crate) fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Holds the sink at `workers`, the process's share of a fleet-wide limit: set
    /// now, and the policy's changes to it ignored, as for an operator's pin; logged
    /// by `fleet`.
    pub(crate) fn hold_share(&mut self, workers: usize, why: String) {
        let stage = self.engine.stages() - 1;
        let pin = Override::PinWorkers { stage, workers };
        if let Some(operated) = self.operator.operate(pin, &mut self.engine) {
            self.engine.pump();
            self.log(FLEET, operated.action, why, operated.outcome);
        }
    }

    /// The window just closed handed to the policy (unless the operator paused it),
    /// its decisions applied.
    pub(crate) fn tick_over(&mut self) -> TickOutput {
        let snapshot = self.close_window();
        let mut records = std::mem::take(&mut self.operator_log);
        if !self.operator.is_paused() {
            for decision in self.policy.decide(&snapshot) {
                let before = self.engine.knobs.clone();
                let outcome = self.operator.apply(&decision.action, &mut self.engine);
                self.engine.pump();
                if self.engine.knobs != before {
                    self.changes += 1;
                    if let Action::SetWorkers { stage, .. } = decision.action {
                        self.note_resize(stage, before.stages[stage].workers);
                    }
                }
                let record = DecisionRecord {
                    tick: snapshot.tick,
                    at_s: snapshot.at_s,
                    by: self.label.clone(),
                    decision,
                    outcome,
                };
                self.decisions.push(record.clone());
                records.push(record);
            }
        }
        TickOutput {
            snapshot,
            decisions: records,
        }
    }

    /// Sets a knob directly, as a configuration does before a run starts (the oracle's):
    /// clamped as the runtime clamps, past any pin, and not logged.
    pub fn apply(&mut self, action: &Action) -> Outcome {
        let outcome = self.operator.configure(action, &mut self.engine);
        self.engine.pump();
        outcome
    }

    /// Applies an operator's override now, as the runtime's control loop does, and logs
    /// it as the runtime does: by `operator`, handed out with the next tick before the
    /// policy's decisions.
    ///
    /// - `PinWorkers` sets the stage's workers (clamped like any change, logged with
    ///   its outcome) and holds them: the policy's worker changes to that stage are
    ///   then ignored, and logged as such.
    /// - `Unpin` gives the stage back to the policy.
    /// - `Pause` stops consulting the policy (windows still close and Snapshots still
    ///   come, with `paused` set); `Resume` consults it again.
    /// - `SetBudget` sets the memory budget in force, which the policy may lower but
    ///   never raise above it (`None` removes the cap); logged.
    ///
    /// Snapshots show pins in each stage's `workers.pinned` and the pause in `paused`.
    /// Unpin, pause and resume change no knob, and, as in the runtime, are not logged.
    pub fn operate(&mut self, change: Override) {
        if let Some(operated) = self.operator.operate(change, &mut self.engine) {
            self.engine.pump();
            self.log(OPERATOR, operated.action, operated.reason, operated.outcome);
        }
    }

    /// Runs to the end and returns the run's figures.
    pub fn run(mut self) -> RunResult {
        while self.step().is_some() {}
        self.finish()
    }

    /// The figures of a run that [`step`](Self::step) has driven to its end (or
    /// stopped early: the figures so far).
    pub fn finish(self) -> RunResult {
        let engine = &self.engine;
        let end = match engine.end {
            End::Finished => RunEnd::Finished,
            End::Crashed => RunEnd::Crashed,
            End::SourceFailed => RunEnd::SourceFailed,
            End::Duration | End::Running => RunEnd::Duration,
        };
        RunResult {
            policy: self.label,
            end,
            elapsed_s: engine.now,
            duration_s: engine.scenario.duration_s,
            completed: engine.sink_completed,
            last_completion_s: engine.last_completion,
            worker_seconds: self.worker_seconds,
            peak_inflight_bytes: engine.peak_inflight,
            source_timeouts: engine.source_timeouts(),
            spilled_bytes: engine.spilled_bytes(),
            p99_latency_s: engine.latency_run_us.value_at_quantile(0.99) as f64 / 1e6,
            changes: self.changes,
            reversals: self.reversals,
            max_reversals_per_stage_phase: self.max_phase_reversals,
            series: self.series,
            decisions: self.decisions,
            load_changes_s: settle::load_changes(&engine.scenario),
        }
    }

    /// Logs a change made by the operator or the fleet, handed out with the next tick.
    fn log(&mut self, by: &str, action: Action, reason: String, outcome: Outcome) {
        let record = DecisionRecord {
            tick: self.tick,
            at_s: self.engine.now,
            by: by.into(),
            decision: Decision::new(action, reason),
            outcome,
        };
        self.decisions.push(record.clone());
        self.operator_log.push(record);
    }

    fn close_window(&mut self) -> Snapshot {
        self.tick += 1;
        let mut snapshot = self.engine.close_window(self.tick, self.encode_histograms);
        for (i, stage) in snapshot.stages.iter_mut().enumerate() {
            stage.workers.pinned = self.operator.is_pinned(i);
        }
        snapshot.paused = self.operator.is_paused();
        self.worker_seconds += snapshot.stages.iter().map(|s| s.worker_s).sum::<f64>();
        self.series.push(TickSample {
            at_s: snapshot.at_s,
            window_s: snapshot.window_s,
            completed: snapshot.stages.last().map_or(0, |s| s.records_out),
            workers: self.engine.workers().collect(),
            inflight_bytes: snapshot.global.inflight_bytes_max,
            budget: snapshot.global.memory_budget,
        });
        let phases = &self.engine.scenario.phases;
        let phase = phases.iter().filter(|p| p.at_s <= snapshot.at_s).count();
        if phase != self.phase {
            self.phase = phase;
            self.phase_reversals.iter_mut().for_each(|r| *r = 0);
        }
        snapshot
    }

    /// Closes the partial window the run ended in, so its worker-seconds count.
    pub(crate) fn close_last_window(&mut self) {
        if self.engine.now > self.series.last().map_or(0.0, |s| s.at_s) + 1e-9 {
            self.close_window();
        }
    }

    fn note_resize(&mut self, stage: usize, before: usize) {
        let after = self.engine.knobs.stages[stage].workers;
        let direction = if after > before { 1 } else { -1 };
        if self.direction[stage] == -direction {
            self.reversals += 1;
            self.phase_reversals[stage] += 1;
            self.max_phase_reversals = self.max_phase_reversals.max(self.phase_reversals[stage]);
        }
        self.direction[stage] = direction;
    }
}

mod settle;

#[cfg(test)]
mod test;
