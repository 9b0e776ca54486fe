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

use crate::ledger::Envelope;
use crate::metrics::Figures;

/// Runs one record through the rest of the pipeline in the serial lane, adding the
/// time spent in stage functions to the lane's figures.
pub(crate) type SerialFn<T> = Arc<dyn Fn(Envelope<T>, &mut Figures) + Send + Sync>;

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
}

impl SerialLane {
    /// Starts the lane's thread: it runs every record it receives through `run`.
    pub(crate) fn start<T: Send + 'static>(
        self: &Arc<Self>,
        records: Receiver<Envelope<T>>,
        run: SerialFn<T>,
    ) -> JoinHandle<()> {
        let lane = self.clone();
        std::thread::Builder::new()
            .name("brigade:serial".into())
            .spawn(move || {
                let mut figures = Figures::default();
                for envelope in records {
                    let weight = envelope.weight;
                    lane.current_bytes.store(weight, SeqCst);
                    run(envelope, &mut figures);
                    lane.current_bytes.store(0, SeqCst);
                    let mut window = lane.window.lock();
                    window.records += 1;
                    window.bytes += weight;
                    window.busy_ns += figures.counts.busy_ns;
                    figures = Figures::default();
                }
            })
            .expect("spawning the serial lane thread")
    }

    /// The figures since the last call.
    pub(crate) fn take_window(&self) -> SerialWindow {
        std::mem::take(&mut *self.window.lock())
    }
}
