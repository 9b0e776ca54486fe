//! A finite source under the daemon: its progress in `/metrics` while it reads, a
//! progress line on stderr every few seconds of the run and one at its end, and the
//! final progress in the outcome and the report.

mod common;
mod served;

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brigade_controller::Progress;
use brigade_daemon::{report_json, report_text, Config, Daemon, Ended};
use brigade_runtime::{Pipeline, Source};
use common::wait_for;

const FILES: u64 = 4;
const LINES_PER_FILE: u64 = 100;
const LINE_BYTES: u64 = 64;
const TOTAL_BYTES: u64 = FILES * LINES_PER_FILE * LINE_BYTES;

/// Files of fixed-size lines, knowing the totals from the start.
struct Files {
    read: u64,
}

impl Source for Files {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        (self.read < FILES * LINES_PER_FILE).then(|| {
            self.read += 1;
            vec![b'x'; LINE_BYTES as usize]
        })
    }

    fn progress(&self) -> Option<Progress> {
        Some(Progress {
            files_done: self.read / LINES_PER_FILE,
            files_total: Some(FILES),
            bytes_done: self.read * LINE_BYTES,
            bytes_total: Some(TOTAL_BYTES),
        })
    }
}

/// What the process logs through `tracing`, kept to be read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_finite_source_shows_its_progress_in_metrics_on_stderr_and_in_the_report() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let config = Config {
        metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
        progress_every: Some(Duration::from_millis(200)),
        ..Config::default()
    };
    let daemon = Daemon::new(&config).unwrap();
    let addr = daemon.metrics_addr().unwrap();
    let running = Pipeline::from_source(Files { read: 0 })
        .tick(Duration::from_millis(50))
        .sink("slow", |_: Vec<u8>| {
            std::thread::sleep(Duration::from_millis(2));
        })
        .queue_capacity(4)
        .start()
        .unwrap();
    let run = std::thread::spawn(move || daemon.run(running));

    let scrape = || served::request(addr, "GET", "/metrics", None).body;
    let mut exposition = String::new();
    wait_for("part of the input read", || {
        exposition = scrape();
        served::value(&exposition, "brigade_source_done_bytes")
            .is_some_and(|done| done > 0.0 && done < TOTAL_BYTES as f64)
    });
    assert_eq!(
        served::value(&exposition, "brigade_source_expected_bytes"),
        Some(TOTAL_BYTES as f64)
    );
    assert_eq!(
        served::value(&exposition, "brigade_source_files_expected"),
        Some(FILES as f64)
    );
    assert!(served::value(&exposition, "brigade_source_files_done").is_some());
    assert_eq!(
        served::value(
            &exposition,
            r#"brigade_stage_open_failures_total{stage="slow"}"#
        ),
        Some(0.0)
    );
    lint(&exposition);

    let outcome = run.join().unwrap();
    assert_eq!(outcome.ended, Ended::Finished);
    let progress = outcome.progress.expect("the source said how far it read");
    assert_eq!(
        (progress.files_done, progress.bytes_done),
        (FILES, TOTAL_BYTES)
    );
    let text = report_text(&outcome.report, outcome.progress.as_ref());
    assert!(
        text.contains("  source read     4/4 files, 25.0 KiB of 25.0 KiB (100%)\n"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&report_json(&outcome.report, outcome.progress.as_ref())).unwrap();
    assert_eq!(json["source_progress"]["bytes_done"], TOTAL_BYTES);

    let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logged
        .lines()
        .filter(|line| line.contains("brigade::progress"))
        .collect();
    assert!(
        lines.iter().any(|line| line.contains("progress: ")
            && line.contains("/4 files")
            && line.contains(" left")),
        "a line while reading, with the time left: {logged}"
    );
    assert!(
        lines.last().is_some_and(|line| line
            .ends_with("progress: 4/4 files, 25.0 KiB of 25.0 KiB (100%), read to its end")),
        "the last says the source is read to its end: {logged}"
    );
}

/// `promtool check metrics` finds nothing wrong with `exposition`, when promtool is
/// installed (CI has it; see the workspace's tests/prometheus.rs).
fn lint(exposition: &str) {
    let Ok(mut promtool) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not found: the exposition is not linted");
        return;
    };
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool: {}{}\n{exposition}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
