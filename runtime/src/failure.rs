//! What can go wrong with a record, and where it ends up when it does.

use std::any::Any;
use std::fmt;
use std::time::Duration;

/// Any error a stage function returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failed call of a fallible stage function. It hands the record back, so the
/// runtime can retry it (transient) or keep it in the dead-letter output (permanent)
/// without the stage having to clone it.
///
/// ```
/// use brigade_runtime::Failure;
///
/// fn parse(line: String) -> Result<u64, Failure<String>> {
///     match line.trim().parse() {
///         Ok(n) => Ok(n),
///         Err(e) => Err(Failure::permanent(line, e)),
///     }
/// }
///
/// assert_eq!(parse("42".into()).unwrap(), 42);
/// assert!(parse("x".into()).is_err());
/// ```
pub enum Failure<T> {
    /// Worth another try (a timeout, a deadlock victim): retried with backoff.
    Transient {
        /// The record, handed back.
        record: T,
        /// What went wrong.
        error: BoxError,
        /// Not before this long: the retry sleeps the larger of it and the policy's
        /// backoff (an HTTP `Retry-After`). Set by [`Failure::retry_after`].
        retry_after: Option<Duration>,
        /// What a batch write settled before it failed for the rest; `None`: the
        /// whole batch is handed back. Set by [`Failure::partial`].
        partial: Option<Partial>,
    },
    /// Will fail again: dead-lettered at once.
    Permanent {
        /// The record, handed back.
        record: T,
        /// What went wrong.
        error: BoxError,
    },
}

impl<T> Failure<T> {
    /// A failure worth retrying.
    pub fn transient(record: T, error: impl Into<BoxError>) -> Self {
        Failure::Transient {
            record,
            error: error.into(),
            retry_after: None,
            partial: None,
        }
    }

    /// A failure not worth retrying.
    pub fn permanent(record: T, error: impl Into<BoxError>) -> Self {
        Failure::Permanent {
            record,
            error: error.into(),
        }
    }

    /// A transient failure that must not be retried sooner than `pause` (a server's
    /// `Retry-After`): the runtime sleeps the larger of `pause` and its policy's
    /// backoff before the next call. A permanent failure is left as it is.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brigade_runtime::Failure;
    ///
    /// let throttled = Failure::transient(7u32, "429 Too Many Requests")
    ///     .retry_after(Duration::from_secs(2));
    /// assert!(matches!(
    ///     throttled,
    ///     Failure::Transient { retry_after: Some(pause), .. } if pause.as_secs() == 2
    /// ));
    /// ```
    pub fn retry_after(self, pause: Duration) -> Self {
        match self {
            Failure::Transient {
                record,
                error,
                partial,
                ..
            } => Failure::Transient {
                record,
                error,
                retry_after: Some(pause),
                partial,
            },
            permanent @ Failure::Permanent { .. } => permanent,
        }
    }

    /// Changes the record, keeping the kind of failure and the error.
    pub(crate) fn map_record<U>(self, f: impl FnOnce(T) -> U) -> Failure<U> {
        match self {
            Failure::Transient {
                record,
                error,
                retry_after,
                partial,
            } => Failure::Transient {
                record: f(record),
                error,
                retry_after,
                partial,
            },
            Failure::Permanent { record, error } => Failure::Permanent {
                record: f(record),
                error,
            },
        }
    }
}

impl<T: Send + 'static> Failure<Vec<T>> {
    /// A batch write that settled part of its batch and failed transiently for the
    /// rest (a bulk response whose items partly failed): `retry` are the records to
    /// write again, each with its index in the batch handed to this write; `rejected`
    /// are dead-lettered now, each on its own (cause permanent, its own error and
    /// source position); every other record of the batch counts as written. The next
    /// call gets only the `retry` records, in this order (its indices, rejects and
    /// failures are then relative to that smaller batch); once retries run out they
    /// are dead-lettered as any transient failure's records are. With `retry` empty
    /// the write is settled: nothing is called again.
    ///
    /// An index named twice (in `retry` or `rejected`) or past the batch leaves the
    /// write's outcome unknown: every record still unsettled is then dead-lettered,
    /// as [`Rejected`] describes.
    ///
    /// ```
    /// use brigade_runtime::{Failure, Rejected};
    ///
    /// // Items 0 and 3 were stored, 1 was throttled, 2 is malformed.
    /// let failure = Failure::partial(
    ///     vec![(1, "b")],
    ///     vec![Rejected::new(2, "c", "400 mapper_parsing_exception")],
    ///     "1 item throttled (429)",
    /// );
    /// assert!(matches!(failure, Failure::Transient { ref record, .. } if record == &["b"]));
    /// ```
    pub fn partial(
        retry: Vec<(usize, T)>,
        rejected: Vec<Rejected<T>>,
        error: impl Into<BoxError>,
    ) -> Self {
        let (indices, record): (Vec<usize>, Vec<T>) = retry.into_iter().unzip();
        let rejected = rejected
            .into_iter()
            .map(|reject| Rejected {
                index: reject.index,
                record: Box::new(reject.record) as Box<dyn Any + Send>,
                error: reject.error,
            })
            .collect();
        Failure::Transient {
            record,
            error: error.into(),
            retry_after: None,
            partial: Some(Partial {
                retry: indices,
                rejected,
            }),
        }
    }
}

/// What a batch write settled before it failed transiently for the rest: made by
/// [`Failure::partial`], read by the runtime's sink.
pub struct Partial {
    /// For each record handed back to be retried, its index in the batch.
    pub(crate) retry: Vec<usize>,
    /// The records rejected for good, each as its own dead letter.
    pub(crate) rejected: Vec<Rejected<Box<dyn Any + Send>>>,
}

impl fmt::Debug for Partial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Partial")
            .field("retry", &self.retry)
            .field("rejected", &self.rejected)
            .finish()
    }
}

impl<T> fmt::Debug for Failure<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Transient { error, .. } => write!(f, "Transient({error})"),
            Failure::Permanent { error, .. } => write!(f, "Permanent({error})"),
        }
    }
}

/// A record a batch write could not write while it wrote the others: returned by a
/// [`try_batch_sink_partial`](crate::Builder::try_batch_sink_partial) or
/// [`try_batch_sink_with`](crate::Builder::try_batch_sink_with) in its `Ok` list, it
/// goes to the dead-letter output on its own (cause [`DeadLetterCause::Permanent`],
/// its own error, its own source position) and every record of the batch not listed
/// counts as written.
///
/// `index` is the record's position in the batch handed to the write. A list naming
/// an index twice or past the batch leaves the write's outcome unknown: then every
/// record of the batch is dead-lettered (those listed at a valid index with their
/// record, the others with their facts only) and none counts as written, so that
/// nothing is lost or finished twice.
///
/// ```
/// use brigade_runtime::{Failure, Rejected};
///
/// fn write(batch: Vec<String>) -> Result<Vec<Rejected<String>>, Failure<Vec<String>>> {
///     let mut rejected = Vec::new();
///     for (index, line) in batch.into_iter().enumerate() {
///         if line.is_empty() {
///             rejected.push(Rejected::new(index, line, "empty line"));
///         }
///     }
///     Ok(rejected)
/// }
///
/// let rejected = write(vec!["a".into(), String::new()]).unwrap();
/// assert_eq!(rejected[0].index, 1);
/// ```
pub struct Rejected<T> {
    /// The record's position in the batch handed to the write (0-based).
    pub index: usize,
    /// The record, handed back.
    pub record: T,
    /// Why it was not written.
    pub error: BoxError,
}

impl<T> Rejected<T> {
    /// The record at `index` of the batch, not written because of `error`.
    pub fn new(index: usize, record: T, error: impl Into<BoxError>) -> Self {
        Self {
            index,
            record,
            error: error.into(),
        }
    }
}

impl<T> fmt::Debug for Rejected<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rejected({}: {})", self.index, self.error)
    }
}

/// Why a record went to the dead-letter output.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeadLetterCause {
    /// The stage returned a permanent failure.
    Permanent,
    /// Every attempt failed transiently.
    RetriesExhausted {
        /// How many calls were made.
        attempts: u32,
    },
    /// The stage function panicked.
    Panicked,
    /// The record weighed more than the whole memory budget and the pipeline refuses
    /// such records ([`Oversize::Refuse`](crate::Oversize::Refuse)).
    TooLarge {
        /// The record's weight, bytes.
        size: u64,
        /// The budget, bytes.
        budget: u64,
    },
}

/// A record that could not be finished, with the stage and the error. Every admitted
/// record ends in the sink or here.
pub struct DeadLetter {
    /// The stage that failed (`source` for a record refused at admission).
    pub stage: String,
    /// The position of the source record it came from (0-based).
    pub position: u64,
    /// Why.
    pub cause: DeadLetterCause,
    /// The error's message (or the panic's).
    pub error: String,
    record: Option<Box<dyn Any + Send>>,
}

impl DeadLetter {
    pub(crate) fn new(
        stage: &str,
        position: u64,
        cause: DeadLetterCause,
        error: String,
        record: Option<Box<dyn Any + Send>>,
    ) -> Self {
        Self {
            stage: stage.to_owned(),
            position,
            cause,
            error,
            record,
        }
    }

    /// The same facts without the record.
    pub(crate) fn without_record(&self) -> Self {
        Self {
            stage: self.stage.clone(),
            position: self.position,
            cause: self.cause.clone(),
            error: self.error.clone(),
            record: None,
        }
    }

    /// True when the record itself is kept: always, except after a panic in a stage
    /// that took the record by value (it was dropped while unwinding).
    pub fn has_record(&self) -> bool {
        self.record.is_some()
    }

    /// The record, if it is kept and is a `T` (the failing stage's input type; a
    /// batching sink's records are `Vec<T>` split one per dead letter as `T`).
    pub fn record<T: 'static>(&self) -> Option<&T> {
        self.record.as_ref()?.downcast_ref()
    }

    /// Takes the record out, if it is kept and is a `T`.
    pub fn into_record<T: 'static>(self) -> Option<T> {
        self.record?.downcast().ok().map(|boxed| *boxed)
    }
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("stage", &self.stage)
            .field("position", &self.position)
            .field("cause", &self.cause)
            .field("error", &self.error)
            .field("has_record", &self.has_record())
            .finish()
    }
}

/// A dead letter the dead-letter output could not take (a file that is full or
/// unwritable), handed back with the reason by a
/// [`try_on_dead_letter`](crate::Builder::try_on_dead_letter) handler.
pub struct DeadLetterRefused {
    /// The letter, handed back.
    pub letter: DeadLetter,
    /// Why the output refused it.
    pub error: BoxError,
}

impl DeadLetterRefused {
    /// `letter` could not be written because of `error`.
    pub fn new(letter: DeadLetter, error: impl Into<BoxError>) -> Self {
        Self {
            letter,
            error: error.into(),
        }
    }
}

impl fmt::Debug for DeadLetterRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeadLetterRefused({:?}: {})", self.letter, self.error)
    }
}

/// How transient failures are retried: up to `attempts` calls in all, sleeping
/// `initial_backoff`, then twice that, and so on up to `max_backoff`, between them.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Calls in all, the first included (at least 1).
    pub attempts: u32,
    /// Sleep before the first retry.
    pub initial_backoff: Duration,
    /// Longest sleep between two calls.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The sleep before retry number `retry` (1 = the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// The message of a caught panic.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = payload.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let policy = RetryPolicy {
            attempts: 10,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        };
        let sleeps: Vec<_> = (1..=5).map(|r| policy.backoff(r).as_millis()).collect();
        assert_eq!(sleeps, vec![10, 20, 40, 50, 50]);
    }

    #[test]
    fn dead_letter_hands_record_back() {
        let letter = DeadLetter::new(
            "parse",
            7,
            DeadLetterCause::Permanent,
            "bad".into(),
            Some(Box::new(String::from("x"))),
        );
        assert_eq!(letter.record::<String>().map(String::as_str), Some("x"));
        assert!(letter.record::<u64>().is_none());
        assert_eq!(letter.into_record::<String>(), Some("x".to_owned()));
    }
}
