//! Sink protection: how many calls of a stage may run at once, and how many records
//! per second it may take. Both are off (and cost two atomic loads per call) until a
//! decision sets them.
//!
//! Only calls that begin while a concurrency limit is in force are counted: the calls
//! already running when a limit is first set may run past it, each until it ends.
//!
//! A rate limit spaces calls by reserving each its slot (GCRA) and sleeping until it.
//! Changing the limit voids the slots reserved under the old one: a caller asleep on
//! one wakes and reserves again, and a lifted limit lets it go at once. (So a limit of
//! one call a minute, lifted, does not leave callers asleep for minutes.)

use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use crate::clock;
use crate::metrics::SpanClock;
use crate::sync::{AtomicU64, AtomicUsize, Condvar, Instant, Mutex};

/// A call let in by [`Limits::enter`], to hand back to [`Limits::exit`].
#[must_use]
pub(crate) struct Entry {
    /// How long the limits held the call.
    pub waited: Duration,
    /// Counted against the concurrency limit.
    counted: bool,
}

/// A stage's concurrency and rate limits.
pub(crate) struct Limits {
    /// Most calls at once; 0 = no limit.
    concurrency: AtomicUsize,
    in_calls: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
    /// Nanoseconds per record; 0 = no limit.
    interval_ns: AtomicU64,
    /// Theoretical arrival time of the next record (GCRA), nanoseconds since `epoch`.
    next_ns: AtomicU64,
    /// Bumped at each change of the rate limit, so callers asleep on a slot reserved
    /// under the old one wake and reserve again.
    rate_generation: AtomicU64,
    rate_changed: Condvar,
    epoch: Instant,
}

impl Limits {
    /// No limits.
    pub(crate) fn new() -> Self {
        Self {
            concurrency: AtomicUsize::new(0),
            in_calls: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
            interval_ns: AtomicU64::new(0),
            next_ns: AtomicU64::new(0),
            rate_generation: AtomicU64::new(0),
            rate_changed: Condvar::new(),
            epoch: Instant::now(),
        }
    }

    /// Sets the concurrency limit (`None` = none).
    pub(crate) fn set_concurrency(&self, limit: Option<usize>) {
        self.concurrency.store(limit.unwrap_or(0), SeqCst);
        let _guard = self.lock.lock();
        self.freed.notify_all();
    }

    /// The concurrency limit in force.
    pub(crate) fn concurrency(&self) -> Option<usize> {
        Some(self.concurrency.load(SeqCst)).filter(|&n| n > 0)
    }

    /// Sets the rate limit in records per second (`None` = none). Setting the limit in
    /// force again changes nothing.
    pub(crate) fn set_rate(&self, per_second: Option<f64>) {
        let interval = match per_second {
            Some(rate) if rate > 0.0 => (1e9 / rate).max(1.0) as u64,
            _ => 0,
        };
        if self.interval_ns.swap(interval, SeqCst) == interval {
            return;
        }
        // The slots reserved under the old limit are void: the new one starts now.
        self.next_ns.store(self.now_ns(), SeqCst);
        self.rate_generation.fetch_add(1, SeqCst);
        let _guard = self.lock.lock();
        self.rate_changed.notify_all();
    }

    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// The rate limit in force, records per second.
    pub(crate) fn rate(&self) -> Option<f64> {
        match self.interval_ns.load(SeqCst) {
            0 => None,
            ns => Some(1e9 / ns as f64),
        }
    }

    /// Waits for leave to make a call of `records` records. Pair with
    /// [`Limits::exit`]. A wait runs `blocked`, for the control thread to count while it
    /// lasts, and `waited` is the part it has not counted.
    #[inline]
    pub(crate) fn enter(&self, records: usize, blocked: Option<&SpanClock>) -> Entry {
        if self.concurrency.load(SeqCst) == 0 && self.interval_ns.load(SeqCst) == 0 {
            return Entry {
                waited: Duration::ZERO,
                counted: false,
            };
        }
        self.enter_limited(records, blocked)
    }

    /// [`Limits::enter`] while a limit is set.
    #[cold]
    fn enter_limited(&self, records: usize, blocked: Option<&SpanClock>) -> Entry {
        let mut waited = Duration::ZERO;
        let counted = self.concurrency.load(SeqCst) != 0;
        if counted && !self.try_enter() {
            let start = Instant::now();
            if let Some(blocked) = blocked {
                blocked.start(clock::Instant::now());
            }
            let mut guard = self.lock.lock();
            while !self.try_enter() {
                self.freed.wait_for(&mut guard, Duration::from_millis(20));
            }
            waited += SpanClock::end_wait(blocked, start.elapsed());
        }
        Entry {
            waited: waited + self.pace(records, blocked),
            counted,
        }
    }

    fn try_enter(&self) -> bool {
        let mut calls = self.in_calls.load(SeqCst);
        loop {
            let limit = self.concurrency.load(SeqCst);
            if limit != 0 && calls >= limit {
                return false;
            }
            match self
                .in_calls
                .compare_exchange_weak(calls, calls + 1, SeqCst, SeqCst)
            {
                Ok(_) => return true,
                Err(now) => calls = now,
            }
        }
    }

    /// Ends a call begun with [`Limits::enter`].
    #[inline]
    pub(crate) fn exit(&self, entry: Entry) {
        if entry.counted {
            self.exit_counted();
        }
    }

    #[cold]
    fn exit_counted(&self) {
        self.in_calls.fetch_sub(1, SeqCst);
        if self.concurrency.load(SeqCst) != 0 {
            let _guard = self.lock.lock();
            self.freed.notify_one();
        }
    }

    /// Calls in progress now.
    #[cfg(test)]
    pub(crate) fn in_calls(&self) -> usize {
        self.in_calls.load(SeqCst)
    }

    /// Sleeps until `records` more records fit the rate limit, reserving again if the
    /// limit changes meanwhile. A wait runs `blocked`; returns the part of the wait its
    /// control thread has not counted.
    fn pace(&self, records: usize, blocked: Option<&SpanClock>) -> Duration {
        let mut waited = Duration::ZERO;
        if self.interval_ns.load(SeqCst) == 0 {
            return waited;
        }
        let mut waiting = false;
        loop {
            let generation = self.rate_generation.load(SeqCst);
            let interval = self.interval_ns.load(SeqCst);
            if interval == 0 {
                break;
            }
            let cost = interval.saturating_mul(records as u64);
            let now = self.now_ns();
            let mut next = self.next_ns.load(SeqCst);
            let start = loop {
                let start = next.max(now);
                match self
                    .next_ns
                    .compare_exchange_weak(next, start + cost, SeqCst, SeqCst)
                {
                    Ok(_) => break start,
                    Err(seen) => next = seen,
                }
            };
            if start <= now {
                break;
            }
            if !waiting {
                waiting = true;
                if let Some(blocked) = blocked {
                    blocked.start(clock::Instant::now());
                }
            }
            let begin = Instant::now();
            let deadline = begin + Duration::from_nanos(start - now);
            let mut guard = self.lock.lock();
            while self.rate_generation.load(SeqCst) == generation
                && !self
                    .rate_changed
                    .wait_until(&mut guard, deadline)
                    .timed_out()
            {}
            drop(guard);
            waited += begin.elapsed();
            if self.rate_generation.load(SeqCst) == generation {
                break;
            }
        }
        if waiting {
            SpanClock::end_wait(blocked, waited)
        } else {
            waited
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::wait_for;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn concurrency_limit_holds_callers() {
        let limits = Arc::new(Limits::new());
        let before = limits.enter(1, None);
        limits.set_concurrency(Some(1));
        let first = limits.enter(1, None);
        assert_eq!(
            limits.in_calls(),
            1,
            "the call begun before the limit is not counted"
        );
        limits.exit(before);
        let blocked = Arc::new(SpanClock::default());
        let second = {
            let (limits, blocked) = (limits.clone(), blocked.clone());
            thread::spawn(move || limits.enter(1, Some(&blocked)))
        };
        wait_for("the second call to wait", || blocked.is_running());
        let held_since = Instant::now();
        assert_eq!(limits.in_calls(), 1, "the second call is held");
        let held = held_since.elapsed();
        limits.exit(first);
        let second = second.join().unwrap();
        assert!(second.waited >= held, "{:?} < {held:?}", second.waited);
        assert_eq!(limits.in_calls(), 1);
        limits.exit(second);
        assert_eq!(limits.in_calls(), 0);
    }

    /// A caller entering `limits` on its own thread, once it is asleep on its slot;
    /// the thread returns how long the caller waited.
    fn sleeper(limits: &Arc<Limits>) -> thread::JoinHandle<Duration> {
        let limits = limits.clone();
        let blocked = Arc::new(SpanClock::default());
        let asleep = blocked.clone();
        let thread = thread::spawn(move || {
            let entry = limits.enter(1, Some(&blocked));
            let waited = entry.waited;
            limits.exit(entry);
            waited
        });
        wait_for("the caller to sleep on its slot", || asleep.is_running());
        thread
    }

    #[test]
    fn a_changed_rate_limit_wakes_callers_asleep_on_the_old_one() {
        let limits = Arc::new(Limits::new());
        limits.set_rate(Some(0.1));
        let first = limits.enter(1, None);
        assert_eq!(first.waited, Duration::ZERO, "the first slot is now");
        limits.exit(first);
        // The next slot is 10 s away; a faster limit gives a nearer one...
        let second = sleeper(&limits);
        let changed = Instant::now();
        limits.set_rate(Some(2.0));
        let waited = second.join().unwrap();
        assert!(
            waited < Duration::from_secs(5),
            "woken, not asleep until its old slot: {waited:?}"
        );
        // The same limit again keeps the slots reserved under it: the next is 0.5 s
        // after the second caller's, which came no earlier than the change.
        limits.set_rate(Some(2.0));
        let again = limits.enter(1, None);
        assert!(
            changed.elapsed() >= Duration::from_millis(500),
            "{:?}",
            changed.elapsed()
        );
        limits.exit(again);
        // ...and a lifted one lets the caller go at once.
        limits.set_rate(Some(0.1));
        limits.exit(limits.enter(1, None));
        let third = sleeper(&limits);
        limits.set_rate(None);
        let waited = third.join().unwrap();
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert_eq!(limits.rate(), None);
    }

    #[test]
    fn rate_limit_spaces_records() {
        let limits = Limits::new();
        limits.set_rate(Some(100.0));
        let start = Instant::now();
        for _ in 0..6 {
            let entry = limits.enter(1, None);
            limits.exit(entry);
        }
        // Five gaps of 10 ms.
        assert!(start.elapsed() >= Duration::from_millis(45));
        assert_eq!(limits.rate().map(f64::round), Some(100.0));
    }
}

/// Model checks (run with `--cfg loom`; see the crate docs).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::model;
    use loom::thread;
    use std::sync::Arc;

    /// Under a limit of one, three callers never run two calls at once, and a
    /// caller held at the limit is woken when the call before it exits.
    #[test]
    fn loom_concurrency_never_exceeds_the_limit() {
        model("limits: concurrency", || {
            let limits = Arc::new(Limits::new());
            limits.set_concurrency(Some(1));
            let running = Arc::new(AtomicUsize::new(0));
            let call = move |limits: &Limits, running: &AtomicUsize| {
                let entry = limits.enter(1, None);
                let now = running.fetch_add(1, SeqCst) + 1;
                assert!(now <= 1, "{now} calls at once under a limit of 1");
                running.fetch_sub(1, SeqCst);
                limits.exit(entry);
            };
            let callers: Vec<_> = (0..2)
                .map(|_| {
                    let (limits, running) = (limits.clone(), running.clone());
                    thread::spawn(move || call(&limits, &running))
                })
                .collect();
            call(&limits, &running);
            for caller in callers {
                caller.join().unwrap();
            }
            assert_eq!(limits.in_calls(), 0);
        });
    }

    /// Raising the limit wakes a caller held at the old one while the call that
    /// holds the slot is still running.
    #[test]
    fn loom_raising_the_limit_wakes_a_held_caller() {
        model("limits: raise", || {
            let limits = Arc::new(Limits::new());
            limits.set_concurrency(Some(1));
            let first = limits.enter(1, None);
            let held = {
                let limits = limits.clone();
                thread::spawn(move || {
                    let entry = limits.enter(1, None);
                    limits.exit(entry);
                })
            };
            limits.set_concurrency(Some(2));
            held.join().unwrap();
            limits.exit(first);
            assert_eq!(limits.in_calls(), 0);
        });
    }
}
