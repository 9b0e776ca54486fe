//! A synthetic stage: what one `[[stage]]` of a scenario does to the records that
//! reach it, as the simulator models it. Each call draws its service time and its
//! failure from the simulator's own keyed draws (`brigade_scenario::draws`), does its work
//! for real under the USL slowdown of the stage's calls in progress (both lanes), then
//! either hands the record back as a transient failure, for the runtime to retry, or
//! passes on its outputs: `output_ratio` of them, each `size_ratio` times its bytes.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use brigade_runtime::{Emitter, Failure};
use brigade_scenario::draws::{output_id, StageDraws};
use brigade_scenario::{Scenario, StageKind, StageSpec};

use crate::clock::Clock;
use crate::record::Record;
use crate::work;

/// The error of a call that the scenario's `error_rate` failed.
const TRANSIENT: &str = "a synthetic transient failure (the stage's error_rate)";

/// One stage of a scenario, run for real.
pub(crate) struct Stage {
    index: usize,
    spec: StageSpec,
    draws: StageDraws,
    clock: Arc<Clock>,
    /// Calls in progress now, in both lanes: what the USL slowdown counts.
    calls: AtomicUsize,
}

impl Stage {
    /// Stage `index` of `scenario`, reading phases off `clock`.
    pub(crate) fn new(scenario: &Scenario, index: usize, clock: Arc<Clock>) -> Self {
        Self {
            index,
            spec: scenario.stages[index].clone(),
            draws: StageDraws::new(scenario.seed, index),
            clock,
            calls: AtomicUsize::new(0),
        }
    }

    /// The work of attempt `attempt` of a call whose first record is `id` over
    /// `bytes`, starting `at_s` seconds into the run, and whether it fails.
    pub(crate) fn draw(&self, id: u64, attempt: u32, bytes: u64, at_s: f64) -> (f64, bool) {
        let scale = self.clock.service_scale(self.index, at_s);
        let mut draws = self.draws.call(id, attempt);
        let work = self
            .spec
            .work(draws.sample(&self.spec.service), bytes, scale);
        (work, draws.chance(self.spec.error_rate))
    }

    /// Runs one call; true if it fails.
    fn call(&self, id: u64, attempt: u32, bytes: u64) -> bool {
        self.calls.fetch_add(1, Relaxed);
        let (work, fails) = self.draw(id, attempt, bytes, self.clock.now_s());
        let slowdown = || self.spec.slowdown(self.calls.load(Relaxed));
        let held = || self.clock.stall_left(self.index, self.clock.now_s());
        match self.spec.kind {
            StageKind::Cpu => work::spin(work, slowdown, held),
            StageKind::Io => work::sleep(work, slowdown, held),
        }
        self.calls.fetch_sub(1, Relaxed);
        fails
    }

    /// A stage before the sink: one call, then the record's outputs.
    pub(crate) fn transform(
        &self,
        mut record: Record,
        out: &mut Emitter<'_, Record>,
    ) -> Result<(), Failure<Record>> {
        if self.call(record.id, record.attempt, record.bytes()) {
            record.attempt += 1;
            return Err(Failure::transient(record, TRANSIENT));
        }
        let id = record.id;
        let count = self.draws.outputs(id, self.spec.output_ratio);
        let bytes = self.spec.output_bytes(record.bytes());
        if count > 0 {
            out.emit(record.into_output(bytes));
        }
        for k in 1..count {
            out.emit(Record::new(output_id(id, k), bytes));
        }
        Ok(())
    }

    /// A sink that writes one record per call.
    pub(crate) fn write(&self, mut record: Record) -> Result<(), Failure<Record>> {
        if self.call(record.id, record.attempt, record.bytes()) {
            record.attempt += 1;
            return Err(Failure::transient(record, TRANSIENT));
        }
        Ok(())
    }

    /// A batching sink: one call over the whole batch's bytes, its draws keyed by
    /// the first record.
    pub(crate) fn write_batch(&self, mut batch: Vec<Record>) -> Result<(), Failure<Vec<Record>>> {
        let bytes = batch.iter().map(Record::bytes).sum();
        let (id, attempt) = batch.first().map_or((0, 1), |r| (r.id, r.attempt));
        if self.call(id, attempt, bytes) {
            if let Some(first) = batch.first_mut() {
                first.attempt += 1;
            }
            return Err(Failure::transient(batch, TRANSIENT));
        }
        Ok(())
    }
}
