//! brigade-daemon: a running pipeline with no terminal (`brigade demo --headless`).
//!
//! While a [`Running`] pipeline goes on, the daemon serves its metrics and control
//! endpoints over HTTP ([`Config::metrics_addr`]), writes every tick as one JSON line
//! ([`Config::metrics_log`]), logs every decision with its reason (and a finite source's
//! progress, and workers that could not open their resource) through `tracing`,
//! and drains at [`Config::deadline`], when a [`Stopper`] asks, or (if
//! [`Config::handle_signals`] is set) on SIGINT or SIGTERM. [`Daemon::run`] returns the final [`Report`]; [`report_json`] and
//! [`report_text`] render it for the caller to print.
//!
//! ```no_run
//! use std::time::Duration;
//! use brigade_daemon::{report_text, Config, Daemon};
//! use brigade_runtime::Pipeline;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! brigade_daemon::init_tracing();
//! let config = Config {
//!     metrics_addr: Some(brigade_daemon::parse_metrics_addr("127.0.0.1:9100")?),
//!     metrics_log: Some("ticks.jsonl".into()),
//!     deadline: Some(Duration::from_secs(60)),
//!     drain_timeout: Some(Duration::from_secs(30)),
//!     handle_signals: true,
//!     ..Config::default()
//! };
//! // Checked (address bound, file opened, handlers installed) before the pipeline starts.
//! let daemon = Daemon::new(&config)?;
//! let running = Pipeline::from_iter(0u64..)
//!     .map("double", |x| x * 2)
//!     .sink("discard", |_| {})
//!     .start()?;
//! let outcome = daemon.run(running);
//! eprintln!("brigade: {}", outcome.ended);
//! print!("{}", report_text(&outcome.report, outcome.progress.as_ref()));
//! # Ok(())
//! # }
//! ```
//!
//! # Metrics: `GET /metrics`
//!
//! OpenMetrics text (`application/openmetrics-text; version=1.0.0`) to a client whose
//! `Accept` header prefers it, as Prometheus's does; otherwise (no header, curl's
//! `*/*`) the Prometheus text format 0.0.4 (`text/plain; version=0.0.4`), the one
//! `promtool check metrics` reads: the same samples, without `# UNIT` and `# EOF`,
//! counter families named `…_total`. Encoded by prometheus-client from the latest
//! snapshot at each scrape; empty (OpenMetrics: only `# EOF`) before the first tick. Gauges are the latest window's figures; counters (`_total`) and
//! histograms add up every window the daemon saw. Histograms are rebuilt from the
//! snapshots' hdrhistograms into fixed buckets (times: 1 µs to 60 s; sizes: 64 B to
//! 4 GiB by powers of 4).
//!
//! Per stage, labelled `stage="NAME"`: gauges `brigade_stage_workers_live`,
//! `_workers_target`, `_workers_min`, `_workers_max`, `_pinned` (0/1), `_busy_ratio`,
//! `_wait_in_ratio`, `_wait_out_ratio`, `_queue_depth` (mean), `_queue_depth_max`,
//! `_queue_capacity`, `_batch_size`, `_out_records_per_second`; counters
//! `brigade_stage_in_records_total`, `_out_records_total`, `_in_bytes_total`,
//! `_out_bytes_total`, `_errors_total`, `_retries_total`, `_dead_lettered_total`,
//! `_open_failures_total` (workers that could not open their resource),
//! `_busy_seconds_total`, `_wait_in_seconds_total`, `_wait_out_seconds_total`,
//! `_worker_seconds_total`; histograms `brigade_stage_service_time_seconds`,
//! `_input_wait_seconds`, `_record_size_bytes`.
//!
//! Pipeline-wide: `brigade_tick`, `brigade_uptime_seconds`, `brigade_window_seconds`,
//! `brigade_throughput_records_per_second`, `brigade_records_admitted_total`,
//! `_completed_total`, `_dead_lettered_total`, `brigade_records_in_flight`,
//! `brigade_inflight_bytes` (mean), `brigade_inflight_max_bytes`,
//! `brigade_memory_budget_bytes` (absent: no cap), `brigade_process_rss_bytes`,
//! `brigade_process_cpu_cores`, `brigade_machine_cores`, `brigade_machine_memory_bytes`,
//! `brigade_machine_available_memory_bytes`, the histogram `brigade_latency_seconds`
//! (admission to completion); the source: `brigade_source_read_records_total`,
//! `_read_bytes_total`, `brigade_source_records_per_second`,
//! `brigade_source_idle_gap_seconds`, `brigade_source_idle_timeout_seconds` (absent:
//! none), `brigade_source_guard_reads_total`, `brigade_source_exhausted`, and for a
//! source that says how far it has read: `brigade_source_files_done`,
//! `brigade_source_done_bytes` (as stored), and when known the totals
//! `brigade_source_files_expected`, `brigade_source_expected_bytes` (gauges: a
//! `_total` suffix is for counters); for a source in a consumer group (Redis
//! Streams): `brigade_group_lag`, `brigade_group_pending_own`,
//! `brigade_group_pending_others`, `brigade_group_consumers`,
//! `brigade_group_claims_total`, `brigade_group_arrival_records_per_second`, and what
//! an autoscaler acts on: `brigade_recommended_processes` (processes that keep up
//! with the arrivals and drain the lag within 10 minutes, from this process's
//! capacity: `brigade_controller::fleet`) and
//! `brigade_recommended_processes_to_keep_up`; the serial
//! lane: `brigade_serial_threshold_bytes` (absent: lane off),
//! `brigade_serial_records_total`, `brigade_serial_bytes_total`,
//! `brigade_serial_busy_seconds_total`, `brigade_serial_current_bytes`,
//! `brigade_serial_waiting_bytes`; the controller: `brigade_controller_paused` (0/1),
//! `brigade_decisions_total`.
//!
//! # Controls: `POST /control/…`
//!
//! What the dashboard's keys do, as [`Override`](brigade_controller::Override)s.
//! Parameters go in the query string or a form body (`curl -d stage=parse -d
//! workers=4 http://…/control/pin`); `GET` is refused, since these change state.
//!
//! | endpoint | parameters | does |
//! | --- | --- | --- |
//! | `/control/pin` | `stage` (name or index), `workers` (within the stage's bounds) | pins the stage's workers |
//! | `/control/unpin` | `stage` | gives the stage back to the controller |
//! | `/control/pause` | | stops consulting the controller |
//! | `/control/resume` | | consults it again |
//! | `/control/budget` | `bytes`: `512MiB`, `1.5GiB`, `1048576` (units B, KiB, MiB, GiB, TiB; at most the machine's memory) or `none` | sets the operator's memory budget |
//!
//! Answers are JSON: 200 `{"ok":true,"override":{"op":"pin_workers","stage":0,"workers":4},"stage":"parse"}`
//! (the override sent; the control loop applies it within 10 ms, and the next tick
//! shows it), else `{"error":"…","ok":false}` with 400 (a bad, missing, repeated or
//! unknown parameter, or a malformed query string, named), 401 (no token or the wrong
//! one), 404 (an unknown stage or path, or the controls are off), 405 (a wrong
//! method) or 503 (no tick has closed yet, so no stage names).
//!
//! Who may use them is [`Config::control`]: on a loopback address anyone who can
//! connect, as the metrics; with a [`ControlToken`] (`--control-token-file PATH` or
//! `BRIGADE_CONTROL_TOKEN` in the binary) only requests carrying
//! `Authorization: Bearer TOKEN` (compared in constant time), on any address; with
//! [`Control::Off`] (`--no-control`) nobody. [`Daemon::new`] refuses to open them
//! without a token on an address that is not loopback ([`Error::OpenControl`]).
//! `/metrics` never asks for a token.
//!
//! # Misbehaving clients
//!
//! Each connection is served on a thread of its own, at most 64 at once (more get
//! 503), one request per connection (`Connection: close`): a client that is slow,
//! silent or stuck holds only its own connection, never `/metrics` or the
//! pipeline. A request must arrive whole within 10 s (else 408), with a head of at
//! most 8 KiB (else 431) and a body of at most 4 KiB announced by `Content-Length`
//! (else 413, refused from the head without reading the body; a chunked body gets
//! 411). A malformed request line or header gets 400, an HTTP version other than
//! 1.0 and 1.1 gets 505.
//!
//! # The log file
//!
//! One [`TickLine`] per tick, one line each: `{"snapshot":{…},"decisions":[…]}`, the
//! controller crate's serde shapes of [`Snapshot`](brigade_controller::Snapshot) and
//! [`DecisionRecord`](brigade_controller::DecisionRecord). Ticks closed before
//! [`Daemon::run`] subscribed are not in it.
//!
//! # Logging
//!
//! Each decision at info, target `brigade::decision`: fields `tick`, `by`, `stage`
//! (`pipeline` for global knobs), `action` (`workers → 4`), `outcome`, and the reason
//! as the message. Overrides taken over HTTP at info, target `brigade::operator`.
//! Workers of a stage that could not open their resource at warn, once per window,
//! target `brigade::open`: fields `tick`, `stage`, `failures`, and the last error in
//! the message. A finite source's progress at info, target `brigade::progress`, every
//! [`Config::progress_every`] of the run (`progress: 3/10 files, 1.2 GiB of 4.0 GiB
//! (30%), 85.0 MiB/s, 42s left`) and once when it is read to its end.
//! [`init_tracing`] installs a subscriber writing to stderr.
//!
//! # Signals
//!
//! Only with [`Config::handle_signals`] (the binary sets it; a library user who has
//! handlers of their own leaves it off and calls [`Stopper::stop`] from them): from
//! [`Daemon::new`] on, SIGINT and SIGTERM ask for a drain: admission stops and
//! what is in flight finishes. A signal during the drain ends the process at once
//! with code 128 + the signal's number (130 for SIGINT, 143 for SIGTERM), after saying
//! on stderr how many records (and about how many bytes) were left in flight. After
//! [`Daemon::run`] returns, both signals end the process again, as by default.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod board;
mod config;
mod http;
mod journal;
mod metrics;
mod progress;
mod report;
mod server;
mod signals;
mod watch;

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use brigade_controller::Progress;
use brigade_runtime::{Monitor, Report, Running, Tick};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

pub use config::{parse_metrics_addr, Config, Control, ControlToken, Error};
pub use journal::TickLine;
pub use report::{report_json, report_text};

use board::Board;
use journal::Journal;
use progress::ProgressLog;
use server::Server;
use signals::SignalWatch;

/// How often the daemon checks whether the pipeline has drained by itself.
const POLL: Duration = Duration::from_millis(50);

/// What the daemon's threads share.
#[derive(Default)]
struct Shared {
    /// Set when the daemon starts running a pipeline.
    monitor: OnceLock<Monitor>,
    /// What `/metrics` shows.
    board: Mutex<Board>,
    /// Set once a drain has begun: a signal then ends the process.
    draining: AtomicBool,
}

/// Why the daemon should stop.
#[derive(Debug)]
enum Stop {
    Signal(i32),
    Requested,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The source ran out and everything drained.
    Finished,
    /// [`Config::deadline`] passed: admission stopped and the pipeline drained.
    Deadline,
    /// A signal (its number: SIGINT or SIGTERM) asked for the drain.
    Signal(i32),
    /// A [`Stopper`] asked for the drain, or the pipeline's owner stopped admission
    /// itself (through [`Running::admission`](brigade_runtime::Running::admission)).
    Stopped,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Finished => f.write_str("the source ran out"),
            Ended::Deadline => f.write_str("the deadline passed"),
            Ended::Signal(signal) => f.write_str(&signals::name(*signal)),
            Ended::Stopped => f.write_str("admission was stopped"),
        }
    }
}

/// What a run came to: the final report, how it ended, and how far the source read.
#[derive(Debug)]
pub struct Outcome {
    /// The pipeline's final report; after the drain,
    /// `admitted == completed + dead_lettered`.
    pub report: Report,
    /// Why it ended.
    pub ended: Ended,
    /// How far a finite source read, as it last said (`None`: it cannot say); for
    /// [`report_text`] and [`report_json`].
    pub progress: Option<Progress>,
}

/// Asks a running daemon to drain, as a first signal would. Cloneable; sending after
/// the run has ended does nothing.
#[derive(Clone, Debug)]
pub struct Stopper(Sender<Stop>);

impl Stopper {
    /// Stops admission and drains, as SIGTERM does.
    pub fn stop(&self) {
        // The daemon holds a receiver until it is dropped.
        let _ = self.0.send(Stop::Requested);
    }
}

/// The headless daemon, set up and waiting for a pipeline to [`run`](Daemon::run).
///
/// [`Daemon::new`] does everything that can fail (binds the address, opens the log
/// file, installs the signal handlers if asked, starts its threads), so call it before the
/// pipeline starts. Dropping a daemon that never ran stops its threads.
pub struct Daemon {
    shared: Arc<Shared>,
    metrics_addr: Option<SocketAddr>,
    deadline: Option<Duration>,
    drain_timeout: Option<Duration>,
    stop_tx: Sender<Stop>,
    stop_rx: Receiver<Stop>,
    /// Hands the monitor's feed to the watcher.
    start: Option<Sender<Receiver<Tick>>>,
    watcher: Option<JoinHandle<()>>,
    http: Option<Server>,
    signals: Option<SignalWatch>,
}

impl Daemon {
    /// Checks `config` and sets everything up: binds the metrics address (and says on
    /// stderr `brigade: metrics on http://ADDR/metrics`), creates the log file,
    /// installs the SIGINT and SIGTERM handlers if [`Config::handle_signals`] asks
    /// (from now on they ask for a drain) and starts the daemon's threads.
    pub fn new(config: &Config) -> Result<Self, Error> {
        if let Some(addr) = config.metrics_addr {
            if !addr.ip().to_canonical().is_loopback() && matches!(config.control, Control::Open) {
                return Err(Error::OpenControl { addr });
            }
        }
        let listener = config
            .metrics_addr
            .map(|addr| {
                let refused = |e: std::io::Error| Error::MetricsAddr {
                    value: addr.to_string(),
                    reason: e.to_string(),
                };
                let listener = TcpListener::bind(addr).map_err(refused)?;
                let bound = listener.local_addr().map_err(refused)?;
                Ok((listener, bound))
            })
            .transpose()?;
        let metrics_addr = listener.as_ref().map(|(_, bound)| *bound);
        let journal = config
            .metrics_log
            .as_deref()
            .map(Journal::create)
            .transpose()?;
        let shared = Arc::new(Shared::default());
        let (stop_tx, stop_rx) = crossbeam_channel::unbounded();
        let (start_tx, start_rx) = crossbeam_channel::bounded(1);
        // From here on, an early return drops `daemon`, which stops what has started.
        let mut daemon = Daemon {
            shared: shared.clone(),
            metrics_addr,
            deadline: config.deadline,
            drain_timeout: config.drain_timeout,
            stop_tx: stop_tx.clone(),
            stop_rx,
            start: Some(start_tx),
            watcher: None,
            http: None,
            signals: None,
        };
        let progress = ProgressLog::new(config.progress_every);
        daemon.watcher = Some(watch::spawn(shared.clone(), journal, progress, start_rx)?);
        if config.handle_signals {
            daemon.signals = Some(signals::watch(shared.clone(), stop_tx)?);
        }
        if let Some((listener, _)) = listener {
            daemon.http = Some(http::serve(listener, shared, config.control.clone())?);
        }
        if let Some(addr) = metrics_addr {
            eprintln!("brigade: metrics on http://{addr}/metrics");
        }
        Ok(daemon)
    }

    /// The address `/metrics` is served on (the port chosen, when port 0 was asked).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// A handle that asks the run to drain, from any thread.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop_tx.clone())
    }

    /// Serves `running` until it finishes by itself, the deadline passes, a signal
    /// arrives or a [`Stopper`] asks; then stops admission, drains, and returns the
    /// final report. The HTTP endpoints answer until the drain is over, which
    /// [`Config::drain_timeout`] may cut short.
    pub fn run(mut self, running: Running) -> Outcome {
        let monitor = running.monitor();
        if let Some(start) = self.start.take() {
            // Fails only if the watcher thread has died; the run goes on without it.
            let _ = start.send(monitor.subscribe());
        }
        // A Daemon runs one pipeline: `run` takes it by value, so this is the first set.
        let _ = self.shared.monitor.set(monitor.clone());
        let ended = self.wait_for_end(&running);
        self.shared.draining.store(true, SeqCst);
        let in_flight = monitor.latest().map_or(0, |s| s.global.totals.in_flight);
        match ended {
            Ended::Signal(_) => eprintln!(
                "brigade: {ended}: draining {in_flight} records in flight; a second signal \
                 exits at once"
            ),
            _ if running.is_drained() => tracing::info!("{ended}: finishing"),
            Ended::Finished | Ended::Deadline | Ended::Stopped => {
                tracing::info!(in_flight, "{ended}: stopping admission and draining");
            }
        }
        let report = match self.drain_timeout {
            Some(timeout) => running.shutdown_within(timeout),
            None => running.shutdown(),
        };
        for failure in &report.failures {
            tracing::error!("{failure}");
        }
        // The last window closed after the source thread ended: its final word.
        let progress = monitor
            .latest()
            .and_then(|snapshot| snapshot.global.source.progress);
        self.close();
        Outcome {
            report,
            ended,
            progress,
        }
    }

    fn wait_for_end(&self, running: &Running) -> Ended {
        let deadline = self.deadline.map(|d| Instant::now() + d);
        loop {
            if running.is_drained() {
                // Drained without this daemon's stop: the source ran out, or the
                // pipeline's owner stopped admission (a demo whose time is up).
                return if running.admission().is_stopped() {
                    Ended::Stopped
                } else {
                    Ended::Finished
                };
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ended::Deadline;
            }
            let wait = deadline.map_or(POLL, |d| (d - now).min(POLL));
            match self.stop_rx.recv_timeout(wait) {
                Ok(Stop::Signal(signal)) => return Ended::Signal(signal),
                Ok(Stop::Requested) => return Ended::Stopped,
                // Timed out (the daemon holds a sender, so the channel stays open).
                Err(_) => {}
            }
        }
    }

    /// Stops the daemon's threads: the watcher once its feed has ended (at once if it
    /// never got one), then the HTTP server and the signal thread.
    fn close(&mut self) {
        self.start = None;
        if let Some(watcher) = self.watcher.take() {
            if watcher.join().is_err() {
                tracing::error!("the daemon's watcher thread panicked");
            }
        }
        if let Some(http) = self.http.take() {
            http.stop();
        }
        if let Some(signals) = self.signals.take() {
            signals.stop();
        }
    }
}

impl fmt::Debug for Daemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Daemon")
            .field("metrics_addr", &self.metrics_addr)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.close();
    }
}

/// Sets up a daemon for `config` and runs `running` under it: [`Daemon::new`] then
/// [`Daemon::run`]. When the set-up fails the pipeline is drained first (it has
/// already started), then the error returned; to fail before anything runs, call
/// [`Daemon::new`] before starting the pipeline.
pub fn run(running: Running, config: &Config) -> Result<Outcome, Error> {
    match Daemon::new(config) {
        Ok(daemon) => Ok(daemon.run(running)),
        Err(error) => {
            running.shutdown();
            Err(error)
        }
    }
}

/// Installs a `tracing` subscriber that writes info and above to stderr (colours when
/// stderr is a terminal): decisions, overrides and the daemon's own news. For binaries;
/// does nothing if a subscriber is already installed.
pub fn init_tracing() {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_max_level(tracing::Level::INFO)
        .try_init();
}
