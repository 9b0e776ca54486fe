//! A window onto a running pipeline for viewers (the dashboard, the daemon, tests):
//! recent snapshots, every decision with its reason, a feed of ticks, and the
//! operator's overrides going the other way.

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
    decisions: Mutex<Vec<DecisionRecord>>,
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
    /// A monitor keeping the last `keep` snapshots; overrides go to `overrides`.
    pub(crate) fn new(keep: usize, overrides: Sender<Override>) -> Self {
        Self {
            inner: Arc::new(Inner {
                history: Mutex::new(VecDeque::with_capacity(keep)),
                keep,
                decisions: Mutex::new(Vec::new()),
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

    /// Every decision so far, oldest first.
    pub fn decisions(&self) -> Vec<DecisionRecord> {
        self.inner.decisions.lock().clone()
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
        self.inner
            .decisions
            .lock()
            .extend(decisions.iter().cloned());
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
