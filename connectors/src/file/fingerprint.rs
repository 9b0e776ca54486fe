//! How a file source recognises a file whatever its path or inode: a hash of its
//! first bytes.
//!
//! The fingerprint is the FNV-1a 64 hash of the first [`PREFIX`] bytes (fewer if the
//! file is shorter) and how many bytes were hashed. A file shorter than `PREFIX` may
//! grow: a file whose first `len` bytes hash to a known fingerprint of length `len` is
//! that file, grown. Limits: two files whose first KiB are identical (or a short file
//! whose whole content begins another) are taken for one file; an empty file has no
//! fingerprint and is read from its start whenever it is seen.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// How many leading bytes identify a file.
pub const PREFIX: usize = 1024;

/// A file's identity: the hash of its first `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fingerprint {
    /// How many bytes were hashed (at most [`PREFIX`]).
    pub len: u32,
    /// Their FNV-1a 64 hash.
    pub hash: u64,
}

impl Fingerprint {
    /// The fingerprint of a file's leading bytes (the first [`PREFIX`] are used).
    pub fn of(prefix: &[u8]) -> Self {
        let prefix = &prefix[..prefix.len().min(PREFIX)];
        Self {
            len: prefix.len() as u32,
            hash: fnv1a(prefix),
        }
    }
}

/// The first [`PREFIX`] bytes of the file at `path` (fewer if it is shorter).
pub(crate) fn read_prefix(path: &Path) -> io::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(PREFIX);
    File::open(path)?
        .take(PREFIX as u64)
        .read_to_end(&mut prefix)?;
    Ok(prefix)
}

/// FNV-1a, 64 bits: fixed across Rust versions and platforms, unlike std's hasher.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn only_the_first_kib_counts() {
        let mut long = vec![7u8; PREFIX];
        let short = Fingerprint::of(&long);
        long.extend_from_slice(b"more");
        assert_eq!(Fingerprint::of(&long), short);
        assert_eq!(short.len as usize, PREFIX);
        assert_ne!(Fingerprint::of(&long[..10]), short);
    }
}
