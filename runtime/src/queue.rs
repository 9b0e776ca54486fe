//! A bounded queue whose capacity can change while it is in use.
//!
//! crossbeam's bounded channels fix their capacity at creation, so this queue keeps
//! its records in a ring buffer (`VecDeque`) under a mutex, with the capacity as a
//! number beside it: resizing is storing a new number. The critical sections are a
//! few instructions long, so the lock is almost never waited for; a mirror of the
//! length in an atomic lets producers and consumers check for room or records
//! without taking it.
//!
//! A full queue makes its producer, and an empty one its consumer, spin and yield a
//! little before they park on a condition variable (as crossbeam's own channels
//! do), which spares most futex sleeps and wake-ups when producer and consumer run
//! at about the same pace. Whoever parks says so under the lock, so the other side
//! notifies only when someone sleeps, and never misses one. Closing wakes every
//! consumer, so a stage ends as soon as its input is drained.
//!
//! Lowering the capacity never drops a record: the records already queued stay, and
//! producers wait until the queue is below the new capacity.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::SeqCst;
use std::time::Duration;

use crate::clock;
use crate::metrics::SpanClock;
use crate::sync::{AtomicBool, AtomicUsize, Backoff, Condvar, Instant, Mutex, MutexGuard};

/// What a [`Queue::pop`] found.
pub(crate) enum Pop<T> {
    /// A record.
    Item(T),
    /// Nothing arrived before the timeout; more may come.
    Empty,
    /// The queue is closed and empty: nothing more will come.
    Closed,
}

/// The records and who sleeps waiting for them or for room.
struct State<T> {
    items: VecDeque<T>,
    /// Consumers parked in `pop`.
    sleeping_consumers: usize,
    /// Producers parked waiting for room.
    sleeping_producers: usize,
}

/// A multi-producer, multi-consumer queue with a resizable capacity.
pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
    /// `items.len()`, written under the lock, read without it.
    len: AtomicUsize,
    capacity: AtomicUsize,
    closed: AtomicBool,
    /// Signalled when a record arrives or the queue closes.
    records: Condvar,
    /// Signalled when a record leaves or the capacity grows.
    room: Condvar,
}

/// Longest a parked thread sleeps before it looks again (a safety net: every change
/// it waits for also notifies it).
const RECHECK: Duration = Duration::from_millis(50);

impl<T> Queue<T> {
    /// An empty queue holding at most `capacity` records (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                sleeping_consumers: 0,
                sleeping_producers: 0,
            }),
            len: AtomicUsize::new(0),
            capacity: AtomicUsize::new(capacity.max(1)),
            closed: AtomicBool::new(false),
            records: Condvar::new(),
            room: Condvar::new(),
        }
    }

    /// Records waiting.
    pub(crate) fn len(&self) -> usize {
        self.len.load(SeqCst)
    }

    /// True once the queue is closed and empty: nothing more will come.
    pub(crate) fn is_closed_and_empty(&self) -> bool {
        self.closed.load(SeqCst) && self.len.load(SeqCst) == 0
    }

    /// The capacity in force.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.load(SeqCst)
    }

    /// Changes the capacity (at least 1); waiting producers re-check at once. A lower
    /// capacity also gives back the ring's memory beyond it (or beyond the records
    /// still queued).
    pub(crate) fn set_capacity(&self, capacity: usize) {
        let capacity = capacity.max(1);
        self.capacity.store(capacity, SeqCst);
        let mut state = self.state.lock();
        state.items.shrink_to(capacity);
        drop(state);
        self.room.notify_all();
    }

    /// True if the queue has room for one more record now.
    pub(crate) fn has_room(&self) -> bool {
        self.len.load(SeqCst) < self.capacity.load(SeqCst)
    }

    /// Appends under the lock and wakes a sleeping consumer, if any.
    fn append(&self, mut state: MutexGuard<'_, State<T>>, item: T) {
        state.items.push_back(item);
        self.len.store(state.items.len(), SeqCst);
        let wake = state.sleeping_consumers > 0;
        drop(state);
        if wake {
            self.records.notify_one();
        }
    }

    /// Spins and yields until there is room; false if there still is none.
    fn spin_for_room(&self) -> bool {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if self.has_room() {
                return true;
            }
            backoff.snooze();
        }
        self.has_room()
    }

    /// Locks the queue once it has room, or once `deadline` (asked for only if
    /// spinning fails; `None` = none) has passed: then `Err` with the lock held.
    fn lock_with_room(
        &self,
        deadline: impl FnOnce() -> Option<Instant>,
    ) -> Result<MutexGuard<'_, State<T>>, MutexGuard<'_, State<T>>> {
        if self.spin_for_room() {
            let state = self.state.lock();
            if state.items.len() < self.capacity() {
                return Ok(state);
            }
        }
        let deadline = deadline();
        let mut state = self.state.lock();
        loop {
            if state.items.len() < self.capacity() {
                return Ok(state);
            }
            let now = Instant::now();
            let until = match deadline {
                Some(d) if d <= now => return Err(state),
                Some(d) => d.min(now + RECHECK),
                None => now + RECHECK,
            };
            state.sleeping_producers += 1;
            self.room.wait_until(&mut state, until);
            state.sleeping_producers -= 1;
        }
    }

    /// Adds a record, waiting while the queue is full. If it had to wait, returns how
    /// long and the instant it got room (so the caller need not read the clock again).
    /// A wait runs `blocked`, for the control thread to count while it lasts, and the
    /// duration returned is the part it has not counted.
    pub(crate) fn push(
        &self,
        item: T,
        blocked: Option<&SpanClock>,
    ) -> Option<(Duration, clock::Instant)> {
        {
            let state = self.state.lock();
            if state.items.len() < self.capacity() {
                self.append(state, item);
                return None;
            }
        }
        let start = clock::Instant::now();
        if let Some(blocked) = blocked {
            blocked.start(start);
        }
        let state = match self.lock_with_room(|| None) {
            Ok(state) | Err(state) => state,
        };
        let now = clock::Instant::now();
        self.append(state, item);
        Some((SpanClock::end_wait(blocked, now - start), now))
    }

    /// Adds a record even past the capacity (the source guard's read).
    pub(crate) fn force_push(&self, item: T) {
        self.append(self.state.lock(), item);
    }

    /// Waits until the queue has room for one more record, without taking it;
    /// false if the deadline passed first. The deadline is asked for only if room does
    /// not come at once, which spares a clock read when it does. Meant for a queue's
    /// only producer, which then knows the room is still there when it pushes.
    pub(crate) fn wait_for_room(&self, deadline: impl FnOnce() -> Instant) -> bool {
        self.lock_with_room(|| Some(deadline())).is_ok()
    }

    /// Takes the first record under the lock and wakes a sleeping producer, if any.
    fn take(&self, mut state: MutexGuard<'_, State<T>>) -> Option<T> {
        let item = state.items.pop_front()?;
        self.len.store(state.items.len(), SeqCst);
        let wake = state.sleeping_producers > 0;
        drop(state);
        if wake {
            self.room.notify_one();
        }
        Some(item)
    }

    /// Takes a record, waiting at most `timeout`.
    pub(crate) fn pop(&self, timeout: Duration) -> Pop<T> {
        if let Some(item) = self.try_pop() {
            return Pop::Item(item);
        }
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if self.len.load(SeqCst) > 0 {
                if let Some(item) = self.try_pop() {
                    return Pop::Item(item);
                }
            } else if self.closed.load(SeqCst) {
                break;
            }
            backoff.snooze();
        }
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock();
        loop {
            if !state.items.is_empty() {
                let item = self.take(state).expect("checked under the lock");
                return Pop::Item(item);
            }
            // `closed` is set before `close` takes the lock to wake consumers, so a
            // consumer that sees it unset here is asleep before that wake-up.
            if self.closed.load(SeqCst) {
                return Pop::Closed;
            }
            if Instant::now() >= deadline {
                return Pop::Empty;
            }
            state.sleeping_consumers += 1;
            self.records.wait_until(&mut state, deadline);
            state.sleeping_consumers -= 1;
        }
    }

    /// Takes a record if one is waiting now.
    pub(crate) fn try_pop(&self) -> Option<T> {
        if self.len.load(SeqCst) == 0 {
            return None;
        }
        self.take(self.state.lock())
    }

    /// Says that no more records will be pushed. Consumers see [`Pop::Closed`] once
    /// the queue is empty.
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        let _state = self.state.lock();
        self.records.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::wait_for;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn push_blocks_at_capacity_until_pop() {
        let queue = Arc::new(Queue::new(2));
        queue.push(1, None);
        queue.push(2, None);
        assert!(!queue.wait_for_room(|| Instant::now() + Duration::from_millis(20)));
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || queue.push(3, None))
        };
        wait_for("the third push to wait", || {
            queue.state.lock().sleeping_producers == 1
        });
        assert_eq!(queue.len(), 2, "the third push must wait");
        assert!(matches!(queue.pop(Duration::ZERO), Pop::Item(1)));
        assert!(producer.join().unwrap().is_some(), "it says it waited");
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn growing_capacity_releases_waiting_producers() {
        let queue = Arc::new(Queue::new(1));
        queue.push(0, None);
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || queue.push(1, None))
        };
        wait_for("the push to wait", || {
            queue.state.lock().sleeping_producers == 1
        });
        queue.set_capacity(4);
        producer.join().unwrap();
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn shrinking_keeps_queued_records() {
        let queue = Queue::new(4);
        for i in 0..4 {
            queue.push(i, None);
        }
        queue.set_capacity(1);
        let mut got = Vec::new();
        while let Some(i) = queue.try_pop() {
            got.push(i);
        }
        assert_eq!(got, vec![0, 1, 2, 3]);
    }

    #[test]
    fn closed_after_drain() {
        let queue = Queue::new(4);
        queue.push(1, None);
        queue.close();
        assert!(matches!(queue.pop(Duration::ZERO), Pop::Item(1)));
        assert!(matches!(queue.pop(Duration::from_millis(1)), Pop::Closed));
    }

    #[test]
    fn close_wakes_a_blocked_consumer_at_once() {
        let queue = Arc::new(Queue::<u32>::new(4));
        let consumer = {
            let queue = queue.clone();
            thread::spawn(move || {
                let start = Instant::now();
                let closed = matches!(queue.pop(Duration::from_secs(10)), Pop::Closed);
                (closed, start.elapsed())
            })
        };
        wait_for("the consumer to sleep", || {
            queue.state.lock().sleeping_consumers == 1
        });
        queue.close();
        let (closed, waited) = consumer.join().unwrap();
        assert!(closed);
        assert!(
            waited < Duration::from_secs(5),
            "woken by close, not the timeout"
        );
    }

    #[test]
    fn a_record_wakes_a_blocked_consumer_at_once() {
        let queue = Arc::new(Queue::<u32>::new(4));
        let consumer = {
            let queue = queue.clone();
            thread::spawn(move || matches!(queue.pop(Duration::from_secs(10)), Pop::Item(7)))
        };
        wait_for("the consumer to sleep", || {
            queue.state.lock().sleeping_consumers == 1
        });
        let start = Instant::now();
        queue.push(7, None);
        assert!(consumer.join().unwrap());
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn force_push_passes_capacity() {
        let queue = Queue::new(1);
        queue.push(1, None);
        queue.force_push(2);
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn many_producers_and_consumers_lose_and_duplicate_nothing() {
        let queue = Arc::new(Queue::new(3));
        let producers: Vec<_> = (0..3u64)
            .map(|p| {
                let queue = queue.clone();
                thread::spawn(move || {
                    for i in 0..10_000 {
                        queue.push(p * 10_000 + i, None);
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..3)
            .map(|_| {
                let queue = queue.clone();
                thread::spawn(move || {
                    let mut got = Vec::new();
                    loop {
                        match queue.pop(Duration::from_millis(5)) {
                            Pop::Item(i) => got.push(i),
                            Pop::Empty => continue,
                            Pop::Closed => return got,
                        }
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.join().unwrap();
        }
        queue.close();
        let mut all: Vec<u64> = consumers
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..30_000).collect::<Vec<_>>());
    }
}

/// Model checks (run with `--cfg loom`; see the crate docs).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::model;
    use loom::thread;
    use std::sync::Arc;

    /// How long a worker waits for a record before it looks at the rest of its work.
    const POLL: Duration = Duration::from_millis(10);

    /// Pops until the queue is closed and drained, going back to waiting after each
    /// time-out, as a worker does; returns the records in the order taken.
    fn drain(queue: &Queue<u32>) -> Vec<u32> {
        let mut got = Vec::new();
        loop {
            match queue.pop(POLL) {
                Pop::Item(item) => got.push(item),
                Pop::Empty => {}
                Pop::Closed => return got,
            }
        }
    }

    /// A producer blocked on a full queue is woken by a pop, a consumer blocked on
    /// an empty one by a push or the close, and every record arrives once, in order.
    #[test]
    fn loom_blocked_producer_and_consumer_are_woken() {
        model("queue: blocked push and pop woken", || {
            let queue = Arc::new(Queue::new(1));
            let producer = {
                let queue = queue.clone();
                thread::spawn(move || {
                    queue.push(1, None);
                    queue.push(2, None);
                    queue.close();
                })
            };
            assert_eq!(drain(&queue), [1, 2]);
            producer.join().unwrap();
        });
    }

    /// Lowering the capacity under a producer and a consumer drops no record: what
    /// was queued stays, the producer waits for room below the new capacity, and
    /// the consumer gets everything once.
    #[test]
    fn loom_shrinking_drops_no_record() {
        model("queue: shrink", || {
            let queue = Arc::new(Queue::new(3));
            queue.push(1, None);
            queue.push(2, None);
            let shrink = {
                let queue = queue.clone();
                thread::spawn(move || queue.set_capacity(1))
            };
            let producer = {
                let queue = queue.clone();
                thread::spawn(move || {
                    queue.push(3, None);
                    queue.close();
                })
            };
            assert_eq!(drain(&queue), [1, 2, 3]);
            shrink.join().unwrap();
            producer.join().unwrap();
            assert_eq!(queue.capacity(), 1);
        });
    }

    /// Raising the capacity wakes a producer blocked on a full queue, with no pop
    /// to wake it.
    #[test]
    fn loom_growing_wakes_a_blocked_producer() {
        model("queue: grow", || {
            let queue = Arc::new(Queue::new(1));
            queue.push(1, None);
            let producer = {
                let queue = queue.clone();
                thread::spawn(move || queue.push(2, None))
            };
            let grow = {
                let queue = queue.clone();
                thread::spawn(move || queue.set_capacity(2))
            };
            producer.join().unwrap();
            grow.join().unwrap();
            queue.close();
            assert_eq!(drain(&queue), [1, 2]);
        });
    }

    /// Closing wakes every consumer: two consumers asleep on an empty queue both
    /// end, and the one record pushed before the close reaches exactly one of them.
    #[test]
    fn loom_close_wakes_every_consumer() {
        model("queue: close wakes all", || {
            let queue = Arc::new(Queue::new(2));
            let consumer = || {
                let queue = queue.clone();
                thread::spawn(move || drain(&queue))
            };
            let (first, second) = (consumer(), consumer());
            queue.push(7, None);
            queue.close();
            let mut got = first.join().unwrap();
            got.extend(second.join().unwrap());
            assert_eq!(got, [7]);
        });
    }

    /// The source's way in: it waits for room (giving up at its deadline and trying
    /// again), pushes into the room it saw, and forces one record past the capacity
    /// (the guard's read). Nothing is lost and the room it waited for is there.
    #[test]
    fn loom_waiting_for_room_then_pushing_and_forcing() {
        model("queue: wait_for_room and force_push", || {
            let queue = Arc::new(Queue::new(1));
            let source = {
                let queue = queue.clone();
                thread::spawn(move || {
                    for item in 1..=2 {
                        while !queue.wait_for_room(|| Instant::now() + POLL) {}
                        assert!(
                            queue.push(item, None).is_none(),
                            "the room it waited for is there"
                        );
                    }
                    queue.force_push(3);
                    queue.close();
                })
            };
            assert_eq!(drain(&queue), [1, 2, 3]);
            source.join().unwrap();
        });
    }
}
