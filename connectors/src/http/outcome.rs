//! A write's outcome as the runtime's batch sink takes it: rejects dead-lettered one
//! by one, throttled items retried alone, whole-request failures retried (after
//! `Retry-After`) or dead-lettered.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use brigade_runtime::{Failure, Rejected};

use super::{HttpError, HttpWriter, Written};
use crate::Record;

impl HttpWriter {
    /// Writes `batch` for a runtime batch sink, adding the records written to
    /// `written`: `Ok` lists the records refused for good; a transient failure hands
    /// back only the records to send again ([`Failure::partial`] when some of the batch
    /// is settled), with the endpoint's `Retry-After`; a permanent one the whole batch.
    pub fn write_batch(
        &mut self,
        batch: Vec<Record>,
        written: &AtomicU64,
    ) -> Result<Vec<Rejected<Record>>, Failure<Vec<Record>>> {
        match self.write(&batch) {
            Ok(outcome) => {
                let settled = outcome.rejected.len() + outcome.retry.len();
                written.fetch_add((batch.len() - settled) as u64, Relaxed);
                settle(batch, outcome)
            }
            Err(error) => Err(whole(batch, error)),
        }
    }
}

/// The rejects as [`Rejected`], and the items to retry as a partial failure.
fn settle(
    batch: Vec<Record>,
    outcome: Written,
) -> Result<Vec<Rejected<Record>>, Failure<Vec<Record>>> {
    let Written { rejected, retry } = outcome;
    let mut slots: Vec<Option<Record>> = batch.into_iter().map(Some).collect();
    let total = slots.len();
    let rejected: Vec<Rejected<Record>> = rejected
        .into_iter()
        .filter_map(|(at, why)| Some(Rejected::new(at, slots.get_mut(at)?.take()?, why)))
        .collect();
    let Some((_, first)) = retry.first() else {
        return Ok(rejected);
    };
    let error = format!(
        "{} of {total} items refused for now, the first: {first}",
        retry.len()
    );
    let again: Vec<(usize, Record)> = retry
        .iter()
        .filter_map(|(at, _)| Some((*at, slots.get_mut(*at)?.take()?)))
        .collect();
    Err(Failure::partial(again, rejected, error))
}

/// A failed request: transient (with its `Retry-After`) or permanent, for the batch.
fn whole(batch: Vec<Record>, error: HttpError) -> Failure<Vec<Record>> {
    if !error.is_transient() {
        return Failure::permanent(batch, error);
    }
    match error.retry_after() {
        Some(pause) => Failure::transient(batch, error).retry_after(pause),
        None => Failure::transient(batch, error),
    }
}
