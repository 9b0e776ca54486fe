//! The memory budget holds on the real heap: with giant records of 50–200 MB and a
//! 256 MiB budget, the most live heap bytes at once (counted by a global allocator in
//! this test binary) stay under budget + 32 MiB; the same pipeline without the budget
//! goes past it.
//!
//! One test function runs both pipelines in turn, so nothing else allocates meanwhile.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use brigade_runtime::{Pipeline, Report, Source};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), SeqCst) + layout.size();
            PEAK.fetch_max(live, SeqCst);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), SeqCst);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: usize = 1 << 20;

/// Records of 64 KiB with runs of giants of 50–200 MB, like geometries from a cursor
/// whose index gives each record's length before it is read.
struct Geometries {
    next: usize,
    total: usize,
    /// Records read so far.
    read: Arc<AtomicUsize>,
}

impl Geometries {
    fn size(position: usize) -> usize {
        match position % 400 {
            100 => 50_000_000,
            101 => 200_000_000,
            102 => 120_000_000,
            103 => 80_000_000,
            104 => 150_000_000,
            _ => 64 * 1024,
        }
    }
}

impl Source for Geometries {
    type Item = Vec<u8>;

    fn next_weight(&mut self) -> Option<u64> {
        (self.next < self.total).then(|| (Self::size(self.next) + 24) as u64)
    }

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.next == self.total {
            return None;
        }
        let mut record = vec![(self.next % 251) as u8; Self::size(self.next)];
        // Its position, where no stage touches it.
        record[8..16].copy_from_slice(&(self.next as u64).to_le_bytes());
        self.next += 1;
        self.read.store(self.next, SeqCst);
        Some(record)
    }
}

/// Touches every page, as real work on a geometry would.
fn touch(mut record: Vec<u8>) -> Vec<u8> {
    for byte in record.iter_mut().step_by(4096) {
        *byte = byte.wrapping_add(1);
    }
    record
}

fn run(budget: Option<u64>) -> (Report, usize) {
    let baseline = LIVE.load(SeqCst);
    PEAK.store(baseline, SeqCst);
    let read = Arc::new(AtomicUsize::new(0));
    let reads = read.clone();
    let pipeline = Pipeline::from_source(Geometries {
        next: 0,
        total: 800,
        read,
    })
    .map("parse", touch)
    .initial_workers(4)
    .workers(1, 4)
    .map("package", touch)
    .initial_workers(4)
    .workers(1, 4)
    .sink("relay", move |record| {
        // Without a budget nothing stops the source from reading the next giant
        // (120 MB) while the 200 MB one is still here: hold it until the source has
        // read on, rather than leave the overlap to the scheduler. (A budget stops
        // the source, so only the run without one waits.)
        if budget.is_none() && record.len() == 200_000_000 {
            let position = u64::from_le_bytes(record[8..16].try_into().unwrap()) as usize;
            common::wait_for("the source to read the next giant", || {
                reads.load(SeqCst) >= position + 2
            });
        }
        std::hint::black_box(touch(record));
    })
    .initial_workers(4)
    .workers(1, 4);
    let pipeline = match budget {
        Some(bytes) => pipeline.memory_budget(bytes),
        None => pipeline,
    };
    let report = pipeline.run().unwrap();
    (report, PEAK.load(SeqCst) - baseline)
}

#[test]
fn giants_stay_under_the_budget_and_exceed_it_without() {
    let budget = 256 * MIB;
    let (bounded, bounded_peak) = run(Some(budget as u64));
    assert_eq!(bounded.completed, 800);
    assert!(
        bounded.peak_inflight_bytes <= budget as u64,
        "counted bytes in flight {} over the budget {budget}",
        bounded.peak_inflight_bytes
    );
    assert!(
        bounded_peak <= budget + 32 * MIB,
        "live heap peaked at {} MiB with a {} MiB budget",
        bounded_peak / MIB,
        budget / MIB
    );

    let (unbounded, unbounded_peak) = run(None);
    assert_eq!(unbounded.completed, 800);
    assert!(
        unbounded_peak > budget + 32 * MIB,
        "without a budget the heap should go past it, peaked at {} MiB",
        unbounded_peak / MIB
    );
    eprintln!(
        "elapsed {:.1}s / {:.1}s; peak live heap: {} MiB with a {} MiB budget, {} MiB without",
        bounded.elapsed_s,
        unbounded.elapsed_s,
        bounded_peak / MIB,
        budget / MIB,
        unbounded_peak / MIB
    );
}
