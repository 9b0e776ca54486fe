//! The parsed form of a scenario file (format 1, `docs/scenarios.md`): what the simulator
//! and the demo run. Every duration is in seconds, every size in bytes, every rate in
//! records per second; the parser has already checked units, ranges and stage names.

use serde::Serialize;

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scenario {
    /// `name`.
    pub name: String,
    /// `description` (empty when absent).
    pub description: String,
    /// `duration`: most virtual time to simulate, seconds.
    pub duration_s: f64,
    /// `tick`: the controller interval, seconds (default 1).
    pub tick_s: f64,
    /// `seed` (default 0).
    pub seed: u64,
    /// `[machine]`.
    pub machine: Machine,
    /// `[runtime]`.
    pub runtime: RuntimeSettings,
    /// `[source]`.
    pub source: SourceSpec,
    /// `[[stage]]`, in pipeline order; the last one is the sink.
    pub stages: Vec<StageSpec>,
    /// `[[phase]]`, sorted by `at_s`.
    pub phases: Vec<Phase>,
    /// `[fleet]`: the pipeline runs as several processes sharing its sink; `None`
    /// (no `[fleet]` table) is one process.
    pub fleet: Option<Fleet>,
}

/// `[fleet]`: several processes run the same pipeline, each with its own machine,
/// source share and stages, all writing to one sink whose contention they share: the
/// sink's slowdown counts every process's calls in progress.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fleet {
    /// `processes`: how many (at least 2).
    pub processes: usize,
    /// `coordination`: who sizes the shared sink.
    pub coordination: Coordination,
    /// `join`: the processes start this far apart (the second at `join`, the third
    /// at twice that…), as an autoscaler adds them; 0 (the default) starts them all
    /// at once. Until it joins, a process's first stage holds every record.
    pub join_s: f64,
}

/// `[fleet] coordination`: who sizes the fleet's writers to the shared sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Coordination {
    /// `"leader"` (the default): one process, elected, tunes the fleet-wide limit on
    /// the sink's writers from the fleet's total throughput; every process holds an
    /// equal share of it, and its own policy tunes its other stages.
    Leader,
    /// `"none"`: every process's policy tunes its own writers as if alone, each
    /// seeing the others' load only as a slower sink.
    None,
}

/// `[machine]`: the simulated machine.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Machine {
    /// Cores shared by all cpu stages (default 8).
    pub cores: usize,
    /// Bytes in flight above this crash the run (default 8 GiB).
    pub memory_bytes: u64,
    /// `disk_per_mib`: seconds to write one MiB to the spill and read it back
    /// (default 0.005).
    pub disk_per_mib_s: f64,
}

/// `[runtime]`: the pipeline's starting knobs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuntimeSettings {
    /// The operator's cap on bytes in flight; `None` = no cap until a policy sets one.
    pub memory_budget: Option<u64>,
    /// `spill`: disk, bytes, the runtime may use for records the source guard must
    /// read while the budget is full; `None` = no spill.
    pub spill: Option<u64>,
    /// Every stage's pool at t=0 (default 1).
    pub initial_workers: usize,
    /// Per-stage cap on workers (default 64).
    pub max_workers: usize,
    /// Initial capacity of each queue, records (default 64).
    pub queue_capacity: usize,
    /// Initial batch size of batching sinks (default 1).
    pub batch_size: usize,
}

/// What the source does when it has gone unread past its idle timeout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnTimeout {
    /// The run fails.
    #[default]
    Fail,
    /// The source pauses for `reconnect_s`, then goes on.
    Reconnect,
}

/// `[source]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceSpec {
    /// Most records per second the source can deliver.
    pub rate: f64,
    /// Finite input: the run ends when all are done.
    pub total: Option<u64>,
    /// Longest the source may go unread, seconds.
    pub idle_timeout_s: Option<f64>,
    /// What a timeout does.
    pub on_timeout: OnTimeout,
    /// Pause after a timeout with `on_timeout = "reconnect"`, seconds (default 10).
    pub reconnect_s: f64,
    /// Record sizes, bytes.
    pub size: Dist,
    /// `[[source.giant]]`: rare oversized records.
    pub giants: Vec<Giant>,
}

/// `[[source.giant]]`: one record in `every` (positions drawn from the seed) has a
/// size drawn from `size`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Giant {
    /// One in this many records.
    pub every: u64,
    /// Sizes of these giants, bytes.
    pub size: Dist,
}

/// A stage's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// Needs a core while busy; cpu stages share `machine.cores`.
    Cpu,
    /// Takes no core.
    Io,
}

/// `[[stage]]`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StageSpec {
    /// `name`, unique in the scenario.
    pub name: String,
    /// `kind`.
    pub kind: StageKind,
    /// Service time per call, seconds.
    pub service: Dist,
    /// Extra service time per MiB of the record (or batch), seconds (default 0).
    pub per_mib_s: f64,
    /// Records out per record in (default 1).
    pub output_ratio: f64,
    /// Output bytes per input byte (default 1).
    pub size_ratio: f64,
    /// USL sigma (default 0).
    pub contention: f64,
    /// USL kappa (default 0).
    pub coherency: f64,
    /// Chance a call fails transiently (default 0).
    pub error_rate: f64,
    /// A sink that takes batches (default false; only the last stage may be one).
    pub batch: bool,
}

impl StageSpec {
    /// The Universal Scalability Law's slowdown with `n` calls of the stage in
    /// progress: each takes 1 + σ(n−1) + κ·n(n−1) times as long.
    pub fn slowdown(&self, n: usize) -> f64 {
        let n = n as f64;
        1.0 + self.contention * (n - 1.0).max(0.0) + self.coherency * n * (n - 1.0).max(0.0)
    }

    /// Work of one call, seconds: a draw of `service` plus `per_mib` per MiB of
    /// `bytes` (the record's, or the whole batch's), times the service `scale` in
    /// force when the call starts.
    pub fn work(&self, service: f64, bytes: u64, scale: f64) -> f64 {
        (service + self.per_mib_s * bytes as f64 / (1024.0 * 1024.0)) * scale
    }

    /// Bytes of each output of a record of `bytes`: `size_ratio` times as many,
    /// rounded, at least 1.
    pub fn output_bytes(&self, bytes: u64) -> u64 {
        ((bytes as f64 * self.size_ratio).round() as u64).max(1)
    }
}

/// `[[phase]]`: a change at a moment. At least one of the changes is present.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Phase {
    /// When, seconds from the start.
    pub at_s: f64,
    /// `stage` + `service_scale`: from now on that stage's (index) service times × the
    /// scale.
    pub service_scale: Option<(usize, f64)>,
    /// `source_rate`: from now on the source's rate.
    pub source_rate: Option<f64>,
    /// `stage` + `stall`: that stage (index) makes no progress for this many seconds,
    /// as behind a lock; its calls then go on with the work they had left.
    pub stall: Option<(usize, f64)>,
}

/// A distribution of durations (seconds) or sizes (bytes).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "dist", rename_all = "snake_case")]
pub enum Dist {
    /// Always `value`.
    Fixed {
        /// The value.
        value: f64,
    },
    /// Uniform between `min` and `max`.
    Uniform {
        /// Lowest value.
        min: f64,
        /// Highest value.
        max: f64,
    },
    /// The lognormal with this median and 99th percentile.
    LogNormal {
        /// 50th percentile.
        median: f64,
        /// 99th percentile (at least the median).
        p99: f64,
    },
    /// Pareto with scale `min` and shape `alpha`.
    Pareto {
        /// Smallest value.
        min: f64,
        /// Shape (> 0).
        alpha: f64,
    },
}
