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

use std::sync::Arc;
use std::time::Duration;

use brigade_controller::{HistogramData, StageStats};
use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// A worker flushes its figures after this many records...
pub(crate) const FLUSH_RECORDS: usize = 64;
/// ...or once this long has passed since its last flush.
pub(crate) const FLUSH_AFTER: Duration = Duration::from_millis(1);

fn histogram() -> Histogram<u64> {
    Histogram::new(2).expect("2 significant figures is valid")
}

/// Records a value, growing the histogram's range as needed (values past what a u64
/// histogram can track go to its top).
pub(crate) fn record(histogram: &mut Histogram<u64>, value: u64) {
    if histogram.record(value).is_err() {
        histogram.saturating_record(value);
    }
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
        figures.counts = Counts::default();
        for (histogram, samples) in [
            (&mut self.service_us, &mut figures.service_us),
            (&mut self.wait_in_us, &mut figures.wait_in_us),
            (&mut self.size_bytes, &mut figures.size_bytes),
            (&mut self.latency_us, &mut figures.latencies_us),
        ] {
            for value in samples.drain(..) {
                record(histogram, value);
            }
        }
    }
}

/// A worker's window, shared with the control thread.
pub(crate) type WindowSlot = Arc<Mutex<Window>>;

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
}

impl Figures {
    /// Counts a record of `weight` bytes taken from the queue (or the serial lane).
    pub(crate) fn take_in(&mut self, weight: u64) {
        self.counts.records_in += 1;
        self.counts.bytes_in += weight;
        self.size_bytes.push(weight);
    }

    /// Samples the service time of the call just ended.
    pub(crate) fn end_call(&mut self) {
        self.service_us.push(self.service_ns / 1_000);
    }

    /// Records taken in since the last flush.
    pub(crate) fn records(&self) -> usize {
        self.size_bytes.len()
    }
}

/// A stage's workers' windows, summed at each tick.
#[derive(Default)]
pub(crate) struct StageRollup {
    window: Window,
}

impl StageRollup {
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
        w.latency_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollup_sums_workers_and_resets_them() {
        let a: WindowSlot = Arc::default();
        let b: WindowSlot = Arc::default();
        for (slot, n) in [(&a, 3u64), (&b, 5)] {
            let mut w = slot.lock();
            w.counts.records_in = n;
            w.counts.busy_ns = n * 1_000_000_000;
            record(&mut w.size_bytes, 100 * n);
        }
        record(&mut a.lock().service_us, 280);
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
