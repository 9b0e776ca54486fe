//! A daemon embedded in a program with signal handlers of its own: by default it
//! installs none, and the program drains it with a `Stopper`. A test binary of its
//! own, since it raises SIGTERM for real.

mod common;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use brigade_daemon::{Config, Daemon, Ended};
use common::{endless, wait_for};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::low_level::raise;

/// True if `signal` has its default action (no handler installed).
fn default_action(signal: i32) -> bool {
    // SAFETY: a null new action only reads the current one into `old`.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    let read = unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) };
    assert_eq!(read, 0, "sigaction({signal}) failed");
    old.sa_sigaction == libc::SIG_DFL
}

#[test]
fn by_default_the_daemon_leaves_the_programs_signals_alone() {
    assert!(default_action(SIGINT) && default_action(SIGTERM));
    let daemon = Daemon::new(&Config::default()).unwrap();
    assert!(
        default_action(SIGINT) && default_action(SIGTERM),
        "Daemon::new installed a signal handler it was not asked for"
    );

    // The program's own handler gets SIGTERM and decides what to do: drain.
    let caught = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGTERM, caught.clone()).unwrap();
    let running = endless();
    let monitor = running.monitor();
    let stopper = daemon.stopper();
    let program = std::thread::spawn(move || {
        wait_for("records to complete", || {
            monitor
                .latest()
                .is_some_and(|s| s.global.totals.completed > 0)
        });
        raise(SIGTERM).unwrap();
        wait_for("the program's handler", || caught.load(SeqCst));
        stopper.stop();
    });
    let outcome = daemon.run(running);
    program.join().unwrap();
    assert_eq!(outcome.ended, Ended::Stopped);
    assert_eq!(
        outcome.report.admitted,
        outcome.report.completed + outcome.report.dead_lettered
    );
}
