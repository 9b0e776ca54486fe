//! Reports: a run's figures as docs/scenarios.md "Reports" defines them, relative to the
//! oracle, and the object `brigade sim --format json` prints per scenario.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::oracle::TIE_TOLERANCE;
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
    /// Bytes that went through the spill (0 without one).
    pub spilled_bytes: u64,
    /// 99th percentile of time from admission to completion, seconds.
    pub p99_latency_s: f64,
    /// Decisions that changed a knob.
    pub changes: u64,
    /// Times a stage's worker count changed direction.
    pub reversals: u64,
    /// Most reversals of one stage within one phase.
    pub max_reversals_per_stage_phase: u64,
    /// The longest settling time over the run's start and each phase that changes the
    /// load (docs/scenarios.md "Reports").
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
            spilled_bytes: run.spilled_bytes,
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

impl ScenarioReport {
    /// The index in `runs` of the policy that did best, as the oracle ranks its
    /// candidates: among the runs that did not fail, those within [`TIE_TOLERANCE`]
    /// of the highest throughput tie, and a tie goes to the fewest worker-seconds
    /// (then to the policy asked first). `None` if every run failed.
    pub fn first(&self) -> Option<usize> {
        let best = self
            .runs
            .iter()
            .filter(|run| !run.failed)
            .map(|run| run.throughput)
            .fold(None, |best: Option<f64>, t| {
                Some(best.map_or(t, |b| b.max(t)))
            })?;
        self.runs
            .iter()
            .enumerate()
            .filter(|(_, run)| !run.failed && run.throughput >= (1.0 - TIE_TOLERANCE) * best)
            .min_by(|(_, a), (_, b)| a.worker_seconds.total_cmp(&b.worker_seconds))
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(policy: &str, throughput: f64, worker_seconds: f64, failed: bool) -> RunReport {
        RunReport {
            policy: policy.to_owned(),
            completed: 0,
            throughput,
            vs_oracle: throughput / 1000.0,
            worker_seconds,
            cost_vs_oracle: worker_seconds / 100.0,
            peak_inflight_bytes: 0,
            crashed: failed,
            source_timeouts: 0,
            failed,
            spilled_bytes: 0,
            p99_latency_s: 0.0,
            changes: 0,
            reversals: 0,
            max_reversals_per_stage_phase: 0,
            settle_s: 0.0,
            end: if failed {
                RunEnd::Crashed
            } else {
                RunEnd::Duration
            },
        }
    }

    fn report(runs: Vec<RunReport>) -> ScenarioReport {
        ScenarioReport {
            scenario: "s".to_owned(),
            oracle: OracleReport {
                workers: BTreeMap::new(),
                throughput: 1000.0,
                worker_seconds: 100.0,
                queue_capacity: 64,
                batch_size: 1,
                memory_budget: None,
                serial_threshold: None,
                failed: false,
                evaluations: 1,
            },
            runs,
        }
    }

    #[test]
    fn first_is_the_cheapest_run_within_the_tie_tolerance_of_the_best() {
        let tied = report(vec![
            run("a", 1000.0, 900.0, false),
            run("b", 996.0, 120.0, false),
            run("c", 980.0, 50.0, false),
        ]);
        assert_eq!(
            tied.first(),
            Some(1),
            "0.4% less at a seventh of the cost ties"
        );
        let equal = report(vec![
            run("a", 990.0, 80.0, false),
            run("b", 990.0, 80.0, false),
        ]);
        assert_eq!(
            equal.first(),
            Some(0),
            "a full tie goes to the policy asked first"
        );
    }

    #[test]
    fn a_failed_run_is_never_first() {
        let one_failed = report(vec![
            run("a", 2000.0, 10.0, true),
            run("b", 500.0, 90.0, false),
        ]);
        assert_eq!(one_failed.first(), Some(1));
        let all_failed = report(vec![run("a", 2000.0, 10.0, true)]);
        assert_eq!(all_failed.first(), None);
    }
}
