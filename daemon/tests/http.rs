//! The daemon around a real pipeline: `/metrics`, the control endpoints, the log
//! file, the deadline and the set-up errors.

mod common;
mod served;

use std::net::TcpListener;
use std::time::Duration;

use brigade_daemon::{report_json, report_text, Config, Daemon, Ended, TickLine};
use brigade_runtime::{Failure, Pipeline};
use common::{endless, wait_for};
use served::{request, value, Served};

#[test]
fn metrics_are_served_and_move_between_scrapes() {
    let served = Served::start(Config::default());
    served.wait_for_first_tick();
    let records = r#"brigade_stage_in_records_total{stage="work"}"#;
    let calls = r#"brigade_stage_service_time_seconds_count{stage="work"}"#;
    let first = served.scrape();
    for series in [
        r#"brigade_stage_workers_target{stage="work"}"#,
        r#"brigade_stage_pinned{stage="discard"}"#,
        r#"brigade_stage_busy_ratio{stage="work"}"#,
        r#"brigade_stage_wait_in_ratio{stage="discard"}"#,
        r#"brigade_stage_queue_depth{stage="work"}"#,
        r#"brigade_stage_queue_capacity{stage="work"}"#,
        r#"brigade_stage_errors_total{stage="work"}"#,
        r#"brigade_stage_input_wait_seconds_count{stage="discard"}"#,
        "brigade_throughput_records_per_second",
        "brigade_records_admitted_total",
        "brigade_inflight_bytes",
        "brigade_process_rss_bytes",
        "brigade_controller_paused",
        "brigade_latency_seconds_count",
    ] {
        assert!(value(&first, series).is_some(), "no {series} in\n{first}");
    }
    let before = (
        value(&first, records).unwrap(),
        value(&first, calls).unwrap(),
    );
    wait_for("the stage's counter and histogram to move", || {
        let now = served.scrape();
        value(&now, records).unwrap() > before.0 && value(&now, calls).unwrap() > before.1
    });
    let last = served.scrape();
    assert_eq!(
        value(
            &last,
            r#"brigade_stage_service_time_seconds_bucket{le="+Inf",stage="work"}"#
        ),
        value(&last, calls),
        "the +Inf bucket holds every call"
    );
    served.stop();
}

#[test]
fn controls_show_in_the_next_scrape() {
    let served = Served::start(Config::default());
    served.wait_for_first_tick();

    let pin = served.post("/control/pin?stage=work&workers=3");
    assert_eq!(pin.status, 200, "{}", pin.body);
    assert_eq!(
        pin.body,
        r#"{"ok":true,"override":{"op":"pin_workers","stage":0,"workers":3},"stage":"work"}"#
    );
    wait_for("the pin", || {
        let text = served.scrape();
        value(&text, r#"brigade_stage_pinned{stage="work"}"#) == Some(1.0)
            && value(&text, r#"brigade_stage_workers_target{stage="work"}"#) == Some(3.0)
    });
    // By index, with the parameter in a form body.
    let unpin = request(served.addr, "POST", "/control/unpin", Some("stage=0"));
    assert_eq!(unpin.status, 200, "{}", unpin.body);
    wait_for("the unpin", || {
        served.value(r#"brigade_stage_pinned{stage="work"}"#) == Some(0.0)
    });

    assert_eq!(served.post("/control/pause").status, 200);
    wait_for("the pause", || {
        served.value("brigade_controller_paused") == Some(1.0)
    });
    assert_eq!(served.post("/control/resume").status, 200);
    wait_for("the resume", || {
        served.value("brigade_controller_paused") == Some(0.0)
    });

    let budget = served.post("/control/budget?bytes=512MiB");
    assert_eq!(budget.status, 200, "{}", budget.body);
    wait_for("the budget", || {
        served.value("brigade_memory_budget_bytes") == Some(536_870_912.0)
    });
    assert_eq!(served.post("/control/budget?bytes=none").status, 200);
    wait_for("no budget", || {
        served.value("brigade_memory_budget_bytes").is_none()
    });
    served.stop();
}

#[test]
fn bad_requests_are_refused_with_the_reason() {
    let served = Served::start(Config::default());
    served.wait_for_first_tick();
    for (method, path, status, message) in [
        (
            "POST",
            "/control/pin?stage=work",
            400,
            "missing parameter workers",
        ),
        (
            "POST",
            "/control/pin?stage=work&workers=lots",
            400,
            r#"workers: expected a whole number of workers, got "lots""#,
        ),
        (
            "POST",
            "/control/pin?stage=work&workers=9",
            400,
            r#"workers: stage "work" takes 1 to 4 workers, got 9"#,
        ),
        (
            "POST",
            "/control/pin?stage=nope&workers=2",
            404,
            r#"stage: no stage "nope"; the stages are work, discard"#,
        ),
        (
            "POST",
            "/control/unpin?stage=work&force=yes",
            400,
            r#"unknown parameter "force""#,
        ),
        (
            "POST",
            "/control/budget?bytes=12XB",
            400,
            r#"bytes: expected a size: a byte count or a number and one of the units B, KiB, MiB, GiB, TiB (like "512B" or "1.5MiB"), got "12XB""#,
        ),
        (
            "POST",
            "/control/budget?bytes=0",
            400,
            "bytes: the budget must be at least 1 byte",
        ),
        (
            "GET",
            "/control/pause",
            405,
            "/control/pause takes POST, not GET",
        ),
        (
            "POST",
            "/control/budget?bytes=1e999GiB",
            400,
            r#"bytes: expected a size: a byte count or a number and one of the units B, KiB, MiB, GiB, TiB (like "512B" or "1.5MiB"), got "1e999GiB""#,
        ),
        (
            "POST",
            "/control/budget?bytes=99999999999TiB",
            400,
            r#"bytes: too large, got "99999999999TiB""#,
        ),
        (
            "POST",
            "/control/budget?bytes=16777215TiB",
            400,
            "bytes: 16777215TiB (16777215.0 TiB) is more than the machine's memory",
        ),
        (
            "POST",
            "/control/pin?stage=%zz&workers=2",
            400,
            r#"malformed percent-encoding in "%zz""#,
        ),
        (
            "POST",
            "/control/pin?stage=work&workers=%ff",
            400,
            r#""%ff" is not UTF-8 once decoded"#,
        ),
        (
            "POST",
            "/control/pause?%",
            400,
            r#"malformed percent-encoding in "%""#,
        ),
        ("POST", "/metrics", 405, "/metrics takes GET, not POST"),
        (
            "DELETE",
            "/control/pause",
            405,
            "/control/pause takes POST, not DELETE",
        ),
        ("GET", "/nope", 404, "no endpoint /nope"),
    ] {
        let response = request(served.addr, method, path, None);
        assert_eq!(
            response.status, status,
            "{method} {path}: {}",
            response.body
        );
        let body: serde_json::Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(body["ok"], false, "{method} {path}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(message), "{method} {path}: {error}");
    }
    assert_eq!(
        served.value(r#"brigade_stage_pinned{stage="work"}"#),
        Some(0.0),
        "a refused request changes nothing"
    );
    served.stop();
}

#[test]
fn the_log_has_one_line_per_tick_and_a_finished_run_reports() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ticks.jsonl");
    let config = Config {
        metrics_log: Some(log.clone()),
        ..Config::default()
    };
    let daemon = Daemon::new(&config).unwrap();
    let running = Pipeline::from_iter(0u64..1000)
        .tick(Duration::from_millis(100))
        .try_map("check", |x| {
            std::thread::sleep(Duration::from_millis(1));
            if x % 100 == 7 {
                Err(Failure::permanent(x, "ends in 07"))
            } else {
                Ok(x)
            }
        })
        .sink("discard", |_| {})
        .start()
        .unwrap();
    let outcome = daemon.run(running);
    assert_eq!(outcome.ended, Ended::Finished);
    let report = &outcome.report;
    assert_eq!(
        (report.admitted, report.completed, report.dead_lettered),
        (1000, 990, 10)
    );

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<TickLine> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(lines.len() >= 2, "{} lines", lines.len());
    for pair in lines.windows(2) {
        assert_eq!(pair[1].snapshot.tick, pair[0].snapshot.tick + 1);
    }
    let last = &lines.last().unwrap().snapshot;
    assert_eq!(last.global.totals.admitted, 1000);
    assert_eq!(last.global.totals.in_flight, 0);
    assert_eq!(last.global.totals.dead_lettered, 10);

    let json: serde_json::Value =
        serde_json::from_str(&report_json(report, outcome.progress.as_ref())).unwrap();
    assert_eq!(json["admitted"], 1000);
    assert_eq!(json["dead_lettered"], 10);
    let human = report_text(report, outcome.progress.as_ref());
    assert!(human.contains("  admitted        1000\n"), "{human}");
    assert!(
        human.contains("record 7 at stage \"check\", permanent failure: ends in 07"),
        "{human}"
    );
}

#[test]
fn a_deadline_stops_admission_and_drains() {
    let config = Config {
        deadline: Some(Duration::from_millis(300)),
        ..Config::default()
    };
    let daemon = Daemon::new(&config).unwrap();
    let running = endless();
    // The deadline counts from `run`: by then the pipeline has admitted records.
    let monitor = running.monitor();
    wait_for("records admitted", || {
        monitor
            .latest()
            .is_some_and(|s| s.global.totals.admitted > 0)
    });
    let outcome = daemon.run(running);
    assert_eq!(outcome.ended, Ended::Deadline);
    let report = outcome.report;
    assert!(report.admitted > 0);
    assert_eq!(report.admitted, report.completed + report.dead_lettered);
}

#[test]
fn set_up_errors_name_the_flag_and_the_value() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = Config {
        metrics_addr: Some(addr),
        ..Config::default()
    };
    let message = Daemon::new(&config).err().unwrap().to_string();
    assert!(
        message.starts_with(&format!("--metrics-addr {addr}: ")),
        "{message}"
    );

    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("no such dir").join("ticks.jsonl");
    let config = Config {
        metrics_log: Some(log.clone()),
        ..Config::default()
    };
    // Through `run`, which drains the pipeline it was given before answering.
    let message = brigade_daemon::run(endless(), &config)
        .err()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with(&format!(
            "--metrics-log {}: cannot open for writing: ",
            log.display()
        )),
        "{message}"
    );
}
