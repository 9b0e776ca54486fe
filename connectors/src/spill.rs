//! [`Raw`] records on disk: how the runtime's spill writes a record the source guard
//! read while the memory budget was full, and reads it back unchanged (data and
//! origin), so `brigade run` pipelines can use `[runtime] spill`.
//!
//! The format is private to one run (the spill file never outlives it): a tag byte
//! per enum, integers as 8 little-endian bytes, byte strings length-first.

use std::sync::Arc;

use brigade_runtime::{BoxError, Spillable};

use crate::raw::{Raw, RawData};
use crate::{Origin, RowOrigin, StreamEntry};

impl Spillable for Raw {
    fn spill(&self, out: &mut Vec<u8>) {
        match &self.data {
            RawData::Line(bytes) => {
                out.push(0);
                put(out, bytes);
            }
            RawData::CsvRow { header, fields } => {
                out.push(1);
                put_count(out, header.len());
                for name in header.iter() {
                    put(out, name.as_bytes());
                }
                put_count(out, fields.len());
                for field in fields {
                    put(out, field);
                }
            }
            RawData::Value(value) => {
                out.push(2);
                // Writing a Value to a Vec cannot fail.
                let json = serde_json::to_vec(value).unwrap_or_default();
                put(out, &json);
            }
            RawData::Unreadable(message) => {
                out.push(3);
                put(out, message.as_bytes());
            }
        }
        match &self.origin {
            Origin::Line { source, line } => {
                out.push(0);
                put(out, source.as_bytes());
                put_count(out, *line as usize);
            }
            Origin::Row(row) => {
                out.push(1);
                put(out, row.source.as_bytes());
                put(out, row.key.as_bytes());
            }
            Origin::StreamEntry(entry) => {
                out.push(2);
                put(out, entry.stream.as_bytes());
                put(out, entry.id.as_bytes());
            }
        }
    }

    fn unspill(bytes: &[u8]) -> Result<Self, BoxError> {
        let mut input = Input(bytes);
        let data = match input.tag()? {
            0 => RawData::Line(input.bytes()?.to_vec()),
            1 => {
                let names = input.count()?;
                let header: Vec<String> =
                    (0..names).map(|_| input.text()).collect::<Result<_, _>>()?;
                let mut fields = csv::ByteRecord::new();
                for _ in 0..input.count()? {
                    fields.push_field(input.bytes()?);
                }
                RawData::CsvRow {
                    header: header.into(),
                    fields,
                }
            }
            2 => RawData::Value(serde_json::from_slice(input.bytes()?)?),
            3 => RawData::Unreadable(input.text()?),
            tag => return Err(format!("unknown record kind {tag} in the spill").into()),
        };
        let origin = match input.tag()? {
            0 => Origin::Line {
                source: Arc::from(input.text()?),
                line: input.count()? as u64,
            },
            1 => Origin::Row(Box::new(RowOrigin {
                source: Arc::from(input.text()?),
                key: input.text()?,
            })),
            2 => Origin::StreamEntry(Arc::new(StreamEntry {
                stream: Arc::from(input.text()?),
                id: input.text()?,
            })),
            tag => return Err(format!("unknown origin kind {tag} in the spill").into()),
        };
        if !input.0.is_empty() {
            return Err("trailing bytes after a spilled record".into());
        }
        Ok(Raw { data, origin })
    }
}

fn put_count(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n as u64).to_le_bytes());
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    put_count(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// What is left to read of a spilled record.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BoxError> {
        if self.0.len() < n {
            return Err("a spilled record ends early".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn tag(&mut self) -> Result<u8, BoxError> {
        Ok(self.take(1)?[0])
    }

    fn count(&mut self) -> Result<usize, BoxError> {
        let bytes: [u8; 8] = self.take(8)?.try_into()?;
        Ok(usize::try_from(u64::from_le_bytes(bytes))?)
    }

    fn bytes(&mut self) -> Result<&'a [u8], BoxError> {
        let n = self.count()?;
        self.take(n)
    }

    fn text(&mut self) -> Result<String, BoxError> {
        Ok(std::str::from_utf8(self.bytes()?)?.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip(raw: Raw) {
        let mut bytes = Vec::new();
        raw.spill(&mut bytes);
        assert_eq!(Raw::unspill(&bytes).unwrap(), raw);
        assert!(Raw::unspill(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn every_kind_of_raw_record_comes_back_unchanged() {
        let line = Origin::Line {
            source: Arc::from("in/a.csv"),
            line: 7,
        };
        round_trip(Raw {
            data: RawData::Line(b"{\"a\":1}\xff".to_vec()),
            origin: line.clone(),
        });
        round_trip(Raw {
            data: RawData::CsvRow {
                header: vec!["id".to_owned(), "name".to_owned()].into(),
                fields: csv::ByteRecord::from(vec!["1", "Ada"]),
            },
            origin: line.clone(),
        });
        round_trip(Raw {
            data: RawData::Value(json!({"id": 42, "tags": ["x", null]})),
            origin: Origin::Row(Box::new(RowOrigin {
                source: Arc::from("orders"),
                key: "id=42".to_owned(),
            })),
        });
        round_trip(Raw {
            data: RawData::Unreadable("invalid gzip".to_owned()),
            origin: Origin::StreamEntry(Arc::new(StreamEntry {
                stream: Arc::from("events"),
                id: "1700000000000-0".to_owned(),
            })),
        });
    }
}
