//! The last few KiB of a process's standard error, for the errors of the records it
//! fails.

use std::collections::VecDeque;

/// How much of standard error is kept.
pub(super) const TAIL_BYTES: usize = 4096;

/// A ring of the last [`TAIL_BYTES`] bytes written.
#[derive(Debug, Default)]
pub(super) struct Tail {
    bytes: VecDeque<u8>,
}

impl Tail {
    /// Appends `chunk`, forgetting the oldest bytes past the limit.
    pub(super) fn push(&mut self, chunk: &[u8]) {
        let chunk = &chunk[chunk.len().saturating_sub(TAIL_BYTES)..];
        let overflow = (self.bytes.len() + chunk.len()).saturating_sub(TAIL_BYTES);
        self.bytes.drain(..overflow);
        self.bytes.extend(chunk);
    }

    /// The tail as text, trimmed; `(empty)` when nothing was written.
    pub(super) fn text(&self) -> String {
        let (front, back) = self.bytes.as_slices();
        let text = String::from_utf8_lossy(&[front, back].concat())
            .trim()
            .to_owned();
        if text.is_empty() {
            "(empty)".into()
        } else {
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_last_bytes() {
        let mut tail = Tail::default();
        assert_eq!(tail.text(), "(empty)");
        tail.push(b"first\n");
        tail.push(&[b'x'; TAIL_BYTES - 4]);
        tail.push(b"last\n");
        let text = tail.text();
        assert!(!text.contains("first"));
        assert!(text.ends_with("xlast"), "{}", &text[text.len() - 10..]);
        tail.push(&[b'y'; 3 * TAIL_BYTES]);
        assert_eq!(tail.text(), "y".repeat(TAIL_BYTES));
    }
}
