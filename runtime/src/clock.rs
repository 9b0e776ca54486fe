//! The clock of the per-record path.
//!
//! A record's trip reads the clock several times (when it is admitted, when each
//! call ends, when a wait ends), so the runtime reads quanta's clock there: the
//! CPU's time-stamp counter, calibrated against the OS's monotonic clock once per
//! process (under a millisecond here), about 10 ns a read against 25 for
//! `std::time::Instant` on this machine. Where the TSC is not reliable, quanta falls
//! back to the OS clock. Waits with a deadline (condition variables, sleeps) keep
//! `std::time::Instant`.

pub(crate) use quanta::Instant;
