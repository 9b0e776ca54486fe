//! The books: every admitted source record and what became of it.
//!
//! A source record may become several records downstream (`flat_map`) or none
//! (`filter`). Each carries its source record's [`Ticket`]: its position and admission
//! time, and, once the record has fanned out, a count of its live descendants shared by
//! them all. When the last descendant finishes (or the only one, for a record that
//! never fanned out, which needs no shared count and so no allocation) the source
//! record is finished, completed or dead-lettered, and its position goes to the source
//! thread, which acknowledges positions in order.
//! `admitted == completed + dead_lettered + in flight` holds at every moment.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::clock::Instant;
use crate::sync::{AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex};

/// A record travelling the pipeline, with its weight and its source record's ticket.
pub(crate) struct Envelope<T> {
    /// The record.
    pub value: T,
    /// Its weight as counted in the memory budget.
    pub weight: u64,
    /// The source record it descends from.
    pub ticket: Ticket,
}

/// One admitted source record, as one of its descendants carries it.
///
/// Clone a ticket only for the outputs a [`Ledger::fork`] counted: a ticket without a
/// shared count stands for the only live descendant.
#[derive(Clone)]
pub(crate) struct Ticket {
    /// Its position in the source (0-based).
    pub position: u64,
    /// When it was admitted.
    pub admitted_at: Instant,
    /// The descendants' shared count, from the record's first fan-out on; `None`
    /// while one record carries the ticket.
    fan_out: Option<Arc<FanOut>>,
}

/// The live descendants of a source record that fanned out.
struct FanOut {
    live: AtomicUsize,
    failed: AtomicBool,
}

/// Admitted, completed and dead-lettered counts, and the feed of finished positions.
/// The source counts admissions on one cache line, the stages count the rest on
/// another, so that neither side's writes evict the other's.
pub(crate) struct Ledger {
    admitted: CachePadded<AtomicU64>,
    completed: CachePadded<AtomicU64>,
    dead_lettered: AtomicU64,
    finished: Arc<Finished>,
}

impl Ledger {
    /// A ledger and its finished-positions feed, for the source thread.
    pub(crate) fn new() -> (Self, Arc<Finished>) {
        let finished = Arc::new(Finished::default());
        let ledger = Self {
            admitted: CachePadded::new(AtomicU64::new(0)),
            completed: CachePadded::new(AtomicU64::new(0)),
            dead_lettered: AtomicU64::new(0),
            finished: finished.clone(),
        };
        (ledger, finished)
    }

    /// Opens the books on a source record admitted at `admitted_at`.
    pub(crate) fn admit(&self, position: u64, admitted_at: Instant) -> Ticket {
        self.admitted.fetch_add(1, SeqCst);
        Ticket {
            position,
            admitted_at,
            fan_out: None,
        }
    }

    /// One record of `ticket` became `outputs` records: give each of the others a
    /// clone of `ticket` (the first shares the count this sets up).
    pub(crate) fn fork(&self, ticket: &mut Ticket, outputs: usize) {
        match outputs {
            0 => self.finish(ticket, false),
            1 => {}
            n => match &ticket.fan_out {
                Some(fan_out) => {
                    fan_out.live.fetch_add(n - 1, SeqCst);
                }
                None => {
                    ticket.fan_out = Some(Arc::new(FanOut {
                        live: AtomicUsize::new(n),
                        failed: AtomicBool::new(false),
                    }));
                }
            },
        }
    }

    /// One record of `ticket` is done: written, filtered out, or dead-lettered.
    pub(crate) fn finish(&self, ticket: &Ticket, dead_lettered: bool) {
        let Some(fan_out) = &ticket.fan_out else {
            self.settle(ticket.position, dead_lettered);
            return;
        };
        if dead_lettered {
            fan_out.failed.store(true, SeqCst);
        }
        if fan_out.live.fetch_sub(1, SeqCst) == 1 {
            self.settle(ticket.position, fan_out.failed.load(SeqCst));
        }
    }

    /// The source record at `position` is finished.
    fn settle(&self, position: u64, dead_lettered: bool) {
        if dead_lettered {
            self.dead_lettered.fetch_add(1, SeqCst);
        } else {
            self.completed.fetch_add(1, SeqCst);
        }
        self.finished.push(position);
    }

    /// (admitted, completed, dead-lettered), read so that in-flight is never negative.
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        let completed = self.completed.load(SeqCst);
        let dead = self.dead_lettered.load(SeqCst);
        let admitted = self.admitted.load(SeqCst);
        (admitted.max(completed + dead), completed, dead)
    }

    /// Source records admitted and not yet finished.
    pub(crate) fn in_flight(&self) -> u64 {
        let (admitted, completed, dead) = self.counts();
        admitted - completed - dead
    }
}

/// Positions of finished source records on their way to the source thread, which
/// acknowledges them: a vector under a mutex, which the source thread swaps for its
/// own emptied one, so that in a steady run neither side allocates.
#[derive(Default)]
pub(crate) struct Finished {
    pending: Mutex<Pending>,
    arrived: Condvar,
}

#[derive(Default)]
struct Pending {
    positions: Vec<u64>,
    /// The source thread sleeps until a position arrives.
    awaited: bool,
}

impl Finished {
    fn push(&self, position: u64) {
        let mut pending = self.pending.lock();
        pending.positions.push(position);
        let wake = pending.awaited;
        drop(pending);
        if wake {
            self.arrived.notify_one();
        }
    }

    /// Moves the positions finished since the last call into `into` (emptied first),
    /// waiting up to `wait` for one if there are none.
    pub(crate) fn take(&self, into: &mut Vec<u64>, wait: Duration) {
        into.clear();
        let mut pending = self.pending.lock();
        if pending.positions.is_empty() && !wait.is_zero() {
            pending.awaited = true;
            self.arrived.wait_for(&mut pending, wait);
            pending.awaited = false;
        }
        std::mem::swap(&mut pending.positions, into);
    }
}

/// Turns out-of-order finished positions into the in-order acknowledgement point.
#[derive(Default)]
pub(crate) struct AckTracker {
    next: u64,
    done: std::collections::BTreeSet<u64>,
    /// Positions taken from the feed, kept to be reused.
    arrived: Vec<u64>,
}

impl AckTracker {
    /// Takes the positions finished since the last call from `feed` (waiting up to
    /// `wait` for one); returns the new acknowledgement point if it moved.
    pub(crate) fn take(&mut self, feed: &Finished, wait: Duration) -> Option<u64> {
        let mut arrived = std::mem::take(&mut self.arrived);
        feed.take(&mut arrived, wait);
        let mut moved = false;
        for &position in &arrived {
            moved |= self.finished(position).is_some();
        }
        self.arrived = arrived;
        moved.then_some(self.next)
    }

    /// Notes a finished position; returns the new acknowledgement point (every
    /// position below it finished) if it moved.
    pub(crate) fn finished(&mut self, position: u64) -> Option<u64> {
        if position != self.next {
            self.done.insert(position);
            return None;
        }
        self.next += 1;
        while self.done.remove(&self.next) {
            self.next += 1;
        }
        Some(self.next)
    }

    /// Every position below this has finished.
    #[cfg(test)]
    pub(crate) fn point(&self) -> u64 {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_out_finishes_when_every_child_does() {
        let (ledger, feed) = Ledger::new();
        let mut acks = AckTracker::default();
        let mut ticket = ledger.admit(0, Instant::now());
        ledger.fork(&mut ticket, 3);
        let first = ticket.clone();
        // An output that fans out again adds to the same count.
        let mut second = ticket.clone();
        ledger.fork(&mut second, 2);
        let third = second.clone();
        ledger.finish(&first, false);
        ledger.finish(&second, true);
        ledger.finish(&third, false);
        assert_eq!(ledger.in_flight(), 1);
        assert_eq!(acks.take(&feed, Duration::ZERO), None);
        ledger.finish(&ticket, false);
        assert_eq!(ledger.counts(), (1, 0, 1));
        assert_eq!(acks.take(&feed, Duration::ZERO), Some(1));
    }

    #[test]
    fn a_record_that_never_fans_out_finishes_alone() {
        let (ledger, feed) = Ledger::new();
        let mut acks = AckTracker::default();
        let mut ticket = ledger.admit(0, Instant::now());
        ledger.fork(&mut ticket, 1);
        assert!(
            ticket.fan_out.is_none(),
            "no shared count without a fan-out"
        );
        ledger.finish(&ticket, true);
        assert_eq!(ledger.counts(), (1, 0, 1));
        assert_eq!(acks.take(&feed, Duration::ZERO), Some(1));
    }

    #[test]
    fn filtered_record_completes() {
        let (ledger, _positions) = Ledger::new();
        let mut ticket = ledger.admit(0, Instant::now());
        ledger.fork(&mut ticket, 0);
        assert_eq!(ledger.counts(), (1, 1, 0));
    }

    #[test]
    fn the_source_sleeps_until_a_position_arrives() {
        let (ledger, feed) = Ledger::new();
        let ledger = Arc::new(ledger);
        let ticket = ledger.admit(0, Instant::now());
        let finisher = {
            let ledger = ledger.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                ledger.finish(&ticket, false);
            })
        };
        let start = Instant::now();
        let mut acks = AckTracker::default();
        assert_eq!(acks.take(&feed, Duration::from_secs(10)), Some(1));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "woken, not timed out"
        );
        finisher.join().unwrap();
    }

    #[test]
    fn acks_advance_only_over_a_finished_prefix() {
        let mut acks = AckTracker::default();
        assert_eq!(acks.finished(1), None);
        assert_eq!(acks.finished(2), None);
        assert_eq!(acks.finished(0), Some(3));
        assert_eq!(acks.finished(4), None);
        assert_eq!(acks.point(), 3);
    }
}

/// Model checks (run with `--cfg loom`; see the crate docs).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use crate::sync::model;
    use loom::thread;

    /// Two source records, the first fanned out to three outputs, finished by two
    /// workers in every order, one output dead-lettered, while the source thread
    /// takes acknowledgements (waiting for positions, and timing out). The ack point
    /// only rises and never passes a record with a live output; each source record is
    /// counted once, dead-lettered if any output was, and the counts add up.
    #[test]
    fn loom_acks_follow_finished_records_in_order() {
        model("ledger: fan-out and acks", || {
            let (ledger, feed) = Ledger::new();
            let ledger = Arc::new(ledger);
            let mut first = ledger.admit(0, Instant::now());
            let second = ledger.admit(1, Instant::now());
            ledger.fork(&mut first, 3);
            // Set by a worker before it finishes that output: [record][output].
            let finishing: Arc<[[AtomicBool; 3]; 2]> = Arc::new(Default::default());
            let worker = |finishes: [(Ticket, usize, usize, bool); 2]| {
                let ledger = ledger.clone();
                let finishing = finishing.clone();
                thread::spawn(move || {
                    for (ticket, record, output, dead) in finishes {
                        finishing[record][output].store(true, SeqCst);
                        ledger.finish(&ticket, dead);
                    }
                })
            };
            let workers = [
                worker([(first.clone(), 0, 0, false), (second, 1, 0, false)]),
                worker([(first.clone(), 0, 1, false), (first, 0, 2, true)]),
            ];
            let outputs = [3, 1];
            let mut acks = AckTracker::default();
            let mut point = 0;
            while point < 2 {
                if let Some(moved) = acks.take(&feed, Duration::from_millis(50)) {
                    assert!(moved > point, "the ack point went from {point} to {moved}");
                    for (record, outputs) in outputs.iter().enumerate().take(moved as usize) {
                        for output in &finishing[record][..*outputs] {
                            assert!(output.load(SeqCst), "acked a live record");
                        }
                    }
                    point = moved;
                }
                let (admitted, completed, dead) = ledger.counts();
                assert_eq!(admitted, 2);
                assert!(completed + dead >= point, "acked before counted");
            }
            for worker in workers {
                worker.join().unwrap();
            }
            assert_eq!(ledger.counts(), (2, 1, 1));
            assert_eq!(ledger.in_flight(), 0);
        });
    }
}
