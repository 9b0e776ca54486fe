//! A stage's worker pool: a target size the control thread sets, and workers that
//! join and retire between records.
//!
//! Growing spawns threads at once. Shrinking lowers the target; a worker notices
//! between two records (or within one poll interval when idle) and retires. The last
//! worker to leave after the input closed marks the stage finished; no worker is
//! spawned after that.
//!
//! A retired worker's thread keeps its stack mapped until it is joined, so the pool
//! joins the threads that have ended whenever it grows and whenever the control thread
//! asks ([`Pool::reap`], once a tick): a pool resized back and forth for weeks holds the
//! stacks of its live workers and of at most one tick's retirees, not of every worker
//! it ever had.

use std::io;
use std::sync::atomic::Ordering::SeqCst;

use crate::sync::{AtomicUsize, JoinHandle, Mutex};

struct PoolState {
    handles: Vec<JoinHandle<()>>,
    finished: bool,
    spawned: usize,
}

impl PoolState {
    /// Joins the threads that have ended; they are past their last use of the stage.
    fn reap(&mut self) {
        let mut index = 0;
        while index < self.handles.len() {
            if self.handles[index].is_finished() {
                join(self.handles.swap_remove(index));
            } else {
                index += 1;
            }
        }
    }
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
    /// finished. `spawn` gets a worker number and starts its thread. If the system
    /// refuses a thread, the target drops to the workers running and the error is
    /// returned: the pool keeps working at the size it has.
    pub(crate) fn fill(
        &self,
        mut spawn: impl FnMut(usize) -> io::Result<JoinHandle<()>>,
    ) -> io::Result<()> {
        let mut state = self.state.lock();
        state.reap();
        if state.finished {
            return Ok(());
        }
        while self.live.load(SeqCst) < self.target.load(SeqCst) {
            let id = state.spawned;
            self.live.fetch_add(1, SeqCst);
            match spawn(id) {
                Ok(handle) => {
                    state.spawned += 1;
                    state.handles.push(handle);
                }
                Err(error) => {
                    let live = self.live.fetch_sub(1, SeqCst) - 1;
                    self.target.store(live, SeqCst);
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Joins the workers that have retired since the last call.
    pub(crate) fn reap(&self) {
        self.state.lock().reap();
    }

    /// Asked by a worker between records: true means retire now (the live count has
    /// already been lowered for it).
    #[inline]
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

    /// Asked by a joining worker whose resource failed to open: true means retire
    /// now, because other workers are live, and the target drops to the workers
    /// left (below the minimum if need be: the stage cannot use more workers than
    /// can open). False for the only live worker, which must keep trying.
    pub(crate) fn give_up_slot(&self) -> bool {
        let _state = self.state.lock();
        if self.live.load(SeqCst) <= 1 {
            return false;
        }
        let left = self.live.fetch_sub(1, SeqCst) - 1;
        let target = self.target.load(SeqCst);
        self.target.store(target.min(left), SeqCst);
        true
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

    /// Threads not yet joined: the live workers and those that ended since the last
    /// reap.
    #[cfg(test)]
    fn unjoined(&self) -> usize {
        self.state.lock().handles.len()
    }

    /// Waits for every worker thread to end. Call after the stage finished.
    pub(crate) fn join(&self) {
        loop {
            let handles = std::mem::take(&mut self.state.lock().handles);
            if handles.is_empty() {
                return;
            }
            handles.into_iter().for_each(join);
        }
    }
}

fn join(handle: JoinHandle<()>) {
    // Workers catch panics in user code; a panic here is a runtime bug.
    handle.join().expect("a brigade worker thread panicked");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;

    /// A worker that retires as soon as the pool asks it to, polling as a stage's
    /// worker does between records.
    fn worker(pool: Arc<Pool>) -> io::Result<JoinHandle<()>> {
        crate::sync::Builder::new().spawn(move || {
            while !pool.should_retire() {
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    }

    fn settle(pool: &Pool, live: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while pool.live() != live {
            assert!(Instant::now() < deadline, "the pool never reached {live}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn retired_workers_are_joined_not_kept() {
        let pool = Arc::new(Pool::new(1, 16, 1));
        for _ in 0..20 {
            pool.set_target(16);
            pool.fill(|_| worker(pool.clone())).unwrap();
            pool.set_target(1);
            settle(&pool, 1);
        }
        // Every retired thread ends right after lowering the live count; wait for the
        // last ones to end, then one reap joins them all.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            pool.reap();
            if pool.unjoined() == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "{} unjoined", pool.unjoined());
            std::thread::sleep(Duration::from_millis(1));
        }
        // 20 × 15 workers retired; the pool holds only its last live worker.
        assert_eq!(pool.live(), 1);
        pool.target.store(0, SeqCst);
        settle(&pool, 0);
        pool.join();
    }

    #[test]
    fn workers_that_cannot_open_give_up_their_slot_but_the_last_one_stays() {
        let pool = Pool::new(2, 8, 4);
        // Four workers counted live, as `fill` counts them before they start.
        pool.live.store(4, SeqCst);
        assert!(pool.give_up_slot());
        assert_eq!((pool.live(), pool.target()), (3, 3));
        assert!(pool.give_up_slot());
        assert!(pool.give_up_slot());
        // Below the minimum: the stage cannot use workers that cannot open.
        assert_eq!((pool.live(), pool.target()), (1, 1));
        assert!(!pool.give_up_slot(), "the only worker keeps trying");
        assert_eq!((pool.live(), pool.target()), (1, 1));
    }

    #[test]
    fn a_refused_thread_lowers_the_target_to_the_workers_running() {
        let pool = Arc::new(Pool::new(1, 8, 1));
        pool.set_target(4);
        let mut started = 0;
        let error = pool
            .fill(|_| {
                if started == 2 {
                    return Err(io::Error::new(io::ErrorKind::WouldBlock, "no more threads"));
                }
                started += 1;
                worker(pool.clone())
            })
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::WouldBlock);
        assert_eq!((pool.live(), pool.target()), (2, 2));
        pool.target.store(0, SeqCst);
        settle(&pool, 0);
        pool.join();
    }
}

/// Model checks (run with `--cfg loom`; see the crate docs).
#[cfg(all(test, loom))]
mod loom_tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::queue::{Pop, Queue};
    use crate::sync::{model, Builder};

    /// A stage's worker as far as the pool sees it: between records it asks whether
    /// to retire, it waits for records a poll at a time, and when its input is closed
    /// and drained it leaves, counting itself in `last` if it was the last.
    fn worker(
        pool: &Arc<Pool>,
        input: &Arc<Queue<u32>>,
        last: &Arc<AtomicUsize>,
    ) -> io::Result<JoinHandle<()>> {
        let (pool, input, last) = (pool.clone(), input.clone(), last.clone());
        Builder::new().spawn(move || {
            let closed = loop {
                if pool.should_retire() {
                    break false;
                }
                match input.pop(Duration::from_millis(10)) {
                    Pop::Item(_) | Pop::Empty => {}
                    Pop::Closed => break true,
                }
            };
            assert!(pool.live() <= pool.max, "live count wrapped below zero");
            if closed && pool.leave_on_close() {
                last.fetch_add(1, SeqCst);
            }
        })
    }

    /// A pool of two shrunk to one while its input gets a record and closes: one
    /// worker retires at most, the other is the last out, exactly once, and a fill
    /// after the stage finished starts nobody.
    #[test]
    fn loom_retire_and_close() {
        model("pool: retire and close", || {
            let pool = Arc::new(Pool::new(1, 2, 2));
            let input = Arc::new(Queue::new(4));
            let last = Arc::new(AtomicUsize::new(0));
            pool.fill(|_| worker(&pool, &input, &last)).unwrap();
            pool.set_target(1);
            input.push(1, None);
            input.close();
            pool.join();
            assert_eq!(last.load(SeqCst), 1, "the last worker out is exactly one");
            assert_eq!(pool.live(), 0);
            pool.set_target(2);
            pool.fill(|_| worker(&pool, &input, &last)).unwrap();
            assert_eq!(
                pool.unjoined(),
                0,
                "a worker started after the stage finished"
            );
        });
    }

    /// The control thread shrinks a pool of two to one and grows it back while the
    /// input gets a record and closes. The live count never passes the target once
    /// a fill returns, nor the maximum, nor drops below zero; exactly one worker is
    /// the last out after the close, and no worker is left running.
    #[test]
    fn loom_grow_retire_and_close() {
        model("pool: grow, retire and close", || {
            let pool = Arc::new(Pool::new(1, 2, 2));
            let input = Arc::new(Queue::new(4));
            let last = Arc::new(AtomicUsize::new(0));
            pool.fill(|_| worker(&pool, &input, &last)).unwrap();
            pool.set_target(1);
            let closer = {
                let input = input.clone();
                loom::thread::spawn(move || {
                    input.push(1, None);
                    input.close();
                })
            };
            pool.set_target(2);
            pool.fill(|_| worker(&pool, &input, &last)).unwrap();
            assert!(pool.live() <= pool.target(), "more workers than the target");
            closer.join().unwrap();
            pool.join();
            assert_eq!(last.load(SeqCst), 1, "the last worker out is exactly one");
            assert_eq!(pool.live(), 0);
        });
    }
}
