//! A seed sweep: one scenario's experiment repeated over other seeds, to tell what a
//! policy does from the luck of one seed's draws.
//!
//! A scenario's seed decides every draw of its run: record sizes, service times,
//! giants, errors. Most results hardly move with it. Some are a lottery: when a lock
//! catches a few calls whose draws are long-tailed, which records happen to be in
//! those calls decides how long the stage stays short of workers, and one seed's
//! figure can sit anywhere in a wide range. A sweep runs the whole experiment (the
//! oracle and every policy) once per seed, each seed against its own oracle, and
//! gives each policy's spread.
//!
//! ```no_run
//! use brigade_scenario as scenario;
//! use brigade_sim::seeds;
//!
//! let scenario = scenario::load("scenarios/s3-idle-timeout.toml".as_ref())?;
//! let sweep = seeds::run(&scenario, &["adaptive".to_owned()], &[1, 2, 3, 4, 5])?;
//! for spread in sweep.spreads() {
//!     println!(
//!         "{}: median {:.2} of the oracle, {:.2} to {:.2}",
//!         spread.policy, spread.vs_oracle.median, spread.vs_oracle.lowest, spread.vs_oracle.highest
//!     );
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use brigade_controller::{from_name, UnknownPolicy};
use rayon::prelude::*;
use serde::Serialize;

use crate::experiment;
use crate::report::ScenarioReport;
use brigade_scenario::Scenario;

/// One scenario's experiment over several seeds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeedSweep {
    /// The scenario's name.
    pub scenario: String,
    /// The seed its file gives.
    pub file_seed: u64,
    /// One report per seed, in the order asked.
    pub seeds: Vec<SeedReport>,
}

/// The experiment's report for one seed: the object `brigade sim --format json`
/// prints, with the seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeedReport {
    /// The seed the scenario ran with.
    pub seed: u64,
    /// The oracle for this seed, and every policy against it.
    #[serde(flatten)]
    pub report: ScenarioReport,
}

/// The lowest, median and highest of one figure over the seeds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// The lowest value.
    pub lowest: f64,
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The highest value.
    pub highest: f64,
}

/// One policy's results over the seeds of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicySpread {
    /// The policy's name as asked.
    pub policy: String,
    /// Its throughput over each seed's oracle's.
    pub vs_oracle: Spread,
    /// Its worker-seconds over each seed's oracle's.
    pub cost_vs_oracle: Spread,
    /// Seeds on which its run failed (crash or source timeout).
    pub failed: usize,
    /// Seeds on which it ranked first of the policies asked (see
    /// [`ScenarioReport::first`]).
    pub first: usize,
}

/// Runs [`experiment::run`] on `scenario` once for each of `seeds`, in parallel; the
/// reports come back in the order asked. Every policy name is checked before
/// anything runs.
pub fn run(
    scenario: &Scenario,
    policies: &[String],
    seeds: &[u64],
) -> Result<SeedSweep, UnknownPolicy> {
    for name in policies {
        from_name(name)?;
    }
    let reports = seeds
        .par_iter()
        .map(|&seed| {
            let reseeded = Scenario {
                seed,
                ..scenario.clone()
            };
            experiment::run(&reseeded, policies).map(|experiment| SeedReport {
                seed,
                report: experiment.report,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SeedSweep {
        scenario: scenario.name.clone(),
        file_seed: scenario.seed,
        seeds: reports,
    })
}

impl SeedSweep {
    /// Each policy's spread over the seeds, in the order the policies were asked.
    pub fn spreads(&self) -> Vec<PolicySpread> {
        let Some(first_seed) = self.seeds.first() else {
            return Vec::new();
        };
        let winners: Vec<Option<usize>> =
            self.seeds.iter().map(|seed| seed.report.first()).collect();
        first_seed
            .report
            .runs
            .iter()
            .enumerate()
            .map(|(i, run)| {
                let runs = self.seeds.iter().map(|seed| &seed.report.runs[i]);
                PolicySpread {
                    policy: run.policy.clone(),
                    vs_oracle: Spread::of(runs.clone().map(|run| run.vs_oracle)),
                    cost_vs_oracle: Spread::of(runs.clone().map(|run| run.cost_vs_oracle)),
                    failed: runs.filter(|run| run.failed).count(),
                    first: winners.iter().filter(|&&w| w == Some(i)).count(),
                }
            })
            .collect()
    }
}

impl Spread {
    /// The spread of `values`; all zero for none.
    pub fn of(values: impl Iterator<Item = f64>) -> Self {
        let mut values: Vec<f64> = values.collect();
        if values.is_empty() {
            return Self {
                lowest: 0.0,
                median: 0.0,
                highest: 0.0,
            };
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Self {
            lowest: values[0],
            median,
            highest: values[n - 1],
        }
    }
}

#[cfg(test)]
mod test;
