//! Synthetic runs end to end (short, so that a loaded 2-core machine runs them in a
//! few seconds), and the parts whose meaning can be checked without a clock: draws,
//! phases, the idle clock. Timing is only ever checked from below: a loaded machine
//! makes things slower, never faster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade_controller::Static;
use brigade_scenario::draws::Sizes;
use brigade_scenario::{parse_str, Scenario};

use crate::clock::Clock;
use crate::source::{Idle, SyntheticSource};
use crate::stage::Stage;
use crate::work::{spin, thread_cpu_s};
use crate::{builtin, start, Error, Options};

fn scenario(text: &str) -> Scenario {
    parse_str(text, "test.toml").expect("the test scenario parses")
}

/// Every stage kind and option at once, on a finite source.
const EVERYTHING: &str = r#"
    name = "everything"
    duration = "30s"
    tick = "100ms"
    seed = 9
    [runtime]
    memory_budget = "64MiB"
    initial_workers = 2
    [source]
    rate = 3000
    total = 400
    size = { dist = "lognormal", median = "4KiB", p99 = "256KiB" }
    [[stage]]
    name = "split"
    kind = "cpu"
    service = { dist = "lognormal", median = "100us", p99 = "1ms" }
    output_ratio = 1.5
    size_ratio = 0.5
    error_rate = 0.05
    [[stage]]
    name = "keep"
    kind = "io"
    service = { dist = "uniform", min = "200us", max = "1ms" }
    output_ratio = 0.8
    size_ratio = 2.0
    per_mib = "10ms"
    contention = 0.1
    coherency = 0.01
    [[stage]]
    name = "store"
    kind = "io"
    service = { dist = "fixed", value = "1ms" }
    per_mib = "5ms"
    error_rate = 0.05
    batch = true
"#;

#[test]
fn a_short_run_finishes_every_record_it_admits() {
    let demo = start(&scenario(EVERYTHING), Options::default()).unwrap();
    let finished = demo.wait();
    let report = &finished.report;
    assert!(finished.failure.is_none());
    assert_eq!(report.admitted, 400);
    assert_eq!(report.admitted, report.completed + report.dead_lettered);
    assert_eq!(report.acknowledged, 400);
    let [split, keep, store] = &report.stages[..] else {
        panic!("three stages: {:?}", report.stages);
    };
    assert_eq!(split.records_in, 400);
    assert!(split.retries > 0, "5% of calls fail and are retried");
    assert!(split.records_out > 500, "1.5 outputs a record: {split:?}");
    assert!(
        keep.records_out < keep.records_in,
        "0.8 outputs a record: {keep:?}"
    );
    assert_eq!(store.records_in, keep.records_out);
    assert!(store.errors > 0);
}

#[test]
fn the_duration_stops_admission_and_the_run_drains() {
    let mut sc = scenario(EVERYTHING);
    sc.source.total = None;
    sc.source.rate = 500.0;
    let options = Options::default()
        .duration(Duration::from_millis(500))
        .policy(Box::new(Static::new()));
    let (running, watch) = start(&sc, options).unwrap().split();
    let admission = running.admission();
    let patience = Instant::now() + Duration::from_secs(60);
    while !admission.is_stopped() {
        assert!(Instant::now() < patience, "admission never stopped");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Admission stopped at the run's time or later (when the watchdog looked), and
    // no later than now.
    let stopped_by_s = watch.elapsed().as_secs_f64();
    let finished = watch.finish(running.wait());
    let report = &finished.report;
    assert!(stopped_by_s >= 0.5, "stopped by {stopped_by_s} s");
    // Paced at 500 a second from 0 s, the source read at most 500 a second until
    // admission stopped, and one read may have been under way then.
    assert!(report.admitted > 0);
    assert!(
        report.admitted as f64 <= 500.0 * stopped_by_s + 2.0,
        "{} records admitted by {stopped_by_s} s",
        report.admitted
    );
    assert_eq!(report.admitted, report.completed + report.dead_lettered);
}

#[test]
fn the_source_meets_the_simulators_sizes_and_keeps_its_rate() {
    use brigade_runtime::{Source, Weigh};
    let mut sc = scenario(EVERYTHING);
    sc.source.rate = 1000.0;
    let mut sizes = Sizes::new(sc.seed, &sc.source);
    let expected: Vec<u64> = (0..50).map(|_| sizes.next_size()).collect();
    let clock = Arc::new(Clock::new(&sc));
    let mut source = SyntheticSource::new(&sc, clock.clone(), Arc::new(Idle::new(&sc)));
    assert_eq!(source.next_weight(), Some(expected[0]));
    assert_eq!(
        source.next_weight(),
        Some(expected[0]),
        "asking again draws nothing"
    );
    for (id, &size) in expected.iter().enumerate() {
        let record = source.next().unwrap();
        assert_eq!((record.id, record.weigh()), (id as u64, size));
    }
    // 50 records at 1000/s: the 50th is ready 49 ms after the first.
    assert!(clock.now_s() >= 0.049);
    sc.source.total = Some(3);
    let mut short = SyntheticSource::new(&sc, clock, Arc::new(Idle::new(&sc)));
    assert_eq!(std::iter::from_fn(|| short.next()).count(), 3);
    assert_eq!(short.next_weight(), None);
}

#[test]
fn phases_change_service_times_and_the_rate_on_the_clock() {
    let sc = scenario(
        r#"
        name = "phases"
        duration = "1m"
        [source]
        rate = 100
        size = { dist = "fixed", value = "1MiB" }
        [[stage]]
        name = "a"
        kind = "cpu"
        service = { dist = "fixed", value = "1ms" }
        [[stage]]
        name = "b"
        kind = "io"
        service = { dist = "fixed", value = "2ms" }
        per_mib = "3ms"
        [[phase]]
        at = "10s"
        stage = "b"
        service_scale = 4.0
        [[phase]]
        at = "20s"
        source_rate = 50
        [[phase]]
        at = "30s"
        stage = "b"
        service_scale = 1.0
        "#,
    );
    let clock = Arc::new(Clock::new(&sc));
    let b = Stage::new(&sc, 1, clock.clone());
    let bytes = 1 << 20;
    let work = |at_s: f64| b.draw(0, 1, bytes, at_s).0;
    assert!((work(0.0) - 0.005).abs() < 1e-12, "2 ms + 3 ms for 1 MiB");
    assert!((work(10.0) - 0.020).abs() < 1e-12);
    assert!((work(29.9) - 0.020).abs() < 1e-12);
    assert!((work(30.0) - 0.005).abs() < 1e-12);
    assert_eq!(clock.service_scale(0, 15.0), 1.0, "stage a has no phase");
    assert_eq!(clock.source_rate(19.0), 100.0);
    assert_eq!(clock.source_rate(45.0), 50.0);
}

#[test]
fn a_stall_holds_its_stage_on_the_clock_for_its_duration() {
    let sc = scenario(
        r#"
        name = "stall"
        duration = "10m"
        [source]
        rate = 100
        size = { dist = "fixed", value = "1KiB" }
        [[stage]]
        name = "write"
        kind = "io"
        service = { dist = "fixed", value = "1ms" }
        [[phase]]
        at = "5m"
        stage = "write"
        stall = "2m"
        "#,
    );
    let clock = Clock::new(&sc);
    assert_eq!(clock.stall_left(0, 299.0), None);
    assert_eq!(clock.stall_left(0, 300.0), Some(120.0));
    assert_eq!(clock.stall_left(0, 390.0), Some(30.0));
    assert_eq!(clock.stall_left(0, 420.0), None, "over at 7 minutes");
    assert_eq!(clock.service_scale(0, 360.0), 1.0, "a stall scales nothing");
}

#[test]
fn a_held_call_sleeps_through_the_stall_and_then_does_all_its_work() {
    const HELD: Duration = Duration::from_millis(60);
    for cpu in [true, false] {
        let started = Instant::now();
        let held = || {
            HELD.checked_sub(started.elapsed())
                .map(|left| left.as_secs_f64())
        };
        let before = thread_cpu_s();
        if cpu {
            spin(0.005, || 1.0, held);
        } else {
            crate::work::sleep(0.005, || 1.0, held);
        }
        assert!(started.elapsed() >= HELD + Duration::from_millis(5));
        let used = thread_cpu_s() - before;
        assert!(
            used < 0.045,
            "the stall is slept through, not spun: {used} s of CPU"
        );
        if cpu {
            assert!(
                used >= 0.005,
                "all the work is done after it: {used} s of CPU"
            );
        }
    }
}

#[test]
fn the_stage_draws_are_the_simulators() {
    let sc = scenario(EVERYTHING);
    let clock = Arc::new(Clock::new(&sc));
    let split = Stage::new(&sc, 0, clock);
    let draws = brigade_scenario::draws::StageDraws::new(sc.seed, 0);
    let spec = &sc.stages[0];
    for id in 0..100 {
        for attempt in 1..=2 {
            let mut rng = draws.call(id, attempt);
            let work = spec.work(rng.sample(&spec.service), 4096, 1.0);
            let fails = rng.chance(spec.error_rate);
            assert_eq!(split.draw(id, attempt, 4096, 0.0), (work, fails));
        }
    }
}

#[test]
fn cpu_work_is_thread_cpu_time_shared_by_the_cores() {
    // Twice as many spinning calls as cores: each still gets its full CPU time, so
    // the whole takes at least twice as long as one call on a wall clock.
    const WORK: f64 = 0.05;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let started = Instant::now();
    let used: Vec<f64> = std::thread::scope(|scope| {
        let spinners: Vec<_> = (0..2 * cores)
            .map(|_| {
                scope.spawn(|| {
                    let before = thread_cpu_s();
                    spin(WORK, || 1.0, || None);
                    thread_cpu_s() - before
                })
            })
            .collect();
        spinners.into_iter().map(|s| s.join().unwrap()).collect()
    });
    assert!(used.iter().all(|&cpu| cpu >= WORK), "{used:?}");
    assert!(started.elapsed().as_secs_f64() >= 2.0 * WORK * 0.95);
    // A slowdown of 3 (the USL over the calls in progress) takes 3 times the CPU.
    let before = thread_cpu_s();
    spin(0.01, || 3.0, || None);
    assert!(thread_cpu_s() - before >= 0.03);
}

#[test]
fn io_work_sleeps_under_the_usl_slowdown() {
    let started = Instant::now();
    let before = thread_cpu_s();
    crate::work::sleep(0.01, || 2.5, || None);
    assert!(started.elapsed() >= Duration::from_millis(25));
    assert!(thread_cpu_s() - before < 0.01, "sleeping, not spinning");
}

#[test]
fn giants_go_through_the_serial_lane() {
    // adaptive sets the serial threshold at half the budget (16 MiB) at its first tick.
    let sc = scenario(
        r#"
        name = "giants"
        duration = "30s"
        tick = "50ms"
        seed = 3
        [runtime]
        memory_budget = "32MiB"
        [source]
        rate = 4000
        total = 2000
        size = { dist = "fixed", value = "2KiB" }
        [[source.giant]]
        every = 100
        size = { dist = "uniform", min = "17MiB", max = "20MiB" }
        [[stage]]
        name = "package"
        kind = "cpu"
        service = { dist = "fixed", value = "100us" }
        [[stage]]
        name = "relay"
        kind = "io"
        service = { dist = "fixed", value = "500us" }
        per_mib = "1ms"
        "#,
    );
    let demo = start(&sc, Options::default()).unwrap();
    let monitor = demo.monitor();
    let finished = demo.wait();
    assert_eq!(finished.report.completed, 2000);
    let lane: u64 = monitor
        .history()
        .iter()
        .map(|s| s.global.serial.records)
        .sum();
    assert!(
        lane >= 10,
        "20 giants, the first few before the threshold: {lane}"
    );
    assert!(finished.report.peak_inflight_bytes <= 32 << 20);
}

#[test]
fn a_source_unread_past_its_timeout_fails_the_run() {
    // The budget holds one record, and the sink holds it for 600 ms: the source goes
    // unread for longer than its 200 ms timeout, guard or not.
    let sc = scenario(
        r#"
        name = "stall"
        duration = "30s"
        [runtime]
        memory_budget = "1MiB"
        [source]
        rate = 1000
        idle_timeout = "200ms"
        size = { dist = "fixed", value = "1MiB" }
        [[stage]]
        name = "write"
        kind = "io"
        service = { dist = "fixed", value = "600ms" }
        "#,
    );
    let options = Options::default().policy(Box::new(Static::new()));
    let finished = start(&sc, options).unwrap().wait();
    assert_eq!(finished.source_timeouts, 1);
    let Some(Error::SourceTimeout { at_s, timeout_s }) = finished.failure else {
        panic!("the run fails: {:?}", finished.failure);
    };
    assert_eq!(timeout_s, 0.2);
    assert!(at_s >= 0.2);
    let report = &finished.report;
    assert_eq!(report.admitted, report.completed + report.dead_lettered);
    assert!(report.admitted <= 2);
}

#[test]
fn the_idle_clock_counts_timeouts_and_reconnects() {
    let mut sc = scenario(
        r#"
        name = "idle"
        duration = "1m"
        [source]
        rate = 10
        idle_timeout = "2s"
        on_timeout = "reconnect"
        reconnect = "3s"
        size = { dist = "fixed", value = "1KiB" }
        [[stage]]
        name = "write"
        kind = "io"
        service = { dist = "fixed", value = "1ms" }
        "#,
    );
    let idle = Idle::new(&sc);
    assert!(!idle.advance(1.9));
    assert_eq!(idle.timeouts(), 0);
    // Timeouts at 2 s and at 2 + 3 + 2 = 7 s; reconnecting until 10 s.
    assert!(!idle.advance(7.5));
    assert_eq!(idle.timeouts(), 2);
    idle.close();
    assert!(!idle.advance(100.0));
    assert_eq!(idle.timeouts(), 2);

    sc.source.on_timeout = brigade_scenario::OnTimeout::Fail;
    let idle = Idle::new(&sc);
    assert!(idle.advance(2.5));
    assert!(idle.advance(10.0));
    assert_eq!(idle.timeouts(), 1);
    assert_eq!(idle.failure().map(|f| f.at_s), Some(2.0));
}

#[test]
fn the_builtin_demo_is_sized_for_two_cores() {
    let demo = builtin();
    assert_eq!(demo.name, "demo");
    assert_eq!(demo.machine.cores, 2);
    assert!(demo.runtime.memory_budget.is_some_and(|b| b <= 256 << 20));
    assert!(!demo.source.giants.is_empty());
    assert!(!demo.phases.is_empty());
    assert!(demo.stages.last().is_some_and(|s| s.coherency > 0.0));
}

#[test]
fn stopping_admission_cuts_a_slow_sources_wait_short() {
    // One record every 4 s: the second is not due before the run's time is up.
    let mut sc = scenario(EVERYTHING);
    sc.source.total = None;
    sc.source.rate = 0.25;
    let started = Instant::now();
    let options = Options::default().duration(Duration::from_millis(300));
    let finished = start(&sc, options).unwrap().wait();
    assert_eq!(finished.report.admitted, 1);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_spilled_record_comes_back_with_its_id_attempt_and_bytes() {
    use brigade_runtime::Spillable;

    let mut record = crate::record::Record::new(7, 5000);
    record.attempt = 3;
    let mut bytes = Vec::new();
    record.spill(&mut bytes);
    assert_eq!(bytes.len(), 12 + 5000);
    let back = crate::record::Record::unspill(&bytes).unwrap();
    assert_eq!((back.id, back.attempt, back.bytes()), (7, 3, 5000));
    assert!(crate::record::Record::unspill(&bytes[..11]).is_err());
}
