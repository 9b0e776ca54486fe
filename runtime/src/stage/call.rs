//! One call of a user's function, as every stage makes it: a panic caught and turned
//! into a failure of that call alone, transient failures retried with the pipeline's
//! backoff (or longer, when the failure asks not to be retried sooner), and the time
//! spent counted: every attempt's own duration is a service-time sample, and the
//! worker is busy for the calls and the sleeps between them (it can take no other
//! record meanwhile), but a sleep is never part of a service time.
//!
//! Transforms and the sink differ in what a call takes (one record, or a batch) and in
//! what becomes of the outputs; how a call fails, and what it costs, is the same, and
//! lives here.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::clock::{self, Instant};
use crate::failure::{panic_message, DeadLetterCause, Failure, RetryPolicy};
use crate::metrics::Figures;

/// A call that failed for good.
pub(crate) struct Failed<R> {
    /// What the function handed back with its failure; `None` after a panic, which
    /// takes the input with it.
    pub record: Option<R>,
    /// Why the call failed.
    pub cause: DeadLetterCause,
    /// The function's error, or the panic's message.
    pub error: String,
}

/// Calls `call` with `input`, which has waited since `start`, until it succeeds, fails
/// permanently, panics, or has been called `policy.attempts` times; a transient failure
/// sleeps the policy's backoff (or its own `retry_after`, if longer) and calls again
/// with the input it handed back. Counts the busy time, errors and retries in
/// `figures`; each attempt's duration is a service-time sample (the last one's left
/// in `figures.service_ns` for the worker to sample when the call ends). Returns the
/// end of the last call, and what the call returned or how it failed.
pub(crate) fn with_retries<R, O>(
    policy: &RetryPolicy,
    start: Instant,
    figures: &mut Figures,
    mut input: R,
    mut call: impl FnMut(R) -> Result<O, Failure<R>>,
) -> (Instant, Result<O, Failed<R>>) {
    let mut attempt = 1;
    let mut call_start = start;
    figures.call_starts(start);
    let (end, outcome) = loop {
        let outcome = catch_unwind(AssertUnwindSafe(|| call(input)));
        let end = clock::now();
        let took = (end - call_start).as_nanos() as u64;
        figures.counts.busy_ns += took;
        figures.service_ns = took;
        let failed = match outcome {
            Ok(Ok(output)) => break (end, Ok(output)),
            Ok(Err(Failure::Transient {
                record,
                retry_after,
                ..
            })) if attempt < policy.attempts => {
                // This attempt is a sample of its own; the last one is sampled by the
                // worker when the whole call ends.
                figures.service_us.push(took / 1_000);
                figures.count_retry();
                let pause = policy
                    .backoff(attempt)
                    .max(retry_after.unwrap_or_default());
                std::thread::sleep(pause);
                figures.counts.busy_ns += pause.as_nanos() as u64;
                attempt += 1;
                input = record;
                call_start = clock::now();
                continue;
            }
            Ok(Err(Failure::Transient { record, error, .. })) => Failed {
                record: Some(record),
                cause: DeadLetterCause::RetriesExhausted { attempts: attempt },
                error: error.to_string(),
            },
            Ok(Err(Failure::Permanent { record, error })) => Failed {
                record: Some(record),
                cause: DeadLetterCause::Permanent,
                error: error.to_string(),
            },
            Err(payload) => Failed {
                record: None,
                cause: DeadLetterCause::Panicked,
                error: panic_message(&*payload),
            },
        };
        figures.counts.errors += 1;
        break (end, Err(failed));
    };
    figures.call_ends();
    (end, outcome)
}

#[cfg(test)]
mod test {
    use std::time::Duration;

    use super::*;

    fn policy(attempts: u32, backoff_ms: u64) -> RetryPolicy {
        RetryPolicy {
            attempts,
            initial_backoff: Duration::from_millis(backoff_ms),
            max_backoff: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_transient_failure_is_retried_with_what_the_call_handed_back() {
        let mut figures = Figures::default();
        let mut seen = Vec::new();
        let (_, failed) = with_retries(&policy(5, 1), Instant::now(), &mut figures, 1u32, |n| {
            seen.push(n);
            if n < 3 {
                Err(Failure::transient(n + 1, "busy"))
            } else {
                Ok(())
            }
        });
        assert!(failed.is_ok());
        assert_eq!(seen, vec![1, 2, 3]);
        assert_eq!(figures.counts.errors, 2);
        assert_eq!(figures.counts.retries, 2);
        // The sleeps between calls (1 ms, then 2 ms) are busy time too.
        assert!(
            figures.counts.busy_ns >= 3_000_000,
            "{}",
            figures.counts.busy_ns
        );
    }

    #[test]
    fn the_last_allowed_attempt_dead_letters_the_record_handed_back() {
        let mut figures = Figures::default();
        let mut calls = 0;
        let (_, failed) = with_retries(&policy(3, 0), Instant::now(), &mut figures, 7u32, |n| {
            calls += 1;
            Err::<(), _>(Failure::transient(n, "timeout"))
        });
        let Err(failed) = failed else {
            panic!("it never succeeds")
        };
        assert_eq!(calls, 3);
        assert_eq!(failed.record, Some(7));
        assert_eq!(
            failed.cause,
            DeadLetterCause::RetriesExhausted { attempts: 3 }
        );
        assert_eq!(failed.error, "timeout");
        assert_eq!(figures.counts.errors, 3);
        assert_eq!(figures.counts.retries, 2);
    }

    #[test]
    fn a_permanent_failure_is_not_retried() {
        let mut figures = Figures::default();
        let mut calls = 0;
        let (_, failed) = with_retries(&policy(5, 0), Instant::now(), &mut figures, 7u32, |n| {
            calls += 1;
            Err::<(), _>(Failure::permanent(n, "malformed"))
        });
        let Err(failed) = failed else {
            panic!("it fails")
        };
        assert_eq!(calls, 1);
        assert_eq!(failed.record, Some(7));
        assert_eq!(failed.cause, DeadLetterCause::Permanent);
        assert_eq!(figures.counts.retries, 0);
    }

    #[test]
    fn a_panic_fails_the_call_and_takes_its_input() {
        let mut figures = Figures::default();
        let (_, failed) = with_retries(
            &policy(5, 0),
            Instant::now(),
            &mut figures,
            7u32,
            |_| -> Result<(), _> { panic!("bad record") },
        );
        let Err(failed) = failed else {
            panic!("it panics")
        };
        assert_eq!(failed.record, None);
        assert_eq!(failed.cause, DeadLetterCause::Panicked);
        assert!(failed.error.contains("bad record"), "{}", failed.error);
        assert_eq!(figures.counts.errors, 1);
        assert_eq!(figures.counts.retries, 0);
    }

    #[test]
    fn every_attempt_is_a_service_time_sample_and_no_sleep_is() {
        let mut figures = Figures::default();
        let mut calls = 0;
        let (_, outcome) = with_retries(
            &policy(5, 40),
            Instant::now(),
            &mut figures,
            (),
            |()| {
                calls += 1;
                std::thread::sleep(Duration::from_millis(10));
                if calls < 3 {
                    Err(Failure::transient((), "busy"))
                } else {
                    Ok(())
                }
            },
        );
        assert!(outcome.is_ok());
        // The worker samples the last attempt when the call ends.
        figures.end_call();
        assert_eq!(figures.service_us.len(), 3, "{:?}", figures.service_us);
        for sample in &figures.service_us {
            // 10 ms of work each; the backoff sleeps (40 ms, then 80 ms) are not in it.
            assert!((10_000..40_000).contains(sample), "{:?}", figures.service_us);
        }
        // The worker was busy for the calls and the sleeps between them.
        assert!(figures.counts.busy_ns >= 150_000_000, "{}", figures.counts.busy_ns);
    }

    #[test]
    fn a_retry_after_longer_than_the_backoff_is_waited() {
        let mut figures = Figures::default();
        let mut called_at = Vec::new();
        let (_, outcome) = with_retries(
            &policy(5, 1),
            Instant::now(),
            &mut figures,
            (),
            |()| {
                called_at.push(std::time::Instant::now());
                if called_at.len() < 2 {
                    Err(Failure::transient((), "429").retry_after(Duration::from_millis(150)))
                } else {
                    Ok(())
                }
            },
        );
        assert!(outcome.is_ok());
        let waited = called_at[1] - called_at[0];
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        // A retry_after shorter than the backoff leaves the backoff.
        let mut called_at = Vec::new();
        let (_, _) = with_retries(
            &policy(2, 120),
            Instant::now(),
            &mut figures,
            (),
            |()| {
                called_at.push(std::time::Instant::now());
                Err::<(), _>(Failure::transient((), "429").retry_after(Duration::from_millis(1)))
            },
        );
        let waited = called_at[1] - called_at[0];
        assert!(waited >= Duration::from_millis(120), "{waited:?}");
    }
}
