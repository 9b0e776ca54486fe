//! The spill of the model: records the source guard read while the budget could not
//! hold them wait here, on disk, outside the budget, in the order they were read, and
//! re-enter the first queue before any new read as soon as the budget can hold them
//! (docs/scenarios.md, `[runtime] spill`). A full spill is as no spill.

use std::collections::VecDeque;

use super::stage::Rec;

/// The spill's state.
#[derive(Default)]
pub(crate) struct SpillSim {
    /// The disk it may use, bytes; `None` = no spill.
    capacity: Option<u64>,
    /// Records waiting, oldest first.
    records: VecDeque<Rec>,
    /// Bytes waiting.
    pub(crate) bytes: u64,
    /// Records that went through it since the start.
    pub(crate) total_records: u64,
    /// Bytes that went through it since the start.
    pub(crate) total_bytes: u64,
}

impl SpillSim {
    /// A spill of `capacity` bytes (`None`: no spill).
    pub(crate) fn new(capacity: Option<u64>) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    /// Whether a record of `bytes` fits now.
    pub(crate) fn has_room(&self, bytes: u64) -> bool {
        self.capacity
            .is_some_and(|capacity| self.bytes + bytes <= capacity)
    }

    /// Writes `rec` after the records already waiting.
    pub(crate) fn push(&mut self, rec: Rec) {
        self.bytes += rec.bytes;
        self.total_bytes += rec.bytes;
        self.total_records += 1;
        self.records.push_back(rec);
    }

    /// The oldest record waiting.
    pub(crate) fn front(&self) -> Option<&Rec> {
        self.records.front()
    }

    /// Takes the oldest record back.
    pub(crate) fn pop(&mut self) -> Option<Rec> {
        let rec = self.records.pop_front()?;
        self.bytes -= rec.bytes;
        Some(rec)
    }

    /// Records waiting.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// True when no record waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}
