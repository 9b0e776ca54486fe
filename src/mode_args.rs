//! The flags `brigade demo` and `brigade run` share: how the run is watched (the
//! dashboard, or headless as the daemon), the policy and tick, and the report.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use brigade_controller::{units, POLICY_NAMES};
use brigade_daemon::{parse_metrics_addr, Control, ControlToken};
use clap::{Args, ValueEnum};

/// How a run is watched and reported.
#[derive(Debug, Args)]
pub struct ModeArgs {
    /// Run without the dashboard, as a daemon (the default when standard output is
    /// not a terminal).
    #[arg(long)]
    headless: bool,

    /// How often the controller decides (its tick), from 1ms to 60s, e.g. 10ms.
    #[arg(long, value_name = "D", value_parser = parse_tick)]
    pub tick: Option<Duration>,

    /// How to print the final report on standard output.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = ReportFormat::Text)]
    pub report: ReportFormat,

    #[arg(long, value_name = "NAME", help = policy_help())]
    pub policy: Option<String>,

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

/// The mode a run was asked for, checked.
#[derive(Debug)]
pub struct Mode {
    /// True for the daemon, false for the dashboard.
    pub headless: bool,
    /// The daemon's configuration (used when headless).
    pub daemon: brigade_daemon::Config,
}

impl ModeArgs {
    /// Checks that the daemon's flags come with the headless mode and reads the
    /// control token.
    pub fn mode(&self) -> Result<Mode> {
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
        Ok(Mode {
            headless,
            daemon: brigade_daemon::Config {
                metrics_addr: self.metrics_addr,
                control,
                metrics_log: self.metrics_log.clone(),
                deadline: None,
                drain_timeout: self.drain_timeout,
                handle_signals: true,
                ..brigade_daemon::Config::default()
            },
        })
    }
}

/// `--policy`'s help, naming the policies there are.
fn policy_help() -> String {
    format!(
        "The policy that turns the knobs: {}, static:N (N workers per stage) or static:A,B,… \
         (per stage, in pipeline order); adaptive unless the pipeline says otherwise",
        POLICY_NAMES.join(", ")
    )
}

/// A positive duration, such as `60s` or `5m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
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
