//! What brigade costs over a hand-written pipeline.
//!
//! The same three-stage pipeline over 200,000 `u64` records, about 1 µs of CPU per
//! stage per record, one worker per stage:
//!
//! - `raw_crossbeam`: a source thread and three stage threads joined by crossbeam
//!   bounded channels of capacity 64 (the runtime's default queue capacity);
//! - `brigade`: `Pipeline::from_iter(..).map("a", ..).map("b", ..).sink("c", ..)` with
//!   default settings: metrics on, the default static controller ticking every second.
//!
//! The work is a deterministic arithmetic loop whose length is calibrated once, at
//! start, to about 1 µs; both pipelines must produce the same checksum.
//!
//! Before criterion's groups, a paired measurement alternates the two pipelines 21
//! times and prints the median ratio: the figure to quote on a shared machine.
//!
//! For a count that does not depend on the machine's load, run one pipeline alone
//! under callgrind with a fixed amount of work (`scripts/overhead-instructions.sh`
//! does this for both and prints the ratio):
//!
//! ```sh
//! OVERHEAD_ONLY=brigade OVERHEAD_ITERS=300 valgrind --tool=callgrind target/release/deps/overhead-* --bench
//! ```

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use brigade::Pipeline;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use crossbeam_channel::bounded;

const RECORDS: u64 = 200_000;
const QUEUE_CAPACITY: usize = 64;
/// Pairs of runs in the paired measurement.
const PAIRS: usize = 21;

/// About `iters` dependent multiply-xor steps; `black_box` keeps every step.
fn spin(x: u64, iters: u64) -> u64 {
    let mut h = x;
    for _ in 0..iters {
        h = black_box((h ^ (h >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }
    h
}

/// The iteration count of `spin` that takes about 1 µs on this machine (best of 5).
fn calibrate() -> u64 {
    const PROBE: u64 = 2_000_000;
    let best = (0..5)
        .map(|i| {
            let start = Instant::now();
            black_box(spin(black_box(i), PROBE));
            start.elapsed()
        })
        .min()
        .unwrap_or(Duration::from_millis(1));
    let per_us = PROBE as f64 / (best.as_secs_f64() * 1e6);
    (per_us.round() as u64).max(1)
}

/// Source -> a -> b -> c over crossbeam channels, one thread each; c's checksum.
fn raw_crossbeam(iters: u64) -> u64 {
    let (to_a, a_in) = bounded::<u64>(QUEUE_CAPACITY);
    let (to_b, b_in) = bounded::<u64>(QUEUE_CAPACITY);
    let (to_c, c_in) = bounded::<u64>(QUEUE_CAPACITY);
    let source = thread::spawn(move || {
        for record in 0..RECORDS {
            if to_a.send(record).is_err() {
                break;
            }
        }
    });
    let a = thread::spawn(move || {
        for record in a_in {
            if to_b.send(spin(record, iters)).is_err() {
                break;
            }
        }
    });
    let b = thread::spawn(move || {
        for record in b_in {
            if to_c.send(spin(record, iters)).is_err() {
                break;
            }
        }
    });
    let c = thread::spawn(move || {
        c_in.iter()
            .fold(0u64, |sum, record| sum.wrapping_add(spin(record, iters)))
    });
    for stage in [source, a, b] {
        stage.join().expect("a raw pipeline thread panicked");
    }
    c.join().expect("the raw sink thread panicked")
}

/// The same pipeline on brigade with default settings; the sink's checksum.
fn brigade(iters: u64) -> u64 {
    let checksum = Arc::new(AtomicU64::new(0));
    let sum = checksum.clone();
    let report = Pipeline::from_iter(0..RECORDS)
        .map("a", move |record| spin(record, iters))
        .map("b", move |record| spin(record, iters))
        .sink("c", move |record| {
            sum.fetch_add(spin(record, iters), Relaxed);
        })
        .run()
        .expect("the pipeline is valid");
    assert_eq!(report.completed, RECORDS);
    checksum.load(Relaxed)
}

fn overhead(c: &mut Criterion) {
    if let Ok(only) = std::env::var("OVERHEAD_ONLY") {
        let iters = std::env::var("OVERHEAD_ITERS")
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(300);
        let checksum = match only.as_str() {
            "raw" => raw_crossbeam(iters),
            "brigade" => brigade(iters),
            other => panic!("OVERHEAD_ONLY={other}: say raw or brigade"),
        };
        println!("{only}: {RECORDS} records, {iters} iterations per stage, checksum {checksum}");
        return;
    }
    let iters = calibrate();
    let started = Instant::now();
    let expected = raw_crossbeam(iters);
    println!(
        "spin: {iters} iterations per µs of work; one raw run took {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(brigade(iters), expected, "the two pipelines disagree");
    paired(iters);

    let mut group = c.benchmark_group("overhead");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(3))
        .measurement_time(Duration::from_secs(20));
    group.bench_function("raw_crossbeam", |b| b.iter(|| raw_crossbeam(iters)));
    group.bench_function("brigade", |b| b.iter(|| brigade(iters)));
    group.finish();
}

/// Runs the two pipelines in turn, `PAIRS` times, and prints the median of the pairs'
/// ratios: on a shared machine whose load drifts over a minute, a pair taken a second
/// apart sees the same machine, where criterion's two groups, 30 s apart, may not.
fn paired(iters: u64) {
    let time = |run: &dyn Fn() -> u64| {
        let start = Instant::now();
        black_box(run());
        start.elapsed().as_secs_f64()
    };
    let mut ratios: Vec<f64> = (0..PAIRS)
        .map(|_| time(&|| brigade(iters)) / time(&|| raw_crossbeam(iters)))
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "paired: brigade / raw_crossbeam over {PAIRS} pairs: median {:.3} (quartiles {:.3}–{:.3})",
        ratios[PAIRS / 2],
        ratios[PAIRS / 4],
        ratios[3 * PAIRS / 4]
    );
}

criterion_group!(benches, overhead);
criterion_main!(benches);
