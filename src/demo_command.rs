//! `brigade demo`: a scenario run for real on the runtime with synthetic stages,
//! watched in the dashboard, or run headless as the daemon.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use brigade_controller::units;
use brigade_controller::{from_name, POLICY_NAMES};
use brigade_daemon::{parse_metrics_addr, report_json, report_text, Control, ControlToken, Daemon};
use brigade_sim::scenario::{self, Scenario};
use brigade_synthetic::{Finished, Options};
use clap::{Args, ValueEnum};

use crate::live::{Keeper, LiveFeed};
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

    /// Run without the dashboard, as a daemon (the default when standard output is
    /// not a terminal).
    #[arg(long)]
    headless: bool,

    /// How long to admit records before draining, e.g. 60s or 5m; the scenario's
    /// duration by default.
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    duration: Option<Duration>,

    /// How often the controller decides (its tick), from 1ms to 60s, e.g. 10ms; the
    /// scenario's tick by default.
    #[arg(long, value_name = "D", value_parser = parse_tick)]
    tick: Option<Duration>,

    /// How to print the final report on standard output.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ReportFormat::Text)]
    report: ReportFormat,

    #[arg(long, value_name = "NAME", default_value = "adaptive", help = policy_help())]
    policy: String,

    /// Headless: serve Prometheus metrics at http://HOST:PORT/metrics, and control
    /// endpoints beside them (POST /control/pin?stage=S&workers=N, /control/unpin,
    /// /control/pause, /control/resume, /control/budget?bytes=512MiB).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_addr)]
    metrics_addr: Option<SocketAddr>,

    /// Headless: the bearer token the control endpoints ask for, read from FILE
    /// (trimmed). Required to serve them on an address that is not loopback; the
    /// BRIGADE_CONTROL_TOKEN environment variable does the same without a file.
    #[arg(long, value_name = "FILE", conflicts_with = "no_control")]
    control_token_file: Option<PathBuf>,

    /// Headless: serve metrics alone, without the control endpoints (what a
    /// non-loopback --metrics-addr needs when there is no token).
    #[arg(long)]
    no_control: bool,

    /// Headless: write one JSON line per tick to FILE, {"snapshot":…,"decisions":[…]}.
    #[arg(long, value_name = "FILE")]
    metrics_log: Option<PathBuf>,

    /// Headless: the longest the drain may take, e.g. 30s. Records still in flight
    /// then are not acknowledged; the report says where they were and the exit status
    /// is 1. Without it the drain waits for every record.
    #[arg(long, value_name = "D", value_parser = parse_duration)]
    drain_timeout: Option<Duration>,
}

/// `--policy`'s help, naming the policies there are.
fn policy_help() -> String {
    format!(
        "The policy that turns the knobs: {}, static:N (N workers per stage) or static:A,B,… \
         (per stage, in pipeline order)",
        POLICY_NAMES.join(", ")
    )
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let seconds = units::parse_duration(text).map_err(|e| e.to_string())?;
    if seconds <= 0.0 {
        return Err(format!("{text}: a run needs a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The shortest and longest `--tick`: under a millisecond the control loop would
/// spend a core closing windows; over a minute the controller would hardly act.
const TICKS: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(60));

fn parse_tick(text: &str) -> Result<Duration, String> {
    let seconds = units::parse_duration(text).map_err(|e| e.to_string())?;
    let tick = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX);
    if !(TICKS.0..=TICKS.1).contains(&tick) {
        return Err(format!(
            "{text}: the tick must be between 1ms and 60s (the control loop's window)"
        ));
    }
    Ok(tick)
}

fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    parse_metrics_addr(text).map_err(|e| e.to_string())
}

/// How the final report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Figures and a table of stages, to read.
    Text,
    /// One JSON object: admitted, completed, dead_lettered, throughput,
    /// peak_inflight_bytes, peak_rss_bytes, worker_seconds, decisions, and more.
    Json,
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
        if let Some(tick) = self.tick {
            scenario.tick_s = tick.as_secs_f64();
        }
        policy_arg::check(&self.policy, &scenario)?;
        let headless = self.headless || !std::io::stdout().is_terminal();
        if !headless
            && (self.metrics_addr.is_some()
                || self.metrics_log.is_some()
                || self.control_token_file.is_some()
                || self.no_control
                || self.drain_timeout.is_some())
        {
            bail!(
                "--metrics-addr, --metrics-log, --control-token-file, --no-control and \
                 --drain-timeout belong to the headless mode: add --headless"
            );
        }
        let control = match headless {
            true => control(self.control_token_file.as_deref(), self.no_control)?,
            false => Control::Open,
        };
        Ok(DemoConfig {
            scenario,
            policy: self.policy,
            headless,
            duration: self.duration,
            report: self.report,
            daemon: brigade_daemon::Config {
                metrics_addr: self.metrics_addr,
                control,
                metrics_log: self.metrics_log,
                deadline: None,
                drain_timeout: self.drain_timeout,
                handle_signals: true,
                ..brigade_daemon::Config::default()
            },
        })
    }
}

/// The environment variable that holds the control token, when no file does.
const TOKEN_VAR: &str = "BRIGADE_CONTROL_TOKEN";

/// Who may use the control endpoints: nobody with --no-control, else the bearer of
/// the token in `--control-token-file` or `BRIGADE_CONTROL_TOKEN` (not both), else
/// anyone (which the daemon allows on loopback only).
fn control(file: Option<&Path>, no_control: bool) -> Result<Control> {
    if no_control {
        return Ok(Control::Off);
    }
    let var = std::env::var_os(TOKEN_VAR);
    match (file, var) {
        (Some(_), Some(_)) => bail!(
            "--control-token-file and {TOKEN_VAR} both give a control token: keep one \
             (unset {TOKEN_VAR}, or drop the flag)"
        ),
        (Some(path), None) => Ok(Control::Token(ControlToken::read(path)?)),
        (None, Some(value)) => {
            let text = value
                .into_string()
                .map_err(|_| anyhow::anyhow!("{TOKEN_VAR}: is not UTF-8"))?;
            let token =
                ControlToken::new(&text).map_err(|why| anyhow::anyhow!("{TOKEN_VAR}: {why}"))?;
            Ok(Control::Token(token))
        }
        (None, None) => Ok(Control::Open),
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
        let keeper = Keeper::start(running);
        let dashboard = brigade_tui::Options {
            title: format!("{} · {}", config.scenario.name, config.policy),
            ..brigade_tui::Options::default()
        };
        brigade_tui::run(LiveFeed::new(&keeper), dashboard)
            .context("the dashboard cannot use this terminal")?;
        if !keeper.is_finished() {
            let left = keeper
                .monitor()
                .latest()
                .map_or(0, |s| s.global.totals.in_flight);
            eprintln!("brigade: quit before the drain ended; {left} records were left in flight");
            return Ok(ExitCode::FAILURE);
        }
        watch.finish(keeper.report())
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
