//! A synthetic run in progress ([`Demo`]), its synthetic side once the runtime's handle
//! has gone to a viewer ([`Watch`]), and its end ([`Finished`]).
//!
//! Beside the runtime's threads a demo keeps one watchdog thread: every 20 ms it moves
//! the source's idle clock on (so a timeout counts when it happens, read or not), and
//! stops admission when the run's time is up or a source timeout failed it. Whoever
//! stops admission (the watchdog, the daemon on a signal, the operator's drain), the
//! watchdog then stops the idle clock: a drain is no timeout. It ends once the pipeline
//! has drained.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use brigade_runtime::{Admission, Monitor, Report, Running};

use crate::clock::Clock;
use crate::source::Idle;
use crate::Error;

/// How often the watchdog looks.
const WATCH: Duration = Duration::from_millis(20);

/// A scenario running for real: watch it through [`monitor`](Demo::monitor), stop it
/// with [`shutdown`](Demo::shutdown), or [`wait`](Demo::wait) for its end. A viewer
/// that needs the runtime's own handle (the daemon, the dashboard) takes it with
/// [`split`](Demo::split).
pub struct Demo {
    running: Running,
    watch: Watch,
}

/// The synthetic side of a run whose [`Running`] handle went elsewhere: its watchdog,
/// its source's idle clock, and what they make of the runtime's report.
pub struct Watch {
    admission: Admission,
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
        let admission = running.admission();
        let watchdog = {
            let (admission, clock, idle) = (admission.clone(), clock.clone(), idle.clone());
            std::thread::Builder::new()
                .name("brigade-synthetic:watchdog".into())
                .spawn(move || loop {
                    let now_s = clock.now_s();
                    // Admission stopped by anyone (the run's time, a timeout, the
                    // operator's drain) stops the source's idle clock too: a drain
                    // is no timeout.
                    if admission.is_stopped() || idle.advance(now_s) || now_s >= duration_s {
                        idle.close();
                        admission.stop();
                    }
                    if admission.is_drained() {
                        break;
                    }
                    std::thread::sleep(WATCH);
                })
                .expect("spawning the synthetic run's watchdog")
        };
        Self {
            running,
            watch: Watch {
                admission,
                clock,
                idle,
                watchdog,
            },
        }
    }

    /// The run's snapshots and decisions, and the way to send overrides.
    pub fn monitor(&self) -> Monitor {
        self.running.monitor()
    }

    /// Stops admission without waiting; follow with [`wait`](Demo::wait).
    pub fn stop_admission(&self) {
        self.watch.stop_admission();
    }

    /// True once admission has stopped (or the source is exhausted) and nothing is in
    /// flight.
    pub fn is_drained(&self) -> bool {
        self.running.is_drained()
    }

    /// Times the source has timed out so far.
    pub fn source_timeouts(&self) -> u64 {
        self.watch.source_timeouts()
    }

    /// Wall time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.watch.elapsed()
    }

    /// Stops admission, finishes everything in flight, and reports.
    pub fn shutdown(self) -> Finished {
        self.stop_admission();
        self.wait()
    }

    /// Waits until the run's time is up (or its finite source is exhausted, or a
    /// source timeout failed it) and everything has drained, then reports.
    pub fn wait(self) -> Finished {
        let report = self.running.wait();
        self.watch.finish(report)
    }

    /// The runtime's handle, for a viewer that owns the run from now on (and calls
    /// [`Running::wait`] or [`Running::shutdown`]), and the synthetic side, which turns
    /// the runtime's report into the run's [`Finished`].
    pub fn split(self) -> (Running, Watch) {
        (self.running, self.watch)
    }
}

impl Watch {
    /// Stops admission without waiting.
    pub fn stop_admission(&self) {
        self.idle.close();
        self.admission.stop();
    }

    /// Times the source has timed out so far.
    pub fn source_timeouts(&self) -> u64 {
        self.idle.timeouts()
    }

    /// Wall time since the run started.
    pub fn elapsed(&self) -> Duration {
        Duration::from_secs_f64(self.clock.now_s())
    }

    /// The run's end, from the runtime's report of its drain.
    pub fn finish(self, report: Report) -> Finished {
        self.watchdog
            .join()
            .expect("the synthetic run's watchdog panicked");
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
