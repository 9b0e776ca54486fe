//! Data-driven policy tests, in the style of vector's adaptive-concurrency tests.
//!
//! Every `tests/scenarios/NAME.toml` is a test copy of a shared scenario (shortened
//! where the full one would make the suite slow; the shared files are never changed),
//! or of one of the project's where the shared ones leave a behaviour untested
//! (`two-core-lock`: a lock short enough that the breaker must probe soon after it),
//! or a randomly drawn pipeline on which `adaptive` once failed (`unseen-*`, each
//! naming what it guards), and `NAME.expect.toml` beside it holds:
//!
//! - `[oracle]`: the best static configuration, as `brigade sim` found it for this
//!   copy; the test simulates it to get the oracle's figures (nothing is cached);
//! - `[policy.NAME]`: for each policy, ranges `[low, high]` (inclusive) that its
//!   report must fall in, `failed = false`, and for `adaptive` `best = true` (its
//!   `vs_oracle` is the highest of all policies run; within the oracle's
//!   `TIE_TOLERANCE` of each other two are a tie, which goes to the lower cost).
//!
//! A regression of the simulator or of any policy moves a figure out of its range and
//! fails with the scenario, policy, field, range and value.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use brigade_controller::from_name;
use brigade_scenario::{self as scenario, Scenario};
use brigade_sim::oracle::{StaticConfig, TIE_TOLERANCE};
use brigade_sim::report::RunReport;
use brigade_sim::{RunResult, Simulation};
use serde::Deserialize;

const MIB: u64 = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectations {
    oracle: OracleConfig,
    policy: BTreeMap<String, Ranges>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OracleConfig {
    workers: Vec<usize>,
    queue_capacity: Option<usize>,
    batch_size: Option<usize>,
    memory_budget_mib: Option<u64>,
    serial_threshold_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ranges {
    throughput: Option<[f64; 2]>,
    vs_oracle: Option<[f64; 2]>,
    cost_vs_oracle: Option<[f64; 2]>,
    settle_s: Option<[f64; 2]>,
    max_reversals_per_stage_phase: Option<[u64; 2]>,
    peak_inflight_mib: Option<[f64; 2]>,
    failed: Option<bool>,
    best: Option<bool>,
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

/// The oracle's configuration, in force from t = 0, simulated as `brigade sim` does.
fn run_oracle(scenario: &Scenario, config: &OracleConfig) -> RunResult {
    let defaults = StaticConfig::of(scenario);
    StaticConfig {
        workers: config.workers.clone(),
        queue_capacity: config.queue_capacity.unwrap_or(defaults.queue_capacity),
        batch_size: config.batch_size.unwrap_or(defaults.batch_size),
        memory_budget: config.memory_budget_mib.map(|mib| mib * MIB),
        serial_threshold: config.serial_threshold_mib.map(|mib| mib * MIB),
    }
    .simulate(scenario, "oracle")
}

fn check_range<T: PartialOrd + std::fmt::Display>(
    failures: &mut Vec<String>,
    what: &str,
    range: Option<[T; 2]>,
    value: T,
) {
    if let Some([low, high]) = range {
        if value < low || value > high {
            failures.push(format!("{what} = {value}, expected within [{low}, {high}]"));
        }
    }
}

/// Runs every policy of one scenario's expectations and returns what is out of range.
fn check(path: &Path) -> Vec<String> {
    let scenario = scenario::load(path).unwrap_or_else(|err| panic!("{err}"));
    let expect_path = path.with_extension("expect.toml");
    let text = fs::read_to_string(&expect_path)
        .unwrap_or_else(|err| panic!("{}: {err}", expect_path.display()));
    let expectations: Expectations =
        toml::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", expect_path.display()));
    let (oracle, runs) = std::thread::scope(|scope| {
        let oracle = scope.spawn(|| run_oracle(&scenario, &expectations.oracle));
        let runs: Vec<_> = expectations
            .policy
            .keys()
            .map(|name| {
                let scenario = &scenario;
                scope.spawn(move || {
                    let policy = from_name(name).unwrap_or_else(|err| panic!("{err}"));
                    Simulation::new(scenario, policy, name.as_str()).run()
                })
            })
            .collect();
        (
            oracle.join().expect("the oracle run"),
            runs.into_iter()
                .map(|run| run.join().expect("a policy run"))
                .collect::<Vec<_>>(),
        )
    });
    let reports: Vec<RunReport> = runs
        .iter()
        .map(|run| RunReport::new(run, &oracle))
        .collect();
    eprintln!(
        "{}: oracle {:.1} records/s, {:.0} worker-s",
        scenario.name,
        oracle.throughput(),
        oracle.worker_seconds
    );
    let mut failures = Vec::new();
    if oracle.failed() {
        failures.push(format!(
            "{}: the oracle's configuration failed",
            scenario.name
        ));
    }
    for report in &reports {
        eprintln!(
            "  {:<9} {:>10.1}/s vs_oracle {:.3} cost {:.3} settle {:>4.0}s max reversals {} peak {:.0} MiB {}",
            report.policy,
            report.throughput,
            report.vs_oracle,
            report.cost_vs_oracle,
            report.settle_s,
            report.max_reversals_per_stage_phase,
            report.peak_inflight_bytes as f64 / MIB as f64,
            if report.failed { "FAILED" } else { "" }
        );
        let ranges = &expectations.policy[&report.policy];
        let mut mine = Vec::new();
        check_range(
            &mut mine,
            "throughput",
            ranges.throughput,
            report.throughput,
        );
        check_range(&mut mine, "vs_oracle", ranges.vs_oracle, report.vs_oracle);
        check_range(
            &mut mine,
            "cost_vs_oracle",
            ranges.cost_vs_oracle,
            report.cost_vs_oracle,
        );
        check_range(&mut mine, "settle_s", ranges.settle_s, report.settle_s);
        check_range(
            &mut mine,
            "max_reversals_per_stage_phase",
            ranges.max_reversals_per_stage_phase,
            report.max_reversals_per_stage_phase,
        );
        check_range(
            &mut mine,
            "peak_inflight_mib",
            ranges.peak_inflight_mib,
            report.peak_inflight_bytes as f64 / MIB as f64,
        );
        if let Some(failed) = ranges.failed {
            if report.failed != failed {
                mine.push(format!("failed = {}, expected {failed}", report.failed));
            }
        }
        if ranges.best == Some(true) {
            let beaten_by: Vec<&str> = reports
                .iter()
                .filter(|other| other.policy != report.policy && beats(other, report))
                .map(|other| other.policy.as_str())
                .collect();
            if !beaten_by.is_empty() {
                mine.push(format!("not the best: beaten by {beaten_by:?}"));
            }
        }
        failures.extend(
            mine.into_iter()
                .map(|failure| format!("{}, {}: {failure}", path.display(), report.policy)),
        );
    }
    failures
}

/// True if `other` ranks above `report`: more throughput, or a tie (within the
/// oracle's `TIE_TOLERANCE`, the same rule by which the oracle picks among static
/// configurations) at a lower cost.
fn beats(other: &RunReport, report: &RunReport) -> bool {
    let tie = (other.vs_oracle - report.vs_oracle).abs()
        <= TIE_TOLERANCE * other.vs_oracle.max(report.vs_oracle);
    if tie {
        other.cost_vs_oracle < report.cost_vs_oracle
    } else {
        other.vs_oracle > report.vs_oracle
    }
}

#[test]
fn every_scenario_stays_within_its_expected_ranges() {
    let mut paths: Vec<PathBuf> = fs::read_dir(scenarios_dir())
        .expect("sim/tests/scenarios")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == "toml")
                && !path.to_string_lossy().ends_with(".expect.toml")
        })
        .collect();
    paths.sort();
    assert!(paths.len() >= 6, "{paths:?}");
    let failures: Vec<String> = paths.iter().flat_map(|path| check(path)).collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
