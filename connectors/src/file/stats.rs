//! A file source's figures, shared with whoever reports them (the run's summary,
//! the dashboard's progress bar) while the source thread reads.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use brigade_controller::Progress;

/// Counts a file source keeps as it reads; read them at any time.
#[derive(Debug, Default)]
pub struct FileStats {
    /// Files its glob matched.
    pub files_total: AtomicU64,
    /// Their sizes on disk, bytes.
    pub bytes_total: AtomicU64,
    /// Files read to their end (or to a read error) in this run.
    pub files_read: AtomicU64,
    /// Files skipped as already read (by a checkpoint, or a copy of one read in this run).
    pub files_skipped: AtomicU64,
    /// Bytes on disk read, or skipped as already read (compressed bytes for gzip).
    pub bytes_read: AtomicU64,
    /// Records (lines or CSV rows) handed to the pipeline.
    pub records: AtomicU64,
    /// Lines too long or unreadable (truncated gzip, I/O errors), handed on as
    /// [`RawData::Unreadable`](crate::raw::RawData::Unreadable) to be dead-lettered.
    pub unreadable: AtomicU64,
    /// The acknowledged position: records before it are finished.
    pub acked: AtomicU64,
    /// The last failure to write the checkpoint, if the latest attempt failed (the
    /// source retries at the next interval and on drop).
    pub checkpoint_error: Mutex<Option<String>>,
}

impl FileStats {
    /// The last failure to write the checkpoint, if the latest attempt failed.
    pub fn last_checkpoint_error(&self) -> Option<String> {
        self.checkpoint_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Files and bytes done of the totals.
    pub fn progress(&self) -> Progress {
        Progress {
            files_done: self.files_read.load(Relaxed) + self.files_skipped.load(Relaxed),
            files_total: Some(self.files_total.load(Relaxed)),
            bytes_done: self.bytes_read.load(Relaxed),
            bytes_total: Some(self.bytes_total.load(Relaxed)),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Relaxed);
    }
}
