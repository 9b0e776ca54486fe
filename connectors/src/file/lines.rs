//! Splitting a byte stream into lines, with a longest line, for the file and stdin
//! sources. Never panics, whatever the bytes: every line is one [`Piece`].

use std::io::{self, BufRead};

/// One line of the stream, or why there is none.
#[derive(Debug)]
pub(crate) enum Piece {
    /// A line without its newline (nor a trailing `\r`).
    Line(Vec<u8>),
    /// A line longer than the longest allowed; the reader skipped to its end.
    TooLong,
    /// The stream failed (the rest of it cannot be read).
    Broken(io::Error),
    /// No more lines.
    End,
}

/// Splits a buffered stream into lines, counting bytes and lines as it goes.
pub(crate) struct LineReader<R> {
    input: R,
    offset: u64,
    line: u64,
    max_line: usize,
}

impl<R: BufRead> LineReader<R> {
    /// A reader of `input`, which starts `offset` bytes and `line` lines into its
    /// stream; lines longer than `max_line` bytes are skipped.
    pub(crate) fn new(input: R, offset: u64, line: u64, max_line: usize) -> Self {
        Self {
            input,
            offset,
            line,
            max_line,
        }
    }

    /// The stream offset after the last piece.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Lines read so far: the last piece's 1-based line number.
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// The next line.
    pub(crate) fn next_piece(&mut self) -> Piece {
        let mut line = Vec::new();
        let mut too_long = false;
        loop {
            let buffer = match self.input.fill_buf() {
                Ok(buffer) => buffer,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Piece::Broken(error),
            };
            if buffer.is_empty() {
                if line.is_empty() && !too_long {
                    return Piece::End;
                }
                self.line += 1;
                return finish(line, too_long);
            }
            let (taken, newline) = match memchr::memchr(b'\n', buffer) {
                Some(at) => (at, true),
                None => (buffer.len(), false),
            };
            if !too_long {
                if line.len() + taken > self.max_line {
                    too_long = true;
                    line = Vec::new();
                } else {
                    line.extend_from_slice(&buffer[..taken]);
                }
            }
            let consumed = taken + usize::from(newline);
            self.input.consume(consumed);
            self.offset += consumed as u64;
            if newline {
                self.line += 1;
                return finish(line, too_long);
            }
        }
    }
}

fn finish(mut line: Vec<u8>, too_long: bool) -> Piece {
    if too_long {
        return Piece::TooLong;
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Piece::Line(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::BufReader;

    fn pieces(bytes: &[u8], max_line: usize, buffer: usize) -> (Vec<String>, u64, u64) {
        let mut reader = LineReader::new(BufReader::with_capacity(buffer, bytes), 0, 0, max_line);
        let mut out = Vec::new();
        loop {
            match reader.next_piece() {
                Piece::Line(line) => out.push(String::from_utf8_lossy(&line).into_owned()),
                Piece::TooLong => out.push("<too long>".to_owned()),
                Piece::Broken(error) => panic!("{error}"),
                Piece::End => return (out, reader.offset(), reader.line()),
            }
        }
    }

    #[test]
    fn splits_on_newlines_trims_crlf_and_keeps_a_last_unterminated_line() {
        let (lines, offset, count) = pieces(b"a\r\n\nbc\nd", 100, 2);
        assert_eq!(lines, ["a", "", "bc", "d"]);
        assert_eq!((offset, count), (8, 4));
    }

    #[test]
    fn a_line_longer_than_the_limit_is_skipped_to_its_newline() {
        let (lines, _, count) = pieces(b"short\nmuch too long\nok\n", 5, 3);
        assert_eq!(lines, ["short", "<too long>", "ok"]);
        assert_eq!(count, 3);
    }

    #[test]
    fn a_read_error_is_reported() {
        struct Failing;
        impl io::Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("disk gone"))
            }
        }
        let mut reader = LineReader::new(BufReader::new(Failing), 0, 0, 10);
        assert!(matches!(reader.next_piece(), Piece::Broken(e) if e.to_string() == "disk gone"));
    }

    proptest! {
        #[test]
        fn every_line_is_exactly_one_piece(
            bytes in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..300),
            max_line in 0usize..20,
            buffer in 1usize..16,
        ) {
            let (lines, offset, count) = pieces(&bytes, max_line, buffer);
            let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
            let tail = usize::from(!bytes.is_empty() && bytes.last() != Some(&b'\n'));
            prop_assert_eq!(lines.len(), newlines + tail);
            prop_assert_eq!(count as usize, lines.len());
            prop_assert_eq!(offset as usize, bytes.len());
        }
    }
}
