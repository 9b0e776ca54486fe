//! A stage between the source and the sink: calls the user's function on each record,
//! retries transient failures, dead-letters the rest, weighs the outputs and passes
//! them on.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::clock::Instant;
use crate::context::Shared;
use crate::failure::{panic_message, DeadLetter, DeadLetterCause, Failure};
use crate::ledger::Envelope;
use crate::metrics::Figures;
use crate::queue::Queue;
use crate::weigh::Weigher;

use super::{Lane, Step};

/// A transform's function: takes a record, pushes zero or more outputs.
pub(crate) type TransformFn<In, Out> =
    Box<dyn Fn(In, &mut Vec<Out>) -> Result<(), Failure<In>> + Send + Sync>;

/// The part of a transform the parallel workers and the serial lane share.
pub(crate) struct TransformCore<In, Out> {
    pub name: String,
    pub index: usize,
    pub func: TransformFn<In, Out>,
    pub weigher: Weigher<Out>,
    pub shared: Arc<Shared>,
}

/// Reused buffers for a worker's calls.
pub(crate) struct Scratch<Out> {
    outputs: Vec<Out>,
    weights: Vec<u64>,
}

impl<Out> Default for Scratch<Out> {
    fn default() -> Self {
        Self {
            outputs: Vec::new(),
            weights: Vec::new(),
        }
    }
}

impl<In: Send + 'static, Out: Send + 'static> TransformCore<In, Out> {
    /// Processes one record that has waited since `start`, and hands each output,
    /// weighed and counted in the budget at its next location, to `emit`. Returns the
    /// last instant it read: the end of the call, or of a wait for the budget.
    pub(crate) fn process(
        &self,
        envelope: Envelope<In>,
        lane: Lane,
        start: Instant,
        figures: &mut Figures,
        scratch: &mut Scratch<Out>,
        mut emit: impl FnMut(Envelope<Out>, &mut Figures),
    ) -> Instant {
        let Envelope {
            mut value,
            weight,
            ticket,
        } = envelope;
        let (here, next) = lane.locations(self.index);
        let policy = &self.shared.retry;
        let mut attempt = 1;
        let mut call_start = start;
        let mut end;
        figures.call_starts(start);
        let failure = loop {
            scratch.outputs.clear();
            scratch.weights.clear();
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                (self.func)(value, &mut scratch.outputs)?;
                scratch
                    .weights
                    .extend(scratch.outputs.iter().map(|o| (self.weigher)(o)));
                Ok(())
            }));
            end = Instant::now();
            let took = (end - call_start).as_nanos() as u64;
            figures.counts.busy_ns += took;
            figures.service_ns = took;
            match outcome {
                Ok(Ok(())) => break None,
                Ok(Err(Failure::Transient { record, error })) => {
                    figures.counts.errors += 1;
                    if attempt >= policy.attempts {
                        break Some((
                            Some(record),
                            DeadLetterCause::RetriesExhausted { attempts: attempt },
                            error.to_string(),
                        ));
                    }
                    let pause = policy.backoff(attempt);
                    std::thread::sleep(pause);
                    figures.counts.busy_ns += pause.as_nanos() as u64;
                    figures.counts.retries += 1;
                    attempt += 1;
                    value = record;
                    call_start = Instant::now();
                }
                Ok(Err(Failure::Permanent { record, error })) => {
                    figures.counts.errors += 1;
                    break Some((Some(record), DeadLetterCause::Permanent, error.to_string()));
                }
                Err(payload) => {
                    figures.counts.errors += 1;
                    break Some((None, DeadLetterCause::Panicked, panic_message(&*payload)));
                }
            }
        };
        figures.call_ends();
        let shared = &self.shared;
        if let Some((record, cause, error)) = failure {
            // The dead letter is out before the position can be acknowledged.
            let record = record.map(|r| Box::new(r) as Box<dyn std::any::Any + Send>);
            shared.dead_letter(DeadLetter::new(
                &self.name,
                ticket.position,
                cause,
                error,
                record,
            ));
            shared.budget.release(here, weight);
            shared.ledger.finish(&ticket, true);
            figures.counts.dead_lettered += 1;
            return end;
        }
        let total: u64 = scratch.weights.iter().sum();
        let waited = shared
            .budget
            .advance(here, weight, next, total, figures.blocked_clock());
        if !waited.is_zero() {
            figures.counts.wait_out_ns += waited.as_nanos() as u64;
            end = Instant::now();
        }
        shared.ledger.fork(&ticket, scratch.outputs.len());
        figures.counts.records_out += scratch.outputs.len() as u64;
        figures.counts.bytes_out += total;
        let mut outputs = scratch.outputs.drain(..).zip(scratch.weights.drain(..));
        // The last output takes the record's own reference to the ticket: a map passes
        // it on without touching its count.
        let last = outputs.next_back();
        for (value, weight) in outputs {
            let ticket = ticket.clone();
            emit(
                Envelope {
                    value,
                    weight,
                    ticket,
                },
                figures,
            );
        }
        if let Some((value, weight)) = last {
            emit(
                Envelope {
                    value,
                    weight,
                    ticket,
                },
                figures,
            );
        }
        end
    }
}

/// A transform in the parallel brigade: its core and the queue of the next stage.
pub(crate) struct TransformStep<In, Out> {
    pub core: Arc<TransformCore<In, Out>>,
    pub output: Arc<Queue<Envelope<Out>>>,
}

impl<In: Send + 'static, Out: Send + 'static> Step for TransformStep<In, Out> {
    type In = In;
    type Scratch = Scratch<Out>;

    fn run(
        &self,
        batch: &mut Vec<Envelope<In>>,
        start: Instant,
        figures: &mut Figures,
        scratch: &mut Scratch<Out>,
    ) -> Instant {
        let mut end = start;
        let mut unblocked = None;
        for envelope in batch.drain(..) {
            end = self.core.process(
                envelope,
                Lane::Parallel,
                end,
                figures,
                scratch,
                |out, figures| {
                    if let Some((waited, at)) = self.output.push(out, figures.blocked_clock()) {
                        figures.counts.wait_out_ns += waited.as_nanos() as u64;
                        unblocked = Some(at);
                    }
                },
            );
            if let Some(at) = unblocked.take() {
                end = at;
            }
        }
        end
    }

    fn close_output(&self) {
        self.output.close();
    }
}
