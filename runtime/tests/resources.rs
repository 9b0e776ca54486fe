//! Per-worker resources, partial batch failures and a dead-letter output that can
//! fail: a worker opens its own connection when it joins and closes it when it leaves,
//! a stage whose opens fail stays at the size that works and loses nothing, a batch
//! write's rejects are dead-lettered one by one, and a refused dead letter stops
//! admission without the source being acknowledged past it.

mod common;

use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brigade_controller::Override;
use brigade_runtime::{
    BoxError, DeadLetterCause, DeadLetterRefused, Failure, Pipeline, Rejected, RetryPolicy,
    RunFailure, Source,
};
use common::wait_for;

/// Counts opens, closes (drops) and connections open at once.
#[derive(Default)]
struct Counts {
    opens: AtomicUsize,
    drops: AtomicUsize,
    open_now: AtomicUsize,
    most_open: AtomicUsize,
}

/// A connection: not `Send` (the `Rc`), so it must live and die on its worker's thread.
struct Connection {
    counts: Arc<Counts>,
    thread: std::thread::ThreadId,
    _not_send: Rc<()>,
}

impl Connection {
    fn open(counts: &Arc<Counts>) -> Self {
        Self::open_within(counts, usize::MAX).expect("no limit")
    }

    /// Opens unless `limit` connections are open already.
    fn open_within(counts: &Arc<Counts>, limit: usize) -> Option<Self> {
        let before = counts
            .open_now
            .fetch_update(SeqCst, SeqCst, |n| (n < limit).then_some(n + 1))
            .ok()?;
        counts.opens.fetch_add(1, SeqCst);
        counts.most_open.fetch_max(before + 1, SeqCst);
        Some(Self {
            counts: counts.clone(),
            thread: std::thread::current().id(),
            _not_send: Rc::new(()),
        })
    }

    /// Checks that the connection is used on the thread that opened it.
    fn query(&mut self, x: u64) -> u64 {
        assert_eq!(self.thread, std::thread::current().id());
        x * 2
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        assert_eq!(self.thread, std::thread::current().id());
        self.counts.open_now.fetch_sub(1, SeqCst);
        self.counts.drops.fetch_add(1, SeqCst);
    }
}

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        initial_backoff: Duration::from_millis(2),
        max_backoff: Duration::from_millis(10),
    }
}

#[test]
fn each_worker_opens_once_when_it_joins_and_closes_when_it_retires() {
    let counts = Arc::new(Counts::default());
    let in_open = counts.clone();
    let running = Pipeline::from_iter(0u64..)
        .tick(Duration::from_millis(20))
        .try_map_with(
            "lookup",
            move || Ok(Connection::open(&in_open)),
            |connection, x| {
                std::thread::sleep(Duration::from_micros(200));
                Ok(connection.query(x))
            },
        )
        .workers(1, 4)
        .sink("discard", |_| {})
        .start()
        .unwrap();
    let monitor = running.monitor();
    wait_for("the first worker's open", || counts.opens.load(SeqCst) == 1);
    monitor.apply(Override::PinWorkers {
        stage: 0,
        workers: 4,
    });
    wait_for("four open connections", || {
        counts.open_now.load(SeqCst) == 4
    });
    monitor.apply(Override::PinWorkers {
        stage: 0,
        workers: 1,
    });
    wait_for("three retired workers' closes", || {
        counts.drops.load(SeqCst) == 3
    });
    let report = running.shutdown();
    assert!(report.is_clean(), "{:?}", report.failures);
    assert_eq!(report.admitted, report.completed);
    // One open per join: the first worker and the three that joined later.
    assert_eq!(counts.opens.load(SeqCst), 4);
    // Every connection closed, the last one when the input closed.
    assert_eq!(counts.drops.load(SeqCst), 4);
    assert_eq!(counts.open_now.load(SeqCst), 0);
}

#[test]
fn opens_failing_past_two_connections_keep_the_stage_at_two_and_lose_nothing() {
    let counts = Arc::new(Counts::default());
    let in_open = counts.clone();
    let written = Arc::new(Mutex::new(Vec::new()));
    let in_sink = written.clone();
    let running = Pipeline::from_iter(0..2_000u64)
        .tick(Duration::from_millis(20))
        .retry(quick_retries())
        .try_map_with(
            "lookup",
            // The server takes two connections; a third is refused.
            move || Connection::open_within(&in_open, 2).ok_or("too many connections".into()),
            |connection, x| {
                std::thread::sleep(Duration::from_micros(50));
                Ok(connection.query(x))
            },
        )
        .workers(1, 6)
        .initial_workers(6)
        .sink("collect", move |x| in_sink.lock().unwrap().push(x))
        .start()
        .unwrap();
    let monitor = running.monitor();
    let report = running.wait();
    assert!(report.is_clean(), "{:?}", report.failures);
    assert_eq!(report.completed, 2_000);
    let mut written = written.lock().unwrap().clone();
    written.sort_unstable();
    assert_eq!(written, (0..2_000u64).map(|x| x * 2).collect::<Vec<_>>());
    assert_eq!(counts.most_open.load(SeqCst), 2);
    assert_eq!(counts.open_now.load(SeqCst), 0);
    let history = monitor.history();
    let failures: u64 = history.iter().map(|s| s.stages[0].open_failures).sum();
    assert_eq!(failures, 4, "six workers started, two opened");
    assert!(history
        .iter()
        .any(|s| s.stages[0].open_error.as_deref() == Some("too many connections")));
    let last = history.last().unwrap();
    assert_eq!(
        last.stages[0].workers.target, 2,
        "the stage stays at the size that works"
    );
    assert_eq!(last.stages[1].open_failures, 0);
}

#[test]
fn the_only_worker_retries_its_open_with_backoff_until_it_opens() {
    let counts = Arc::new(Counts::default());
    let in_open = counts.clone();
    let attempts = Arc::new(AtomicUsize::new(0));
    let in_attempts = attempts.clone();
    let written = Arc::new(AtomicU64::new(0));
    let in_sink = written.clone();
    let running = Pipeline::from_iter(0..500u64)
        .tick(Duration::from_millis(10))
        .retry(quick_retries())
        .try_batch_sink_with(
            "store",
            move || {
                if in_attempts.fetch_add(1, SeqCst) < 3 {
                    return Err(BoxError::from("database starting up"));
                }
                Ok(Connection::open(&in_open))
            },
            move |connection, batch| {
                for x in batch {
                    connection.query(x);
                    in_sink.fetch_add(1, SeqCst);
                }
                Ok(Vec::new())
            },
        )
        .workers(1, 1)
        .start()
        .unwrap();
    let monitor = running.monitor();
    let report = running.wait();
    assert!(report.is_clean(), "{:?}", report.failures);
    assert_eq!(report.completed, 500);
    assert_eq!(report.acknowledged, 500);
    assert_eq!(written.load(SeqCst), 500);
    assert_eq!(attempts.load(SeqCst), 4);
    assert_eq!(
        (counts.opens.load(SeqCst), counts.drops.load(SeqCst)),
        (1, 1)
    );
    let failures: u64 = monitor
        .history()
        .iter()
        .map(|s| s.stages[0].open_failures)
        .sum();
    assert_eq!(failures, 3);
}

#[test]
fn a_panicking_open_counts_as_a_failed_open_and_the_run_completes() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let in_open = attempts.clone();
    let running = Pipeline::from_iter(0..100u64)
        .retry(quick_retries())
        .try_map_with(
            "lookup",
            move || {
                if in_open.fetch_add(1, SeqCst) == 0 {
                    panic!("driver bug");
                }
                Ok(7u64)
            },
            |offset, x| Ok(x + *offset),
        )
        .sink("discard", |_| {})
        .start()
        .unwrap();
    let monitor = running.monitor();
    let report = running.wait();
    assert!(report.is_clean(), "{:?}", report.failures);
    assert_eq!(report.completed, 100);
    let history = monitor.history();
    assert_eq!(
        history
            .iter()
            .map(|s| s.stages[0].open_failures)
            .sum::<u64>(),
        1
    );
    let error = history
        .iter()
        .find_map(|s| s.stages[0].open_error.clone())
        .expect("the failure's message");
    assert!(error.contains("driver bug"), "{error}");
}

#[test]
fn the_serial_lane_opens_its_own_resource_at_its_first_record_and_keeps_it() {
    let counts = Arc::new(Counts::default());
    let in_open = counts.clone();
    let total = Arc::new(AtomicU64::new(0));
    let in_sink = total.clone();
    let report = Pipeline::from_iter(0..50u64)
        // Every record weighs 8 bytes: all of them take the serial lane.
        .serial_threshold(1)
        .try_map_with(
            "lookup",
            move || Ok(Connection::open(&in_open)),
            |connection, x| Ok(connection.query(x)),
        )
        .sink("sum", move |x| {
            in_sink.fetch_add(x, SeqCst);
        })
        .run()
        .unwrap();
    assert_eq!(report.completed, 50);
    assert_eq!(total.load(SeqCst), (0..50u64).map(|x| x * 2).sum());
    // The worker's at its join, the lane's at its first record: two, all closed.
    assert_eq!(counts.opens.load(SeqCst), 2);
    assert_eq!(counts.drops.load(SeqCst), 2);
}

/// A source of `0..end` that keeps its acknowledgements.
struct Acked {
    next: u64,
    end: u64,
    acks: Arc<Mutex<Vec<u64>>>,
}

impl Source for Acked {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    fn ack(&mut self, position: u64) {
        self.acks.lock().unwrap().push(position);
    }
}

#[test]
fn a_batch_write_dead_letters_exactly_the_records_it_rejects() {
    let acks = Arc::new(Mutex::new(Vec::new()));
    let source = Acked {
        next: 0,
        end: 1_000,
        acks: acks.clone(),
    };
    let written = Arc::new(Mutex::new(BTreeSet::new()));
    let in_sink = written.clone();
    let report = Pipeline::from_source(source)
        .map("shift", |x: u64| x + 1_000)
        .try_batch_sink_partial("bulk", move |batch: Vec<u64>| {
            let mut rejected = Vec::new();
            let mut written = in_sink.lock().unwrap();
            for (index, x) in batch.into_iter().enumerate() {
                if x % 10 == 3 {
                    rejected.push(Rejected::new(index, x, format!("constraint failed on {x}")));
                } else {
                    written.insert(x);
                }
            }
            Ok(rejected)
        })
        .run()
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.failures);
    assert_eq!(report.completed, 900);
    assert_eq!(report.dead_lettered, 100);
    assert_eq!(report.acknowledged, 1_000);
    assert_eq!(acks.lock().unwrap().last(), Some(&1_000));
    let written = written.lock().unwrap();
    assert_eq!(written.len(), 900);
    assert!(written.iter().all(|x| x % 10 != 3));
    let mut positions = Vec::new();
    for letter in report.dead_letters {
        assert_eq!(letter.stage, "bulk");
        assert_eq!(letter.cause, DeadLetterCause::Permanent);
        let position = letter.position;
        assert_eq!(
            letter.error,
            format!("constraint failed on {}", position + 1_000)
        );
        assert_eq!(letter.into_record::<u64>(), Some(position + 1_000));
        positions.push(position);
    }
    positions.sort_unstable();
    assert_eq!(
        positions,
        (0..1_000u64).filter(|p| p % 10 == 3).collect::<Vec<_>>()
    );
}

#[test]
fn a_reject_at_an_index_past_the_batch_dead_letters_the_whole_batch() {
    let report = Pipeline::from_iter(0..300u64)
        .try_batch_sink_partial("bulk", |batch: Vec<u64>| {
            let past = batch.len();
            Ok(vec![Rejected::new(past, 0, "off by one")])
        })
        .run()
        .unwrap();
    // Nothing is counted written when the outcome is unknown, and nothing is lost
    // or finished twice.
    assert_eq!(report.admitted, 300);
    assert_eq!((report.completed, report.dead_lettered), (0, 300));
    assert_eq!(report.dead_letters.len(), 300);
    let letter = &report.dead_letters[0];
    assert!(
        letter.error.contains("rejected index") && letter.error.contains("of a batch of"),
        "{}",
        letter.error
    );
    assert_eq!(report.acknowledged, 300);
}

#[test]
fn a_refused_dead_letter_stops_admission_and_caps_the_acknowledgements() {
    let acks = Arc::new(Mutex::new(Vec::new()));
    let source = Acked {
        next: 0,
        end: u64::MAX,
        acks: acks.clone(),
    };
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let in_handler = accepted.clone();
    let report = Pipeline::from_source(source)
        .try_on_dead_letter(move |letter| {
            if letter.position >= 300 {
                return Err(DeadLetterRefused::new(letter, "disk full"));
            }
            in_handler.lock().unwrap().push(letter.position);
            Ok(())
        })
        .try_map("check", |x: u64| {
            if x.is_multiple_of(100) {
                Err(Failure::permanent(x, "malformed"))
            } else {
                Ok(x)
            }
        })
        .workers(1, 1)
        .sink("discard", |_| {})
        .run()
        .unwrap();
    assert_eq!(accepted.lock().unwrap().clone(), vec![0, 100, 200]);
    let refused = RunFailure::DeadLetterOutputRefused {
        message: "disk full".to_owned(),
        stage: "check".to_owned(),
        position: 300,
    };
    assert_eq!(report.failures, vec![refused.clone()]);
    assert_eq!(
        refused.to_string(),
        "the dead-letter output refused a letter from stage `check` at position 300: disk \
         full; admission stopped, and the dead letters since are in the report"
    );
    // Admission stopped, and what was admitted drained.
    assert_eq!(report.admitted, report.completed + report.dead_lettered);
    // The refused letter, with its record, and any later ones are in the report.
    assert_eq!(report.dead_letters[0].position, 300);
    assert_eq!(report.dead_letters[0].record::<u64>(), Some(&300));
    // Records past 300 finished, but the source is never acknowledged past it.
    assert!(report.admitted > 301, "{}", report.admitted);
    assert!(report.acknowledged <= 300, "{}", report.acknowledged);
    assert!(acks.lock().unwrap().iter().all(|&ack| ack <= 300));
}

#[test]
fn a_worker_that_cannot_open_leaves_once_its_input_closes_empty() {
    let report = Pipeline::from_iter(Vec::<u64>::new())
        .retry(quick_retries())
        .try_map_with(
            "lookup",
            || Err::<(), _>(BoxError::from("no such host")),
            |_, x| Ok(x),
        )
        .sink("discard", |_| {})
        .run()
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.failures);
    assert_eq!(report.admitted, 0);
}

#[test]
fn a_drain_deadline_abandons_a_worker_that_cannot_open() {
    let running = Pipeline::from_iter(0..10u64)
        .tick(Duration::from_millis(10))
        .retry(quick_retries())
        .try_batch_sink_with(
            "store",
            || Err::<(), _>(BoxError::from("connection refused")),
            |_, _| Ok(Vec::new()),
        )
        .start()
        .unwrap();
    let monitor = running.monitor();
    wait_for("the ten records' admission", || {
        let history = monitor.history();
        history.iter().map(|s| s.global.source.records).sum::<u64>() == 10
    });
    let started = std::time::Instant::now();
    let report = running.shutdown_within(Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        matches!(report.failures[..], [RunFailure::DrainDeadline { .. }]),
        "{:?}",
        report.failures
    );
    // Nothing was written, so nothing is acknowledged.
    assert_eq!(report.completed, 0);
    assert_eq!(report.acknowledged, 0);
}

#[test]
fn a_flat_map_with_a_resource_retries_transient_failures_on_the_same_resource() {
    let counts = Arc::new(Counts::default());
    let in_open = counts.clone();
    let total = Arc::new(AtomicU64::new(0));
    let in_sink = total.clone();
    let report = Pipeline::from_iter(0..200u64)
        .retry(quick_retries())
        .try_flat_map_with(
            "expand",
            // The resource remembers the records that failed once on it.
            move || Ok((Connection::open(&in_open), BTreeSet::new())),
            |(connection, failed_once), x: u64, out| {
                if x.is_multiple_of(7) && failed_once.insert(x) {
                    return Err(Failure::transient(x, "deadlock victim"));
                }
                out.emit(connection.query(x));
                out.emit(1);
                Ok(())
            },
        )
        .workers(1, 3)
        .initial_workers(3)
        .sink("sum", move |x| {
            in_sink.fetch_add(x, SeqCst);
        })
        .run()
        .unwrap();
    assert!(report.is_clean(), "{:?}", report.failures);
    assert_eq!((report.completed, report.dead_lettered), (200, 0));
    assert_eq!(report.stages[0].retries, 29, "every seventh record, once");
    assert_eq!(total.load(SeqCst), (0..200u64).map(|x| x * 2 + 1).sum());
    assert_eq!(counts.opens.load(SeqCst), 3);
    assert_eq!(counts.drops.load(SeqCst), 3);
}
