//! A stage's worker pool: a target size the control thread sets, and workers that
//! join and retire between records.
//!
//! Growing spawns threads at once. Shrinking lowers the target; a worker notices
//! between two records (or within one poll interval when idle) and retires. The last
//! worker to leave after the input closed marks the stage finished; no worker is
//! spawned after that.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::thread::JoinHandle;

use parking_lot::Mutex;

struct PoolState {
    handles: Vec<JoinHandle<()>>,
    finished: bool,
    spawned: usize,
}

/// Live and target worker counts and the workers' handles.
pub(crate) struct Pool {
    live: AtomicUsize,
    target: AtomicUsize,
    pub min: usize,
    pub max: usize,
    state: Mutex<PoolState>,
}

impl Pool {
    /// An empty pool that will keep between `min` and `max` workers.
    pub(crate) fn new(min: usize, max: usize, initial: usize) -> Self {
        Self {
            live: AtomicUsize::new(0),
            target: AtomicUsize::new(initial.clamp(min, max)),
            min,
            max,
            state: Mutex::new(PoolState {
                handles: Vec::new(),
                finished: false,
                spawned: 0,
            }),
        }
    }

    /// Workers running now.
    pub(crate) fn live(&self) -> usize {
        self.live.load(SeqCst)
    }

    /// The size the pool converges to.
    pub(crate) fn target(&self) -> usize {
        self.target.load(SeqCst)
    }

    /// Sets the target, clamped to min..=max; returns the value set.
    pub(crate) fn set_target(&self, workers: usize) -> usize {
        let workers = workers.clamp(self.min, self.max);
        self.target.store(workers, SeqCst);
        workers
    }

    /// Spawns workers until the live count reaches the target, unless the stage has
    /// finished. `spawn` gets a worker number and starts its thread.
    pub(crate) fn fill(&self, mut spawn: impl FnMut(usize) -> JoinHandle<()>) {
        let mut state = self.state.lock();
        if state.finished {
            return;
        }
        while self.live.load(SeqCst) < self.target.load(SeqCst) {
            self.live.fetch_add(1, SeqCst);
            let id = state.spawned;
            state.spawned += 1;
            state.handles.push(spawn(id));
        }
    }

    /// Asked by a worker between records: true means retire now (the live count has
    /// already been lowered for it).
    pub(crate) fn should_retire(&self) -> bool {
        if self.live.load(SeqCst) <= self.target.load(SeqCst) {
            return false;
        }
        let _state = self.state.lock();
        if self.live.load(SeqCst) > self.target.load(SeqCst) {
            self.live.fetch_sub(1, SeqCst);
            true
        } else {
            false
        }
    }

    /// A worker leaves because its input is closed and drained. Returns true for the
    /// last one, which must close the stage's output.
    pub(crate) fn leave_on_close(&self) -> bool {
        let mut state = self.state.lock();
        if self.live.fetch_sub(1, SeqCst) == 1 && !state.finished {
            state.finished = true;
            true
        } else {
            false
        }
    }

    /// Waits for every worker thread to end. Call after the stage finished.
    pub(crate) fn join(&self) {
        loop {
            let handles = std::mem::take(&mut self.state.lock().handles);
            if handles.is_empty() {
                return;
            }
            for handle in handles {
                // Workers catch panics in user code; a panic here is a runtime bug.
                handle.join().expect("a brigade worker thread panicked");
            }
        }
    }
}
