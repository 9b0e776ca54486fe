//! SIGINT and SIGTERM: the first asks for a drain, one during the drain ends the
//! process at once (exit code 128 + the signal's number) after saying on stderr what
//! was left in flight.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;

use brigade_controller::Snapshot;
use crossbeam_channel::Sender;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};
use signal_hook::low_level::signal_name;

use crate::config::Error;
use crate::{Shared, Stop};
use brigade_controller::units::format_bytes;

/// The signal thread and the way to stop it.
pub(crate) struct SignalWatch {
    handle: Handle,
    thread: JoinHandle<()>,
}

/// Installs the handlers and starts the thread that turns signals into [`Stop`]s.
pub(crate) fn watch(shared: Arc<Shared>, stop: Sender<Stop>) -> Result<SignalWatch, Error> {
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(Error::Signals)?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("brigade:daemon-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if shared.draining.swap(true, SeqCst) {
                    let latest = shared.monitor.get().and_then(|m| m.latest());
                    eprintln!("brigade: {}", exit_message(signal, latest.as_deref()));
                    std::process::exit(128 + signal);
                }
                // The receiver lives in the Daemon, which outlives this thread.
                let _ = stop.send(Stop::Signal(signal));
            }
        })
        .map_err(|error| Error::Thread {
            what: "signal",
            error,
        })?;
    Ok(SignalWatch { handle, thread })
}

impl SignalWatch {
    /// Stops the thread and gives SIGINT and SIGTERM back their default action
    /// (ending the process).
    pub fn stop(self) {
        self.handle.close();
        if self.thread.join().is_err() {
            tracing::error!("the daemon's signal thread panicked");
        }
        for signal in [SIGINT, SIGTERM] {
            let always = Arc::new(AtomicBool::new(true));
            if let Err(error) = signal_hook::flag::register_conditional_default(signal, always) {
                tracing::warn!(%error, "cannot restore the default action of {}", name(signal));
            }
        }
    }
}

/// What a second signal says before the process ends.
pub(crate) fn exit_message(signal: i32, latest: Option<&Snapshot>) -> String {
    let left = match latest {
        Some(snapshot) => format!(
            "left in flight: {} records, about {} (as of tick {}, {:.1} s into the run)",
            snapshot.global.totals.in_flight,
            format_bytes(snapshot.global.inflight_bytes_mean.round() as u64),
            snapshot.tick,
            snapshot.at_s,
        ),
        None => "left in flight: unknown (no tick closed yet)".to_owned(),
    };
    format!(
        "{} during the drain: exiting at once with code {}; {left}",
        name(signal),
        128 + signal
    )
}

/// `SIGINT`, `SIGTERM`, or the number for another signal.
pub(crate) fn name(signal: i32) -> String {
    signal_name(signal).map_or_else(|| format!("signal {signal}"), str::to_owned)
}

#[cfg(test)]
mod tests {
    use brigade_controller::{GlobalStats, Totals};

    use super::*;

    #[test]
    fn the_exit_message_says_what_was_left() {
        let snapshot = Snapshot {
            tick: 7,
            at_s: 3.5,
            global: GlobalStats {
                inflight_bytes_mean: 1536.0,
                totals: Totals {
                    in_flight: 42,
                    ..Totals::default()
                },
                ..GlobalStats::default()
            },
            ..Snapshot::default()
        };
        assert_eq!(
            exit_message(SIGINT, Some(&snapshot)),
            "SIGINT during the drain: exiting at once with code 130; left in flight: \
             42 records, about 1.5 KiB (as of tick 7, 3.5 s into the run)"
        );
        assert!(exit_message(SIGTERM, None)
            .starts_with("SIGTERM during the drain: exiting at once with code 143;"));
    }
}
