//! The runtime's protections: giants run alone in the serial lane, records larger than
//! the whole budget are refused when asked, the source guard keeps a stalled source
//! alive, sink limits hold, and a bad description is refused before anything runs.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade_runtime::{BuildError, DeadLetterCause, Oversize, Pipeline, Source};

/// Tracks how many calls are in progress at once and the most ever seen.
#[derive(Default)]
struct InProgress {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl InProgress {
    fn enter(&self) {
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
    }

    fn exit(&self) {
        self.now.fetch_sub(1, SeqCst);
    }
}

#[test]
fn giants_go_through_the_serial_lane_one_at_a_time() {
    let giants = Arc::new(InProgress::default());
    let smalls_during_giants = Arc::new(AtomicU64::new(0));
    let (g, s) = (giants.clone(), smalls_during_giants.clone());
    let entered = Arc::new(AtomicBool::new(false));
    let stage = move |record: Vec<u8>| {
        let position = u64::from_le_bytes(record[..8].try_into().unwrap());
        if record.len() >= 1 << 20 {
            g.enter();
            entered.store(true, SeqCst);
            // Long enough for a second giant to join it, were the lane to let one in.
            std::thread::sleep(Duration::from_millis(20));
            // The records after a giant flow past it: the first giant waits to see one.
            common::wait_for("a small record beside the giant", || s.load(SeqCst) > 0);
            g.exit();
        } else {
            // Records read after the first giant wait for it to be inside its call, so
            // that one passes it there however the threads are scheduled.
            if position > 50 {
                common::wait_for("the first giant's call", || entered.load(SeqCst));
            }
            if g.now.load(SeqCst) > 0 {
                s.fetch_add(1, SeqCst);
            }
        }
        record
    };
    let records = (0..3_000u64).map(|i| {
        let mut record = vec![0u8; if i % 100 == 50 { 4 << 20 } else { 512 }];
        record[..8].copy_from_slice(&i.to_le_bytes());
        record
    });
    let report = Pipeline::from_iter(records)
        .serial_threshold(1 << 20)
        .map("parse", stage.clone())
        .initial_workers(4)
        .map("package", stage)
        .initial_workers(4)
        .sink("write", |_| std::thread::sleep(Duration::from_micros(50)))
        .initial_workers(4)
        .run()
        .unwrap();
    assert_eq!(report.completed, 3_000);
    assert_eq!(giants.most.load(SeqCst), 1, "one giant at a time");
    assert!(
        smalls_during_giants.load(SeqCst) > 0,
        "small records keep flowing beside the lane"
    );
    for stage in &report.stages {
        assert_eq!(
            stage.records_in, 3_000,
            "{} counts the lane's records",
            stage.name
        );
    }
}

#[test]
fn a_record_larger_than_the_budget_is_refused_or_waits_as_configured() {
    let records = || vec![vec![1u8; 1000], vec![2u8; 5_000_000], vec![3u8; 1000]];
    let refused = Pipeline::from_iter(records())
        .memory_budget(1_000_000)
        .oversize(Oversize::Refuse)
        .sink("write", |_| {})
        .run()
        .unwrap();
    assert_eq!((refused.completed, refused.dead_lettered), (2, 1));
    let letter = &refused.dead_letters[0];
    assert_eq!(letter.stage, "source");
    assert_eq!(letter.position, 1);
    assert_eq!(
        letter.cause,
        DeadLetterCause::TooLarge {
            size: 5_000_024,
            budget: 1_000_000
        }
    );
    assert!(letter.error.contains("5000024 bytes") && letter.error.contains("1000000 bytes"));
    assert_eq!(letter.record::<Vec<u8>>().map(Vec::len), Some(5_000_000));

    let waited = Pipeline::from_iter(records())
        .memory_budget(1_000_000)
        .sink("write", |_| {})
        .run()
        .unwrap();
    assert_eq!((waited.completed, waited.dead_lettered), (3, 0));
    assert_eq!(waited.peak_inflight_bytes, 5_000_024, "admitted alone");
}

/// A source of six records that records the longest time it went unread and how
/// many it has read.
struct Stream {
    next: u64,
    last_read: Option<Instant>,
    longest_gap: Arc<Mutex<Duration>>,
    read: Arc<AtomicU64>,
}

impl Source for Stream {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let now = Instant::now();
        if let Some(last) = self.last_read.replace(now) {
            let mut longest = self.longest_gap.lock().unwrap();
            *longest = (*longest).max(now - last);
        }
        self.next += 1;
        self.read.store(self.next, SeqCst);
        (self.next <= 6).then_some(self.next)
    }

    fn idle_timeout(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
}

#[test]
fn the_source_guard_reads_past_back_pressure_before_the_timeout() {
    let longest_gap = Arc::new(Mutex::new(Duration::ZERO));
    let read = Arc::new(AtomicU64::new(0));
    let reads = read.clone();
    let running = Pipeline::from_source(Stream {
        next: 0,
        last_read: None,
        longest_gap: longest_gap.clone(),
        read,
    })
    .tick(Duration::from_millis(50))
    // The only sink worker holds the first record until the source has read the
    // fourth: with one record in the call and one in the queue, only the guard can
    // read the others, at half the source's timeout; the other half is left for a
    // loaded machine's scheduling.
    .sink("stuck", move |x| {
        if x == 1 {
            common::wait_for("the source to read past the full queue", || {
                reads.load(SeqCst) >= 4
            });
        }
    })
    .queue_capacity(1)
    .start()
    .unwrap();
    let monitor = running.monitor();
    let report = running.wait();
    assert_eq!(report.completed, 6);
    let gap = *longest_gap.lock().unwrap();
    assert!(
        gap < Duration::from_secs(1),
        "the source went unread for {gap:?}, past its 1 s timeout"
    );
    let guard_reads: u64 = monitor
        .history()
        .iter()
        .map(|s| s.global.source.guard_reads)
        .sum();
    assert!(
        guard_reads >= 2,
        "the guard read past a full queue: {guard_reads}"
    );
    let snapshot = monitor.latest().unwrap();
    assert_eq!(snapshot.global.source.idle_timeout_s, Some(1.0));
}

#[test]
fn sink_concurrency_and_rate_limits_hold() {
    let calls = Arc::new(InProgress::default());
    let c = calls.clone();
    let first = AtomicBool::new(true);
    let report = Pipeline::from_iter(0..200u64)
        .sink("db", move |_| {
            c.enter();
            // The first call waits for a second to join it, so the limit is reached;
            // the others last long enough for a third to join, were it let in.
            if first.swap(false, SeqCst) {
                common::wait_for("a second call", || c.most.load(SeqCst) >= 2);
            }
            std::thread::sleep(Duration::from_millis(2));
            c.exit();
        })
        .initial_workers(8)
        .concurrency_limit(2)
        .run()
        .unwrap();
    assert_eq!(report.completed, 200);
    assert_eq!(calls.most.load(SeqCst), 2, "8 workers, at most 2 calls");

    let start = Instant::now();
    let report = Pipeline::from_iter(0..60u64)
        .sink("api", |_| {})
        .initial_workers(4)
        .rate_limit(200.0)
        .run()
        .unwrap();
    assert_eq!(report.completed, 60);
    assert!(
        start.elapsed() >= Duration::from_millis(280),
        "60 records at 200/s take 0.3 s, took {:?}",
        start.elapsed()
    );
}

#[test]
fn a_bad_description_is_refused_before_anything_runs() {
    let duplicate = Pipeline::from_iter(0..1u64)
        .map("step", |x| x)
        .sink("step", |_| {})
        .start()
        .err();
    assert_eq!(
        duplicate,
        Some(BuildError::DuplicateStage {
            name: "step".into()
        })
    );
    let workers = Pipeline::from_iter(0..1u64)
        .map("parse", |x| x)
        .workers(4, 2)
        .sink("write", |_| {})
        .start()
        .err()
        .unwrap();
    assert_eq!(
        workers.to_string(),
        "stage `parse`: workers must satisfy 1 <= min (4) <= initial (4) <= max (2)"
    );
    let queue = Pipeline::from_iter(0..1u64)
        .sink("write", |_| {})
        .queue_capacity(0)
        .start()
        .err()
        .unwrap();
    assert_eq!(
        queue.to_string(),
        "queue capacity of stage `write` must be greater than zero"
    );
    let log = Pipeline::from_iter(0..1u64)
        .decision_log(0)
        .sink("write", |_| {})
        .start()
        .err()
        .unwrap();
    assert_eq!(log.to_string(), "decision log must be greater than zero");
    let misplaced = Pipeline::from_iter(0..1u64)
        .workers(1, 2)
        .sink("write", |_| {})
        .start()
        .err();
    assert_eq!(
        misplaced,
        Some(BuildError::NoStageYet { option: "workers" })
    );
}
