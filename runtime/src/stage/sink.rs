//! The last stage: writes records (one per call, or batches), retries transient
//! failures, dead-letters the rest, and finishes each record in the budget and the
//! ledger.

use std::sync::Arc;

use crate::clock::Instant;
use crate::context::Shared;
use crate::failure::{DeadLetter, Failure};
use crate::ledger::{Envelope, Ticket};
use crate::metrics::Figures;

use super::call::{self, Failed};
use super::{Lane, Step};

/// A sink's function: takes the records out of a batch (of one record, for per-record
/// sinks), so that the worker can reuse the vector.
pub(crate) type SinkFn<T> = Box<dyn Fn(&mut Vec<T>) -> Result<(), Failure<Vec<T>>> + Send + Sync>;

/// The part of a sink the parallel workers and the serial lane share.
pub(crate) struct SinkCore<T> {
    pub name: String,
    pub index: usize,
    pub func: SinkFn<T>,
    pub shared: Arc<Shared>,
}

/// Reused buffers for a worker's calls.
pub(crate) struct Scratch<T> {
    values: Vec<T>,
    meta: Vec<(u64, Arc<Ticket>)>,
}

impl<T> Default for Scratch<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            meta: Vec::new(),
        }
    }
}

impl<T: Send + 'static> SinkCore<T> {
    /// Writes a batch that has waited since `start`; returns the end of the last call.
    pub(crate) fn process(
        &self,
        batch: &mut Vec<Envelope<T>>,
        lane: Lane,
        start: Instant,
        figures: &mut Figures,
        scratch: &mut Scratch<T>,
    ) -> Instant {
        let (here, _) = lane.locations(self.index);
        scratch.values.clear();
        scratch.meta.clear();
        for envelope in batch.drain(..) {
            scratch.values.push(envelope.value);
            scratch.meta.push((envelope.weight, envelope.ticket));
        }
        let values = std::mem::take(&mut scratch.values);
        let (end, failure) =
            call::with_retries(&self.shared.retry, start, figures, values, |mut values| {
                let result = (self.func)(&mut values);
                if result.is_ok() {
                    // Kept for the next batch.
                    scratch.values = values;
                }
                result
            });
        let shared = &self.shared;
        match failure {
            None => {
                for (weight, ticket) in scratch.meta.drain(..) {
                    figures
                        .latencies_us
                        .push((end - ticket.admitted_at).as_micros() as u64);
                    figures.counts.records_out += 1;
                    figures.counts.bytes_out += weight;
                    shared.budget.release(here, weight);
                    shared.ledger.finish(&ticket, false);
                }
            }
            Some(Failed {
                record,
                cause,
                error,
            }) => {
                // The records come back one per dead letter when the sink handed back
                // the whole batch; otherwise (and after a panic) they are lost with the
                // call.
                let records = record.unwrap_or_default();
                let mut records = if records.len() == scratch.meta.len() {
                    records.into_iter().map(Some).collect()
                } else {
                    Vec::new()
                };
                records.resize_with(scratch.meta.len(), || None);
                for ((weight, ticket), record) in scratch.meta.drain(..).zip(records) {
                    let record = record.map(|r| Box::new(r) as Box<dyn std::any::Any + Send>);
                    shared.dead_letter(DeadLetter::new(
                        &self.name,
                        ticket.position,
                        cause.clone(),
                        error.clone(),
                        record,
                    ));
                    shared.budget.release(here, weight);
                    shared.ledger.finish(&ticket, true);
                    figures.counts.dead_lettered += 1;
                }
            }
        }
        end
    }
}

/// The sink in the parallel brigade.
pub(crate) struct SinkStep<T> {
    pub core: Arc<SinkCore<T>>,
}

impl<T: Send + 'static> Step for SinkStep<T> {
    type In = T;
    type Scratch = Scratch<T>;

    fn run(
        &self,
        batch: &mut Vec<Envelope<T>>,
        start: Instant,
        figures: &mut Figures,
        scratch: &mut Scratch<T>,
    ) -> Instant {
        self.core
            .process(batch, Lane::Parallel, start, figures, scratch)
    }

    fn close_output(&self) {}
}
