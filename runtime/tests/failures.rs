//! Failures cost exactly the failing records: panics and permanent errors are
//! dead-lettered with their stage, transient errors are retried until they succeed,
//! and everything else arrives exactly once.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use brigade_runtime::{DeadLetterCause, Failure, Pipeline, RetryPolicy};

fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|_| {})));
}

fn fast_retries(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        initial_backoff: Duration::from_micros(100),
        max_backoff: Duration::from_millis(1),
    }
}

#[test]
fn a_panicking_stage_costs_exactly_the_panicking_records() {
    quiet_panics();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink_seen = seen.clone();
    let report = Pipeline::from_iter(0..5_000u64)
        .map("double", |x| x * 2)
        .workers(1, 4)
        .initial_workers(3)
        .map("fragile", |x| {
            if x % 100 == 14 {
                panic!("bad record {x}");
            }
            x
        })
        .initial_workers(2)
        .sink("collect", move |x| sink_seen.lock().unwrap().push(x))
        .run()
        .unwrap();

    let panicking: Vec<u64> = (0..5_000u64).filter(|x| (x * 2) % 100 == 14).collect();
    assert_eq!(report.admitted, 5_000);
    assert_eq!(report.dead_lettered, panicking.len() as u64);
    assert_eq!(report.completed, 5_000 - panicking.len() as u64);
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    let expected: Vec<u64> = (0..5_000u64)
        .map(|x| x * 2)
        .filter(|x| x % 100 != 14)
        .collect();
    assert_eq!(seen, expected, "every other record arrives exactly once");

    let mut positions: Vec<u64> = report.dead_letters.iter().map(|d| d.position).collect();
    positions.sort_unstable();
    assert_eq!(positions, panicking);
    for letter in &report.dead_letters {
        assert_eq!(letter.stage, "fragile");
        assert_eq!(letter.cause, DeadLetterCause::Panicked);
        assert!(letter.error.contains("bad record"), "{}", letter.error);
    }
    assert_eq!(report.stages[1].dead_lettered, panicking.len() as u64);
}

#[test]
fn transient_errors_are_retried_until_they_succeed() {
    let attempts = Arc::new(Mutex::new(HashMap::<u64, u32>::new()));
    let tries = attempts.clone();
    let written = Arc::new(AtomicU64::new(0));
    let count = written.clone();
    let report = Pipeline::from_iter(0..2_000u64)
        .retry(fast_retries(4))
        .try_map("flaky", move |x| {
            let mut tries = tries.lock().unwrap();
            let n = tries.entry(x).or_default();
            *n += 1;
            if x % 10 == 0 && *n < 3 {
                Err(Failure::transient(x, "deadlock victim"))
            } else {
                Ok(x)
            }
        })
        .workers(1, 4)
        .initial_workers(2)
        .sink("count", move |_| {
            count.fetch_add(1, Ordering::Relaxed);
        })
        .run()
        .unwrap();

    assert_eq!(report.completed, 2_000);
    assert_eq!(report.dead_lettered, 0);
    assert_eq!(written.load(Ordering::Relaxed), 2_000);
    assert_eq!(
        report.stages[0].retries,
        2 * 200,
        "two retries per flaky record"
    );
    assert_eq!(report.stages[0].errors, 2 * 200);
    let attempts = attempts.lock().unwrap();
    assert!(attempts
        .iter()
        .all(|(x, n)| *n == if x % 10 == 0 { 3 } else { 1 }));
}

#[test]
fn exhausted_retries_and_permanent_errors_keep_the_record() {
    let report = Pipeline::from_iter(0..300u64)
        .retry(fast_retries(3))
        .try_map("validate", |x| match x % 100 {
            1 => Err(Failure::permanent(x, "malformed")),
            2 => Err(Failure::transient(x, "timeout")),
            _ => Ok(x),
        })
        .try_sink("store", |x| {
            if x % 100 == 3 {
                Err(Failure::permanent(x, "constraint violation"))
            } else {
                Ok(())
            }
        })
        .run()
        .unwrap();

    assert_eq!(report.admitted, 300);
    assert_eq!(report.dead_lettered, 9);
    assert_eq!(report.completed, 291);
    let mut by_cause: HashMap<String, Vec<u64>> = HashMap::new();
    for letter in &report.dead_letters {
        let record = *letter.record::<u64>().expect("the record is handed back");
        assert_eq!(record % 100, letter.position % 100);
        let key = format!("{}:{:?}", letter.stage, letter.cause);
        by_cause.entry(key).or_default().push(record % 100);
    }
    assert_eq!(by_cause["validate:Permanent"], vec![1, 1, 1]);
    assert_eq!(
        by_cause["validate:RetriesExhausted { attempts: 3 }"],
        vec![2, 2, 2]
    );
    assert_eq!(by_cause["store:Permanent"], vec![3, 3, 3]);
}

#[test]
fn a_failed_batch_is_retried_whole_and_dead_lettered_record_by_record() {
    quiet_panics();
    let calls = Arc::new(AtomicU64::new(0));
    let counted = calls;
    let stored = Arc::new(AtomicU64::new(0));
    let store = stored.clone();
    let report = Pipeline::from_iter(0..1_000u64)
        .retry(fast_retries(2))
        .map("id", |x| x)
        .try_batch_sink("bulk", move |batch: Vec<u64>| {
            let call = counted.fetch_add(1, Ordering::Relaxed);
            if batch.contains(&500) {
                return Err(Failure::permanent(batch, "rejected batch"));
            }
            if call % 7 == 3 {
                return Err(Failure::transient(batch, "busy"));
            }
            store.fetch_add(batch.len() as u64, Ordering::Relaxed);
            Ok(())
        })
        .batch_size(16)
        .run()
        .unwrap();

    assert_eq!(report.admitted, 1_000);
    assert_eq!(
        report.completed + report.dead_lettered,
        1_000,
        "nothing lost"
    );
    assert_eq!(stored.load(Ordering::Relaxed), report.completed);
    assert!(report
        .dead_letters
        .iter()
        .any(|d| d.record::<u64>() == Some(&500)));
    for letter in &report.dead_letters {
        assert_eq!(letter.stage, "bulk");
        assert!(letter.has_record());
    }
}

#[test]
fn a_dead_letter_handler_receives_letters_instead_of_the_report() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let inbox = received.clone();
    let report = Pipeline::from_iter(0..100u64)
        .on_dead_letter(move |letter| inbox.lock().unwrap().push(letter.position))
        .try_map("odd", |x| {
            if x % 2 == 1 {
                Err(Failure::permanent(x, "odd"))
            } else {
                Ok(x)
            }
        })
        .sink("drop", |_| {})
        .run()
        .unwrap();
    assert_eq!(report.dead_lettered, 50);
    assert!(report.dead_letters.is_empty());
    let mut received = received.lock().unwrap().clone();
    received.sort_unstable();
    assert_eq!(
        received,
        (0..100).filter(|x| x % 2 == 1).collect::<Vec<_>>()
    );
}

#[test]
fn a_call_retrying_for_long_shows_its_retries_while_it_does() {
    let locked = Arc::new(AtomicBool::new(true));
    let lock = locked.clone();
    let running = Pipeline::from_iter(0..10u64)
        .tick(Duration::from_millis(10))
        .retry(RetryPolicy {
            attempts: u32::MAX,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
        })
        .try_sink("locked", move |x| {
            if lock.load(Ordering::SeqCst) {
                Err(Failure::transient(x, "database is locked"))
            } else {
                Ok(())
            }
        })
        .start()
        .unwrap();
    let monitor = running.monitor();
    // The first record's call is still retrying: its retries are in the windows.
    common::wait_for("retries to show in the snapshots", || {
        monitor
            .history()
            .iter()
            .map(|s| s.stages[0].retries)
            .sum::<u64>()
            >= 5
    });
    assert_eq!(
        running.monitor().latest().unwrap().global.totals.completed,
        0
    );
    locked.store(false, Ordering::SeqCst);
    let report = running.wait();
    assert_eq!(report.completed, 10);
    assert_eq!(report.dead_lettered, 0);
    assert_eq!(report.stages[0].retries, report.stages[0].errors);
    assert!(report.stages[0].retries >= 5);
}
