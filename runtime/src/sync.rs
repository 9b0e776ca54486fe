//! The synchronisation primitives the runtime's concurrent core is built on, in one
//! place so that the model checker can swap them.
//!
//! A normal build re-exports std's atomics, `Instant` and thread `Builder`,
//! parking_lot's `Mutex` and `Condvar`, and crossbeam's `Backoff`, unchanged. A build
//! with `--cfg loom` (see the crate docs) puts [loom]'s in their place, behind the
//! same API, so that the budget, the queue, the sink limits, the ledger and the worker
//! pool are model-checked as they are. Under `cfg(loom)`:
//! - loom has no clock: [`Instant`] reads a virtual clock that stands still unless a
//!   timed wait times out;
//! - a timed wait ([`Condvar::wait_until`], [`Condvar::wait_for`]) ends either when it
//!   is notified or, at a point loom chooses, without a notification, as a time-out
//!   or a spurious wake-up would: the clock then jumps to the wait's deadline and the
//!   wait reports a time-out. So both the notified path and the timed-out path (a
//!   worker's poll, the source's step) are explored. To keep the executions finite,
//!   at most two waits time out in one execution; after that a wait ends only when
//!   notified. A wait that nothing ever notifies is then reported as a deadlock:
//!   that is how a lost wake-up shows, so a model must end every wait it starts by a
//!   notification (closing a queue, freeing room) rather than by the passing of time;
//! - spinning ([`Backoff`]) is one yield to the other threads;
//! - loom models `SeqCst` accesses as `AcqRel`, which would report hand-offs that
//!   rely on sequential consistency (note a waiter, then look; change, then look
//!   for waiters) as lost wake-ups that cannot happen. The atomics here put a `SeqCst`
//!   fence on either side of each `SeqCst` access, which loom does model.
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(loom))]
mod imp {
    pub(crate) use crossbeam_utils::Backoff;
    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
    pub(crate) use std::thread::{Builder, JoinHandle};
    pub(crate) use std::time::Instant;
}

#[cfg(loom)]
mod imp {
    use loom::sync::atomic::{fence, Ordering};

    use std::cell::Cell;
    use std::collections::VecDeque;
    use std::ops::{Add, Deref, DerefMut, Sub};
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::Arc;
    use std::time::Duration;

    /// Runs `access` as a sequentially consistent access if `order` asks for one.
    /// loom models `SeqCst` accesses as `AcqRel` (its README says so), which admits
    /// outcomes no sequentially consistent execution has, such as both sides of a
    /// "say I wait, then look" / "change, then look for waiters" hand-off missing each
    /// other. A `SeqCst` fence on either side of the access restores the total order.
    fn ordered<R>(order: Ordering, access: impl FnOnce() -> R) -> R {
        if order == SeqCst {
            fence(SeqCst);
            let result = access();
            fence(SeqCst);
            result
        } else {
            access()
        }
    }

    /// loom's atomic integer behind std's API, with `SeqCst` kept sequentially
    /// consistent (see [`ordered`]).
    macro_rules! atomic_int {
        ($name:ident, $int:ty) => {
            #[doc = concat!("loom's `", stringify!($name), "`, with `SeqCst` accesses fenced.")]
            #[derive(Default)]
            pub(crate) struct $name(loom::sync::atomic::$name);

            // std's API: not every type uses every method.
            #[allow(dead_code)]
            impl $name {
                /// A new atomic holding `value`.
                pub(crate) fn new(value: $int) -> Self {
                    Self(loom::sync::atomic::$name::new(value))
                }

                /// Reads the value.
                pub(crate) fn load(&self, order: Ordering) -> $int {
                    ordered(order, || self.0.load(order))
                }

                /// Writes `value`.
                pub(crate) fn store(&self, value: $int, order: Ordering) {
                    ordered(order, || self.0.store(value, order));
                }

                /// Writes `value`; returns the previous value.
                pub(crate) fn swap(&self, value: $int, order: Ordering) -> $int {
                    ordered(order, || self.0.swap(value, order))
                }

                /// Adds `value`; returns the previous value.
                pub(crate) fn fetch_add(&self, value: $int, order: Ordering) -> $int {
                    ordered(order, || self.0.fetch_add(value, order))
                }

                /// Subtracts `value`; returns the previous value.
                pub(crate) fn fetch_sub(&self, value: $int, order: Ordering) -> $int {
                    ordered(order, || self.0.fetch_sub(value, order))
                }

                /// Raises the value to at least `value`; returns the previous value.
                pub(crate) fn fetch_max(&self, value: $int, order: Ordering) -> $int {
                    ordered(order, || self.0.fetch_max(value, order))
                }

                /// Writes `new` if the value is `current`.
                pub(crate) fn compare_exchange_weak(
                    &self,
                    current: $int,
                    new: $int,
                    success: Ordering,
                    failure: Ordering,
                ) -> Result<$int, $int> {
                    ordered(success, || {
                        self.0.compare_exchange_weak(current, new, success, failure)
                    })
                }
            }
        };
    }

    atomic_int!(AtomicU64, u64);
    atomic_int!(AtomicUsize, usize);

    /// loom's `AtomicBool`, with `SeqCst` accesses fenced.
    #[derive(Default)]
    pub(crate) struct AtomicBool(loom::sync::atomic::AtomicBool);

    impl AtomicBool {
        /// A new atomic holding `value`.
        pub(crate) fn new(value: bool) -> Self {
            Self(loom::sync::atomic::AtomicBool::new(value))
        }

        /// Reads the value.
        pub(crate) fn load(&self, order: Ordering) -> bool {
            ordered(order, || self.0.load(order))
        }

        /// Writes `value`.
        pub(crate) fn store(&self, value: bool, order: Ordering) {
            ordered(order, || self.0.store(value, order));
        }
    }

    loom::lazy_static! {
        /// The model's virtual clock, nanoseconds since the execution began; each
        /// execution starts at zero.
        static ref NOW_NS: AtomicU64 = AtomicU64::new(0);
    }

    /// A point on the model's virtual clock.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub(crate) struct Instant(u64);

    impl Instant {
        /// The virtual clock now.
        pub(crate) fn now() -> Self {
            Self(NOW_NS.load(SeqCst))
        }

        /// Virtual time since this instant.
        pub(crate) fn elapsed(&self) -> Duration {
            Self::now() - *self
        }

        fn pass_to(self) {
            NOW_NS.fetch_max(self.0, SeqCst);
        }
    }

    impl Add<Duration> for Instant {
        type Output = Self;

        fn add(self, by: Duration) -> Self {
            let by = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
            Self(self.0.saturating_add(by))
        }
    }

    impl Sub for Instant {
        type Output = Duration;

        fn sub(self, earlier: Self) -> Duration {
            Duration::from_nanos(self.0.saturating_sub(earlier.0))
        }
    }

    /// A mutex with parking_lot's API (no poisoning) over loom's.
    #[derive(Default)]
    pub(crate) struct Mutex<T> {
        inner: loom::sync::Mutex<T>,
    }

    impl<T> Mutex<T> {
        /// A mutex holding `value`.
        pub(crate) fn new(value: T) -> Self {
            Self {
                inner: loom::sync::Mutex::new(value),
            }
        }

        /// Locks the mutex.
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard {
                mutex: self,
                guard: Some(self.locked()),
            }
        }

        fn locked(&self) -> loom::sync::MutexGuard<'_, T> {
            // A model thread that panicked holding the lock fails the model anyway.
            self.inner
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    /// The lock of a [`Mutex`], which a [`Condvar`] wait releases and takes again.
    pub(crate) struct MutexGuard<'a, T> {
        mutex: &'a Mutex<T>,
        /// `None` only while a condition-variable wait has released the lock.
        guard: Option<loom::sync::MutexGuard<'a, T>>,
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;

        fn deref(&self) -> &T {
            self.guard
                .as_ref()
                .expect("the lock is held outside a wait")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.guard
                .as_mut()
                .expect("the lock is held outside a wait")
        }
    }

    /// Whether a timed wait ended by timing out.
    pub(crate) struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        /// True if the wait ended without a notification.
        pub(crate) fn timed_out(&self) -> bool {
            self.0
        }
    }

    /// What a waiting thread sleeps on.
    enum Bell {
        /// loom's `Notify`, which may also end the wait without a notification, once,
        /// at a point loom chooses.
        MayTimeOut(loom::sync::Notify),
        /// A flag under a lock, which ends the wait only when rung.
        NotifiedOnly(loom::sync::Mutex<bool>, loom::sync::Condvar),
    }

    impl Bell {
        fn ring(&self) {
            match self {
                Self::MayTimeOut(notify) => notify.notify(),
                Self::NotifiedOnly(rung, bell) => {
                    *rung.lock().unwrap_or_else(|p| p.into_inner()) = true;
                    bell.notify_one();
                }
            }
        }

        fn wait(&self) {
            match self {
                Self::MayTimeOut(notify) => notify.wait(),
                Self::NotifiedOnly(rung, bell) => {
                    let mut rung = rung.lock().unwrap_or_else(|p| p.into_inner());
                    while !*rung {
                        rung = bell.wait(rung).unwrap_or_else(|p| p.into_inner());
                    }
                }
            }
        }
    }

    /// One thread in a timed wait: its bell, and whether a notification chose it (a
    /// std atomic, read and written under the condition variable's modelled lock).
    struct Waiter {
        bell: Bell,
        notified: std::sync::atomic::AtomicBool,
    }

    /// How many timed waits may end without a notification in one execution of a
    /// model. Each such wait doubles the executions to explore, and without a bound a
    /// thread polling a condition could time out for ever; two reach every path that
    /// needs a time-out in the models here.
    const TIMEOUTS: usize = 2;

    loom::lazy_static! {
        /// Time-outs left in this execution.
        static ref TIMEOUTS_LEFT: AtomicUsize = AtomicUsize::new(TIMEOUTS);
    }

    /// Spends one of the execution's time-outs; false if none is left.
    fn take_timeout() -> bool {
        let mut left = TIMEOUTS_LEFT.load(SeqCst);
        while left > 0 {
            match TIMEOUTS_LEFT.compare_exchange_weak(left, left - 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => left = now,
            }
        }
        false
    }

    /// A condition variable with parking_lot's timed waits: a wait may end without a
    /// notification while the execution has time-outs left (see [`TIMEOUTS`]).
    #[derive(Default)]
    pub(crate) struct Condvar {
        /// Waiting threads, first come first notified. A loom mutex, so that loom
        /// sees a notification and a thread starting to wait touch the same object,
        /// and explores both orders.
        waiters: loom::sync::Mutex<VecDeque<Arc<Waiter>>>,
    }

    impl Condvar {
        /// A condition variable nobody waits on.
        pub(crate) fn new() -> Self {
            Self::default()
        }

        fn waiters(&self) -> loom::sync::MutexGuard<'_, VecDeque<Arc<Waiter>>> {
            self.waiters
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        /// Releases `guard`'s lock and waits for a notification or, as loom chooses,
        /// a time-out at `deadline`; takes the lock again.
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            deadline: Instant,
        ) -> WaitTimeoutResult {
            if deadline <= Instant::now() {
                return WaitTimeoutResult(true);
            }
            let bell = if TIMEOUTS_LEFT.load(SeqCst) > 0 {
                Bell::MayTimeOut(loom::sync::Notify::new())
            } else {
                Bell::NotifiedOnly(loom::sync::Mutex::new(false), loom::sync::Condvar::new())
            };
            let waiter = Arc::new(Waiter {
                bell,
                notified: std::sync::atomic::AtomicBool::new(false),
            });
            self.waiters().push_back(waiter.clone());
            guard.guard = None;
            let timed_out = loop {
                waiter.bell.wait();
                let mut waiters = self.waiters();
                if waiter.notified.load(SeqCst) {
                    break false;
                }
                if take_timeout() {
                    waiters.retain(|w| !Arc::ptr_eq(w, &waiter));
                    break true;
                }
                // Another wait spent the last time-out meanwhile: this one waits
                // on for its notification (a `Notify` ends a wait early only once).
            };
            guard.guard = Some(guard.mutex.locked());
            if timed_out {
                deadline.pass_to();
            }
            WaitTimeoutResult(timed_out)
        }

        /// [`Condvar::wait_until`] `timeout` from now.
        pub(crate) fn wait_for<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            timeout: Duration,
        ) -> WaitTimeoutResult {
            self.wait_until(guard, Instant::now() + timeout)
        }

        /// Wakes `waiter`, taken off the list under its lock.
        fn wake(waiter: &Waiter) {
            waiter.notified.store(true, SeqCst);
            waiter.bell.ring();
        }

        /// Wakes the longest-waiting thread, if any; true if there was one.
        pub(crate) fn notify_one(&self) -> bool {
            let mut waiters = self.waiters();
            let waiter = waiters.pop_front();
            if let Some(waiter) = &waiter {
                Self::wake(waiter);
            }
            waiter.is_some()
        }

        /// Wakes every waiting thread; returns how many.
        pub(crate) fn notify_all(&self) -> usize {
            let mut waiters = self.waiters();
            let woken = waiters.len();
            for waiter in waiters.drain(..) {
                Self::wake(&waiter);
            }
            woken
        }
    }

    /// loom's thread builder, whose threads say when they have ended.
    pub(crate) struct Builder(loom::thread::Builder);

    impl Builder {
        /// A builder for an unnamed thread.
        pub(crate) fn new() -> Self {
            Self(loom::thread::Builder::new())
        }

        /// Names the thread.
        pub(crate) fn name(self, name: String) -> Self {
            Self(self.0.name(name))
        }

        /// Starts `f` on a new model thread.
        pub(crate) fn spawn<F, T>(self, f: F) -> std::io::Result<JoinHandle<T>>
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            let finished = Arc::new(AtomicBool::new(false));
            let ended = finished.clone();
            let inner = self.0.spawn(move || {
                let result = f();
                ended.store(true, SeqCst);
                result
            })?;
            Ok(JoinHandle { inner, finished })
        }
    }

    /// loom's join handle, with std's `is_finished`, which loom lacks.
    pub(crate) struct JoinHandle<T> {
        inner: loom::thread::JoinHandle<T>,
        finished: Arc<AtomicBool>,
    }

    impl<T> JoinHandle<T> {
        /// Waits for the thread to end; its result, or its panic.
        pub(crate) fn join(self) -> std::thread::Result<T> {
            self.inner.join()
        }

        /// True once the thread's function has returned.
        pub(crate) fn is_finished(&self) -> bool {
            self.finished.load(SeqCst)
        }
    }

    /// Spinning, for the model: one yield to the other threads.
    pub(crate) struct Backoff {
        done: Cell<bool>,
    }

    impl Backoff {
        /// A backoff that has not spun yet.
        pub(crate) fn new() -> Self {
            Self {
                done: Cell::new(false),
            }
        }

        /// Yields to the other threads; the backoff is then complete.
        pub(crate) fn snooze(&self) {
            loom::thread::yield_now();
            self.done.set(true);
        }

        /// True once the caller should stop spinning and block.
        pub(crate) fn is_completed(&self) -> bool {
            self.done.get()
        }
    }
}

pub(crate) use imp::*;

/// Runs `check` under loom for every interleaving of its threads, with at most two
/// preemptions unless `LOOM_MAX_PREEMPTIONS` says otherwise, and prints how many
/// interleavings were explored.
#[cfg(all(test, loom))]
pub(crate) fn model(name: &str, check: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::Ordering::SeqCst;
    use std::sync::Arc;

    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound.get_or_insert(2);
    let start = std::time::Instant::now();
    builder.check(move || {
        counted.fetch_add(1, SeqCst);
        check();
    });
    eprintln!(
        "loom model {name}: {} interleavings in {:.1?}",
        runs.load(SeqCst),
        start.elapsed()
    );
}
