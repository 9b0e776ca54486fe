//! Sources, and the thread that reads them: admission into the budget, routing to the
//! parallel brigade or the serial lane, the source guard, and acknowledgements.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use brigade_controller::{GroupStats, Progress};
use crossbeam_channel::Sender;
use parking_lot::Mutex;

use crate::budget::Location;
use crate::clock::{self, Instant};
use crate::context::Shared;
use crate::failure::{panic_message, DeadLetter, DeadLetterCause};
use crate::ledger::{AckTracker, Envelope, Finished};
use crate::queue::Queue;
use crate::report::RunFailure;
use crate::serial::SerialLane;
use crate::spill::{Lost, Spill, SpillCell};
use crate::weigh::Weigher;
use crate::Oversize;

/// Where records come from.
///
/// Positions count records from 0 in the order [`next`](Source::next) returned them.
/// The runtime calls [`ack`](Source::ack) with a position only when every record before
/// it has finished (written or dead-lettered), so a source that commits its offset
/// there re-reads at most what was in flight after a restart.
///
/// ```
/// use brigade_runtime::Source;
///
/// /// Lines of a file already in memory, acknowledging as the pipeline finishes them.
/// struct Lines { lines: Vec<String>, read: usize, committed: u64 }
///
/// impl Source for Lines {
///     type Item = String;
///
///     fn next(&mut self) -> Option<String> {
///         let line = self.lines.get(self.read).cloned();
///         self.read += 1;
///         line
///     }
///
///     fn ack(&mut self, position: u64) {
///         self.committed = position; // e.g. write it to a checkpoint
///     }
/// }
/// ```
pub trait Source: Send + 'static {
    /// The records it yields.
    type Item: Send + 'static;

    /// The next record, or `None` when there are no more.
    fn next(&mut self) -> Option<Self::Item>;

    /// The weight of the record the next call of [`next`](Source::next) will return,
    /// if known before reading it (an index of record lengths, an object listing).
    /// With it the runtime waits for room in the budget *before* the record is in
    /// memory; without it, one record read and waiting for room is outside the budget.
    fn next_weight(&mut self) -> Option<u64> {
        None
    }

    /// Every record before `position` has finished.
    fn ack(&mut self, position: u64) {
        let _ = position;
    }

    /// The longest the source may go unread before its connection drops. The runtime
    /// then reads one record whenever back pressure has kept it unread for half that
    /// long (the source guard).
    fn idle_timeout(&self) -> Option<Duration> {
        None
    }

    /// How far a finite source has read (files and bytes done, of the totals when
    /// known), or `None` if it cannot say. It must be cheap: the source thread calls
    /// it before the first read, after a read at most every 100 ms, and once more when
    /// the source is exhausted (or admission stops), never once per record. The last
    /// value shows in every [`Snapshot`](brigade_controller::Snapshot) as
    /// `global.source.progress`. A panic here is a panic of the source: admission
    /// stops and the run drains.
    fn progress(&self) -> Option<Progress> {
        None
    }

    /// The consumer group the source reads in, if it reads in one (a Redis Streams
    /// group): its lag, pending entries, members and claims. Asked when
    /// [`progress`](Source::progress) is, and as cheap: a source that must query a
    /// server for it keeps the last answer and refreshes it on its own schedule. The
    /// last value shows in every Snapshot as `global.source.group`.
    fn group(&self) -> Option<GroupStats> {
        None
    }
}

/// The least time between two calls of [`Source::progress`] while the source is read.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// While the source reads without waiting, the source thread takes finished positions
/// (and acknowledges) after this many reads...
const ACK_EVERY_READS: u32 = 64;
/// ...or once this long has passed since it last took them, whichever comes first; and
/// always before it waits (for room, or for the last records to finish).
const ACK_EVERY: Duration = Duration::from_millis(1);

/// A [`Source`] over any iterator (no acknowledgements, no idle timeout).
pub struct IterSource<I>(pub I);

impl<I> Source for IterSource<I>
where
    I: Iterator + Send + 'static,
    I::Item: Send + 'static,
{
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        self.0.next()
    }
}

/// The source's figures since the last tick.
#[derive(Default, Clone, Copy)]
pub(crate) struct SourceWindow {
    pub records: u64,
    pub bytes: u64,
    pub guard_reads: u64,
    pub longest_gap: Duration,
}

/// What the control thread reads of the source.
pub(crate) struct SourceCell {
    pub window: Mutex<SourceWindow>,
    /// When the source was last read, nanoseconds since the pipeline started.
    last_read_ns: AtomicU64,
    pub exhausted: AtomicBool,
    pub idle_timeout: Option<Duration>,
    /// The acknowledgement point: every position below it has finished.
    pub acked: AtomicU64,
    /// What the source last said of its progress.
    pub progress: Mutex<Option<Progress>>,
    /// What the source last said of its consumer group.
    pub group: Mutex<Option<GroupStats>>,
    /// The spill's figures.
    pub spill: Arc<SpillCell>,
}

impl SourceCell {
    pub(crate) fn new(idle_timeout: Option<Duration>, spill_capacity: Option<u64>) -> Self {
        Self {
            spill: Arc::new(SpillCell::new(spill_capacity)),
            window: Mutex::default(),
            last_read_ns: AtomicU64::new(0),
            exhausted: AtomicBool::new(false),
            idle_timeout,
            acked: AtomicU64::new(0),
            progress: Mutex::new(None),
            group: Mutex::new(None),
        }
    }

    /// The current gap since the last read, as of `now_ns` since the start.
    pub(crate) fn current_gap(&self, now_ns: u64) -> Duration {
        Duration::from_nanos(now_ns.saturating_sub(self.last_read_ns.load(SeqCst)))
    }
}

/// Reads a source into the pipeline, on its own thread.
pub(crate) struct SourceDriver<S: Source> {
    pub source: S,
    pub first: Arc<Queue<Envelope<S::Item>>>,
    /// The hand-over to the serial lane; dropped to close the lane.
    pub serial: Option<Sender<Envelope<S::Item>>>,
    pub lane: Arc<SerialLane>,
    pub weigher: Weigher<S::Item>,
    pub shared: Arc<Shared>,
    pub cell: Arc<SourceCell>,
    pub oversize: Oversize,
    pub finished: Arc<Finished>,
    /// Set when the source panicked in `ack`: it is not acknowledged again.
    pub ack_failed: bool,
    /// Where guard reads the budget cannot hold wait, if the pipeline has a spill.
    pub spill: Option<Spill<S::Item>>,
}

const STEP: Duration = Duration::from_millis(50);

impl<S: Source> SourceDriver<S> {
    /// Reads until the source is exhausted or admission stops, then waits for every
    /// admitted record to finish and acknowledges them.
    pub(crate) fn run(mut self) {
        let mut acks = AckTracker::default();
        let mut position = 0u64;
        let half_timeout = self.cell.idle_timeout.map(|t| t / 2);
        let mut last_read = Instant::now();
        // Set when the source panicked: it is not asked for its progress again.
        let mut failed = !self.publish_progress(position);
        let mut progress_due = last_read + PROGRESS_EVERY;
        let mut unacked_reads = 0;
        let mut acks_due = last_read;
        while !self.shared.stop.load(SeqCst) {
            if unacked_reads >= ACK_EVERY_READS || last_read >= acks_due || !self.first.has_room() {
                self.pump_acks(&mut acks, Duration::ZERO);
                unacked_reads = 0;
                acks_due = last_read + ACK_EVERY;
            }
            unacked_reads += 1;
            let mut guard = false;
            let spill_waiting = self.spill.as_ref().is_some_and(|spill| !spill.is_empty());
            if spill_waiting {
                // Spilled records go first; a new read only when the guard is due.
                let guard_due = half_timeout.map(|half| last_read + half);
                let patience = guard_due.map_or(STEP, |due| {
                    due.saturating_duration_since(Instant::now()).min(STEP)
                });
                if self.reenter(patience) {
                    continue;
                }
                if guard_due.is_none_or(|due| Instant::now() < due) {
                    self.pump_acks(&mut acks, Duration::ZERO);
                    continue;
                }
                guard = true;
            } else if !self.first.has_room() {
                let guard_due = half_timeout.map(|half| last_read + half);
                let deadline = || {
                    let wait = guard_due.map_or(STEP, |due| {
                        due.saturating_duration_since(Instant::now()).min(STEP)
                    });
                    crate::sync::Instant::now() + wait
                };
                if !self.first.wait_for_room(deadline) {
                    if guard_due.is_some_and(|due| Instant::now() >= due) {
                        guard = true;
                    } else {
                        continue;
                    }
                }
            }
            let Some(hint) = self.call(position, |source| source.next_weight()) else {
                failed = true;
                break;
            };
            let mut reserved = None;
            // A guard read goes to the spill if records wait there (they go first) or
            // the budget cannot hold it now, while the spill has room.
            let mut to_spill = false;
            if let Some(weight) = hint {
                if !self.refuses(weight) {
                    let at = self.location_for(weight);
                    if guard
                        && self
                            .spill
                            .as_ref()
                            .is_some_and(|spill| spill.has_room(weight))
                        && (spill_waiting || !self.shared.budget.admit(weight, at, Duration::ZERO))
                    {
                        to_spill = true;
                    } else if guard {
                        // Due, but the budget is full: wait for room (acknowledging
                        // meanwhile) rather than ask the source again at once.
                        if !self.shared.budget.admit(weight, at, STEP) {
                            self.pump_acks(&mut acks, Duration::ZERO);
                            continue;
                        }
                        reserved = Some((weight, at));
                    } else {
                        let due = self.spill_due(half_timeout, last_read);
                        if self.admit_until(weight, at, due, &mut acks).is_some() {
                            reserved = Some((weight, at));
                        } else {
                            // The guard fell due while the budget stayed full: this
                            // read goes to the spill.
                            guard = true;
                            to_spill = true;
                        }
                    }
                }
            }
            let item = match self.call(position, |source| source.next()) {
                Some(Some(item)) => item,
                outcome => {
                    failed |= outcome.is_none();
                    if let Some((weight, at)) = reserved {
                        self.shared.budget.release(at, weight);
                    }
                    break;
                }
            };
            let mut read_at = clock::now();
            let weight = (self.weigher)(&item);
            {
                let mut window = self.cell.window.lock();
                window.records += 1;
                window.bytes += weight;
                window.guard_reads += u64::from(guard);
                window.longest_gap = window.longest_gap.max(read_at - last_read);
            }
            last_read = read_at;
            self.cell.last_read_ns.store(
                (read_at - self.shared.started_tick).as_nanos() as u64,
                SeqCst,
            );
            if read_at >= progress_due {
                // The record is read: a panic here stops the loop after it is admitted.
                failed |= !self.publish_progress(position + 1);
                progress_due = read_at + PROGRESS_EVERY;
            }
            if guard && self.spill.is_some() && reserved.is_none() && !self.refuses(weight) {
                let at = self.location_for(weight);
                if to_spill
                    || spill_waiting
                    || !self.shared.budget.admit(weight, at, Duration::ZERO)
                {
                    self.spill_read(item, weight, position, read_at, at, &mut acks);
                    position += 1;
                    continue;
                }
                reserved = Some((weight, at));
            }
            let at = match reserved {
                Some((hinted, at)) => {
                    self.shared.budget.reweigh(at, hinted, weight);
                    at
                }
                None if self.refuses(weight) => {
                    self.refuse(item, weight, position);
                    position += 1;
                    continue;
                }
                None => {
                    let at = self.location_for(weight);
                    let due = self.spill_due(half_timeout, last_read);
                    match self.admit_until(weight, at, due, &mut acks) {
                        Some(true) => read_at = clock::now(),
                        Some(false) => {}
                        None => {
                            // The guard fell due while this record waited for the
                            // budget: it waits in the spill instead, and the source is
                            // read again.
                            self.cell.window.lock().guard_reads += 1;
                            self.spill_read(item, weight, position, read_at, at, &mut acks);
                            position += 1;
                            continue;
                        }
                    }
                    at
                }
            };
            // Admitted when read, or when the budget let it in after the read.
            let ticket = self.shared.ledger.admit(position, read_at);
            position += 1;
            let envelope = Envelope {
                value: item,
                weight,
                ticket,
            };
            self.hand_on(envelope, at, guard);
        }
        if !failed {
            self.publish_progress(position);
        }
        // Spilled records were admitted: they re-enter and finish like any other.
        while self.spill.as_ref().is_some_and(|spill| !spill.is_empty())
            && !self.shared.abandon.load(SeqCst)
        {
            if !self.reenter(STEP) {
                self.pump_acks(&mut acks, Duration::ZERO);
            }
        }
        self.cell.exhausted.store(true, SeqCst);
        self.first.close();
        self.serial = None;
        while self.shared.ledger.in_flight() > 0 && !self.shared.abandon.load(SeqCst) {
            self.pump_acks(&mut acks, STEP);
        }
        self.pump_acks(&mut acks, Duration::ZERO);
    }

    /// Puts an admitted record in the first queue (past a full queue for the guard's)
    /// or hands it to the serial lane.
    fn hand_on(&mut self, envelope: Envelope<S::Item>, at: Location, guard: bool) {
        match at {
            Location::Serial => {
                self.lane.waiting_bytes.store(envelope.weight, SeqCst);
                self.serial
                    .as_ref()
                    .expect("the lane closes only after the read loop")
                    .send(envelope)
                    .expect("the serial lane runs until the source closes it");
                self.lane.waiting_bytes.store(0, SeqCst);
            }
            Location::Stage(_) if guard => self.first.force_push(envelope),
            Location::Stage(_) => {
                self.first.push(envelope, None);
            }
        }
    }

    /// When the guard falls due after a read at `last_read`, if the source has an idle
    /// timeout and the pipeline a spill (`None` otherwise: reads wait for the budget).
    fn spill_due(&self, half_timeout: Option<Duration>, last_read: Instant) -> Option<Instant> {
        self.spill.as_ref()?;
        half_timeout.map(|half| last_read + half)
    }

    /// Waits (acknowledging meanwhile) until the budget admits `weight` at `at`, or
    /// until `due` passes: `Some(true)` if admitted after waiting, `Some(false)` at
    /// once, `None` if `due` came first.
    fn admit_until(
        &mut self,
        weight: u64,
        at: Location,
        due: Option<Instant>,
        acks: &mut AckTracker,
    ) -> Option<bool> {
        let Some(due) = due else {
            return Some(self.admit_waiting(weight, at, acks));
        };
        if self.shared.budget.admit(weight, at, Duration::ZERO) {
            return Some(false);
        }
        loop {
            let patience = due.saturating_duration_since(Instant::now()).min(STEP);
            if self.shared.budget.admit(weight, at, patience) {
                return Some(true);
            }
            if Instant::now() >= due {
                return None;
            }
            self.pump_acks(acks, Duration::ZERO);
        }
    }

    /// Admits a record read at `read_at` and writes it to the spill; if the spill is
    /// full (as no spill) it waits for the budget and enters like a guard read.
    fn spill_read(
        &mut self,
        item: S::Item,
        weight: u64,
        position: u64,
        read_at: Instant,
        at: Location,
        acks: &mut AckTracker,
    ) {
        let ticket = self.shared.ledger.admit(position, read_at);
        let envelope = Envelope {
            value: item,
            weight,
            ticket,
        };
        if let Some(envelope) = self.spill_or_return(envelope) {
            self.admit_waiting(weight, at, acks);
            self.hand_on(envelope, at, true);
        }
    }

    /// Writes a guard read the budget cannot hold to the spill; gives it back if the
    /// spill is full (or refused it: the run then goes on without the spill).
    fn spill_or_return(&mut self, envelope: Envelope<S::Item>) -> Option<Envelope<S::Item>> {
        let spill = self.spill.as_mut()?;
        let position = envelope.ticket.position;
        match spill.push(envelope) {
            Ok(()) => None,
            Err((envelope, None)) => Some(envelope),
            Err((envelope, Some(error))) => {
                self.shared.fail(RunFailure::SpillFailed {
                    message: error.to_string(),
                    position,
                });
                if spill.is_empty() {
                    self.spill = None;
                }
                Some(envelope)
            }
        }
    }

    /// Lets the oldest spilled record re-enter if the budget holds it within
    /// `patience`; true if one did (or was lost and accounted for).
    fn reenter(&mut self, patience: Duration) -> bool {
        let Some(weight) = self.spill.as_ref().and_then(|spill| spill.front_weight()) else {
            return false;
        };
        let at = self.location_for(weight);
        if !self.shared.budget.admit(weight, at, patience) {
            return false;
        }
        match self.spill.as_mut().and_then(|spill| spill.pop()) {
            Some(Ok(envelope)) => self.hand_on(envelope, at, true),
            Some(Err(Lost { ticket, error })) => {
                self.shared.budget.release(at, weight);
                self.shared.cap_acks(ticket.position);
                self.shared.stop.store(true, SeqCst);
                self.shared.fail(RunFailure::SpillLost {
                    message: error.to_string(),
                    position: ticket.position,
                });
                self.shared.ledger.finish(&ticket, true);
            }
            None => self.shared.budget.release(at, weight),
        }
        true
    }

    /// Calls the source. A panic stops admission and is reported with the position
    /// being read; the caller then ends the read loop as if the source were done.
    fn call<R>(&mut self, position: u64, call: impl FnOnce(&mut S) -> R) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(|| call(&mut self.source))) {
            Ok(value) => Some(value),
            Err(payload) => {
                self.shared.stop.store(true, SeqCst);
                self.shared.fail(RunFailure::SourcePanicked {
                    message: panic_message(&*payload),
                    position,
                });
                None
            }
        }
    }

    /// Asks the source for its progress and group and publishes them for the control
    /// thread; false if the source panicked (admission then stops).
    fn publish_progress(&mut self, position: u64) -> bool {
        match self.call(position, |source| (source.progress(), source.group())) {
            Some((progress, group)) => {
                *self.cell.progress.lock() = progress;
                *self.cell.group.lock() = group;
                true
            }
            None => false,
        }
    }

    fn refuses(&self, weight: u64) -> bool {
        self.oversize == Oversize::Refuse
            && self
                .shared
                .budget
                .limit()
                .is_some_and(|limit| weight > limit)
    }

    fn location_for(&self, weight: u64) -> Location {
        match self.shared.serial_threshold() {
            Some(threshold) if weight >= threshold => Location::Serial,
            _ => Location::Stage(0),
        }
    }

    /// Waits (acknowledging meanwhile) until the budget admits `weight` at `at`;
    /// true if it had to wait. A record already read is never dropped, so this ignores
    /// the stop flag.
    fn admit_waiting(&mut self, weight: u64, at: Location, acks: &mut AckTracker) -> bool {
        if self.shared.budget.admit(weight, at, Duration::ZERO) {
            return false;
        }
        while !self.shared.budget.admit(weight, at, STEP) {
            self.pump_acks(acks, Duration::ZERO);
        }
        true
    }

    fn refuse(&mut self, item: S::Item, weight: u64, position: u64) {
        let shared = &self.shared;
        let budget = shared.budget.limit().unwrap_or(u64::MAX);
        let ticket = shared.ledger.admit(position, Instant::now());
        shared.dead_letter(DeadLetter::new(
            "source",
            position,
            DeadLetterCause::TooLarge {
                size: weight,
                budget,
            },
            format!(
                "record of {weight} bytes is larger than the whole memory budget of {budget} bytes"
            ),
            Some(Box::new(item)),
        ));
        shared.ledger.finish(&ticket, true);
    }

    /// Takes finished positions (waiting up to `wait` for the first) and acknowledges
    /// the source up to the new in-order point.
    ///
    /// Never past the ceiling a lost dead letter set; after a panic in `next`, the
    /// records that finish are still acknowledged, and after a panic in `ack`, none.
    fn pump_acks(&mut self, acks: &mut AckTracker, wait: Duration) {
        let Some(point) = acks.take(&self.finished, wait) else {
            return;
        };
        let point = point.min(self.shared.ack_ceiling());
        if point <= self.cell.acked.load(SeqCst) || self.ack_failed {
            return;
        }
        match self.call(point, |source| source.ack(point)) {
            Some(()) => self.cell.acked.store(point, SeqCst),
            None => self.ack_failed = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Pipeline;

    /// Yields `records` numbers, one every `every`, noting the acknowledgement point
    /// it has seen when each read begins.
    struct Slow {
        next: u64,
        records: u64,
        every: Duration,
        acked: u64,
        seen: Arc<Mutex<Vec<u64>>>,
    }

    impl Source for Slow {
        type Item = u64;

        fn next(&mut self) -> Option<u64> {
            self.seen.lock().push(self.acked);
            if self.next == self.records {
                return None;
            }
            if self.next > 0 {
                std::thread::sleep(self.every);
            }
            self.next += 1;
            Some(self.next - 1)
        }

        fn ack(&mut self, position: u64) {
            self.acked = position;
        }
    }

    #[test]
    fn a_slow_source_is_acknowledged_while_it_reads() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let source = Slow {
            next: 0,
            records: 8,
            every: Duration::from_millis(30),
            acked: 0,
            seen: seen.clone(),
        };
        let report = Pipeline::from_source(source)
            .map("double", |x: u64| x * 2)
            .sink("drop", |_| {})
            .run()
            .expect("valid");
        assert_eq!(report.completed, 8);
        let seen = seen.lock().clone();
        // Far fewer reads than a batch of acknowledgements, but 30 ms apart: each
        // record has long finished when the next read begins, and is acknowledged.
        assert!(
            seen[7] >= 3,
            "acknowledgement points seen at each read: {seen:?}"
        );
    }
}
