//! The spill to disk: where the source guard's reads wait while the memory budget is
//! full, so that a source with an idle timeout is read however long the sink stalls.
//!
//! When the guard is due and the budget cannot hold the record, the record is written
//! to a spill file (bounded by the disk the operator allows) instead of waiting in
//! memory. Spilled records re-enter the first queue (or the serial lane) in the order
//! they were read, before any new read, as soon as the budget can hold them. A full
//! spill is as no spill: the read waits for the budget.
//!
//! Guarantees: a spilled record keeps its position's ticket, so the source is not
//! acknowledged past it until it has finished like any other record; after a crash
//! the spill file is worthless and a rerun re-reads the record from the source. The
//! file lives in the directory given, is deleted whenever the spill drains, and at
//! the end of the run. Only record types that implement [`Spillable`] can spill (see
//! [`Pipeline::from_source_with_spill`](crate::Pipeline::from_source_with_spill)).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

use brigade_controller::SpillStats;

use crate::failure::BoxError;
use crate::ledger::{Envelope, Ticket};

/// A record that can wait on disk: the spill writes it to bytes and reads it back.
pub trait Spillable: Sized {
    /// Appends the record's bytes to `out`.
    fn spill(&self, out: &mut Vec<u8>);

    /// The record back from the bytes [`spill`](Spillable::spill) wrote.
    fn unspill(bytes: &[u8]) -> Result<Self, BoxError>;
}

/// Where and how much the spill may write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpillConfig {
    /// The directory the spill file goes in (it must exist).
    pub dir: PathBuf,
    /// Most bytes the spill may hold on disk at once.
    pub capacity: u64,
}

impl SpillConfig {
    /// A spill of at most `capacity` bytes in `dir`.
    pub fn new(dir: impl Into<PathBuf>, capacity: u64) -> Self {
        Self {
            dir: dir.into(),
            capacity,
        }
    }
}

/// The spill's figures, read by the control thread.
#[derive(Default)]
pub(crate) struct SpillCell {
    capacity: Option<u64>,
    records: AtomicU64,
    bytes: AtomicU64,
    total_records: AtomicU64,
    total_bytes: AtomicU64,
}

impl SpillCell {
    /// Figures of a spill of `capacity` bytes (`None`: no spill).
    pub(crate) fn new(capacity: Option<u64>) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    /// The figures now.
    pub(crate) fn stats(&self) -> SpillStats {
        SpillStats {
            capacity_bytes: self.capacity,
            records: self.records.load(SeqCst),
            bytes: self.bytes.load(SeqCst),
            total_records: self.total_records.load(SeqCst),
            total_bytes: self.total_bytes.load(SeqCst),
        }
    }
}

/// A record waiting on disk: where its bytes are, and what stays in memory.
struct Waiting {
    len: u64,
    weight: u64,
    ticket: Ticket,
}

/// A record read back from the spill, or why it could not be.
pub(crate) struct Lost {
    /// Its ticket: the source must not be acknowledged past it.
    pub ticket: Ticket,
    /// What went wrong.
    pub error: BoxError,
}

/// The spill file of one run: records appended in read order, read back from the
/// front.
pub(crate) struct Spill<T> {
    config: SpillConfig,
    /// The open file and its path, while records wait.
    file: Option<(File, PathBuf)>,
    write_at: u64,
    read_at: u64,
    waiting: VecDeque<Waiting>,
    /// Bytes on disk waiting.
    bytes: u64,
    buffer: Vec<u8>,
    cell: std::sync::Arc<SpillCell>,
    encode: fn(&T, &mut Vec<u8>),
    decode: fn(&[u8]) -> Result<T, BoxError>,
    _records: PhantomData<fn() -> T>,
}

impl<T: Spillable> Spill<T> {
    /// An empty spill as `config` says, publishing its figures in `cell`.
    pub(crate) fn new(config: SpillConfig, cell: std::sync::Arc<SpillCell>) -> Self {
        Self {
            config,
            file: None,
            write_at: 0,
            read_at: 0,
            waiting: VecDeque::new(),
            bytes: 0,
            buffer: Vec::new(),
            cell,
            encode: T::spill,
            decode: T::unspill,
            _records: PhantomData,
        }
    }
}

impl<T> Spill<T> {
    /// True when no record waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Whether `bytes` more would fit.
    pub(crate) fn has_room(&self, bytes: u64) -> bool {
        self.bytes + bytes <= self.config.capacity
    }

    /// The weight of the oldest record waiting.
    pub(crate) fn front_weight(&self) -> Option<u64> {
        self.waiting.front().map(|waiting| waiting.weight)
    }

    /// Writes `envelope` after the records waiting; gives it back if it does not fit,
    /// or with the error if the disk refused it.
    pub(crate) fn push(
        &mut self,
        envelope: Envelope<T>,
    ) -> Result<(), (Envelope<T>, Option<std::io::Error>)> {
        self.buffer.clear();
        (self.encode)(&envelope.value, &mut self.buffer);
        let len = self.buffer.len() as u64;
        if !self.has_room(len) {
            return Err((envelope, None));
        }
        if let Err(error) = self.write_buffer() {
            return Err((envelope, Some(error)));
        }
        self.write_at += len;
        self.bytes += len;
        self.waiting.push_back(Waiting {
            len,
            weight: envelope.weight,
            ticket: envelope.ticket,
        });
        self.cell.records.fetch_add(1, SeqCst);
        self.cell.bytes.fetch_add(len, SeqCst);
        self.cell.total_records.fetch_add(1, SeqCst);
        self.cell.total_bytes.fetch_add(len, SeqCst);
        Ok(())
    }

    fn write_buffer(&mut self) -> std::io::Result<()> {
        if self.file.is_none() {
            self.file = Some(create(&self.config.dir)?);
        }
        let (file, _) = self.file.as_mut().expect("created above");
        file.write_all(&self.buffer)
    }

    /// Reads the oldest record back (`None` when none waits). The file is deleted
    /// once the last record is read.
    pub(crate) fn pop(&mut self) -> Option<Result<Envelope<T>, Lost>> {
        let waiting = self.waiting.pop_front()?;
        self.bytes -= waiting.len;
        self.cell.records.fetch_sub(1, SeqCst);
        self.cell.bytes.fetch_sub(waiting.len, SeqCst);
        let read = self.read(waiting.len);
        self.read_at += waiting.len;
        if self.waiting.is_empty() {
            self.remove_file();
        }
        Some(match read {
            Ok(value) => Ok(Envelope {
                value,
                weight: waiting.weight,
                ticket: waiting.ticket,
            }),
            Err(error) => Err(Lost {
                ticket: waiting.ticket,
                error,
            }),
        })
    }

    fn read(&mut self, len: u64) -> Result<T, BoxError> {
        let (file, _) = self
            .file
            .as_ref()
            .ok_or("the spill file is gone while records wait")?;
        let len = usize::try_from(len)?;
        self.buffer.resize(len, 0);
        file.read_exact_at(&mut self.buffer, self.read_at)?;
        (self.decode)(&self.buffer)
    }

    fn remove_file(&mut self) {
        if let Some((file, path)) = self.file.take() {
            drop(file);
            // Nothing waits in it: a file that cannot be removed loses no record.
            let _ = std::fs::remove_file(path);
        }
        self.write_at = 0;
        self.read_at = 0;
    }
}

impl<T> Drop for Spill<T> {
    fn drop(&mut self) {
        self.remove_file();
    }
}

/// Creates a new spill file in `dir`, named for the process and a counter.
fn create(dir: &Path) -> std::io::Result<(File, PathBuf)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = dir.join(format!(
        "brigade-spill-{}-{}.bin",
        std::process::id(),
        NEXT.fetch_add(1, SeqCst)
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    Ok((file, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Instant;
    use crate::ledger::Ledger;

    impl Spillable for String {
        fn spill(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(self.as_bytes());
        }

        fn unspill(bytes: &[u8]) -> Result<Self, BoxError> {
            Ok(String::from_utf8(bytes.to_vec())?)
        }
    }

    #[test]
    fn records_come_back_in_order_and_the_file_goes_when_drained() {
        let dir = tempfile::tempdir().unwrap();
        let cell = std::sync::Arc::new(SpillCell::new(Some(10)));
        let mut spill = Spill::<String>::new(SpillConfig::new(dir.path(), 10), cell.clone());
        let (ledger, _finished) = Ledger::new();
        let envelope = |text: &str, position| Envelope {
            value: text.to_owned(),
            weight: 100,
            ticket: ledger.admit(position, Instant::now()),
        };
        spill.push(envelope("abcd", 0)).ok().unwrap();
        spill.push(envelope("efgh", 1)).ok().unwrap();
        let (refused, error) = spill.push(envelope("ijk", 2)).err().unwrap();
        assert_eq!((refused.value.as_str(), error.is_none()), ("ijk", true));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert_eq!(cell.stats().bytes, 8);
        assert_eq!(spill.front_weight(), Some(100));
        let first = spill.pop().unwrap().ok().unwrap();
        assert_eq!((first.value.as_str(), first.ticket.position), ("abcd", 0));
        spill.push(envelope("ij", 2)).ok().unwrap();
        let rest: Vec<String> = std::iter::from_fn(|| spill.pop())
            .map(|read| read.ok().unwrap().value)
            .collect();
        assert_eq!(rest, ["efgh", "ij"]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let stats = cell.stats();
        assert_eq!(
            (
                stats.records,
                stats.bytes,
                stats.total_records,
                stats.total_bytes
            ),
            (0, 0, 3, 10)
        );
    }
}
