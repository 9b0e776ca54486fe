//! The spill to disk: with the memory budget full behind a stalled sink, the source
//! guard's reads go to a spill file, the source is never left unread past its idle
//! timeout, and every record arrives once, in read order, the file gone at the end.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use brigade_runtime::{BoxError, Pipeline, Source, SpillConfig, Spillable, Weigh};

/// A record of 1000 bytes by weight.
#[derive(Debug, PartialEq)]
struct Rec(u64);

impl Weigh for Rec {
    fn weigh(&self) -> u64 {
        1000
    }
}

impl Spillable for Rec {
    fn spill(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
    }

    fn unspill(bytes: &[u8]) -> Result<Self, BoxError> {
        Ok(Rec(u64::from_le_bytes(bytes.try_into()?)))
    }
}

/// A stream that drops its connection if unread for `TIMEOUT`: it notes the longest
/// gap between reads.
struct Stream {
    next: u64,
    total: u64,
    last_read: Option<Instant>,
    longest_gap: Arc<Mutex<Duration>>,
}

const TIMEOUT: Duration = Duration::from_millis(400);

impl Source for Stream {
    type Item = Rec;

    fn next(&mut self) -> Option<Rec> {
        let now = Instant::now();
        if let Some(last) = self.last_read {
            let mut longest = self.longest_gap.lock().unwrap();
            *longest = (*longest).max(now - last);
        }
        self.last_read = Some(now);
        (self.next < self.total).then(|| {
            self.next += 1;
            Rec(self.next - 1)
        })
    }

    fn idle_timeout(&self) -> Option<Duration> {
        Some(TIMEOUT)
    }
}

/// Runs 60 records through a sink that stalls 1.5 s on its first record, with a
/// budget of 4 records; returns the records in the order the sink took them, the
/// longest gap between reads, and the run's snapshots' spill figures (records and
/// bytes through it).
fn run(spill: Option<SpillConfig>) -> (Vec<u64>, Duration, u64, u64) {
    let longest_gap = Arc::new(Mutex::new(Duration::ZERO));
    let source = Stream {
        next: 0,
        total: 60,
        last_read: None,
        longest_gap: longest_gap.clone(),
    };
    let builder = match spill {
        Some(spill) => Pipeline::from_source_with_spill(source, spill),
        None => Pipeline::from_source(source),
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink_seen = seen.clone();
    let stalled = AtomicU64::new(0);
    let running = builder
        .tick(Duration::from_millis(50))
        .memory_budget(4000)
        .map("parse", |rec: Rec| rec)
        .sink("stalls", move |rec: Rec| {
            if stalled.fetch_add(1, SeqCst) == 0 {
                std::thread::sleep(Duration::from_millis(1500));
            }
            sink_seen.lock().unwrap().push(rec.0);
        })
        .start()
        .unwrap();
    let monitor = running.monitor();
    let report = running.wait();
    assert_eq!(report.completed, 60);
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    let spill = monitor.latest().unwrap().global.source.spill;
    let seen = seen.lock().unwrap().clone();
    let gap = *longest_gap.lock().unwrap();
    (seen, gap, spill.total_records, spill.bytes)
}

#[test]
fn a_stalled_sink_with_a_full_budget_spills_and_every_record_arrives_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (seen, gap, spilled, left) = run(Some(SpillConfig::new(dir.path(), 1 << 20)));
    assert!(
        gap < TIMEOUT,
        "the source went unread for {gap:?}, past its {TIMEOUT:?} timeout"
    );
    // The guard read every 200 ms of the 1.5 s stall: several records went to disk.
    assert!(spilled >= 3, "records through the spill: {spilled}");
    assert_eq!(left, 0);
    // One worker per stage and spilled records re-entering before any new read: the
    // sink takes every record once, in the order the source gave them.
    assert_eq!(seen, (0..60).collect::<Vec<_>>());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn without_a_spill_the_full_budget_leaves_the_source_unread_past_its_timeout() {
    let (seen, gap, spilled, _) = run(None);
    assert!(gap > TIMEOUT, "longest gap {gap:?}");
    assert_eq!(spilled, 0);
    assert_eq!(seen.len(), 60);
}

#[test]
fn a_spill_too_small_for_a_record_is_as_no_spill() {
    let dir = tempfile::tempdir().unwrap();
    let (seen, gap, spilled, _) = run(Some(SpillConfig::new(dir.path(), 4)));
    assert!(gap > TIMEOUT, "longest gap {gap:?}");
    assert_eq!(spilled, 0);
    assert_eq!(seen, (0..60).collect::<Vec<_>>());
}
