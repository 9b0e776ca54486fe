//! The oracle search on small hand-made scenarios whose best configuration can be
//! worked out by hand, and the rule that ranks candidates.

use super::*;
use crate::TickSample;
use brigade_scenario::parse_str;

fn scenario(text: &str) -> Scenario {
    parse_str(text, "test.toml").expect("the test scenario parses")
}

/// `throughput` within `tolerance` of `expected`.
fn close(throughput: f64, expected: f64, tolerance: f64) -> bool {
    (throughput / expected - 1.0).abs() <= tolerance
}

/// One io stage, 10 ms a call, USL coherency 0.04: X(n) = n / (10 ms · (1 + 0.04 n (n−1)))
/// peaks at n = 5 (278/s); 4 and 6 workers are 2.7% and 1.8% slower.
const PEAK: &str = r#"
name = "peak"
duration = "20s"
[source]
rate = 1000
size = { dist = "fixed", value = "1KiB" }
[[stage]]
name = "write"
kind = "io"
service = { dist = "fixed", value = "10ms" }
coherency = 0.04
"#;

#[test]
fn finds_the_peak_of_a_contended_stage() {
    let oracle = search(&scenario(PEAK));
    assert_eq!(oracle.config.workers, [5]);
    assert!(
        close(oracle.run.throughput(), 5.0 / (0.01 * 1.8), 0.01),
        "{}",
        oracle.run.throughput()
    );
    assert!(!oracle.run.failed());
}

#[test]
fn with_phases_the_scan_tries_every_count_between_half_and_twice_the_start() {
    let phased = format!("{PEAK}[[phase]]\nat = \"10s\"\nsource_rate = 500\n");
    for (text, counts) in [
        (PEAK.to_owned(), vec![5, 6, 8, 10, 13, 16, 20]),
        (phased, (5..=20).collect()),
    ] {
        let scenario = scenario(&text);
        let mut start = StaticConfig::of(&scenario);
        start.workers = vec![10];
        let mut searcher = Searcher::new(&scenario, false, start);
        searcher.scan(0);
        let mut tried: Vec<usize> = searcher.seen.keys().map(|c| c.workers[0]).collect();
        tried.sort_unstable();
        assert_eq!(tried, counts, "{text}");
    }
}

#[test]
fn cpu_workers_past_the_cores_buy_nothing() {
    // 1 ms of cpu per record on 2 cores: 2000/s with 2 workers, no more with more.
    // The sink needs 4 workers of 1.8 ms for 2000/s (3 carry 1667/s).
    let sc = scenario(
        r#"
        name = "cores"
        duration = "10s"
        [machine]
        cores = 2
        [source]
        rate = 5000
        size = { dist = "fixed", value = "1KiB" }
        [[stage]]
        name = "crunch"
        kind = "cpu"
        service = { dist = "fixed", value = "1ms" }
        [[stage]]
        name = "store"
        kind = "io"
        service = { dist = "fixed", value = "1.8ms" }
        "#,
    );
    let oracle = search(&sc);
    assert_eq!(oracle.config.workers, [2, 4]);
    assert!(
        close(oracle.run.throughput(), 2000.0, 0.01),
        "{}",
        oracle.run.throughput()
    );
}

#[test]
fn a_batching_sink_gets_batches_and_a_queue_to_fill_them() {
    // A call costs 10 ms plus 1 ms per 1 KiB record: one record a call carries 91/s,
    // a worker with batches of 64 carries 865/s. Two such workers carry the 1500/s
    // the source delivers.
    let sc = scenario(
        r#"
        name = "bulk"
        duration = "10s"
        [source]
        rate = 1500
        size = { dist = "fixed", value = "1KiB" }
        [[stage]]
        name = "parse"
        kind = "cpu"
        service = { dist = "fixed", value = "100us" }
        [[stage]]
        name = "index"
        kind = "io"
        batch = true
        service = { dist = "fixed", value = "10ms" }
        per_mib = "1s"
        "#,
    );
    let oracle = search(&sc);
    let config = &oracle.config;
    assert_eq!(config.workers, [1, 2]);
    assert!(config.batch_size >= 32, "{config:?}");
    assert!(config.queue_capacity >= config.batch_size, "{config:?}");
    assert!(
        close(oracle.run.throughput(), 1500.0, 0.01),
        "{}",
        oracle.run.throughput()
    );
}

#[test]
fn ties_go_to_fewer_worker_seconds() {
    // 4.5 ms a call: 5 workers carry the source's 1000/s, and so do 6 or 20.
    let sc = scenario(
        r#"
        name = "plenty"
        duration = "10s"
        [source]
        rate = 1000
        size = { dist = "fixed", value = "1KiB" }
        [[stage]]
        name = "write"
        kind = "io"
        service = { dist = "fixed", value = "4.5ms" }
        "#,
    );
    let oracle = search(&sc);
    assert_eq!(oracle.config.workers, [5]);
    let more = StaticConfig {
        workers: vec![20],
        ..oracle.config
    }
    .simulate(&sc, "more");
    assert!(close(
        more.throughput(),
        oracle.run.throughput(),
        TIE_TOLERANCE
    ));
    assert!(more.worker_seconds > 3.0 * oracle.run.worker_seconds);
}

/// Giants of 200 MiB, one in 100 records, take 2 s each; the machine has 512 MiB and
/// the operator set no budget, so three giants at once crash the run.
const GIANTS: &str = r#"
name = "giants"
duration = "30s"
seed = 4
[machine]
memory = "512MiB"
[source]
rate = 100
size = { dist = "fixed", value = "4KiB" }
[[source.giant]]
every = 100
size = { dist = "fixed", value = "200MiB" }
[[stage]]
name = "relay"
kind = "io"
service = { dist = "fixed", value = "5ms" }
per_mib = "10ms"
"#;

#[test]
fn a_run_that_crashes_without_a_budget_gets_one() {
    let sc = scenario(GIANTS);
    let unbounded = StaticConfig {
        workers: vec![8],
        ..StaticConfig::of(&sc)
    }
    .simulate(&sc, "unbounded");
    assert_eq!(unbounded.end, RunEnd::Crashed);
    let oracle = search(&sc);
    assert!(!oracle.run.failed(), "{:?}", oracle.config);
    assert!(oracle.config.memory_budget.is_some(), "{:?}", oracle.config);
    assert!(oracle.run.peak_inflight_bytes <= sc.machine.memory_bytes);
}

#[test]
fn the_same_scenario_gives_the_same_oracle() {
    for text in [PEAK, GIANTS] {
        let sc = scenario(text);
        let (a, b) = rayon::join(|| search(&sc), || search(&sc));
        assert_eq!(a.config, b.config);
        assert_eq!(a.evaluations, b.evaluations);
        assert_eq!(a.run.series, b.run.series);
    }
}

#[test]
fn its_figures_are_those_of_a_full_run_of_its_configuration() {
    let sc = scenario(PEAK);
    let oracle = search(&sc);
    let again = oracle.config.simulate(&sc, "again");
    assert_eq!(again.series, oracle.run.series);
    assert_eq!(again.worker_seconds, oracle.run.worker_seconds);
    assert_eq!(oracle.run.policy, "oracle");
    let report = oracle.report(&sc);
    assert_eq!(report.workers.get("write"), Some(&5));
    assert_eq!(report.throughput, oracle.run.throughput());
    assert_eq!(report.evaluations, oracle.evaluations);
    assert!(!report.failed);
}

#[test]
fn a_long_steady_run_is_screened_short_and_verified_in_full() {
    // Screening on copies that finish about 1000 records: 3.6 s of this 60 s
    // scenario, floored at 5 ticks.
    let mut sc = scenario(PEAK);
    sc.duration_s = 60.0;
    let oracle = search_with(&sc, 1000.0);
    assert_eq!(oracle.config.workers, [5]);
    assert_eq!(oracle.run.duration_s, 60.0);
    assert!(oracle.run.series.len() >= 60);
    let screen = screening_copy(&sc, 278.0, 1000.0).expect("60 s is worth screening");
    assert_eq!(screen.duration_s, 5.0);
    // A phase (or a finite input, or giants) means a short run tells nothing.
    sc.phases.push(brigade_scenario::Phase {
        at_s: 30.0,
        service_scale: None,
        source_rate: Some(100.0),
        stall: None,
    });
    assert!(screening_copy(&sc, 278.0, 1000.0).is_none());
}

#[test]
fn the_actions_set_every_knob() {
    let config = StaticConfig {
        workers: vec![2, 3],
        queue_capacity: 16,
        batch_size: 8,
        memory_budget: Some(1 << 20),
        serial_threshold: None,
    };
    let actions = config.actions();
    assert_eq!(actions.len(), 2 * 2 + 3);
    assert!(actions.contains(&Action::SetWorkers {
        stage: 1,
        workers: 3
    }));
    assert!(actions.contains(&Action::SetQueueCapacity {
        stage: 0,
        capacity: 16
    }));
    assert!(actions.contains(&Action::SetBatchSize { stage: 1, size: 8 }));
    assert!(actions.contains(&Action::SetMemoryBudget {
        bytes: Some(1 << 20)
    }));
    assert!(actions.contains(&Action::SetSerialThreshold { bytes: None }));
}

/// An evaluation with these figures (and nothing else that the ranking reads).
fn eval(throughput: f64, worker_seconds: f64, end: RunEnd) -> Eval {
    Eval {
        run: RunResult {
            policy: LABEL.to_owned(),
            end,
            elapsed_s: 100.0,
            duration_s: 100.0,
            completed: (throughput * 100.0) as u64,
            last_completion_s: 100.0,
            worker_seconds,
            peak_inflight_bytes: 0,
            source_timeouts: 0,
            spilled_bytes: 0,
            p99_latency_s: 0.0,
            changes: 0,
            reversals: 0,
            max_reversals_per_stage_phase: 0,
            series: Vec::<TickSample>::new(),
            decisions: Vec::new(),
            load_changes_s: vec![0.0],
        },
        throughput,
        utilization: Vec::new(),
    }
}

#[test]
fn the_ranking_ties_within_the_tolerance_and_puts_failures_last() {
    let config = |n: usize| StaticConfig {
        workers: vec![n],
        queue_capacity: 64,
        batch_size: 1,
        memory_budget: None,
        serial_threshold: None,
    };
    let (a, b, c) = (config(1), config(2), config(3));
    let fast = eval(1000.0, 400.0, RunEnd::Duration);
    let tie = eval(996.0, 300.0, RunEnd::Duration);
    let slow = eval(990.0, 100.0, RunEnd::Duration);
    let crashed = eval(2000.0, 50.0, RunEnd::Crashed);
    let best = 1000.0;
    // Within 0.5% of the best: fewer worker-seconds win.
    assert_eq!(rank((&b, &tie), (&a, &fast), best), Ordering::Less);
    // 1% below the best is no tie, however cheap.
    assert_eq!(rank((&a, &fast), (&c, &slow), best), Ordering::Less);
    assert_eq!(rank((&b, &tie), (&c, &slow), best), Ordering::Less);
    // A failed run comes last, however fast.
    assert_eq!(rank((&c, &slow), (&a, &crashed), best), Ordering::Less);
    // Equal figures: the configuration decides, so the order is total.
    assert_eq!(rank((&a, &fast), (&b, &fast), best), Ordering::Less);
    assert_eq!(rank((&a, &fast), (&a, &fast), best), Ordering::Equal);
}

fn shared(name: &str) -> Scenario {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    brigade_scenario::load(&path.join(name)).unwrap_or_else(|err| panic!("{err}"))
}

#[test]
fn the_capacity_model_starts_where_the_hand_reckoning_does() {
    // 15 writers are the USL peak of saturating-db's database: 906 records/s.
    let saturating = Estimate::of(&shared("saturating-db.toml"));
    assert_eq!(saturating.start.workers, [1, 15]);
    assert!(close(saturating.rate, 908.0, 0.01), "{}", saturating.rate);
    // Two cores carry 1 / 582 µs = 3436 records/s of cpu-bound's decode and score.
    let cpu = Estimate::of(&shared("cpu-bound.toml"));
    assert_eq!(cpu.start.workers, [1, 2, 6]);
    assert!(close(cpu.rate, 3436.0, 0.01), "{}", cpu.rate);
}

#[test]
fn only_small_records_is_worth_screening_among_the_shared_scenarios() {
    for name in [
        "cpu-bound.toml",
        "noisy-neighbor.toml",
        "s3-idle-timeout.toml",
        "saturating-db.toml",
        "shapefile-etl.toml",
        "small-records.toml",
    ] {
        let sc = shared(name);
        let screen = screening_copy(&sc, Estimate::of(&sc).rate, SCREEN_RECORDS);
        let expected = (name == "small-records.toml").then_some(5.0);
        assert_eq!(screen.map(|s| s.duration_s), expected, "{name}");
    }
}

/// A flash crowd: the source's rate jumps 16× for 20 s, then settles at 3× its start.
/// Two io stages of 10 ms a call, no contention: at the first load one worker each
/// carries it, and more workers of either stage alone gain nothing (the other still
/// carries 100/s), so a search that starts there never leaves it.
const FLASH_CROWD: &str = r#"
name = "flash-crowd"
duration = "70s"
[runtime]
max_workers = 32
[source]
rate = 100
size = { dist = "fixed", value = "1KiB" }
[[stage]]
name = "enrich"
kind = "io"
service = { dist = "fixed", value = "10ms" }
[[stage]]
name = "write"
kind = "io"
service = { dist = "fixed", value = "10ms" }
[[phase]]
at = "10s"
source_rate = 1600
[[phase]]
at = "30s"
source_rate = 300
"#;

#[test]
fn the_search_starts_from_the_first_load_and_from_the_peak() {
    let flash = scenario(FLASH_CROWD);
    let both = starts(&flash, Estimate::of(&flash));
    let workers: Vec<&[usize]> = both.iter().map(|s| s.workers.as_slice()).collect();
    assert_eq!(workers, [[1, 1], [16, 16]]);
    assert_eq!(
        starts(&scenario(PEAK), Estimate::of(&scenario(PEAK))).len(),
        1
    );
}

#[test]
fn a_flash_crowd_oracle_beats_every_static_worker_count() {
    let flash = scenario(FLASH_CROWD);
    let oracle = search(&flash);
    let best = oracle.run.throughput();
    // Carrying every phase: (10·100 + 20·1600 + 40·300) / 70 s = 643 records/s.
    assert!(best > 600.0, "{:?}: {best}", oracle.config);
    for n in [1, 2, 4, 8, 16, 32] {
        let run = Simulation::new(&flash, Box::new(Static::new().workers(n)), "static").run();
        assert!(
            best >= (1.0 - TIE_TOLERANCE) * run.throughput(),
            "static:{n} {} > oracle {:?} {best}",
            run.throughput(),
            oracle.config
        );
    }
}
