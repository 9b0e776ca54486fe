//! Reports: a run's figures as SCENARIOS.md "Reports" defines them, relative to the
//! oracle, and the object `brigade sim --format json` prints per scenario.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::simulation::{RunEnd, RunResult};

/// One policy's run of one scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunReport {
    /// The policy's name as given on the command line.
    pub policy: String,
    /// Records finished by the sink.
    pub completed: u64,
    /// completed / seconds until the last completion (or the duration).
    pub throughput: f64,
    /// throughput / the oracle's throughput.
    pub vs_oracle: f64,
    /// Integral over time of the sum of all pools' sizes.
    pub worker_seconds: f64,
    /// worker_seconds / the oracle's worker_seconds.
    pub cost_vs_oracle: f64,
    /// Highest bytes in flight.
    pub peak_inflight_bytes: u64,
    /// True if the run ran out of memory.
    pub crashed: bool,
    /// How many times the source timed out.
    pub source_timeouts: u64,
    /// True if the run crashed or a source timeout failed it.
    pub failed: bool,
    /// 99th percentile of time from admission to completion, seconds.
    pub p99_latency_s: f64,
    /// Decisions that changed a knob.
    pub changes: u64,
    /// Times a stage's worker count changed direction.
    pub reversals: u64,
    /// Most reversals of one stage within one phase.
    pub max_reversals_per_stage_phase: u64,
    /// First time the 30 s moving throughput reached 95% of the run's best.
    pub settle_s: f64,
    /// How the run ended.
    pub end: RunEnd,
}

impl RunReport {
    /// The report of `run`, with ratios to `oracle` (the oracle's own run).
    pub fn new(run: &RunResult, oracle: &RunResult) -> Self {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        let throughput = run.throughput();
        Self {
            policy: run.policy.clone(),
            completed: run.completed,
            throughput,
            vs_oracle: ratio(throughput, oracle.throughput()),
            worker_seconds: run.worker_seconds,
            cost_vs_oracle: ratio(run.worker_seconds, oracle.worker_seconds),
            peak_inflight_bytes: run.peak_inflight_bytes,
            crashed: run.end == RunEnd::Crashed,
            source_timeouts: run.source_timeouts,
            failed: run.failed(),
            p99_latency_s: run.p99_latency_s,
            changes: run.changes,
            reversals: run.reversals,
            max_reversals_per_stage_phase: run.max_reversals_per_stage_phase,
            settle_s: run.settle_s(),
            end: run.end,
        }
    }
}

/// The oracle as reports show it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OracleReport {
    /// Workers per stage, by stage name.
    pub workers: BTreeMap<String, usize>,
    /// Its throughput, records/s.
    pub throughput: f64,
    /// Its worker-seconds.
    pub worker_seconds: f64,
    /// Queue capacity of every stage, records.
    pub queue_capacity: usize,
    /// Batch size of a batching sink.
    pub batch_size: usize,
    /// Memory budget, bytes (`None` = none).
    pub memory_budget: Option<u64>,
    /// Serial-lane threshold, bytes (`None` = lane off).
    pub serial_threshold: Option<u64>,
    /// True if even the oracle failed (no static configuration survives).
    pub failed: bool,
    /// Simulations the search ran.
    pub evaluations: usize,
}

/// Everything `brigade sim` reports for one scenario.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScenarioReport {
    /// The scenario's name.
    pub scenario: String,
    /// The best static configuration.
    pub oracle: OracleReport,
    /// One entry per policy, in the order asked.
    pub runs: Vec<RunReport>,
}
