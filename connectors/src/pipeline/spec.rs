//! The validated description of a pipeline file: what [`load`](super::load) returns.

use std::path::PathBuf;
use std::time::Duration;

use brigade_runtime::RetryPolicy;

use crate::dead_letter::DeadLetterConfig;
use crate::exec::ExecConfig;
use crate::fields::FieldsConfig;
use crate::file::FileSourceConfig;
use crate::http::HttpSinkConfig;
use crate::out::{FileSinkConfig, StdoutSinkConfig};
use crate::postgres::sink::PostgresSinkConfig;
use crate::postgres::source::PgSourceConfig;
use crate::redis::{RedisHashSinkConfig, RedisSourceConfig, RedisStreamSinkConfig};
use crate::sqlite::SqliteSinkConfig;
use crate::stdin::StdinSourceConfig;

/// A pipeline file, read and checked: every value in range, every name unique.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineSpec {
    /// `name`, or the file's stem.
    pub name: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// The file's directory: relative paths in connectors resolve against it.
    pub base: PathBuf,
    /// `[runtime]`.
    pub runtime: RuntimeSettings,
    /// `[source]`.
    pub source: SourceSpec,
    /// `[[stage]]`, in order.
    pub stages: Vec<StageSpec>,
    /// `[sink]`.
    pub sink: SinkSpec,
    /// `[dead_letter]`; without it dead letters are only counted and logged.
    pub dead_letter: Option<DeadLetterConfig>,
    /// `[checkpoint]`; only with a file source or a postgres source with a key.
    pub checkpoint: Option<CheckpointSettings>,
}

impl PipelineSpec {
    /// The name of the first stage, the one that turns what the source yields into
    /// records: `read` for a partitioned postgres source (it reads the pages), else
    /// `decode`.
    pub fn first_stage_name(&self) -> &'static str {
        match &self.source.config {
            SourceConfig::Postgres(config) if config.partitions > 1 => super::build::READ_STAGE,
            _ => super::build::DECODE_STAGE,
        }
    }
}

/// `[runtime]`: the settings of the whole pipeline. `None` leaves the runtime's
/// default.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeSettings {
    /// `memory_budget`: bytes admitted and not yet finished.
    pub memory_budget: Option<u64>,
    /// `tick`: how often the controller decides.
    pub tick: Option<Duration>,
    /// `policy`: a name `brigade_controller::from_name` takes; `adaptive` by default.
    pub policy: String,
    /// `serial_threshold`: records at least this heavy go one at a time.
    pub serial_threshold: Option<u64>,
    /// `max_workers`: the most workers of a stage that does not set its own.
    pub max_workers: Option<usize>,
    /// `queue_capacity`: the input queue of a stage that does not set its own.
    pub queue_capacity: Option<usize>,
    /// `retry`: how transient failures are retried.
    pub retry: RetrySettings,
    /// `spill`: disk the source guard's reads may wait on while the budget is full.
    pub spill: Option<u64>,
    /// `spill_dir`: where the spill file goes (relative to the pipeline file; the
    /// system's temporary directory by default).
    pub spill_dir: Option<PathBuf>,
}

impl Default for RuntimeSettings {
    /// What a file without `[runtime]` gets: the adaptive policy and the runtime's
    /// defaults.
    fn default() -> Self {
        Self {
            memory_budget: None,
            tick: None,
            policy: "adaptive".to_owned(),
            serial_threshold: None,
            max_workers: None,
            queue_capacity: None,
            retry: RetrySettings::default(),
            spill: None,
            spill_dir: None,
        }
    }
}

/// `[runtime] retry = { attempts, initial_backoff, max_backoff }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetrySettings {
    /// Calls in all, the first included; default 5.
    pub attempts: Attempts,
    /// Sleep before the first retry; default 10ms.
    pub initial_backoff: Duration,
    /// Longest sleep between two calls; default 2s.
    pub max_backoff: Duration,
}

/// How many calls a transiently failing record gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempts {
    /// At most this many calls (at least 1).
    Times(u32),
    /// `"forever"`: retried until it succeeds or the pipeline stops.
    Forever,
}

impl RetrySettings {
    /// The runtime's retry policy; `forever` is `u32::MAX` calls.
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            attempts: match self.attempts {
                Attempts::Times(times) => times,
                Attempts::Forever => u32::MAX,
            },
            initial_backoff: self.initial_backoff,
            max_backoff: self.max_backoff,
        }
    }
}

impl Default for RetrySettings {
    fn default() -> Self {
        let policy = RetryPolicy::default();
        Self {
            attempts: Attempts::Times(policy.attempts),
            initial_backoff: policy.initial_backoff,
            max_backoff: policy.max_backoff,
        }
    }
}

/// `[source]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceSpec {
    /// Its connector and settings.
    pub config: SourceConfig,
}

/// A source's connector and its settings.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceConfig {
    /// `type = "file"`.
    File(FileSourceConfig),
    /// `type = "stdin"`.
    Stdin(StdinSourceConfig),
    /// `type = "postgres"`.
    Postgres(PgSourceConfig),
    /// `type = "redis"` (boxed: it has many keys).
    Redis(Box<RedisSourceConfig>),
}

impl SourceConfig {
    /// The `type` as written.
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceConfig::File(_) => "file",
            SourceConfig::Stdin(_) => "stdin",
            SourceConfig::Postgres(_) => "postgres",
            SourceConfig::Redis(_) => "redis",
        }
    }
}

/// One `[[stage]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct StageSpec {
    /// `name`: unique among the stages and the sink.
    pub name: String,
    /// Its connector and settings.
    pub kind: StageKind,
    /// Its worker pool and limits.
    pub settings: StageSettings,
}

/// A stage's connector and its settings.
#[derive(Clone, Debug, PartialEq)]
pub enum StageKind {
    /// `type = "exec"`.
    Exec(ExecConfig),
    /// `type = "fields"`.
    Fields(FieldsConfig),
}

impl StageKind {
    /// The `type` as written.
    pub fn type_name(&self) -> &'static str {
        match self {
            StageKind::Exec(_) => "exec",
            StageKind::Fields(_) => "fields",
        }
    }
}

/// The runtime keys a stage or the sink may have: its worker pool and its limits.
#[derive(Clone, Debug, PartialEq)]
pub struct StageSettings {
    /// `workers.min`: fewest workers; default 1.
    pub min: usize,
    /// `workers.max`: most workers; default `[runtime] max_workers`, else 64.
    pub max: usize,
    /// `workers.initial`: workers it starts with; default `pin`, else `min`.
    pub initial: usize,
    /// `pin`: the worker count held fixed (no policy changes it), within min..=max.
    pub pin: Option<usize>,
    /// `queue_capacity`: its input queue; default `[runtime] queue_capacity`.
    pub queue_capacity: Option<usize>,
    /// `concurrency_limit`: most calls in progress at once.
    pub concurrency_limit: Option<usize>,
    /// `rate_limit`: most records per second.
    pub rate_limit: Option<f64>,
}

/// `[sink]`.
#[derive(Clone, Debug, PartialEq)]
pub struct SinkSpec {
    /// `name`: `sink` by default; unique among the stages and the sink.
    pub name: String,
    /// Its connector and settings.
    pub config: SinkConfig,
    /// Its worker pool and limits.
    pub settings: StageSettings,
    /// `batch_size`: the records per batch it starts with.
    pub batch_size: Option<usize>,
}

/// A sink's connector and its settings.
#[derive(Clone, Debug, PartialEq)]
pub enum SinkConfig {
    /// `type = "file"`.
    File(FileSinkConfig),
    /// `type = "stdout"`.
    Stdout(StdoutSinkConfig),
    /// `type = "sqlite"`.
    Sqlite(SqliteSinkConfig),
    /// `type = "http"`.
    Http(HttpSinkConfig),
    /// `type = "postgres"`.
    Postgres(PostgresSinkConfig),
    /// `type = "redis_stream"`.
    RedisStream(RedisStreamSinkConfig),
    /// `type = "redis_hash"`.
    RedisHash(RedisHashSinkConfig),
}

impl SinkConfig {
    /// The `type` as written.
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkConfig::File(_) => "file",
            SinkConfig::Stdout(_) => "stdout",
            SinkConfig::Sqlite(_) => "sqlite",
            SinkConfig::Http(_) => "http",
            SinkConfig::Postgres(_) => "postgres",
            SinkConfig::RedisStream(_) => "redis_stream",
            SinkConfig::RedisHash(_) => "redis_hash",
        }
    }
}

/// `[checkpoint]`.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointSettings {
    /// `dir`: where checkpoints are kept (relative to the pipeline file's directory).
    pub dir: PathBuf,
    /// `interval`: how often acknowledged positions are written; default 1s.
    pub interval: Duration,
}
