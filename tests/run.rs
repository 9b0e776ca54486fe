//! `brigade run` as a data engineer uses it: the report's connector figures, a rerun
//! that reads nothing twice, a full dead-letter file that stops admission without
//! losing a record, and flags refused before anything runs.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs `brigade run PIPELINE --headless --report json` (plus `extra`) in `dir`.
fn run(dir: &Path, pipeline: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brigade"))
        .args(["run", pipeline, "--headless", "--report", "json"])
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

/// The JSON report on standard output.
fn report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{error}: stdout {} stderr {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The lines of a JSON-lines file, parsed (none if it does not exist).
fn json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// `in/a.jsonl` with records `{"id": 0..lines}`, the lines in `bad` (1-based) not
/// JSON; and a pipeline file `p.toml` reading it into `out.jsonl`, with `extra`
/// appended (a `[dead_letter]` table, say).
fn setup(dir: &Path, lines: u64, bad: &[u64], extra: &str) {
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let text: String = (1..=lines)
        .map(|line| match bad.contains(&line) {
            true => format!("{{not json {line}\n"),
            false => format!("{{\"id\":{}}}\n", line - 1),
        })
        .collect();
    std::fs::write(dir.join("in/a.jsonl"), text).unwrap();
    std::fs::write(
        dir.join("p.toml"),
        format!(
            "[source]\ntype = \"file\"\npath = \"in/*.jsonl\"\nformat = \"jsonl\"\n\
             [sink]\ntype = \"file\"\npath = \"out.jsonl\"\n\
             [checkpoint]\ndir = \"state\"\n{extra}"
        ),
    )
    .unwrap();
}

#[test]
fn the_report_gives_each_connectors_figures_and_a_rerun_reads_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    setup(
        dir.path(),
        1_000,
        &[10, 20],
        "[dead_letter]\npath = \"dead.jsonl\"\n",
    );
    let first = run(dir.path(), "p.toml", &[]);
    assert!(first.status.success(), "{first:?}");
    let figures = report(&first);
    let connectors = &figures["connectors"];
    assert_eq!(figures["admitted"], 1_000);
    assert_eq!(figures["dead_lettered"], 2);
    assert_eq!(connectors["source"]["files_read"], 1);
    assert_eq!(connectors["source"]["records"], 1_000);
    assert_eq!(connectors["source"]["acknowledged"], 1_000);
    assert_eq!(connectors["sink"]["written"], 998);
    assert_eq!(
        connectors["dead_letters"]["by_cause"]["decode: permanent"],
        2
    );
    // A run shorter than a tick still says each stage had a worker.
    for stage in figures["stages"].as_array().unwrap() {
        assert!(stage["most_workers"].as_u64().unwrap() >= 1, "{stage}");
    }
    let letters = json_lines(&dir.path().join("dead.jsonl"));
    let origins: Vec<&str> = letters
        .iter()
        .map(|l| l["origin"].as_str().unwrap())
        .collect();
    assert_eq!(origins, ["in/a.jsonl:10", "in/a.jsonl:20"]);

    // The same command again: the file is known by its fingerprint and read to its
    // end (it is looked at again from there, for lines appended since).
    let second = run(dir.path(), "p.toml", &[]);
    assert!(second.status.success(), "{second:?}");
    let figures = report(&second);
    assert_eq!(figures["admitted"], 0, "{figures}");
    assert_eq!(figures["connectors"]["source"]["records"], 0, "{figures}");
    assert_eq!(json_lines(&dir.path().join("out.jsonl")).len(), 998);
}

#[test]
fn a_full_dead_letter_file_stops_admission_and_the_rerun_reads_the_refused_again() {
    let dir = tempfile::tempdir().unwrap();
    let bad: Vec<u64> = (1..=9).map(|n| n * 500).collect();
    // Room for two letters of about 150 bytes, not three.
    setup(
        dir.path(),
        5_000,
        &bad,
        "[dead_letter]\npath = \"dead.jsonl\"\nmax_size = \"400B\"\n",
    );
    let full = run(dir.path(), "p.toml", &[]);
    assert_eq!(full.status.code(), Some(1), "{full:?}");
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert!(stderr.contains("dead-letter output refused"), "{stderr}");
    let figures = report(&full);
    let acknowledged = figures["acknowledged"].as_u64().unwrap();
    // Position of the third bad line: the refused letter's record is not passed.
    assert!(acknowledged <= 1_499, "acknowledged {acknowledged}");
    assert!(json_lines(&dir.path().join("dead.jsonl")).len() <= 2);

    // With room again, the rerun resumes at the checkpoint: every good record
    // written at least once, every bad one dead-lettered at least once.
    let text = std::fs::read_to_string(dir.path().join("p.toml")).unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        text.replace("max_size = \"400B\"", "max_size = \"1MiB\""),
    )
    .unwrap();
    let rerun = run(dir.path(), "p.toml", &[]);
    assert!(rerun.status.success(), "{rerun:?}");
    let mut ids: Vec<u64> = json_lines(&dir.path().join("out.jsonl"))
        .iter()
        .map(|record| record["id"].as_u64().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let expected: Vec<u64> = (1..=5_000u64)
        .filter(|line| !bad.contains(line))
        .map(|line| line - 1)
        .collect();
    assert_eq!(ids, expected);
    let mut origins: Vec<String> = json_lines(&dir.path().join("dead.jsonl"))
        .iter()
        .map(|letter| letter["origin"].as_str().unwrap().to_owned())
        .collect();
    origins.sort();
    origins.dedup();
    let mut wanted: Vec<String> = bad
        .iter()
        .map(|line| format!("in/a.jsonl:{line}"))
        .collect();
    wanted.sort();
    assert_eq!(origins, wanted);
}

#[test]
fn a_policy_for_the_wrong_stages_is_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), 10, &[], "");
    let output = run(dir.path(), "p.toml", &["--policy", "static:1,2,3"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("has 2 stages (decode, sink): give one count per stage"),
        "{stderr}"
    );
    assert!(!dir.path().join("out.jsonl").exists(), "nothing ran");
}

#[test]
fn an_environment_problem_is_said_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), 10, &[], "");
    std::fs::remove_file(dir.path().join("in/a.jsonl")).unwrap();
    let output = run(dir.path(), "p.toml", &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("source: the glob"), "{stderr}");
    assert!(stderr.contains("matches no file"), "{stderr}");
    assert!(stderr.contains("nothing ran"), "{stderr}");
}
