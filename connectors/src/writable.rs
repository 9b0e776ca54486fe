//! Healthcheck helpers: may a file be appended to, may a directory be written in,
//! checked without leaving anything behind.

use std::fs::{self, OpenOptions};
use std::path::Path;

/// Why `path` cannot be appended to (or created), if it cannot.
pub(crate) fn appendable(path: &Path) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!("{} is a directory", path.display()));
    }
    if path.exists() {
        return OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|error| format!("cannot append to {}: {error}", path.display()));
    }
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    writable_dir(parent)
}

/// Why no file can be created in `dir`, if none can: creates a probe file and
/// removes it.
pub(crate) fn writable_dir(dir: &Path) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!("the directory {} does not exist", dir.display()));
    }
    let probe = dir.join(format!(".brigade-probe-{}", std::process::id()));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|error| format!("cannot create files in {}: {error}", dir.display()))?;
    fs::remove_file(&probe)
        .map_err(|error| format!("cannot remove the probe {}: {error}", probe.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_in_a_writable_directory_is_fine_and_nothing_is_left() {
        let dir = tempfile::tempdir().unwrap();
        appendable(&dir.path().join("out.jsonl")).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_missing_directory_or_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = appendable(&dir.path().join("no/out.jsonl")).unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
        assert!(appendable(dir.path())
            .unwrap_err()
            .contains("is a directory"));
    }
}
