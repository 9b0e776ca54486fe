//! Doing a call's work for real, at the speed the model gives it: seconds of work
//! progress at 1 / the USL slowdown of the calls in progress, read again as the call
//! goes on, as the simulator's processor-sharing clock does.
//!
//! - A cpu call spins until it has used its work of the thread's own CPU time
//!   (`CLOCK_THREAD_CPUTIME_ID`), not of wall time: with more spinning calls than
//!   cores the kernel shares the cores among them, as the model's processor sharing
//!   does, and none fakes parallelism the machine does not have.
//! - An io call sleeps, waking every few milliseconds to read the slowdown again.

use std::time::{Duration, Instant};

#[cfg(not(unix))]
compile_error!("brigade-synthetic measures CPU work with the thread CPU clock of unix");

/// Longest sleep of an io call before it reads the calls in progress again.
const RECHECK: Duration = Duration::from_millis(5);

/// CPU time this thread has used, seconds.
pub(crate) fn thread_cpu_s() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to write, and the clock id is
    // the platform's own constant.
    #[allow(unsafe_code)]
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "the thread CPU clock is unavailable");
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

/// Spins until `work` seconds of work are done, each second of this thread's CPU
/// time doing 1 / `slowdown()` of one. While `held()` says a stall holds the stage
/// (for how long yet, seconds), the call sleeps, as a thread blocked on a lock does,
/// and does no work.
pub(crate) fn spin(work: f64, slowdown: impl Fn() -> f64, held: impl Fn() -> Option<f64>) {
    let mut left = work;
    let mut last = thread_cpu_s();
    while left > 0.0 {
        if wait_out(&held) {
            last = thread_cpu_s();
        }
        let now = thread_cpu_s();
        left -= (now - last) / slowdown();
        last = now;
    }
}

/// Sleeps until `work` seconds of work are done, each second of wall time doing
/// 1 / `slowdown()` of one, and none while `held()` says a stall holds the stage.
pub(crate) fn sleep(work: f64, slowdown: impl Fn() -> f64, held: impl Fn() -> Option<f64>) {
    precise_timers();
    let mut left = work;
    while left > 0.0 {
        wait_out(&held);
        let factor = slowdown();
        let nap = Duration::from_secs_f64(left * factor).min(RECHECK);
        let start = Instant::now();
        std::thread::sleep(nap);
        left -= start.elapsed().as_secs_f64() / factor;
    }
}

/// Sleeps for as long as `held()` says a stall holds the stage, reading it again at
/// least every [`RECHECK`]; true if it slept.
fn wait_out(held: impl Fn() -> Option<f64>) -> bool {
    let mut slept = false;
    while let Some(left) = held() {
        precise_timers();
        std::thread::sleep(Duration::from_secs_f64(left).min(RECHECK));
        slept = true;
    }
    slept
}

/// Asks the kernel to wake this thread's sleeps on time rather than up to 50 µs late
/// (its default timer slack): a 300 µs call would otherwise last a sixth longer.
pub(crate) fn precise_timers() {
    #[cfg(target_os = "linux")]
    {
        use std::cell::Cell;
        thread_local!(static SET: Cell<bool> = const { Cell::new(false) });
        if !SET.get() {
            // SAFETY: PR_SET_TIMERSLACK takes one integer argument (nanoseconds) and
            // only changes the calling thread's timer slack.
            #[allow(unsafe_code)]
            unsafe {
                libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong)
            };
            SET.set(true);
        }
    }
}
