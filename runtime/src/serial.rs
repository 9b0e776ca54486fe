//! The serial lane: records at or above the size threshold skip the parallel brigade
//! and go through the same stage functions one at a time, alone in their lane.
//!
//! The source admits such a record only when the budget can hold it, then hands it
//! over a rendezvous channel, so at most one giant is in the lane and the next waits at
//! the source. With N parallel workers and deep queues, N giants can no longer arrive
//! together.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use parking_lot::Mutex;

use crate::clock::Instant;
use crate::ledger::Envelope;
use crate::metrics::{Figures, Slot};

/// Runs one record through the rest of the pipeline in the serial lane, adding the
/// time spent in stage functions to the lane's figures (and starting and ending the
/// lane's call clock around each call).
pub(crate) type SerialFn<T> = Box<dyn FnMut(Envelope<T>, &mut Figures)>;

/// Makes the lane's [`SerialFn`] on the lane's own thread, so that it may hold the
/// resources the lane opens for its stages, which need not be `Send`.
pub(crate) type SerialMake<T> = Box<dyn FnOnce() -> SerialFn<T> + Send>;

/// The lane's figures since the last tick.
#[derive(Default, Clone, Copy)]
pub(crate) struct SerialWindow {
    pub records: u64,
    pub bytes: u64,
    pub busy_ns: u64,
}

/// What the control thread reads of the lane.
#[derive(Default)]
pub(crate) struct SerialLane {
    /// Weight of the record in the lane (0 = idle).
    pub current_bytes: AtomicU64,
    /// Weight of a record read and waiting at the source for the lane (0 = none).
    pub waiting_bytes: AtomicU64,
    pub window: Mutex<SerialWindow>,
    /// The stage call the lane is in: a giant's call can last many windows, and the
    /// control thread counts it as busy in each (its `call` clock; the window is
    /// unused).
    clock: Arc<Slot>,
    /// When the control thread last took the window.
    taken_at: Mutex<Option<Instant>>,
}

impl SerialLane {
    /// Starts the lane's thread: it runs every record it receives through the
    /// function `make` makes there.
    pub(crate) fn start<T: Send + 'static>(
        self: &Arc<Self>,
        records: Receiver<Envelope<T>>,
        make: SerialMake<T>,
    ) -> std::io::Result<JoinHandle<()>> {
        let lane = self.clone();
        std::thread::Builder::new()
            .name("brigade:serial".into())
            .spawn(move || {
                let mut run = make();
                let lane_figures = || Figures {
                    clock: Some(lane.clock.clone()),
                    ..Figures::default()
                };
                let mut figures = lane_figures();
                for envelope in records {
                    let weight = envelope.weight;
                    lane.current_bytes.store(weight, SeqCst);
                    run(envelope, &mut figures);
                    lane.current_bytes.store(0, SeqCst);
                    let mut window = lane.window.lock();
                    window.records += 1;
                    window.bytes += weight;
                    // What the control thread counted while the calls ran is already
                    // in an earlier window.
                    let uncounted = figures.counts.busy_ns as i64 - figures.counted_busy_ns;
                    window.busy_ns += uncounted.max(0) as u64;
                    figures = lane_figures();
                }
            })
    }

    /// The figures since the last call, at `now`: with the time so far of a call in
    /// progress counted as busy.
    pub(crate) fn take_window(&self, now: Instant) -> SerialWindow {
        let since = self.taken_at.lock().replace(now);
        let running = self.clock.call.look(since, now).map_or(0, |(ns, _)| ns);
        let mut window = std::mem::take(&mut *self.window.lock());
        window.busy_ns += running;
        window
    }
}
