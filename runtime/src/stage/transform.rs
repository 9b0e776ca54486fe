//! A stage between the source and the sink: calls the user's function on each record,
//! retries transient failures, dead-letters the rest, weighs the outputs and passes
//! them on.

use std::sync::Arc;

use crate::clock::{self, Instant};
use crate::context::Shared;
use crate::failure::{DeadLetter, Failure};
use crate::ledger::Envelope;
use crate::metrics::Figures;
use crate::queue::Queue;
use crate::weigh::Weigher;

use super::call::{self, Failed};
use super::resource::{OpenFailures, Opener};
use super::{Lane, Step};

/// A transform's function: takes the worker's resource (`()` for most stages) and a
/// record, pushes zero or more outputs.
pub(crate) type TransformFn<R, In, Out> =
    Box<dyn Fn(&mut R, In, &mut Vec<Out>) -> Result<(), Failure<In>> + Send + Sync>;

/// The part of a transform the parallel workers and the serial lane share.
pub(crate) struct TransformCore<R, In, Out> {
    pub name: String,
    pub index: usize,
    pub opener: Opener<R>,
    pub func: TransformFn<R, In, Out>,
    pub weigher: Weigher<Out>,
    pub shared: Arc<Shared>,
}

/// A worker's resource and the buffers it reuses between calls.
pub(crate) struct Scratch<R, Out> {
    resource: R,
    outputs: Vec<Out>,
    weights: Vec<u64>,
}

impl<R, Out> Scratch<R, Out> {
    pub(crate) fn new(resource: R) -> Self {
        Self {
            resource,
            outputs: Vec::new(),
            weights: Vec::new(),
        }
    }
}

impl<R: 'static, In: Send + 'static, Out: Send + 'static> TransformCore<R, In, Out> {
    /// Processes one record that has waited since `start`, and hands each output,
    /// weighed and counted in the budget at its next location, to `emit`. Returns the
    /// last instant it read: the end of the call, or of a wait for the budget.
    pub(crate) fn process(
        &self,
        envelope: Envelope<In>,
        lane: Lane,
        start: Instant,
        figures: &mut Figures,
        scratch: &mut Scratch<R, Out>,
        mut emit: impl FnMut(Envelope<Out>, &mut Figures),
    ) -> Instant {
        let Envelope {
            value,
            weight,
            mut ticket,
        } = envelope;
        let (here, next) = lane.locations(self.index);
        let (mut end, failure) =
            call::with_retries(&self.shared.retry, start, figures, value, |value| {
                scratch.outputs.clear();
                scratch.weights.clear();
                (self.func)(&mut scratch.resource, value, &mut scratch.outputs)?;
                scratch
                    .weights
                    .extend(scratch.outputs.iter().map(|o| (self.weigher)(o)));
                Ok(())
            });
        let shared = &self.shared;
        if let Err(Failed {
            record,
            cause,
            error,
        }) = failure
        {
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
            end = clock::now();
        }
        shared.ledger.fork(&mut ticket, scratch.outputs.len());
        figures.counts.records_out += scratch.outputs.len() as u64;
        figures.counts.bytes_out += total;
        if scratch.outputs.len() == 1 {
            // A map's one output: no fan-out to iterate.
            if let (Some(value), Some(weight)) = (scratch.outputs.pop(), scratch.weights.pop()) {
                emit(
                    Envelope {
                        value,
                        weight,
                        ticket,
                    },
                    figures,
                );
            }
            return end;
        }
        let mut outputs = scratch.outputs.drain(..).zip(scratch.weights.drain(..));
        // The last output takes the record's own ticket: a map passes it on as it is.
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
pub(crate) struct TransformStep<R, In, Out> {
    pub core: Arc<TransformCore<R, In, Out>>,
    pub output: Arc<Queue<Envelope<Out>>>,
}

impl<R: 'static, In: Send + 'static, Out: Send + 'static> Step for TransformStep<R, In, Out> {
    type In = In;
    type Scratch = Scratch<R, Out>;

    fn open(&self) -> Option<Scratch<R, Out>> {
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
        batch: &mut Vec<Envelope<In>>,
        start: Instant,
        figures: &mut Figures,
        scratch: &mut Scratch<R, Out>,
    ) -> Instant {
        let mut each = |envelope, end| {
            let mut unblocked = None;
            let end = self.core.process(
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
            unblocked.take().unwrap_or(end)
        };
        let mut end = start;
        if batch.len() == 1 {
            // The common batch of one, taken without draining.
            if let Some(envelope) = batch.pop() {
                end = each(envelope, end);
            }
        } else {
            for envelope in batch.drain(..) {
                end = each(envelope, end);
            }
        }
        end
    }

    fn close_output(&self) {
        self.output.close();
    }
}
