//! A bounded queue whose capacity can change while it is in use.
//!
//! crossbeam's bounded channels fix their capacity at creation, so the limit is kept
//! here, on top of an unbounded channel: a producer reserves a slot with a
//! compare-and-swap on the length before sending, and waits on a condition variable
//! only when the queue is full. Consumers use the channel's own blocking receive. The
//! fast paths take no lock.
//!
//! A full queue makes its producer spin and yield a little before it parks (as
//! crossbeam's own channels do), which spares most futex sleeps and wake-ups when
//! producer and consumer run at about the same pace. Closing sends one wake-up token
//! per consumer blocked in `pop`, so a stage ends as soon as its input is drained.
//!
//! Lowering the capacity never drops a record: the records already queued stay, and
//! producers wait until the queue is below the new capacity.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use crossbeam_utils::Backoff;
use parking_lot::{Condvar, Mutex};

/// What a [`Queue::pop`] found.
pub(crate) enum Pop<T> {
    /// A record.
    Item(T),
    /// Nothing arrived before the timeout; more may come.
    Empty,
    /// The queue is closed and empty: nothing more will come.
    Closed,
}

/// A multi-producer, multi-consumer queue with a resizable capacity.
pub(crate) struct Queue<T> {
    /// Records, and `None` as a wake-up token sent by [`Queue::close`].
    tx: Sender<Option<T>>,
    rx: Receiver<Option<T>>,
    /// Consumers blocked (or about to block) in `pop`.
    poppers: AtomicUsize,
    /// Slots reserved by producers and not yet popped.
    len: AtomicUsize,
    capacity: AtomicUsize,
    closed: AtomicBool,
    push_waiters: AtomicUsize,
    space: Mutex<()>,
    space_ready: Condvar,
}

impl<T> Queue<T> {
    /// An empty queue holding at most `capacity` records (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Self {
            tx,
            rx,
            poppers: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            capacity: AtomicUsize::new(capacity.max(1)),
            closed: AtomicBool::new(false),
            push_waiters: AtomicUsize::new(0),
            space: Mutex::new(()),
            space_ready: Condvar::new(),
        }
    }

    /// Records waiting.
    pub(crate) fn len(&self) -> usize {
        self.len.load(SeqCst)
    }

    /// The capacity in force.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity.load(SeqCst)
    }

    /// Changes the capacity (at least 1); waiting producers re-check at once.
    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity.max(1), SeqCst);
        let _guard = self.space.lock();
        self.space_ready.notify_all();
    }

    fn try_reserve(&self) -> bool {
        let capacity = self.capacity.load(SeqCst);
        let mut len = self.len.load(SeqCst);
        while len < capacity {
            match self.len.compare_exchange_weak(len, len + 1, SeqCst, SeqCst) {
                Ok(_) => return true,
                Err(now) => len = now,
            }
        }
        false
    }

    /// Waits until a slot is free and reserves it; false if the deadline (asked for
    /// once spinning has failed; `None` = none) passed first.
    fn reserve(&self, deadline: impl FnOnce() -> Option<Instant>) -> bool {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if self.try_reserve() {
                return true;
            }
            backoff.snooze();
        }
        let deadline = deadline();
        self.push_waiters.fetch_add(1, SeqCst);
        let mut guard = self.space.lock();
        let reserved = loop {
            if self.try_reserve() {
                break true;
            }
            let now = Instant::now();
            let until = match deadline {
                Some(d) if d <= now => break false,
                Some(d) => d.min(now + Duration::from_millis(50)),
                None => now + Duration::from_millis(50),
            };
            self.space_ready.wait_until(&mut guard, until);
        };
        drop(guard);
        self.push_waiters.fetch_sub(1, SeqCst);
        reserved
    }

    /// Adds a record, waiting while the queue is full. If it had to wait, returns how
    /// long and the instant it got room (so the caller need not read the clock again).
    pub(crate) fn push(&self, item: T) -> Option<(Duration, Instant)> {
        let waited = if self.try_reserve() {
            None
        } else {
            let start = Instant::now();
            self.reserve(|| None);
            let now = Instant::now();
            Some((now - start, now))
        };
        self.send(item);
        waited
    }

    /// Adds a record even past the capacity (the source guard's read).
    pub(crate) fn force_push(&self, item: T) {
        self.len.fetch_add(1, SeqCst);
        self.send(item);
    }

    /// True if the queue has room for one more record now. Meant, like
    /// [`Queue::wait_for_room`], for a queue's only producer.
    pub(crate) fn has_room(&self) -> bool {
        self.len.load(SeqCst) < self.capacity.load(SeqCst)
    }

    /// Waits until the queue has room for one more record, without reserving it;
    /// false if the deadline passed first. The deadline is asked for only if room does
    /// not come at once, which spares a clock read when it does. Meant for a queue's
    /// only producer, which then knows the room is still there when it pushes.
    pub(crate) fn wait_for_room(&self, deadline: impl FnOnce() -> Instant) -> bool {
        if self.reserve(|| Some(deadline())) {
            self.len.fetch_sub(1, SeqCst);
            true
        } else {
            false
        }
    }

    fn send(&self, item: T) {
        self.tx
            .send(Some(item))
            .expect("the queue owns its receiver, so the channel stays connected");
    }

    fn taken(&self) {
        self.len.fetch_sub(1, SeqCst);
        if self.push_waiters.load(SeqCst) > 0 {
            let _guard = self.space.lock();
            self.space_ready.notify_one();
        }
    }

    /// Takes a record, waiting at most `timeout`.
    pub(crate) fn pop(&self, timeout: Duration) -> Pop<T> {
        if let Ok(Some(item)) = self.rx.try_recv() {
            self.taken();
            return Pop::Item(item);
        }
        // Registered before checking `closed`, so that `close` either sees this
        // consumer and sends it a token, or this consumer sees the queue closed.
        self.poppers.fetch_add(1, SeqCst);
        let item = if self.is_drained() {
            Err(RecvTimeoutError::Timeout)
        } else {
            self.rx.recv_timeout(timeout)
        };
        self.poppers.fetch_sub(1, SeqCst);
        match item {
            Ok(Some(item)) => {
                self.taken();
                Pop::Item(item)
            }
            Ok(None) | Err(RecvTimeoutError::Timeout) if self.is_drained() => Pop::Closed,
            Ok(None) | Err(RecvTimeoutError::Timeout) => Pop::Empty,
            Err(RecvTimeoutError::Disconnected) => unreachable!("the queue owns its sender"),
        }
    }

    /// Takes a record if one is waiting now.
    pub(crate) fn try_pop(&self) -> Option<T> {
        loop {
            match self.rx.try_recv().ok()? {
                Some(item) => {
                    self.taken();
                    return Some(item);
                }
                None => continue,
            }
        }
    }

    /// Says that no more records will be pushed. Consumers see [`Pop::Closed`] once
    /// the queue is empty.
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        for _ in 0..self.poppers.load(SeqCst) {
            self.tx
                .send(None)
                .expect("the queue owns its receiver, so the channel stays connected");
        }
    }

    /// True once closed and empty.
    pub(crate) fn is_drained(&self) -> bool {
        self.closed.load(SeqCst) && self.len.load(SeqCst) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn push_blocks_at_capacity_until_pop() {
        let queue = Arc::new(Queue::new(2));
        queue.push(1);
        queue.push(2);
        assert!(!queue.wait_for_room(|| Instant::now() + Duration::from_millis(20)));
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || queue.push(3))
        };
        thread::sleep(Duration::from_millis(30));
        assert_eq!(queue.len(), 2, "the third push must wait");
        assert!(matches!(queue.pop(Duration::ZERO), Pop::Item(1)));
        producer.join().unwrap();
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn growing_capacity_releases_waiting_producers() {
        let queue = Arc::new(Queue::new(1));
        queue.push(0);
        let producer = {
            let queue = queue.clone();
            thread::spawn(move || queue.push(1))
        };
        thread::sleep(Duration::from_millis(20));
        queue.set_capacity(4);
        producer.join().unwrap();
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn shrinking_keeps_queued_records() {
        let queue = Queue::new(4);
        for i in 0..4 {
            queue.push(i);
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
        queue.push(1);
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
        thread::sleep(Duration::from_millis(30));
        queue.close();
        let (closed, waited) = consumer.join().unwrap();
        assert!(closed);
        assert!(
            waited < Duration::from_secs(5),
            "woken by close, not the timeout"
        );
    }

    #[test]
    fn force_push_passes_capacity() {
        let queue = Queue::new(1);
        queue.push(1);
        queue.force_push(2);
        assert_eq!(queue.len(), 2);
    }
}
