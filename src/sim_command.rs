//! `brigade sim`: scenarios through the simulator, every policy against the oracle; or,
//! with `--tui`, one policy through one scenario replayed in the dashboard.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use brigade_controller::{from_name, POLICY_NAMES};
use brigade_sim::plot::{plot, PlotScenario};
use brigade_sim::scenario::{self, Scenario};
use brigade_sim::{experiment, render};
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
    /// Scenario files (format 1, see SCENARIOS.md).
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
}

/// `--policy`'s help, naming the policies there are.
fn policy_help() -> String {
    format!(
        "A policy to run: {}, or static:N (N workers per stage). Repeat the option for \
         several; the default is every one but static:N",
        POLICY_NAMES.join(", ")
    )
}

/// A report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns to read, one section per scenario.
    Table,
    /// The object SCENARIOS.md "Reports" gives, or an array of them for several
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
        Ok(SimConfig {
            scenarios,
            policies,
            format: self.format,
            plot: self.plot,
            tui: self.tui,
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
    let mut experiments = Vec::with_capacity(config.scenarios.len());
    for scenario in &config.scenarios {
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
        let plots: Vec<PlotScenario<'_>> = config
            .scenarios
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
