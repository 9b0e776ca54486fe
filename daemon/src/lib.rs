//! brigade-daemon: a running pipeline with no terminal (`brigade demo --headless`).
//!
//! While a [`Running`] pipeline goes on, the daemon
//! - serves its metrics in the OpenMetrics text format at `GET /metrics`
//!   ([`Config::metrics_addr`]; the names are listed in the `metrics` module source),
//!   with control endpoints beside it that do what the dashboard's keys do
//!   (`POST /control/pin?stage=parse&workers=4`, `/control/unpin?stage=…`,
//!   `/control/pause`, `/control/resume`, `/control/budget?bytes=512MiB|none`);
//! - writes every tick as one JSON line ([`TickLine`]) to [`Config::metrics_log`];
//! - logs every decision with its reason through `tracing` (target
//!   `brigade::decision`; [`init_tracing`] installs a subscriber for a binary);
//! - drains on SIGINT or SIGTERM (or at [`Config::deadline`], or when a [`Stopper`]
//!   asks), and returns the final [`Report`]; a second signal during the drain ends the
//!   process at once with code 128 + the signal's number (130 for SIGINT), after saying
//!   on stderr what was left in flight.
//!
//! [`report_json`] and [`report_text`] render the report for the caller to print.
//!
//! ```no_run
//! use std::time::Duration;
//! use brigade_daemon::{report_text, Config, Daemon};
//! use brigade_runtime::Pipeline;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Config {
//!     metrics_addr: Some(brigade_daemon::parse_metrics_addr("127.0.0.1:9100")?),
//!     metrics_log: Some("ticks.jsonl".into()),
//!     deadline: Some(Duration::from_secs(60)),
//! };
//! // Checked (address bound, file opened) before the pipeline starts.
//! let daemon = Daemon::new(&config)?;
//! let running = Pipeline::from_iter(0u64..)
//!     .map("double", |x| x * 2)
//!     .sink("discard", |_| {})
//!     .start()?;
//! let outcome = daemon.run(running);
//! eprintln!("ended: {}", outcome.ended);
//! print!("{}", report_text(&outcome.report));
//! # Ok(())
//! # }
//! ```

mod board;
mod config;
mod http;
mod journal;
mod metrics;
mod report;
mod signals;
mod units;
mod watch;

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use brigade_runtime::{Monitor, Report, Running, Tick};
use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

pub use config::{parse_metrics_addr, Config, Error};
pub use journal::TickLine;
pub use report::{report_json, report_text};

use board::Board;
use http::HttpServer;
use journal::Journal;
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
    /// A [`Stopper`] asked for the drain.
    Stopped,
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Finished => f.write_str("finished: the source ran out"),
            Ended::Deadline => f.write_str("deadline reached: drained"),
            Ended::Signal(signal) => write!(f, "{}: drained", signals::name(*signal)),
            Ended::Stopped => f.write_str("stopped: drained"),
        }
    }
}

/// What a run came to: the final report and how it ended.
#[derive(Debug)]
pub struct Outcome {
    /// The pipeline's final report; after the drain,
    /// `admitted == completed + dead_lettered`.
    pub report: Report,
    /// Why it ended.
    pub ended: Ended,
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
/// file, installs the signal handlers, starts its threads), so call it before the
/// pipeline starts. Dropping a daemon that never ran stops its threads.
pub struct Daemon {
    shared: Arc<Shared>,
    metrics_addr: Option<SocketAddr>,
    deadline: Option<Duration>,
    stop_tx: Sender<Stop>,
    stop_rx: Receiver<Stop>,
    /// Hands the monitor's feed to the watcher.
    start: Option<Sender<Receiver<Tick>>>,
    watcher: Option<JoinHandle<()>>,
    http: Option<HttpServer>,
    signals: Option<SignalWatch>,
}

impl Daemon {
    /// Checks `config` and sets everything up: binds the metrics address (and says on
    /// stderr `brigade: metrics on http://ADDR/metrics`), creates the log file,
    /// installs the SIGINT and SIGTERM handlers (from now on they ask for a drain) and
    /// starts the daemon's threads.
    pub fn new(config: &Config) -> Result<Self, Error> {
        let listener = match config.metrics_addr {
            Some(addr) => Some(TcpListener::bind(addr).map_err(|e| Error::MetricsAddr {
                value: addr.to_string(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let metrics_addr = match &listener {
            Some(listener) => Some(listener.local_addr().map_err(|e| {
                Error::MetricsAddr {
                    value: config
                        .metrics_addr
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    reason: e.to_string(),
                }
            })?),
            None => None,
        };
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
            stop_tx: stop_tx.clone(),
            stop_rx,
            start: Some(start_tx),
            watcher: None,
            http: None,
            signals: None,
        };
        daemon.watcher = Some(watch::spawn(shared.clone(), journal, start_rx)?);
        daemon.signals = Some(signals::watch(shared.clone(), stop_tx)?);
        if let Some(listener) = listener {
            daemon.http = Some(http::serve(listener, shared)?);
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
    /// final report. The HTTP endpoints answer until the drain is over.
    pub fn run(mut self, running: Running) -> Outcome {
        let monitor = running.monitor();
        if let Some(start) = self.start.take() {
            // The watcher waits for this; it has no other way to end early.
            let _ = start.send(monitor.subscribe());
        }
        // A Daemon runs one pipeline: `run` takes it by value, so this is the first set.
        let _ = self.shared.monitor.set(monitor.clone());
        let ended = self.wait_for_end(&running);
        self.shared.draining.store(true, SeqCst);
        let in_flight = monitor.latest().map_or(0, |s| s.global.totals.in_flight);
        match ended {
            Ended::Signal(signal) => eprintln!(
                "brigade: {}: draining {in_flight} records in flight; a second signal \
                 exits at once",
                signals::name(signal)
            ),
            Ended::Finished => tracing::info!("the source ran out; finishing"),
            Ended::Deadline | Ended::Stopped => {
                tracing::info!(in_flight, "{ended:?}: stopping admission and draining")
            }
        }
        running.stop_admission();
        let report = running.wait();
        self.close();
        Outcome { report, ended }
    }

    fn wait_for_end(&self, running: &Running) -> Ended {
        let deadline = self.deadline.map(|d| Instant::now() + d);
        loop {
            if running.is_drained() {
                return Ended::Finished;
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
