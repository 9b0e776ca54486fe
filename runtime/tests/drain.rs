//! Drain and acknowledgements: shutdown in the middle of a run finishes what is in
//! flight, and a source is acknowledged only over a prefix of finished records.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use brigade_runtime::{Failure, Pipeline, Source};

/// Positions finished so far (written or dead-lettered), shared by the sink, the
/// dead-letter handler and the source's ack check.
type Finished = Arc<Mutex<HashSet<u64>>>;

/// An endless source that checks every acknowledgement against what has finished.
struct Checked {
    next: u64,
    finished: Finished,
    acked: Arc<AtomicU64>,
    violations: Arc<Mutex<Vec<String>>>,
}

impl Source for Checked {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        self.next += 1;
        Some(self.next - 1)
    }

    fn ack(&mut self, position: u64) {
        let finished = self.finished.lock().unwrap();
        let previous = self.acked.swap(position, Ordering::SeqCst);
        if position < previous {
            self.violations
                .lock()
                .unwrap()
                .push(format!("ack went back from {previous} to {position}"));
        }
        if let Some(missing) = (previous..position).find(|p| !finished.contains(p)) {
            self.violations
                .lock()
                .unwrap()
                .push(format!("ack {position} passed unfinished record {missing}"));
        }
    }
}

#[test]
fn shutdown_mid_run_drains_and_acks_never_pass_an_unfinished_record() {
    let finished: Finished = Arc::default();
    let acked = Arc::new(AtomicU64::new(0));
    let violations = Arc::new(Mutex::new(Vec::new()));
    let source = Checked {
        next: 0,
        finished: finished.clone(),
        acked: acked.clone(),
        violations: violations.clone(),
    };
    let (in_sink, in_letters) = (finished.clone(), finished.clone());
    let running = Pipeline::from_source(source)
        .on_dead_letter(move |letter| {
            in_letters.lock().unwrap().insert(letter.position);
        })
        .try_map("jitter", |x: u64| {
            // Uneven service times reorder records across workers.
            std::thread::sleep(Duration::from_micros(50 * (x % 13)));
            if x.is_multiple_of(97) {
                Err(Failure::permanent(x, "poison"))
            } else {
                Ok(x)
            }
        })
        .workers(1, 8)
        .initial_workers(6)
        .sink("record", move |x| {
            in_sink.lock().unwrap().insert(x);
        })
        .initial_workers(3)
        .start()
        .unwrap();
    // Mid-run: the source is endless, and a few hundred records have finished.
    common::wait_for("records to finish", || {
        finished.lock().unwrap().len() >= 200
    });
    let report = running.shutdown();

    assert!(
        report.admitted >= 200,
        "the run got going: {}",
        report.admitted
    );
    assert_eq!(report.admitted, report.completed + report.dead_lettered);
    assert!(report.dead_lettered > 0, "record 0 is poison");
    assert_eq!(violations.lock().unwrap().as_slice(), &[] as &[String]);
    assert_eq!(
        report.acknowledged, report.admitted,
        "a drain acknowledges all"
    );
    assert_eq!(acked.load(Ordering::SeqCst), report.admitted);
    assert_eq!(finished.lock().unwrap().len() as u64, report.admitted);
}

#[test]
fn stopping_before_anything_runs_reports_zeros() {
    let running = Pipeline::from_iter(0..u64::MAX)
        .map("id", |x| x)
        .sink("drop", |_| {})
        .start()
        .unwrap();
    running.stop_admission();
    let report = running.wait();
    assert_eq!(report.admitted, report.completed + report.dead_lettered);
}
