//! What every part of a running pipeline shares: the budget, the ledger, the retry
//! policy, the dead-letter output, the serial threshold, the stop flag and the run's
//! failures.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Instant;

use parking_lot::Mutex;

use crate::budget::Budget;
use crate::failure::{panic_message, DeadLetter, DeadLetterRefused, RetryPolicy};
use crate::ledger::Ledger;
use crate::report::RunFailure;

/// The user's dead-letter output: it takes a letter or hands it back refused.
pub(crate) type DeadLetterHandler =
    Box<dyn FnMut(DeadLetter) -> Result<(), DeadLetterRefused> + Send>;

/// Where dead letters go.
pub(crate) enum DeadLetters {
    /// Kept for the report.
    Keep(Vec<DeadLetter>),
    /// Handed to the user's function.
    Call(DeadLetterHandler),
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
    /// Set when a drain passes its deadline: the source thread stops waiting for the
    /// records in flight.
    pub abandon: AtomicBool,
    pub started: Instant,
    /// The same instant on the per-record clock.
    pub started_tick: crate::clock::Instant,
    /// What went wrong so far, for the report.
    failures: Mutex<Vec<RunFailure>>,
    /// The source is never acknowledged past this position: the first record whose
    /// dead letter could not be handed over, so that a rerun reads it again.
    ack_ceiling: AtomicU64,
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
            abandon: AtomicBool::new(false),
            started: Instant::now(),
            started_tick: crate::clock::Instant::now(),
            failures: Mutex::new(Vec::new()),
            ack_ceiling: AtomicU64::new(u64::MAX),
        }
    }

    /// Sends a record to the dead-letter output. The caller settles the budget and
    /// the ledger afterwards.
    ///
    /// A handler that panics or refuses the letter loses nothing: admission stops,
    /// the run reports it, this letter (only its facts after a panic, whose call
    /// took the record) and every later letter are kept for the report instead, and
    /// the source is never acknowledged past this letter's position, so a rerun
    /// reads its record again.
    pub(crate) fn dead_letter(&self, letter: DeadLetter) {
        let mut output = self.dead_letters.lock();
        let DeadLetters::Call(handler) = &mut *output else {
            let DeadLetters::Keep(kept) = &mut *output else {
                unreachable!()
            };
            kept.push(letter);
            return;
        };
        let copy = letter.without_record();
        let position = copy.position;
        let stage = letter.stage.clone();
        let (kept, failure) = match catch_unwind(AssertUnwindSafe(|| handler(letter))) {
            Ok(Ok(())) => return,
            Ok(Err(DeadLetterRefused { letter, error })) => {
                let failure = RunFailure::DeadLetterOutputRefused {
                    message: error.to_string(),
                    stage,
                    position,
                };
                (letter, failure)
            }
            Err(payload) => {
                let failure = RunFailure::DeadLetterHandlerPanicked {
                    message: panic_message(&*payload),
                    stage,
                };
                (copy, failure)
            }
        };
        self.ack_ceiling.fetch_min(position, SeqCst);
        *output = DeadLetters::Keep(vec![kept]);
        drop(output);
        self.stop.store(true, SeqCst);
        self.fail(failure);
    }

    /// Keeps the source from being acknowledged past `position`.
    pub(crate) fn cap_acks(&self, position: u64) {
        self.ack_ceiling.fetch_min(position, SeqCst);
    }

    /// The highest position the source may be acknowledged at.
    pub(crate) fn ack_ceiling(&self) -> u64 {
        self.ack_ceiling.load(SeqCst)
    }

    /// Records something that went wrong, for the report.
    pub(crate) fn fail(&self, failure: RunFailure) {
        self.failures.lock().push(failure);
    }

    /// What went wrong so far.
    pub(crate) fn take_failures(&self) -> Vec<RunFailure> {
        std::mem::take(&mut self.failures.lock())
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
