//! The consumer group's figures, as the source last saw them, for the Snapshot and
//! `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

/// The group's figures, updated by the source (about once a second for what it asks
/// Redis, at once for what it does itself) and read by anyone holding the `Arc`.
/// Sums over the streams read.
#[derive(Debug, Default)]
pub struct GroupStats {
    /// Entries added to the streams and not yet delivered to the group (`XINFO GROUPS`
    /// `lag`; Redis 7+). `u64::MAX` until known, or when Redis cannot tell.
    pub lag: AtomicU64,
    /// Entries delivered to this consumer and not acknowledged (`XPENDING`).
    pub pending_own: AtomicU64,
    /// Entries delivered to the group's other consumers and not acknowledged.
    pub pending_others: AtomicU64,
    /// Consumers of the group seen within `claim_idle` (`XINFO CONSUMERS`), this one
    /// included; a consumer reading several streams counts once.
    pub consumers_alive: AtomicU64,
    /// Entries this source claimed from idle consumers.
    pub claimed: AtomicU64,
    /// Entries this source moved to the dead-letter stream.
    pub dead_lettered: AtomicU64,
    /// Entries read (own pending, new and claimed).
    pub read: AtomicU64,
    /// Entries acknowledged (`XACK` answered).
    pub acked: AtomicU64,
    /// Times the connection was lost and opened again.
    pub reconnects: AtomicU64,
    /// Whether the source's connection is up.
    pub connected: AtomicBool,
    /// The consumer's name.
    pub consumer: Mutex<String>,
    /// The last error Redis gave, if any (kept after it recovered).
    pub last_error: Mutex<Option<String>>,
    /// Entries added to the streams per second between the last two readings of the
    /// figures (`XINFO STREAM` `entries-added`), as `f64` bits; `u64::MAX` until two
    /// readings have been made.
    pub arrival_per_s: AtomicU64,
    /// The last reading of `entries-added` and when it was made.
    pub(crate) added: Mutex<Option<(u64, Instant)>>,
}

/// A copy of [`GroupStats`] at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupFigures {
    /// See [`GroupStats::lag`]; `None` until known.
    pub lag: Option<u64>,
    /// See [`GroupStats::pending_own`].
    pub pending_own: u64,
    /// See [`GroupStats::pending_others`].
    pub pending_others: u64,
    /// See [`GroupStats::consumers_alive`].
    pub consumers_alive: u64,
    /// See [`GroupStats::claimed`].
    pub claimed: u64,
    /// See [`GroupStats::dead_lettered`].
    pub dead_lettered: u64,
    /// See [`GroupStats::read`].
    pub read: u64,
    /// See [`GroupStats::acked`].
    pub acked: u64,
    /// See [`GroupStats::reconnects`].
    pub reconnects: u64,
    /// See [`GroupStats::connected`].
    pub connected: bool,
    /// See [`GroupStats::consumer`].
    pub consumer: String,
    /// See [`GroupStats::arrival_per_s`]; `None` until known.
    pub arrival_per_s: Option<f64>,
}

impl GroupStats {
    /// New figures for `consumer`, the lag unknown.
    pub fn new(consumer: &str) -> GroupStats {
        GroupStats {
            lag: AtomicU64::new(u64::MAX),
            arrival_per_s: AtomicU64::new(u64::MAX),
            consumer: Mutex::new(consumer.to_owned()),
            ..GroupStats::default()
        }
    }

    /// The figures now.
    pub fn figures(&self) -> GroupFigures {
        let lag = self.lag.load(Relaxed);
        GroupFigures {
            lag: (lag != u64::MAX).then_some(lag),
            pending_own: self.pending_own.load(Relaxed),
            pending_others: self.pending_others.load(Relaxed),
            consumers_alive: self.consumers_alive.load(Relaxed),
            claimed: self.claimed.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            read: self.read.load(Relaxed),
            acked: self.acked.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            connected: self.connected.load(Relaxed),
            consumer: self
                .consumer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            arrival_per_s: match self.arrival_per_s.load(Relaxed) {
                u64::MAX => None,
                bits => Some(f64::from_bits(bits)),
            },
        }
    }

    /// Notes that the streams have had `added` entries added in all, as read now: the
    /// arrival rate is the increase since the last reading over the time between.
    pub(crate) fn note_added(&self, added: u64) {
        let now = Instant::now();
        let mut last = self
            .added
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((before, then)) = *last {
            let seconds = now.duration_since(then).as_secs_f64();
            if seconds > 0.0 {
                let rate = added.saturating_sub(before) as f64 / seconds;
                self.arrival_per_s.store(rate.to_bits(), Relaxed);
            }
        }
        *last = Some((added, now));
    }

    pub(crate) fn add(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Relaxed);
    }

    pub(crate) fn note_error(&self, error: &impl std::fmt::Display) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error.to_string());
    }
}
