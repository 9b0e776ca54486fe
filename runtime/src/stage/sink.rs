//! The last stage: writes records (one per call, or batches), retries transient
//! failures, dead-letters the rest, and finishes each record in the budget and the
//! ledger.

use std::any::Any;
use std::sync::Arc;

use crate::clock::Instant;
use crate::context::Shared;
use crate::failure::{DeadLetter, DeadLetterCause, Failure, Partial, Rejected};
use crate::ledger::{Envelope, Ticket};
use crate::metrics::Figures;

use super::call::{self, Failed};
use super::resource::{OpenFailures, Opener};
use super::{Lane, Step};

/// A sink's function: takes the worker's resource (`()` for most sinks) and the
/// records out of a batch (of one record, for per-record sinks), so that the worker
/// can reuse the vector; returns the records it rejected while writing the others.
pub(crate) type SinkFn<R, T> =
    Box<dyn Fn(&mut R, &mut Vec<T>) -> Result<Vec<Rejected<T>>, Failure<Vec<T>>> + Send + Sync>;

/// The part of a sink the parallel workers and the serial lane share.
pub(crate) struct SinkCore<R, T> {
    pub name: String,
    pub index: usize,
    pub opener: Opener<R>,
    pub func: SinkFn<R, T>,
    pub shared: Arc<Shared>,
}

/// A worker's resource and the buffers it reuses between calls, so that a batch
/// allocates nothing once the worker has seen one as large.
pub(crate) struct Scratch<R, T> {
    resource: R,
    values: Vec<T>,
    meta: Vec<(u64, Ticket)>,
    /// The batch's records the current call writes, by their index in `meta`.
    pending: Vec<usize>,
    /// What became of each record of the batch.
    settled: Vec<Settled>,
}

impl<R, T> Scratch<R, T> {
    pub(crate) fn new(resource: R) -> Self {
        Self {
            resource,
            values: Vec::new(),
            meta: Vec::new(),
            pending: Vec::new(),
            settled: Vec::new(),
        }
    }
}

impl<R: 'static, T: Send + 'static> SinkCore<R, T> {
    /// Writes a batch that has waited since `start`; returns the end of the last call.
    pub(crate) fn process(
        &self,
        batch: &mut Vec<Envelope<T>>,
        lane: Lane,
        start: Instant,
        figures: &mut Figures,
        scratch: &mut Scratch<R, T>,
    ) -> Instant {
        scratch.values.clear();
        scratch.meta.clear();
        let mut take = |envelope: Envelope<T>| {
            scratch.values.push(envelope.value);
            scratch.meta.push((envelope.weight, envelope.ticket));
        };
        if batch.len() == 1 {
            // The common batch of one, taken without draining.
            if let Some(envelope) = batch.pop() {
                take(envelope);
            }
        } else {
            batch.drain(..).for_each(take);
        }
        let values = std::mem::take(&mut scratch.values);
        let Scratch {
            resource,
            values: kept,
            meta,
            pending,
            settled,
        } = scratch;
        // The batch's records by their index in `meta`: those the current call writes
        // (in its order), and what became of the others.
        pending.clear();
        pending.extend(0..meta.len());
        settled.clear();
        settled.resize_with(meta.len(), || Settled::Pending);
        let (end, outcome) =
            call::with_retries(&self.shared.retry, start, figures, values, |mut values| {
                let result = (self.func)(resource, &mut values);
                match result {
                    Ok(rejected) => {
                        // Kept for the next batch.
                        *kept = values;
                        Ok(rejected)
                    }
                    Err(Failure::Transient {
                        record,
                        error,
                        retry_after,
                        partial: Some(partial),
                    }) => match settle(pending, settled, *partial) {
                        Ok(()) if pending.is_empty() => Ok(Vec::new()),
                        Ok(()) => Err(Failure::Transient {
                            record,
                            error,
                            retry_after,
                            partial: None,
                        }),
                        Err(invalid) => {
                            pending_unknown(pending, settled, &invalid);
                            pending.clear();
                            Err(Failure::permanent(Vec::new(), invalid))
                        }
                    },
                    Err(failure) => Err(failure),
                }
            });
        match outcome {
            Ok(rejected) => {
                if let Err(invalid) = settle_rejected(pending, settled, rejected) {
                    pending_unknown(pending, settled, &invalid);
                } else {
                    for &at in pending.iter() {
                        if let Settled::Pending = settled[at] {
                            settled[at] = Settled::Written;
                        }
                    }
                }
                // A write that dead-letters some of its records is an error of the
                // stage (a failed call counts its own).
                if settled
                    .iter()
                    .any(|outcome| matches!(outcome, Settled::Failed { .. }))
                {
                    figures.counts.errors += 1;
                }
            }
            Err(Failed {
                record,
                cause,
                error,
            }) => {
                // The records come back one per dead letter when the sink handed back
                // all those it was called with; otherwise (and after a panic) they are
                // lost with the call.
                let records = record.unwrap_or_default();
                let mut records: Vec<Option<T>> = if records.len() == pending.len() {
                    records.into_iter().map(Some).collect()
                } else {
                    Vec::new()
                };
                records.resize_with(pending.len(), || None);
                for (&at, record) in pending.iter().zip(records) {
                    settled[at] = Settled::Failed {
                        cause: cause.clone(),
                        error: error.clone(),
                        record: record.map(|r| Box::new(r) as Box<dyn Any + Send>),
                    };
                }
            }
        }
        for ((weight, ticket), outcome) in meta.drain(..).zip(settled.drain(..)) {
            match outcome {
                Settled::Written => self.written(weight, &ticket, end, lane, figures),
                Settled::Failed {
                    cause,
                    error,
                    record,
                } => self.dead_letter(weight, &ticket, cause, error, record, lane, figures),
                Settled::Pending => unreachable!("every record of the batch is settled"),
            }
        }
        end
    }

    /// Finishes a written record.
    fn written(
        &self,
        weight: u64,
        ticket: &Ticket,
        end: Instant,
        lane: Lane,
        figures: &mut Figures,
    ) {
        let (here, _) = lane.locations(self.index);
        figures
            .latencies_us
            .push((end - ticket.admitted_at).as_micros() as u64);
        figures.counts.records_out += 1;
        figures.counts.bytes_out += weight;
        self.shared.budget.release(here, weight);
        self.shared.ledger.finish(ticket, false);
    }

    /// Finishes a record in the dead-letter output: the letter is out before the
    /// position can be acknowledged.
    #[allow(clippy::too_many_arguments)]
    fn dead_letter(
        &self,
        weight: u64,
        ticket: &Ticket,
        cause: DeadLetterCause,
        error: String,
        record: Option<Box<dyn Any + Send>>,
        lane: Lane,
        figures: &mut Figures,
    ) {
        let (here, _) = lane.locations(self.index);
        self.shared.dead_letter(DeadLetter::new(
            &self.name,
            ticket.position,
            cause,
            error,
            record,
        ));
        self.shared.budget.release(here, weight);
        self.shared.ledger.finish(ticket, true);
        figures.counts.dead_lettered += 1;
    }
}

/// What became of one record of a batch.
enum Settled {
    /// Still to be written (by the current call).
    Pending,
    /// Written.
    Written,
    /// For the dead-letter output.
    Failed {
        cause: DeadLetterCause,
        error: String,
        record: Option<Box<dyn Any + Send>>,
    },
}

/// Applies what a transiently failed call settled: its rejects are dead-lettered, the
/// records it hands back are the next call's `pending`, the others of the call are
/// written. Err names an index that leaves the outcome unknown (nothing is changed).
fn settle(
    pending: &mut Vec<usize>,
    settled: &mut [Settled],
    partial: Partial,
) -> Result<(), String> {
    let mut seen = vec![false; pending.len()];
    for &index in partial
        .retry
        .iter()
        .chain(partial.rejected.iter().map(|reject| &reject.index))
    {
        match seen.get_mut(index) {
            Some(slot @ false) => *slot = true,
            Some(true) => return Err(format!("named index {index} twice")),
            None => {
                return Err(format!(
                    "named index {index} of a batch of {}",
                    pending.len()
                ))
            }
        }
    }
    for reject in partial.rejected {
        settled[pending[reject.index]] = Settled::Failed {
            cause: DeadLetterCause::Permanent,
            error: reject.error.to_string(),
            record: Some(reject.record),
        };
    }
    let retry: Vec<usize> = partial.retry.iter().map(|&index| pending[index]).collect();
    for &at in pending.iter() {
        if let Settled::Pending = settled[at] {
            settled[at] = Settled::Written;
        }
    }
    for &at in &retry {
        settled[at] = Settled::Pending;
    }
    *pending = retry;
    Ok(())
}

/// Applies the rejects of a call that succeeded: each is dead-lettered on its own.
/// Err names an index that leaves the outcome unknown.
fn settle_rejected<T: Send + 'static>(
    pending: &[usize],
    settled: &mut [Settled],
    rejected: Vec<Rejected<T>>,
) -> Result<(), String> {
    if rejected.is_empty() {
        return Ok(());
    }
    let mut invalid = None;
    let mut seen = vec![false; pending.len()];
    for reject in rejected {
        match seen.get_mut(reject.index) {
            Some(slot @ false) => {
                *slot = true;
                settled[pending[reject.index]] = Settled::Failed {
                    cause: DeadLetterCause::Permanent,
                    error: reject.error.to_string(),
                    record: Some(Box::new(reject.record)),
                };
            }
            Some(true) => {
                invalid.get_or_insert(format!("rejected index {} twice", reject.index));
            }
            None => {
                invalid.get_or_insert(format!(
                    "rejected index {} of a batch of {}",
                    reject.index,
                    pending.len()
                ));
            }
        }
    }
    invalid.map_or(Ok(()), Err)
}

/// A call's outcome is unknown (its reject or retry list was invalid): every record
/// it was called with is dead-lettered, none counts as written, so that nothing is
/// lost or finished twice. Those it rejected keep their record and error.
fn pending_unknown(pending: &[usize], settled: &mut [Settled], invalid: &str) {
    for &at in pending {
        settled[at] = match std::mem::replace(&mut settled[at], Settled::Pending) {
            Settled::Failed { error, record, .. } => Settled::Failed {
                cause: DeadLetterCause::Permanent,
                error: format!("{error} (and the batch write {invalid})"),
                record,
            },
            _ => Settled::Failed {
                cause: DeadLetterCause::Permanent,
                error: format!("the batch write's outcome is unknown: it {invalid}"),
                record: None,
            },
        };
    }
}

/// The sink in the parallel brigade.
pub(crate) struct SinkStep<R, T> {
    pub core: Arc<SinkCore<R, T>>,
}

impl<R: 'static, T: Send + 'static> Step for SinkStep<R, T> {
    type In = T;
    type Scratch = Scratch<R, T>;

    fn open(&self) -> Option<Scratch<R, T>> {
        self.core.opener.try_open().map(Scratch::new)
    }

    fn open_failures(&self) -> &OpenFailures {
        &self.core.opener.failures
    }

    fn shared(&self) -> &Shared {
        &self.core.shared
    }

    fn run(
        &self,
        batch: &mut Vec<Envelope<T>>,
        start: Instant,
        figures: &mut Figures,
        scratch: &mut Scratch<R, T>,
    ) -> Instant {
        self.core
            .process(batch, Lane::Parallel, start, figures, scratch)
    }

    fn close_output(&self) {}
}

#[cfg(test)]
mod test {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use crate::{DeadLetterCause, Failure, Pipeline, Rejected, RetryPolicy};

    fn fast_retries(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            initial_backoff: Duration::from_micros(100),
            max_backoff: Duration::from_millis(1),
        }
    }

    /// A bulk write: `x % 10 == 3` is malformed (rejected for good), `x % 10 == 5` is
    /// throttled on its first two tries, the rest is stored at once.
    #[test]
    fn a_partial_failure_dead_letters_its_rejects_and_retries_only_the_rest() {
        let stored: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
        let tries: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
        let retried_batches: Arc<Mutex<Vec<Vec<u64>>>> = Arc::default();
        let (store, tried, retried) = (stored.clone(), tries.clone(), retried_batches.clone());
        let report = Pipeline::from_iter(0..500u64)
            .retry(fast_retries(5))
            .map("id", |x| x)
            .try_batch_sink_partial("bulk", move |batch: Vec<u64>| {
                let mut tries = tried.lock().unwrap();
                let mut stored = store.lock().unwrap();
                if batch.iter().any(|x| tries.contains_key(x)) {
                    retried.lock().unwrap().push(batch.clone());
                }
                let (mut again, mut rejected) = (Vec::new(), Vec::new());
                for (index, x) in batch.into_iter().enumerate() {
                    let tried = tries.entry(x).or_default();
                    *tried += 1;
                    if x % 10 == 3 {
                        rejected.push(Rejected::new(index, x, format!("malformed {x}")));
                    } else if x % 10 == 5 && *tried <= 2 {
                        again.push((index, x));
                    } else {
                        *stored.entry(x).or_default() += 1;
                    }
                }
                if again.is_empty() {
                    Ok(rejected)
                } else {
                    Err(Failure::partial(again, rejected, "throttled"))
                }
            })
            .batch_size(16)
            .run()
            .unwrap();

        assert!(report.is_clean(), "{:?}", report.failures);
        assert_eq!((report.completed, report.dead_lettered), (450, 50));
        let stored = stored.lock().unwrap();
        assert_eq!(stored.len(), 450);
        assert!(stored.iter().all(|(x, times)| x % 10 != 3 && *times == 1));
        // Only the throttled records were written again, each three times in all.
        for batch in retried_batches.lock().unwrap().iter() {
            assert!(batch.iter().all(|x| x % 10 == 5), "{batch:?}");
        }
        let tries = tries.lock().unwrap();
        assert!(tries
            .iter()
            .all(|(x, n)| *n == if x % 10 == 5 { 3 } else { 1 }));
        for letter in &report.dead_letters {
            assert_eq!(letter.cause, DeadLetterCause::Permanent);
            assert_eq!(letter.position % 10, 3);
            assert_eq!(letter.error, format!("malformed {}", letter.position));
            assert_eq!(letter.record::<u64>(), Some(&letter.position));
        }
        assert_eq!(report.acknowledged, 500);
    }

    #[test]
    fn a_partial_failure_that_runs_out_of_retries_dead_letters_only_what_was_retried() {
        let report = Pipeline::from_iter(0..40u64)
            .retry(fast_retries(3))
            .try_batch_sink_partial("bulk", |batch: Vec<u64>| {
                let again: Vec<(usize, u64)> = batch
                    .into_iter()
                    .enumerate()
                    .filter(|(_, x)| x % 2 == 0)
                    .collect();
                if again.is_empty() {
                    Ok(Vec::new())
                } else {
                    Err(Failure::partial(again, Vec::new(), "throttled"))
                }
            })
            .batch_size(8)
            .run()
            .unwrap();
        assert_eq!((report.completed, report.dead_lettered), (20, 20));
        for letter in &report.dead_letters {
            assert_eq!(letter.position % 2, 0);
            assert_eq!(
                letter.cause,
                DeadLetterCause::RetriesExhausted { attempts: 3 }
            );
            assert_eq!(letter.record::<u64>(), Some(&letter.position));
        }
    }

    #[test]
    fn a_partial_failure_naming_an_index_twice_dead_letters_what_it_was_called_with() {
        let report = Pipeline::from_iter(0..30u64)
            .retry(fast_retries(3))
            .try_batch_sink_partial("bulk", |batch: Vec<u64>| {
                let first = batch[0];
                Err(Failure::partial(
                    vec![(0, first)],
                    vec![Rejected::new(0, first, "bad")],
                    "throttled",
                ))
            })
            .run()
            .unwrap();
        assert_eq!((report.completed, report.dead_lettered), (0, 30));
        assert!(report
            .dead_letters
            .iter()
            .all(|letter| letter.error.contains("outcome is unknown")
                && letter.error.contains("named index 0 twice")));
        assert_eq!(report.acknowledged, 30);
    }
}
