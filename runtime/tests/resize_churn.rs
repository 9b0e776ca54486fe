//! A pool resized back and forth for a long time keeps the memory of its live workers
//! only: a retired worker's thread stack is given back, not kept until the run ends.
//! (Alone in its test binary: it counts the process's memory mappings.)

use std::time::{Duration, Instant};

use brigade_controller::Override;
use brigade_runtime::{Monitor, Pipeline};

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|maps| maps.lines().count())
        .unwrap_or(0)
}

/// Pins both stages to `workers` and waits until a snapshot shows them all running.
fn pin_and_settle(monitor: &Monitor, workers: usize) {
    for stage in 0..2 {
        monitor.apply(Override::PinWorkers { stage, workers });
    }
    let start = Instant::now();
    loop {
        let settled = monitor.latest().is_some_and(|snapshot| {
            snapshot.stages[..2]
                .iter()
                .all(|stage| stage.workers.live == workers && stage.workers.target == workers)
        });
        if settled {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the stages never settled at {workers} workers"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn resizing_for_a_long_time_does_not_grow_the_process() {
    if !cfg!(target_os = "linux") {
        return;
    }
    let running = Pipeline::from_iter(0u64..)
        .tick(Duration::from_millis(10))
        .map("a", |x| x + 1)
        .workers(1, 16)
        .map("b", |x| x * 2)
        .workers(1, 16)
        .sink("discard", |_| {})
        .start()
        .unwrap();
    let monitor = running.monitor();
    pin_and_settle(&monitor, 16);
    pin_and_settle(&monitor, 1);
    let before = mappings();
    for _ in 0..60 {
        pin_and_settle(&monitor, 16);
        pin_and_settle(&monitor, 1);
    }
    let after = mappings();
    // 60 cycles retire 1,800 workers; kept, their stacks and guard pages were thousands
    // of mappings. Given back, the count moves by what one cycle's threads hold.
    assert!(
        after < before + 200,
        "memory mappings grew from {before} to {after} over 60 resize cycles"
    );
    let report = running.shutdown();
    assert_eq!(report.admitted, report.completed);
}
