//! `brigade demo`: a scenario run for real on the runtime with synthetic stages,
//! watched in the dashboard, or run headless as the daemon.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use brigade_controller::from_name;
use brigade_daemon::{report_json, report_text, Daemon};
use brigade_scenario::{self as scenario, Scenario};
use brigade_synthetic::{Finished, Options};
use clap::Args;

use crate::live;
use crate::mode_args::{parse_duration, ModeArgs, ReportFormat};
use crate::policy_arg;

/// Run a scenario for real, with synthetic stages, and watch the controller tune it.
///
/// Each stage of the scenario becomes a real stage on the runtime: cpu stages spin
/// for their service time, io stages sleep for it (slowed by the scenario's
/// contention over the calls in progress), every record allocates and touches its
/// bytes, the source keeps its rate and idle timeout, and phases happen on the wall
/// clock. Without a file it runs the built-in demo, sized for a 2-core machine.
///
/// On a terminal it opens the dashboard; with --headless, or when standard output is
/// not a terminal, it runs as a daemon: metrics over HTTP, decisions logged to
/// standard error, SIGINT/SIGTERM drain and exit 0 with the final report.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The scenario file (format 1, see docs/scenarios.md); the built-in demo when absent.
    #[arg(value_name = "SCENARIO.toml")]
    scenario: Option<PathBuf>,

    /// How long to admit records before draining, e.g. 60s or 5m; the scenario's
    /// duration by default.
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    duration: Option<Duration>,

    #[command(flatten)]
    mode: ModeArgs,
}

/// A `brigade demo` whose scenario parsed and whose flags agree.
#[derive(Debug)]
pub struct DemoConfig {
    scenario: Scenario,
    policy: String,
    headless: bool,
    duration: Option<Duration>,
    report: ReportFormat,
    daemon: brigade_daemon::Config,
}

impl DemoArgs {
    /// Checks everything before anything runs: the scenario, the policy, and that the
    /// daemon's flags come with the headless mode.
    pub fn into_config(self) -> Result<DemoConfig> {
        let mut scenario = match &self.scenario {
            Some(path) => scenario::load(path)?,
            None => brigade_synthetic::builtin(),
        };
        if let Some(tick) = self.mode.tick {
            scenario.tick_s = tick.as_secs_f64();
        }
        let policy = self
            .mode
            .policy
            .clone()
            .unwrap_or_else(|| "adaptive".into());
        policy_arg::check(&policy, &scenario)?;
        let mode = self.mode.mode()?;
        Ok(DemoConfig {
            scenario,
            policy,
            headless: mode.headless,
            duration: self.duration,
            report: self.mode.report,
            daemon: mode.daemon,
        })
    }
}

/// Runs the scenario to its end (or the operator's drain) and prints the report.
pub fn run(config: DemoConfig) -> Result<ExitCode> {
    let mut options = Options::default().policy(from_name(&config.policy)?);
    if let Some(duration) = config.duration {
        options = options.duration(duration);
    }
    let finished = if config.headless {
        brigade_daemon::init_tracing();
        // Everything that can fail (the address, the log file, the signal handlers)
        // fails before the pipeline starts.
        let daemon = Daemon::new(&config.daemon)?;
        let (running, watch) = brigade_synthetic::start(&config.scenario, options)?.split();
        let outcome = daemon.run(running);
        watch.finish(outcome.report)
    } else {
        let (running, watch) = brigade_synthetic::start(&config.scenario, options)?.split();
        let title = format!("{} · {}", config.scenario.name, config.policy);
        match live::watch(running, title)? {
            Some(watched) => watch.finish(watched.report),
            None => return Ok(ExitCode::FAILURE),
        }
    };
    print_report(&config, &finished)?;
    for failure in &finished.report.failures {
        eprintln!("error: {failure}");
    }
    match &finished.failure {
        Some(failure) => {
            eprintln!("error: {failure}");
            Ok(ExitCode::FAILURE)
        }
        None if !finished.report.is_clean() => Ok(ExitCode::FAILURE),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn print_report(config: &DemoConfig, finished: &Finished) -> Result<()> {
    let text = match config.report {
        ReportFormat::Json => {
            let mut object: serde_json::Value =
                serde_json::from_str(&report_json(&finished.report, None))
                    .context("the report is JSON")?;
            object["scenario"] = config.scenario.name.clone().into();
            object["policy"] = config.policy.clone().into();
            object["source_timeouts"] = finished.source_timeouts.into();
            format!("{object}\n")
        }
        ReportFormat::Text => format!(
            "{} · {} · source timeouts: {}\n{}",
            config.scenario.name,
            config.policy,
            finished.source_timeouts,
            report_text(&finished.report, None)
        ),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("cannot write the report")
}
