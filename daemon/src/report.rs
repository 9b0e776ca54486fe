//! The final report, for `--report json` and for people.

use std::fmt::Write as _;

use brigade_controller::units::format_bytes;
use brigade_controller::Progress;
use brigade_runtime::{DeadLetterCause, Report, RunFailure, StageReport};
use serde::Serialize;

use crate::progress::files_and_bytes;

/// Dead letters listed by [`report_text`]; the rest are counted.
const DEAD_LETTERS_SHOWN: usize = 5;

/// The report as [`report_json`] writes it.
#[derive(Serialize)]
struct ReportJson<'a> {
    admitted: u64,
    completed: u64,
    dead_lettered: u64,
    throughput: f64,
    peak_inflight_bytes: u64,
    peak_rss_bytes: u64,
    worker_seconds: f64,
    decisions: usize,
    acknowledged: u64,
    elapsed_s: f64,
    stages: &'a [StageReport],
    failures: &'a [RunFailure],
    #[serde(skip_serializing_if = "Option::is_none")]
    source_progress: Option<&'a Progress>,
}

/// The final report as one JSON object on one line (`--report json`).
///
/// Its keys: `admitted`, `completed`, `dead_lettered`, `throughput` (completed source
/// records per second over the run), `peak_inflight_bytes`, `peak_rss_bytes`,
/// `worker_seconds`, `decisions`; then `acknowledged`, `elapsed_s`, and `stages`: per
/// stage in pipeline order, [`StageReport`]'s fields (`name`, `records_in`,
/// `records_out`, `errors`, `retries`, `dead_lettered`, `busy_s`, `worker_seconds`,
/// `most_workers`); and `failures`: what went wrong, each an object whose `kind` is
/// `source_panicked` (`message`, `position`), `dead_letter_handler_panicked`
/// (`message`, `stage`) or `drain_deadline` (`after_s`, `records`, and `stages`: per
/// stage `name`, `queued`, `bytes`), empty for a clean run; and, when the source said
/// how far it read (`progress`, as [`Outcome::progress`](crate::Outcome::progress)
/// gives it), `source_progress`: `files_done`, `files_total`, `bytes_done`,
/// `bytes_total` (the totals `null` when not known). Dead letters themselves are not
/// included.
pub fn report_json(report: &Report, progress: Option<&Progress>) -> String {
    let json = ReportJson {
        admitted: report.admitted,
        completed: report.completed,
        dead_lettered: report.dead_lettered,
        throughput: report.throughput,
        peak_inflight_bytes: report.peak_inflight_bytes,
        peak_rss_bytes: report.peak_rss_bytes,
        worker_seconds: report.worker_seconds,
        decisions: report.decisions,
        acknowledged: report.acknowledged,
        elapsed_s: report.elapsed_s,
        stages: &report.stages,
        failures: &report.failures,
        source_progress: progress,
    };
    // serde_json fails only on maps with non-string keys and on failing Serialize
    // impls; there are neither here.
    serde_json::to_string(&json).expect("a report always serializes")
}

/// The final report for people: the run's figures (with how far the source read, when
/// `progress` says), a table of stages, and the first dead letters kept in the report.
/// Ends with a newline.
pub fn report_text(report: &Report, progress: Option<&Progress>) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        let _ = writeln!(out, "  {label:<16}{value}");
    };
    line("elapsed", format!("{:.1} s", report.elapsed_s));
    line("admitted", report.admitted.to_string());
    line("completed", report.completed.to_string());
    line("dead-lettered", report.dead_lettered.to_string());
    line("acknowledged", report.acknowledged.to_string());
    if let Some(progress) = progress {
        line("source read", files_and_bytes(progress));
    }
    line("throughput", format!("{:.1} records/s", report.throughput));
    line("peak in flight", format_bytes(report.peak_inflight_bytes));
    line("peak RSS", format_bytes(report.peak_rss_bytes));
    line("worker-seconds", format!("{:.1}", report.worker_seconds));
    line("decisions", report.decisions.to_string());
    let mut out = format!("brigade: final report\n{out}");
    for failure in &report.failures {
        let _ = writeln!(out, "  failed: {failure}");
    }
    if !report.stages.is_empty() {
        let width = report
            .stages
            .iter()
            .map(|s| s.name.chars().count())
            .chain([5])
            .max()
            .unwrap_or(5);
        let _ = writeln!(
            out,
            "\n  {:<width$}  {:>10}  {:>10}  {:>7}  {:>7}  {:>6}  {:>8}  {:>9}  {:>7}",
            "stage", "in", "out", "errors", "retries", "dead", "busy s", "worker s", "workers"
        );
        for s in &report.stages {
            let _ = writeln!(
                out,
                "  {:<width$}  {:>10}  {:>10}  {:>7}  {:>7}  {:>6}  {:>8.1}  {:>9.1}  {:>7}",
                s.name,
                s.records_in,
                s.records_out,
                s.errors,
                s.retries,
                s.dead_lettered,
                s.busy_s,
                s.worker_seconds,
                s.most_workers
            );
        }
    }
    if !report.dead_letters.is_empty() {
        let shown = report.dead_letters.len().min(DEAD_LETTERS_SHOWN);
        let _ = writeln!(
            out,
            "\n  dead letters kept: {} (the first {shown}):",
            report.dead_letters.len()
        );
        for letter in &report.dead_letters[..shown] {
            let cause = match &letter.cause {
                DeadLetterCause::Permanent => "permanent failure".to_owned(),
                DeadLetterCause::RetriesExhausted { attempts } => {
                    format!("failed {attempts} times")
                }
                DeadLetterCause::Panicked => "panicked".to_owned(),
                DeadLetterCause::TooLarge { size, budget } => format!(
                    "{} is over the whole budget of {}",
                    format_bytes(*size),
                    format_bytes(*budget)
                ),
            };
            let _ = writeln!(
                out,
                "    record {} at stage {:?}, {cause}: {}",
                letter.position, letter.stage, letter.error
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            admitted: 1000,
            completed: 990,
            dead_lettered: 10,
            acknowledged: 1000,
            elapsed_s: 2.0,
            throughput: 495.0,
            peak_inflight_bytes: 3 << 20,
            peak_rss_bytes: 45 << 20,
            worker_seconds: 4.5,
            decisions: 7,
            stages: vec![StageReport {
                name: "parse".into(),
                records_in: 1000,
                records_out: 990,
                errors: 10,
                retries: 2,
                dead_lettered: 10,
                busy_s: 1.25,
                worker_seconds: 4.5,
                most_workers: 3,
            }],
            failures: Vec::new(),
            dead_letters: Vec::new(),
        }
    }

    #[test]
    fn json_has_the_listed_keys_at_top_level() {
        let value: serde_json::Value = serde_json::from_str(&report_json(&report(), None)).unwrap();
        let object = value.as_object().unwrap();
        for key in [
            "admitted",
            "completed",
            "dead_lettered",
            "throughput",
            "peak_inflight_bytes",
            "peak_rss_bytes",
            "worker_seconds",
            "decisions",
        ] {
            assert!(object.contains_key(key), "{key} missing from {value}");
        }
        assert_eq!(value["admitted"], 1000);
        assert_eq!(value["throughput"], 495.0);
        assert_eq!(value["decisions"], 7);
        assert_eq!(value["stages"][0]["name"], "parse");
        assert_eq!(value["stages"][0]["most_workers"], 3);
        assert!(!report_json(&report(), None).contains('\n'));
    }

    #[test]
    fn text_reads_as_a_table() {
        let text = report_text(&report(), None);
        assert_eq!(
            text,
            "brigade: final report\n  \
             elapsed         2.0 s\n  \
             admitted        1000\n  \
             completed       990\n  \
             dead-lettered   10\n  \
             acknowledged    1000\n  \
             throughput      495.0 records/s\n  \
             peak in flight  3.0 MiB\n  \
             peak RSS        45.0 MiB\n  \
             worker-seconds  4.5\n  \
             decisions       7\n\
             \n  \
             stage          in         out   errors  retries    dead    busy s   worker s  workers\n  \
             parse        1000         990       10        2      10       1.2        4.5        3\n"
        );
    }

    #[test]
    fn the_source_s_final_progress_when_it_said() {
        let progress = Progress {
            files_done: 10,
            files_total: Some(10),
            bytes_done: 4 << 30,
            bytes_total: Some(4 << 30),
        };
        let text = report_text(&report(), Some(&progress));
        assert!(
            text.contains(
                "  acknowledged    1000\n  source read     10/10 files, 4.0 GiB of 4.0 GiB (100%)\n"
            ),
            "{text}"
        );
        let value: serde_json::Value =
            serde_json::from_str(&report_json(&report(), Some(&progress))).unwrap();
        assert_eq!(value["source_progress"]["files_done"], 10);
        assert_eq!(value["source_progress"]["bytes_total"], 4u64 << 30);
        let without: serde_json::Value =
            serde_json::from_str(&report_json(&report(), None)).unwrap();
        assert!(without.get("source_progress").is_none(), "{without}");
        assert!(!report_text(&report(), None).contains("source read"));
    }
}
