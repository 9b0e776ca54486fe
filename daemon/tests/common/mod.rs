//! What the daemon's integration tests share: a pipeline that never ends by itself,
//! and a patient wait.

use std::time::{Duration, Instant};

use brigade_runtime::{Pipeline, Running};

/// A pipeline reading `0..` forever through a 1 ms stage, closing a window every 100 ms.
pub fn endless() -> Running {
    Pipeline::from_iter(0u64..)
        .tick(Duration::from_millis(100))
        .map("work", |x| {
            std::thread::sleep(Duration::from_millis(1));
            x
        })
        .workers(1, 4)
        .sink("discard", |_| {})
        .start()
        .expect("a valid pipeline")
}

/// Waits until `condition` holds, checking every 20 ms; panics naming `what` after a
/// minute (a loaded machine is slow, not that slow).
pub fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
