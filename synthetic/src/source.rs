//! The synthetic source: records of the scenario's sizes (giants at their drawn
//! positions, the simulator's own draws), at most `source.rate` a second (phases may
//! change it), `total` of them if the scenario says so, and an idle timeout that the
//! runtime's source guard watches.
//!
//! Like the model's source, a record is ready `1 / rate` after the previous one was
//! read; one read later than that is read at once. If the source goes unread for
//! longer than its idle timeout, it times out: with `on_timeout = "fail"` it delivers
//! nothing more and the run fails; with `"reconnect"` it delivers nothing for
//! `reconnect` seconds, after which its idle clock starts again. [`Idle`] keeps that
//! clock; the demo's watchdog and every read move it on, so a timeout counts when it
//! happens, read or not.

use std::sync::Arc;
use std::time::Duration;

use brigade_runtime::Source;
use brigade_scenario::draws::Sizes;
use brigade_scenario::{OnTimeout, Scenario};

use crate::clock::Clock;
use crate::record::Record;

/// A source timeout that ended the run (`on_timeout = "fail"`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Failed {
    /// When it timed out, seconds since the start.
    pub(crate) at_s: f64,
    /// The idle timeout, seconds.
    pub(crate) timeout_s: f64,
}

/// The source's idle clock, shared by the source and the demo's watchdog.
pub(crate) struct Idle {
    timeout_s: Option<f64>,
    on_timeout: OnTimeout,
    reconnect_s: f64,
    state: std::sync::Mutex<IdleState>,
}

#[derive(Default)]
struct IdleState {
    /// The idle gap began then: the last read, or the end of the last reconnect.
    since_s: f64,
    /// The source delivers nothing before then (reconnecting).
    paused_until_s: f64,
    /// A read is in progress: the source is not idle.
    reading: bool,
    /// The source is done (exhausted, or admission stopped): it times out no more.
    closed: bool,
    timeouts: u64,
    failed: Option<Failed>,
}

impl Idle {
    /// The idle clock of `scenario`'s source.
    pub(crate) fn new(scenario: &Scenario) -> Self {
        let source = &scenario.source;
        Self {
            timeout_s: source.idle_timeout_s,
            on_timeout: source.on_timeout,
            reconnect_s: source.reconnect_s,
            state: std::sync::Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IdleState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts the timeouts until `now_s` (seconds since the start); true if one has
    /// failed the source.
    pub(crate) fn advance(&self, now_s: f64) -> bool {
        let mut state = self.lock();
        self.advance_locked(&mut state, now_s);
        state.failed.is_some()
    }

    fn advance_locked(&self, state: &mut IdleState, now_s: f64) {
        let Some(timeout_s) = self.timeout_s else {
            return;
        };
        while !state.reading
            && !state.closed
            && state.failed.is_none()
            && now_s > state.since_s + timeout_s
        {
            let at_s = state.since_s + timeout_s;
            state.timeouts += 1;
            match self.on_timeout {
                OnTimeout::Fail => state.failed = Some(Failed { at_s, timeout_s }),
                OnTimeout::Reconnect => {
                    state.paused_until_s = at_s + self.reconnect_s;
                    state.since_s = state.paused_until_s;
                }
            }
        }
    }

    /// A read begins at `now_s`: `None` if a timeout failed the source, else when it
    /// can deliver (after a reconnect in progress).
    fn begin_read(&self, now_s: f64) -> Option<f64> {
        let mut state = self.lock();
        self.advance_locked(&mut state, now_s);
        if state.failed.is_some() {
            return None;
        }
        state.reading = true;
        Some(state.paused_until_s.max(now_s))
    }

    /// The read that began last took its record at `at_s`.
    fn end_read(&self, at_s: f64) {
        let mut state = self.lock();
        state.reading = false;
        state.since_s = at_s;
    }

    /// The source is done: nothing reads it any more, so it times out no more.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
    }

    /// True once the source is done.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Timeouts so far.
    pub(crate) fn timeouts(&self) -> u64 {
        self.lock().timeouts
    }

    /// The timeout that failed the source, if one did.
    pub(crate) fn failure(&self) -> Option<Failed> {
        self.lock().failed
    }
}

/// The scenario's source as a runtime [`Source`].
pub(crate) struct SyntheticSource {
    sizes: Sizes,
    /// The size of the next record, drawn when the runtime first asks for its weight.
    head: Option<u64>,
    read: u64,
    total: Option<u64>,
    /// The next record is ready then, seconds since the start.
    ready_s: f64,
    clock: Arc<Clock>,
    idle: Arc<Idle>,
}

impl SyntheticSource {
    /// `scenario`'s source on `clock`, timing out on `idle`.
    pub(crate) fn new(scenario: &Scenario, clock: Arc<Clock>, idle: Arc<Idle>) -> Self {
        Self {
            sizes: Sizes::new(scenario.seed, &scenario.source),
            head: None,
            read: 0,
            total: scenario.source.total,
            ready_s: 0.0,
            clock,
            idle,
        }
    }

    fn exhausted(&self) -> bool {
        self.total.is_some_and(|total| self.read >= total)
    }
}

impl Source for SyntheticSource {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        if self.exhausted() {
            self.idle.close();
            return None;
        }
        let deliverable_s = self.idle.begin_read(self.clock.now_s())?;
        let take_s = deliverable_s.max(self.ready_s);
        if !self.clock.sleep_until(take_s, || self.idle.is_closed()) {
            return None;
        }
        let bytes = match self.head.take() {
            Some(bytes) => bytes,
            None => self.sizes.next_size(),
        };
        let record = Record::new(self.read, bytes);
        self.read += 1;
        self.ready_s = take_s + 1.0 / self.clock.source_rate(take_s);
        self.idle.end_read(take_s);
        Some(record)
    }

    /// The next record's size, known before it is made: the runtime waits for room
    /// in the budget before the bytes exist, as the model admits them.
    fn next_weight(&mut self) -> Option<u64> {
        if self.exhausted() {
            return None;
        }
        Some(*self.head.get_or_insert_with(|| self.sizes.next_size()))
    }

    fn idle_timeout(&self) -> Option<Duration> {
        self.idle.timeout_s.map(Duration::from_secs_f64)
    }
}
