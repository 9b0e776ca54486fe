//! Headless mode as an operator runs it: the real `brigade demo --headless` process,
//! scraped over HTTP, steered through a control endpoint guarded by a token, and
//! stopped with SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any one thing may take on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// Kills the process if the test fails before it exits.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.0 request on a fresh connection: (status, body).
fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    request_with(addr, method, path, "")
}

/// [`request`] with extra header lines (each ending in `\r\n`).
fn request_with(addr: SocketAddr, method: &str, path: &str, headers: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("the daemon accepts connections");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\n{headers}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn scrape(addr: SocketAddr) -> String {
    let (status, body) = request(addr, "GET", "/metrics");
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of one series (`name{labels}` exactly as exposed), if exposed.
fn value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(rest.parse().unwrap())
    })
}

/// Scrapes until `holds`; the last scrape.
fn scrape_until(addr: SocketAddr, what: &str, holds: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = scrape(addr);
        if holds(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {what}; last scrape:\n{text}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_headless_demo_serves_metrics_takes_a_pin_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ticks.jsonl");
    let child = Command::new(env!("CARGO_BIN_EXE_brigade"))
        .args(["demo", "tests/data/steady.toml", "--headless"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--metrics-addr", "127.0.0.1:0", "--report", "json"])
        .args(["--metrics-log", log.to_str().unwrap()])
        .env("BRIGADE_CONTROL_TOKEN", "op-t0ken")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut daemon = Daemon(child);

    // The daemon says where it listens on standard error; keep reading it so that
    // decision logs never fill the pipe.
    let (lines, stderr_lines) = mpsc::channel();
    let stderr = daemon.0.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let addr: SocketAddr = loop {
        let line = stderr_lines
            .recv_timeout(PATIENCE)
            .expect("the daemon names its metrics address");
        if let Some(rest) = line.split("metrics on http://").nth(1) {
            break rest.trim_end_matches("/metrics").parse().unwrap();
        }
    };

    let work_in = r#"brigade_stage_in_records_total{stage="work"}"#;
    let first = scrape_until(addr, "the first tick", |text| {
        value(text, work_in).is_some_and(|n| n > 0.0)
    });
    for series in [
        r#"brigade_stage_workers_live{stage="work"}"#,
        r#"brigade_stage_busy_ratio{stage="store"}"#,
        r#"brigade_stage_queue_depth{stage="store"}"#,
        r#"brigade_stage_service_time_seconds_count{stage="store"}"#,
        r#"brigade_stage_service_time_seconds_bucket{le="+Inf",stage="store"}"#,
        r#"brigade_stage_record_size_bytes_count{stage="work"}"#,
        "brigade_inflight_bytes",
        "brigade_process_rss_bytes",
    ] {
        assert!(value(&first, series).is_some(), "{series} in:\n{first}");
    }
    let before = value(&first, work_in).unwrap();
    scrape_until(addr, "the counters moving", |text| {
        value(text, work_in).is_some_and(|n| n > before)
    });

    // The token from the environment guards the controls.
    let pin = "/control/pin?stage=store&workers=3";
    let (status, body) = request(addr, "POST", pin);
    assert_eq!(status, 401, "{body}");
    let (status, body) = request_with(addr, "POST", pin, "Authorization: Bearer op-t0ken\r\n");
    assert_eq!(status, 200, "{body}");
    scrape_until(addr, "the pin in a scrape", |text| {
        value(text, r#"brigade_stage_pinned{stage="store"}"#) == Some(1.0)
            && value(text, r#"brigade_stage_workers_target{stage="store"}"#) == Some(3.0)
    });

    let pid = i32::try_from(daemon.0.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid, with a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not drain in time"
        );
        thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    daemon
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let said: Vec<String> = stderr_lines.try_iter().collect();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", said.join("\n"));
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let count = |key: &str| {
        report[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {report}"))
    };
    assert!(count("admitted") > 0, "{report}");
    assert_eq!(
        count("admitted"),
        count("completed") + count("dead_lettered"),
        "{report}"
    );
    for key in [
        "throughput",
        "peak_inflight_bytes",
        "peak_rss_bytes",
        "worker_seconds",
        "decisions",
    ] {
        assert!(report[key].is_number(), "{key}: {report}");
    }

    let ticks = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = ticks
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert!(lines.len() >= 2, "{ticks}");
    assert!(lines
        .iter()
        .all(|line| line["snapshot"]["stages"].is_array()));
}
