//! Splitting a CSV stream into rows, with its header, for the file source. Rows are
//! kept as bytes (the decode stage checks UTF-8 and width), so any input splits.
//!
//! The CSV reader holds a whole row before its length can be checked, so the stream is
//! bounded too: a row that runs past `max_line` plus twice the read buffer (an
//! unclosed quote, say) breaks the file there, rather than reading the file into
//! memory. A row merely longer than `max_line` is refused and reading goes on.

use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The CSV reader's buffer.
const BUFFER: usize = 256 * 1024;

/// One CSV row, or why there is none.
#[derive(Debug)]
pub(crate) enum CsvPiece {
    /// A row; `line` is the 1-based line it starts on.
    Row {
        /// The row's fields.
        fields: csv::ByteRecord,
        /// Where the row starts.
        line: u64,
    },
    /// A row longer than the longest allowed, starting on `line`.
    TooLong {
        /// Where the row starts.
        line: u64,
    },
    /// The stream failed or the header is unreadable (the rest cannot be read).
    Broken {
        /// Where it broke.
        line: u64,
        /// Why.
        error: String,
    },
    /// No more rows.
    End,
}

/// The rows of a CSV stream after its header.
pub(crate) struct CsvRows<R> {
    reader: csv::Reader<Bounded<R>>,
    /// Bytes handed to the reader since the current row began.
    row_bytes: Arc<AtomicU64>,
    header: Option<Arc<[String]>>,
    base_offset: u64,
    base_line: u64,
    max_line: usize,
    broken: bool,
}

impl<R: Read> CsvRows<R> {
    /// Rows of `input`, which starts `offset` bytes and `line` lines into the file.
    /// Without a `header`, the first row read is the header.
    pub(crate) fn new(
        input: R,
        header: Option<Arc<[String]>>,
        offset: u64,
        line: u64,
        max_line: usize,
    ) -> Self {
        let row_bytes = Arc::new(AtomicU64::new(0));
        let input = Bounded {
            inner: input,
            read: Arc::clone(&row_bytes),
            limit: (max_line as u64).saturating_add(2 * BUFFER as u64),
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            // Rows end at `\n` only (a `\r` before it is trimmed): with CRLF as the
            // terminator the reader counts the `\n` into the next row, and its line
            // numbers lag.
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(BUFFER)
            .from_reader(input);
        Self {
            reader,
            row_bytes,
            header,
            base_offset: offset,
            base_line: line,
            max_line,
            broken: false,
        }
    }

    /// The file's header, once read.
    pub(crate) fn header(&self) -> Option<&Arc<[String]>> {
        self.header.as_ref()
    }

    /// The file offset after the last row.
    pub(crate) fn offset(&self) -> u64 {
        self.base_offset + self.reader.position().byte()
    }

    /// Lines read so far.
    pub(crate) fn line(&self) -> u64 {
        self.base_line + self.reader.position().line() - 1
    }

    /// The next row (the header is read first, if not given).
    pub(crate) fn next_piece(&mut self) -> CsvPiece {
        if self.broken {
            return CsvPiece::End;
        }
        if self.header.is_none() {
            match self.read() {
                Ok(Some((fields, line))) => match header_names(&fields) {
                    Ok(names) => self.header = Some(names),
                    Err(error) => return self.broke(line, error),
                },
                Ok(None) => return CsvPiece::End,
                Err(piece) => return piece,
            }
        }
        match self.read() {
            Ok(Some((fields, line))) if fields.as_slice().len() > self.max_line => {
                CsvPiece::TooLong { line }
            }
            Ok(Some((fields, line))) => CsvPiece::Row { fields, line },
            Ok(None) => CsvPiece::End,
            Err(piece) => piece,
        }
    }

    fn read(&mut self) -> Result<Option<(csv::ByteRecord, u64)>, CsvPiece> {
        let mut fields = csv::ByteRecord::new();
        let line = self.base_line + self.reader.position().line();
        self.row_bytes.store(0, Relaxed);
        match self.reader.read_byte_record(&mut fields) {
            Ok(true) => {
                trim_carriage_return(&mut fields);
                let start = fields
                    .position()
                    .map_or(line, |at| self.base_line + at.line());
                Ok(Some((fields, start)))
            }
            Ok(false) => Ok(None),
            Err(error) => Err(self.broke(line, error.to_string())),
        }
    }

    fn broke(&mut self, line: u64, error: String) -> CsvPiece {
        self.broken = true;
        CsvPiece::Broken { line, error }
    }
}

/// A stream that fails once more than `limit` bytes are read since `read` was reset.
struct Bounded<R> {
    inner: R,
    read: Arc<AtomicU64>,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buffer)?;
        if self.read.fetch_add(count as u64, Relaxed) + count as u64 > self.limit {
            return Err(io::Error::other(
                "a CSV row runs past max_line (is a quote left open?); the rest of the file is not read",
            ));
        }
        Ok(count)
    }
}

/// Drops the `\r` of a CRLF line end from the row's last field.
fn trim_carriage_return(fields: &mut csv::ByteRecord) {
    let Some(last) = fields.iter().next_back() else {
        return;
    };
    if let Some(trimmed) = last.strip_suffix(b"\r") {
        let mut row: csv::ByteRecord = fields.iter().take(fields.len() - 1).collect();
        row.push_field(trimmed);
        row.set_position(fields.position().cloned());
        *fields = row;
    }
}

fn header_names(fields: &csv::ByteRecord) -> Result<Arc<[String]>, String> {
    fields
        .iter()
        .enumerate()
        .map(|(column, name)| {
            String::from_utf8(name.to_vec())
                .map_err(|_| format!("the CSV header's column {} is not UTF-8", column + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rows(input: &[u8]) -> Vec<String> {
        let mut rows = CsvRows::new(input, None, 0, 0, 20);
        let mut out = Vec::new();
        loop {
            match rows.next_piece() {
                CsvPiece::Row { fields, line } => {
                    let fields: Vec<_> = fields.iter().map(String::from_utf8_lossy).collect();
                    out.push(format!("{line}:{}", fields.join("|")));
                }
                CsvPiece::TooLong { line } => out.push(format!("{line}:too long")),
                CsvPiece::Broken { line, error } => out.push(format!("{line}:broken {error}")),
                CsvPiece::End => return out,
            }
        }
    }

    #[test]
    fn rows_after_the_header_with_the_line_they_start_on() {
        let input = b"id,text\r\n1,\"two\nlines\"\r\n2,x\n3\r\n";
        assert_eq!(rows(input), ["2:1|two\nlines", "4:2|x", "5:3"]);
    }

    #[test]
    fn a_row_longer_than_the_limit_is_refused() {
        let long = format!("a\n{}\nb\n", "x".repeat(30));
        assert_eq!(rows(long.as_bytes()), ["2:too long", "3:b"]);
    }

    #[test]
    fn an_unclosed_quote_breaks_the_file_without_reading_it_all() {
        let mut input = b"h\nok\n\"open".to_vec();
        input.resize(3 * BUFFER + 100, b'x');
        let mut rows = CsvRows::new(&input[..], None, 0, 0, 20);
        assert!(matches!(rows.next_piece(), CsvPiece::Row { line: 2, .. }));
        match rows.next_piece() {
            CsvPiece::Broken { line, error } => {
                assert_eq!(line, 3);
                assert!(error.contains("quote left open"), "{error}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(rows.next_piece(), CsvPiece::End));
    }

    #[test]
    fn a_header_that_is_not_utf8_breaks_the_file() {
        assert_eq!(
            rows(b"a,\xff\n1,2\n"),
            ["1:broken the CSV header's column 2 is not UTF-8"]
        );
    }

    #[test]
    fn offsets_and_lines_allow_a_resume_after_any_row() {
        let input = b"h\n1\n22\n333\n";
        let mut rows = CsvRows::new(&input[..], None, 0, 0, 20);
        rows.next_piece();
        let (offset, line) = (rows.offset(), rows.line());
        assert_eq!((offset, line), (4, 2));
        let header = rows.header().cloned();
        let mut resumed = CsvRows::new(&input[offset as usize..], header, offset, line, 20);
        match resumed.next_piece() {
            CsvPiece::Row { fields, line } => {
                assert_eq!((&fields[0], line), (&b"22"[..], 3));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!((resumed.offset(), resumed.line()), (7, 3));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'"'), Just(b','), Just(b'\r'), any::<u8>()], 0..200)) {
            let _ = rows(&bytes);
        }
    }
}
