//! A synthetic record: the id that keys its draws, the attempt its current stage is
//! at, and its bytes, allocated and touched page by page when it is made, so that
//! what the budget counts is really resident.

use std::hint::black_box;

use brigade_runtime::{BoxError, Spillable, Weigh};

/// Bytes between two writes that bring a record's memory in.
const PAGE: usize = 4096;

/// One record of a synthetic run.
#[derive(Debug)]
pub(crate) struct Record {
    /// Its position in the source, or for an output of a fan-out an id derived from
    /// it (`brigade_scenario::draws::output_id`).
    pub(crate) id: u64,
    /// The attempt (from 1) the stage holding it is at: a transient failure hands
    /// the record back with the next one, so a retry meets its own draws.
    pub(crate) attempt: u32,
    data: Vec<u8>,
}

impl Record {
    /// Record `id` with `bytes` bytes, every page of them written.
    pub(crate) fn new(id: u64, bytes: u64) -> Self {
        let mut data = vec![0u8; bytes as usize];
        for page in data.chunks_mut(PAGE) {
            page[0] = 1;
        }
        Self {
            id,
            attempt: 1,
            data: black_box(data),
        }
    }

    /// Its size in bytes.
    pub(crate) fn bytes(&self) -> u64 {
        self.data.len() as u64
    }

    /// This record as a stage's output of `bytes` bytes: the same bytes when the size
    /// is unchanged, new ones otherwise; its next stage starts at attempt 1.
    pub(crate) fn into_output(self, bytes: u64) -> Self {
        if self.bytes() == bytes {
            Self { attempt: 1, ..self }
        } else {
            Self::new(self.id, bytes)
        }
    }
}

impl Weigh for Record {
    /// Its length: what the scenario's sizes count.
    fn weigh(&self) -> u64 {
        self.bytes()
    }
}

impl Spillable for Record {
    /// Its id, attempt and every byte: a spilled synthetic record costs the disk what
    /// its size says.
    fn spill(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.attempt.to_le_bytes());
        out.extend_from_slice(&self.data);
    }

    fn unspill(bytes: &[u8]) -> Result<Self, BoxError> {
        if bytes.len() < 12 {
            return Err("a spilled synthetic record ends early".into());
        }
        let (id, rest) = bytes.split_at(8);
        let (attempt, data) = rest.split_at(4);
        Ok(Self {
            id: u64::from_le_bytes(id.try_into()?),
            attempt: u32::from_le_bytes(attempt.try_into()?),
            data: data.to_vec(),
        })
    }
}
