//! Per-worker metric windows and their roll-up into a stage's [`StageStats`].
//!
//! Each worker owns a [`Window`] behind its own mutex. The worker gathers its figures
//! in its own [`Figures`], without a lock, and adds them to the window in one go (a
//! flush) every [`FLUSH_RECORDS`] records, once [`FLUSH_AFTER`] has passed since the
//! last flush, before it waits for input and when it retires. The control thread locks
//! each window once per tick and drains it into the stage's [`StageRollup`]. So no
//! lock is taken per record, and a figure reaches the control thread at most about
//! [`FLUSH_AFTER`] (or one call, if a call takes longer) after the record it belongs
//! to: it may land in the next tick's window.
//!
//! A call's figures come when it ends, which for a call stuck for minutes behind a
//! lock is many windows late, and so does a wait for room downstream. So each worker
//! also publishes the call it is in and the wait for room it is in, each in a
//! [`SpanClock`] beside its window: the control thread counts their time so far (as
//! busy, as blocked) in each window they span (the worker takes that share off when
//! they end), and reports how long each call in progress has run.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use brigade_controller::{HistogramData, StageStats};
use hdrhistogram::Histogram;
use parking_lot::{Mutex, MutexGuard};

use crate::clock::{stamp, unstamp, Instant};

/// A worker flushes its figures after this many records...
pub(crate) const FLUSH_RECORDS: usize = 64;
/// ...or once this long has passed since its last flush.
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(1);

fn histogram() -> Histogram<u64> {
    Histogram::new(2).expect("2 significant figures is valid")
}

/// Records `count` occurrences of a value, growing the histogram's range as needed
/// (values past what a u64 histogram can track go to its top).
fn record_n(histogram: &mut Histogram<u64>, value: u64, count: u64) {
    if histogram.record_n(value, count).is_err() {
        histogram.saturating_record_n(value, count);
    }
}

/// Records `samples` and empties them. Runs of one value (a stage's records of one
/// size, calls of the same microsecond) are recorded in one go: a histogram's
/// record costs far more than a comparison, and such runs are the common case.
fn record_all(histogram: &mut Histogram<u64>, samples: &mut Vec<u64>) {
    let mut values = samples.drain(..);
    let Some(mut value) = values.next() else {
        return;
    };
    let mut count = 1;
    for next in values {
        if next == value {
            count += 1;
        } else {
            record_n(histogram, value, count);
            (value, count) = (next, 1);
        }
    }
    record_n(histogram, value, count);
}

/// The counters of a window.
#[derive(Clone, Copy, Default)]
pub(crate) struct Counts {
    pub records_in: u64,
    pub records_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub busy_ns: u64,
    pub wait_in_ns: u64,
    pub wait_out_ns: u64,
    pub errors: u64,
    pub retries: u64,
    pub dead_lettered: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.records_in += o.records_in;
        self.records_out += o.records_out;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.busy_ns += o.busy_ns;
        self.wait_in_ns += o.wait_in_ns;
        self.wait_out_ns += o.wait_out_ns;
        self.errors += o.errors;
        self.retries += o.retries;
        self.dead_lettered += o.dead_lettered;
    }
}

/// One worker's figures since the last tick.
pub(crate) struct Window {
    pub counts: Counts,
    pub service_us: Histogram<u64>,
    pub wait_in_us: Histogram<u64>,
    pub size_bytes: Histogram<u64>,
    pub latency_us: Histogram<u64>,
    /// Set when the worker has exited; the slot goes after its last roll-up.
    pub retired: bool,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            counts: Counts::default(),
            service_us: histogram(),
            wait_in_us: histogram(),
            size_bytes: histogram(),
            latency_us: histogram(),
            retired: false,
        }
    }
}

impl Window {
    fn histograms(&mut self) -> [&mut Histogram<u64>; 4] {
        [
            &mut self.service_us,
            &mut self.wait_in_us,
            &mut self.size_bytes,
            &mut self.latency_us,
        ]
    }

    /// Adds the figures gathered since the last flush and clears them.
    pub(crate) fn add(&mut self, figures: &mut Figures) {
        self.counts += figures.counts;
        self.counts.busy_ns = (self.counts.busy_ns as i64 - figures.counted_busy_ns).max(0) as u64;
        figures.counts = Counts::default();
        figures.counted_busy_ns = 0;
        for (histogram, samples) in [
            (&mut self.service_us, &mut figures.service_us),
            (&mut self.wait_in_us, &mut figures.wait_in_us),
            (&mut self.size_bytes, &mut figures.size_bytes),
            (&mut self.latency_us, &mut figures.latencies_us),
        ] {
            record_all(histogram, samples);
        }
    }
}

/// A worker's window and the call it is in, shared with the control thread.
pub(crate) type WindowSlot = Arc<Slot>;

/// What the control thread sees of one worker.
#[derive(Default)]
pub(crate) struct Slot {
    window: Mutex<Window>,
    /// The call the worker is in, if any.
    pub call: SpanClock,
    /// The wait for room (downstream, in the budget, at a limit) the worker is in.
    pub blocked: SpanClock,
}

impl Slot {
    /// Locks the worker's window.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Window> {
        self.window.lock()
    }
}

/// A span of a worker's time still in progress (a call, or a wait for room), between
/// its start and the flush of the figures that count it.
///
/// The worker stamps the start and, at the end, takes back what the control thread
/// has counted of it; the control thread counts the time from the later of the
/// start and its previous look. If the span ends while the control thread counts,
/// the control thread sees the stamp change and takes its count back, or (if the
/// worker took it first) leaves it owed to the worker's next span: time is never
/// counted twice for long, and never lost.
///
/// The worker's side is two plain stores and a load, unless the control thread
/// counted the span (a span that lasted past a tick): the per-record path pays no
/// locked instruction. The orderings: the control thread's add and the worker's swap
/// are read-modify-writes of one atomic, so one reads the other's result; a swap that
/// comes first releases the worker's "ended" stamp to the add, which acquires it, so
/// the control thread's second look sees the span ended and takes its count back.
/// The worker's plain load may miss an add made meanwhile; that count is then left
/// owed to its next span, as above.
#[derive(Default)]
pub(crate) struct SpanClock {
    /// [`stamp`] of the span's start; 0 = none in progress.
    started: AtomicU64,
    /// Nanoseconds of the span the control thread has counted.
    counted: AtomicI64,
}

impl SpanClock {
    /// The worker starts a span at `at`.
    #[inline]
    pub(crate) fn start(&self, at: Instant) {
        self.started.store(stamp(at), Ordering::Release);
    }

    /// A wait of `waited` ended: ends the span of `clock`, if any, and returns the
    /// part of the wait its control thread has not counted yet (plus any count owed
    /// back), which the waiter adds to its figures.
    pub(crate) fn end_wait(clock: Option<&Self>, waited: Duration) -> Duration {
        let Some(clock) = clock else {
            return waited;
        };
        let uncounted = waited.as_nanos() as i64 - clock.end();
        Duration::from_nanos(uncounted.max(0) as u64)
    }

    /// The worker's span ended: returns the nanoseconds of it the control thread
    /// already counted, to take off the span's own figure.
    #[inline]
    pub(crate) fn end(&self) -> i64 {
        self.started.store(0, Ordering::Release);
        if self.counted.load(Ordering::Acquire) == 0 {
            return 0;
        }
        self.counted.swap(0, Ordering::AcqRel)
    }

    /// The control thread looks at `now`, its previous look at `since`: returns the
    /// nanoseconds of the span in progress since then, now counted, and how long the
    /// span has run; `None` without a span in progress.
    pub(crate) fn look(&self, since: Option<Instant>, now: Instant) -> Option<(u64, Duration)> {
        let started = self.started.load(Ordering::Acquire);
        if started == 0 {
            return None;
        }
        let start = unstamp(started);
        let from = since.map_or(start, |since| since.max(start));
        let ns = now.saturating_duration_since(from).as_nanos() as i64;
        self.counted.fetch_add(ns, Ordering::AcqRel);
        if self.started.load(Ordering::Acquire) != started {
            // The span ended meanwhile: its own figures count it.
            self.counted.fetch_sub(ns, Ordering::AcqRel);
            return None;
        }
        Some((ns as u64, now.saturating_duration_since(start)))
    }

    /// True while a span is in progress: how a test sees that a thread is waiting.
    #[cfg(test)]
    pub(crate) fn is_running(&self) -> bool {
        self.started.load(Ordering::Acquire) != 0
    }
}

/// What a worker's calls did since its last flush, gathered outside the window's lock:
/// counters, and the raw samples of each histogram.
#[derive(Default)]
pub(crate) struct Figures {
    pub counts: Counts,
    /// Duration of the last call, nanoseconds (set by the step, sampled by
    /// [`Figures::end_call`]).
    pub service_ns: u64,
    /// Service times, microseconds.
    pub service_us: Vec<u64>,
    /// How long each batch's first record waited for a worker, microseconds.
    pub wait_in_us: Vec<u64>,
    /// Sizes of the records taken in, bytes.
    pub size_bytes: Vec<u64>,
    /// End-to-end latencies of the records a sink finished, microseconds.
    pub latencies_us: Vec<u64>,
    /// The slot whose clocks the worker starts and ends around each call and each
    /// wait for room (`None`: nobody watches them while they run).
    pub clock: Option<WindowSlot>,
    /// Busy nanoseconds of ended calls that the control thread counted while they
    /// ran, taken off the busy time at the next flush (negative: owed back).
    pub counted_busy_ns: i64,
}

impl Figures {
    /// Counts a failed call that is about to be retried: in the watched window at
    /// once, when there is one, so that a call retrying for minutes (a sink whose
    /// database is locked) shows its errors and retries while it does.
    pub(crate) fn count_retry(&mut self) {
        match &self.clock {
            Some(slot) => {
                let mut window = slot.lock();
                window.counts.errors += 1;
                window.counts.retries += 1;
            }
            None => {
                self.counts.errors += 1;
                self.counts.retries += 1;
            }
        }
    }

    /// Counts a record of `weight` bytes taken from the queue (or the serial lane).
    #[inline]
    pub(crate) fn take_in(&mut self, weight: u64) {
        self.counts.records_in += 1;
        self.counts.bytes_in += weight;
        self.size_bytes.push(weight);
    }

    /// A call of the stage's function starts at `at`: the control thread may count it
    /// while it runs.
    #[inline]
    pub(crate) fn call_starts(&self, at: Instant) {
        if let Some(slot) = &self.clock {
            slot.call.start(at);
        }
    }

    /// The call (and its retries) ended: what the control thread counted of it is
    /// taken off at the flush. The step calls this before it waits on its output, so
    /// that a wait for room downstream is never counted as busy.
    #[inline]
    pub(crate) fn call_ends(&mut self) {
        if let Some(slot) = &self.clock {
            self.counted_busy_ns += slot.call.end();
        }
    }

    /// The clock a wait for room (downstream, in the budget, at a limit) runs while
    /// it lasts, for the control thread to count it as blocked: the wait starts and
    /// ends it on its slow path, and reports only the part not yet counted.
    #[inline]
    pub(crate) fn blocked_clock(&self) -> Option<&SpanClock> {
        self.clock.as_deref().map(|slot| &slot.blocked)
    }

    /// Samples the service time of the call just ended.
    #[inline]
    pub(crate) fn end_call(&mut self) {
        self.service_us.push(self.service_ns / 1_000);
    }

    /// Records taken in since the last flush.
    #[inline]
    pub(crate) fn records(&self) -> usize {
        self.size_bytes.len()
    }
}

/// A stage's workers' windows, summed at each tick.
#[derive(Default)]
pub(crate) struct StageRollup {
    window: Window,
    /// How long each call in progress at the last look had run.
    running: Vec<Duration>,
    /// When the control thread last looked at the calls in progress.
    looked_at: Option<Instant>,
}

impl StageRollup {
    /// Drains every slot into the roll-up and counts the calls in progress at `now`;
    /// drops the slots of workers gone for good.
    pub(crate) fn collect(&mut self, slots: &mut Vec<WindowSlot>, now: Instant) {
        let since = self.looked_at.replace(now);
        slots.retain(|slot| {
            if let Some((busy_ns, age)) = slot.call.look(since, now) {
                self.window.counts.busy_ns += busy_ns;
                self.running.push(age);
            }
            if let Some((blocked_ns, _)) = slot.blocked.look(since, now) {
                self.window.counts.wait_out_ns += blocked_ns;
            }
            self.drain(slot)
        });
    }

    /// Drains `slot` into the roll-up; returns false if the worker is gone for good.
    pub(crate) fn drain(&mut self, slot: &WindowSlot) -> bool {
        let mut worker = slot.lock();
        self.window.counts += worker.counts;
        worker.counts = Counts::default();
        for (sum, part) in self
            .window
            .histograms()
            .into_iter()
            .zip(worker.histograms())
        {
            sum.add(&*part)
                .expect("auto-resizing histograms accept any values");
            part.reset();
        }
        !worker.retired
    }

    /// Writes the window's figures into `stats` and starts a new window. Returns the
    /// latency histogram (meaningful for sinks), which the caller merges globally.
    pub(crate) fn close(&mut self, stats: &mut StageStats) -> Histogram<u64> {
        let w = std::mem::take(&mut self.window);
        let c = w.counts;
        stats.records_in = c.records_in;
        stats.records_out = c.records_out;
        stats.bytes_in = c.bytes_in;
        stats.bytes_out = c.bytes_out;
        stats.busy_s = c.busy_ns as f64 * 1e-9;
        stats.wait_in_s = c.wait_in_ns as f64 * 1e-9;
        stats.wait_out_s = c.wait_out_ns as f64 * 1e-9;
        stats.errors = c.errors;
        stats.retries = c.retries;
        stats.dead_lettered = c.dead_lettered;
        stats.service_time_us = HistogramData::from_histogram(&w.service_us);
        stats.wait_in_us = HistogramData::from_histogram(&w.wait_in_us);
        stats.record_size_bytes = HistogramData::from_histogram(&w.size_bytes);
        self.running.sort_unstable_by(|a, b| b.cmp(a));
        stats.running_calls_s = self
            .running
            .drain(..)
            .map(|age| age.as_secs_f64())
            .collect();
        w.latency_us
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_of_a_value_are_recorded_as_many_values() {
        let mut histogram = histogram();
        let mut samples = vec![8, 8, 8, 3, 8, 8, 1_000_000, 1_000_000, 3];
        record_all(&mut histogram, &mut samples);
        assert!(samples.is_empty());
        assert_eq!(histogram.len(), 9);
        assert_eq!(histogram.count_at(8), 5);
        assert_eq!(histogram.count_at(3), 2);
        assert_eq!(histogram.count_between(999_000, 1_001_000), 2);
    }

    use super::*;

    #[test]
    fn a_call_in_progress_is_counted_once_across_windows() {
        let ms = Duration::from_millis;
        crate::clock::epoch();
        let t0 = Instant::now();
        let clock = SpanClock::default();
        assert!(clock.look(None, t0).is_none(), "no call, nothing to count");
        clock.start(t0);
        assert_eq!(clock.look(None, t0 + ms(5)), Some((5_000_000, ms(5))));
        assert_eq!(
            clock.look(Some(t0 + ms(5)), t0 + ms(8)),
            Some((3_000_000, ms(8))),
            "only the time since the last look"
        );
        assert_eq!(
            clock.end(),
            8_000_000,
            "the worker takes off what was counted"
        );
        assert!(clock.look(Some(t0 + ms(8)), t0 + ms(9)).is_none());
        let slot: WindowSlot = Arc::default();
        let mut figures = Figures {
            clock: Some(slot.clone()),
            ..Figures::default()
        };
        figures.call_starts(t0);
        slot.call.look(None, t0 + ms(8));
        figures.counts.busy_ns = 10_000_000;
        figures.call_ends();
        slot.lock().add(&mut figures);
        assert_eq!(
            slot.lock().counts.busy_ns,
            2_000_000,
            "the flush takes off what was counted"
        );
        figures.counts.busy_ns = 1_000_000;
        figures.counted_busy_ns = -1_000_000;
        slot.lock().add(&mut figures);
        assert_eq!(
            slot.lock().counts.busy_ns,
            4_000_000,
            "a count owed back is added"
        );
        slot.blocked.start(t0);
        slot.blocked.look(None, t0 + ms(5));
        assert_eq!(
            SpanClock::end_wait(Some(&slot.blocked), ms(7)),
            ms(2),
            "a wait reports only what was not counted while it lasted"
        );
        assert_eq!(SpanClock::end_wait(None, ms(7)), ms(7));
    }

    #[test]
    fn rollup_sums_workers_and_resets_them() {
        let a: WindowSlot = Arc::default();
        let b: WindowSlot = Arc::default();
        for (slot, n) in [(&a, 3u64), (&b, 5)] {
            let mut w = slot.lock();
            w.counts.records_in = n;
            w.counts.busy_ns = n * 1_000_000_000;
            record_n(&mut w.size_bytes, 100 * n, 1);
        }
        record_n(&mut a.lock().service_us, 280, 1);
        b.lock().retired = true;
        let mut rollup = StageRollup::default();
        assert!(rollup.drain(&a));
        assert!(!rollup.drain(&b));
        let mut stats = StageStats::default();
        rollup.close(&mut stats);
        assert_eq!(stats.records_in, 8);
        assert!((stats.busy_s - 8.0).abs() < 1e-9);
        assert_eq!(stats.record_size_bytes.count, 2);
        assert!(
            stats.record_size_bytes.max.abs_diff(500) <= 5,
            "2 significant figures"
        );
        assert!(
            stats.service_time_us.p50.abs_diff(280) <= 3,
            "above the initial range"
        );
        assert_eq!(a.lock().counts.records_in, 0);
        let mut again = StageStats::default();
        rollup.close(&mut again);
        assert_eq!(again.records_in, 0);
    }
}
