//! SIGTERM and SIGINT, raised for real: this file is a test binary of its own, so
//! its signals reach no other test. The second-signal test runs in a child process
//! (this same binary), since it ends the process it runs in.

mod common;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use brigade_daemon::{Config, Daemon, Ended};
use brigade_runtime::Pipeline;
use common::{endless, wait_for};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::low_level::raise;

/// Set in the child process that the second-signal test starts.
const CHILD: &str = "BRIGADE_DAEMON_SIGNAL_CHILD";

/// The binary's set-up: the daemon handles SIGINT and SIGTERM.
fn with_signals() -> Config {
    Config {
        handle_signals: true,
        ..Config::default()
    }
}

/// Set in the child just before its first signal: from then on no call of its stage
/// ends (for a minute), so the drain lasts until the second signal ends the process.
static DRAINING: AtomicBool = AtomicBool::new(false);

#[test]
fn sigterm_drains_and_reports() {
    let daemon = Daemon::new(&with_signals()).unwrap();
    let running = endless();
    let monitor = running.monitor();
    let raiser = std::thread::spawn(move || {
        wait_for("records to complete", || {
            monitor
                .latest()
                .is_some_and(|s| s.global.totals.completed > 0)
        });
        raise(SIGTERM).unwrap();
    });
    let outcome = daemon.run(running);
    raiser.join().unwrap();
    assert_eq!(outcome.ended, Ended::Signal(SIGTERM));
    let report = outcome.report;
    assert!(report.completed > 0);
    assert_eq!(report.admitted, report.completed + report.dead_lettered);
}

#[test]
fn a_second_signal_exits_at_once_saying_what_was_in_flight() {
    if std::env::var_os(CHILD).is_some() {
        second_signal_child();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "a_second_signal_exits_at_once_saying_what_was_in_flight",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().unwrap();
            panic!("the child did not exit after its second signal");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("brigade: SIGINT: draining"),
        "the first signal starts a drain: {stderr}"
    );
    assert!(
        stderr.contains(
            "brigade: SIGINT during the drain: exiting at once with code 130; left in flight: "
        ),
        "{stderr}"
    );
}

/// In the child: a slow pipeline with records in flight, SIGINT, and SIGINT again
/// once the drain is under way. The daemon ends the process; returning is a failure.
fn second_signal_child() -> ! {
    let daemon = Daemon::new(&with_signals()).unwrap();
    // A source read 20 times a second into a queue that never fills, so that it sees
    // the first signal's drain at once; a stage that takes 5 records a second, and
    // none once the drain starts.
    let running = Pipeline::from_iter((0u64..).inspect(|_| {
        std::thread::sleep(Duration::from_millis(50));
    }))
    .tick(Duration::from_millis(100))
    .map("slow", |x| {
        std::thread::sleep(Duration::from_millis(200));
        let held = Instant::now();
        while DRAINING.load(SeqCst) && held.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(10));
        }
        x
    })
    .queue_capacity(10_000)
    .sink("discard", |_| {})
    .start()
    .unwrap();
    let monitor = running.monitor();
    std::thread::spawn(move || {
        wait_for("records in flight", || {
            monitor
                .latest()
                .is_some_and(|s| s.global.totals.in_flight > 1)
        });
        DRAINING.store(true, SeqCst);
        raise(SIGINT).unwrap();
        wait_for("the drain to start", || {
            monitor.latest().is_some_and(|s| s.global.source.exhausted)
        });
        raise(SIGINT).unwrap();
    });
    let outcome = daemon.run(running);
    eprintln!(
        "the run ended without the second signal: {:?}",
        outcome.ended
    );
    std::process::exit(0)
}
