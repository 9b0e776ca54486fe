//! The source of the model: records at most at its rate, only when the runtime asks,
//! sizes (and giants) drawn from the scenario's seed, and the idle clock that the
//! source guard and the idle timeout watch.

use brigade_scenario::draws::Sizes;
use brigade_scenario::SourceSpec;

/// The source's state.
pub(crate) struct SourceSim {
    pub(crate) spec: SourceSpec,
    /// The sizes of its records, in order.
    sizes: Sizes,
    /// Records per second it can deliver now (phases change it).
    pub(crate) rate: f64,
    /// When the next record is ready to be read.
    pub(crate) ready_at: f64,
    /// Weight of the record ready to be read, once `ready_at` has passed.
    pub(crate) head: Option<u64>,
    /// Records read so far.
    pub(crate) read: u64,
    /// No more records will come (finite input read to the end, or the run failed).
    pub(crate) exhausted: bool,
    /// When the source was last read.
    pub(crate) last_read: f64,
    /// A guard read was already tried for the current idle gap.
    pub(crate) guard_tried: bool,
    /// Reconnecting after a timeout until then.
    pub(crate) paused_until: f64,
    pub(crate) timeouts: u64,
    pub(crate) window: SourceWindow,
}

/// The source's figures for the current window.
#[derive(Default)]
pub(crate) struct SourceWindow {
    pub(crate) records: u64,
    pub(crate) bytes: u64,
    pub(crate) longest_idle_s: f64,
    pub(crate) guard_reads: u64,
}

impl SourceSim {
    pub(crate) fn new(spec: &SourceSpec, sizes: Sizes) -> Self {
        Self {
            spec: spec.clone(),
            sizes,
            rate: spec.rate,
            ready_at: 0.0,
            head: None,
            read: 0,
            exhausted: spec.total == Some(0),
            last_read: 0.0,
            guard_tried: false,
            paused_until: 0.0,
            timeouts: 0,
            window: SourceWindow::default(),
        }
    }

    /// Makes the next record ready: a giant at its drawn position, else a record of
    /// the usual size.
    pub(crate) fn draw_head(&mut self) {
        self.head = Some(self.sizes.next_size());
    }

    /// Records that the head was read at `now`.
    pub(crate) fn take_head(&mut self, now: f64, bytes: u64) {
        self.head = None;
        self.note_idle(now);
        self.last_read = now;
        self.guard_tried = false;
        self.read += 1;
        self.window.records += 1;
        self.window.bytes += bytes;
        if self.spec.total.is_some_and(|total| self.read >= total) {
            self.exhausted = true;
        } else {
            self.ready_at = now + 1.0 / self.rate;
        }
    }

    /// Counts the gap since the last read into the window's longest idle gap.
    pub(crate) fn note_idle(&mut self, now: f64) {
        let gap = now - self.last_read.max(self.paused_until.min(now));
        self.window.longest_idle_s = self.window.longest_idle_s.max(gap);
    }

    /// The idle timeout, if the source has one.
    pub(crate) fn idle_timeout(&self) -> Option<f64> {
        self.spec.idle_timeout_s
    }
}
