//! What a pipeline reports when it has drained.

use serde::Serialize;

use crate::failure::DeadLetter;

/// One stage over the whole run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StageReport {
    /// The stage's name.
    pub name: String,
    /// Records it took.
    pub records_in: u64,
    /// Records it emitted (or, for the sink, wrote).
    pub records_out: u64,
    /// Failed calls.
    pub errors: u64,
    /// Calls repeated after transient errors.
    pub retries: u64,
    /// Records it dead-lettered.
    pub dead_lettered: u64,
    /// Time inside its function, summed over workers, seconds.
    pub busy_s: f64,
    /// Integral of its pool size over the run.
    pub worker_seconds: f64,
    /// Most workers it had at once (as sampled each tick).
    pub most_workers: usize,
}

/// The figures of a finished run. After a drain,
/// `admitted == completed + dead_lettered`.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Source records admitted.
    pub admitted: u64,
    /// Source records all of whose outputs were written or filtered out.
    pub completed: u64,
    /// Source records with an output in the dead-letter output.
    pub dead_lettered: u64,
    /// The final acknowledgement point: every source position below it finished.
    pub acknowledged: u64,
    /// Seconds from start to the end of the drain.
    pub elapsed_s: f64,
    /// completed / elapsed_s.
    pub throughput: f64,
    /// Most bytes in flight at once.
    pub peak_inflight_bytes: u64,
    /// Largest resident set size seen at a tick.
    pub peak_rss_bytes: u64,
    /// Integral of the sum of all pools' sizes over the run.
    pub worker_seconds: f64,
    /// Decisions logged (controller's and operator's).
    pub decisions: usize,
    /// Per stage, in pipeline order.
    pub stages: Vec<StageReport>,
    /// The dead letters, unless a handler took them.
    #[serde(skip)]
    pub dead_letters: Vec<DeadLetter>,
}
