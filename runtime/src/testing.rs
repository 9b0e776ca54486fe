//! What the unit tests share: waiting until another thread shows it has reached a
//! point (a wait begun, a span started), instead of sleeping and hoping it got there.

use std::time::{Duration, Instant};

/// Waits until `condition` holds, checking every millisecond; panics naming `what`
/// after a minute (a loaded machine is slow, not that slow).
pub(crate) fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "gave up waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
