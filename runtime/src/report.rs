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

/// What a stage still held when a drain gave up at its deadline.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StageInFlight {
    /// The stage's name.
    pub name: String,
    /// Records waiting in its input queue.
    pub queued: u64,
    /// Bytes of the budget held by its records (queued or in a call).
    pub bytes: u64,
}

/// Something that went wrong in a run that still ended and reported. The run drained
/// what it could; nothing admitted is lost without being named here.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunFailure {
    /// A record the source guard spilled to disk could not be read back: admission
    /// stopped, and the source was not acknowledged past `position`, so a rerun reads
    /// it again.
    SpillLost {
        /// What went wrong.
        message: String,
        /// The source position of the record.
        position: u64,
    },
    /// The spill could not write a record: the run went on without the spill (the
    /// record waited in memory for the budget).
    SpillFailed {
        /// The disk's error.
        message: String,
        /// The source position of the record.
        position: u64,
    },
    /// The source panicked: admission stopped there and what was admitted drained.
    SourcePanicked {
        /// The panic's message.
        message: String,
        /// The position of the record the source was reading.
        position: u64,
    },
    /// The dead-letter handler panicked: admission stopped, and this dead letter and
    /// every later one were kept in [`Report::dead_letters`] instead.
    DeadLetterHandlerPanicked {
        /// The panic's message.
        message: String,
        /// The stage whose dead letter the handler was given.
        stage: String,
    },
    /// The dead-letter output refused a letter
    /// ([`Builder::try_on_dead_letter`](crate::Builder::try_on_dead_letter)):
    /// admission stopped, this letter and every later one were kept in
    /// [`Report::dead_letters`] instead, and the source was not acknowledged past
    /// `position`.
    DeadLetterOutputRefused {
        /// The output's error.
        message: String,
        /// The stage whose dead letter was refused.
        stage: String,
        /// The source position of the refused letter's record.
        position: u64,
    },
    /// The drain did not finish by its deadline
    /// ([`Running::shutdown_within`](crate::Running::shutdown_within)): these records
    /// were neither written nor dead-lettered, and were not acknowledged.
    DrainDeadline {
        /// The deadline, seconds after the drain began.
        after_s: f64,
        /// Source records still in flight.
        records: u64,
        /// Where they were, per stage.
        stages: Vec<StageInFlight>,
    },
}

impl std::fmt::Display for RunFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunFailure::SpillLost { message, position } => write!(
                f,
                "the spilled record at position {position} could not be read back from the \
                 spill: {message}; admission stopped, and the source was not acknowledged \
                 past it"
            ),
            RunFailure::SpillFailed { message, position } => write!(
                f,
                "the spill could not write the record at position {position}: {message}; it \
                 waited in memory for the budget"
            ),
            RunFailure::SourcePanicked { message, position } => write!(
                f,
                "the source panicked reading record {position}: {message}; admission stopped"
            ),
            RunFailure::DeadLetterHandlerPanicked { message, stage } => write!(
                f,
                "the dead-letter handler panicked on a dead letter of stage `{stage}`: \
                 {message}; admission stopped, and the dead letters since are in the report"
            ),
            RunFailure::DeadLetterOutputRefused {
                message,
                stage,
                position,
            } => write!(
                f,
                "the dead-letter output refused a letter from stage `{stage}` at position \
                 {position}: {message}; admission stopped, and the dead letters since are in \
                 the report"
            ),
            RunFailure::DrainDeadline {
                after_s,
                records,
                stages,
            } => {
                write!(
                    f,
                    "the drain did not finish within {after_s:.1} s: {records} records in \
                     flight were neither written nor acknowledged"
                )?;
                let held: Vec<String> = stages
                    .iter()
                    .filter(|s| s.queued > 0 || s.bytes > 0)
                    .map(|s| format!("{} ({} queued, {} bytes)", s.name, s.queued, s.bytes))
                    .collect();
                if !held.is_empty() {
                    write!(f, " (at {})", held.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

/// The figures of a finished run. After a drain,
/// `admitted == completed + dead_lettered`; after a drain cut short by its deadline,
/// [`failures`](Report::failures) says how many records were abandoned and where.
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
    /// The process's largest resident set size: the kernel's high-water mark where it
    /// keeps one (Linux), else the largest seen at a tick.
    pub peak_rss_bytes: u64,
    /// Integral of the sum of all pools' sizes over the run.
    pub worker_seconds: f64,
    /// Decisions logged (controller's and operator's).
    pub decisions: usize,
    /// Per stage, in pipeline order.
    pub stages: Vec<StageReport>,
    /// What went wrong, in the order it happened; empty for a clean run.
    pub failures: Vec<RunFailure>,
    /// The dead letters, unless a handler took them.
    #[serde(skip)]
    pub dead_letters: Vec<DeadLetter>,
}

impl Report {
    /// True if nothing went wrong: the run drained everything it admitted.
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
    }
}
