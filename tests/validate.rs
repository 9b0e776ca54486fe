//! `brigade validate` as a person runs it: a good file, a bad one, the environment.

use std::path::Path;
use std::process::{Command, Output};

const GOOD: &str = r#"name = "orders"

[source]
type = "file"
path = "data/*.jsonl"
format = "jsonl"

[[stage]]
name = "enrich"
type = "exec"
command = ["python3", "enrich.py"]
workers = { min = 1, max = 4 }

[[stage]]
name = "tidy"
type = "fields"
drop = ["secret"]

[sink]
type = "sqlite"
path = "out.db"
table = "orders"
columns = ["id", "total"]
key = ["id"]

[checkpoint]
dir = "state"
"#;

fn validate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brigade"))
        .arg("validate")
        .args(args)
        .output()
        .expect("the binary runs")
}

/// What [`GOOD`] reads and runs, so that the environment is right for it.
fn inputs(dir: &Path) {
    std::fs::create_dir(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/a.jsonl"), "{\"id\": 1, \"total\": 2}\n").unwrap();
    std::fs::write(
        dir.join("enrich.py"),
        "import sys\nfor line in sys.stdin: print(line, end='')\n",
    )
    .unwrap();
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_good_file_is_ok_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    inputs(dir.path());
    let path = write(dir.path(), "orders.toml", GOOD);
    let output = validate(&[&path]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        lines(&output),
        [format!("{path}: ok (source file, 2 stages, sink sqlite)")]
    );
}

#[test]
fn a_bad_file_gets_each_problem_in_one_line_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let bad = GOOD
        .replace(
            "format = \"jsonl\"",
            "format = \"jsonl\"\norder = \"newest\"",
        )
        .replace("max = 4", "max = 0")
        .replace("key = [\"id\"]", "key = [\"id\"]\ntabel = \"x\"");
    let path = write(dir.path(), "bad.toml", &bad);
    let output = validate(&[&path]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        lines(&output),
        [
            format!(
                "{path}:7:9: source.order: unknown value `newest`, expected `name` or `modified`"
            ),
            format!("{path}:13:28: stage.enrich.workers.max: expected a whole number, at least 1, got 0"),
            format!(
                "{path}:26:1: sink: unknown key `tabel` for a `sqlite` sink; expected one of: \
                 path, table, columns, key, create_table, busy_timeout (did you mean `table`?)"
            ),
        ]
    );
}

#[test]
fn the_environment_is_checked_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    inputs(dir.path());
    // The checkpoint directory cannot be made: a file is in its way.
    std::fs::write(dir.path().join("state"), "not a directory").unwrap();
    let path = write(
        dir.path(),
        "orders.toml",
        &GOOD.replace("\"state\"", "\"state/deep\""),
    );
    let output = validate(&[&path]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let state = dir.path().join("state");
    assert_eq!(
        lines(&output),
        [format!(
            "checkpoint: {} is not a directory, so checkpoints cannot be kept in {}",
            state.display(),
            state.join("deep").display()
        )]
    );

    let output = validate(&[&path, "--no-environment"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        lines(&output),
        [format!("{path}: ok (source file, 2 stages, sink sqlite)")]
    );
}

#[test]
fn an_unset_variable_is_named_and_a_missing_file_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "secret.toml",
        &GOOD.replace("\"out.db\"", "\"${BRIGADE_VALIDATE_TEST_UNSET}/out.db\""),
    );
    let output = validate(&[&path]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(
        lines(&output),
        [format!(
            "{path}:21:8: sink.path: the environment variable `BRIGADE_VALIDATE_TEST_UNSET` is \
             not set"
        )]
    );

    let missing = dir.path().join("missing.toml");
    let output = validate(&[missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let found = lines(&output);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(&format!(
            "{}: cannot read the pipeline file: ",
            missing.display()
        )),
        "{found:?}"
    );
}

#[test]
fn a_usage_error_exits_2() {
    let output = validate(&[]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let output = validate(&["a.toml", "--no-such-flag"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}
