//! What the runtime (or the simulator) measured during one metrics window.
//!
//! A [`Snapshot`] is closed every tick and handed to the [`Controller`](crate::Controller);
//! the same value goes to the dashboard and the daemon's metrics. Times are seconds
//! (`_s`), histograms carry their unit in their name.

use serde::{Deserialize, Serialize};

use crate::histogram::HistogramData;
use crate::knobs::Knobs;

/// Everything measured during one window, plus the knobs in force at its end.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Window number, from 1.
    pub tick: u64,
    /// Seconds since the pipeline started, at the end of this window.
    pub at_s: f64,
    /// Length of this window in seconds.
    pub window_s: f64,
    /// One entry per stage, in pipeline order; the last one is the sink.
    pub stages: Vec<StageStats>,
    /// Pipeline-wide figures.
    pub global: GlobalStats,
    /// The knobs in force at the end of the window, operator overrides included.
    pub knobs: Knobs,
    /// True while the operator has paused the controller.
    pub paused: bool,
}

/// What a stage is in the pipeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageRole {
    /// A stage between the source and the sink.
    #[default]
    Transform,
    /// The last stage, which finishes records one call each.
    Sink,
    /// The last stage, which takes batches of records per call.
    BatchSink,
}

/// A stage's worker pool at the end of the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStats {
    /// Threads running now.
    pub live: usize,
    /// Threads the pool is converging to.
    pub target: usize,
    /// Lowest count the pool may have.
    pub min: usize,
    /// Highest count the pool may have.
    pub max: usize,
    /// True when the operator pinned the count; the controller's changes are ignored.
    pub pinned: bool,
}

/// A stage's input queue during the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Mean number of records waiting, sampled over the window.
    pub mean_depth: f64,
    /// Most records waiting at once.
    pub max_depth: u64,
    /// Capacity in records at the end of the window.
    pub capacity: u64,
}

/// One stage's figures for one window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageStats {
    /// The stage's name as the pipeline gave it.
    pub name: String,
    /// Transform, sink or batching sink.
    pub role: StageRole,
    /// Records taken from the input queue.
    pub records_in: u64,
    /// Records this stage finished processing: emitted downstream, or, for a sink,
    /// written.
    pub records_out: u64,
    /// Bytes (by weight) taken from the input queue.
    pub bytes_in: u64,
    /// Bytes (by weight) emitted or written.
    pub bytes_out: u64,
    /// Sum over workers of time spent inside the stage's function (including, between
    /// calls taken back to back, the runtime's own work on each record).
    pub busy_s: f64,
    /// Sum over workers of time blocked on an empty input queue.
    pub wait_in_s: f64,
    /// Sum over workers of time blocked on a full output queue, the memory budget, or
    /// a sink limit.
    pub wait_out_s: f64,
    /// Integral of the live worker count over the window (worker-seconds).
    pub worker_s: f64,
    /// The pool at the end of the window.
    pub workers: WorkerStats,
    /// The input queue.
    pub queue: QueueStats,
    /// Time per call of the stage's function, microseconds (for a call taken without
    /// waiting, from the end of the previous call).
    pub service_time_us: HistogramData,
    /// Time each worker waited for input before a call, microseconds.
    pub wait_in_us: HistogramData,
    /// Weight of each input record, bytes.
    pub record_size_bytes: HistogramData,
    /// Failed calls (transient or permanent, panics included).
    pub errors: u64,
    /// Calls repeated after a transient error.
    pub retries: u64,
    /// Records this stage sent to the dead-letter output.
    pub dead_lettered: u64,
    /// How long each call still in progress at the end of the window has run,
    /// seconds, longest first: a call far past the stage's usual time is hung.
    #[serde(default)]
    pub running_calls_s: Vec<f64>,
    /// Workers that could not open their resource (a connection, a process) this
    /// window: the stage cannot usefully grow past the workers that did.
    #[serde(default)]
    pub open_failures: u64,
    /// The last of those failures' message.
    #[serde(default)]
    pub open_error: Option<String>,
}

impl StageStats {
    /// busy / (worker-seconds): the share of the workers' time spent working, 0..=1.
    pub fn utilisation(&self) -> f64 {
        if self.worker_s <= 0.0 {
            0.0
        } else {
            (self.busy_s / self.worker_s).clamp(0.0, 1.0)
        }
    }

    /// records out / busy seconds: what one worker can do when never waiting (DS2's
    /// "true processing rate"). `None` when the stage did no work this window.
    pub fn true_rate_per_worker(&self) -> Option<f64> {
        (self.busy_s > 0.0 && self.records_out > 0).then(|| self.records_out as f64 / self.busy_s)
    }

    /// records out / window: what the stage actually delivered.
    pub fn observed_rate(&self, window_s: f64) -> f64 {
        if window_s <= 0.0 {
            0.0
        } else {
            self.records_out as f64 / window_s
        }
    }

    /// Share of the workers' time blocked waiting for input, 0..=1.
    pub fn waiting_share(&self) -> f64 {
        share(self.wait_in_s, self.worker_s)
    }

    /// Share of the workers' time blocked on output, 0..=1.
    pub fn blocked_share(&self) -> f64 {
        share(self.wait_out_s, self.worker_s)
    }
}

fn share(part: f64, whole: f64) -> f64 {
    if whole <= 0.0 {
        0.0
    } else {
        (part / whole).clamp(0.0, 1.0)
    }
}

/// The serial lane, where records above the size threshold run one at a time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SerialStats {
    /// Records at or above this weight go to the serial lane; `None` = lane off.
    pub threshold_bytes: Option<u64>,
    /// Records the lane finished this window.
    pub records: u64,
    /// Bytes the lane finished this window.
    pub bytes: u64,
    /// Time the lane spent inside stage functions this window (a call still running
    /// counts up to the end of the window).
    pub busy_s: f64,
    /// Weight of the record in the lane at the end of the window (0 = idle).
    pub current_bytes: u64,
    /// Weight of a record read and waiting for the budget to admit it to the lane
    /// (0 = none).
    pub waiting_bytes: u64,
}

/// The source during the window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStats {
    /// Records read this window.
    pub records: u64,
    /// Bytes (by weight) read this window.
    pub bytes: u64,
    /// Records read per second this window.
    pub rate: f64,
    /// Longest time the source went unread during the window (an ongoing gap counts).
    pub longest_idle_s: f64,
    /// The source's declared idle timeout, if any.
    pub idle_timeout_s: Option<f64>,
    /// Records read by the source guard past back pressure this window.
    pub guard_reads: u64,
    /// True once the source has no more records (or admission has stopped).
    pub exhausted: bool,
    /// How far a finite source has read, if it knows (files of a glob, say).
    #[serde(default)]
    pub progress: Option<Progress>,
    /// The consumer group a shared source reads in, if it reads in one (a Redis
    /// Streams group): its backlog and members, as the source last saw them.
    #[serde(default)]
    pub group: Option<GroupStats>,
    /// The spill: records the source guard read while the budget was full, waiting
    /// on disk to re-enter.
    #[serde(default)]
    pub spill: SpillStats,
}

/// The spill to disk: where the source guard's reads wait, outside the memory budget,
/// while the budget is full; they re-enter the first queue in read order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpillStats {
    /// Disk the spill may use, bytes; `None` = no spill.
    pub capacity_bytes: Option<u64>,
    /// Records waiting in the spill at the end of the window.
    pub records: u64,
    /// Bytes waiting in the spill at the end of the window.
    pub bytes: u64,
    /// Records that went through the spill since the start.
    pub total_records: u64,
    /// Bytes that went through the spill since the start.
    pub total_bytes: u64,
}

/// A consumer group as one of its members sees it: the backlog the fleet shares, and
/// who is working on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Entries in the stream not yet delivered to the group, if the server can say.
    pub lag: Option<u64>,
    /// Entries delivered to this process and not yet acknowledged.
    pub pending_own: u64,
    /// Entries delivered to the group's other consumers and not yet acknowledged.
    pub pending_others: u64,
    /// Consumers seen active within the claim time, this one included.
    pub consumers: u64,
    /// Entries this process has claimed from consumers that went idle, since it
    /// started.
    pub claims: u64,
    /// Entries added to the stream per second, lately (the group's arrival rate), if
    /// known.
    pub arrival_per_s: Option<f64>,
}

/// How far a finite source has read: files (or other units) and bytes done, of a
/// total when known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Files (or other units) read to their end.
    pub files_done: u64,
    /// Files there are in all, if known.
    pub files_total: Option<u64>,
    /// Bytes read (as stored: compressed bytes for a compressed file).
    pub bytes_done: u64,
    /// Bytes there are in all, if known.
    pub bytes_total: Option<u64>,
}

impl Progress {
    /// The share of the bytes read, 0..=1, when the total is known.
    pub fn fraction(&self) -> Option<f64> {
        let total = self.bytes_total?;
        Some(if total == 0 {
            1.0
        } else {
            (self.bytes_done as f64 / total as f64).clamp(0.0, 1.0)
        })
    }

    /// Seconds left at `bytes_per_s`, when the total is known and the rate positive.
    pub fn eta_s(&self, bytes_per_s: f64) -> Option<f64> {
        let left = self.bytes_total?.saturating_sub(self.bytes_done);
        (bytes_per_s > 0.0).then(|| left as f64 / bytes_per_s)
    }
}

/// Counts since the start of the run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Source records admitted into the pipeline.
    pub admitted: u64,
    /// Source records all of whose outputs finished (written, or filtered out).
    pub completed: u64,
    /// Source records with an output sent to the dead-letter output.
    pub dead_lettered: u64,
    /// admitted − completed − dead_lettered.
    pub in_flight: u64,
}

/// Pipeline-wide figures for one window.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GlobalStats {
    /// Mean bytes admitted and not yet finished, sampled over the window.
    pub inflight_bytes_mean: f64,
    /// Most bytes in flight at once during the window.
    pub inflight_bytes_max: u64,
    /// The memory budget in force; `None` = no cap.
    pub memory_budget: Option<u64>,
    /// Resident set size of the process at the end of the window, bytes.
    pub rss_bytes: u64,
    /// CPU used by the process during the window, percent of one core.
    pub cpu_percent: f64,
    /// Cores of the machine.
    pub cores: usize,
    /// Total memory of the machine, bytes.
    pub machine_memory_bytes: u64,
    /// Memory the machine has available, bytes.
    pub machine_available_bytes: u64,
    /// Time from admission to completion of each record the sink finished, microseconds.
    pub latency_us: HistogramData,
    /// The serial lane.
    pub serial: SerialStats,
    /// The source.
    pub source: SourceStats,
    /// Counts since the start.
    pub totals: Totals,
}
