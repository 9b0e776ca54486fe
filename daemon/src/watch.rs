//! The watcher thread: takes every tick from the monitor's feed onto the board, into
//! the log file, and logs each decision with its reason, a stage's workers that could
//! not open their resource, and a finite source's progress every few seconds.

use std::sync::Arc;
use std::thread::JoinHandle;

use brigade_controller::{Action, DecisionRecord, Outcome, Snapshot, StageStats};
use brigade_runtime::Tick;
use crossbeam_channel::Receiver;

use crate::config::Error;
use crate::journal::Journal;
use crate::progress::ProgressLog;
use crate::Shared;
use brigade_controller::units::format_bytes;

/// Starts the watcher. It waits for the feed on `start` (it ends at once if `start`
/// is dropped unsent), then takes ticks until the feed ends with the run.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    mut journal: Option<Journal>,
    mut progress: ProgressLog,
    start: Receiver<Receiver<Tick>>,
) -> Result<JoinHandle<()>, Error> {
    std::thread::Builder::new()
        .name("brigade:daemon-watch".into())
        .spawn(move || {
            let Ok(feed) = start.recv() else {
                return;
            };
            for tick in feed {
                let unreadable = shared.board.lock().take(&tick);
                for (histogram, error) in unreadable {
                    tracing::warn!(tick = tick.snapshot.tick, %error, "{histogram} left out of /metrics");
                }
                for record in &tick.decisions {
                    log_decision(&tick.snapshot, record);
                }
                log_open_failures(&tick.snapshot);
                if let Some(line) = progress.take(&tick.snapshot) {
                    tracing::info!(target: "brigade::progress", "{line}");
                }
                if let Some(journal) = &mut journal {
                    journal.write(&tick);
                }
            }
        })
        .map_err(|error| Error::Thread {
            what: "watcher",
            error,
        })
}

/// Logs one decision at info: who, which stage, what, what became of it, and why.
fn log_decision(snapshot: &Snapshot, record: &DecisionRecord) {
    let action = &record.decision.action;
    let stage = match action.stage() {
        Some(i) => snapshot
            .stages
            .get(i)
            .map_or_else(|| format!("#{i}"), |s| s.name.clone()),
        None => "pipeline".to_owned(),
    };
    tracing::info!(
        target: "brigade::decision",
        tick = record.tick,
        by = %record.by,
        stage = %stage,
        action = %describe(action),
        outcome = %outcome(&record.outcome),
        "{}",
        record.decision.reason
    );
}

/// Logs at warn, once per window, each stage some of whose workers could not open
/// their resource: how many, and the last error.
fn log_open_failures(snapshot: &Snapshot) {
    for stage in snapshot.stages.iter().filter(|s| s.open_failures > 0) {
        tracing::warn!(
            target: "brigade::open",
            tick = snapshot.tick,
            stage = %stage.name,
            failures = stage.open_failures,
            "{}",
            open_failure(stage)
        );
    }
}

/// `2 workers of `geocode` could not open: connection refused`.
fn open_failure(stage: &StageStats) -> String {
    let workers = if stage.open_failures == 1 {
        "worker"
    } else {
        "workers"
    };
    format!(
        "{} {workers} of `{}` could not open: {}",
        stage.open_failures,
        stage.name,
        stage.open_error.as_deref().unwrap_or("no reason given")
    )
}

/// What an action sets, in words: `workers → 4`, `memory budget → 64.0 MiB`.
fn describe(action: &Action) -> String {
    let bytes = |b: Option<u64>, none: &str| b.map_or_else(|| none.to_owned(), format_bytes);
    match *action {
        Action::SetWorkers { workers, .. } => format!("workers → {workers}"),
        Action::SetQueueCapacity { capacity, .. } => format!("queue capacity → {capacity}"),
        Action::SetBatchSize { size, .. } => format!("batch size → {size}"),
        Action::SetConcurrencyLimit { limit, .. } => format!(
            "concurrency limit → {}",
            limit.map_or_else(|| "none".to_owned(), |l| l.to_string())
        ),
        Action::SetRateLimit { per_second, .. } => format!(
            "rate limit → {}",
            per_second.map_or_else(|| "none".to_owned(), per_second_in_words)
        ),
        Action::SetSerialThreshold { bytes: b } => {
            format!("serial threshold → {}", bytes(b, "off"))
        }
        Action::SetMemoryBudget { bytes: b } => {
            format!("memory budget → {}", bytes(b, "the operator's"))
        }
        other => format!("{other:?}"),
    }
}

/// A rate limit in words: `250/s`, `2.5/s`, or `1 per 60 s` below one a second.
fn per_second_in_words(rate: f64) -> String {
    if rate >= 1.0 {
        format!("{}/s", (rate * 10.0).round() / 10.0)
    } else {
        format!("1 per {} s", (1.0 / rate.max(1e-9) * 10.0).round() / 10.0)
    }
}

fn outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Applied => "applied".to_owned(),
        Outcome::Clamped { value } => format!("clamped to {value}"),
        Outcome::Ignored { why } => format!("ignored: {why}"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_as_words() {
        assert_eq!(
            describe(&Action::SetWorkers {
                stage: 0,
                workers: 4
            }),
            "workers → 4"
        );
        assert_eq!(
            describe(&Action::SetMemoryBudget {
                bytes: Some(64 << 20)
            }),
            "memory budget → 64.0 MiB"
        );
        assert_eq!(
            describe(&Action::SetSerialThreshold { bytes: None }),
            "serial threshold → off"
        );
        assert_eq!(
            describe(&Action::SetRateLimit {
                stage: 1,
                per_second: Some(250.0)
            }),
            "rate limit → 250/s"
        );
        assert_eq!(
            describe(&Action::SetRateLimit {
                stage: 1,
                per_second: Some(1.0 / 60.0)
            }),
            "rate limit → 1 per 60 s"
        );
        assert_eq!(outcome(&Outcome::Clamped { value: 8 }), "clamped to 8");
    }

    #[test]
    fn an_open_failure_names_the_stage_and_the_error() {
        let stage = StageStats {
            name: "geocode".into(),
            open_failures: 2,
            open_error: Some("connect to geo.internal:443: connection refused".into()),
            ..StageStats::default()
        };
        assert_eq!(
            open_failure(&stage),
            "2 workers of `geocode` could not open: connect to geo.internal:443: connection refused"
        );
        let one = StageStats {
            open_failures: 1,
            open_error: None,
            ..stage
        };
        assert_eq!(
            open_failure(&one),
            "1 worker of `geocode` could not open: no reason given"
        );
    }
}
