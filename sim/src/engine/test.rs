//! The model against figures that can be worked out by hand: service-bound and
//! source-bound rates, processor sharing, the USL peak, batching, the budget, the
//! serial lane, the source guard, determinism.

use brigade_controller::{Action, Controller, Decision, Snapshot, Static};

use crate::{RunEnd, RunResult, Simulation};
use brigade_scenario::*;

fn fixed(value: f64) -> Dist {
    Dist::Fixed { value }
}

fn stage(name: &str, kind: StageKind, service_s: f64) -> StageSpec {
    StageSpec {
        name: name.into(),
        kind,
        service: fixed(service_s),
        per_mib_s: 0.0,
        output_ratio: 1.0,
        size_ratio: 1.0,
        contention: 0.0,
        coherency: 0.0,
        error_rate: 0.0,
        batch: false,
    }
}

fn scenario(rate: f64, stages: Vec<StageSpec>) -> Scenario {
    Scenario {
        name: "hand-made".into(),
        description: String::new(),
        duration_s: 60.0,
        tick_s: 1.0,
        seed: 1,
        machine: Machine {
            cores: 2,
            memory_bytes: 1 << 33,
            disk_per_mib_s: 0.005,
        },
        runtime: RuntimeSettings {
            memory_budget: None,
            spill: None,
            initial_workers: 1,
            max_workers: 64,
            queue_capacity: 64,
            batch_size: 1,
        },
        source: SourceSpec {
            rate,
            total: None,
            idle_timeout_s: None,
            on_timeout: OnTimeout::Fail,
            reconnect_s: 10.0,
            size: fixed(1024.0),
            giants: Vec::new(),
        },
        stages,
        phases: Vec::new(),
        fleet: None,
    }
}

fn run(scenario: &Scenario, policy: impl Controller + 'static) -> RunResult {
    Simulation::new(scenario, Box::new(policy), "test").run()
}

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual / expected - 1.0).abs() <= tolerance
}

#[test]
fn one_worker_runs_at_its_service_rate_and_more_reach_the_source_rate() {
    let sc = scenario(2000.0, vec![stage("write", StageKind::Io, 1e-3)]);
    let one = run(&sc, Static::new());
    assert!(
        close(one.throughput(), 1000.0, 0.01),
        "{}",
        one.throughput()
    );
    let four = run(&sc, Static::new().workers(4));
    assert!(
        close(four.throughput(), 2000.0, 0.01),
        "{}",
        four.throughput()
    );
    assert!(
        close(four.worker_seconds, 4.0 * 60.0, 0.02),
        "{}",
        four.worker_seconds
    );
}

#[test]
fn cpu_stages_share_the_cores() {
    let sc = scenario(
        100_000.0,
        vec![
            stage("a", StageKind::Cpu, 1e-3),
            stage("b", StageKind::Cpu, 1e-3),
        ],
    );
    // Two cores, 1 ms per record per stage: at most 1000 records/s through both,
    // however many workers.
    let eight = run(&sc, Static::new().workers(8));
    assert!(
        close(eight.throughput(), 1000.0, 0.02),
        "{}",
        eight.throughput()
    );
    let one = run(&sc, Static::new().workers(1));
    assert!(
        close(one.throughput(), 1000.0, 0.02),
        "{}",
        one.throughput()
    );
}

#[test]
fn contention_peaks_and_falls() {
    let mut write = stage("write", StageKind::Io, 10e-3);
    write.coherency = 0.01;
    let sc = scenario(100_000.0, vec![write]);
    // X(n) = n / (10 ms · (1 + 0.01 n (n − 1))): 10 → 524/s, 30 → 303/s.
    let ten = run(&sc, Static::new().workers(10)).throughput();
    let thirty = run(&sc, Static::new().workers(30)).throughput();
    assert!(close(ten, 10.0 / (0.01 * 1.9), 0.02), "{ten}");
    assert!(close(thirty, 30.0 / (0.01 * 9.7), 0.02), "{thirty}");
}

#[test]
fn batches_amortise_the_per_call_cost() {
    let mut index = stage("index", StageKind::Io, 2e-3);
    index.batch = true;
    let sc = scenario(100_000.0, vec![stage("parse", StageKind::Cpu, 5e-6), index]);
    let single = run(&sc, Static::new()).throughput();
    let batched = run(&sc, Static::new().batch_size(100)).throughput();
    assert!(close(single, 500.0, 0.02), "{single}");
    assert!(batched > 40.0 * single, "{batched} vs {single}");
}

#[test]
fn the_budget_bounds_bytes_in_flight() {
    let mut sc = scenario(100_000.0, vec![stage("write", StageKind::Io, 1e-3)]);
    sc.runtime.queue_capacity = 10_000;
    sc.source.size = fixed(1e6);
    let unbounded = run(&sc, Static::new());
    assert!(unbounded.peak_inflight_bytes > 5_000_000_000);
    sc.runtime.memory_budget = Some(50_000_000);
    let bounded = run(&sc, Static::new());
    assert_eq!(bounded.peak_inflight_bytes, 50_000_000);
    assert!(close(bounded.throughput(), 1000.0, 0.01));
}

#[test]
fn running_out_of_memory_crashes_the_run() {
    let mut sc = scenario(100_000.0, vec![stage("write", StageKind::Io, 1e-3)]);
    sc.runtime.queue_capacity = 100_000;
    sc.source.size = fixed(1e6);
    sc.machine.memory_bytes = 1 << 30;
    let result = run(&sc, Static::new());
    assert_eq!(result.end, RunEnd::Crashed);
    assert!(result.failed());
}

#[test]
fn giants_go_through_the_serial_lane_alone() {
    let mut sc = scenario(1000.0, vec![stage("package", StageKind::Cpu, 1e-4)]);
    sc.stages[0].per_mib_s = 0.01;
    sc.source.giants = vec![Giant {
        every: 500,
        size: fixed(200e6),
    }];
    sc.machine.memory_bytes = 1 << 40;
    let parallel = run(&sc, Static::new().workers(8));
    assert!(parallel.peak_inflight_bytes >= 400_000_000);
    let serial = run(&sc, Static::new().workers(8).serial_threshold(100_000_000));
    // The threshold is set at the first tick; once the giants admitted before it are
    // done, one giant at a time.
    let after_first_tick = serial.series[5..].iter().map(|s| s.inflight_bytes).max();
    assert!(after_first_tick < Some(300_000_000), "{after_first_tick:?}");
    // Each giant takes 1.9 s alone and holds up the 499 records behind it: about
    // 500 / 1.9 s = 263 records/s.
    assert!(
        close(serial.throughput(), 263.0, 0.05),
        "{}",
        serial.throughput()
    );
}

/// Never reads the queue: stalls the pipeline so the source guard must act.
struct Stall;

impl Controller for Stall {
    fn name(&self) -> &str {
        "stall"
    }

    fn decide(&mut self, _: &Snapshot) -> Vec<Decision> {
        Vec::new()
    }
}

#[test]
fn the_source_guard_keeps_a_stalled_source_alive_within_the_budget() {
    let mut sc = scenario(1000.0, vec![stage("write", StageKind::Io, 1e3)]);
    sc.source.idle_timeout_s = Some(10.0);
    let guarded = run(&sc, Stall);
    assert_eq!(guarded.source_timeouts, 0);
    assert_eq!(guarded.end, RunEnd::Duration);
    // A budget already full of stuck records leaves the guard nothing to read with.
    sc.runtime.memory_budget = Some(64 * 1024 + 2048);
    let starved = run(&sc, Stall);
    assert_eq!(starved.end, RunEnd::SourceFailed);
    assert_eq!(starved.source_timeouts, 1);
}

#[test]
fn a_spill_takes_the_guard_reads_the_budget_cannot_hold() {
    let mut sc = scenario(1000.0, vec![stage("write", StageKind::Io, 1e3)]);
    sc.source.idle_timeout_s = Some(10.0);
    sc.runtime.memory_budget = Some(64 * 1024 + 2048);
    sc.runtime.spill = Some(1 << 20);
    let spilled = run(&sc, Stall);
    assert_eq!(spilled.end, RunEnd::Duration);
    assert_eq!(spilled.source_timeouts, 0);
    // One guard read every 5 s: the first fills the budget's last 1 KiB (64 records
    // queued, one in the call, one more), the ten after it go to the spill.
    assert_eq!(spilled.spilled_bytes, 10 * 1024);
    assert!(spilled.peak_inflight_bytes <= 64 * 1024 + 2048);
    // A spill with no room is as no spill.
    sc.runtime.spill = Some(1000);
    let full = run(&sc, Stall);
    assert_eq!(full.end, RunEnd::SourceFailed);
    assert_eq!(full.spilled_bytes, 0);
}

#[test]
fn spilled_records_re_enter_when_room_frees_and_every_one_finishes() {
    // A sink that stalls for 60 s: the budget fills, the guard spills, and once the
    // stall ends the spilled records re-enter and finish before any new read.
    let mut sc = scenario(100.0, vec![stage("write", StageKind::Io, 1e-3)]);
    sc.duration_s = 300.0;
    sc.source.total = Some(10_000);
    sc.source.idle_timeout_s = Some(10.0);
    sc.runtime.memory_budget = Some(64 * 1024 + 2048);
    sc.runtime.spill = Some(1 << 30);
    sc.phases.push(Phase {
        at_s: 5.0,
        service_scale: None,
        source_rate: None,
        stall: Some((0, 60.0)),
    });
    let result = run(&sc, Static::new());
    assert_eq!(result.end, RunEnd::Finished);
    assert_eq!(result.completed, 10_000);
    assert_eq!(result.source_timeouts, 0);
    // The queue is full 0.66 s into the stall; guard reads every 5 s after, the
    // first into the budget's last room, ten into the spill until the stall ends.
    assert_eq!(result.spilled_bytes, 10 * 1024);
    sc.runtime.spill = None;
    assert_eq!(run(&sc, Static::new()).end, RunEnd::SourceFailed);
}

#[test]
fn a_finite_source_finishes_and_throughput_counts_to_the_last_completion() {
    let mut sc = scenario(1000.0, vec![stage("write", StageKind::Io, 1e-4)]);
    sc.source.total = Some(10_000);
    let result = run(&sc, Static::new());
    assert_eq!(result.end, RunEnd::Finished);
    assert_eq!(result.completed, 10_000);
    assert!(
        close(result.throughput(), 1000.0, 0.01),
        "{}",
        result.throughput()
    );
}

#[test]
fn same_seed_same_run() {
    let mut sc = scenario(3000.0, vec![stage("a", StageKind::Cpu, 1e-3)]);
    sc.stages[0].service = Dist::LogNormal {
        median: 1e-3,
        p99: 8e-3,
    };
    sc.stages[0].error_rate = 0.01;
    let a = run(&sc, Static::new().workers(3));
    let b = run(&sc, Static::new().workers(3));
    assert_eq!(a.completed, b.completed);
    assert_eq!(a.series, b.series);
    sc.seed = 2;
    let c = run(&sc, Static::new().workers(3));
    assert_ne!(a.series, c.series);
}

/// Keeps every snapshot it is shown.
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<Snapshot>>>);

impl Controller for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision> {
        self.0.lock().unwrap().push(snapshot.clone());
        Vec::new()
    }
}

/// A call of the first stage (1 ms) that starts between 10 and 11 s takes 1 ms ×
/// 20 000 = 20 s: the workers in calls then are stuck from just after 10 s to just
/// after 30 s.
fn stuck_from_10_to_30_s(sc: &mut Scenario) {
    sc.phases = vec![
        Phase {
            at_s: 10.0,
            service_scale: Some((0, 20_000.0)),
            source_rate: None,
            stall: None,
        },
        Phase {
            at_s: 11.0,
            service_scale: Some((0, 1.0)),
            source_rate: None,
            stall: None,
        },
    ];
}

#[test]
fn calls_stuck_in_a_slow_phase_are_busy_and_show_how_long_they_have_run() {
    let mut sc = scenario(1000.0, vec![stage("write", StageKind::Io, 1e-3)]);
    sc.runtime.initial_workers = 4;
    stuck_from_10_to_30_s(&mut sc);
    let snapshots = std::sync::Arc::default();
    run(&sc, Recorder(std::sync::Arc::clone(&snapshots)));
    let snapshots = snapshots.lock().unwrap();
    let at = |s: f64| {
        let snapshot = snapshots
            .iter()
            .find(|snapshot| (snapshot.at_s - s).abs() < 1e-6)
            .unwrap();
        snapshot.stages[0].clone()
    };
    let before = at(9.0);
    assert!(
        before.running_calls_s.iter().all(|&ran| ran < 1e-3),
        "{before:?}"
    );
    let stuck = at(15.0);
    assert_eq!(stuck.running_calls_s.len(), 4, "{stuck:?}");
    assert!(
        stuck
            .running_calls_s
            .iter()
            .all(|&ran| ran > 4.0 && ran <= 5.0),
        "the four calls started just after 10 s: {:?}",
        stuck.running_calls_s
    );
    assert!(
        stuck.running_calls_s.windows(2).all(|w| w[0] >= w[1]),
        "longest first"
    );
    assert_eq!(stuck.records_out, 0);
    assert!(
        close(stuck.busy_s, 4.0, 1e-6),
        "busy all window: {}",
        stuck.busy_s
    );
    assert!(at(40.0).running_calls_s.iter().all(|&ran| ran < 1e-3));
}

/// Records every snapshot (as [`Recorder`]) and, at tick 12, grows the pool to 8 and
/// limits its calls to 2 at once.
struct LimitAtTwelve(Recorder);

impl Controller for LimitAtTwelve {
    fn name(&self) -> &str {
        "limit-at-twelve"
    }

    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision> {
        self.0.decide(snapshot);
        if snapshot.tick != 12 {
            return Vec::new();
        }
        vec![
            Decision::new(
                Action::SetWorkers {
                    stage: 0,
                    workers: 8,
                },
                "grow",
            ),
            Decision::new(
                Action::SetConcurrencyLimit {
                    stage: 0,
                    limit: Some(2),
                },
                "limit",
            ),
        ]
    }
}

#[test]
fn a_concurrency_limit_counts_only_the_calls_begun_under_it_as_the_runtime_does() {
    let mut sc = scenario(10_000.0, vec![stage("write", StageKind::Io, 1e-3)]);
    sc.runtime.initial_workers = 4;
    stuck_from_10_to_30_s(&mut sc);
    let snapshots = std::sync::Arc::default();
    run(
        &sc,
        LimitAtTwelve(Recorder(std::sync::Arc::clone(&snapshots))),
    );
    let snapshots = snapshots.lock().unwrap();
    let at = |tick: u64| snapshots[tick as usize - 1].stages[0].clone();
    // The runtime does not count the calls running when a limit is first set: two of
    // the four new workers make calls beside the four stuck ones, two are held.
    let limited = at(15);
    assert_eq!(limited.running_calls_s.len(), 6, "{limited:?}");
    assert!(
        close(limited.records_out as f64, 2000.0, 0.02),
        "two calls of 1 ms at a time: {}",
        limited.records_out
    );
    assert!(close(limited.busy_s, 6.0, 1e-6), "busy: {}", limited.busy_s);
    assert!(
        close(limited.wait_out_s, 2.0, 1e-6),
        "held by the limit: {}",
        limited.wait_out_s
    );
    // Once the stuck calls end, the limit still lets two run at a time.
    let after = at(40);
    assert!(
        close(after.records_out as f64, 2000.0, 0.02),
        "{}",
        after.records_out
    );
}

/// A stall holds the stage's calls, those in progress and those started meanwhile,
/// for exactly its duration; then each finishes with the work it had left, unlike a
/// `service_scale`, which keeps a call started in the slow phase slow to its end.
#[test]
fn a_stall_holds_every_call_for_its_duration_then_lets_them_finish() {
    let mut sc = scenario(1000.0, vec![stage("write", StageKind::Io, 1e-3)]);
    sc.runtime.initial_workers = 4;
    sc.phases = vec![Phase {
        at_s: 10.0,
        service_scale: None,
        source_rate: None,
        stall: Some((0, 20.0)),
    }];
    let snapshots = std::sync::Arc::default();
    run(&sc, Recorder(std::sync::Arc::clone(&snapshots)));
    let snapshots = snapshots.lock().unwrap();
    let at = |s: f64| {
        snapshots
            .iter()
            .find(|snapshot| (snapshot.at_s - s).abs() < 1e-6)
            .unwrap()
            .stages[0]
            .clone()
    };
    assert!(close(at(9.0).records_out as f64, 1000.0, 2.0));
    let stalled = at(15.0);
    assert_eq!(stalled.records_out, 0);
    assert_eq!(stalled.running_calls_s.len(), 4, "{stalled:?}");
    assert!(close(stalled.busy_s, 4.0, 1e-6), "{}", stalled.busy_s);
    assert_eq!(
        at(30.0).records_out,
        0,
        "nothing moves until the stall ends at 30 s"
    );
    // The backlog (the queue and the source held back) drains at the stage's speed.
    let after = at(31.0);
    assert!(after.records_out >= 1000, "{}", after.records_out);
    assert!(
        after.running_calls_s.iter().all(|&ran| ran < 1e-2),
        "{after:?}"
    );
}
