//! Checkpoints of file sources: per file (by fingerprint), the acknowledged position,
//! one versioned JSON file per source in a directory, replaced atomically.
//!
//! ```json
//! {"version":1,"source":"data/*.jsonl","files":[
//!   {"fingerprint":{"len":1024,"hash":123},"path":"data/a.jsonl","offset":4096,"line":80,"done":false}]}
//! ```
//!
//! `offset` is the byte after the last acknowledged record (decompressed bytes for a
//! gzip file), `line` that record's line; `done` says the file was read to its end and
//! every record of it acknowledged. Only acknowledged positions are written, never
//! what was merely read.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fingerprint::{fnv1a, Fingerprint};
use crate::writable::writable_dir;
use crate::Problem;

/// The version of the checkpoint file format this build reads and writes.
pub const VERSION: u32 = 1;

/// A directory of checkpoints, one file per source.
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    dir: PathBuf,
}

/// What a source has acknowledged, per file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every file the source has acknowledged records of.
    pub files: Vec<FileCheckpoint>,
}

/// One file's acknowledged position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileCheckpoint {
    /// Which file, whatever its path now.
    pub fingerprint: Fingerprint,
    /// Its path when last read (for people; files are matched by fingerprint).
    pub path: String,
    /// The byte after the last acknowledged record (decompressed for gzip).
    pub offset: u64,
    /// The last acknowledged record's line (lines before `offset`).
    pub line: u64,
    /// Read to its end, every record acknowledged.
    pub done: bool,
}

/// A checkpoint that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The directory cannot be created.
    #[error("cannot create the checkpoint directory {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A checkpoint file cannot be read or written.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A checkpoint file is not a checkpoint (it is not reset: move it away to
    /// start over).
    #[error("checkpoint {path} is corrupt ({message}); move it away to read from the start")]
    Corrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    source: String,
    files: Vec<FileCheckpoint>,
}

impl CheckpointStore {
    /// The store in `dir`, created if missing.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        fs::create_dir_all(dir).map_err(|source| CheckpointError::Directory {
            path: dir.to_owned(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// The file holding `source`'s checkpoint: its id made file-name safe, and a
    /// hash of the id so two ids never share a file.
    pub fn path_for(&self, source: &str) -> PathBuf {
        let safe: String = source
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        self.dir
            .join(format!("{safe}-{:016x}.json", fnv1a(source.as_bytes())))
    }

    /// `source`'s checkpoint; empty when it has none yet.
    pub fn load(&self, source: &str) -> Result<Checkpoint, CheckpointError> {
        let path = self.path_for(source);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(Checkpoint::default())
            }
            Err(source) => return Err(CheckpointError::Io { path, source }),
        };
        parse(&path, &text)
    }

    /// Replaces `source`'s checkpoint atomically: a temporary file in the same
    /// directory, fsynced, renamed over the old one, and the directory fsynced.
    pub fn save(&self, source: &str, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
        let path = self.path_for(source);
        let temporary = path.with_extension("json.tmp");
        let on_disk = OnDisk {
            version: VERSION,
            source: source.to_owned(),
            files: checkpoint.files.clone(),
        };
        let io_error = |source| CheckpointError::Io {
            path: path.clone(),
            source,
        };
        let text = serde_json::to_vec(&on_disk)
            .map_err(io::Error::from)
            .map_err(io_error)?;
        let mut file = File::create(&temporary).map_err(io_error)?;
        file.write_all(&text).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        fs::rename(&temporary, &path).map_err(io_error)?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error)
    }

    /// What `brigade validate` reports of a checkpoint directory: it must be a
    /// writable directory (or creatable), and every checkpoint in it readable.
    pub fn check_dir(path: &Path) -> Vec<Problem> {
        let problem = |message| Problem {
            part: "checkpoint".to_owned(),
            message,
        };
        if !path.exists() {
            let parent = match path.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            return writable_dir(parent)
                .err()
                .map(|message| problem(format!("cannot create {}: {message}", path.display())))
                .into_iter()
                .collect();
        }
        if let Err(message) = writable_dir(path) {
            return vec![problem(message)];
        }
        let entries = match fs::read_dir(path) {
            Ok(entries) => entries,
            Err(error) => return vec![problem(format!("cannot list {}: {error}", path.display()))],
        };
        let mut problems = Vec::new();
        for entry in entries.flatten() {
            let file = entry.path();
            if file.extension().is_some_and(|ext| ext == "json") {
                let checked = fs::read(&file)
                    .map_err(|source| CheckpointError::Io {
                        path: file.clone(),
                        source,
                    })
                    .and_then(|text| parse(&file, &text));
                if let Err(error) = checked {
                    problems.push(problem(error.to_string()));
                }
            }
        }
        problems
    }
}

fn parse(path: &Path, text: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let corrupt = |message: String| CheckpointError::Corrupt {
        path: path.to_owned(),
        message,
    };
    let on_disk: OnDisk =
        serde_json::from_slice(text).map_err(|error| corrupt(error.to_string()))?;
    if on_disk.version != VERSION {
        return Err(corrupt(format!(
            "version {} where this build reads version {VERSION}",
            on_disk.version
        )));
    }
    Ok(Checkpoint {
        files: on_disk.files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            files: vec![FileCheckpoint {
                fingerprint: Fingerprint::of(b"first line\n"),
                path: "data/a.jsonl".into(),
                offset: 11,
                line: 1,
                done: false,
            }],
        }
    }

    #[test]
    fn saves_and_loads_leaving_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(&dir.path().join("state")).unwrap();
        assert_eq!(store.load("data/*.jsonl").unwrap(), Checkpoint::default());
        store.save("data/*.jsonl", &sample()).unwrap();
        assert_eq!(store.load("data/*.jsonl").unwrap(), sample());
        let names: Vec<_> = fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 1);
        assert!(
            names[0].starts_with("data___jsonl-") && names[0].ends_with(".json"),
            "{names:?}"
        );
        let text = fs::read_to_string(store.path_for("data/*.jsonl")).unwrap();
        assert!(
            text.starts_with(r#"{"version":1,"source":"data/*.jsonl""#),
            "{text}"
        );
    }

    #[test]
    fn ids_that_sanitise_alike_get_different_files() {
        let store = CheckpointStore::open(tempfile::tempdir().unwrap().path()).unwrap();
        assert_ne!(store.path_for("a/b"), store.path_for("a_b"));
    }

    #[test]
    fn a_corrupt_or_future_checkpoint_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        let path = store.path_for("logs");
        fs::write(&path, b"{\"version\":1,\"sour").unwrap();
        let error = store.load("logs").unwrap_err().to_string();
        assert!(
            error.contains(&path.display().to_string()) && error.contains("corrupt"),
            "{error}"
        );
        fs::write(&path, br#"{"version":2,"source":"logs","files":[]}"#).unwrap();
        let error = store.load("logs").unwrap_err().to_string();
        assert!(error.contains("version 2"), "{error}");
        let problems = CheckpointStore::check_dir(dir.path());
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].part, "checkpoint");
    }

    #[test]
    fn check_dir_accepts_a_good_or_creatable_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(CheckpointStore::check_dir(&dir.path().join("new")), []);
        let store = CheckpointStore::open(dir.path()).unwrap();
        store.save("x", &sample()).unwrap();
        assert_eq!(CheckpointStore::check_dir(dir.path()), []);
        let missing = CheckpointStore::check_dir(&dir.path().join("no/such/dir"));
        assert_eq!(missing.len(), 1, "{missing:?}");
    }
}
