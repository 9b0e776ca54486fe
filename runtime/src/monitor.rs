//! A window onto a running pipeline for viewers (the dashboard, the daemon, tests):
//! recent snapshots, recent decisions with their reasons, a feed of ticks, and the
//! operator's overrides going the other way. Everything it keeps is bounded, so a
//! run of any length holds the same memory: the last
//! [`history`](crate::Builder::history) snapshots and the last
//! [`decision_log`](crate::Builder::decision_log) decisions.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use brigade_controller::{DecisionRecord, Override, Snapshot};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

/// One closed window: its snapshot and the decisions taken after it.
#[derive(Clone, Debug)]
pub struct Tick {
    /// What was measured.
    pub snapshot: Arc<Snapshot>,
    /// What the controller (and operator) changed after it, with outcomes.
    pub decisions: Vec<DecisionRecord>,
}

struct Inner {
    history: Mutex<VecDeque<Arc<Snapshot>>>,
    keep: usize,
    decisions: Mutex<VecDeque<DecisionRecord>>,
    keep_decisions: usize,
    subscribers: Mutex<Vec<Sender<Tick>>>,
    closed: AtomicBool,
    overrides: Sender<Override>,
}

/// A cloneable handle on a running pipeline's measurements and decisions.
///
/// ```no_run
/// # fn demo(monitor: brigade_runtime::Monitor) {
/// let ticks = monitor.subscribe();
/// for tick in ticks.iter().take(5) {
///     println!("{:.0} rec/s", tick.snapshot.global.source.rate);
///     for d in &tick.decisions {
///         println!("  {:?}: {}", d.decision.action, d.decision.reason);
///     }
/// }
/// # }
/// ```
#[derive(Clone)]
pub struct Monitor {
    inner: Arc<Inner>,
}

impl Monitor {
    /// A monitor keeping the last `keep` snapshots and the last `keep_decisions`
    /// decisions; overrides go to `overrides`.
    pub(crate) fn new(keep: usize, keep_decisions: usize, overrides: Sender<Override>) -> Self {
        Self {
            inner: Arc::new(Inner {
                history: Mutex::new(VecDeque::with_capacity(keep)),
                keep,
                decisions: Mutex::new(VecDeque::new()),
                keep_decisions,
                subscribers: Mutex::new(Vec::new()),
                closed: AtomicBool::new(false),
                overrides,
            }),
        }
    }

    /// The most recent snapshot, if a tick has passed.
    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        self.inner.history.lock().back().cloned()
    }

    /// The recent snapshots, oldest first.
    pub fn history(&self) -> Vec<Arc<Snapshot>> {
        self.inner.history.lock().iter().cloned().collect()
    }

    /// The recent decisions, oldest first: the last
    /// [`decision_log`](crate::Builder::decision_log) of them (1000 by default). The
    /// [`Report`](crate::Report) counts them all.
    pub fn decisions(&self) -> Vec<DecisionRecord> {
        self.inner.decisions.lock().iter().cloned().collect()
    }

    /// A feed of ticks from now on; it ends after the last window of the run. A
    /// subscriber that falls 256 ticks behind misses ticks rather than slowing the
    /// pipeline.
    pub fn subscribe(&self) -> Receiver<Tick> {
        let (tx, rx) = crossbeam_channel::bounded(256);
        let mut subscribers = self.inner.subscribers.lock();
        if !self.inner.closed.load(SeqCst) {
            subscribers.push(tx);
        }
        rx
    }

    /// Applies an operator override (at once, between two samples of the control loop).
    pub fn apply(&self, change: Override) {
        // The control thread is gone once the pipeline has drained: nothing to change.
        let _ = self.inner.overrides.send(change);
    }

    /// Records a closed window and tells subscribers.
    pub(crate) fn publish(&self, snapshot: Snapshot, decisions: Vec<DecisionRecord>) {
        let snapshot = Arc::new(snapshot);
        {
            let mut history = self.inner.history.lock();
            if history.len() == self.inner.keep {
                history.pop_front();
            }
            history.push_back(snapshot.clone());
        }
        {
            let mut log = self.inner.decisions.lock();
            let keep = self.inner.keep_decisions;
            let skip = decisions.len().saturating_sub(keep);
            log.extend(decisions[skip..].iter().cloned());
            let excess = log.len().saturating_sub(keep);
            log.drain(..excess);
        }
        let tick = Tick {
            snapshot,
            decisions,
        };
        self.inner.subscribers.lock().retain(|tx| {
            !matches!(
                tx.try_send(tick.clone()),
                Err(TrySendError::Disconnected(_))
            )
        });
    }

    /// Ends every subscriber's feed: the run has drained.
    pub(crate) fn close(&self) {
        let mut subscribers = self.inner.subscribers.lock();
        self.inner.closed.store(true, SeqCst);
        subscribers.clear();
    }
}

#[cfg(test)]
mod tests {
    use brigade_controller::{Action, Decision, Outcome};

    use super::*;

    fn record(tick: u64) -> DecisionRecord {
        DecisionRecord {
            tick,
            at_s: tick as f64,
            by: "test".into(),
            decision: Decision {
                action: Action::SetWorkers {
                    stage: 0,
                    workers: 2,
                },
                reason: format!("tick {tick}"),
            },
            outcome: Outcome::Applied,
        }
    }

    fn ticks(log: &[DecisionRecord]) -> Vec<u64> {
        log.iter().map(|d| d.tick).collect()
    }

    #[test]
    fn the_decision_log_keeps_the_most_recent_within_its_bound() {
        let (tx, _rx) = crossbeam_channel::unbounded();
        let monitor = Monitor::new(2, 3, tx);
        for tick in 0..10 {
            monitor.publish(Snapshot::default(), vec![record(tick)]);
        }
        assert_eq!(ticks(&monitor.decisions()), [7, 8, 9]);
        monitor.publish(
            Snapshot::default(),
            (10..15).map(record).collect::<Vec<_>>(),
        );
        assert_eq!(ticks(&monitor.decisions()), [12, 13, 14]);
        assert_eq!(monitor.history().len(), 2);
    }

    #[test]
    fn subscribers_still_get_every_decision_of_a_tick() {
        let (tx, _rx) = crossbeam_channel::unbounded();
        let monitor = Monitor::new(1, 1, tx);
        let feed = monitor.subscribe();
        monitor.publish(Snapshot::default(), (0..4).map(record).collect());
        assert_eq!(ticks(&feed.try_recv().unwrap().decisions), [0, 1, 2, 3]);
        assert_eq!(ticks(&monitor.decisions()), [3]);
    }
}
