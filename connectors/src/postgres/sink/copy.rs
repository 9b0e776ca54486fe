//! Rows in COPY's text format: one line per row, cells split by tabs, `\N` for
//! `NULL`, and backslash, tab, newline and carriage return escaped in the text.

use std::borrow::Cow;

/// Appends `cells` to `out` as one line of COPY text.
pub(super) fn encode_line(cells: &[Option<Cow<'_, str>>], out: &mut Vec<u8>) {
    for (index, cell) in cells.iter().enumerate() {
        if index > 0 {
            out.push(b'\t');
        }
        match cell {
            Some(text) => escape(text, out),
            None => out.extend_from_slice(b"\\N"),
        }
    }
    out.push(b'\n');
}

/// `text` with the bytes COPY gives a meaning escaped.
fn escape(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        let escaped: &[u8] = match byte {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..at]);
        out.extend_from_slice(escaped);
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(cells: &[Option<&str>]) -> String {
        let cells: Vec<Option<Cow<str>>> = cells.iter().map(|c| c.map(Cow::Borrowed)).collect();
        let mut out = Vec::new();
        encode_line(&cells, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn specials_are_escaped_and_null_is_backslash_n() {
        assert_eq!(
            line(&[Some("a\tb"), None, Some("x\\N\r\ny"), Some(""), Some("Zoë")]),
            "a\\tb\t\\N\tx\\\\N\\r\\ny\t\tZoë\n"
        );
    }

    #[test]
    fn a_string_that_reads_like_null_is_not_null() {
        assert_eq!(line(&[Some("\\N")]), "\\\\N\n");
    }
}
