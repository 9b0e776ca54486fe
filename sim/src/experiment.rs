//! An experiment: several policies through one scenario, side by side with the oracle,
//! reported as `brigade sim` prints them.
//!
//! ```no_run
//! use brigade_scenario as scenario;
//! use brigade_sim::experiment;
//!
//! let scenario = scenario::load("scenarios/cpu-bound.toml".as_ref())?;
//! let policies = ["static".to_owned(), "ds2".to_owned()];
//! let experiment = experiment::run(&scenario, &policies)?;
//! for run in &experiment.report.runs {
//!     println!("{}: {:.2} of the oracle", run.policy, run.vs_oracle);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use brigade_controller::{from_name, UnknownPolicy};
use rayon::prelude::*;

use crate::oracle::{self, Oracle};
use crate::report::{RunReport, ScenarioReport};
use crate::{RunResult, Simulation};
use brigade_scenario::Scenario;

/// What an experiment produced: the report, and the runs behind it.
#[derive(Clone, Debug)]
pub struct Experiment {
    /// The scenario's report: the oracle and one entry per policy, in the order asked.
    pub report: ScenarioReport,
    /// The oracle, with its run.
    pub oracle: Oracle,
    /// Each policy's run, in the order asked.
    pub runs: Vec<RunResult>,
}

/// Runs every policy in `policies` (names for [`from_name`]) on `scenario` plus the
/// oracle search, all in parallel; the results come back in the order asked. Every
/// name is checked before anything runs.
pub fn run(scenario: &Scenario, policies: &[String]) -> Result<Experiment, UnknownPolicy> {
    let controllers = policies
        .iter()
        .map(|name| from_name(name))
        .collect::<Result<Vec<_>, _>>()?;
    let (oracle, runs) = rayon::join(
        || oracle::search(scenario),
        || {
            controllers
                .into_par_iter()
                .zip(policies)
                .map(|(policy, name)| Simulation::new(scenario, policy, name.as_str()).run())
                .collect::<Vec<_>>()
        },
    );
    let report = ScenarioReport {
        scenario: scenario.name.clone(),
        oracle: oracle.report(scenario),
        runs: runs
            .iter()
            .map(|run| RunReport::new(run, &oracle.run))
            .collect(),
    };
    Ok(Experiment {
        report,
        oracle,
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use brigade_scenario::parse_str;

    /// One io stage, 10 ms a call, contention peaking at 5 calls; a second's worth of
    /// ticks in a few seconds of virtual time.
    fn scenario() -> Scenario {
        parse_str(
            r#"
            name = "peak"
            duration = "20s"
            [source]
            rate = 1000
            size = { dist = "fixed", value = "1KiB" }
            [[stage]]
            name = "write"
            kind = "io"
            service = { dist = "fixed", value = "10ms" }
            coherency = 0.04
            "#,
            "peak.toml",
        )
        .expect("the test scenario parses")
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|&name| name.to_owned()).collect()
    }

    #[test]
    fn an_unknown_policy_is_refused_before_anything_runs() {
        let error = run(&scenario(), &names(&["static", "seda", "fastest"])).unwrap_err();
        assert_eq!(error.name, "fastest");
    }

    #[test]
    fn runs_come_back_in_the_order_asked_with_ratios_to_the_oracle() {
        let sc = scenario();
        let asked = names(&["static:8", "static", "hill", "static:5"]);
        let experiment = run(&sc, &asked).unwrap();
        let report = &experiment.report;
        assert_eq!(report.scenario, "peak");
        let policies: Vec<&str> = report.runs.iter().map(|r| r.policy.as_str()).collect();
        assert_eq!(policies, ["static:8", "static", "hill", "static:5"]);
        let oracle = &experiment.oracle.run;
        assert_eq!(report.oracle.throughput, oracle.throughput());
        for (entry, run) in report.runs.iter().zip(&experiment.runs) {
            assert_eq!(entry.policy, run.policy);
            assert_eq!(entry.vs_oracle, run.throughput() / oracle.throughput());
            assert_eq!(
                entry.cost_vs_oracle,
                run.worker_seconds / oracle.worker_seconds
            );
        }
        // static:5 sets the oracle's workers at the first tick, a second late; one
        // worker is far slower.
        assert!((0.9..1.0).contains(&report.runs[3].vs_oracle));
        assert!(report.runs[1].vs_oracle < 0.5);
    }
}
