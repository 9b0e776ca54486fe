//! The exec stage against real processes: Python and `sh` programs.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;

use super::{ExecConfig, ExecError, ExecFailure, ExecWorker};
use crate::units::{Size, Span};
use crate::{Origin, Record};

/// A stage program with a behaviour for each `{"do": …}` record; any other record is
/// answered `{"out": {"value": record, "seen": records this process has read}}`.
const STAGE: &str = r#"
import json, sys, time
seen = 0
for line in sys.stdin:
    seen += 1
    value = json.loads(line)
    do = value.get("do") if isinstance(value, dict) else None
    if do == "fan":
        answer = {"outs": [value["n"]] * value["n"]}
    elif do == "error":
        answer = {"error": "no good"}
    elif do == "retry":
        answer = {"retry": "busy"}
    elif do == "garbage":
        print("this is not json", flush=True)
        continue
    elif do == "two keys":
        answer = {"out": 1, "error": "x"}
    elif do == "long":
        answer = {"out": "x" * 1000}
    elif do == "exit":
        sys.stderr.write("dying on purpose\n")
        sys.stderr.flush()
        sys.exit(3)
    elif do == "hang":
        sys.stderr.write("stuck\n")
        sys.stderr.flush()
        time.sleep(60)
    elif do == "last":
        print(json.dumps({"out": "bye"}), flush=True)
        sys.exit(0)
    elif do == "stray":
        # Both lines in one write, so they arrive together.
        print(json.dumps({"out": 1}) + "\n" + json.dumps({"out": 2}), flush=True)
        continue
    else:
        answer = {"out": {"value": value, "seen": seen}}
    print(json.dumps(answer, ensure_ascii=False), flush=True)
"#;

/// The Python interpreter itself, not a wrapper script around it such as pyenv's shim,
/// which takes long to start on a busy machine.
fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let found = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3 runs");
        String::from_utf8(found.stdout).unwrap().trim().to_owned()
    })
}

fn config(command: &[&str]) -> ExecConfig {
    ExecConfig {
        command: command.iter().map(|part| (*part).to_owned()).collect(),
        timeout: Some(Span(Duration::from_secs(10))),
        dir: None,
        env: BTreeMap::new(),
        max_answer: None,
    }
}

/// A directory holding `stage.py`, and a worker running it there.
fn stage(adjust: impl FnOnce(&mut ExecConfig)) -> (TempDir, ExecWorker) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("stage.py"), STAGE).unwrap();
    let mut config = config(&[python(), "stage.py"]);
    adjust(&mut config);
    let worker = ExecWorker::start(&config, dir.path()).unwrap();
    (dir, worker)
}

fn record(value: Value) -> Record {
    Record {
        value,
        origin: Origin::Line {
            source: Arc::from("in.jsonl"),
            line: 7,
        },
    }
}

fn values(outputs: Vec<Record>) -> Vec<Value> {
    outputs.into_iter().map(|output| output.value).collect()
}

/// How many records the process answering `worker` has read, itself included.
fn seen(worker: &mut ExecWorker) -> u64 {
    let outputs = values(worker.call(record(json!({"probe": true}))).unwrap());
    outputs[0]["seen"].as_u64().unwrap()
}

fn failure(worker: &mut ExecWorker, value: Value) -> ExecFailure {
    *worker
        .call(record(value.clone()))
        .expect_err("the record should fail")
}

#[test]
fn one_many_or_zero_outputs_each_with_the_input_origin() {
    let (_dir, mut worker) = stage(|_| {});
    let outputs = worker.call(record(json!({"a": 1}))).unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].value["value"], json!({"a": 1}));
    assert_eq!(outputs[0].origin.to_string(), "in.jsonl:7");

    let outputs = worker.call(record(json!({"do": "fan", "n": 3}))).unwrap();
    assert_eq!(values(outputs.clone()), vec![json!(3); 3]);
    assert!(outputs
        .iter()
        .all(|output| output.origin.to_string() == "in.jsonl:7"));
    assert_eq!(
        worker.call(record(json!({"do": "fan", "n": 0}))).unwrap(),
        vec![]
    );
}

#[test]
fn a_record_that_is_an_array_is_one_record_not_a_fan_out() {
    let (_dir, mut worker) = stage(|_| {});
    let outputs = values(worker.call(record(json!([1, [2], {"b": 3}]))).unwrap());
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["value"], json!([1, [2], {"b": 3}]));
}

#[test]
fn unicode_goes_through_unchanged() {
    let (_dir, mut worker) = stage(|_| {});
    let text = "Zoë → 東京 🌍 \u{2028} \"quoted\"\n";
    let outputs = values(worker.call(record(json!({"name": text}))).unwrap());
    assert_eq!(outputs[0]["value"]["name"], json!(text));
}

#[test]
fn a_record_larger_than_a_pipe_goes_through() {
    let (_dir, mut worker) = stage(|_| {});
    let big = "é".repeat(1 << 20);
    let outputs = values(worker.call(record(json!({"big": big}))).unwrap());
    assert_eq!(outputs[0]["value"]["big"].as_str(), Some(big.as_str()));
}

#[test]
fn errors_and_non_answers_fail_only_their_record_and_the_process_goes_on() {
    let (_dir, mut worker) = stage(|_| {});
    let failed = failure(&mut worker, json!({"do": "error"}));
    assert!(
        matches!(&failed.error, ExecError::Answered(why) if why == "no good"),
        "{failed}"
    );
    assert!(!failed.is_transient() && !failed.restarted);
    assert_eq!(
        failed.record.value,
        json!({"do": "error"}),
        "the record is handed back"
    );

    let failed = failure(&mut worker, json!({"do": "retry"}));
    assert!(
        matches!(&failed.error, ExecError::Retry(why) if why == "busy"),
        "{failed}"
    );
    assert!(failed.is_transient());

    let failed = failure(&mut worker, json!({"do": "garbage"}));
    assert!(failed.to_string().contains("not JSON"), "{failed}");
    assert!(failed.to_string().contains("this is not json"), "{failed}");
    assert!(!failed.is_transient() && !failed.restarted);

    let failed = failure(&mut worker, json!({"do": "two keys"}));
    assert!(failed.to_string().contains("exactly one of"), "{failed}");

    assert_eq!(seen(&mut worker), 5, "one process read every record");
}

#[test]
fn an_answer_past_the_limit_fails_its_record_alone() {
    let (_dir, mut worker) = stage(|config| config.max_answer = Some(Size(100)));
    let failed = failure(&mut worker, json!({"do": "long"}));
    assert!(
        matches!(failed.error, ExecError::AnswerTooLong { limit: 100 }),
        "{failed}"
    );
    assert_eq!(seen(&mut worker), 2);
}

#[test]
fn a_process_that_exits_fails_its_record_with_its_stderr_and_is_restarted() {
    let (_dir, mut worker) = stage(|_| {});
    assert_eq!(seen(&mut worker), 1);
    let failed = failure(&mut worker, json!({"do": "exit"}));
    let message = failed.to_string();
    assert!(
        message.contains("process exited with status 3"),
        "{message}"
    );
    assert!(
        message.contains("stderr tail: dying on purpose"),
        "{message}"
    );
    assert!(failed.restarted && !failed.is_transient());
    assert_eq!(
        seen(&mut worker),
        1,
        "a new process answers the next record"
    );
    assert_eq!(seen(&mut worker), 2);
}

#[test]
fn a_process_that_hangs_past_the_timeout_is_killed_and_restarted() {
    // Long enough for Python to start on a busy machine, as the next record needs.
    let (_dir, mut worker) = stage(|config| config.timeout = Some(Span(Duration::from_secs(2))));
    assert_eq!(seen(&mut worker), 1);
    let started = Instant::now();
    let failed = failure(&mut worker, json!({"do": "hang"}));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let message = failed.to_string();
    assert!(message.contains("no answer within 2s"), "{message}");
    assert!(message.contains("stderr tail: stuck"), "{message}");
    assert!(failed.restarted);
    assert_eq!(seen(&mut worker), 1);
}

#[test]
fn a_process_that_exits_between_records_is_replaced_without_blaming_the_next() {
    let (_dir, mut worker) = stage(|_| {});
    assert_eq!(
        values(worker.call(record(json!({"do": "last"}))).unwrap()),
        vec![json!("bye")]
    );
    // Let it exit, as it would while the worker is busy elsewhere.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(seen(&mut worker), 1);
}

#[test]
fn a_process_that_answers_twice_is_replaced_before_the_next_record() {
    let (_dir, mut worker) = stage(|_| {});
    assert_eq!(
        values(worker.call(record(json!({"do": "stray"}))).unwrap()),
        vec![json!(1)]
    );
    // Let the extra line arrive, as it would while the worker is busy elsewhere.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        seen(&mut worker),
        1,
        "the stray answer was not taken for this record"
    );
}

#[test]
fn a_shell_program_resolved_against_the_pipeline_directory() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("double.sh");
    fs::write(
        &script,
        "#!/bin/sh\nwhile read -r n; do echo \"{\\\"out\\\": $((n * 2))}\"; done\n",
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let mut worker = ExecWorker::start(&config(&["./double.sh"]), dir.path()).unwrap();
    assert_eq!(
        values(worker.call(record(json!(21))).unwrap()),
        vec![json!(42)]
    );
    assert_eq!(
        values(worker.call(record(json!(-4))).unwrap()),
        vec![json!(-8)]
    );
}

#[test]
fn a_program_that_cannot_be_restarted_fails_records_as_transient_until_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("once.sh");
    let body = "#!/bin/sh\nwhile read -r n; do [ \"$n\" = 0 ] && exit 1; echo \"{\\\"out\\\": $n}\"; done\n";
    fs::write(&script, body).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let mut worker = ExecWorker::start(&config(&["./once.sh"]), dir.path()).unwrap();

    fs::rename(&script, dir.path().join("away.sh")).unwrap();
    let failed = failure(&mut worker, json!(0));
    assert!(matches!(failed.error, ExecError::Exited { .. }), "{failed}");
    assert!(!failed.restarted, "there was nothing to restart");

    let failed = failure(&mut worker, json!(1));
    assert!(matches!(failed.error, ExecError::Spawn { .. }), "{failed}");
    assert!(failed.is_transient(), "the record is not at fault");
    assert_eq!(failed.record.value, json!(1));

    fs::rename(dir.path().join("away.sh"), &script).unwrap();
    assert_eq!(
        values(worker.call(record(json!(2))).unwrap()),
        vec![json!(2)]
    );
}

#[test]
fn the_environment_and_working_directory_are_the_configured_ones() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("work")).unwrap();
    let mut config = config(&[
        "sh",
        "-c",
        "while read -r _; do echo \"{\\\"out\\\": [\\\"$GREETING\\\", \\\"$(pwd)\\\"]}\"; done",
    ]);
    config.env.insert("GREETING".into(), "hello".into());
    config.dir = Some("work".into());
    let mut worker = ExecWorker::start(&config, dir.path()).unwrap();
    let outputs = values(worker.call(record(json!(null))).unwrap());
    let work = dir.path().join("work").canonicalize().unwrap();
    assert_eq!(outputs, vec![json!(["hello", work.to_str().unwrap()])]);
}

#[test]
fn dropping_the_worker_kills_and_reaps_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let config = config(&["sh", "-c", "echo $$ > pid; exec sleep 60"]);
    let worker = ExecWorker::start(&config, dir.path()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let pid = loop {
        match fs::read_to_string(&pid_file) {
            Ok(text) if text.ends_with('\n') => break text.trim().to_owned(),
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => panic!("the process never wrote its pid"),
        }
    };
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(worker);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} outlived its worker"
    );
}

#[test]
fn a_program_that_cannot_start_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let error = ExecWorker::start(&config(&["no-such-program-brigade"]), dir.path()).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`no-such-program-brigade` not found on PATH"),
        "{error}"
    );
    fs::write(dir.path().join("plain.txt"), "").unwrap();
    let error = ExecWorker::start(&config(&["./plain.txt"]), dir.path()).unwrap_err();
    assert!(matches!(error, ExecError::NotExecutable { .. }), "{error}");
    assert!(matches!(
        ExecWorker::start(&config(&[]), dir.path()),
        Err(ExecError::EmptyCommand)
    ));
    let mut elsewhere = config(&["sh"]);
    elsewhere.dir = Some("missing".into());
    assert!(matches!(
        ExecWorker::start(&elsewhere, dir.path()),
        Err(ExecError::NoDirectory { .. })
    ));
}

#[test]
fn the_check_starts_the_program_and_reports_an_early_failure() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("stage.py"), STAGE).unwrap();
    assert_eq!(config(&[python(), "stage.py"]).check(dir.path()), vec![]);

    fs::write(
        dir.path().join("broken.py"),
        "import no_such_module_brigade\n",
    )
    .unwrap();
    let problems = config(&[python(), "broken.py"]).check(dir.path());
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].part, "stages");
    let message = &problems[0].message;
    assert!(
        message.contains("broken.py` exited with status 1"),
        "{message}"
    );
    assert!(message.contains("no_such_module_brigade"), "{message}");

    let problems = config(&["no-such-program-brigade"]).check(dir.path());
    assert!(
        problems[0].message.contains("not found on PATH"),
        "{}",
        problems[0]
    );
}

#[test]
fn a_worker_can_move_to_its_thread() {
    fn movable<T: Send + 'static>() {}
    movable::<ExecWorker>();
    movable::<ExecFailure>();
}

#[test]
fn a_pipeline_file_named_without_a_directory_runs_in_the_current_one() {
    // `Path::new("pipeline.toml").parent()` is the empty path.
    let mut worker = ExecWorker::start(
        &config(&["sh", "-c", "read -r _; echo '{\"out\": 1}'"]),
        Path::new(""),
    )
    .unwrap();
    assert_eq!(
        values(worker.call(record(json!(null))).unwrap()),
        vec![json!(1)]
    );
}
