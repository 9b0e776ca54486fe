//! The JSON-lines sinks: a file (written, flushed and fsynced per batch before the
//! batch is acknowledged) and standard output.
//!
//! A sink's workers share one opened [`FileSink`] ([`FileSink::share`]): the file is
//! opened with `O_APPEND`, each batch is appended under a lock shared by the workers,
//! and a write that fails part way (a full disk, a file size limit) is taken back, so
//! that the retry appends the batch whole, once. Each worker fsyncs outside the lock.
//!
//! A crash (`kill -9`, power loss) during a write may leave a torn last line, part of
//! a batch that was never acknowledged and will be written again from the checkpoint:
//! [`FileSink::repair_torn_tail`] cuts it off, once per run, before any worker opens
//! the file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;

use crate::writable::appendable;
use crate::{Problem, Record};

/// `[sink] type = "file"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The file, appended to (created if missing).
    pub path: PathBuf,
}

impl FileSinkConfig {
    /// What `brigade validate` reports: the file (relative to `base`) must be
    /// appendable, or creatable in an existing, writable directory. Leaves nothing
    /// behind.
    pub fn check(&self, base: &Path) -> Vec<Problem> {
        appendable(&base.join(&self.path))
            .err()
            .map(|message| Problem {
                part: "sink".to_owned(),
                message,
            })
            .into_iter()
            .collect()
    }
}

/// `[sink] type = "stdout"`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StdoutSinkConfig {}

/// Appends records to a file as JSON lines, durably per batch.
pub struct FileSink {
    file: File,
    /// Held while appending, by every [`FileSink::share`] of one opened file.
    appending: Arc<Mutex<()>>,
    path: PathBuf,
    buffer: Vec<u8>,
}

impl FileSink {
    /// Opens (creating if missing) `config.path`, relative to `base`, for appending.
    pub fn open(config: &FileSinkConfig, base: &Path) -> io::Result<FileSink> {
        let path = base.join(&config.path);
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|error| with_path(&path, error))?;
        Ok(FileSink {
            file,
            appending: Arc::default(),
            path,
            buffer: Vec::new(),
        })
    }

    /// Another handle on the same opened file, for another worker: its appends are
    /// serialised with this one's, so that a failed one can be taken back.
    pub fn share(&self) -> io::Result<FileSink> {
        Ok(FileSink {
            file: self
                .file
                .try_clone()
                .map_err(|e| with_path(&self.path, e))?,
            appending: Arc::clone(&self.appending),
            path: self.path.clone(),
            buffer: Vec::new(),
        })
    }

    /// Cuts a torn last line (one not ending in `\n`) off `config.path`, relative to
    /// `base`, and returns the bytes cut; a missing or empty file, or one ending in
    /// `\n`, is left alone. Call it once, before any worker opens the file: a torn
    /// tail is a batch a crash interrupted, never acknowledged, so written again.
    pub fn repair_torn_tail(config: &FileSinkConfig, base: &Path) -> io::Result<u64> {
        cut_torn_tail(&base.join(&config.path))
    }

    /// Writes each record's value as one JSON line, in one append, then flushes and
    /// fsyncs: when it returns `Ok`, the batch is on disk. An append that fails part
    /// way is cut off again, so the file never keeps part of a failed batch. Errors
    /// name the file.
    pub fn write(&mut self, batch: &[Record]) -> io::Result<()> {
        serialise(batch, &mut self.buffer);
        self.append()
            .and_then(|()| self.file.sync_data())
            .map_err(|error| with_path(&self.path, error))
    }

    fn append(&mut self) -> io::Result<()> {
        let _appending = self
            .appending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = self.file.metadata()?.len();
        match self.file.write_all(&self.buffer) {
            Ok(()) => self.file.flush(),
            Err(error) => match self.file.set_len(before) {
                Ok(()) => Err(error),
                Err(cut) => Err(io::Error::new(
                    error.kind(),
                    format!("{error}; and the partial batch could not be cut off: {cut}"),
                )),
            },
        }
    }
}

/// Writes records to standard output as JSON lines, one locked write per batch.
#[derive(Default)]
pub struct StdoutSink {
    buffer: Vec<u8>,
}

impl StdoutSink {
    /// A sink to this process's standard output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes each record's value as one JSON line and flushes.
    pub fn write(&mut self, batch: &[Record]) -> io::Result<()> {
        serialise(batch, &mut self.buffer);
        let mut stdout = io::stdout().lock();
        stdout.write_all(&self.buffer)?;
        stdout.flush()
    }
}

/// The length of `file`'s complete lines: up to and including its last `\n` (0 if
/// Cuts a torn last line (one not ending in `\n`) off the JSON-lines file at `path`
/// and returns the bytes cut; a missing or empty file, or one ending in `\n`, is left
/// alone. A torn tail is a write a crash interrupted: never acknowledged, so written
/// again by the next run.
pub(crate) fn cut_torn_tail(path: &Path) -> io::Result<u64> {
    let mut file = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(with_path(path, error)),
    };
    let length = file.metadata().map_err(|e| with_path(path, e))?.len();
    let keep = complete_length(&mut file, length).map_err(|e| with_path(path, e))?;
    if keep == length {
        return Ok(0);
    }
    file.set_len(keep)
        .and_then(|()| file.sync_all())
        .map_err(|error| with_path(path, error))?;
    Ok(length - keep)
}

/// none), reading backwards from `length` in blocks.
fn complete_length(file: &mut File, length: u64) -> io::Result<u64> {
    const BLOCK: u64 = 64 * 1024;
    let mut block = Vec::new();
    let mut end = length;
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        block.resize((end - start) as usize, 0);
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block)?;
        if let Some(last) = block.iter().rposition(|&byte| byte == b'\n') {
            return Ok(start + last as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

fn serialise(batch: &[Record], buffer: &mut Vec<u8>) {
    buffer.clear();
    for record in batch {
        // Writing a `Value` into a Vec cannot fail: its keys are strings.
        if serde_json::to_writer(&mut *buffer, &record.value).is_ok() {
            buffer.push(b'\n');
        }
    }
}

fn with_path(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::Origin;

    fn record(value: serde_json::Value) -> Record {
        Record {
            value,
            origin: Origin::Line {
                source: Arc::from("in"),
                line: 1,
            },
        }
    }

    #[test]
    fn batches_append_as_json_lines_across_handles() {
        let dir = tempfile::tempdir().unwrap();
        let config = FileSinkConfig {
            path: "out.jsonl".into(),
        };
        assert_eq!(config.check(dir.path()), []);
        let mut first = FileSink::open(&config, dir.path()).unwrap();
        let mut second = first.share().unwrap();
        first
            .write(&[record(json!({"a": 1})), record(json!("x\ny"))])
            .unwrap();
        second.write(&[record(json!([1, 2]))]).unwrap();
        first.write(&[]).unwrap();
        let text = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
        assert_eq!(text, "{\"a\":1}\n\"x\\ny\"\n[1,2]\n");
    }

    #[test]
    fn a_torn_last_line_is_cut_and_a_whole_file_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let config = FileSinkConfig {
            path: "out.jsonl".into(),
        };
        let path = dir.path().join("out.jsonl");
        assert_eq!(FileSink::repair_torn_tail(&config, dir.path()).unwrap(), 0);
        assert!(!path.exists(), "a missing file is not created");

        std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n{\"a\"").unwrap();
        assert_eq!(FileSink::repair_torn_tail(&config, dir.path()).unwrap(), 4);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        assert_eq!(FileSink::repair_torn_tail(&config, dir.path()).unwrap(), 0);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );

        std::fs::write(&path, "no newline at all").unwrap();
        assert_eq!(FileSink::repair_torn_tail(&config, dir.path()).unwrap(), 17);
        assert_eq!(std::fs::read(&path).unwrap(), b"");

        // A torn line longer than one backwards read still finds the line before it.
        let long = format!("[1]\n{}", "x".repeat(200_000));
        std::fs::write(&path, &long).unwrap();
        assert_eq!(
            FileSink::repair_torn_tail(&config, dir.path()).unwrap(),
            200_000
        );
        let mut sink = FileSink::open(&config, dir.path()).unwrap();
        sink.write(&[record(json!(2))]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[1]\n2\n");
    }

    #[test]
    fn an_unopenable_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = FileSinkConfig {
            path: "missing/out.jsonl".into(),
        };
        let error = FileSink::open(&config, dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("missing/out.jsonl"), "{error}");
        assert_eq!(config.check(dir.path())[0].part, "sink");
    }
}
