//! What a file or stdin source yields before parsing: the bytes of one line or CSV row
//! and where they were read. The source thread only splits; [`decode`] (run in a
//! parallel stage) turns a [`Raw`] into a [`Record`], or hands it back with the error
//! so it can be dead-lettered with its origin.

use std::sync::Arc;

use brigade_runtime::Weigh;
use serde_json::{Map, Value};

use crate::file::Format;
use crate::{Origin, Record};

/// One unparsed record and where it was read.
#[derive(Clone, Debug, PartialEq)]
pub struct Raw {
    /// The bytes, or why they could not be read.
    pub data: RawData,
    /// The file (or `-`) and line.
    pub origin: Origin,
}

/// The bytes of one unparsed record.
#[derive(Clone, Debug, PartialEq)]
pub enum RawData {
    /// A line without its newline (a trailing `\r` trimmed too).
    Line(Vec<u8>),
    /// A CSV row and the file's header.
    CsvRow {
        /// The header's names, shared by every row of the file.
        header: Arc<[String]>,
        /// The row's fields, as read.
        fields: csv::ByteRecord,
    },
    /// A record a source read already structured (a database row, a stream entry):
    /// [`decode`] passes it on as it is, whatever the format.
    Value(Value),
    /// What could not be read at the origin: a line longer than `max_line` (the source
    /// skipped to the next newline), a truncated gzip stream, an I/O error (the rest of
    /// that file is not read).
    Unreadable(String),
}

impl Weigh for Raw {
    fn weigh(&self) -> u64 {
        let data = match &self.data {
            RawData::Line(bytes) => bytes.capacity(),
            RawData::CsvRow { fields, .. } => fields.as_slice().len() + 8 * fields.len(),
            RawData::Value(value) => crate::weigh_value(value) as usize,
            RawData::Unreadable(message) => message.capacity(),
        };
        (size_of::<Raw>() + data) as u64
    }
}

/// A [`Raw`] that could not be decoded, handed back with the reason.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct DecodeError {
    /// The record as read, for the dead-letter file.
    pub raw: Raw,
    /// Why it could not be decoded, in one line.
    pub error: String,
}

/// Parses a [`Raw`] as `format` says: `lines` → a JSON string (invalid UTF-8 is an
/// error), `jsonl` → the line's JSON value, `csv` → an object of the header's names
/// to the row's fields as strings (a row whose field count differs from the header's
/// is an error). A [`RawData::Value`] is passed on as it is; an
/// [`RawData::Unreadable`] is always an error.
pub fn decode(raw: Raw, format: Format) -> Result<Record, DecodeError> {
    let Raw { data, origin } = raw;
    let fail = |data, error| {
        Err(DecodeError {
            raw: Raw {
                data,
                origin: origin.clone(),
            },
            error,
        })
    };
    let value = match (data, format) {
        (RawData::Line(bytes), Format::Lines) => match String::from_utf8(bytes) {
            Ok(text) => Value::String(text),
            Err(error) => {
                let message = format!("invalid UTF-8 at byte {}", error.utf8_error().valid_up_to());
                return fail(RawData::Line(error.into_bytes()), message);
            }
        },
        (RawData::Line(bytes), Format::Jsonl) => match serde_json::from_slice(&bytes) {
            Ok(value) => value,
            Err(error) => return fail(RawData::Line(bytes), format!("invalid JSON: {error}")),
        },
        (RawData::Line(bytes), Format::Csv) => {
            return fail(
                RawData::Line(bytes),
                "a plain line where a CSV row was expected".to_owned(),
            )
        }
        (RawData::CsvRow { header, fields }, _) => match csv_object(&header, &fields) {
            Ok(object) => Value::Object(object),
            Err(error) => return fail(RawData::CsvRow { header, fields }, error),
        },
        (RawData::Value(value), _) => value,
        (RawData::Unreadable(message), _) => {
            let error = message.clone();
            return fail(RawData::Unreadable(message), error);
        }
    };
    Ok(Record { value, origin })
}

fn csv_object(header: &[String], fields: &csv::ByteRecord) -> Result<Map<String, Value>, String> {
    if fields.len() != header.len() {
        return Err(format!(
            "the CSV row has {} fields, the header has {}",
            fields.len(),
            header.len()
        ));
    }
    let mut object = Map::new();
    for (name, field) in header.iter().zip(fields) {
        let text = std::str::from_utf8(field).map_err(|error| {
            format!(
                "invalid UTF-8 in column `{name}` at byte {}",
                error.valid_up_to()
            )
        })?;
        object.insert(name.clone(), Value::String(text.to_owned()));
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn origin() -> Origin {
        Origin::Line {
            source: Arc::from("in.txt"),
            line: 7,
        }
    }

    fn line(bytes: &[u8]) -> Raw {
        Raw {
            data: RawData::Line(bytes.to_vec()),
            origin: origin(),
        }
    }

    fn row(header: &[&str], fields: &[&[u8]]) -> Raw {
        Raw {
            data: RawData::CsvRow {
                header: header.iter().map(|name| name.to_string()).collect(),
                fields: csv::ByteRecord::from(fields.to_vec()),
            },
            origin: origin(),
        }
    }

    #[test]
    fn lines_become_strings_and_keep_their_origin() {
        let record = decode(line(b"hello"), Format::Lines).unwrap();
        assert_eq!(record.value, json!("hello"));
        assert_eq!(record.origin.to_string(), "in.txt:7");
    }

    #[test]
    fn invalid_utf8_is_handed_back_with_the_bytes() {
        let error = decode(line(b"ok\xffno"), Format::Lines).unwrap_err();
        assert_eq!(error.error, "invalid UTF-8 at byte 2");
        assert_eq!(error.raw, line(b"ok\xffno"));
    }

    #[test]
    fn json_lines_parse_and_bad_json_is_an_error() {
        let record = decode(line(br#"{"a":[1,2]}"#), Format::Jsonl).unwrap();
        assert_eq!(record.value, json!({"a": [1, 2]}));
        let error = decode(line(br#"{"a":"#), Format::Jsonl).unwrap_err();
        assert!(error.error.starts_with("invalid JSON"), "{}", error.error);
        assert_eq!(error.raw.origin, origin());
    }

    #[test]
    fn csv_rows_become_objects_and_a_wrong_width_is_an_error() {
        let record = decode(row(&["id", "name"], &[b"1", b"ann"]), Format::Csv).unwrap();
        assert_eq!(record.value, json!({"id": "1", "name": "ann"}));
        let error = decode(row(&["id", "name"], &[b"1"]), Format::Csv).unwrap_err();
        assert_eq!(error.error, "the CSV row has 1 fields, the header has 2");
        let error = decode(row(&["id"], &[b"\xfe"]), Format::Csv).unwrap_err();
        assert_eq!(error.error, "invalid UTF-8 in column `id` at byte 0");
    }

    #[test]
    fn a_structured_value_passes_as_it_is_whatever_the_format() {
        for format in [Format::Lines, Format::Jsonl, Format::Csv] {
            let raw = Raw {
                data: RawData::Value(json!({"id": 7, "name": "x"})),
                origin: origin(),
            };
            let record = decode(raw, format).unwrap();
            assert_eq!(record.value, json!({"id": 7, "name": "x"}));
            assert_eq!(record.origin, origin());
        }
    }

    #[test]
    fn unreadable_is_always_an_error() {
        let raw = Raw {
            data: RawData::Unreadable("truncated gzip".into()),
            origin: origin(),
        };
        assert_eq!(
            decode(raw, Format::Lines).unwrap_err().error,
            "truncated gzip"
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            for format in [Format::Lines, Format::Jsonl, Format::Csv] {
                let _ = decode(line(&bytes), format);
            }
            let fields: Vec<&[u8]> = bytes.split(|&b| b == b',').collect();
            let _ = decode(row(&["a", "b"], &fields), Format::Csv);
        }
    }
}
