//! A run's life beyond the happy path: a source or a dead-letter handler that panics,
//! a drain that must end by a deadline, a stall that must not burn a core, and the
//! memory peak the report gives.

mod common;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use brigade_runtime::{Failure, Pipeline, Report, RunFailure, Source};

/// Runs `run` on its own thread and fails the test, instead of hanging it, if no report
/// comes within a minute.
fn within_a_minute(run: impl FnOnce() -> Report + Send + 'static) -> Report {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(run());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the run returned a report within a minute")
}

/// Counts to `panic_at`, then panics as a driver losing its connection would.
struct Flaky {
    next: u64,
    panic_at: u64,
}

impl Source for Flaky {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        assert!(self.next != self.panic_at, "connection reset by peer");
        self.next += 1;
        Some(self.next - 1)
    }
}

#[test]
fn a_panicking_source_stops_admission_drains_and_says_what_panicked() {
    let report = within_a_minute(|| {
        Pipeline::from_source(Flaky {
            next: 0,
            panic_at: 10,
        })
        .map("double", |x| x * 2)
        .sink("discard", |_| {})
        .run()
        .unwrap()
    });
    assert_eq!(report.admitted, 10);
    assert_eq!(report.completed, 10);
    assert_eq!(report.acknowledged, 10);
    match &report.failures[..] {
        [RunFailure::SourcePanicked { message, position }] => {
            assert_eq!(*position, 10);
            assert!(message.contains("connection reset by peer"), "{message}");
        }
        other => panic!("expected the source's panic, got {other:?}"),
    }
    assert!(!report.is_clean());
}

#[test]
fn a_panicking_dead_letter_handler_keeps_the_letters_and_holds_the_ack() {
    let report = within_a_minute(|| {
        Pipeline::from_iter(0u64..1000)
            .try_map("picky", |x| {
                if x % 100 == 5 {
                    Err(Failure::permanent(x, "ends in 05"))
                } else {
                    Ok(x)
                }
            })
            .sink("discard", |_| {})
            .on_dead_letter(|letter| panic!("the dead-letter file is gone: {letter:?}"))
            .run()
            .unwrap()
    });
    // Admission stopped soon after the first dead letter, and what was admitted drained.
    assert_eq!(report.admitted, report.completed + report.dead_lettered);
    assert!(report.dead_lettered >= 1);
    assert_eq!(report.dead_letters.len() as u64, report.dead_lettered);
    assert_eq!(report.dead_letters[0].position, 5);
    assert_eq!(report.dead_letters[0].stage, "picky");
    // Nothing past the letter the handler lost is acknowledged: a rerun reads it again.
    assert!(
        report.acknowledged <= 5,
        "acknowledged {}",
        report.acknowledged
    );
    match &report.failures[..] {
        [RunFailure::DeadLetterHandlerPanicked { message, stage }] => {
            assert_eq!(stage, "picky");
            assert!(
                message.contains("the dead-letter file is gone"),
                "{message}"
            );
        }
        other => panic!("expected the handler's panic, got {other:?}"),
    }
}

#[test]
fn a_drain_deadline_abandons_a_hung_call_names_it_and_acknowledges_nothing_unfinished() {
    let (entered_tx, entered) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let running = Pipeline::from_iter(0u64..)
        .map("pass", |x| x)
        .sink("hangs on 3", move |x| {
            if x == 3 {
                entered_tx.send(()).unwrap();
                let _ = released.lock().unwrap().recv();
            }
        })
        .start()
        .unwrap();
    entered
        .recv_timeout(Duration::from_secs(60))
        .expect("record 3 reached the sink");
    let started = Instant::now();
    let report = within_a_minute(move || running.shutdown_within(Duration::from_millis(300)));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the drain gave up at its deadline, not when the call ended"
    );
    assert!(
        report.acknowledged <= 3,
        "acknowledged {}",
        report.acknowledged
    );
    match &report.failures[..] {
        [RunFailure::DrainDeadline {
            after_s,
            records,
            stages,
        }] => {
            assert_eq!(*after_s, 0.3);
            assert!(*records >= 1);
            assert_eq!(*records, report.admitted - report.completed);
            assert_eq!(stages.len(), 2);
            assert_eq!(stages[1].name, "hangs on 3");
            assert!(
                stages[1].bytes > 0,
                "the hung record's bytes are held by the sink"
            );
        }
        other => panic!("expected the deadline, got {other:?}"),
    }
    let _ = release.send(());
}

/// A source that gives each record's weight before reading it, times out when left
/// unread, and counts how often it is asked for a weight.
struct Weighed {
    next: u64,
    asked: Arc<AtomicU64>,
}

impl Source for Weighed {
    type Item = Vec<u8>;

    fn next_weight(&mut self) -> Option<u64> {
        self.asked.fetch_add(1, SeqCst);
        Some(1000)
    }

    fn next(&mut self) -> Option<Vec<u8>> {
        self.next += 1;
        Some(vec![0; 976])
    }

    fn idle_timeout(&self) -> Option<Duration> {
        Some(Duration::from_millis(100))
    }
}

#[test]
fn a_stalled_pipeline_leaves_the_source_thread_asleep() {
    let asked = Arc::new(AtomicU64::new(0));
    let (release, released) = mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let running = Pipeline::from_source(Weighed {
        next: 0,
        asked: asked.clone(),
    })
    .memory_budget(10_000)
    .tick(Duration::from_millis(20))
    .map("stuck", move |record: Vec<u8>| {
        let _ = released.lock().unwrap().recv();
        record
    })
    .queue_capacity(1)
    .sink("discard", |_| {})
    .start()
    .unwrap();
    let monitor = running.monitor();
    // The guard reads past the full queue until the budget is full too.
    common::wait_for("a full budget", || {
        monitor
            .latest()
            .is_some_and(|snapshot| snapshot.global.inflight_bytes_max >= 9_000)
    });
    let before = asked.load(SeqCst);
    std::thread::sleep(Duration::from_millis(500));
    let during = asked.load(SeqCst) - before;
    // Waiting for room in steps of 50 ms asks about 10 times in 500 ms; spinning asked
    // hundreds of thousands of times a second.
    assert!(
        during < 200,
        "the source was asked {during} times in 500 ms of stall"
    );
    drop(release);
    let report = within_a_minute(move || running.shutdown());
    assert_eq!(report.admitted, report.completed);
}

#[test]
fn the_reported_peak_memory_includes_a_peak_between_two_ticks() {
    const PEAK: usize = 256 << 20;
    let report = within_a_minute(|| {
        Pipeline::from_iter(0u64..3)
            .tick(Duration::from_secs(3600))
            .map("spike", |x| {
                let block = vec![1u8; PEAK];
                std::hint::black_box(&block);
                x
            })
            .sink("discard", |_| {})
            .run()
            .unwrap()
    });
    if cfg!(target_os = "linux") {
        assert!(
            report.peak_rss_bytes >= PEAK as u64,
            "peak RSS {} below the {} bytes a call touched",
            report.peak_rss_bytes,
            PEAK
        );
    }
}
