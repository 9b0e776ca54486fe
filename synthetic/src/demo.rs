//! A synthetic run in progress ([`Demo`]) and its end ([`Finished`]).
//!
//! Beside the runtime's threads a demo keeps one watchdog thread: every 20 ms it moves
//! the source's idle clock on (so a timeout counts when it happens, read or not), and
//! stops admission when the run's time is up or a source timeout failed it. It ends
//! once the pipeline has drained.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use brigade_runtime::{Monitor, Report, Running};

use crate::clock::Clock;
use crate::source::Idle;
use crate::Error;

/// How often the watchdog looks.
const WATCH: Duration = Duration::from_millis(20);

/// A scenario running for real: watch it through [`monitor`](Demo::monitor), stop it
/// with [`shutdown`](Demo::shutdown), or [`wait`](Demo::wait) for its end. Dropped
/// without either, the run goes on in the background until its time is up.
pub struct Demo {
    running: Arc<Running>,
    clock: Arc<Clock>,
    idle: Arc<Idle>,
    watchdog: JoinHandle<()>,
}

impl Demo {
    /// Starts the watchdog of `running`, which stops admission `duration_s` seconds
    /// into the run.
    pub(crate) fn watch(
        running: Running,
        clock: Arc<Clock>,
        idle: Arc<Idle>,
        duration_s: f64,
    ) -> Self {
        let running = Arc::new(running);
        let watchdog = {
            let (running, clock, idle) = (running.clone(), clock.clone(), idle.clone());
            std::thread::Builder::new()
                .name("brigade-synthetic:watchdog".into())
                .spawn(move || loop {
                    let now_s = clock.now_s();
                    if idle.advance(now_s) || now_s >= duration_s {
                        idle.close();
                        running.stop_admission();
                    }
                    if running.is_drained() {
                        break;
                    }
                    std::thread::sleep(WATCH);
                })
                .expect("spawning the synthetic run's watchdog")
        };
        Self {
            running,
            clock,
            idle,
            watchdog,
        }
    }

    /// The run's snapshots and decisions, and the way to send overrides.
    pub fn monitor(&self) -> Monitor {
        self.running.monitor()
    }

    /// Stops admission without waiting; follow with [`wait`](Demo::wait).
    pub fn stop_admission(&self) {
        self.idle.close();
        self.running.stop_admission();
    }

    /// True once admission has stopped (or the source is exhausted) and nothing is in
    /// flight.
    pub fn is_drained(&self) -> bool {
        self.running.is_drained()
    }

    /// Times the source has timed out so far.
    pub fn source_timeouts(&self) -> u64 {
        self.idle.timeouts()
    }

    /// Wall time since the run started.
    pub fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(self.clock.now_s())
    }

    /// Stops admission, finishes everything in flight, and reports.
    pub fn shutdown(self) -> Finished {
        self.stop_admission();
        self.wait()
    }

    /// Waits until the run's time is up (or its finite source is exhausted, or a
    /// source timeout failed it) and everything has drained, then reports.
    pub fn wait(self) -> Finished {
        self.watchdog
            .join()
            .expect("the synthetic run's watchdog panicked");
        let running = Arc::into_inner(self.running).expect("the watchdog has let the run go");
        let report = running.wait();
        let failure = self.idle.failure().map(|failed| Error::SourceTimeout {
            at_s: failed.at_s,
            timeout_s: failed.timeout_s,
        });
        Finished {
            report,
            source_timeouts: self.idle.timeouts(),
            failure,
        }
    }
}

/// How a synthetic run ended.
#[derive(Debug)]
pub struct Finished {
    /// The runtime's report: after the drain, `admitted == completed + dead_lettered`.
    pub report: Report,
    /// Times the source timed out.
    pub source_timeouts: u64,
    /// The source timeout that failed the run, if one did (`on_timeout = "fail"`).
    pub failure: Option<Error>,
}

impl Finished {
    /// Records finished per second of the run, drain included.
    pub fn throughput(&self) -> f64 {
        self.report.throughput
    }
}
