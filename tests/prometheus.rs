//! Headless mode as Prometheus sees it: a real `prometheus` server scrapes a real
//! `brigade demo --headless` every second and stores every stage's series, and
//! `promtool check metrics` finds nothing to lint in the exposition.
//!
//! Needs the `prometheus` and `promtool` binaries (Debian: `apt-get install prometheus`;
//! `.ci/run` installs them). Without them the test says so on stderr and passes, unless
//! `CI` is set, where it fails.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long any one thing may take on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(120);

/// The Accept header Prometheus 2.42 sends with each scrape (`scrapeAcceptHeader` in
/// its `scrape/scrape.go`; the same as a capture of its requests shows).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The stages of the built-in demo (`scenarios/demo.toml`).
const DEMO_STAGES: [&str; 3] = ["parse", "enrich", "store"];

/// A child process killed and reaped however the test ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `prometheus` and `promtool` can run; without them, fails under CI and
/// otherwise says the test is skipped.
fn prometheus_installed() -> bool {
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if runs("prometheus") && runs("promtool") {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "prometheus and promtool are not on PATH: install the Debian package prometheus \
         (apt-get install prometheus), as .ci/run does"
    );
    // Straight to the stderr stream, past the test harness's capture, to be seen.
    let _ = writeln!(
        std::io::stderr(),
        "skipped: install prometheus (apt-get install prometheus) to run tests/prometheus.rs"
    );
    false
}

/// One HTTP/1.0 GET on a fresh connection: (status, head, body), or why not.
fn try_get(addr: SocketAddr, path: &str, accept: &str) -> Result<(u16, String, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: {accept}\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Ok((status, head.to_owned(), body.to_owned()))
}

fn get(addr: SocketAddr, path: &str, accept: &str) -> (u16, String, String) {
    try_get(addr, path, accept).unwrap()
}

/// Starts the built-in demo headless on a free port: the process and its address.
fn start_demo() -> (Reaped, SocketAddr) {
    let child = Command::new(env!("CARGO_BIN_EXE_brigade"))
        .args(["demo", "--headless", "--metrics-addr", "127.0.0.1:0"])
        .args(["--report", "json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut demo = Reaped(child);
    // The daemon says where it listens on standard error; keep reading it to the end,
    // so that decision logs never fill the pipe nor meet a closed one.
    let (lines, said) = mpsc::channel();
    let stderr = demo.0.stderr.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let addr = loop {
        let line = said
            .recv_timeout(PATIENCE)
            .expect("the daemon names its metrics address");
        if let Some(rest) = line.split("metrics on http://").nth(1) {
            break rest.trim_end_matches("/metrics").parse().unwrap();
        }
    };
    (demo, addr)
}

/// A loopback port nobody listened on a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts Prometheus in `dir` (its config, data and log), scraping `target` every
/// second: the process and its address.
fn start_prometheus(dir: &Path, target: SocketAddr) -> (Reaped, SocketAddr) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: brigade\n    static_configs:\n      \
             - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("prometheus starts");
    (Reaped(child), addr)
}

/// The series an instant query returns, (labels, value) each; or why not (Prometheus
/// not up yet, or refusing the query).
fn query(prometheus: SocketAddr, promql: &str) -> Result<Vec<(serde_json::Value, f64)>, String> {
    let encoded: String = promql
        .chars()
        .map(|c| match c {
            '{' | '}' | '"' | '+' | '=' | ' ' => format!("%{:02X}", u32::from(c)),
            c => c.to_string(),
        })
        .collect();
    let path = format!("/api/v1/query?query={encoded}");
    let (status, _, body) = try_get(prometheus, &path, "application/json")?;
    if status != 200 {
        return Err(format!("query {promql}: {status} {body}"));
    }
    let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON from the API");
    let result = answer["data"]["result"].as_array().ok_or(body.clone())?;
    Ok(result
        .iter()
        .map(|series| {
            let value = series["value"][1].as_str().unwrap().parse().unwrap();
            (series["metric"].clone(), value)
        })
        .collect())
}

/// Whether `promql` returns one series per stage of the demo, each labelled `stage`
/// and with a value that `keep`s; and what it returned.
fn per_stage(prometheus: SocketAddr, promql: &str, keep: fn(f64) -> bool) -> (bool, String) {
    match query(prometheus, promql) {
        Ok(series) => {
            let stages: BTreeSet<&str> = series
                .iter()
                .filter(|(_, value)| keep(*value))
                .filter_map(|(labels, _)| labels["stage"].as_str())
                .collect();
            (
                stages == BTreeSet::from(DEMO_STAGES),
                format!("{promql}: {series:?}"),
            )
        }
        Err(why) => (false, why),
    }
}

/// Polls until `holds` gives `true`, with the last thing it saw for the failure.
fn wait_until(what: &str, mut holds: impl FnMut() -> (bool, String)) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (done, seen) = holds();
        if done {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {what}; last seen: {seen}"
        );
        thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn prometheus_stores_every_stage_and_promtool_finds_nothing_to_lint() {
    if !prometheus_installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut demo, daemon) = start_demo();

    // What Prometheus is served: OpenMetrics.
    wait_until("the first tick", || {
        let (_, _, body) = get(daemon, "/metrics", PROMETHEUS_ACCEPT);
        (body.contains("brigade_tick "), body)
    });
    let (status, head, body) = get(daemon, "/metrics", PROMETHEUS_ACCEPT);
    assert_eq!(status, 200, "{body}");
    assert!(
        head.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");

    // What promtool reads: the text format, as the daemon serves it to any client that
    // does not prefer OpenMetrics (promtool 2.42 parses only the text format).
    let (status, head, text) = get(daemon, "/metrics", "text/plain;version=0.0.4");
    assert_eq!(status, 200, "{text}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let lint = promtool.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    assert!(
        lint.status.success() && said.trim().is_empty(),
        "promtool check metrics: {} {said}\non:\n{text}",
        lint.status
    );

    // What Prometheus stores.
    let (_prometheus, prometheus) = start_prometheus(dir.path(), daemon);
    let log = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    wait_until("a brigade_stage_workers_live series per stage", || {
        let (done, seen) = per_stage(prometheus, "brigade_stage_workers_live", |n| n >= 1.0);
        (done, format!("{seen}\nprometheus's log:\n{}", log()))
    });
    wait_until("a counter counting, per stage", || {
        per_stage(prometheus, "brigade_stage_in_records_total", |n| n > 0.0)
    });
    wait_until("the +Inf bucket of a histogram, per stage", || {
        let promql = r#"brigade_stage_service_time_seconds_bucket{le="+Inf"}"#;
        per_stage(prometheus, promql, |n| n > 0.0)
    });
    // Prometheus read OpenMetrics: only that format gives a family its unit.
    let path = "/api/v1/targets/metadata?metric=brigade_stage_service_time_seconds";
    let (status, _, body) = get(prometheus, path, "application/json");
    assert_eq!(status, 200, "{body}");
    let metadata: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(metadata["data"][0]["type"], "histogram", "{body}");
    assert_eq!(metadata["data"][0]["unit"], "seconds", "{body}");
    let up = query(prometheus, r#"up{job="brigade"}"#).unwrap();
    assert!(matches!(up.as_slice(), [(_, v)] if *v == 1.0), "up: {up:?}");

    // The daemon drains on SIGTERM and exits 0.
    let pid = i32::try_from(demo.0.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid, with a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not drain in time"
        );
        thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{status}");
}
