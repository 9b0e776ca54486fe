//! The dead-letter file: one JSON line per record that could not be finished, written
//! durably (flushed and fsynced) before the record counts as finished.
//!
//! Each line is
//! `{"stage","error","cause","attempts","position","origin","record"}`: `cause` is the
//! runtime's [`DeadLetterCause`] (`{"kind": ...}`); `attempts` the calls made (the
//! retries' count when they ran out, 0 for a record refused as too large, else 1);
//! `origin` the file and line (`null` if unknown); `record` the record's JSON value,
//! or for an undecoded line its text (lossy UTF-8, with the exact bytes in
//! `record_base64` when they are not UTF-8), for a CSV row its fields, `null` when
//! the record was lost to a panic.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use base64::Engine;
use brigade_runtime::{DeadLetter, DeadLetterCause};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::out::cut_torn_tail;
use crate::raw::{Raw, RawData};
use crate::units::Size;
use crate::writable::appendable;
use crate::{Problem, Record};

/// `[dead_letter]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// The file, appended to (created if missing).
    pub path: PathBuf,
    /// The largest the file may grow to; past it admission stops with a clear message.
    /// Unlimited by default.
    #[serde(default)]
    pub max_size: Option<Size>,
}

impl DeadLetterConfig {
    /// What `brigade validate` reports: the file (relative to `base`) must be
    /// appendable, or creatable in an existing, writable directory. Leaves nothing
    /// behind.
    pub fn check(&self, base: &Path) -> Vec<Problem> {
        appendable(&base.join(&self.path))
            .err()
            .map(|message| Problem {
                part: "dead_letter".to_owned(),
                message,
            })
            .into_iter()
            .collect()
    }
}

/// A dead letter that could not be written: admission must stop.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterFileError {
    /// The file cannot be opened.
    #[error("cannot open the dead-letter file {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A letter cannot be written or synced.
    #[error("cannot write to the dead-letter file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The letter would take the file past its `max_size`; it was not written.
    #[error("the dead-letter file {path} is full ({size} bytes, max_size {max_size})")]
    Full {
        /// The file.
        path: PathBuf,
        /// Its size, bytes.
        size: u64,
        /// The configured limit, bytes.
        max_size: u64,
    },
}

/// Appends dead letters to a file as JSON lines.
pub struct DeadLetterFile {
    file: File,
    path: PathBuf,
    size: u64,
    max_size: Option<u64>,
    buffer: Vec<u8>,
}

impl DeadLetterFile {
    /// Opens (creating if missing) `config.path`, relative to `base`, for appending.
    pub fn open(config: &DeadLetterConfig, base: &Path) -> Result<Self, DeadLetterFileError> {
        let path = base.join(&config.path);
        let open = || -> io::Result<(File, u64)> {
            // A letter a crash tore was never acknowledged: its record comes again.
            cut_torn_tail(&path)?;
            let file = OpenOptions::new().append(true).create(true).open(&path)?;
            let size = file.metadata()?.len();
            Ok((file, size))
        };
        let (file, size) = open().map_err(|source| DeadLetterFileError::Open {
            path: path.clone(),
            source,
        })?;
        Ok(Self {
            file,
            path,
            size,
            max_size: config.max_size.map(|size| size.0),
            buffer: Vec::new(),
        })
    }

    /// Writes `letter` as one JSON line, flushed and fsynced; refuses it when the file
    /// would grow past `max_size`.
    pub fn write(&mut self, letter: &DeadLetter) -> Result<(), DeadLetterFileError> {
        self.buffer.clear();
        let line = letter_json(letter);
        if let Err(error) = serde_json::to_writer(&mut self.buffer, &line) {
            return Err(DeadLetterFileError::Write {
                path: self.path.clone(),
                source: error.into(),
            });
        }
        self.buffer.push(b'\n');
        let length = self.buffer.len() as u64;
        if let Some(max_size) = self.max_size {
            if self.size + length > max_size {
                return Err(DeadLetterFileError::Full {
                    path: self.path.clone(),
                    size: self.size,
                    max_size,
                });
            }
        }
        let written = match self.file.write_all(&self.buffer) {
            Ok(()) => self.file.flush().and_then(|()| self.file.sync_data()),
            // Part of the line may be in the file: cut it, so the next letter starts
            // on a line of its own.
            Err(error) => self.file.set_len(self.size).and(Err(error)),
        };
        written.map_err(|source| DeadLetterFileError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.size += length;
        Ok(())
    }
}

fn letter_json(letter: &DeadLetter) -> Value {
    let attempts = match letter.cause {
        DeadLetterCause::RetriesExhausted { attempts } => attempts,
        DeadLetterCause::TooLarge { .. } => 0,
        _ => 1,
    };
    let mut line = json!({
        "stage": letter.stage,
        "error": letter.error,
        "cause": letter.cause,
        "attempts": attempts,
        "position": letter.position,
        "origin": Value::Null,
        "record": Value::Null,
    });
    let (origin, record, bytes) = if let Some(record) = letter.record::<Record>() {
        (Some(&record.origin), record.value.clone(), None)
    } else if let Some(raw) = letter.record::<Raw>() {
        let (record, bytes) = raw_json(raw);
        (Some(&raw.origin), record, bytes)
    } else {
        (None, Value::Null, None)
    };
    if let Some(origin) = origin {
        line["origin"] = Value::String(origin.to_string());
    }
    line["record"] = record;
    if let Some(bytes) = bytes {
        line["record_base64"] =
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    line
}

/// An undecoded record as JSON, and its bytes when they are not UTF-8.
fn raw_json(raw: &Raw) -> (Value, Option<&[u8]>) {
    match &raw.data {
        RawData::Line(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => (Value::String(text.to_owned()), None),
            Err(_) => (
                Value::String(String::from_utf8_lossy(bytes).into_owned()),
                Some(bytes),
            ),
        },
        RawData::CsvRow { fields, .. } => (
            fields
                .iter()
                .map(|field| Value::String(String::from_utf8_lossy(field).into_owned()))
                .collect(),
            None,
        ),
        RawData::Value(value) => (value.clone(), None),
        RawData::Unreadable(_) => (Value::Null, None),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use brigade_runtime::{Failure, Pipeline};

    use super::*;
    use crate::file::Format;
    use crate::raw::decode;
    use crate::Origin;

    fn raw(line: u64, bytes: &[u8]) -> Raw {
        Raw {
            data: RawData::Line(bytes.to_vec()),
            origin: Origin::Line {
                source: Arc::from("in.jsonl"),
                line,
            },
        }
    }

    /// Runs raw lines through a real pipeline whose decode stage dead-letters bad
    /// ones, writing them to the dead-letter file; returns the letters' errors.
    fn run(inputs: Vec<Raw>, file: DeadLetterFile) -> Vec<String> {
        let file = Arc::new(Mutex::new(file));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let (writer, sink_errors) = (Arc::clone(&file), Arc::clone(&errors));
        Pipeline::from_iter(inputs)
            .on_dead_letter(move |letter| {
                if let Err(error) = writer.lock().unwrap().write(&letter) {
                    sink_errors.lock().unwrap().push(error.to_string());
                }
            })
            .try_map("decode", |raw: Raw| {
                decode(raw, Format::Jsonl)
                    .map_err(|error| Failure::permanent(error.raw, error.error))
            })
            .sink("discard", drop)
            .run()
            .unwrap();
        let errors = errors.lock().unwrap().clone();
        errors
    }

    #[test]
    fn letters_carry_stage_error_origin_and_record_durably() {
        let dir = tempfile::tempdir().unwrap();
        let config = DeadLetterConfig {
            path: "dead.jsonl".into(),
            max_size: None,
        };
        assert_eq!(config.check(dir.path()), []);
        let file = DeadLetterFile::open(&config, dir.path()).unwrap();
        let row = Raw {
            data: RawData::CsvRow {
                header: Arc::from(vec!["a".to_owned(), "b".to_owned()]),
                fields: csv::ByteRecord::from(vec!["x"]),
            },
            origin: Origin::Line {
                source: Arc::from("in.csv"),
                line: 9,
            },
        };
        let inputs = vec![
            raw(1, b"{\"ok\":1}"),
            raw(2, b"{bad"),
            raw(3, b"\xff\""),
            row,
        ];
        assert_eq!(run(inputs, file), Vec::<String>::new());
        let text = std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap();
        let letters: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(letters.len(), 3, "{text}");
        assert_eq!(letters[0]["stage"], "decode");
        assert_eq!(letters[0]["origin"], "in.jsonl:2");
        assert_eq!(letters[0]["record"], "{bad");
        assert_eq!(letters[0]["position"], 1);
        assert_eq!(letters[0]["attempts"], 1);
        assert_eq!(letters[0]["cause"], json!({"kind": "permanent"}));
        assert!(letters[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON"));
        assert_eq!(letters[1]["origin"], "in.jsonl:3");
        assert_eq!(letters[1]["record"], "\u{fffd}\"");
        assert_eq!(letters[1]["record_base64"], "/yI=");
        assert_eq!(letters[2]["origin"], "in.csv:9");
        assert_eq!(letters[2]["record"], json!(["x"]));
        assert_eq!(
            letters[2]["error"],
            "the CSV row has 1 fields, the header has 2"
        );
    }

    #[test]
    fn a_full_file_refuses_letters_with_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let config = DeadLetterConfig {
            path: "dead.jsonl".into(),
            max_size: Some(Size(250)),
        };
        let file = DeadLetterFile::open(&config, dir.path()).unwrap();
        let inputs = (1..=5).map(|line| raw(line, b"nope")).collect();
        let errors = run(inputs, file);
        assert!(!errors.is_empty());
        assert!(
            errors[0].contains("is full") && errors[0].contains("dead.jsonl"),
            "{errors:?}"
        );
        let size = std::fs::metadata(dir.path().join("dead.jsonl"))
            .unwrap()
            .len();
        assert!(size <= 250 && size > 0, "{size}");
    }

    #[test]
    fn an_unwritable_place_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let config = DeadLetterConfig {
            path: "no/dead.jsonl".into(),
            max_size: None,
        };
        let error = DeadLetterFile::open(&config, dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("no/dead.jsonl"), "{error}");
        assert_eq!(config.check(dir.path())[0].part, "dead_letter");
    }

    #[test]
    fn a_letter_torn_by_a_crash_is_cut_when_the_file_opens_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        std::fs::write(&path, "{\"stage\":\"decode\"}\n{\"stage\":\"de").unwrap();
        let config = DeadLetterConfig {
            path: "dead.jsonl".into(),
            max_size: None,
        };
        let file = DeadLetterFile::open(&config, dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"stage\":\"decode\"}\n"
        );
        let errors = run(vec![raw(1, b"nope")], file);
        assert!(errors.is_empty(), "{errors:?}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        for line in text.lines() {
            serde_json::from_str::<Value>(line).unwrap();
        }
    }
}
