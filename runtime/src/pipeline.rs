//! Building a pipeline (a typed chain of stages ending in a sink) and running it.
//!
//! Each builder step records its stage's description and a closure that will assemble
//! it. Assembly runs from the sink back to the source when the pipeline starts, so each
//! stage is built knowing what comes after it: the next queue, the rest of the serial
//! lane, and the weigher of its output type (which [`Builder::weigh_with`] may have
//! replaced after the stage was added).

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use brigade_controller::{Controller, StageRole, Static};

use crate::budget::{Budget, Location};
use crate::clock::Instant;
use crate::config::{BuildError, Config, Oversize};
use crate::context::{DeadLetters, Shared};
use crate::control::{Control, ControlSummary};
use crate::failure::{BoxError, DeadLetter, DeadLetterRefused, Failure, Rejected, RetryPolicy};
use crate::ledger::{Envelope, Finished, Ledger};
use crate::limits::Limits;
use crate::metrics::{Figures, WindowSlot};
use crate::monitor::Monitor;
use crate::queue::Queue;
use crate::report::{Report, RunFailure, StageInFlight, StageReport};
use crate::serial::{SerialFn, SerialLane, SerialMake};
use crate::source::{IterSource, Source, SourceCell, SourceDriver};
use crate::spill::{Spill, SpillCell, SpillConfig, Spillable};
use crate::stage::resource::Opener;
use crate::stage::sink::{self, SinkCore, SinkFn, SinkStep};
use crate::stage::transform::{self, TransformCore, TransformFn, TransformStep};
use crate::stage::{Lane, Pool, Stage, StageControl};
use crate::weigh::{by_trait, Weigh, Weigher};

/// A stage as described to the builder.
struct StageSpec {
    name: String,
    min: usize,
    max: Option<usize>,
    initial: Option<usize>,
    queue_capacity: Option<usize>,
    concurrency_limit: Option<usize>,
    rate_limit: Option<f64>,
}

impl StageSpec {
    /// A stage with the default settings.
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            min: 1,
            max: None,
            initial: None,
            queue_capacity: None,
            concurrency_limit: None,
            rate_limit: None,
        }
    }
}

/// Opens the spill of a source whose records can spill, given where its figures go.
type MakeSpill<T> = Box<dyn FnOnce(Arc<SpillCell>) -> Spill<T> + Send>;

/// Starts the source and serial-lane threads.
type StartSource = Box<dyn FnOnce() -> Result<[JoinHandle<()>; 2], BuildError>>;

/// Everything assembly produces.
struct Assembly {
    shared: Arc<Shared>,
    lane: Arc<SerialLane>,
    specs: Vec<ResolvedSpec>,
    /// Built from the sink backwards.
    stages: Vec<Arc<dyn StageControl>>,
    source: Option<(Arc<SourceCell>, StartSource)>,
    finished: Option<Arc<Finished>>,
    oversize: Oversize,
}

#[derive(Clone)]
struct ResolvedSpec {
    name: String,
    min: usize,
    max: usize,
    initial: usize,
    queue_capacity: usize,
    concurrency_limit: Option<usize>,
    rate_limit: Option<f64>,
}

/// Where records of type `T` go next: the rest of the pipeline as seen from upstream.
struct Downstream<T> {
    queue: Arc<Queue<Envelope<T>>>,
    serial: SerialMake<T>,
    weigher: Weigher<T>,
}

type Assemble<T> = Box<dyn FnOnce(&mut Assembly, Downstream<T>) + Send>;

/// A pipeline under construction whose last stage emits records of type `T`.
///
/// Per-stage settings ([`workers`](Builder::workers), [`initial_workers`](Builder::initial_workers),
/// [`queue_capacity`](Builder::queue_capacity)) apply to the stage added last.
pub struct Builder<T> {
    config: Config,
    specs: Vec<StageSpec>,
    weigher: Weigher<T>,
    assemble: Assemble<T>,
}

/// A complete pipeline, source to sink, ready to start.
pub struct Pipeline {
    config: Config,
    specs: Vec<StageSpec>,
    role: StageRole,
    assemble: Box<dyn FnOnce(&mut Assembly) + Send>,
}

macro_rules! config_methods {
    () => {
        /// How often the metrics window closes and the controller decides (default 1 s).
        pub fn tick(mut self, tick: Duration) -> Self {
            self.config.tick = tick;
            self
        }

        /// Caps bytes admitted and not yet finished (default: no cap). Policies may
        /// lower it, never raise it.
        pub fn memory_budget(mut self, bytes: u64) -> Self {
            self.config.memory_budget = Some(bytes);
            self
        }

        /// Records weighing at least `bytes` go through the serial lane, one at a time
        /// (default: no serial lane until a policy sets a threshold).
        pub fn serial_threshold(mut self, bytes: u64) -> Self {
            self.config.serial_threshold = Some(bytes);
            self
        }

        /// What to do with a record heavier than the whole budget (default: wait for an
        /// empty pipeline).
        pub fn oversize(mut self, oversize: Oversize) -> Self {
            self.config.oversize = oversize;
            self
        }

        /// How transient failures are retried.
        pub fn retry(mut self, policy: RetryPolicy) -> Self {
            self.config.retry = policy;
            self
        }

        /// How many recent snapshots the [`Monitor`] keeps (default 600).
        pub fn history(mut self, snapshots: usize) -> Self {
            self.config.history = snapshots;
            self
        }

        /// How many recent decisions the [`Monitor`] keeps for
        /// [`Monitor::decisions`] (default 1000; older ones are dropped, so a long
        /// run holds the same memory). Subscribers get every decision with its tick
        /// whatever this is.
        pub fn decision_log(mut self, decisions: usize) -> Self {
            self.config.decision_log = decisions;
            self
        }

        /// Input-queue capacity of stages that do not set their own (default 64).
        pub fn default_queue_capacity(mut self, capacity: usize) -> Self {
            self.config.queue_capacity = capacity;
            self
        }

        /// Most workers of stages that do not set their own (default 64).
        pub fn default_max_workers(mut self, workers: usize) -> Self {
            self.config.max_workers = workers;
            self
        }

        /// The policy that turns the knobs (default: [`Static::new()`], which keeps
        /// them as built).
        pub fn controller(mut self, controller: impl Controller + 'static) -> Self {
            self.config.controller = Some(Box::new(controller));
            self
        }

        /// Where dead letters go (default: kept in the [`Report`], every one of them, so
        /// a long run that dead-letters steadily should hand them to a handler).
        pub fn on_dead_letter(
            mut self,
            mut handler: impl FnMut(DeadLetter) + Send + 'static,
        ) -> Self {
            self.config.dead_letters = Some(Box::new(move |letter| {
                handler(letter);
                Ok(())
            }));
            self
        }

        /// Where dead letters go, through an output that can fail (a dead-letter file
        /// that is full or unwritable): a handler that cannot take a letter hands it
        /// back in a [`DeadLetterRefused`]. Then admission stops, the run reports
        /// [`RunFailure::DeadLetterOutputRefused`], that letter (record included) and
        /// every later one are kept in [`Report::dead_letters`], and the source is
        /// never acknowledged past the refused letter's position, so a rerun reads
        /// its record again.
        pub fn try_on_dead_letter(
            mut self,
            handler: impl FnMut(DeadLetter) -> Result<(), DeadLetterRefused> + Send + 'static,
        ) -> Self {
            self.config.dead_letters = Some(Box::new(handler));
            self
        }

        /// Most workers for the stage added last, and fewest (default 1..=64).
        pub fn workers(mut self, min: usize, max: usize) -> Self {
            if let Some(spec) = self.last_spec("workers") {
                spec.min = min;
                spec.max = Some(max);
            }
            self
        }

        /// Workers the stage added last starts with (default: its minimum).
        pub fn initial_workers(mut self, workers: usize) -> Self {
            if let Some(spec) = self.last_spec("initial_workers") {
                spec.initial = Some(workers);
            }
            self
        }

        /// Input-queue capacity of the stage added last.
        pub fn queue_capacity(mut self, capacity: usize) -> Self {
            if let Some(spec) = self.last_spec("queue_capacity") {
                spec.queue_capacity = Some(capacity);
            }
            self
        }

        /// Most calls of the stage added last in progress at once, whatever its
        /// worker count (sink protection; default: no limit).
        pub fn concurrency_limit(mut self, calls: usize) -> Self {
            if let Some(spec) = self.last_spec("concurrency_limit") {
                spec.concurrency_limit = Some(calls);
            }
            self
        }

        /// Most records per second the stage added last takes (sink protection;
        /// default: no limit).
        pub fn rate_limit(mut self, per_second: f64) -> Self {
            if let Some(spec) = self.last_spec("rate_limit") {
                spec.rate_limit = Some(per_second);
            }
            self
        }

        fn last_spec(&mut self, option: &'static str) -> Option<&mut StageSpec> {
            if self.specs.is_empty() && self.config.misuse.is_none() {
                self.config.misuse = Some(BuildError::NoStageYet { option });
            }
            self.specs.last_mut()
        }
    };
}

impl Pipeline {
    /// Starts a pipeline reading an iterator.
    // Not `FromIterator`: it returns a builder to go on with, not a pipeline.
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I>(records: I) -> Builder<I::Item>
    where
        I: IntoIterator,
        I::IntoIter: Send + 'static,
        I::Item: Weigh + Send + 'static,
    {
        Self::from_source(IterSource(records.into_iter()))
    }

    /// Starts a pipeline reading a [`Source`].
    pub fn from_source<S: Source>(source: S) -> Builder<S::Item>
    where
        S::Item: Weigh,
    {
        Self::reading(source, None)
    }

    /// Starts a pipeline reading a [`Source`] whose records can wait on disk: when the
    /// source guard must read while the memory budget is full, the record goes to a
    /// spill file in `spill.dir` (at most `spill.capacity` bytes) and re-enters, in
    /// read order and before any new read, once the budget can hold it. Spilled
    /// records are acknowledged only once finished, so a crash loses none (a rerun
    /// reads them again). See [`Spillable`].
    pub fn from_source_with_spill<S: Source>(source: S, spill: SpillConfig) -> Builder<S::Item>
    where
        S::Item: Weigh + Spillable,
    {
        let capacity = spill.capacity;
        let make: MakeSpill<S::Item> = Box::new(move |cell| Spill::new(spill, cell));
        Self::reading(source, Some((capacity, make)))
    }

    fn reading<S: Source>(source: S, spill: Option<(u64, MakeSpill<S::Item>)>) -> Builder<S::Item>
    where
        S::Item: Weigh,
    {
        let assemble: Assemble<S::Item> = Box::new(move |asm, down| {
            let (serial_tx, serial_rx) = crossbeam_channel::bounded(0);
            let capacity = spill.as_ref().map(|(capacity, _)| *capacity);
            let cell = Arc::new(SourceCell::new(source.idle_timeout(), capacity));
            let spill = spill.map(|(_, make)| make(cell.spill.clone()));
            let driver = SourceDriver {
                source,
                first: down.queue,
                serial: Some(serial_tx),
                lane: asm.lane.clone(),
                weigher: down.weigher,
                shared: asm.shared.clone(),
                cell: cell.clone(),
                oversize: asm.oversize,
                finished: asm.finished.take().expect("assembled once"),
                ack_failed: false,
                spill,
            };
            let lane = asm.lane.clone();
            let serial = down.serial;
            let start = Box::new(move || {
                // A refused source thread drops the driver, whose hand-over closes the
                // lane, so the lane thread ends by itself.
                let lane_thread = lane
                    .start(serial_rx, serial)
                    .map_err(|error| spawn_error("serial lane", &error))?;
                let source_thread = std::thread::Builder::new()
                    .name("brigade:source".into())
                    .spawn(move || driver.run())
                    .map_err(|error| spawn_error("source", &error))?;
                Ok([source_thread, lane_thread])
            });
            asm.source = Some((cell, start));
        });
        Builder {
            config: Config::default(),
            specs: Vec::new(),
            weigher: by_trait(),
            assemble,
        }
    }

    config_methods!();

    /// Batch size the sink starts with (batching sinks only; default 1).
    pub fn batch_size(mut self, records: usize) -> Self {
        self.config.batch_size = records;
        self
    }

    fn resolve(&self) -> Result<Vec<ResolvedSpec>, BuildError> {
        self.config.validate()?;
        let mut resolved: Vec<ResolvedSpec> = Vec::with_capacity(self.specs.len());
        for (index, spec) in self.specs.iter().enumerate() {
            if spec.name.is_empty() {
                return Err(BuildError::EmptyStageName { index });
            }
            if resolved.iter().any(|r| r.name == spec.name) {
                return Err(BuildError::DuplicateStage {
                    name: spec.name.clone(),
                });
            }
            let max = spec.max.unwrap_or(self.config.max_workers);
            let initial = spec.initial.unwrap_or(spec.min);
            if spec.min == 0 || spec.min > initial || initial > max {
                return Err(BuildError::Workers {
                    stage: spec.name.clone(),
                    min: spec.min,
                    initial,
                    max,
                });
            }
            let queue_capacity = spec.queue_capacity.unwrap_or(self.config.queue_capacity);
            if queue_capacity == 0 {
                return Err(BuildError::Zero {
                    what: format!("queue capacity of stage `{}`", spec.name),
                });
            }
            if spec.concurrency_limit == Some(0) {
                return Err(BuildError::Zero {
                    what: format!("concurrency limit of stage `{}`", spec.name),
                });
            }
            if spec
                .rate_limit
                .is_some_and(|rate| rate.is_nan() || rate <= 0.0)
            {
                return Err(BuildError::Zero {
                    what: format!("rate limit of stage `{}`", spec.name),
                });
            }
            resolved.push(ResolvedSpec {
                name: spec.name.clone(),
                min: spec.min,
                max,
                initial,
                queue_capacity,
                concurrency_limit: spec.concurrency_limit,
                rate_limit: spec.rate_limit,
            });
        }
        Ok(resolved)
    }

    /// Checks the description and starts every thread. Returns a handle to watch,
    /// steer and stop the run.
    pub fn start(mut self) -> Result<Running, BuildError> {
        let specs = self.resolve()?;
        let config = &mut self.config;
        let (ledger, finished) = Ledger::new();
        let dead_letters = match config.dead_letters.take() {
            Some(handler) => DeadLetters::Call(handler),
            None => DeadLetters::Keep(Vec::new()),
        };
        let shared = Arc::new(Shared::new(
            Budget::new(specs.len(), config.memory_budget),
            ledger,
            config.retry.clone(),
            dead_letters,
            config.serial_threshold,
        ));
        let mut asm = Assembly {
            shared: shared.clone(),
            lane: Arc::new(SerialLane::default()),
            specs: specs.clone(),
            stages: Vec::new(),
            source: None,
            finished: Some(finished),
            oversize: config.oversize,
        };
        (self.assemble)(&mut asm);
        asm.stages.reverse();
        let last = asm.stages.len() - 1;
        asm.stages[last].set_batch_size(match self.role {
            StageRole::BatchSink => config.batch_size,
            _ => 1,
        });
        for (stage, spec) in asm.stages.iter().zip(&specs) {
            stage.limits().set_concurrency(spec.concurrency_limit);
            stage.limits().set_rate(spec.rate_limit);
            if let Err(error) = stage.clone().set_workers(spec.initial) {
                abort(&asm.stages);
                return Err(spawn_error(&format!("`{}` worker", spec.name), &error));
            }
        }
        let (overrides_tx, overrides) = crossbeam_channel::unbounded();
        let monitor = Monitor::new(config.history, config.decision_log, overrides_tx);
        let done = Arc::new(AtomicBool::new(false));
        let (cell, start_source) = asm.source.take().expect("every pipeline has a source");
        let control = Control {
            shared: shared.clone(),
            stages: asm.stages.clone(),
            source: cell.clone(),
            lane: asm.lane.clone(),
            controller: config
                .controller
                .take()
                .unwrap_or_else(|| Box::new(Static::new())),
            monitor: monitor.clone(),
            overrides,
            tick: config.tick,
            operator_budget: config.memory_budget,
            done: done.clone(),
        };
        let control = match std::thread::Builder::new()
            .name("brigade:control".into())
            .spawn(move || control.run())
        {
            Ok(control) => control,
            Err(error) => {
                abort(&asm.stages);
                return Err(spawn_error("control", &error));
            }
        };
        let [source, lane] = match start_source() {
            Ok(threads) => threads,
            Err(error) => {
                abort(&asm.stages);
                done.store(true, SeqCst);
                control.thread().unpark();
                let _ = control.join();
                return Err(error);
            }
        };
        Ok(Running {
            shared,
            monitor,
            cell,
            stages: asm.stages,
            threads: vec![source, lane],
            control: Some(control),
            done,
        })
    }

    /// Starts the pipeline and waits until the source is exhausted and everything has
    /// drained.
    pub fn run(self) -> Result<Report, BuildError> {
        Ok(self.start()?.wait())
    }
}

impl<T: Send + 'static> Builder<T> {
    config_methods!();

    /// Weighs this builder's current records (the source's, or the last stage's
    /// outputs) with `weigher` instead of their [`Weigh`] implementation.
    pub fn weigh_with(mut self, weigher: impl Fn(&T) -> u64 + Send + Sync + 'static) -> Self {
        self.weigher = Arc::new(weigher);
        self
    }

    fn then<U: Send + 'static>(
        self,
        name: &str,
        func: TransformFn<(), T, U>,
        weigher: Weigher<U>,
    ) -> Builder<U> {
        self.then_with(name, Opener::none(), func, weigher)
    }

    fn then_with<R: 'static, U: Send + 'static>(
        mut self,
        name: &str,
        opener: Opener<R>,
        func: TransformFn<R, T, U>,
        weigher: Weigher<U>,
    ) -> Builder<U> {
        let index = self.specs.len();
        self.specs.push(StageSpec::new(name));
        let upstream = self.assemble;
        let in_weigher = self.weigher;
        let name = name.to_owned();
        let assemble: Assemble<U> = Box::new(move |asm, down: Downstream<U>| {
            let spec = asm.specs[index].clone();
            let input = Arc::new(Queue::new(spec.queue_capacity));
            let core = Arc::new(TransformCore {
                name: name.clone(),
                index,
                opener,
                func,
                weigher: down.weigher,
                shared: asm.shared.clone(),
            });
            let stage = Arc::new(Stage::new(
                name,
                StageRole::Transform,
                input.clone(),
                TransformStep {
                    core: core.clone(),
                    output: down.queue,
                },
                Pool::new(spec.min, spec.max, spec.initial),
                1,
            ));
            let next = down.serial;
            let limits_of = stage.clone();
            let window = stage.serial_window();
            let serial: SerialMake<T> = Box::new(move || {
                let mut next = next();
                // The lane's own resource, opened at its first record and kept.
                let mut scratch = None;
                Box::new(move |envelope: Envelope<T>, lane: &mut Figures| {
                    if scratch.is_none() {
                        scratch = core
                            .opener
                            .open_patiently(&core.shared)
                            .map(transform::Scratch::new);
                    }
                    // None: the drain was abandoned while the open kept failing.
                    let Some(scratch) = scratch.as_mut() else {
                        return;
                    };
                    let mut outputs = Vec::new();
                    let weight = envelope.weight;
                    serial_call(limits_of.limits(), &window, weight, lane, |figures| {
                        core.process(
                            envelope,
                            Lane::Serial,
                            Instant::now(),
                            figures,
                            scratch,
                            |out, _| outputs.push(out),
                        );
                    });
                    for out in outputs {
                        next(out, lane);
                    }
                }) as SerialFn<T>
            });
            asm.stages.push(stage);
            upstream(
                asm,
                Downstream {
                    queue: input,
                    serial,
                    weigher: in_weigher,
                },
            );
        });
        Builder {
            config: self.config,
            specs: self.specs,
            weigher,
            assemble,
        }
    }

    /// A stage that turns each record into one output.
    pub fn map<U: Weigh + Send + 'static>(
        self,
        name: &str,
        f: impl Fn(T) -> U + Send + Sync + 'static,
    ) -> Builder<U> {
        self.then(
            name,
            Box::new(move |_: &mut (), record, out| {
                out.push(f(record));
                Ok(())
            }),
            by_trait(),
        )
    }

    /// A stage that may fail: a [`Failure`] hands the record back to be retried
    /// (transient) or dead-lettered (permanent).
    pub fn try_map<U: Weigh + Send + 'static>(
        self,
        name: &str,
        f: impl Fn(T) -> Result<U, Failure<T>> + Send + Sync + 'static,
    ) -> Builder<U> {
        self.then(
            name,
            Box::new(move |_: &mut (), record, out| {
                out.push(f(record)?);
                Ok(())
            }),
            by_trait(),
        )
    }

    /// A stage that keeps the records for which `keep` is true.
    pub fn filter(self, name: &str, keep: impl Fn(&T) -> bool + Send + Sync + 'static) -> Builder<T>
    where
        T: Weigh,
    {
        self.then(
            name,
            Box::new(move |_: &mut (), record, out| {
                if keep(&record) {
                    out.push(record);
                }
                Ok(())
            }),
            by_trait(),
        )
    }

    /// A stage that turns each record into any number of outputs through an
    /// [`Emitter`].
    pub fn flat_map<U: Weigh + Send + 'static>(
        self,
        name: &str,
        f: impl Fn(T, &mut Emitter<'_, U>) + Send + Sync + 'static,
    ) -> Builder<U> {
        self.then(
            name,
            Box::new(move |_: &mut (), record, out| {
                f(record, &mut Emitter { out });
                Ok(())
            }),
            by_trait(),
        )
    }

    /// A fallible [`flat_map`](Builder::flat_map). Outputs emitted by a call that then
    /// fails are discarded; a retry starts afresh.
    pub fn try_flat_map<U: Weigh + Send + 'static>(
        self,
        name: &str,
        f: impl Fn(T, &mut Emitter<'_, U>) -> Result<(), Failure<T>> + Send + Sync + 'static,
    ) -> Builder<U> {
        self.then(
            name,
            Box::new(move |_: &mut (), record, out| f(record, &mut Emitter { out })),
            by_trait(),
        )
    }

    fn finish(self, name: &str, role: StageRole, func: SinkFn<(), T>) -> Pipeline {
        self.finish_with(name, role, Opener::none(), func)
    }

    fn finish_with<R: 'static>(
        mut self,
        name: &str,
        role: StageRole,
        opener: Opener<R>,
        func: SinkFn<R, T>,
    ) -> Pipeline {
        let index = self.specs.len();
        self.specs.push(StageSpec::new(name));
        let upstream = self.assemble;
        let in_weigher = self.weigher;
        let name = name.to_owned();
        let assemble = Box::new(move |asm: &mut Assembly| {
            let spec = asm.specs[index].clone();
            let input = Arc::new(Queue::new(spec.queue_capacity));
            let core = Arc::new(SinkCore {
                name: name.clone(),
                index,
                opener,
                func,
                shared: asm.shared.clone(),
            });
            let stage = Arc::new(Stage::new(
                name,
                role,
                input.clone(),
                SinkStep { core: core.clone() },
                Pool::new(spec.min, spec.max, spec.initial),
                1,
            ));
            let limits_of = stage.clone();
            let window = stage.serial_window();
            let serial: SerialMake<T> = Box::new(move || {
                // The lane's own resource, opened at its first record and kept.
                let mut scratch = None;
                Box::new(move |envelope: Envelope<T>, lane: &mut Figures| {
                    if scratch.is_none() {
                        scratch = core
                            .opener
                            .open_patiently(&core.shared)
                            .map(sink::Scratch::new);
                    }
                    // None: the drain was abandoned while the open kept failing.
                    let Some(scratch) = scratch.as_mut() else {
                        return;
                    };
                    let weight = envelope.weight;
                    serial_call(limits_of.limits(), &window, weight, lane, |figures| {
                        core.process(
                            &mut vec![envelope],
                            Lane::Serial,
                            Instant::now(),
                            figures,
                            scratch,
                        );
                    });
                }) as SerialFn<T>
            });
            asm.stages.push(stage);
            upstream(
                asm,
                Downstream {
                    queue: input,
                    serial,
                    weigher: in_weigher,
                },
            );
        });
        Pipeline {
            config: self.config,
            specs: self.specs,
            role,
            assemble,
        }
    }

    /// Ends the pipeline with a sink that writes one record per call.
    pub fn sink(self, name: &str, f: impl Fn(T) + Send + Sync + 'static) -> Pipeline {
        self.finish(
            name,
            StageRole::Sink,
            Box::new(move |_: &mut (), batch| {
                batch.drain(..).for_each(&f);
                Ok(Vec::new())
            }),
        )
    }

    /// Ends the pipeline with a fallible per-record sink.
    pub fn try_sink(
        self,
        name: &str,
        f: impl Fn(T) -> Result<(), Failure<T>> + Send + Sync + 'static,
    ) -> Pipeline {
        self.finish(
            name,
            StageRole::Sink,
            Box::new(move |_: &mut (), batch| {
                let record = batch.pop().expect("per-record sinks get batches of one");
                f(record)
                    .map(|()| Vec::new())
                    .map_err(|failure| failure.map_record(|record| vec![record]))
            }),
        )
    }

    /// Ends the pipeline with a sink that takes batches: up to the current batch size
    /// of records that are already waiting (it never lingers for more).
    pub fn batch_sink(self, name: &str, f: impl Fn(Vec<T>) + Send + Sync + 'static) -> Pipeline {
        self.finish(
            name,
            StageRole::BatchSink,
            Box::new(move |_: &mut (), batch| {
                f(std::mem::take(batch));
                Ok(Vec::new())
            }),
        )
    }

    /// Ends the pipeline with a fallible batching sink. A failure hands the batch back
    /// (transient: the whole batch is retried with backoff; permanent: every record
    /// is dead-lettered).
    pub fn try_batch_sink(
        self,
        name: &str,
        write: impl Fn(Vec<T>) -> Result<(), Failure<Vec<T>>> + Send + Sync + 'static,
    ) -> Pipeline {
        self.finish(
            name,
            StageRole::BatchSink,
            Box::new(move |_: &mut (), batch| write(std::mem::take(batch)).map(|()| Vec::new())),
        )
    }

    /// A [`try_batch_sink`](Builder::try_batch_sink) that may write part of a batch:
    /// `Ok` lists the records the write [`Rejected`] while it wrote the others. Each
    /// of those is dead-lettered on its own (cause permanent, its own error and
    /// source position); the rest count as written. `Err` keeps the whole-batch
    /// meaning of [`try_batch_sink`](Builder::try_batch_sink), except a
    /// [`Failure::partial`]: some records settled, some rejected, and only the rest
    /// retried (a bulk answer whose items partly failed).
    pub fn try_batch_sink_partial(
        self,
        name: &str,
        write: impl Fn(Vec<T>) -> Result<Vec<Rejected<T>>, Failure<Vec<T>>> + Send + Sync + 'static,
    ) -> Pipeline {
        self.finish(
            name,
            StageRole::BatchSink,
            Box::new(move |_: &mut (), batch| write(std::mem::take(batch))),
        )
    }

    /// A [`try_map`](Builder::try_map) whose workers each hold a resource (a
    /// connection, a process) that `open` makes on the worker's own thread when it
    /// joins the pool, before it takes a record. Dropping the resource closes it:
    /// each worker drops its own when it retires or its input closes. The serial
    /// lane opens one of its own at its first record and keeps it.
    ///
    /// An `open` that fails (or panics) is counted in the Snapshot
    /// (`open_failures`, `open_error`). The worker then retires, and the pool's
    /// target drops by one, if other workers are live; the only worker retries with
    /// the pipeline's [`RetryPolicy`] backoff (capped at its longest) until it opens,
    /// stalling the stage without losing a record.
    pub fn try_map_with<R: 'static, U: Weigh + Send + 'static>(
        self,
        name: &str,
        open: impl Fn() -> Result<R, BoxError> + Send + Sync + 'static,
        f: impl Fn(&mut R, T) -> Result<U, Failure<T>> + Send + Sync + 'static,
    ) -> Builder<U> {
        self.then_with(
            name,
            Opener::new(Box::new(open)),
            Box::new(move |resource: &mut R, record, out| {
                out.push(f(resource, record)?);
                Ok(())
            }),
            by_trait(),
        )
    }

    /// A [`try_flat_map`](Builder::try_flat_map) whose workers each hold a resource
    /// opened when they join and dropped (closed) when they leave, as
    /// [`try_map_with`](Builder::try_map_with) describes.
    pub fn try_flat_map_with<R: 'static, U: Weigh + Send + 'static>(
        self,
        name: &str,
        open: impl Fn() -> Result<R, BoxError> + Send + Sync + 'static,
        f: impl Fn(&mut R, T, &mut Emitter<'_, U>) -> Result<(), Failure<T>> + Send + Sync + 'static,
    ) -> Builder<U> {
        self.then_with(
            name,
            Opener::new(Box::new(open)),
            Box::new(move |resource: &mut R, record, out| {
                f(resource, record, &mut Emitter { out })
            }),
            by_trait(),
        )
    }

    /// A [`try_batch_sink_partial`](Builder::try_batch_sink_partial) whose workers
    /// each hold a resource (a database connection) opened when they join and
    /// dropped (closed) when they leave, as [`try_map_with`](Builder::try_map_with)
    /// describes.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    /// use brigade_runtime::{Pipeline, Rejected};
    ///
    /// let written = Arc::new(AtomicUsize::new(0));
    /// let counter = written.clone();
    /// let report = Pipeline::from_iter(0..100u64)
    ///     .try_batch_sink_with(
    ///         "store",
    ///         move || Ok(counter.clone()),
    ///         |connection, batch| {
    ///             let mut rejected = Vec::new();
    ///             for (index, n) in batch.into_iter().enumerate() {
    ///                 if n == 13 {
    ///                     rejected.push(Rejected::new(index, n, "unlucky"));
    ///                 } else {
    ///                     connection.fetch_add(1, Ordering::Relaxed);
    ///                 }
    ///             }
    ///             Ok(rejected)
    ///         },
    ///     )
    ///     .run()
    ///     .unwrap();
    /// assert_eq!(written.load(Ordering::Relaxed), 99);
    /// assert_eq!(report.dead_letters[0].position, 13);
    /// ```
    pub fn try_batch_sink_with<R: 'static>(
        self,
        name: &str,
        open: impl Fn() -> Result<R, BoxError> + Send + Sync + 'static,
        write: impl Fn(&mut R, Vec<T>) -> Result<Vec<Rejected<T>>, Failure<Vec<T>>>
            + Send
            + Sync
            + 'static,
    ) -> Pipeline {
        self.finish_with(
            name,
            StageRole::BatchSink,
            Opener::new(Box::new(open)),
            Box::new(move |resource: &mut R, batch| write(resource, std::mem::take(batch))),
        )
    }
}

fn spawn_error(thread: &str, error: &std::io::Error) -> BuildError {
    BuildError::Spawn {
        thread: thread.to_owned(),
        error: error.to_string(),
    }
}

/// Stops the stages of a pipeline that could not start: their inputs close, and their
/// workers, which have no records yet, leave.
fn abort(stages: &[Arc<dyn StageControl>]) {
    for stage in stages {
        stage.close_input();
    }
    for stage in stages {
        stage.pool().join();
    }
}

/// One call of a stage in the serial lane: passes the stage's limits, runs `call`,
/// counts the record in the stage's serial window and its busy time in the lane's.
fn serial_call(
    limits: &Limits,
    window: &WindowSlot,
    weight: u64,
    lane: &mut Figures,
    call: impl FnOnce(&mut Figures),
) {
    let mut figures = Figures {
        clock: Some(window.clone()),
        ..Figures::default()
    };
    let entry = limits.enter(1, figures.blocked_clock());
    figures.counts.wait_out_ns += entry.waited.as_nanos() as u64;
    lane.call_starts(Instant::now());
    call(&mut figures);
    lane.call_ends();
    limits.exit(entry);
    lane.counts.busy_ns += figures.counts.busy_ns;
    figures.take_in(weight);
    figures.end_call();
    window.lock().add(&mut figures);
}

/// Where a [`flat_map`](Builder::flat_map) stage puts its outputs.
pub struct Emitter<'a, U> {
    out: &'a mut Vec<U>,
}

impl<U> Emitter<'_, U> {
    /// Emits one output.
    pub fn emit(&mut self, record: U) {
        self.out.push(record);
    }
}

/// A cloneable handle on a running pipeline's admission, from
/// [`Running::admission`].
///
/// ```
/// use brigade_runtime::Pipeline;
///
/// let running = Pipeline::from_iter(0u64..)
///     .sink("discard", |_| {})
///     .start()
///     .expect("a valid pipeline");
/// let admission = running.admission();
/// std::thread::spawn(move || admission.stop());
/// let report = running.wait();
/// assert_eq!(report.admitted, report.completed + report.dead_lettered);
/// ```
#[derive(Clone)]
pub struct Admission {
    shared: Arc<Shared>,
    cell: Arc<SourceCell>,
}

impl Admission {
    /// Stops admission: the source reads no more, and what is in flight goes on to
    /// the end.
    pub fn stop(&self) {
        self.shared.stop.store(true, SeqCst);
    }

    /// True once admission has been stopped (by this handle or the pipeline's owner).
    pub fn is_stopped(&self) -> bool {
        self.shared.stop.load(SeqCst)
    }

    /// True once the source is done and nothing is in flight.
    pub fn is_drained(&self) -> bool {
        self.cell.exhausted.load(SeqCst) && self.shared.ledger.in_flight() == 0
    }
}

/// A running pipeline: watch it through its [`Monitor`], stop it with
/// [`shutdown`](Running::shutdown), or wait for it to finish.
pub struct Running {
    shared: Arc<Shared>,
    monitor: Monitor,
    cell: Arc<SourceCell>,
    stages: Vec<Arc<dyn StageControl>>,
    threads: Vec<JoinHandle<()>>,
    control: Option<JoinHandle<ControlSummary>>,
    done: Arc<AtomicBool>,
}

impl Running {
    /// A handle on the run's snapshots and decisions, and the way to send overrides.
    pub fn monitor(&self) -> Monitor {
        self.monitor.clone()
    }

    /// Stops admission without waiting: the source reads no more, and what is in
    /// flight goes on to the end. Follow with [`wait`](Running::wait).
    pub fn stop_admission(&self) {
        self.admission().stop();
    }

    /// True once the source is done and nothing is in flight.
    pub fn is_drained(&self) -> bool {
        self.admission().is_drained()
    }

    /// A handle that stops admission from any thread (a signal handler, a
    /// dashboard), while another thread owns the pipeline and waits for its end.
    pub fn admission(&self) -> Admission {
        Admission {
            shared: self.shared.clone(),
            cell: self.cell.clone(),
        }
    }

    /// Stops admission, finishes everything in flight, acknowledges, and reports.
    pub fn shutdown(self) -> Report {
        self.stop_admission();
        self.wait()
    }

    /// Stops admission and drains as [`shutdown`](Running::shutdown) does, but gives
    /// up at `deadline` (a sink call that hangs would otherwise hold the drain for as
    /// long as it hangs). Records still in flight then are neither written nor
    /// acknowledged: the report names how many and where
    /// ([`RunFailure::DrainDeadline`]), and their threads are left to end with the
    /// process.
    ///
    /// ```
    /// use std::sync::{mpsc, Mutex};
    /// use std::time::Duration;
    /// use brigade_runtime::{Pipeline, RunFailure};
    ///
    /// let (called, first_call) = mpsc::channel();
    /// let called = Mutex::new(called);
    /// let running = Pipeline::from_iter(0u64..)
    ///     .sink("hangs", move |_| {
    ///         let _ = called.lock().unwrap().send(());
    ///         std::thread::sleep(Duration::from_secs(3600));
    ///     })
    ///     .start()
    ///     .expect("a valid pipeline");
    /// first_call.recv().unwrap();
    /// let report = running.shutdown_within(Duration::from_millis(200));
    /// assert!(matches!(report.failures[0], RunFailure::DrainDeadline { .. }));
    /// assert_eq!(report.acknowledged, 0);
    /// ```
    pub fn shutdown_within(self, deadline: Duration) -> Report {
        self.stop_admission();
        self.finish(Some(deadline))
    }

    /// Waits until the source is exhausted (or admission stopped) and everything has
    /// drained, then reports.
    pub fn wait(self) -> Report {
        self.finish(None)
    }

    /// Waits for the drain, for at most `deadline` if given, then reports.
    fn finish(mut self, deadline: Option<Duration>) -> Report {
        let mut threads = std::mem::take(&mut self.threads);
        let abandoned = deadline.is_some_and(|deadline| {
            let source = &threads[0];
            let until = std::time::Instant::now() + deadline;
            while !source.is_finished() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            !source.is_finished()
        });
        if abandoned {
            self.abandon(deadline.unwrap_or_default());
            // The source thread stops waiting within a step, unless it is itself
            // blocked handing a record to a stuck stage; then it is left behind.
            let grace = std::time::Instant::now() + Duration::from_millis(500);
            while !threads[0].is_finished() && std::time::Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(5));
            }
            threads.retain(|thread| thread.is_finished());
        }
        for thread in threads {
            join(thread);
        }
        if !abandoned {
            for stage in &self.stages {
                stage.pool().join();
            }
        }
        self.done.store(true, SeqCst);
        let control = self.control.take().expect("waited once");
        control.thread().unpark();
        let summary = join(control);
        let (admitted, completed, dead_lettered) = self.shared.ledger.counts();
        let elapsed_s = self.shared.elapsed_s();
        Report {
            admitted,
            completed,
            dead_lettered,
            acknowledged: self.cell.acked.load(SeqCst),
            elapsed_s,
            throughput: completed as f64 / elapsed_s.max(f64::EPSILON),
            peak_inflight_bytes: self.shared.budget.peak(),
            peak_rss_bytes: summary.peak_rss_bytes.max(crate::usage::peak_rss_bytes()),
            worker_seconds: summary.stages.iter().map(|s| s.worker_s).sum(),
            decisions: summary.decisions,
            stages: self
                .stages
                .iter()
                .zip(summary.stages)
                .map(|(stage, totals)| StageReport {
                    name: stage.name().to_owned(),
                    records_in: totals.records_in,
                    records_out: totals.records_out,
                    errors: totals.errors,
                    retries: totals.retries,
                    dead_lettered: totals.dead_lettered,
                    busy_s: totals.busy_s,
                    worker_seconds: totals.worker_s,
                    most_workers: totals.most_workers,
                })
                .collect(),
            failures: self.shared.take_failures(),
            dead_letters: self.shared.take_dead_letters(),
        }
    }

    /// Gives up on the records in flight: notes where they are and tells the source
    /// thread to stop waiting for them.
    fn abandon(&self, deadline: Duration) {
        let stages = self
            .stages
            .iter()
            .enumerate()
            .map(|(i, stage)| StageInFlight {
                name: stage.name().to_owned(),
                queued: stage.queue_len() as u64,
                bytes: self.shared.budget.held_at(Location::Stage(i)),
            })
            .collect();
        self.shared.fail(RunFailure::DrainDeadline {
            after_s: deadline.as_secs_f64(),
            records: self.shared.ledger.in_flight(),
            stages,
        });
        self.shared.abandon.store(true, SeqCst);
    }
}

/// Joins a runtime thread, passing on its panic (a runtime bug) with its message.
fn join<T>(thread: JoinHandle<T>) -> T {
    match thread.join() {
        Ok(value) => value,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}
