//! A drain with a deadline: a sink call that hangs does not hold the daemon.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use brigade_daemon::{report_json, report_text, Config, Daemon, Ended};
use brigade_runtime::{Pipeline, RunFailure};

#[test]
fn a_drain_timeout_abandons_a_hung_sink_and_reports_it() {
    let (release, released) = mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    let config = Config {
        deadline: Some(Duration::from_millis(200)),
        drain_timeout: Some(Duration::from_millis(300)),
        ..Config::default()
    };
    let daemon = Daemon::new(&config).unwrap();
    let running = Pipeline::from_iter(0u64..)
        .sink("hangs", move |x| {
            if x == 10 {
                let _ = released.lock().unwrap().recv();
            }
        })
        .start()
        .unwrap();
    let started = Instant::now();
    let outcome = daemon.run(running);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(outcome.ended, Ended::Deadline);
    let report = &outcome.report;
    assert!(
        report.acknowledged <= 10,
        "acknowledged {}",
        report.acknowledged
    );
    assert!(
        matches!(report.failures[..], [RunFailure::DrainDeadline { records, .. }] if records >= 1),
        "{:?}",
        report.failures
    );
    let text = report_text(report, outcome.progress.as_ref());
    assert!(
        text.contains("failed: the drain did not finish within 0.3 s"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&report_json(report, outcome.progress.as_ref())).unwrap();
    assert_eq!(json["failures"][0]["kind"], "drain_deadline");
    assert_eq!(json["failures"][0]["stages"][0]["name"], "hangs");
    drop(release);
}
