//! The memory budget: bytes admitted and not yet finished, against a cap.
//!
//! Every record is weighed when the source admits it; the source waits until the budget
//! can hold it. A stage whose output weighs more than its input asks for the difference
//! before passing the output on, and waits for it like the source does (that time is
//! the stage's `wait_out`). Growth has priority over admission: while any stage waits
//! to grow, the source admits nothing.
//!
//! One exception keeps the pipeline from deadlocking: when every byte in the budget is
//! held by records that cannot move until a grower does, nothing would ever be freed.
//! So a grower may pass the cap when nothing downstream of it holds any bytes (nothing
//! can free room), one grower at a time. The overshoot is at most one record's growth.
//! A record larger than the whole budget is admitted only into an empty pipeline.
//!
//! The fast paths are compare-and-swap loops on one counter; waiting uses a condition
//! variable that releases only notify when someone waits.

use std::cell::Cell;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::clock;
use crate::metrics::SpanClock;
use crate::sync::{AtomicU64, AtomicUsize, Condvar, Instant, Mutex};

/// Where a record's bytes are held: waiting for or inside a stage of the parallel
/// brigade, or in the serial lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// At stage `n` (in its input queue or in a worker).
    Stage(usize),
    /// In the serial lane.
    Serial,
}

/// Bytes held at one location, kept as two running totals, each on its own cache
/// line: what arrived (written by the stage upstream, or the source) and what left
/// (written by the stage itself). So a record moving on writes only lines of the stage
/// that moves it, and adjacent stages never contend for a line.
#[derive(Default)]
struct Held {
    added: CachePadded<AtomicU64>,
    removed: CachePadded<AtomicU64>,
}

impl Held {
    fn add(&self, bytes: u64) {
        self.added.fetch_add(bytes, SeqCst);
    }

    fn remove(&self, bytes: u64) {
        self.removed.fetch_add(bytes, SeqCst);
    }

    /// True if nothing is held. Bytes arrive before they leave and `removed` is read
    /// first, so this never misses bytes held throughout the call.
    fn is_empty(&self) -> bool {
        let removed = self.removed.load(SeqCst);
        self.added.load(SeqCst) == removed
    }
}

const UNLIMITED: u64 = u64::MAX;
const RECHECK: Duration = Duration::from_millis(20);

/// Bytes in flight, per location, against a cap.
pub(crate) struct Budget {
    limit: AtomicU64,
    used: CachePadded<AtomicU64>,
    peak: AtomicU64,
    window_peak: AtomicU64,
    /// Bytes held per stage; the last slot is the serial lane.
    held: Box<[Held]>,
    growers: AtomicUsize,
    waiters: AtomicUsize,
    lock: Mutex<()>,
    changed: Condvar,
}

impl Budget {
    /// A budget for `stages` stages with the given cap (`None` = no cap).
    pub(crate) fn new(stages: usize, limit: Option<u64>) -> Self {
        Self {
            limit: AtomicU64::new(limit.unwrap_or(UNLIMITED)),
            used: CachePadded::new(AtomicU64::new(0)),
            peak: AtomicU64::new(0),
            window_peak: AtomicU64::new(0),
            held: (0..=stages).map(|_| Held::default()).collect(),
            growers: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            changed: Condvar::new(),
        }
    }

    /// The cap in force.
    pub(crate) fn limit(&self) -> Option<u64> {
        match self.limit.load(SeqCst) {
            UNLIMITED => None,
            limit => Some(limit),
        }
    }

    /// Changes the cap; waiters re-check at once.
    pub(crate) fn set_limit(&self, limit: Option<u64>) {
        self.limit.store(limit.unwrap_or(UNLIMITED), SeqCst);
        self.wake();
    }

    /// Bytes in flight now.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(SeqCst)
    }

    /// Most bytes in flight at once since the start.
    pub(crate) fn peak(&self) -> u64 {
        self.peak.load(SeqCst)
    }

    /// Most bytes in flight since the last call (starts the next window at the current
    /// figure).
    pub(crate) fn take_window_peak(&self) -> u64 {
        self.window_peak.swap(self.used(), SeqCst)
    }

    /// Bytes held at `at` now.
    pub(crate) fn held_at(&self, at: Location) -> u64 {
        let held = self.slot(at);
        let removed = held.removed.load(SeqCst);
        held.added.load(SeqCst).saturating_sub(removed)
    }

    fn slot(&self, at: Location) -> &Held {
        match at {
            Location::Stage(i) => &self.held[i],
            Location::Serial => &self.held[self.held.len() - 1],
        }
    }

    fn note_peak(&self, used: u64) {
        if used > self.window_peak.load(SeqCst) {
            self.window_peak.fetch_max(used, SeqCst);
        }
        if used > self.peak.load(SeqCst) {
            self.peak.fetch_max(used, SeqCst);
        }
    }

    /// Adds `bytes` if `allowed(used)` says so for the current figure.
    fn try_add(&self, bytes: u64, allowed: impl Fn(u64, u64) -> bool) -> bool {
        let mut used = self.used.load(SeqCst);
        loop {
            if !allowed(used, self.limit.load(SeqCst)) {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(used, used + bytes, SeqCst, SeqCst)
            {
                Ok(_) => {
                    self.note_peak(used + bytes);
                    return true;
                }
                Err(now) => used = now,
            }
        }
    }

    /// Waits until `attempt`, always called under the lock, succeeds or `deadline`
    /// passes.
    fn wait_for(&self, deadline: Option<Instant>, attempt: impl Fn() -> bool) -> bool {
        self.waiters.fetch_add(1, SeqCst);
        let mut guard = self.lock.lock();
        let done = loop {
            if attempt() {
                break true;
            }
            let now = Instant::now();
            let until = match deadline {
                Some(d) if d <= now => break false,
                Some(d) => d.min(now + RECHECK),
                None => now + RECHECK,
            };
            self.changed.wait_until(&mut guard, until);
        };
        drop(guard);
        self.waiters.fetch_sub(1, SeqCst);
        done
    }

    fn wake(&self) {
        if self.waiters.load(SeqCst) > 0 {
            let _guard = self.lock.lock();
            self.changed.notify_all();
        }
    }

    /// Admits a new record of `bytes` at `to`, waiting for room at most `patience`.
    /// A record larger than the whole cap waits for an empty pipeline. Returns false
    /// if the time ran out first.
    pub(crate) fn admit(&self, bytes: u64, to: Location, patience: Duration) -> bool {
        let attempt = || {
            self.growers.load(SeqCst) == 0
                && self.try_add(bytes, |used, limit| {
                    used.saturating_add(bytes) <= limit || (bytes > limit && used == 0)
                })
        };
        let admitted = attempt() || self.wait_for(Some(Instant::now() + patience), attempt);
        if admitted {
            self.slot(to).add(bytes);
        }
        admitted
    }

    /// True if admitting `bytes` now would succeed.
    #[cfg(test)]
    pub(crate) fn could_admit(&self, bytes: u64) -> bool {
        let (used, limit) = (self.used(), self.limit.load(SeqCst));
        self.growers.load(SeqCst) == 0
            && (used.saturating_add(bytes) <= limit || (bytes > limit && used == 0))
    }

    fn nothing_downstream_of(&self, at: Location) -> bool {
        let stages = self.held.len() - 1;
        let range = match at {
            Location::Stage(i) => i + 1..stages,
            Location::Serial => 0..stages,
        };
        self.held[range].iter().all(Held::is_empty)
    }

    /// Moves a record weighing `old` at `from` on as outputs weighing `new` in all at
    /// `to`. Waits if the outputs weigh more and the budget cannot hold the growth;
    /// returns how long it waited. A wait runs `blocked`, for the control thread to
    /// count while it lasts, and the duration returned is the part it has not counted.
    pub(crate) fn advance(
        &self,
        from: Location,
        old: u64,
        to: Location,
        new: u64,
        blocked: Option<&SpanClock>,
    ) -> Duration {
        let mut waited = Duration::ZERO;
        if new > old {
            let growth = new - old;
            let fits = |used: u64, limit: u64| used.saturating_add(growth) <= limit;
            let escaped = Cell::new(false);
            if !self.try_add(growth, fits) {
                let start = Instant::now();
                if let Some(blocked) = blocked {
                    blocked.start(clock::Instant::now());
                }
                self.growers.fetch_add(1, SeqCst);
                // Under the lock, so that only one grower at a time can pass the cap:
                // its outputs count downstream before the next grower looks.
                self.wait_for(None, || {
                    if self.try_add(growth, fits) {
                        return true;
                    }
                    if self.nothing_downstream_of(from) {
                        self.try_add(growth, |_, _| true);
                        self.slot(to).add(new);
                        escaped.set(true);
                        return true;
                    }
                    false
                });
                self.growers.fetch_sub(1, SeqCst);
                self.wake();
                waited = SpanClock::end_wait(blocked, start.elapsed());
            }
            if !escaped.get() {
                self.slot(to).add(new);
            }
            self.slot(from).remove(old);
        } else {
            self.slot(to).add(new);
            self.slot(from).remove(old);
            if new < old {
                self.used.fetch_sub(old - new, SeqCst);
                self.wake();
            }
        }
        waited
    }

    /// Corrects a record's weight where it stands, without waiting (the source's
    /// advance estimate was off).
    pub(crate) fn reweigh(&self, at: Location, old: u64, new: u64) {
        if new >= old {
            self.slot(at).add(new - old);
            self.note_peak(self.used.fetch_add(new - old, SeqCst) + new - old);
        } else {
            self.release(at, old - new);
        }
    }

    /// Frees the bytes of a finished record.
    pub(crate) fn release(&self, from: Location, bytes: u64) {
        if bytes == 0 {
            return;
        }
        // Out of the total before out of the location: a grower that finds the
        // location empty, and escapes the cap for it, then adds its growth to a total
        // that no longer counts these bytes. (The other order let it pass the cap while
        // these bytes were being freed, by their weight on top of its growth.)
        self.used.fetch_sub(bytes, SeqCst);
        self.slot(from).remove(bytes);
        self.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::wait_for;
    use std::sync::Arc;
    use std::thread;

    fn soon() -> Duration {
        Duration::from_millis(20)
    }

    #[test]
    fn admits_up_to_the_cap() {
        let budget = Budget::new(2, Some(100));
        assert!(budget.admit(60, Location::Stage(0), soon()));
        assert!(!budget.admit(50, Location::Stage(0), soon()));
        assert!(budget.admit(40, Location::Stage(0), soon()));
        assert_eq!(budget.used(), 100);
        budget.release(Location::Stage(0), 60);
        assert!(budget.admit(50, Location::Stage(0), soon()));
        assert_eq!(budget.peak(), 100);
    }

    #[test]
    fn oversized_record_waits_for_an_empty_pipeline() {
        let budget = Budget::new(1, Some(100));
        assert!(budget.admit(10, Location::Stage(0), soon()));
        assert!(!budget.admit(500, Location::Serial, soon()));
        budget.release(Location::Stage(0), 10);
        assert!(budget.admit(500, Location::Serial, soon()));
    }

    #[test]
    fn growth_waits_for_room_then_proceeds() {
        let budget = Arc::new(Budget::new(3, Some(100)));
        assert!(budget.admit(50, Location::Stage(0), soon()));
        assert!(budget.admit(40, Location::Stage(0), soon()));
        budget.advance(Location::Stage(0), 40, Location::Stage(1), 40, None);
        // The stage-0 record wants to grow by 30; 90 are used and the stage-1 record
        // downstream will free room.
        let grower = {
            let budget = budget.clone();
            thread::spawn(move || {
                budget.advance(Location::Stage(0), 50, Location::Stage(1), 80, None)
            })
        };
        wait_for("the growth to wait", || budget.growers.load(SeqCst) == 1);
        let held_since = Instant::now();
        assert_eq!(budget.used(), 90, "growth must wait");
        assert!(
            !budget.could_admit(1),
            "admission yields to a waiting grower"
        );
        let held = held_since.elapsed();
        budget.release(Location::Stage(1), 40);
        let waited = grower.join().unwrap();
        assert!(waited >= held, "{waited:?} < {held:?}");
        assert_eq!(budget.used(), 80);
    }

    #[test]
    fn growth_passes_when_nothing_downstream_can_free_room() {
        let budget = Budget::new(2, Some(100));
        assert!(budget.admit(90, Location::Stage(0), soon()));
        budget.advance(Location::Stage(0), 90, Location::Stage(1), 120, None);
        assert_eq!(budget.used(), 120);
    }
}

/// Model checks (run with `--cfg loom`; see the crate docs).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::model;
    use loom::thread;
    use std::sync::Arc;

    /// Admits `bytes`, trying again after each time-out, as the source does every
    /// step. The patience is one recheck, so one time-out ends an attempt.
    fn admit(budget: &Budget, bytes: u64, to: Location) {
        while !budget.admit(bytes, to, RECHECK) {}
        assert!(budget.used() <= 100, "admitted past the cap");
    }

    /// A blocked admit is woken when a release makes room, and admission never takes
    /// the budget past its cap.
    #[test]
    fn loom_blocked_admit_is_woken_by_a_release() {
        model("budget: blocked admit woken", || {
            let budget = Arc::new(Budget::new(1, Some(100)));
            admit(&budget, 60, Location::Stage(0));
            let waiter = {
                let budget = budget.clone();
                thread::spawn(move || {
                    admit(&budget, 60, Location::Stage(0));
                    budget.release(Location::Stage(0), 60);
                })
            };
            budget.release(Location::Stage(0), 60);
            waiter.join().unwrap();
            assert_eq!(budget.used(), 0);
            assert!(budget.peak() <= 100);
        });
    }

    /// Growth has priority: once a stage waits to grow, the source admits nothing
    /// until it has grown, so the grower never needs the escape here and the budget
    /// never passes its cap. (Admitting first would leave the grower with nothing
    /// downstream and push it 5 bytes over.)
    #[test]
    fn loom_growth_has_priority_over_admission() {
        model("budget: growth priority", || {
            let budget = Arc::new(Budget::new(2, Some(100)));
            admit(&budget, 60, Location::Stage(0));
            admit(&budget, 40, Location::Stage(0));
            budget.advance(Location::Stage(0), 40, Location::Stage(1), 40, None);
            let grower = {
                let budget = budget.clone();
                thread::spawn(move || {
                    budget.advance(Location::Stage(0), 60, Location::Stage(1), 70, None);
                    budget.release(Location::Stage(1), 70);
                })
            };
            // The growth does not fit until the record at stage 1 leaves.
            while budget.growers.load(SeqCst) == 0 {
                thread::yield_now();
            }
            let sink = {
                let budget = budget.clone();
                thread::spawn(move || budget.release(Location::Stage(1), 40))
            };
            admit(&budget, 35, Location::Stage(0));
            grower.join().unwrap();
            sink.join().unwrap();
            assert!(budget.peak() <= 100, "peak {}", budget.peak());
            assert_eq!(budget.used(), 35);
        });
    }

    /// The escape: two growers whose growth cannot fit, with nothing downstream to
    /// free room. One at a time passes the cap, so the overshoot is at most one
    /// record's growth (30), never both (60); the other waits for room and gets it.
    #[test]
    fn loom_one_grower_at_a_time_passes_the_cap() {
        model("budget: escape one at a time", || {
            let budget = Arc::new(Budget::new(2, Some(100)));
            admit(&budget, 50, Location::Stage(0));
            admit(&budget, 50, Location::Stage(0));
            let grow = || {
                let budget = budget.clone();
                thread::spawn(move || {
                    budget.advance(Location::Stage(0), 50, Location::Stage(1), 80, None);
                    assert!(budget.used() <= 130, "over by more than one growth");
                    budget.release(Location::Stage(1), 80);
                })
            };
            let (first, second) = (grow(), grow());
            first.join().unwrap();
            second.join().unwrap();
            assert!(budget.peak() <= 130, "peak {}", budget.peak());
            assert_eq!(budget.used(), 0);
        });
    }
}
