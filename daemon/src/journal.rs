//! The `--metrics-log` file: one JSON object per line, one line per tick.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use brigade_controller::{DecisionRecord, Snapshot};
use brigade_runtime::Tick;
use serde::{Deserialize, Serialize};

use crate::config::Error;

/// One line of the `--metrics-log` file: a closed window and the decisions taken after
/// it, as `{"snapshot": {…}, "decisions": [{…}, …]}`. Both are the controller crate's
/// own serde shapes ([`Snapshot`], [`DecisionRecord`]); histograms carry their
/// percentiles and the full hdrhistogram (base64 V2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TickLine {
    /// What was measured in the window.
    pub snapshot: Snapshot,
    /// What the controller and the operator changed after it, with outcomes.
    pub decisions: Vec<DecisionRecord>,
}

/// [`TickLine`] by reference, to write a tick without copying it.
#[derive(Serialize)]
struct TickLineRef<'a> {
    snapshot: &'a Snapshot,
    decisions: &'a [DecisionRecord],
}

/// The open log file. After a write fails, it logs the error once and writes no more.
pub(crate) struct Journal {
    path: PathBuf,
    out: Option<BufWriter<File>>,
}

impl Journal {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: &Path) -> Result<Self, Error> {
        let file = File::create(path).map_err(|error| Error::MetricsLog {
            path: path.to_owned(),
            error,
        })?;
        Ok(Self {
            path: path.to_owned(),
            out: Some(BufWriter::new(file)),
        })
    }

    /// Appends `tick` as one line and flushes it, so that readers see whole lines.
    pub fn write(&mut self, tick: &Tick) {
        let Some(out) = &mut self.out else {
            return;
        };
        let line = TickLineRef {
            snapshot: &tick.snapshot,
            decisions: &tick.decisions,
        };
        let written = serde_json::to_writer(&mut *out, &line)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        if let Err(error) = written {
            tracing::error!(
                path = %self.path.display(),
                %error,
                "cannot write the metrics log; no more ticks will be written to it"
            );
            self.out = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use brigade_controller::{Action, Decision, Outcome};

    use super::*;

    #[test]
    fn lines_read_back_as_tick_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ticks.jsonl");
        let mut journal = Journal::create(&path).unwrap();
        let decision = DecisionRecord {
            tick: 1,
            at_s: 1.0,
            by: "operator".into(),
            decision: Decision::new(Action::SetSerialThreshold { bytes: None }, "why"),
            outcome: Outcome::Applied,
        };
        for tick in 1..=2 {
            journal.write(&Tick {
                snapshot: Arc::new(Snapshot {
                    tick,
                    ..Snapshot::default()
                }),
                decisions: vec![decision.clone()],
            });
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<TickLine> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].snapshot.tick, 2);
        assert_eq!(lines[1].decisions, vec![decision]);
        assert!(text.starts_with(r#"{"snapshot":{"tick":1,"#), "{text}");
    }

    #[test]
    fn an_unwritable_path_names_the_flag_and_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("ticks.jsonl");
        let message = Journal::create(&path).err().unwrap().to_string();
        assert!(
            message.starts_with(&format!(
                "--metrics-log {}: cannot open for writing:",
                path.display()
            )),
            "{message}"
        );
    }
}
