//! The standard-input source: lines or JSON lines, each with its line number (origin
//! `-:line`). No checkpoints: standard input cannot be re-read.

use std::io::{self, BufReader, Read};
use std::sync::Arc;

use brigade_runtime::Source;
use serde::Deserialize;

use crate::file::{Format, LineReader, Piece, DEFAULT_MAX_LINE};
use crate::raw::{Raw, RawData};
use crate::units::Size;
use crate::Origin;

/// `[source] type = "stdin"`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StdinSourceConfig {
    /// `lines` or `jsonl` (CSV is for files).
    pub format: Format,
    /// The longest line read; a longer one is dead-lettered. Default 16MiB.
    #[serde(default)]
    pub max_line: Option<Size>,
}

/// Reads standard input as [`Raw`] lines. Blank lines of JSON lines are skipped; a
/// line too long is an [`Unreadable`](RawData::Unreadable) record; a read error ends
/// the input after one such record.
pub struct StdinSource {
    reader: LineReader<BufReader<Box<dyn Read + Send>>>,
    format: Format,
    max_line: usize,
    ended: bool,
    label: Arc<str>,
}

impl StdinSource {
    /// The source over this process's standard input.
    pub fn new(config: &StdinSourceConfig) -> Self {
        Self::over(config, Box::new(io::stdin()))
    }

    fn over(config: &StdinSourceConfig, input: Box<dyn Read + Send>) -> Self {
        let max_line = config.max_line.map_or(DEFAULT_MAX_LINE, |size| {
            usize::try_from(size.0).unwrap_or(usize::MAX)
        });
        Self {
            reader: LineReader::new(BufReader::with_capacity(256 * 1024, input), 0, 0, max_line),
            format: config.format,
            max_line,
            ended: false,
            label: Arc::from("-"),
        }
    }

    fn raw(&self, data: RawData, line: u64) -> Raw {
        Raw {
            data,
            origin: Origin::Line {
                source: Arc::clone(&self.label),
                line,
            },
        }
    }
}

impl Source for StdinSource {
    type Item = Raw;

    fn next(&mut self) -> Option<Raw> {
        while !self.ended {
            let data = match self.reader.next_piece() {
                Piece::Line(bytes)
                    if self.format == Format::Jsonl
                        && bytes.iter().all(u8::is_ascii_whitespace) =>
                {
                    continue
                }
                Piece::Line(bytes) => RawData::Line(bytes),
                Piece::TooLong => RawData::Unreadable(format!(
                    "longer than max_line ({} bytes); skipped",
                    self.max_line
                )),
                Piece::Broken(error) => {
                    self.ended = true;
                    let line = self.reader.line() + 1;
                    return Some(
                        self.raw(RawData::Unreadable(format!("read error: {error}")), line),
                    );
                }
                Piece::End => {
                    self.ended = true;
                    return None;
                }
            };
            return Some(self.raw(data, self.reader.line()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(format: Format, input: &'static [u8], max_line: u64) -> Vec<(String, String)> {
        let config = StdinSourceConfig {
            format,
            max_line: Some(Size(max_line)),
        };
        let mut source = StdinSource::over(&config, Box::new(input));
        std::iter::from_fn(|| source.next())
            .map(|raw| {
                let data = match raw.data {
                    RawData::Line(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    other => format!("{other:?}"),
                };
                (raw.origin.to_string(), data)
            })
            .collect()
    }

    #[test]
    fn lines_carry_their_line_numbers_and_blank_json_lines_are_skipped() {
        let lines = read_all(Format::Jsonl, b"{\"a\":1}\n\n  \r\n[2]\r\n", 100);
        assert_eq!(
            lines,
            [
                ("-:1".into(), "{\"a\":1}".into()),
                ("-:4".into(), "[2]".into())
            ]
        );
        let lines = read_all(Format::Lines, b"x\n\ny", 100);
        let texts: Vec<_> = lines.iter().map(|(o, t)| format!("{o}={t}")).collect();
        assert_eq!(texts, ["-:1=x", "-:2=", "-:3=y"]);
    }

    #[test]
    fn a_long_line_is_unreadable_and_reading_goes_on() {
        let lines = read_all(Format::Lines, b"0123456789\nok\n", 4);
        assert_eq!(lines[0].0, "-:1");
        assert!(
            lines[0].1.contains("longer than max_line (4 bytes)"),
            "{}",
            lines[0].1
        );
        assert_eq!(lines[1], ("-:2".into(), "ok".into()));
    }
}
