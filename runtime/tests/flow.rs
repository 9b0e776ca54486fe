//! Records flow end to end with exact counts: fan-out, filtering, batching sinks,
//! and random resizes of pools and queues while the pipeline runs; and a call stuck for
//! many windows, in a worker or in the serial lane, counts in each while it lasts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brigade_controller::{Action, Controller, Decision, Snapshot};
use brigade_runtime::Pipeline;
use proptest::prelude::*;

#[test]
fn fan_out_and_filter_give_exact_counts() {
    let sum = Arc::new(AtomicU64::new(0));
    let written = Arc::new(AtomicU64::new(0));
    let (s, w) = (sum.clone(), written.clone());
    let report = Pipeline::from_iter(0..30_000u64)
        .flat_map("repeat", |x, out| {
            for _ in 0..x % 3 {
                out.emit(x);
            }
        })
        .workers(1, 4)
        .initial_workers(3)
        .filter("not-seven", |x| x % 7 != 0)
        .batch_sink("store", move |batch: Vec<u64>| {
            w.fetch_add(batch.len() as u64, Ordering::Relaxed);
            s.fetch_add(batch.iter().sum::<u64>(), Ordering::Relaxed);
        })
        .batch_size(32)
        .run()
        .unwrap();

    let outputs = || {
        (0..30_000u64)
            .flat_map(|x| std::iter::repeat_n(x, (x % 3) as usize))
            .filter(|x| x % 7 != 0)
    };
    assert_eq!(report.admitted, 30_000);
    assert_eq!(report.completed, 30_000, "filtered records complete too");
    assert_eq!(report.dead_lettered, 0);
    assert_eq!(written.load(Ordering::Relaxed), outputs().count() as u64);
    assert_eq!(sum.load(Ordering::Relaxed), outputs().sum::<u64>());
    assert_eq!(report.stages[0].records_out, 30_000);
    assert_eq!(report.stages[2].records_out, outputs().count() as u64);
    assert_eq!(report.acknowledged, 30_000);
}

#[test]
fn the_monitor_sees_every_stage_every_tick() {
    let running = Pipeline::from_iter(0..u64::MAX)
        .tick(Duration::from_millis(50))
        .map("slow", |x| {
            std::thread::sleep(Duration::from_micros(200));
            x
        })
        // Seconds of input queued: the slow stage never waits for a source that a
        // loaded machine runs late.
        .queue_capacity(10_000)
        .sink("drop", |_| {})
        .start()
        .unwrap();
    let ticks = running.monitor().subscribe();
    let first = ticks.recv_timeout(Duration::from_secs(5)).unwrap();
    let second = ticks.recv_timeout(Duration::from_secs(5)).unwrap();
    let report = running.shutdown();
    assert!(
        ticks.iter().count() >= 1,
        "the feed ends after the last window"
    );
    assert_eq!(second.snapshot.tick, first.snapshot.tick + 1);
    let snap = &second.snapshot;
    assert_eq!(snap.stages.len(), 2);
    assert_eq!(snap.stages[0].name, "slow");
    let slow = &snap.stages[0];
    assert!(slow.records_out > 0);
    assert!(slow.utilisation() > 0.5, "the slow stage is busy: {slow:?}");
    assert!(
        slow.service_time_us.p50 >= 150,
        "{:?}",
        slow.service_time_us
    );
    assert!(
        snap.stages[1].waiting_share() > 0.5,
        "the sink waits for input"
    );
    assert_eq!(snap.knobs.stages.len(), 2);
    assert!(snap.global.totals.admitted >= snap.global.totals.completed);
    assert_eq!(report.admitted, report.completed + report.dead_lettered);
}

#[test]
fn every_record_reaches_the_metrics() {
    const RECORDS: u64 = 10_000;
    let resize = |workers| vec![Action::SetWorkers { stage: 0, workers }];
    let running = Pipeline::from_iter(0..RECORDS)
        .tick(Duration::from_millis(10))
        .controller(Schedule {
            steps: vec![
                resize(4),
                resize(1),
                resize(3),
                resize(1),
                resize(4),
                resize(2),
            ],
            tick: 0,
        })
        .map("double", |x| {
            std::thread::sleep(Duration::from_micros(10));
            x * 2
        })
        .workers(1, 4)
        .initial_workers(2)
        .batch_sink("store", |_: Vec<u64>| {})
        .batch_size(16)
        .start()
        .unwrap();
    let ticks = running.monitor().subscribe();
    let report = running.wait();
    let (mut records_in, mut sizes, mut services, mut waits) = ([0; 2], [0; 2], [0; 2], [0; 2]);
    let mut latencies = 0;
    for tick in ticks.iter() {
        for (i, stage) in tick.snapshot.stages.iter().enumerate() {
            records_in[i] += stage.records_in;
            sizes[i] += stage.record_size_bytes.count;
            services[i] += stage.service_time_us.count;
            waits[i] += stage.wait_in_us.count;
        }
        latencies += tick.snapshot.global.latency_us.count;
    }
    assert_eq!(records_in, [RECORDS; 2]);
    assert_eq!(sizes, [RECORDS; 2]);
    assert_eq!(services[0], RECORDS, "one call per record");
    assert_eq!(waits[0], RECORDS);
    assert!(services[1] > 0 && services[1] <= RECORDS);
    assert_eq!(waits[1], services[1], "one wait per batch");
    assert_eq!(latencies, RECORDS);
    assert_eq!(report.stages[1].records_in, RECORDS);
}

/// Replays a fixed list of knob changes, a few per tick.
struct Schedule {
    steps: Vec<Vec<Action>>,
    tick: usize,
}

impl Controller for Schedule {
    fn name(&self) -> &str {
        "schedule"
    }

    fn decide(&mut self, _: &Snapshot) -> Vec<Decision> {
        let step = self.steps.get(self.tick).cloned().unwrap_or_default();
        self.tick += 1;
        step.into_iter()
            .map(|action| Decision::new(action, "scheduled"))
            .collect()
    }
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0..3usize, 1..7usize).prop_map(|(stage, workers)| Action::SetWorkers { stage, workers }),
        (0..3usize, 1..40usize)
            .prop_map(|(stage, capacity)| Action::SetQueueCapacity { stage, capacity }),
        (1..20usize).prop_map(|size| Action::SetBatchSize { stage: 2, size }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn random_resizes_under_load_lose_and_duplicate_nothing(
        steps in prop::collection::vec(prop::collection::vec(action(), 0..4), 5..25),
        records in 5_000u64..20_000,
    ) {
        let seen = Arc::new(Mutex::new(Vec::with_capacity(2 * records as usize)));
        let sink = seen.clone();
        let report = Pipeline::from_iter(0..records)
            .tick(Duration::from_millis(5))
            .controller(Schedule { steps, tick: 0 })
            .map("spin", |x| {
                let mut h = x;
                for _ in 0..200 {
                    h = std::hint::black_box(h.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
                (x, h)
            })
            .workers(1, 8)
            .flat_map("split", |(x, _), out| {
                out.emit(2 * x);
                if x % 2 == 0 {
                    out.emit(2 * x + 1);
                }
            })
            .workers(1, 8)
            .batch_sink("collect", move |batch: Vec<u64>| sink.lock().unwrap().extend(batch))
            .workers(1, 8)
            .run()
            .unwrap();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        let mut expected: Vec<u64> = (0..records)
            .flat_map(|x| if x % 2 == 0 { vec![2 * x, 2 * x + 1] } else { vec![2 * x] })
            .collect();
        expected.sort_unstable();
        prop_assert_eq!(seen, expected);
        prop_assert_eq!(report.admitted, records);
        prop_assert_eq!(report.completed, records);
    }
}

/// What a run with one call stuck for ten windows showed: the windows before them,
/// the ten that began after the call had started and ended before it was let go, the
/// ones after, and the report.
struct StuckCall {
    before: Vec<Arc<Snapshot>>,
    stuck: Vec<Arc<Snapshot>>,
    after: Vec<Arc<Snapshot>>,
    report: brigade_runtime::Report,
}

impl StuckCall {
    /// Every window seen, in order.
    fn windows(&self) -> impl Iterator<Item = &Arc<Snapshot>> {
        self.before.iter().chain(&self.stuck).chain(&self.after)
    }
}

/// Watches `running`, whose call signals `entered` once it runs and then waits on
/// `release`, for ten whole windows of the call, lets it go and waits for the run to
/// end (its source is finite: a shutdown would stop it wherever a loaded machine had
/// got to).
///
/// Which windows the call spans whole is known without the scheduler: once `entered`
/// says the call runs, the latest published window is some tick `L`; tick `L + 1`
/// was not yet published, so the control thread begins window `L + 3` (when it
/// closes `L + 2`) after the call started.
fn watch_stuck_call(
    running: brigade_runtime::Running,
    entered: crossbeam_channel::Receiver<()>,
    release: crossbeam_channel::Sender<()>,
) -> StuckCall {
    let patience = Duration::from_secs(60);
    entered
        .recv_timeout(patience)
        .expect("the call starts within a minute");
    let monitor = running.monitor();
    let ticks = monitor.subscribe();
    let first_whole = monitor.latest().map_or(0, |s| s.tick) + 3;
    let next = || ticks.recv_timeout(patience).unwrap().snapshot;
    let mut before = Vec::new();
    let mut stuck = Vec::new();
    while stuck.len() < 10 {
        let snapshot = next();
        if snapshot.tick < first_whole {
            before.push(snapshot);
        } else {
            stuck.push(snapshot);
        }
    }
    release.send(()).unwrap();
    let report = running.wait();
    let run = StuckCall {
        before,
        stuck,
        after: ticks.iter().map(|tick| tick.snapshot).collect(),
        report,
    };
    for (earlier, later) in run.windows().zip(run.windows().skip(1)) {
        assert_eq!(later.tick, earlier.tick + 1, "no window missed");
    }
    run
}

/// The busy time of a call that lasts a whole window, measured by the runtime,
/// equals the window's length (both are read off the one instant that closes each
/// window), up to the rounding of nanoseconds to seconds.
fn whole_window(busy_s: f64, snapshot: &Snapshot) -> bool {
    (busy_s - snapshot.window_s).abs() < 1e-6
}

#[test]
fn a_call_stuck_for_many_windows_is_busy_in_each_and_shows_as_running() {
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let (enter, entered) = crossbeam_channel::bounded::<()>(1);
    let running = Pipeline::from_iter(0..1000u64)
        .tick(Duration::from_millis(20))
        .map("parse", |x| x)
        .sink("upsert", move |x| {
            if x == 0 {
                enter.send(()).unwrap();
                released.recv().unwrap();
            }
        })
        .start()
        .unwrap();
    let run = watch_stuck_call(running, entered, release);
    assert_eq!(run.report.completed, 1000);
    let mut ran_before = 0.0;
    let mut parse_blocked = 0;
    let mut previous = run.before.last().expect("windows before the stuck ones");
    for snapshot in &run.stuck {
        // With upsert's queue full since the window before (and parse waiting for room
        // in it then), parse waits for room all window: blocked, not busy, no call
        // running. Nothing leaves the queue while upsert's only call is stuck.
        let (parse, upsert) = (&snapshot.stages[0], &snapshot.stages[1]);
        let full = |s: &Snapshot| {
            let queue = &s.stages[1].queue;
            queue.mean_depth >= queue.capacity as f64
        };
        if full(previous) && full(snapshot) && previous.stages[0].wait_out_s > 0.0 {
            parse_blocked += 1;
            assert!(parse.blocked_share() > 0.9, "{parse:?}");
            assert!(parse.utilisation() < 0.1, "{parse:?}");
            assert!(parse.running_calls_s.is_empty(), "{parse:?}");
        }
        assert_eq!(
            upsert.records_out, 0,
            "nothing ends while the call is stuck"
        );
        assert!(
            whole_window(upsert.busy_s, snapshot),
            "its one worker is busy all window: {upsert:?} in {} s",
            snapshot.window_s
        );
        assert_eq!(upsert.running_calls_s.len(), 1, "{upsert:?}");
        let ran = upsert.running_calls_s[0];
        assert!(
            ran > ran_before,
            "the call runs on: {ran} after {ran_before}"
        );
        ran_before = ran;
        previous = snapshot;
    }
    assert!(parse_blocked > 0, "upsert's queue filled up");
    // Counted in the windows it spans, the call is not counted again when it ends:
    // over the whole run the worker was never busier than it was alive (counted
    // twice, it would be about twice as busy; the margin is for the worker-seconds,
    // which the control thread samples).
    let (busy, alive) = run.windows().fold((0.0, 0.0), |(busy, alive), snapshot| {
        let upsert = &snapshot.stages[1];
        (busy + upsert.busy_s, alive + upsert.worker_s)
    });
    let stuck_s: f64 = run.stuck.iter().map(|s| s.window_s).sum();
    assert!(busy >= stuck_s - 1e-5, "busy {busy} s, stuck {stuck_s} s");
    assert!(busy <= alive * 1.2, "busy {busy} s of {alive} s alive");
}

#[test]
fn a_giant_stuck_in_the_serial_lane_is_busy_in_every_window_it_spans() {
    let (release, released) = crossbeam_channel::bounded::<()>(0);
    let (enter, entered) = crossbeam_channel::bounded::<()>(1);
    let records = (0..100usize).map(|i| vec![0u8; if i == 0 { 4 << 20 } else { 512 }]);
    let running = Pipeline::from_iter(records)
        .tick(Duration::from_millis(20))
        .serial_threshold(1 << 20)
        .sink("write", move |record: Vec<u8>| {
            if record.len() >= 1 << 20 {
                enter.send(()).unwrap();
                released.recv().unwrap();
            }
        })
        .start()
        .unwrap();
    let run = watch_stuck_call(running, entered, release);
    assert_eq!(run.report.completed, 100);
    for snapshot in &run.stuck {
        let lane = &snapshot.global.serial;
        assert!(
            lane.current_bytes >= 4 << 20,
            "the giant is in the lane: {lane:?}"
        );
        assert_eq!(lane.records, 0, "and does not finish: {lane:?}");
        assert!(
            whole_window(lane.busy_s, snapshot),
            "the lane is busy all window: {lane:?} in {} s",
            snapshot.window_s
        );
        // The stage's workers may add small records' calls to the giant's.
        let write = &snapshot.stages[0];
        assert!(
            write.busy_s >= snapshot.window_s - 1e-6,
            "and so is the stage it is in: {write:?} in {} s",
            snapshot.window_s
        );
    }
    // Counted while it ran, the call is not counted again when it ends.
    let (busy, span) = run.windows().fold((0.0, 0.0), |(busy, span), snapshot| {
        (
            busy + snapshot.global.serial.busy_s,
            span + snapshot.window_s,
        )
    });
    let stuck_s: f64 = run.stuck.iter().map(|s| s.window_s).sum();
    assert!(busy >= stuck_s - 1e-5, "busy {busy} s, stuck {stuck_s} s");
    assert!(busy <= span * 1.05, "busy {busy} s of {span} s");
}
