//! What every part of a running pipeline shares: the budget, the ledger, the retry
//! policy, the dead-letter output, the serial threshold and the stop flag.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Instant;

use parking_lot::Mutex;

use crate::budget::Budget;
use crate::failure::{DeadLetter, RetryPolicy};
use crate::ledger::Ledger;

/// Where dead letters go.
pub(crate) enum DeadLetters {
    /// Kept for the report.
    Keep(Vec<DeadLetter>),
    /// Handed to the user's function.
    Call(Box<dyn FnMut(DeadLetter) + Send>),
}

/// State shared by the source thread, the workers, the serial lane and the control
/// thread.
pub(crate) struct Shared {
    pub budget: Budget,
    pub ledger: Ledger,
    pub retry: RetryPolicy,
    dead_letters: Mutex<DeadLetters>,
    /// Records weighing at least this go to the serial lane; `u64::MAX` = lane off.
    serial_threshold: AtomicU64,
    /// Set by `shutdown`: the source stops admitting.
    pub stop: AtomicBool,
    pub started: Instant,
    /// The same instant on the per-record clock.
    pub started_tick: crate::clock::Instant,
}

impl Shared {
    pub(crate) fn new(
        budget: Budget,
        ledger: Ledger,
        retry: RetryPolicy,
        dead_letters: DeadLetters,
        serial_threshold: Option<u64>,
    ) -> Self {
        Self {
            budget,
            ledger,
            retry,
            dead_letters: Mutex::new(dead_letters),
            serial_threshold: AtomicU64::new(serial_threshold.unwrap_or(u64::MAX)),
            stop: AtomicBool::new(false),
            started: Instant::now(),
            started_tick: crate::clock::Instant::now(),
        }
    }

    /// Sends a record to the dead-letter output. The caller has already settled the
    /// budget and the ledger.
    pub(crate) fn dead_letter(&self, letter: DeadLetter) {
        match &mut *self.dead_letters.lock() {
            DeadLetters::Keep(kept) => kept.push(letter),
            DeadLetters::Call(handler) => handler(letter),
        }
    }

    /// The dead letters kept so far (none if a handler takes them).
    pub(crate) fn take_dead_letters(&self) -> Vec<DeadLetter> {
        match &mut *self.dead_letters.lock() {
            DeadLetters::Keep(kept) => std::mem::take(kept),
            DeadLetters::Call(_) => Vec::new(),
        }
    }

    /// The serial-lane threshold in force.
    pub(crate) fn serial_threshold(&self) -> Option<u64> {
        Some(self.serial_threshold.load(SeqCst)).filter(|&t| t != u64::MAX)
    }

    /// Changes the serial-lane threshold.
    pub(crate) fn set_serial_threshold(&self, bytes: Option<u64>) {
        self.serial_threshold
            .store(bytes.unwrap_or(u64::MAX), SeqCst);
    }

    /// Seconds since the pipeline started.
    pub(crate) fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}
