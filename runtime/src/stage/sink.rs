//! The last stage: writes records (one per call, or batches), retries transient
//! failures, dead-letters the rest, and finishes each record in the budget and the
//! ledger.

use std::any::Any;
use std::sync::Arc;

use crate::clock::Instant;
use crate::context::Shared;
use crate::failure::{DeadLetter, DeadLetterCause, Failure, Rejected};
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

/// A worker's resource and the buffers it reuses between calls.
pub(crate) struct Scratch<R, T> {
    resource: R,
    values: Vec<T>,
    meta: Vec<(u64, Ticket)>,
}

impl<R, T> Scratch<R, T> {
    pub(crate) fn new(resource: R) -> Self {
        Self {
            resource,
            values: Vec::new(),
            meta: Vec::new(),
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
        } = scratch;
        let (end, outcome) =
            call::with_retries(&self.shared.retry, start, figures, values, |mut values| {
                let result = (self.func)(resource, &mut values);
                if result.is_ok() {
                    // Kept for the next batch.
                    *kept = values;
                }
                result
            });
        match outcome {
            Ok(rejected) if rejected.is_empty() => {
                for (weight, ticket) in meta.iter() {
                    self.written(*weight, ticket, end, lane, figures);
                }
                meta.clear();
            }
            Ok(rejected) => self.written_but(rejected, meta, end, lane, figures),
            Err(Failed {
                record,
                cause,
                error,
            }) => {
                // The records come back one per dead letter when the sink handed back
                // the whole batch; otherwise (and after a panic) they are lost with the
                // call.
                let records = record.unwrap_or_default();
                let mut records = if records.len() == meta.len() {
                    records.into_iter().map(Some).collect()
                } else {
                    Vec::new()
                };
                records.resize_with(meta.len(), || None);
                for ((weight, ticket), record) in meta.drain(..).zip(records) {
                    let record = record.map(|r| Box::new(r) as Box<dyn Any + Send>);
                    self.dead_letter(
                        weight,
                        &ticket,
                        cause.clone(),
                        error.clone(),
                        record,
                        lane,
                        figures,
                    );
                }
            }
        }
        end
    }

    /// Settles a batch of which the write rejected some records: those go to the
    /// dead-letter output, the others count as written. A reject list naming an
    /// index twice or past the batch dead-letters the whole batch (see [`Rejected`]).
    fn written_but(
        &self,
        rejected: Vec<Rejected<T>>,
        meta: &mut Vec<(u64, Ticket)>,
        end: Instant,
        lane: Lane,
        figures: &mut Figures,
    ) {
        let mut outcome: Vec<Option<(String, Option<T>)>> = Vec::new();
        outcome.resize_with(meta.len(), || None);
        let mut invalid = None;
        for reject in rejected {
            match outcome.get_mut(reject.index) {
                Some(slot @ None) => *slot = Some((reject.error.to_string(), Some(reject.record))),
                Some(Some(_)) => {
                    invalid.get_or_insert(format!("rejected index {} twice", reject.index));
                }
                None => {
                    invalid.get_or_insert(format!(
                        "rejected index {} of a batch of {}",
                        reject.index,
                        meta.len()
                    ));
                }
            }
        }
        figures.counts.errors += 1;
        for ((weight, ticket), outcome) in meta.drain(..).zip(outcome) {
            match (outcome, &invalid) {
                (None, None) => self.written(weight, &ticket, end, lane, figures),
                (Some((error, record)), None) => self.dead_letter(
                    weight,
                    &ticket,
                    DeadLetterCause::Permanent,
                    error,
                    record.map(|r| Box::new(r) as Box<dyn Any + Send>),
                    lane,
                    figures,
                ),
                (outcome, Some(invalid)) => {
                    let (error, record) = outcome.unwrap_or_default();
                    let error = if error.is_empty() {
                        format!("the batch write's outcome is unknown: it {invalid}")
                    } else {
                        format!("{error} (and the batch write {invalid})")
                    };
                    self.dead_letter(
                        weight,
                        &ticket,
                        DeadLetterCause::Permanent,
                        error,
                        record.map(|r| Box::new(r) as Box<dyn Any + Send>),
                        lane,
                        figures,
                    );
                }
            }
        }
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
