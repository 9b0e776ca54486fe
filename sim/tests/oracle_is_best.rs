//! The oracle is the best static configuration, and proves it: on every scenario of
//! the project (`scenarios/`, which holds every shared scenario in its current
//! revision), its run beats or ties, within [`TIE_TOLERANCE`], every static
//! configuration anyone would try:
//!
//! - `static:N` for N = 1, 2, 4, … up to `max_workers` (and `max_workers` itself);
//! - the configuration each policy's run ended with (workers, queues, batch, limits,
//!   budget, serial threshold), applied from t = 0 with nothing to change it.
//!
//! A contender that fails (crash, fatal source timeout) is no configuration to beat;
//! an oracle that fails where a contender survives loses. Fleets (`[fleet]`) are left
//! out: their oracle is the single process's.
//!
//! The whole set runs for minutes in release and much longer in debug, so both tests
//! are ignored by default: `cargo test --release -p brigade-sim --test oracle_is_best
//! -- --ignored --nocapture` (`two_core_scenarios` alone: the three short ones). The
//! normal suite's fast case is the flash crowd in `src/oracle/test.rs`.

use std::path::{Path, PathBuf};

use brigade_controller::{from_name, Action, Knobs, Static, POLICY_NAMES};
use brigade_scenario::{self as scenario, Scenario};
use brigade_sim::oracle::{self, TIE_TOLERANCE};
use brigade_sim::{RunResult, Simulation};
use rayon::prelude::*;

fn project_scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    paths
}

/// N = 1, 2, 4, … below `max_workers`, then `max_workers`.
fn worker_counts(max_workers: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = std::iter::successors(Some(1usize), |n| Some(n * 2))
        .take_while(|&n| n < max_workers)
        .collect();
    counts.push(max_workers.max(1));
    counts
}

/// The actions that set every knob of `knobs`.
fn actions(knobs: &Knobs) -> Vec<Action> {
    let mut actions: Vec<Action> = knobs
        .stages
        .iter()
        .enumerate()
        .flat_map(|(stage, k)| {
            [
                Action::SetWorkers {
                    stage,
                    workers: k.workers,
                },
                Action::SetQueueCapacity {
                    stage,
                    capacity: k.queue_capacity,
                },
                Action::SetBatchSize {
                    stage,
                    size: k.batch_size,
                },
                Action::SetConcurrencyLimit {
                    stage,
                    limit: k.concurrency_limit,
                },
                Action::SetRateLimit {
                    stage,
                    per_second: k.rate_limit,
                },
            ]
        })
        .collect();
    actions.push(Action::SetMemoryBudget {
        bytes: knobs.memory_budget,
    });
    actions.push(Action::SetSerialThreshold {
        bytes: knobs.serial_threshold,
    });
    actions
}

/// `policy`'s run of `scenario`, then the configuration it ended with, run from t = 0.
fn final_configuration(scenario: &Scenario, policy: &str) -> RunResult {
    let controller = from_name(policy).unwrap_or_else(|err| panic!("{err}"));
    let mut run = Simulation::new(scenario, controller, policy);
    while run.step().is_some() {}
    let knobs = run.knobs().clone();
    let mut fixed = Simulation::new(scenario, Box::new(Static::new()), format!("final:{policy}"));
    for action in actions(&knobs) {
        fixed.apply(&action);
    }
    fixed.run()
}

/// Every contender's run of `scenario`.
fn contenders(scenario: &Scenario) -> Vec<RunResult> {
    let statics: Vec<String> = worker_counts(scenario.runtime.max_workers)
        .into_iter()
        .map(|n| format!("static:{n}"))
        .collect();
    let jobs: Vec<(bool, &str)> = statics
        .iter()
        .map(|name| (false, name.as_str()))
        .chain(POLICY_NAMES.iter().map(|&name| (true, name)))
        .collect();
    jobs.par_iter()
        .map(|&(last, name)| {
            if last {
                final_configuration(scenario, name)
            } else {
                let policy = from_name(name).unwrap_or_else(|err| panic!("{err}"));
                Simulation::new(scenario, policy, name).run()
            }
        })
        .collect()
}

/// What the oracle of `path` loses to, one line each; empty when it wins or ties all.
fn losses(path: &Path) -> Vec<String> {
    let scenario = scenario::load(path).unwrap_or_else(|err| panic!("{err}"));
    if scenario.fleet.is_some() {
        return Vec::new();
    }
    let started = std::time::Instant::now();
    let oracle = oracle::search(&scenario);
    let searched = started.elapsed();
    let best = oracle.run.throughput();
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into());
    let mut lost = Vec::new();
    for run in contenders(&scenario) {
        eprintln!(
            "{name}: {:<16} {:>10.1}/s{}",
            run.policy,
            run.throughput(),
            if run.failed() { " (failed)" } else { "" }
        );
        if run.failed() {
            continue;
        }
        if oracle.run.failed() || best < (1.0 - TIE_TOLERANCE) * run.throughput() {
            lost.push(format!(
                "{name}: the oracle {:?} ({best:.1}/s{}) loses to {} ({:.1}/s)",
                oracle.config,
                if oracle.run.failed() { ", failed" } else { "" },
                run.policy,
                run.throughput()
            ));
        }
    }
    eprintln!(
        "{name}: oracle {:?} {best:.1}/s, {} evaluations, searched in {:.1?}",
        oracle.config, oracle.evaluations, searched
    );
    lost
}

fn assert_best(paths: &[PathBuf]) {
    let lost: Vec<String> = paths.iter().flat_map(|path| losses(path)).collect();
    assert!(lost.is_empty(), "{}", lost.join("\n"));
}

#[test]
#[ignore = "minutes in release: run with --release -- --ignored"]
fn every_project_scenario() {
    assert_best(&project_scenarios());
}

#[test]
#[ignore = "a minute or more in release: run with --release -- --ignored"]
fn two_core_scenarios() {
    let short: Vec<PathBuf> = project_scenarios()
        .into_iter()
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("two-core-"))
        })
        .collect();
    assert_eq!(short.len(), 3, "{short:?}");
    assert_best(&short);
}
