//! The file source: reads the files a glob matches, one after another, splitting them
//! into [`Raw`] records (parsing is the decode stage's work), and checkpoints what the
//! runtime acknowledges.
//!
//! Resuming: a file already read to its end is skipped (a gzip file) or read from its
//! acknowledged offset (a plain file, so lines appended since are read); a partly read
//! file continues after its last acknowledged record, with its line numbers (a gzip
//! file is decompressed up to that offset and the bytes discarded). A plain file now
//! shorter than its acknowledged offset is a new file and is read from its start.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use brigade_controller::Progress;
use brigade_runtime::Source;
use flate2::read::MultiGzDecoder;

use super::checkpoint::{CheckpointError, CheckpointStore};
use super::csv_rows::{CsvPiece, CsvRows};
use super::fingerprint::read_prefix;
use super::ledger::{Ledger, Start};
use super::lines::{LineReader, Piece};
use super::stats::FileStats;
use super::{FileOrder, FileSourceConfig, Format, DEFAULT_MAX_LINE};
use crate::raw::{Raw, RawData};
use crate::Origin;

/// How much of a file is read at once.
const READ_BUFFER: usize = 256 * 1024;

/// How often the checkpoint is written unless the configuration says otherwise.
const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// A file source that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The glob is not a valid pattern.
    #[error("source: the glob `{pattern}` is invalid: {message}")]
    Glob {
        /// The pattern, resolved against the pipeline file's directory.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// A matched path cannot be examined.
    #[error("source: cannot read {path}: {source}")]
    Stat {
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The checkpoint cannot be read.
    #[error("source: {0}")]
    Checkpoint(#[from] CheckpointError),
}

/// Reads the files a glob matches as [`Raw`] lines or CSV rows; see the module docs.
pub struct FileSource {
    format: Format,
    max_line: usize,
    files: Vec<Candidate>,
    next_file: usize,
    current: Option<Current>,
    ledger: Ledger,
    stats: Arc<FileStats>,
}

struct Candidate {
    path: PathBuf,
    label: Arc<str>,
    size: u64,
}

struct Current {
    slot: usize,
    label: Arc<str>,
    gzip: bool,
    reader: Reader,
}

type Input = Box<dyn Read + Send>;

enum Reader {
    Lines(LineReader<BufReader<Input>>),
    Csv(CsvRows<Input>),
}

/// One step of the current file.
enum Step {
    Data(RawData, u64),
    Blank,
    TooLong(u64),
    Broken(String, u64),
    End,
}

impl FileSource {
    /// Matches `config.path` (relative to `base`, the pipeline file's directory) and
    /// loads the source's checkpoint from `checkpoints`, if given. No file is opened
    /// yet. A glob that matches nothing yields no records (the healthcheck reports it).
    pub fn open(
        config: &FileSourceConfig,
        base: &Path,
        checkpoints: Option<CheckpointStore>,
    ) -> Result<FileSource, FileError> {
        let files = matching_files(config, base)?;
        let stats = Arc::new(FileStats::default());
        stats.files_total.store(files.len() as u64, Relaxed);
        stats
            .bytes_total
            .store(files.iter().map(|file| file.size).sum(), Relaxed);
        let id = config.id.clone().unwrap_or_else(|| config.path.clone());
        let interval = config
            .checkpoint_interval
            .map_or(DEFAULT_CHECKPOINT_INTERVAL, |span| span.0);
        let ledger = Ledger::load(id, checkpoints, interval, Arc::clone(&stats))?;
        let max_line = config.max_line.map_or(DEFAULT_MAX_LINE, |size| {
            usize::try_from(size.0).unwrap_or(usize::MAX)
        });
        Ok(FileSource {
            format: config.format,
            max_line,
            files,
            next_file: 0,
            current: None,
            ledger,
            stats,
        })
    }

    /// The source's figures, updated as it reads.
    pub fn stats(&self) -> Arc<FileStats> {
        Arc::clone(&self.stats)
    }

    /// Files and bytes read of the totals matched.
    pub fn progress(&self) -> Progress {
        self.stats.progress()
    }

    /// Opens the next file, or says why it is skipped (`Ok(None)`) or unreadable.
    fn start(&mut self, index: usize) -> Result<Option<Current>, Raw> {
        let candidate = &self.files[index];
        let label = Arc::clone(&candidate.label);
        let broken = |line: u64, error: io::Error| Raw {
            data: RawData::Unreadable(format!("cannot read the file: {error}")),
            origin: Origin::Line {
                source: Arc::clone(&candidate.label),
                line,
            },
        };
        let prefix = read_prefix(&candidate.path).map_err(|error| broken(1, error))?;
        if prefix.is_empty() {
            FileStats::add(&self.stats.files_read, 1);
            return Ok(None);
        }
        let Start::At {
            slot,
            mut offset,
            mut line,
            done,
        } = self.ledger.start(&prefix, &label)
        else {
            return Ok(self.skip(index));
        };
        let gzip = candidate.path.extension().is_some_and(|ext| ext == "gz");
        if gzip && done {
            return Ok(self.skip(index));
        }
        let path = candidate.path.clone();
        let input = match open_at(&path, gzip, offset, Some(&self.stats)) {
            Ok(Some(input)) => input,
            Ok(None) => {
                self.ledger.restart(slot);
                (offset, line) = (0, 0);
                open_at(&path, gzip, 0, Some(&self.stats))
                    .and_then(|input| input.ok_or_else(|| io::Error::other("the file vanished")))
                    .map_err(|error| broken(1, error))?
            }
            Err(error) => return Err(broken(line + 1, error)),
        };
        let reader = match self.format {
            Format::Lines | Format::Jsonl => Reader::Lines(LineReader::new(
                BufReader::with_capacity(READ_BUFFER, input),
                offset,
                line,
                self.max_line,
            )),
            Format::Csv => {
                let header = if offset == 0 {
                    None
                } else {
                    let mut first = open_at(&path, gzip, 0, None)
                        .and_then(|input| {
                            input.ok_or_else(|| io::Error::other("the file vanished"))
                        })
                        .map(|input| CsvRows::new(input, None, 0, 0, self.max_line))
                        .map_err(|error| broken(1, error))?;
                    first.next_piece();
                    let header = first.header().cloned().ok_or_else(|| {
                        broken(1, io::Error::other("the CSV header cannot be read again"))
                    })?;
                    Some(header)
                };
                Reader::Csv(CsvRows::new(input, header, offset, line, self.max_line))
            }
        };
        Ok(Some(Current {
            slot,
            label,
            gzip,
            reader,
        }))
    }

    fn skip(&mut self, index: usize) -> Option<Current> {
        FileStats::add(&self.stats.files_skipped, 1);
        FileStats::add(&self.stats.bytes_read, self.files[index].size);
        None
    }

    fn raw(label: &Arc<str>, data: RawData, line: u64) -> Raw {
        Raw {
            data,
            origin: Origin::Line {
                source: Arc::clone(label),
                line,
            },
        }
    }
}

impl Current {
    fn step(&mut self, format: Format) -> Step {
        match &mut self.reader {
            Reader::Lines(reader) => match reader.next_piece() {
                Piece::Line(bytes)
                    if format == Format::Jsonl && bytes.iter().all(u8::is_ascii_whitespace) =>
                {
                    Step::Blank
                }
                Piece::Line(bytes) => Step::Data(RawData::Line(bytes), reader.line()),
                Piece::TooLong => Step::TooLong(reader.line()),
                Piece::Broken(error) => {
                    Step::Broken(describe(&error, self.gzip), reader.line() + 1)
                }
                Piece::End => Step::End,
            },
            Reader::Csv(rows) => match rows.next_piece() {
                CsvPiece::Row { fields, line } => {
                    let header = rows.header().cloned().unwrap_or_else(|| Arc::from([]));
                    Step::Data(RawData::CsvRow { header, fields }, line)
                }
                CsvPiece::TooLong { line } => Step::TooLong(line),
                CsvPiece::Broken { line, error } => Step::Broken(error, line),
                CsvPiece::End => Step::End,
            },
        }
    }

    /// The offset and line count after the last step.
    fn end(&self) -> (u64, u64) {
        match &self.reader {
            Reader::Lines(reader) => (reader.offset(), reader.line()),
            Reader::Csv(rows) => (rows.offset(), rows.line()),
        }
    }
}

fn describe(error: &io::Error, gzip: bool) -> String {
    if gzip {
        format!("the gzip stream is truncated or corrupt: {error}")
    } else {
        format!("read error: {error}")
    }
}

impl Source for FileSource {
    type Item = Raw;

    fn next(&mut self) -> Option<Raw> {
        loop {
            let Some(current) = self.current.as_mut() else {
                let index = self.next_file;
                if index >= self.files.len() {
                    return None;
                }
                self.next_file += 1;
                match self.start(index) {
                    Ok(started) => self.current = started,
                    Err(raw) => {
                        FileStats::add(&self.stats.files_read, 1);
                        FileStats::add(&self.stats.unreadable, 1);
                        self.ledger.returned(None);
                        return Some(raw);
                    }
                }
                continue;
            };
            let step = current.step(self.format);
            let (offset, line_count) = current.end();
            let end = Some((current.slot, offset, line_count));
            let raw = match step {
                Step::Blank => continue,
                Step::Data(data, line) => {
                    FileStats::add(&self.stats.records, 1);
                    Self::raw(&current.label, data, line)
                }
                Step::TooLong(line) => {
                    FileStats::add(&self.stats.unreadable, 1);
                    let message =
                        format!("longer than max_line ({} bytes); skipped", self.max_line);
                    Self::raw(&current.label, RawData::Unreadable(message), line)
                }
                Step::Broken(message, line) => {
                    FileStats::add(&self.stats.unreadable, 1);
                    let raw = Self::raw(&current.label, RawData::Unreadable(message), line);
                    let slot = current.slot;
                    self.ledger.returned(end);
                    self.ledger.file_ended(slot, offset, line_count);
                    FileStats::add(&self.stats.files_read, 1);
                    self.current = None;
                    return Some(raw);
                }
                Step::End => {
                    self.ledger.file_ended(current.slot, offset, line_count);
                    FileStats::add(&self.stats.files_read, 1);
                    self.current = None;
                    continue;
                }
            };
            self.ledger.returned(end);
            return Some(raw);
        }
    }

    fn ack(&mut self, position: u64) {
        self.ledger.ack(position);
    }

    fn progress(&self) -> Option<Progress> {
        Some(self.stats.progress())
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        self.ledger.close();
    }
}

/// The file's contents from `offset` (decompressed bytes for gzip), or `None` if it
/// is shorter than that. Bytes read from disk are counted in `stats`, if given.
fn open_at(
    path: &Path,
    gzip: bool,
    offset: u64,
    stats: Option<&Arc<FileStats>>,
) -> io::Result<Option<Input>> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    if !gzip {
        if offset > size {
            return Ok(None);
        }
        file.seek(SeekFrom::Start(offset))?;
        if let Some(stats) = stats {
            FileStats::add(&stats.bytes_read, offset);
        }
    }
    let file: Input = match stats {
        Some(stats) => Box::new(Counted {
            inner: file,
            stats: Arc::clone(stats),
        }),
        None => Box::new(file),
    };
    if !gzip {
        return Ok(Some(file));
    }
    let mut decoder = MultiGzDecoder::new(BufReader::with_capacity(READ_BUFFER, file));
    let skipped = io::copy(&mut (&mut decoder).take(offset), &mut io::sink())?;
    Ok((skipped == offset).then(|| Box::new(decoder) as Input))
}

/// A file that counts the bytes read from it.
struct Counted {
    inner: File,
    stats: Arc<FileStats>,
}

impl Read for Counted {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        FileStats::add(&self.stats.bytes_read, read as u64);
        Ok(read)
    }
}

/// The files `config.path` matches under `base`, in the configured order.
fn matching_files(config: &FileSourceConfig, base: &Path) -> Result<Vec<Candidate>, FileError> {
    let pattern_text = resolve(&config.path, base);
    let glob_error = |message: String| FileError::Glob {
        pattern: pattern_text.clone(),
        message,
    };
    let paths = glob::glob(&pattern_text).map_err(|error| glob_error(error.to_string()))?;
    let mut files = Vec::new();
    for entry in paths {
        let path = entry.map_err(|error| FileError::Stat {
            path: error.path().to_owned(),
            source: error.into(),
        })?;
        let metadata = path.metadata().map_err(|source| FileError::Stat {
            path: path.clone(),
            source,
        })?;
        if !metadata.is_file() {
            continue;
        }
        let modified = metadata.modified().ok();
        let label: Arc<str> = Arc::from(
            path.strip_prefix(base)
                .unwrap_or(&path)
                .to_string_lossy()
                .as_ref(),
        );
        files.push((
            modified,
            Candidate {
                path,
                label,
                size: metadata.len(),
            },
        ));
    }
    match config.order {
        FileOrder::Name => files.sort_by(|a, b| a.1.path.cmp(&b.1.path)),
        FileOrder::Modified => {
            files.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.path.cmp(&b.1.path)));
        }
    }
    Ok(files.into_iter().map(|(_, candidate)| candidate).collect())
}

/// The glob `pattern` resolved against `base` (whose own characters are escaped).
pub(crate) fn resolve(pattern: &str, base: &Path) -> String {
    if Path::new(pattern).is_absolute() || base.as_os_str().is_empty() {
        return pattern.to_owned();
    }
    let base = glob::Pattern::escape(&base.to_string_lossy());
    format!("{}/{pattern}", base.trim_end_matches('/'))
}
