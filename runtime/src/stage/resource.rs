//! Per-worker resources: what a `_with` stage's worker opens when it joins the pool
//! (a connection, a process) and closes, by dropping it, when it leaves.
//!
//! An open that fails or panics is counted in the stage (the control thread reports
//! it in the Snapshot as `open_failures` and `open_error`); what the worker does then
//! is the stage's business (see `Stage::work`). Stages without a resource open `()`,
//! which cannot fail.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use parking_lot::Mutex;

use crate::context::Shared;
use crate::failure::{panic_message, BoxError};

/// Opens one worker's resource.
pub(crate) type OpenFn<R> = Box<dyn Fn() -> Result<R, BoxError> + Send + Sync>;

/// How long a worker that keeps failing to open sleeps at most before it checks
/// whether to give up (the input closed, the drain abandoned).
const CHECK: Duration = Duration::from_millis(20);

/// Open failures since the control thread last took them.
#[derive(Default)]
pub(crate) struct OpenFailures {
    count: AtomicU64,
    last: Mutex<Option<String>>,
}

impl OpenFailures {
    fn note(&self, message: String) {
        *self.last.lock() = Some(message);
        self.count.fetch_add(1, SeqCst);
    }

    /// The failures since the last call, and the last one's message.
    pub(crate) fn take(&self) -> (u64, Option<String>) {
        let last = self.last.lock().take();
        (self.count.swap(0, SeqCst), last)
    }
}

/// A stage's way to open its workers' resources, and the failures so far.
pub(crate) struct Opener<R> {
    open: OpenFn<R>,
    pub failures: OpenFailures,
}

impl Opener<()> {
    /// The opener of a stage without a resource: it never fails.
    pub(crate) fn none() -> Self {
        Self::new(Box::new(|| Ok(())))
    }
}

impl<R> Opener<R> {
    pub(crate) fn new(open: OpenFn<R>) -> Self {
        Self {
            open,
            failures: OpenFailures::default(),
        }
    }

    /// Opens once; a failure or a panic is counted and yields `None`.
    pub(crate) fn try_open(&self) -> Option<R> {
        let message = match catch_unwind(AssertUnwindSafe(|| (self.open)())) {
            Ok(Ok(resource)) => return Some(resource),
            Ok(Err(error)) => error.to_string(),
            Err(payload) => panic_message(&*payload),
        };
        self.failures.note(message);
        None
    }

    /// Opens, retrying with the pipeline's backoff (capped at its longest) until it
    /// succeeds, or `None` once the drain has been abandoned. For the serial lane,
    /// whose record waits for the resource: the pipeline stalls, it loses nothing.
    pub(crate) fn open_patiently(&self, shared: &Shared) -> Option<R> {
        let mut attempt = 0;
        loop {
            if let Some(resource) = self.try_open() {
                return Some(resource);
            }
            attempt += 1;
            if !back_off(shared, attempt, || false) {
                return None;
            }
        }
    }
}

/// Sleeps the backoff before open number `attempt + 1`, in short steps. Returns false,
/// early, once the drain has been abandoned or `give_up` says so.
pub(crate) fn back_off(shared: &Shared, attempt: u32, give_up: impl Fn() -> bool) -> bool {
    let until = std::time::Instant::now() + shared.retry.backoff(attempt);
    loop {
        if shared.abandon.load(SeqCst) || give_up() {
            return false;
        }
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(CHECK));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    #[test]
    fn failures_and_panics_are_counted_with_the_last_message() {
        let calls = AtomicU32::new(0);
        let opener: Opener<u32> = Opener::new(Box::new(move || match calls.fetch_add(1, SeqCst) {
            0 => Err("too many connections".into()),
            1 => panic!("driver bug"),
            n => Ok(n),
        }));
        assert_eq!(opener.try_open(), None);
        assert_eq!(
            opener.failures.take(),
            (1, Some("too many connections".to_owned()))
        );
        assert_eq!(opener.try_open(), None);
        let (count, message) = opener.failures.take();
        assert_eq!(count, 1);
        assert!(message.unwrap().contains("driver bug"));
        assert_eq!(opener.try_open(), Some(2));
        assert_eq!(opener.failures.take(), (0, None));
    }
}
