//! From a pipeline file's description to a runtime pipeline ready to start.
//!
//! The source reads and splits ([`Raw`] records); a `decode` stage, which the
//! controller sizes like any other, parses them into [`Record`]s, so that parsing
//! runs on as many cores as pay; then come the file's stages in order and its sink.
//! A postgres source with `partitions` > 1 yields key-range pages instead, and a `read`
//! stage (at most `partitions` workers, each with its own connection) takes decode's
//! place, emitting each page's rows as records.
//! Each exec stage's worker starts its own process and each SQLite writer opens its
//! own connection when it joins the pool ([`Builder::try_flat_map_with`]); dead
//! letters go to the dead-letter file, whose refusal stops admission.
//!
//! [`Built::figures`] keeps the connectors' figures for the report: files and bytes
//! read, rows written, dead letters by cause, the acknowledged position.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use brigade_controller::{from_name, Override};
use brigade_runtime::{
    BoxError, Builder, DeadLetterCause, DeadLetterRefused, Failure, Pipeline, Rejected, Source,
    SpillConfig,
};

use super::spec::{PipelineSpec, SinkConfig, SourceConfig, StageKind, StageSettings};
use crate::dead_letter::DeadLetterFile;
use crate::exec::{ExecFailure, ExecWorker};
use crate::file::{CheckpointStore, FileSource, FileStats, Format};
use crate::http::HttpWriter;
use crate::out::{FileSink, StdoutSink};
use crate::postgres::sink::PostgresWriter;
use crate::postgres::source::{PagePlanner, PageReader, PgSource, PgSourceConfig};
use crate::raw::{decode, Raw};
use crate::redis::{GroupStats, HashWriter, RedisSource, StreamWriter};
use crate::sqlite::SqliteWriter;
use crate::stdin::StdinSource;
use crate::units::Span;
use crate::Record;

/// Applies a stage's pool and limits to the stage added last, and notes its pin.
macro_rules! settle {
    ($builder:expr, $settings:expr, $index:expr, $pins:expr) => {{
        let settings: &StageSettings = $settings;
        let mut builder = $builder
            .workers(settings.min, settings.max)
            .initial_workers(settings.initial);
        if let Some(capacity) = settings.queue_capacity {
            builder = builder.queue_capacity(capacity);
        }
        if let Some(calls) = settings.concurrency_limit {
            builder = builder.concurrency_limit(calls);
        }
        if let Some(rate) = settings.rate_limit {
            builder = builder.rate_limit(rate);
        }
        if let Some(workers) = settings.pin {
            $pins.push(Override::PinWorkers {
                stage: $index,
                workers,
            });
        }
        builder
    }};
}

/// The name of the stage that parses what the source read.
pub const DECODE_STAGE: &str = "decode";

/// The name of the stage that reads a partitioned postgres source's pages, in place
/// of [`DECODE_STAGE`]: its most workers is `partitions`.
pub const READ_STAGE: &str = "read";

/// What the command line may override in a pipeline file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--policy`.
    pub policy: Option<String>,
    /// `--tick`.
    pub tick: Option<Duration>,
}

/// A pipeline built from a file, not started yet.
pub struct Built {
    /// The runtime pipeline.
    pub pipeline: Pipeline,
    /// The file's pins, to apply through the monitor once it runs.
    pub pins: Vec<Override>,
    /// The connectors' figures, filled as it runs.
    pub figures: Figures,
}

/// Why a pipeline file could not be built: a part that could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("{part}: {message}")]
pub struct BuildError {
    /// `source`, `checkpoint`, `dead_letter`, `runtime`, `sink`.
    pub part: String,
    /// What went wrong.
    pub message: String,
}

impl BuildError {
    fn new(part: &str, message: impl ToString) -> Self {
        Self {
            part: part.to_owned(),
            message: message.to_string(),
        }
    }
}

/// The connectors' figures, shared with the running pipeline.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// The file source's counts, for a file source.
    pub files: Option<Arc<FileStats>>,
    /// The consumer group's figures, for a Redis source.
    pub redis: Option<Arc<GroupStats>>,
    /// Records the sink wrote (rows, lines).
    pub written: Arc<AtomicU64>,
    /// Dead letters by stage and cause (`decode: permanent`), as written to the
    /// dead-letter file (or kept in the report without one).
    pub dead_letters: Arc<Mutex<BTreeMap<String, u64>>>,
    /// Where dead letters went, if to a file.
    pub dead_letter_file: Option<PathBuf>,
    /// The checkpoint file, if the source keeps one.
    pub checkpoint: Option<PathBuf>,
}

impl Figures {
    /// Dead letters so far by stage and cause, `decode: permanent` → count.
    pub fn dead_letter_counts(&self) -> BTreeMap<String, u64> {
        self.dead_letters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Builds `spec` into a runtime pipeline, with `overrides` from the command line.
/// Opens what must exist before the run (the checkpoint store, the dead-letter file,
/// the input's file list); workers open their own resources as they start.
pub fn build(spec: &PipelineSpec, overrides: &Overrides) -> Result<Built, BuildError> {
    let mut figures = Figures::default();
    let mut pins = Vec::new();
    let (builder, first_max) = match &spec.source.config {
        SourceConfig::Postgres(config) if config.partitions > 1 => {
            (pages(spec, config, &mut figures)?, config.partitions)
        }
        other => {
            let format = match other {
                SourceConfig::File(config) => config.format,
                SourceConfig::Stdin(config) => config.format,
                // Rows are values already: decode passes them on whatever the format.
                SourceConfig::Postgres(_) => Format::Jsonl,
                // Entries are objects already, or JSON in the `field` the decode stage parses.
                SourceConfig::Redis(_) => Format::Jsonl,
            };
            let builder = source(spec, &mut figures)?.try_map(DECODE_STAGE, move |raw: Raw| {
                decode(raw, format).map_err(|error| Failure::permanent(error.raw, error.error))
            });
            let max = spec.runtime.max_workers.unwrap_or(DEFAULT_MAX_WORKERS);
            (builder, max)
        }
    };
    let decode_settings = StageSettings {
        min: 1,
        max: first_max,
        initial: 1,
        pin: None,
        queue_capacity: None,
        concurrency_limit: None,
        rate_limit: None,
    };
    let mut builder = settle!(builder, &decode_settings, 0, pins);
    for (i, stage) in spec.stages.iter().enumerate() {
        builder = match &stage.kind {
            StageKind::Fields(config) => {
                let config = config.clone();
                builder.try_map(&stage.name, move |mut record: Record| {
                    match config.apply(&mut record.value) {
                        Ok(()) => Ok(record),
                        Err(error) => Err(Failure::permanent(record, error)),
                    }
                })
            }
            StageKind::Exec(config) => {
                let (config, base) = (config.clone(), spec.base.clone());
                builder.try_flat_map_with(
                    &stage.name,
                    move || ExecWorker::start(&config, &base).map_err(BoxError::from),
                    |worker, record, out| match worker.call(record) {
                        Ok(outputs) => {
                            outputs.into_iter().for_each(|output| out.emit(output));
                            Ok(())
                        }
                        Err(failure) => Err(exec_failure(*failure)),
                    },
                )
            }
        };
        builder = settle!(builder, &stage.settings, i + 1, pins);
    }
    let builder = dead_letters(runtime(builder, spec, overrides)?, spec, &mut figures)?;
    let pipeline = sink(builder, spec, &figures.written)?;
    let mut pipeline = settle!(pipeline, &spec.sink.settings, spec.stages.len() + 1, pins);
    pipeline = pipeline.batch_size(spec.sink.batch_size.unwrap_or(DEFAULT_BATCH));

    Ok(Built {
        pipeline,
        pins,
        figures,
    })
}

/// The records per batch a sink starts with unless the file says: enough that a file
/// sink's fsync or a SQLite commit is not paid per record, few enough that a slow
/// sink's first calls are short.
pub const DEFAULT_BATCH: usize = 100;

/// The most workers a stage may have when neither it nor `[runtime]` says.
const DEFAULT_MAX_WORKERS: usize = 64;

/// The source, started on its builder; a file source's figures and checkpoint noted.
fn source(spec: &PipelineSpec, figures: &mut Figures) -> Result<Builder<Raw>, BuildError> {
    match &spec.source.config {
        SourceConfig::File(config) => {
            let mut config = config.clone();
            let store = match &spec.checkpoint {
                Some(checkpoint) => {
                    config.checkpoint_interval = Some(Span(checkpoint.interval));
                    let store = CheckpointStore::open(&spec.base.join(&checkpoint.dir))
                        .map_err(|error| BuildError::new("checkpoint", error))?;
                    let id = config.id.as_deref().unwrap_or(&config.path);
                    figures.checkpoint = Some(store.path_for(id));
                    Some(store)
                }
                None => None,
            };
            let source = FileSource::open(&config, &spec.base, store)
                .map_err(|error| BuildError::new("source", error))?;
            figures.files = Some(source.stats());
            Ok(reading(source, spec))
        }
        SourceConfig::Stdin(config) => Ok(reading(StdinSource::new(config), spec)),
        SourceConfig::Postgres(config) => {
            let checkpoint = spec
                .checkpoint
                .as_ref()
                .map(|checkpoint| (spec.base.join(&checkpoint.dir), checkpoint.interval));
            let at = checkpoint
                .as_ref()
                .map(|(dir, every)| (dir.as_path(), *every));
            let source =
                PgSource::open(config, at).map_err(|error| BuildError::new("source", error))?;
            figures.checkpoint = source.checkpoint_path().map(Into::into);
            Ok(reading(source, spec))
        }
        SourceConfig::Redis(config) => {
            let source = RedisSource::open(config, &spec.base)
                .map_err(|error| BuildError::new("source", error))?;
            figures.redis = Some(source.stats());
            Ok(reading(source, spec))
        }
    }
}

/// A builder reading `source`, with the spill `[runtime] spill` asks for.
fn reading<S: Source<Item = Raw>>(source: S, spec: &PipelineSpec) -> Builder<Raw> {
    match spec.runtime.spill {
        Some(capacity) => {
            let dir = match &spec.runtime.spill_dir {
                Some(dir) => spec.base.join(dir),
                None => std::env::temp_dir(),
            };
            Pipeline::from_source_with_spill(source, SpillConfig::new(dir, capacity))
        }
        None => Pipeline::from_source(source),
    }
}

/// A partitioned postgres source: its key range's pages, read by the `read` stage's
/// workers, each on its own connection.
fn pages(
    spec: &PipelineSpec,
    config: &PgSourceConfig,
    figures: &mut Figures,
) -> Result<Builder<Record>, BuildError> {
    let checkpoint = spec
        .checkpoint
        .as_ref()
        .map(|checkpoint| (spec.base.join(&checkpoint.dir), checkpoint.interval));
    let at = checkpoint
        .as_ref()
        .map(|(dir, every)| (dir.as_path(), *every));
    let planner =
        PagePlanner::open(config, at).map_err(|error| BuildError::new("source", error))?;
    figures.checkpoint = planner.checkpoint_path().map(Into::into);
    let config = config.clone();
    Ok(Pipeline::from_source(planner).try_flat_map_with(
        READ_STAGE,
        move || PageReader::open(&config).map_err(BoxError::from),
        |reader, page, out| match reader.read(page) {
            Ok(records) => {
                records.into_iter().for_each(|record| out.emit(record));
                Ok(())
            }
            Err(error) if error.is_transient() => Err(Failure::transient(page, error)),
            Err(error) => Err(Failure::permanent(page, error)),
        },
    ))
}

/// The `[runtime]` settings, with the command line's overrides.
fn runtime<T: Send + 'static>(
    builder: Builder<T>,
    spec: &PipelineSpec,
    overrides: &Overrides,
) -> Result<Builder<T>, BuildError> {
    let settings = &spec.runtime;
    let policy = overrides.policy.as_deref().unwrap_or(&settings.policy);
    let controller = from_name(policy).map_err(|error| BuildError::new("runtime", error))?;
    let mut builder = builder
        .controller(controller)
        .retry(settings.retry.policy());
    if let Some(tick) = overrides.tick.or(settings.tick) {
        builder = builder.tick(tick);
    }
    if let Some(bytes) = settings.memory_budget {
        builder = builder.memory_budget(bytes);
    }
    if let Some(bytes) = settings.serial_threshold {
        builder = builder.serial_threshold(bytes);
    }
    if let Some(workers) = settings.max_workers {
        builder = builder.default_max_workers(workers);
    }
    if let Some(capacity) = settings.queue_capacity {
        builder = builder.default_queue_capacity(capacity);
    }
    Ok(builder)
}

/// Dead letters to the `[dead_letter]` file, counted by stage and cause; without
/// one they stay in the report.
fn dead_letters<T: Send + 'static>(
    builder: Builder<T>,
    spec: &PipelineSpec,
    figures: &mut Figures,
) -> Result<Builder<T>, BuildError> {
    let Some(config) = &spec.dead_letter else {
        return Ok(builder);
    };
    let mut file = DeadLetterFile::open(config, &spec.base)
        .map_err(|error| BuildError::new("dead_letter", error))?;
    figures.dead_letter_file = Some(spec.base.join(&config.path));
    let counts = Arc::clone(&figures.dead_letters);
    Ok(builder.try_on_dead_letter(move |letter| {
        if let Err(error) = file.write(&letter) {
            return Err(DeadLetterRefused::new(letter, error));
        }
        let key = format!("{}: {}", letter.stage, cause_name(&letter.cause));
        *counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default() += 1;
        Ok(())
    }))
}

/// A cause's name as the dead-letter file writes it: `permanent`, `panicked`, …
fn cause_name(cause: &DeadLetterCause) -> &'static str {
    match cause {
        DeadLetterCause::Permanent => "permanent",
        DeadLetterCause::RetriesExhausted { .. } => "retries_exhausted",
        DeadLetterCause::Panicked => "panicked",
        DeadLetterCause::TooLarge { .. } => "too_large",
    }
}

/// An exec stage's failure as the runtime retries (transient) or dead-letters it.
fn exec_failure(failure: ExecFailure) -> Failure<Record> {
    let transient = failure.is_transient();
    let ExecFailure { record, error, .. } = failure;
    if transient {
        Failure::transient(record, error)
    } else {
        Failure::permanent(record, error)
    }
}

/// The sink, each worker with its own file handle or connection, counting what it
/// wrote in `written`.
fn sink(
    builder: Builder<Record>,
    spec: &PipelineSpec,
    written: &Arc<AtomicU64>,
) -> Result<Pipeline, BuildError> {
    let name = &spec.sink.name;
    let base = spec.base.clone();
    let written = Arc::clone(written);
    Ok(match &spec.sink.config {
        SinkConfig::File(config) => {
            // Once, before the workers open it: a crash may have torn the last line.
            FileSink::repair_torn_tail(config, &base)
                .map_err(|error| BuildError::new("sink", error))?;
            // One opened file, shared by the workers: their appends are serialised so
            // that a failed one can be cut off before it is retried.
            let file =
                FileSink::open(config, &base).map_err(|error| BuildError::new("sink", error))?;
            builder.try_batch_sink_with(
                name,
                move || file.share().map_err(BoxError::from),
                move |file, batch| match file.write(&batch) {
                    Ok(()) => {
                        written.fetch_add(batch.len() as u64, Relaxed);
                        Ok(Vec::new())
                    }
                    Err(error) => Err(Failure::transient(batch, error)),
                },
            )
        }
        SinkConfig::Stdout(_) => builder.try_batch_sink_with(
            name,
            || Ok(StdoutSink::new()),
            move |out, batch| match out.write(&batch) {
                Ok(()) => {
                    written.fetch_add(batch.len() as u64, Relaxed);
                    Ok(Vec::new())
                }
                Err(error) => Err(Failure::transient(batch, error)),
            },
        ),
        SinkConfig::Sqlite(config) => {
            let config = config.clone();
            rows(
                builder,
                name,
                move || SqliteWriter::open(&config, &base),
                SqliteWriter::write,
                crate::sqlite::SqliteError::is_transient,
                written,
            )
        }
        SinkConfig::Http(config) => {
            let config = config.clone();
            builder.try_batch_sink_with(
                name,
                move || HttpWriter::open(&config).map_err(BoxError::from),
                move |http, batch| http.write_batch(batch, &written),
            )
        }
        SinkConfig::Postgres(config) => {
            let config = config.clone();
            rows(
                builder,
                name,
                move || PostgresWriter::open(&config),
                PostgresWriter::write,
                crate::postgres::PostgresError::is_transient,
                written,
            )
        }
        SinkConfig::RedisStream(config) => {
            let config = config.clone();
            rows(
                builder,
                name,
                move || StreamWriter::open(&config),
                StreamWriter::write,
                crate::redis::RedisConnectorError::is_transient,
                written,
            )
        }
        SinkConfig::RedisHash(config) => {
            let config = config.clone();
            rows(
                builder,
                name,
                move || HashWriter::open(&config),
                HashWriter::write,
                crate::redis::RedisConnectorError::is_transient,
                written,
            )
        }
    })
}

/// What a row writer's write returns: the rows rejected alone, by index and reason,
/// or the whole batch failed.
type RowsWritten<E> = Result<Vec<(usize, String)>, E>;

/// A sink of row writers (SQLite, PostgreSQL, Redis), one opened per worker: a
/// write rejects rows alone (by index and reason) or fails the whole batch, retried
/// if `transient` says so; the rows written are counted in `written`.
fn rows<W: 'static, E: std::error::Error + Send + Sync + 'static>(
    builder: Builder<Record>,
    name: &str,
    open: impl Fn() -> Result<W, E> + Send + Sync + 'static,
    write: fn(&mut W, &[Record]) -> RowsWritten<E>,
    transient: fn(&E) -> bool,
    written: Arc<AtomicU64>,
) -> Pipeline {
    builder.try_batch_sink_with(
        name,
        move || open().map_err(BoxError::from),
        move |writer, batch| match write(writer, &batch) {
            Ok(rejected) => {
                written.fetch_add((batch.len() - rejected.len()) as u64, Relaxed);
                Ok(take_rejected(batch, rejected))
            }
            Err(error) if transient(&error) => Err(Failure::transient(batch, error)),
            Err(error) => Err(Failure::permanent(batch, error)),
        },
    )
}

/// The records of `batch` a write rejected, each with its index and reason.
fn take_rejected(batch: Vec<Record>, rejected: Vec<(usize, String)>) -> Vec<Rejected<Record>> {
    let mut slots: Vec<Option<Record>> = batch.into_iter().map(Some).collect();
    rejected
        .into_iter()
        .filter_map(|(index, error)| {
            let record = slots.get_mut(index)?.take()?;
            Some(Rejected::new(index, record, error))
        })
        .collect()
}
