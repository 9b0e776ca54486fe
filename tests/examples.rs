//! Every example pipeline in `examples/pipelines/` validates and runs as written, and
//! gives the records, dead letters and resumes its comments and the README promise.
//!
//! Each test runs on a fresh copy of the examples directory (without what earlier
//! runs wrote into `out/`), so the repository stays clean and the tests are
//! independent.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

/// What each example writes on a first run: records written by the sink, dead letters.
const EXPECTED: &[(&str, u64, u64)] = &[
    ("csv-sqlite.toml", 7, 0),
    ("exec-python.toml", 5, 1),
    ("files-jsonl.toml", 9, 2),
    ("stdin-stdout.toml", 4, 0),
];

/// What the stdin example is fed, as its comment says: `cat data/events.jsonl | …`.
const STDIN_EXAMPLE: &str = "stdin-stdout.toml";

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pipelines")
}

/// A copy of `examples/pipelines/` with an empty `out/`.
fn copy_of_examples() -> TempDir {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(&examples_dir(), copy.path());
    copy
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir(&target).unwrap();
            if entry.file_name() != "out" {
                copy_tree(&entry.path(), &target);
            }
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn brigade(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_brigade"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// `brigade run --headless --report json` on `name` in `dir`: the report and the lines
/// on standard output (a stdout sink's records). Fails the test unless it exits 0.
fn run(dir: &Path, name: &str) -> (Value, Vec<String>) {
    let pipeline = dir.join(name);
    let events = fs::read(dir.join("data/events.jsonl")).unwrap();
    let stdin = (name == STDIN_EXAMPLE).then_some(events.as_slice());
    let output = brigade(
        &[
            "run",
            pipeline.to_str().unwrap(),
            "--headless",
            "--report",
            "json",
        ],
        stdin,
    );
    assert_eq!(output.status.code(), Some(0), "{name}: {output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    // A stdout sink's report goes to standard error (its last line), so that the
    // records alone are on standard output.
    let report = if name == STDIN_EXAMPLE {
        let stderr = String::from_utf8(output.stderr).unwrap();
        stderr.lines().last().expect("a report").to_owned()
    } else {
        lines.pop().expect("a report")
    };
    let report = serde_json::from_str(&report).unwrap_or_else(|e| panic!("{e}: {report}"));
    (report, lines)
}

fn written(report: &Value) -> u64 {
    report["connectors"]["sink"]["written"].as_u64().unwrap()
}

fn dead_letters(report: &Value) -> u64 {
    report["connectors"]["dead_letters"]["by_cause"]
        .as_object()
        .unwrap()
        .values()
        .map(|count| count.as_u64().unwrap())
        .sum()
}

fn json_lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Each dead letter's origin and stage, sorted.
fn dead_letter_origins(path: &Path) -> Vec<(String, String)> {
    let mut origins: Vec<(String, String)> = json_lines(path)
        .iter()
        .map(|letter| {
            (
                letter["origin"].as_str().unwrap().to_owned(),
                letter["stage"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    origins.sort();
    origins
}

#[test]
fn every_example_validates_and_runs_with_the_counts_it_promises() {
    let mut found: Vec<String> = fs::read_dir(examples_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".toml"))
        .collect();
    found.sort();
    let expected: Vec<&str> = EXPECTED.iter().map(|(name, ..)| *name).collect();
    assert_eq!(
        found, expected,
        "every example has its expected counts here"
    );

    let copy = copy_of_examples();
    for &(name, records, dead) in EXPECTED {
        let pipeline = copy.path().join(name);
        let validate = brigade(&["validate", pipeline.to_str().unwrap()], None);
        assert_eq!(validate.status.code(), Some(0), "{name}: {validate:?}");
        assert!(
            String::from_utf8_lossy(&validate.stdout).contains(": ok ("),
            "{name}: {validate:?}"
        );

        let (report, _) = run(copy.path(), name);
        assert_eq!(written(&report), records, "{name}: {report}");
        assert_eq!(dead_letters(&report), dead, "{name}: {report}");
        assert_eq!(report["dead_lettered"], dead, "{name}: {report}");
        assert_eq!(
            report["admitted"], report["acknowledged"],
            "{name}: {report}"
        );
    }
}

#[test]
fn the_jsonl_example_names_its_two_bad_lines_and_reads_nothing_twice() {
    let copy = copy_of_examples();
    let out = copy.path().join("out");
    run(copy.path(), "files-jsonl.toml");

    let orders = json_lines(&out.join("orders.jsonl"));
    let mut ids: Vec<u64> = orders
        .iter()
        .map(|order| order["order_id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [1001, 1002, 1003, 1004, 1005, 1006, 1008, 1009, 1010]);
    for order in &orders {
        assert!(order.get("internal_notes").is_none(), "{order}");
        assert_eq!(order["source"], "shop", "{order}");
    }
    assert_eq!(
        dead_letter_origins(&out.join("orders-dead.jsonl")),
        [
            (
                "data/orders/2026-12-02.jsonl:2".to_owned(),
                "decode".to_owned()
            ),
            (
                "data/orders/2026-12-02.jsonl:4".to_owned(),
                "tidy".to_owned()
            ),
        ]
    );

    let (again, _) = run(copy.path(), "files-jsonl.toml");
    assert_eq!(again["admitted"], 0, "{again}");
    assert_eq!(json_lines(&out.join("orders.jsonl")).len(), 9);
    assert_eq!(json_lines(&out.join("orders-dead.jsonl")).len(), 2);
}

fn customers(database: &Path) -> BTreeMap<String, (String, String, String)> {
    let connection = rusqlite::Connection::open(database).unwrap();
    let mut query = connection
        .prepare("SELECT id, name, country, tier FROM customers")
        .unwrap();
    query
        .query_map([], |row| {
            Ok((row.get(0)?, (row.get(1)?, row.get(2)?, row.get(3)?)))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_sqlite_example_upserts_and_a_replay_leaves_the_table_exact() {
    let copy = copy_of_examples();
    let database = copy.path().join("out/customers.db");
    run(copy.path(), "csv-sqlite.toml");
    let table = customers(&database);
    assert_eq!(
        table.keys().map(String::as_str).collect::<Vec<_>>(),
        ["c-03", "c-08", "c-17", "c-21", "c-42", "c-51"]
    );
    assert_eq!(
        table["c-17"].2, "silver",
        "the gzipped export's update wins"
    );
    assert_eq!(table["c-42"].0, "Johnson, Katherine");

    // A rerun skips the finished gzip file and reads nothing new from the plain one.
    let (again, _) = run(copy.path(), "csv-sqlite.toml");
    assert_eq!(again["admitted"], 0, "{again}");
    assert_eq!(again["connectors"]["source"]["files_skipped"], 1, "{again}");

    // Without its checkpoint (as if it crashed before acknowledging anything) every
    // row is written again, and the upsert leaves the table as it was.
    fs::remove_dir_all(copy.path().join("out/state")).unwrap();
    let (replay, _) = run(copy.path(), "csv-sqlite.toml");
    assert_eq!(written(&replay), 7, "{replay}");
    assert_eq!(customers(&database), table);
}

#[test]
fn the_stdin_example_writes_each_event_to_stdout_before_the_report() {
    let copy = copy_of_examples();
    let (report, lines) = run(copy.path(), STDIN_EXAMPLE);
    assert_eq!(written(&report), 4, "{report}");
    let mut events: Vec<(String, String)> = lines
        .iter()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            assert!(event.get("ip").is_none(), "{event}");
            assert!(event.get("user").is_none(), "{event}");
            (
                event["at"].as_str().unwrap().to_owned(),
                format!("{} {}", event["account"], event["event"]),
            )
        })
        .collect();
    events.sort();
    let described: Vec<&str> = events.iter().map(|(_, what)| what.as_str()).collect();
    assert_eq!(
        described,
        [
            r#""ada" "login""#,
            r#""ada" "view""#,
            r#""grace" "login""#,
            r#""ada" "logout""#
        ]
    );
}

#[test]
fn the_exec_example_answers_one_many_none_and_an_error() {
    let copy = copy_of_examples();
    let out = copy.path().join("out");
    run(copy.path(), "exec-python.toml");

    let mut items: Vec<(u64, String)> = json_lines(&out.join("items.jsonl"))
        .iter()
        .map(|item| {
            (
                item["order"].as_u64().unwrap(),
                item["item"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    items.sort();
    let items: Vec<(u64, &str)> = items.iter().map(|(o, i)| (*o, i.as_str())).collect();
    assert_eq!(
        items,
        [
            (2001, "pen"),
            (2002, "ink"),
            (2002, "paper"),
            (2002, "pen"),
            (2004, "paper"),
        ]
    );
    let letters = json_lines(&out.join("items-dead.jsonl"));
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0]["origin"], "data/logs/shop.log:5");
    assert_eq!(letters[0]["stage"], "items");
    let error = letters[0]["error"].as_str().unwrap();
    assert!(error.contains("ValueError"), "{error}");
}
