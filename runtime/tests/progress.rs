//! A finite source's progress reaches the Snapshots: asked of the source now and then,
//! never per record, and final once the source is exhausted.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade_controller::{GroupStats, Progress};
use brigade_runtime::{Pipeline, Source};

const FILES: u64 = 4;
const LINES_PER_FILE: u64 = 100;
const LINE_BYTES: u64 = 64;

/// Files of fixed-size lines, read one line at a time, knowing the totals from the start.
struct Files {
    read: u64,
    asked: Arc<AtomicU64>,
}

impl Source for Files {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        (self.read < FILES * LINES_PER_FILE).then(|| {
            self.read += 1;
            vec![b'x'; LINE_BYTES as usize]
        })
    }

    fn progress(&self) -> Option<Progress> {
        self.asked.fetch_add(1, SeqCst);
        Some(Progress {
            files_done: self.read / LINES_PER_FILE,
            files_total: Some(FILES),
            bytes_done: self.read * LINE_BYTES,
            bytes_total: Some(FILES * LINES_PER_FILE * LINE_BYTES),
        })
    }
}

#[test]
fn a_source_with_known_totals_shows_its_progress_and_ends_at_the_total() {
    let asked = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let running = Pipeline::from_source(Files {
        read: 0,
        asked: asked.clone(),
    })
    .tick(Duration::from_millis(10))
    .sink("slow", |_: Vec<u8>| {
        std::thread::sleep(Duration::from_millis(1));
    })
    .queue_capacity(4)
    .start()
    .unwrap();
    let ticks = running.monitor().subscribe();
    let report = running.wait();
    let elapsed = started.elapsed();
    let progress: Vec<(Progress, bool)> = ticks
        .iter()
        .map(|tick| {
            let source = &tick.snapshot.global.source;
            (
                source.progress.expect("every window shows progress"),
                source.exhausted,
            )
        })
        .collect();
    assert_eq!(report.completed, FILES * LINES_PER_FILE);
    let total = FILES * LINES_PER_FILE * LINE_BYTES;
    assert!(
        progress
            .iter()
            .any(|(p, exhausted)| !exhausted && p.bytes_done < total),
        "a window while reading shows part done: {progress:?}"
    );
    assert!(
        progress
            .windows(2)
            .all(|pair| pair[0].0.bytes_done <= pair[1].0.bytes_done),
        "progress only rises: {progress:?}"
    );
    for (p, exhausted) in &progress {
        assert_eq!(p.bytes_total, Some(total));
        assert_eq!(p.files_total, Some(FILES));
        if *exhausted {
            assert_eq!(p.bytes_done, total, "once exhausted, the final value");
            assert_eq!(p.files_done, FILES);
        }
    }
    let (last, exhausted) = progress.last().unwrap();
    assert!(exhausted);
    assert_eq!(last.fraction(), Some(1.0));
    // Before the first read, at most one per 100 ms of reading, and at the end.
    let most = 2 + elapsed.as_millis() as u64 / 100 + 1;
    let asked = asked.load(SeqCst);
    assert!(
        (2..=most).contains(&asked),
        "asked {asked} times in {elapsed:?}, not per record"
    );
}

#[test]
fn a_source_that_cannot_say_shows_no_progress() {
    let running = Pipeline::from_iter(0..1000u64)
        .tick(Duration::from_millis(10))
        .sink("drop", |_| {})
        .start()
        .unwrap();
    let ticks = running.monitor().subscribe();
    running.wait();
    assert!(ticks
        .iter()
        .all(|tick| tick.snapshot.global.source.progress.is_none()));
}

/// Counts, and cannot say how far it got once past 50 records.
struct BrokenGauge {
    read: u64,
}

impl Source for BrokenGauge {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        (self.read < 10_000).then(|| {
            self.read += 1;
            self.read
        })
    }

    fn progress(&self) -> Option<Progress> {
        assert!(self.read < 50, "the listing is gone");
        None
    }
}

#[test]
fn a_panic_in_progress_stops_admission_and_loses_nothing_read() {
    let report = Pipeline::from_source(BrokenGauge { read: 0 })
        .sink("slow", |_| std::thread::sleep(Duration::from_micros(200)))
        .run()
        .unwrap();
    match &report.failures[..] {
        [brigade_runtime::RunFailure::SourcePanicked { message, position }] => {
            assert!(message.contains("the listing is gone"), "{message}");
            assert_eq!(*position, report.admitted);
        }
        other => panic!("expected the source's panic, got {other:?}"),
    }
    assert!(report.admitted >= 50 && report.admitted < 10_000);
    assert_eq!(report.completed, report.admitted);
    assert_eq!(report.acknowledged, report.admitted);
}

/// A source reading in a consumer group, whose lag shrinks as it reads.
struct Grouped {
    left: u64,
}

impl Source for Grouped {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        self.left = self.left.checked_sub(1)?;
        Some(self.left)
    }

    fn group(&self) -> Option<GroupStats> {
        Some(GroupStats {
            lag: Some(self.left),
            consumers: 3,
            arrival_per_s: Some(0.0),
            ..GroupStats::default()
        })
    }
}

#[test]
fn a_source_in_a_consumer_group_shows_the_group_in_the_snapshots() {
    let running = Pipeline::from_source(Grouped { left: 300 })
        .tick(Duration::from_millis(10))
        .sink("slow", |_: u64| {
            std::thread::sleep(Duration::from_micros(200));
        })
        .queue_capacity(4)
        .start()
        .unwrap();
    let ticks = running.monitor().subscribe();
    running.wait();
    let groups: Vec<GroupStats> = ticks
        .iter()
        .filter_map(|tick| tick.snapshot.global.source.group)
        .collect();
    assert!(!groups.is_empty(), "no window showed the group");
    assert!(
        groups.iter().all(|group| group.consumers == 3),
        "{groups:?}"
    );
    let lags: Vec<u64> = groups.iter().filter_map(|group| group.lag).collect();
    assert!(lags.windows(2).all(|pair| pair[0] >= pair[1]), "{lags:?}");
    assert_eq!(lags.last(), Some(&0), "{lags:?}");
}
