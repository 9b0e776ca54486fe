//! The default consumer name: the host's name and an id kept in a file, unique per
//! process and stable across its restarts.
//!
//! Ids live in `state_dir` in files `redis-consumer-<group>.<slot>`, one per slot. A
//! process takes the first slot whose file it can lock (the lock is held as long as the
//! [`ConsumerName`] lives and released by the OS when the process dies), and the id in
//! it, creating a new id the first time. So a restarted process gets its old name
//! back (and finds its pending entries), while processes sharing a host and a state
//! directory get one name each.

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::RedisConnectorError;

/// The most slots tried: as many processes on one host sharing one state directory.
const MOST_SLOTS: usize = 256;

/// A consumer name, and the lock on its id file if it came from one.
#[derive(Debug)]
pub struct ConsumerName {
    name: String,
    _lock: Option<File>,
}

impl ConsumerName {
    /// A name given in the configuration (no file).
    pub fn given(name: &str) -> ConsumerName {
        ConsumerName {
            name: name.to_owned(),
            _lock: None,
        }
    }

    /// The host's name and the id of the first free slot in `dir` for `group`
    /// (`dir` is created if missing).
    pub fn claim(dir: &Path, group: &str) -> Result<ConsumerName, RedisConnectorError> {
        let state = |path: &Path| {
            let path = path.to_owned();
            move |source| RedisConnectorError::State { path, source }
        };
        std::fs::create_dir_all(dir).map_err(state(dir))?;
        let stem: String = group
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        for slot in 0..MOST_SLOTS {
            let path = dir.join(format!("redis-consumer-{stem}.{slot}"));
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(state(&path))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(error)) => return Err(state(&path)(error)),
            }
            let id = read_or_make_id(&mut file).map_err(state(&path))?;
            return Ok(ConsumerName {
                name: format!("{}-{id}", host_name()),
                _lock: Some(file),
            });
        }
        Err(RedisConnectorError::State {
            path: PathBuf::from(dir),
            source: std::io::Error::other(format!(
                "all {MOST_SLOTS} consumer ids of group `{group}` are held by running processes"
            )),
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.name
    }
}

/// The id in the locked file, or a new one written (and synced) into it.
fn read_or_make_id(file: &mut File) -> std::io::Result<String> {
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let id = text.trim();
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(id.to_owned());
    }
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos()),
    );
    let id = format!("{:08x}", hasher.finish() as u32);
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(format!("{id}\n").as_bytes())?;
    file.sync_all()?;
    Ok(id)
}

/// The host's name (`brigade` if it cannot be read).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "brigade".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_keeps_its_name_and_live_processes_get_one_each() {
        let dir = tempfile::tempdir().unwrap();
        let first = ConsumerName::claim(dir.path(), "g").unwrap();
        let second = ConsumerName::claim(dir.path(), "g").unwrap();
        assert_ne!(first.as_str(), second.as_str());
        assert!(first.as_str().starts_with(&host_name()));
        let name = first.as_str().to_owned();
        drop(first);
        // Another test's child process, forked before it execs, may hold the freed
        // lock for a moment (the descriptor closes on exec): claim until it is free.
        let again = (0..50)
            .map(|_| {
                let claimed = ConsumerName::claim(dir.path(), "g").unwrap();
                std::thread::sleep(std::time::Duration::from_millis(10));
                claimed
            })
            .find(|claimed| claimed.as_str() == name);
        assert!(again.is_some(), "the freed slot keeps its id");
        let other_group = ConsumerName::claim(dir.path(), "other").unwrap();
        assert_ne!(other_group.as_str(), name);
    }
}
