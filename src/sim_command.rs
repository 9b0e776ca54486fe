//! `brigade sim`: scenarios through the simulator, every policy against the oracle
//! (with `--seeds`, over several seeds each); or, with `--tui`, one policy through one
//! scenario replayed in the dashboard.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use brigade_controller::{from_name, POLICY_NAMES};
use brigade_scenario::{self as scenario, Scenario};
use brigade_sim::plot::{plot, PlotScenario};
use brigade_sim::{experiment, fleet, render, seeds};

use crate::policy_arg;
use clap::error::ErrorKind;
use clap::{Args, ValueEnum};

use crate::replay;

/// Run scenarios in the simulator and compare policies with the oracle.
///
/// Each scenario runs once per policy in virtual time, and once with the oracle (the
/// best static configuration, found by search). The report gives every policy's
/// figures and their ratios to the oracle's.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Scenario files (format 1, see docs/scenarios.md).
    #[arg(value_name = "SCENARIO.toml", required = true)]
    scenarios: Vec<PathBuf>,

    #[arg(long = "policy", value_name = "NAME", help = policy_help())]
    policies: Vec<String>,

    /// How to print the report.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,

    /// Also draw the runs over time into this SVG file: per scenario a column of
    /// throughput, workers and bytes in flight, one colour per policy, the oracle
    /// dashed.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,

    /// Replay the run in the terminal dashboard instead of printing a report.
    ///
    /// One scenario and one policy (adaptive unless --policy names another), in
    /// virtual time at 1× wall time to start. Space pauses the replay, < and > halve or
    /// double its speed; + - u a [ ] pin, unpin, pause the policy and change the budget
    /// as an operator would; ? lists the keys; q quits. Needs a terminal.
    #[arg(long, conflicts_with_all = ["format", "plot"])]
    tui: bool,

    /// Run each scenario once per seed in LIST instead of once with its file's seed,
    /// each seed against its own oracle, and report every policy's spread over them.
    ///
    /// A result that holds over many seeds is the policy's; one seen on a single seed
    /// may be that seed's luck. LIST is seeds and inclusive ranges, comma-separated:
    /// `1-12`, or `1,5,9-11`.
    #[arg(long, value_name = "LIST", value_parser = parse_seeds, conflicts_with_all = ["plot", "tui"])]
    seeds: Option<SeedList>,
}

/// The seeds of `--seeds`, each once, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedList(Vec<u64>);

/// Most seeds `--seeds` takes: each one is an oracle search, up to a minute of work.
const MAX_SEEDS: u64 = 1000;

/// Parses `--seeds`: seeds and inclusive ranges `A-B`, comma-separated; refuses an
/// empty list, a range that runs backwards, a seed given twice, and more than
/// [`MAX_SEEDS`] in all.
fn parse_seeds(text: &str) -> Result<SeedList, String> {
    let seed = |part: &str| {
        part.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{}` is not a seed (a whole number from 0)", part.trim()))
    };
    let mut seeds = Vec::new();
    let mut seen = HashSet::new();
    for part in text.split(',') {
        let (from, to) = match part.split_once('-') {
            Some((from, to)) => (seed(from)?, seed(to)?),
            None => {
                let one = seed(part)?;
                (one, one)
            }
        };
        if from > to {
            return Err(format!(
                "`{}` runs backwards: write {to}-{from}",
                part.trim()
            ));
        }
        if (seeds.len() as u64).saturating_add(to - from) >= MAX_SEEDS {
            return Err(format!(
                "more than {MAX_SEEDS} seeds: each one is an oracle search, up to a minute"
            ));
        }
        for n in from..=to {
            if !seen.insert(n) {
                return Err(format!("seed {n} is given twice"));
            }
            seeds.push(n);
        }
    }
    Ok(SeedList(seeds))
}

/// `--policy`'s help, naming the policies there are.
fn policy_help() -> String {
    format!(
        "A policy to run: {}, static:N (N workers per stage) or static:A,B,… (per stage, in \
         pipeline order). Repeat the option for several; the default is every one but \
         static:N and static:A,B,…",
        POLICY_NAMES.join(", ")
    )
}

/// A report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns to read, one section per scenario.
    Table,
    /// The object docs/scenarios.md "Reports" gives, or an array of them for several
    /// scenarios.
    Json,
    /// A header row, then per scenario a row for the oracle and one per policy.
    Csv,
}

/// A `brigade sim` whose scenarios parsed and whose policies exist.
#[derive(Debug)]
pub struct SimConfig {
    scenarios: Vec<Scenario>,
    policies: Vec<String>,
    format: Format,
    plot: Option<PathBuf>,
    tui: bool,
    seeds: Option<Vec<u64>>,
}

impl SimArgs {
    /// What the parser cannot check alone: `--tui` replays one scenario and one
    /// policy.
    pub fn check(&self) -> Result<(), clap::Error> {
        if !self.tui {
            return Ok(());
        }
        if self.scenarios.len() > 1 {
            return Err(clap::Error::raw(
                ErrorKind::TooManyValues,
                format!(
                    "--tui replays one scenario, and {} were given",
                    self.scenarios.len()
                ),
            ));
        }
        if self.policies.len() > 1 {
            return Err(clap::Error::raw(
                ErrorKind::ArgumentConflict,
                format!(
                    "--tui replays one policy, and {} were given: {}",
                    self.policies.len(),
                    self.policies.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// Checks everything before anything runs: policy names, the plot's file name and
    /// folder, a terminal for `--tui`, and every scenario file. Expects
    /// [`check`](Self::check) to have passed.
    pub fn into_config(self) -> Result<SimConfig> {
        let policies = match (self.policies.is_empty(), self.tui) {
            (false, _) => self.policies,
            (true, false) => POLICY_NAMES.iter().map(|&name| name.to_owned()).collect(),
            (true, true) => vec![POLICY_NAMES[0].to_owned()],
        };
        let mut seen = HashSet::new();
        for name in &policies {
            from_name(name)?;
            if !seen.insert(name) {
                bail!("policy `{name}` is given twice");
            }
        }
        if let Some(path) = &self.plot {
            if !path
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("svg"))
            {
                bail!(
                    "--plot {}: the plot is an SVG file, name it FILE.svg",
                    path.display()
                );
            }
            let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
            if folder.is_some_and(|folder| !folder.is_dir()) {
                bail!("--plot {}: no such folder", path.display());
            }
        }
        if self.tui && !std::io::stdout().is_terminal() {
            bail!(
                "--tui draws the dashboard on a terminal, and standard output is not one: \
                 run it in a terminal, without redirecting its output"
            );
        }
        let scenarios = self
            .scenarios
            .iter()
            .map(|path| scenario::load(path))
            .collect::<Result<Vec<_>, _>>()?;
        for (path, scenario) in self.scenarios.iter().zip(&scenarios) {
            for policy in &policies {
                policy_arg::check(policy, scenario).with_context(|| path.display().to_string())?;
            }
        }
        Ok(SimConfig {
            scenarios,
            policies,
            format: self.format,
            plot: self.plot,
            tui: self.tui,
            seeds: self.seeds.map(|list| list.0),
        })
    }
}

/// Runs every scenario, prints the report, and draws the plot if asked; with `--tui`,
/// replays the one scenario in the dashboard.
pub fn run(config: SimConfig) -> Result<()> {
    if config.tui {
        return replay::run(&config.scenarios[0], &config.policies[0]);
    }
    let progress = std::io::stderr().is_terminal();
    let (fleets, singles): (Vec<&Scenario>, Vec<&Scenario>) =
        config.scenarios.iter().partition(|s| s.fleet.is_some());
    if !fleets.is_empty() {
        run_fleets(&config, &fleets, progress)?;
    }
    if singles.is_empty() {
        return Ok(());
    }
    if let Some(seeds) = &config.seeds {
        return run_seeds(&config, &singles, seeds, progress);
    }
    let mut experiments = Vec::with_capacity(singles.len());
    for scenario in &singles {
        if progress {
            eprintln!(
                "{}: the oracle and {} policies...",
                scenario.name,
                config.policies.len()
            );
        }
        experiments.push(experiment::run(scenario, &config.policies)?);
    }
    let reports: Vec<_> = experiments.iter().map(|e| e.report.clone()).collect();
    let text = match config.format {
        Format::Table => render::table(&reports),
        Format::Json => render::json(&reports),
        Format::Csv => render::csv(&reports),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("cannot write the report")?;
    if let Some(path) = &config.plot {
        let plots: Vec<PlotScenario<'_>> = singles
            .iter()
            .zip(&experiments)
            .map(|(scenario, experiment)| PlotScenario {
                scenario,
                oracle: &experiment.oracle.run,
                runs: experiment.runs.iter().collect(),
            })
            .collect();
        plot(path, &plots)?;
    }
    Ok(())
}

/// Scenarios with `[fleet]`: each policy sized by a leader and alone, beside fixed
/// totals, as a table, before the other scenarios' report. The oracle, plots, seeds
/// and the other formats are for single processes: with `--seeds` or `--format`,
/// fleets are left out, and stderr says so.
fn run_fleets(config: &SimConfig, fleets: &[&Scenario], progress: bool) -> Result<()> {
    if config.seeds.is_some() || config.format != Format::Table {
        let names: Vec<&str> = fleets.iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "{}: left out: a [fleet] scenario has a table only, without --seeds and --format",
            names.join(", ")
        );
        return Ok(());
    }
    let mut out = String::new();
    for scenario in fleets {
        if progress {
            eprintln!(
                "{}: {} policies as a fleet...",
                scenario.name,
                config.policies.len()
            );
        }
        let rows = fleet::experiment(scenario, &config.policies);
        out += &render::fleet_table(&scenario.name, &rows);
        out += "\n";
    }
    std::io::stdout()
        .write_all(out.as_bytes())
        .context("cannot write the report")
}

/// `--seeds`: every scenario's experiment once per seed, and the spreads.
fn run_seeds(
    config: &SimConfig,
    scenarios: &[&Scenario],
    seeds: &[u64],
    progress: bool,
) -> Result<()> {
    let mut sweeps = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        if progress {
            eprintln!(
                "{}: the oracle and {} policies, over {} seeds...",
                scenario.name,
                config.policies.len(),
                seeds.len()
            );
        }
        sweeps.push(seeds::run(scenario, &config.policies, seeds)?);
    }
    let text = match config.format {
        Format::Table => render::seeds_table(&sweeps),
        Format::Json => render::seeds_json(&sweeps),
        Format::Csv => render::seeds_csv(&sweeps),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("cannot write the report")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_numbers_and_inclusive_ranges() {
        assert_eq!(parse_seeds("1-4"), Ok(SeedList(vec![1, 2, 3, 4])));
        assert_eq!(parse_seeds("9, 2,5-6"), Ok(SeedList(vec![9, 2, 5, 6])));
        assert_eq!(parse_seeds("0"), Ok(SeedList(vec![0])));
    }

    #[test]
    fn a_bad_seed_list_says_which_part_is_wrong() {
        let error = |text| parse_seeds(text).unwrap_err();
        assert!(
            error("1,x,3").contains("`x` is not a seed"),
            "{}",
            error("1,x,3")
        );
        assert!(error("").contains("`` is not a seed"), "{}", error(""));
        assert!(error("-3").contains("`` is not a seed"), "{}", error("-3"));
        assert!(error("7-2").contains("write 2-7"), "{}", error("7-2"));
        assert!(
            error("1-3,2").contains("seed 2 is given twice"),
            "{}",
            error("1-3,2")
        );
    }
}
