//! The clock of the per-record path.
//!
//! A record's trip reads the clock several times (when it is admitted, when each
//! call ends, when a wait ends), so the runtime reads quanta's clock there: the
//! CPU's time-stamp counter, calibrated against the OS's monotonic clock once per
//! process (under a millisecond here), about 10 ns a read against 25 for
//! `std::time::Instant` on this machine. Where the TSC is not reliable, quanta falls
//! back to the OS clock. Waits with a deadline (condition variables, sleeps) keep
//! `std::time::Instant`.
//!
//! The reads made for every record (the end of each call, a record's admission) go
//! through [`now`], which asks one process-wide `quanta::Clock` directly, sparing
//! `Instant::now`'s look for a per-thread mock clock (the runtime mocks none). Both
//! read the same counter with the same calibration, so their instants compare.

pub(crate) use quanta::Instant;

use std::sync::OnceLock;
use std::time::Duration;

/// The current instant, from the runtime's own clock (see the module docs).
#[inline]
pub(crate) fn now() -> Instant {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new).now()
}

/// The instant stamps count from: the first time anything asked for it.
pub(crate) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` as nanoseconds since [`epoch`] plus one: a stamp that fits an atomic and is
/// never zero, so that zero can mean "none". Instants before the epoch stamp as it.
pub(crate) fn stamp(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_nanos() as u64 + 1
}

/// The instant a [`stamp`] stands for.
pub(crate) fn unstamp(stamp: u64) -> Instant {
    epoch() + Duration::from_nanos(stamp.saturating_sub(1))
}
