//! The file source's memory of files and acknowledgements: which file each returned
//! position came from and where it ended, so that an acknowledgement moves each file's
//! checkpointed offset exactly to the end of its last finished record, and no further.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::checkpoint::{Checkpoint, CheckpointError, CheckpointStore, FileCheckpoint};
use super::fingerprint::Fingerprint;
use super::stats::FileStats;

/// Where a file's reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// At `offset`, after `line` lines (0, 0 for a file never seen).
    At {
        /// The file's slot in the ledger.
        slot: usize,
        /// Bytes already acknowledged.
        offset: u64,
        /// Lines already acknowledged.
        line: u64,
        /// Read to its end before.
        done: bool,
    },
    /// The file (or one with its fingerprint) was already started in this run.
    Duplicate,
}

/// Per-file acknowledged positions, and the record positions not yet acknowledged.
pub(crate) struct Ledger {
    id: String,
    store: Option<CheckpointStore>,
    files: Vec<FileCheckpoint>,
    started: HashSet<usize>,
    /// For each returned position from `first` on: its file's slot, and the offset
    /// and line after it (none for a record of no file: one that could not be opened).
    pending: VecDeque<Option<(usize, u64, u64)>>,
    first: u64,
    returned: u64,
    /// Files read to their end: done once every position before `.0` is acknowledged.
    ends: VecDeque<(u64, usize, u64, u64)>,
    interval: Duration,
    last_save: Instant,
    dirty: bool,
    stats: Arc<FileStats>,
}

impl Ledger {
    /// The ledger of source `id`, from its checkpoint in `store` if any.
    pub(crate) fn load(
        id: String,
        store: Option<CheckpointStore>,
        interval: Duration,
        stats: Arc<FileStats>,
    ) -> Result<Self, CheckpointError> {
        let files = match &store {
            Some(store) => store.load(&id)?.files,
            None => Vec::new(),
        };
        Ok(Self {
            id,
            store,
            files,
            started: HashSet::new(),
            pending: VecDeque::new(),
            first: 0,
            returned: 0,
            ends: VecDeque::new(),
            interval,
            last_save: Instant::now(),
            dirty: false,
            stats,
        })
    }

    /// Where to start the file with these leading bytes (not empty), found at
    /// `path` now. A known fingerprint of a shorter prefix that matches the file's
    /// prefix of that length is the same file, grown: its fingerprint is updated.
    pub(crate) fn start(&mut self, prefix: &[u8], path: &str) -> Start {
        let fingerprint = Fingerprint::of(prefix);
        let mut by_length: HashMap<u32, Fingerprint> = HashMap::new();
        // The longest known prefix that matches this file's prefix of its length.
        let found = (0..self.files.len())
            .filter(|&slot| {
                let known = self.files[slot].fingerprint;
                known.len > 0
                    && known.len <= fingerprint.len
                    && *by_length
                        .entry(known.len)
                        .or_insert_with(|| Fingerprint::of(&prefix[..known.len as usize]))
                        == known
            })
            .max_by_key(|&slot| self.files[slot].fingerprint.len);
        let slot = match found {
            Some(slot) if !self.started.insert(slot) => return Start::Duplicate,
            Some(slot) => slot,
            None => {
                self.files.push(FileCheckpoint {
                    fingerprint,
                    path: path.to_owned(),
                    offset: 0,
                    line: 0,
                    done: false,
                });
                self.started.insert(self.files.len() - 1);
                self.files.len() - 1
            }
        };
        let known = &mut self.files[slot];
        if known.fingerprint != fingerprint || known.path != path {
            known.fingerprint = fingerprint;
            known.path = path.to_owned();
            self.dirty = true;
        }
        Start::At {
            slot,
            offset: known.offset,
            line: known.line,
            done: known.done,
        }
    }

    /// Forgets what was acknowledged of `slot`'s file: it is read again from its start
    /// (it shrank below its acknowledged offset: a new file with the same beginning).
    pub(crate) fn restart(&mut self, slot: usize) {
        let known = &mut self.files[slot];
        (known.offset, known.line, known.done) = (0, 0, false);
        self.dirty = true;
    }

    /// The next position was returned: a record of `slot`'s file ending at `offset`
    /// and `line`, or `None` for a record of no file.
    pub(crate) fn returned(&mut self, end: Option<(usize, u64, u64)>) {
        self.pending.push_back(end);
        self.returned += 1;
    }

    /// `slot`'s file was read to its end at `offset` and `line`: it is done once every
    /// record returned so far is acknowledged.
    pub(crate) fn file_ended(&mut self, slot: usize, offset: u64, line: u64) {
        self.ends.push_back((self.returned, slot, offset, line));
    }

    /// Every position before `position` is finished: moves the files' offsets, and
    /// writes the checkpoint if the interval has passed.
    pub(crate) fn ack(&mut self, position: u64) {
        while self.first < position {
            let Some(end) = self.pending.pop_front() else {
                break;
            };
            self.first += 1;
            if let Some((slot, offset, line)) = end {
                let known = &mut self.files[slot];
                (known.offset, known.line) = (offset, line);
                self.dirty = true;
            }
        }
        self.settle_ends();
        self.stats.acked.store(self.first, Relaxed);
        if self.last_save.elapsed() >= self.interval {
            self.save();
        }
    }

    /// The source is done: files ended with every record acknowledged (or with none
    /// returned) are marked done, and the checkpoint is written.
    pub(crate) fn close(&mut self) {
        self.settle_ends();
        self.save();
    }

    fn settle_ends(&mut self) {
        while let Some(&(at, slot, offset, line)) = self.ends.front() {
            if at > self.first {
                break;
            }
            self.ends.pop_front();
            let known = &mut self.files[slot];
            (known.offset, known.line, known.done) = (offset, line, true);
            self.dirty = true;
        }
    }

    /// Writes the checkpoint if anything changed since the last write; a failure is
    /// kept in the stats and retried next time.
    fn save(&mut self) {
        let Some(store) = &self.store else {
            return;
        };
        if !self.dirty {
            return;
        }
        self.last_save = Instant::now();
        let checkpoint = Checkpoint {
            files: self.files.clone(),
        };
        let outcome = store.save(&self.id, &checkpoint);
        let mut error = self
            .stats
            .checkpoint_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match outcome {
            Ok(()) => {
                self.dirty = false;
                *error = None;
            }
            Err(failure) => *error = Some(failure.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> Ledger {
        Ledger::load(String::new(), None, Duration::MAX, Arc::default()).unwrap()
    }

    #[test]
    fn an_ack_moves_each_file_to_its_last_finished_record_only() {
        let mut ledger = ledger();
        let Start::At { slot: a, .. } = ledger.start(b"aaaa", "a") else {
            panic!()
        };
        ledger.returned(Some((a, 10, 1)));
        ledger.returned(Some((a, 20, 2)));
        ledger.file_ended(a, 20, 2);
        let Start::At { slot: b, .. } = ledger.start(b"bbbb", "b") else {
            panic!()
        };
        ledger.returned(Some((b, 5, 1)));
        ledger.ack(1);
        assert_eq!((ledger.files[a].offset, ledger.files[a].done), (10, false));
        ledger.ack(2);
        assert_eq!((ledger.files[a].offset, ledger.files[a].done), (20, true));
        assert_eq!(ledger.files[b].offset, 0);
        ledger.ack(3);
        assert_eq!((ledger.files[b].offset, ledger.files[b].line), (5, 1));
    }

    #[test]
    fn a_grown_short_file_is_recognised_and_a_copy_in_the_same_run_is_a_duplicate() {
        let mut ledger = ledger();
        let Start::At { slot, .. } = ledger.start(b"one\n", "f") else {
            panic!()
        };
        ledger.returned(Some((slot, 4, 1)));
        ledger.ack(1);
        ledger.started.clear();
        let grown = ledger.start(b"one\ntwo\n", "f");
        assert_eq!(
            grown,
            Start::At {
                slot,
                offset: 4,
                line: 1,
                done: false
            }
        );
        assert_eq!(
            ledger.files[slot].fingerprint,
            Fingerprint::of(b"one\ntwo\n")
        );
        assert_eq!(ledger.start(b"one\ntwo\n", "copy"), Start::Duplicate);
        assert!(matches!(
            ledger.start(b"other", "g"),
            Start::At { offset: 0, .. }
        ));
    }
}
