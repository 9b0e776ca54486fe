//! Stages: a queue, a pool of workers, and what each worker does with a record.
//!
//! [`Stage`] is generic over a [`Step`] (a transform or the sink) and holds everything
//! the control thread turns: the pool size, the queue capacity, the batch size, the
//! concurrency and rate limits. The control thread sees stages only through the
//! object-safe [`StageControl`], so it need not know the records' types.

mod call;
mod pool;
pub(crate) mod resource;
pub(crate) mod sink;
pub(crate) mod transform;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use brigade_controller::StageRole;
use parking_lot::Mutex;

use crate::budget::Location;
use crate::clock::{self, Instant};
use crate::context::Shared;
use crate::ledger::Envelope;
use crate::limits::Limits;
use crate::metrics::{Figures, StageRollup, WindowSlot, FLUSH_AFTER, FLUSH_RECORDS};
use crate::queue::{Pop, Queue};

pub(crate) use pool::Pool;
use resource::OpenFailures;

/// How long an idle worker waits for input before it checks whether to retire.
const POLL: Duration = Duration::from_millis(20);

/// Which lane a record travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    /// The parallel brigade: queues and pools.
    Parallel,
    /// The serial lane: one record at a time through every stage.
    Serial,
}

impl Lane {
    /// Where a record's bytes are held at stage `index`, and where its outputs go.
    pub(crate) fn locations(self, index: usize) -> (Location, Location) {
        match self {
            Lane::Parallel => (Location::Stage(index), Location::Stage(index + 1)),
            Lane::Serial => (Location::Serial, Location::Serial),
        }
    }
}

/// What a worker does with the records it takes.
pub(crate) trait Step: Send + Sync + 'static {
    /// The records the stage takes.
    type In: Send + 'static;
    /// What a worker holds for its life: its resource (`()` for most stages) and
    /// the buffers it reuses between calls. Opened on the worker's own thread, so it
    /// need not be `Send`; dropping it closes the resource.
    type Scratch;

    /// Opens a joining worker's scratch: `None` if its resource failed to open (the
    /// failure is counted in [`Step::open_failures`]).
    fn open(&self) -> Option<Self::Scratch>;

    /// The resource failures since the control thread last took them.
    fn open_failures(&self) -> &OpenFailures;

    /// What the pipeline shares (the retry policy, the abandon flag).
    fn shared(&self) -> &Shared;

    /// Processes a batch taken from the queue (one record but for batching sinks),
    /// leaving `batch` empty. Returns the last instant it read (the end of its last
    /// call or wait), which the worker takes as the batch's end.
    fn run(
        &self,
        batch: &mut Vec<Envelope<Self::In>>,
        start: Instant,
        figures: &mut Figures,
        scratch: &mut Self::Scratch,
    ) -> Instant;

    /// Called once, by the last worker out, after the input closed and drained.
    fn close_output(&self);
}

/// A stage as the control thread sees it.
pub(crate) trait StageControl: Send + Sync {
    fn name(&self) -> &str;
    fn role(&self) -> StageRole;
    fn pool(&self) -> &Pool;
    fn queue_len(&self) -> usize;
    fn queue_capacity(&self) -> usize;
    fn set_queue_capacity(&self, capacity: usize);
    fn batch_size(&self) -> usize;
    fn set_batch_size(&self, size: usize);
    fn limits(&self) -> &Limits;
    /// Sets the pool's target (clamped) and starts workers if it grew; returns the
    /// target set, or why a worker could not start (the target is then the workers
    /// running).
    fn set_workers(self: Arc<Self>, workers: usize) -> std::io::Result<usize>;
    /// Drains every worker's window into `rollup`, counting the calls in progress up
    /// to `now`, the end of the window.
    fn collect(&self, rollup: &mut StageRollup, now: Instant);
    /// Closes the input queue: the workers finish what it holds and leave.
    fn close_input(&self);
    /// The workers' failures to open their resource since the last call, and the
    /// last one's message.
    fn take_open_failures(&self) -> (u64, Option<String>);
}

/// A stage: input queue, worker pool, limits, and the step its workers run.
pub(crate) struct Stage<S: Step> {
    name: String,
    role: StageRole,
    input: Arc<Queue<Envelope<S::In>>>,
    step: S,
    pool: Pool,
    limits: Limits,
    batch_size: AtomicUsize,
    windows: Mutex<Vec<WindowSlot>>,
}

impl<S: Step> Stage<S> {
    pub(crate) fn new(
        name: String,
        role: StageRole,
        input: Arc<Queue<Envelope<S::In>>>,
        step: S,
        pool: Pool,
        batch_size: usize,
    ) -> Self {
        Self {
            name,
            role,
            input,
            step,
            pool,
            limits: Limits::new(),
            batch_size: AtomicUsize::new(batch_size.max(1)),
            windows: Mutex::new(Vec::new()),
        }
    }

    /// A metrics window for the serial lane's calls of this stage, rolled up with the
    /// workers' windows for as long as the pipeline runs.
    pub(crate) fn serial_window(&self) -> WindowSlot {
        let slot = WindowSlot::default();
        self.windows.lock().push(slot.clone());
        slot
    }

    fn spawn(self: &Arc<Self>, id: usize) -> std::io::Result<crate::sync::JoinHandle<()>> {
        let slot = WindowSlot::default();
        let stage = self.clone();
        let worker_slot = slot.clone();
        let handle = crate::sync::Builder::new()
            .name(format!("brigade:{}#{id}", self.name))
            .spawn(move || stage.work(worker_slot))?;
        self.windows.lock().push(slot);
        Ok(handle)
    }

    /// A worker's life: take records, process them, record figures, until the input
    /// closes or the pool shrinks.
    ///
    /// The clock is read once per batch, by the step, when its call ends. A batch
    /// taken without waiting has waited for nothing and starts where the previous one
    /// ended (so the worker's own work between two calls counts as busy); one the
    /// worker had to wait for has waited since the previous batch ended, until the
    /// clock read when it arrived. The figures go to the worker's window in flushes
    /// (see [`crate::metrics`]).
    fn work(&self, slot: WindowSlot) {
        let mut scratch = match self.join() {
            Ok(scratch) => scratch,
            Err(closed) => {
                slot.lock().retired = true;
                if closed && self.pool.leave_on_close() {
                    self.step.close_output();
                }
                return;
            }
        };
        let mut batch = Vec::new();
        let mut figures = Figures {
            clock: Some(slot.clone()),
            ..Figures::default()
        };
        // Waiting began at `waiting_since`; wait time before `accounted` is already in
        // the figures.
        let mut waiting_since = Instant::now();
        let mut accounted = waiting_since;
        let mut flushed = waiting_since;
        // Set when a poll found the queue empty: the next record has waited.
        let mut idle = false;
        let closed = loop {
            if self.pool.should_retire() {
                break false;
            }
            let (first, waited) = match self.input.try_pop() {
                Some(envelope) => (envelope, idle),
                None => {
                    slot.lock().add(&mut figures);
                    match self.input.pop(POLL) {
                        Pop::Item(envelope) => (envelope, true),
                        Pop::Empty => {
                            let now = Instant::now();
                            slot.lock().counts.wait_in_ns += (now - accounted).as_nanos() as u64;
                            accounted = now;
                            idle = true;
                            continue;
                        }
                        Pop::Closed => break true,
                    }
                }
            };
            idle = false;
            let start = if waited {
                let now = clock::now();
                figures.counts.wait_in_ns += (now - accounted).as_nanos() as u64;
                figures
                    .wait_in_us
                    .push((now - waiting_since).as_micros() as u64);
                // The figures were flushed before the wait.
                flushed = now;
                now
            } else {
                figures.wait_in_us.push(0);
                accounted
            };
            batch.push(first);
            let most = self.batch_size.load(SeqCst);
            while batch.len() < most {
                match self.input.try_pop() {
                    Some(envelope) => batch.push(envelope),
                    None => break,
                }
            }
            let records = batch.len();
            for envelope in &batch {
                figures.take_in(envelope.weight);
            }
            // Time held by a concurrency or rate limit is blocked time, not work.
            let entry = self.limits.enter(records, figures.blocked_clock());
            let start = if entry.waited.is_zero() {
                start
            } else {
                figures.counts.wait_out_ns += entry.waited.as_nanos() as u64;
                start + entry.waited
            };
            let end = self.step.run(&mut batch, start, &mut figures, &mut scratch);
            self.limits.exit(entry);
            figures.end_call();
            if figures.records() >= FLUSH_RECORDS || end - flushed >= FLUSH_AFTER {
                slot.lock().add(&mut figures);
                flushed = end;
            }
            waiting_since = end;
            accounted = end;
        };
        let mut window = slot.lock();
        window.add(&mut figures);
        window.counts.wait_in_ns += accounted.elapsed().as_nanos() as u64;
        window.retired = true;
        drop(window);
        if closed && self.pool.leave_on_close() {
            self.step.close_output();
        }
    }

    /// Opens a joining worker's resource, on its own thread, before it takes a
    /// record. When the open fails and other workers are live, this one retires and
    /// the pool's target drops by one, so the stage stays at the size that works.
    /// Alone, it retries with the pipeline's backoff (capped at its longest) until it
    /// opens: the stage stalls and loses nothing. It leaves without a resource when
    /// its input closes and drains (`Err(true)`: it may be the last out), when the
    /// pool shrinks, or when the drain is abandoned (`Err(false)`).
    fn join(&self) -> Result<S::Scratch, bool> {
        let mut attempt = 0;
        loop {
            if let Some(scratch) = self.step.open() {
                return Ok(scratch);
            }
            if self.pool.give_up_slot() {
                return Err(false);
            }
            attempt += 1;
            let leave = std::cell::Cell::new(None);
            let keep_trying = resource::back_off(self.step.shared(), attempt, || {
                if self.input.is_closed_and_empty() {
                    leave.set(Some(true));
                } else if self.pool.should_retire() {
                    leave.set(Some(false));
                }
                leave.get().is_some()
            });
            if !keep_trying {
                return Err(leave.get().unwrap_or(false));
            }
        }
    }
}

impl<S: Step> StageControl for Stage<S> {
    fn name(&self) -> &str {
        &self.name
    }

    fn role(&self) -> StageRole {
        self.role
    }

    fn pool(&self) -> &Pool {
        &self.pool
    }

    fn queue_len(&self) -> usize {
        self.input.len()
    }

    fn queue_capacity(&self) -> usize {
        self.input.capacity()
    }

    fn set_queue_capacity(&self, capacity: usize) {
        self.input.set_capacity(capacity);
    }

    fn batch_size(&self) -> usize {
        self.batch_size.load(SeqCst)
    }

    fn set_batch_size(&self, size: usize) {
        self.batch_size.store(size.max(1), SeqCst);
    }

    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn set_workers(self: Arc<Self>, workers: usize) -> std::io::Result<usize> {
        let set = self.pool.set_target(workers);
        self.pool.fill(|id| self.spawn(id))?;
        Ok(set)
    }

    fn collect(&self, rollup: &mut StageRollup, now: Instant) {
        rollup.collect(&mut self.windows.lock(), now);
    }

    fn close_input(&self) {
        self.input.close();
    }

    fn take_open_failures(&self) -> (u64, Option<String>) {
        self.step.open_failures().take()
    }
}
