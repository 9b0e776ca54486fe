//! The brigade demo: a three-stage ETL pipeline, watched tick by tick.
//!
//! A synthetic source emits 48,000 records at 3,000 records/s: payloads of 2–6 KiB
//! and, about one in 2,000, a giant of 48–96 MiB. Each goes through
//!
//! - `parse`: CPU, an FNV-1a checksum over every byte (a few µs per record);
//! - `package`: CPU, frames the payload with a 20% parity trailer (the runtime
//!   re-weighs the bigger output and charges the growth to the budget);
//! - `write`: a slow sink that sleeps 2 ms per record, like a database round trip.
//!
//! The memory budget (384 MiB) caps the bytes in flight, and records of 16 MiB or more
//! take the serial lane, one at a time, so giants never pile up side by side. A giant
//! that arrives while the lane is busy waits at the source, and so do the small records
//! behind it: that is the dip in rec/s when giants bunch up. `write` starts with 2
//! workers, too few for 3,000 records/s: watch its queue fill and the upstream stages
//! block until the `static` policy sets 8 workers at the first tick.
//!
//! Every second it prints the pipeline's state, a row per stage and any decision with
//! its reason; then the run's report. `cargo run --release --example etl` (about 16 s).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade::controller::{DecisionRecord, Outcome, Snapshot, StageStats, Static};
use brigade::runtime::Tick;
use brigade::{Pipeline, Report};

const RECORDS: u64 = 48_000;
const RATE: f64 = 3_000.0;
const GIANT_ONE_IN: u64 = 2_000;
const BUDGET: u64 = 384 << 20;
const SERIAL_THRESHOLD: u64 = 16 << 20;
const WRITE_LATENCY: Duration = Duration::from_millis(2);
const MIB: f64 = (1 << 20) as f64;

/// The source: `RECORDS` payloads paced at `RATE`, the same on every run.
#[derive(Default)]
struct Records {
    emitted: u64,
    started: Option<Instant>,
}

impl Iterator for Records {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.emitted == RECORDS {
            return None;
        }
        let started = *self.started.get_or_insert_with(Instant::now);
        let due = started + Duration::from_secs_f64(self.emitted as f64 / RATE);
        if let Some(early) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(early);
        }
        self.emitted += 1;
        // splitmix64 of the position: the low bits pick giants, the high bits sizes.
        let mut z = self.emitted.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let len = match z % GIANT_ONE_IN {
            0 => (48 << 20) + (z >> 32) % (48 << 20),
            _ => 2048 + (z >> 32) % 4096,
        };
        Some((0..len).map(|i| (z ^ i) as u8).collect())
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A frame: checksum, length, payload, and one parity byte per 5 payload bytes.
fn package((checksum, payload): (u64, Vec<u8>)) -> Vec<u8> {
    let mut frame = Vec::with_capacity(16 + payload.len() + payload.len().div_ceil(5));
    frame.extend_from_slice(&checksum.to_le_bytes());
    frame.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    frame.extend_from_slice(&payload);
    frame.extend(payload.chunks(5).map(|c| c.iter().fold(0, |a, b| a ^ b)));
    frame
}

fn main() -> ExitCode {
    let written = Arc::new(AtomicU64::new(0));
    let sink_bytes = written.clone();
    let pipeline = Pipeline::from_iter(Records::default())
        .memory_budget(BUDGET)
        .serial_threshold(SERIAL_THRESHOLD)
        .controller(Static::new().workers_per_stage(vec![1, 1, 8]))
        .map("parse", |payload: Vec<u8>| (fnv1a(&payload), payload))
        .workers(1, 4)
        .map("package", package)
        .workers(1, 4)
        .sink("write", move |frame: Vec<u8>| {
            std::thread::sleep(WRITE_LATENCY);
            sink_bytes.fetch_add(frame.len() as u64, Relaxed);
        })
        .workers(2, 16);
    println!(
        "brigade etl demo: {RECORDS} records at {RATE} rec/s, 1 in ~{GIANT_ONE_IN} a giant of \
         48-96 MiB; budget {} MiB, serial lane from {} MiB",
        BUDGET >> 20,
        SERIAL_THRESHOLD >> 20
    );
    let running = match pipeline.start() {
        Ok(running) => running,
        Err(error) => {
            eprintln!("cannot start the pipeline: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The feed ends when the run is over and every handle on its monitor is gone.
    let ticks = running.monitor().subscribe();
    let printer = std::thread::spawn(move || {
        let mut completed = 0;
        for (i, tick) in ticks.iter().enumerate() {
            print_tick(&tick, i % 10 == 0, &mut completed);
        }
    });
    let report = running.wait();
    if printer.join().is_err() {
        eprintln!("the printing thread panicked");
    }
    print_report(&report, written.load(Relaxed))
}

fn print_tick(tick: &Tick, labels: bool, completed: &mut u64) {
    let (s, g): (&Snapshot, _) = (&tick.snapshot, &tick.snapshot.global);
    let done_rate = (g.totals.completed - *completed) as f64 / s.window_s.max(1e-9);
    *completed = g.totals.completed;
    let (done, now) = (
        g.serial.bytes as f64 / MIB,
        g.serial.current_bytes as f64 / MIB,
    );
    let serial = match (g.serial.records, g.serial.current_bytes) {
        (0, 0) => "idle".to_owned(),
        (0, _) => format!("{now:.0} MiB in the lane"),
        (n, 0) => format!("{n} done ({done:.0} MiB)"),
        (n, _) => format!("{n} done, {now:.0} MiB in the lane"),
    };
    let budget = g.memory_budget.map_or(f64::INFINITY, |b| b as f64 / MIB);
    println!(
        "\n[{:>4.1}s] {done_rate:>4.0} rec/s | in flight {:>3.0}/{budget:.0} MiB (max {:>3.0}) \
         | RSS {:>3.0} MiB | serial: {serial}",
        s.at_s,
        g.inflight_bytes_mean / MIB,
        g.inflight_bytes_max as f64 / MIB,
        g.rss_bytes as f64 / MIB,
    );
    if labels {
        println!(
            "  stage    workers  rec/s  busy wait-in blocked     queue      p50      p99  err"
        );
    }
    for stage in &s.stages {
        print_stage(stage, s.window_s);
    }
    for record in &tick.decisions {
        print_decision(record, s);
    }
}

fn print_stage(st: &StageStats, window_s: f64) {
    let pct = |share: f64| format!("{:.0}%", share * 100.0);
    println!(
        "  {:<8} {:>3}/{:<3} {:>6.0} {:>5} {:>7} {:>7} {:>5.1}/{:<3} {:>8} {:>8} {:>4}",
        st.name,
        st.workers.live,
        st.workers.target,
        st.observed_rate(window_s),
        pct(st.utilisation()),
        pct(st.waiting_share()),
        pct(st.blocked_share()),
        st.queue.mean_depth,
        st.queue.capacity,
        micros(st.service_time_us.p50),
        micros(st.service_time_us.p99),
        st.errors,
    );
}

fn print_decision(record: &DecisionRecord, s: &Snapshot) {
    let stage = record.decision.action.stage().and_then(|i| s.stages.get(i));
    let target = stage.map_or("pipeline", |st| st.name.as_str());
    let outcome = match &record.outcome {
        Outcome::Applied => "applied".to_owned(),
        Outcome::Clamped { value } => format!("clamped to {value}"),
        Outcome::Ignored { why } => format!("ignored: {why}"),
        other => format!("{other:?}"),
    };
    println!("  >> {target}: {} [{outcome}]", record.decision.reason);
}

fn print_report(r: &Report, written: u64) -> ExitCode {
    let stages: Vec<String> = (r.stages.iter())
        .map(|s| format!("{} {:.1}", s.name, s.worker_seconds))
        .collect();
    println!("\nfinished in {:.1} s", r.elapsed_s);
    let (admitted, completed, dead) = (r.admitted, r.completed, r.dead_lettered);
    println!("  admitted {admitted}, completed {completed}, dead-lettered {dead}");
    let gib = written as f64 / MIB / 1024.0;
    println!("  throughput {:.0} rec/s, wrote {gib:.2} GiB", r.throughput);
    println!(
        "  peak in flight {:.1} MiB of {} MiB budget, peak RSS {:.0} MiB (sampled each tick)",
        r.peak_inflight_bytes as f64 / MIB,
        BUDGET >> 20,
        r.peak_rss_bytes as f64 / MIB
    );
    let (worker_s, list) = (r.worker_seconds, stages.join(", "));
    println!(
        "  worker-seconds {worker_s:.1} ({list}); decisions {}",
        r.decisions
    );
    if admitted == completed + dead {
        println!("OK: admitted == completed + dead-lettered");
        ExitCode::SUCCESS
    } else {
        eprintln!("FAILED: admitted {admitted} != completed {completed} + dead-lettered {dead}");
        ExitCode::FAILURE
    }
}

/// A duration in microseconds, in the unit that reads best.
fn micros(us: u64) -> String {
    match us {
        0..=999 => format!("{us}µs"),
        1_000..=999_999 => format!("{:.2}ms", us as f64 / 1e3),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}
