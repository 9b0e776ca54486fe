//! The consumer group's figures, as the source last saw them, for the Snapshot and
//! `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

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
}

/// A copy of [`GroupStats`] at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
}

impl GroupStats {
    /// New figures for `consumer`, the lag unknown.
    pub fn new(consumer: &str) -> GroupStats {
        GroupStats {
            lag: AtomicU64::new(u64::MAX),
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
        }
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
