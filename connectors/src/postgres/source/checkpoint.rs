//! The source's checkpoint: the last acknowledged key, one small JSON file per source
//! (`<id>-<hash>.pgkey`) in the `[checkpoint]` directory, replaced atomically (a temporary file, fsynced,
//! renamed over the old one, the directory fsynced).
//!
//! ```json
//! {"version":1,"source":"orders","key":"id","after":41999}
//! ```
//!
//! Every row whose key is at most `after` was finished (written or dead-lettered); a
//! rerun reads the rows after it. Only acknowledged keys are written, never keys
//! merely read.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::PgSourceError;

/// The version of the file format this build reads and writes.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OnDisk {
    version: u32,
    source: String,
    key: String,
    after: Value,
}

/// One source's checkpoint file and the key acknowledged last.
pub(crate) struct KeyCheckpoint {
    path: PathBuf,
    id: String,
    key: String,
    interval: Duration,
    last_save: Instant,
    acked: Option<Value>,
    dirty: bool,
    /// Why the last save failed, if it did: reading stops on it.
    pub error: Option<String>,
}

/// The checkpoint file of source `id` in `dir`: the id made file-name safe, and a
/// hash of it so two ids never share a file.
pub fn checkpoint_path(dir: &Path, id: &str) -> PathBuf {
    let safe: String = id
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
    // FNV-1a, 64 bits.
    let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    dir.join(format!("{safe}-{hash:016x}.pgkey"))
}

impl KeyCheckpoint {
    /// The checkpoint of source `id` keyed by column `key` in `dir` (created if
    /// missing), saved at most every `interval`, and the key it last acknowledged.
    pub(crate) fn open(
        dir: &Path,
        id: &str,
        key: &str,
        interval: Duration,
    ) -> Result<(Self, Option<Value>), PgSourceError> {
        let path = checkpoint_path(dir, id);
        let error = |message: String| PgSourceError::Checkpoint {
            path: path.clone(),
            message,
        };
        fs::create_dir_all(dir).map_err(|e| error(format!("cannot create its directory: {e}")))?;
        let after = match fs::read(&path) {
            Ok(text) => {
                let on_disk: OnDisk = serde_json::from_slice(&text).map_err(|e| {
                    error(format!(
                        "corrupt ({e}); move it away to read from the start"
                    ))
                })?;
                if on_disk.version != VERSION {
                    return Err(error(format!(
                        "version {} where this build reads version {VERSION}",
                        on_disk.version
                    )));
                }
                if on_disk.key != key {
                    return Err(error(format!(
                        "it was written for the key `{}` and the source now has the key \
                         `{key}`; move it away to read from the start",
                        on_disk.key
                    )));
                }
                Some(on_disk.after)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(error(e.to_string())),
        };
        let checkpoint = KeyCheckpoint {
            path: path.clone(),
            id: id.to_owned(),
            key: key.to_owned(),
            interval,
            last_save: Instant::now(),
            acked: after.clone(),
            dirty: false,
            error: None,
        };
        Ok((checkpoint, after))
    }

    /// The file it writes.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Every row up to `key` has finished; written when `interval` has passed since
    /// the last write.
    pub(crate) fn acknowledge(&mut self, key: Value) {
        self.acked = Some(key);
        self.dirty = true;
        if self.last_save.elapsed() >= self.interval {
            self.flush();
        }
    }

    /// Writes the last acknowledged key if not written yet.
    pub(crate) fn flush(&mut self) {
        let Some(after) = self.acked.clone().filter(|_| self.dirty) else {
            return;
        };
        self.last_save = Instant::now();
        let on_disk = OnDisk {
            version: VERSION,
            source: self.id.clone(),
            key: self.key.clone(),
            after,
        };
        match self.save(&on_disk) {
            Ok(()) => {
                self.dirty = false;
                self.error = None;
            }
            Err(e) => self.error = Some(format!("checkpoint {}: {e}", self.path.display())),
        }
    }

    fn save(&self, on_disk: &OnDisk) -> io::Result<()> {
        let temporary = self.path.with_extension("pgkey.tmp");
        let text = serde_json::to_vec(on_disk).map_err(io::Error::from)?;
        let mut file = File::create(&temporary)?;
        file.write_all(&text)?;
        file.sync_all()?;
        fs::rename(&temporary, &self.path)?;
        match self.path.parent() {
            Some(dir) => File::open(dir)?.sync_all(),
            None => Ok(()),
        }
    }
}
