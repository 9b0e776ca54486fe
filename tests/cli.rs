//! The `brigade` binary as a person runs it: help, refusals, and a short simulation.

use std::path::Path;
use std::process::{Command, Output};

/// A scenario that simulates in a moment.
const TINY: &str = r#"name = "tiny"
duration = "20s"

[source]
rate = 200
size = { dist = "fixed", value = "1KiB" }

[[stage]]
name = "work"
kind = "cpu"
service = { dist = "fixed", value = "5ms" }

[[stage]]
name = "store"
kind = "io"
service = { dist = "fixed", value = "8ms" }
"#;

fn brigade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brigade"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn help_lists_the_sim_command() {
    let output = brigade(&["--help"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("sim"), "{text}");
    assert!(text.contains("simulator"), "{text}");

    let output = brigade(&["sim", "--help"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for option in [
        "--policy", "--format", "--plot", "--tui", "--seeds", "table", "json", "csv",
    ] {
        assert!(text.contains(option), "{option} in {text}");
    }
}

#[test]
fn a_bad_scenario_file_is_named_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.toml",
        &TINY.replace("rate = 200", "rat = 200"),
    );
    let output = brigade(&["sim", &path]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains(&format!("{path}:5:")), "{message}");
    assert!(message.contains("`source.rat`"), "{message}");
    assert!(output.stdout.is_empty());

    let output = brigade(&["sim", "no/such/scenario.toml"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("no/such/scenario.toml"));
}

#[test]
fn an_unknown_policy_is_refused_before_anything_runs() {
    // The scenario does not exist either: the policy is checked first.
    let output = brigade(&[
        "sim",
        "missing.toml",
        "--policy",
        "ds2",
        "--policy",
        "fastest",
    ]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("unknown policy `fastest`"), "{message}");
    assert!(!message.contains("missing.toml"), "{message}");
    assert!(output.stdout.is_empty());

    let output = brigade(&[
        "sim",
        "missing.toml",
        "--policy",
        "hill",
        "--policy",
        "hill",
    ]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("`hill` is given twice"));
}

#[test]
fn the_dashboard_replays_one_scenario_and_one_policy_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let refused = |args: &[&str], expected: &str| {
        let output = brigade(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        let message = stderr(&output);
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(
            message.contains("Usage: brigade sim"),
            "{args:?}: {message}"
        );
        assert!(output.stdout.is_empty());
    };
    refused(
        &["sim", &scenario, &scenario, "--tui"],
        "--tui replays one scenario, and 2 were given",
    );
    refused(
        &[
            "sim", &scenario, "--tui", "--policy", "ds2", "--policy", "hill",
        ],
        "--tui replays one policy, and 2 were given: ds2, hill",
    );
    refused(
        &["sim", &scenario, "--tui", "--format", "json"],
        "'--tui' cannot be used with '--format <FORMAT>'",
    );

    // Here standard output is a pipe.
    let output = brigade(&["sim", &scenario, "--tui"]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("--tui draws the dashboard on a terminal, and standard output is not one"),
        "{message}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn the_plot_must_be_an_svg_in_a_folder_that_exists() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let output = brigade(&["sim", &scenario, "--plot", "runs.png"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("FILE.svg"), "{}", stderr(&output));

    let missing = dir.path().join("no").join("runs.svg");
    let output = brigade(&["sim", &scenario, "--plot", missing.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no such folder"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_short_simulation_prints_every_format_and_draws_the_plot() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);
    let plot = dir.path().join("runs.svg");
    let policies = ["--policy", "static:2", "--policy", "seda"];

    let mut args = vec!["sim", &scenario, "--format", "json"];
    args.extend(policies);
    args.extend(["--plot", plot.to_str().unwrap()]);
    let output = brigade(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["scenario"], "tiny");
    assert!(report["oracle"]["workers"]["store"].as_u64().unwrap() >= 1);
    let runs: Vec<&str> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["policy"].as_str().unwrap())
        .collect();
    assert_eq!(runs, ["static:2", "seda"]);
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.contains("tiny") && svg.contains("static:2") && svg.contains("seda"));

    let mut args = vec!["sim", &scenario, &scenario, "--format", "csv"];
    args.extend(policies);
    let output = brigade(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let csv = String::from_utf8(output.stdout).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 3, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("tiny,oracle,"));

    let mut args = vec!["sim", &scenario];
    args.extend(policies);
    let output = brigade(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.starts_with("tiny: oracle workers "), "{table}");
    assert_eq!(table.lines().count(), 4, "{table}");
}

#[test]
fn a_hand_tuned_count_per_stage_runs_as_given_and_must_name_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "tiny.toml", TINY);

    let output = brigade(&[
        "sim",
        &scenario,
        "--policy",
        "static:1,3",
        "--format",
        "json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let run = &report["runs"][0];
    assert_eq!(run["policy"], "static:1,3");
    // 1 + 3 workers for 20 s, less the first second on the pipeline's own 1 + 1.
    let worker_seconds = run["worker_seconds"].as_f64().unwrap();
    assert!((76.0..=80.0).contains(&worker_seconds), "{worker_seconds}");

    let output = brigade(&["sim", &scenario, "--policy", "static:1,2,3"]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("tiny.toml"), "{message}");
    assert!(
        message.contains("static:1,2,3 gives 3 worker counts")
            && message.contains("2 stages (work, store)"),
        "{message}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_seed_sweep_reports_each_seed_and_the_spread() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "tiny.toml",
        &TINY.replace(
            r#"{ dist = "fixed", value = "8ms" }"#,
            r#"{ dist = "lognormal", median = "8ms", p99 = "60ms" }"#,
        ),
    );
    let output = brigade(&[
        "sim", &scenario, "--seeds", "3,1-2", "--policy", "static:2", "--policy", "seda",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("tiny over 3 seeds (the file's is 0)"),
        "{table}"
    );
    let seeds: Vec<&str> = lines[2..5]
        .iter()
        .map(|line| line.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(seeds, ["3", "1", "2"], "{table}");
    assert!(lines[7].starts_with("static:2 "), "{table}");
    assert!(lines[8].starts_with("seda "), "{table}");

    let output = brigade(&[
        "sim", &scenario, "--seeds", "0-1", "--policy", "seda", "--format", "json",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["seeds"][0]["seed"], 0);
    assert_eq!(report["seeds"][1]["runs"][0]["policy"], "seda");
    assert_eq!(report["spreads"][0]["policy"], "seda");

    let refused = |args: &[&str], expected: &str| {
        let output = brigade(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let message = stderr(&output);
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(output.stdout.is_empty());
    };
    refused(
        &["sim", &scenario, "--seeds", "5-2"],
        "`5-2` runs backwards: write 2-5",
    );
    refused(
        &["sim", &scenario, "--seeds", "1,one"],
        "`one` is not a seed",
    );
    refused(
        &["sim", &scenario, "--seeds", "1-3", "--plot", "runs.svg"],
        "'--seeds <LIST>' cannot be used with '--plot <FILE.svg>'",
    );
}

#[test]
fn demo_refuses_bad_flags_and_files_before_anything_runs() {
    let output = brigade(&["demo", "--help"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for option in [
        "--headless",
        "--duration",
        "--tick",
        "--report",
        "--policy",
        "--metrics-addr",
        "--metrics-log",
        "--control-token-file",
        "--no-control",
    ] {
        assert!(text.contains(option), "{option} in {text}");
    }

    let output = brigade(&["demo", "no/such/scenario.toml", "--headless"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("no/such/scenario.toml"));

    let output = brigade(&["demo", "--headless", "--policy", "fastest"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("fastest"), "{}", stderr(&output));

    let output = brigade(&["demo", "--headless", "--duration", "0s"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--duration"),
        "{}",
        stderr(&output)
    );

    for bad in ["0s", "500us", "2m", "soon"] {
        let output = brigade(&["demo", "--headless", "--tick", bad]);
        assert!(!output.status.success());
        assert!(
            stderr(&output).contains("--tick") && stderr(&output).contains(bad),
            "{}",
            stderr(&output)
        );
    }

    // Controls open to the network are refused; the error says what to do.
    let output = brigade(&["demo", "--headless", "--metrics-addr", "0.0.0.0:0"]);
    assert!(!output.status.success());
    for words in [
        "--metrics-addr 0.0.0.0:0: not a loopback address",
        "--no-control",
    ] {
        assert!(stderr(&output).contains(words), "{}", stderr(&output));
    }
    let output = brigade(&[
        "demo",
        "--headless",
        "--control-token-file",
        "no/such/token",
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("--control-token-file no/such/token: cannot read"),
        "{}",
        stderr(&output)
    );
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", "t0ken\n");
    let output = brigade(&[
        "demo",
        "--headless",
        "--no-control",
        "--control-token-file",
        &token,
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot be used with"),
        "{}",
        stderr(&output)
    );
    for (value, flags, message) in [
        (
            "t0ken",
            &["--control-token-file", token.as_str()][..],
            "--control-token-file and BRIGADE_CONTROL_TOKEN both give a control token",
        ),
        (
            " ",
            &[][..],
            "BRIGADE_CONTROL_TOKEN: is empty (or only whitespace)",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_brigade"))
            .args(["demo", "--headless"])
            .args(flags)
            .env("BRIGADE_CONTROL_TOKEN", value)
            .output()
            .unwrap();
        assert!(!output.status.success());
        assert!(stderr(&output).contains(message), "{}", stderr(&output));
    }

    let output = brigade(&["demo", "--headless", "--metrics-addr", "nowhere"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("nowhere"), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
}

#[test]
fn a_short_headless_demo_reports_a_drained_run_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "tiny.toml", TINY);
    let log = dir.path().join("ticks.jsonl");
    let output = brigade(&[
        "demo",
        &path,
        "--duration",
        "3s",
        "--tick",
        "100ms",
        "--report",
        "json",
        "--metrics-log",
        log.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    // The scenario's tick is 1 s: --tick 100ms closes about 30 windows in 3 s.
    let ticks = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(ticks >= 10, "{ticks} ticks in 3 s at --tick 100ms");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let count = |key: &str| report[key].as_u64().unwrap();
    assert!(count("admitted") > 100, "{report}");
    assert_eq!(
        count("admitted"),
        count("completed") + count("dead_lettered")
    );
    assert_eq!(report["scenario"], "tiny");
    assert_eq!(report["source_timeouts"], 0);
}

#[test]
fn a_fleet_scenario_prints_its_fleet_table_led_and_alone_beside_fixed_totals() {
    let output = brigade(&["sim", "scenarios/fleet-db.toml", "--policy", "adaptive"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(table.starts_with("fleet-db (fleet)\n"), "{table}");
    for row in [
        "adaptive (leader)",
        "adaptive (alone)",
        "fixed 3 ",
        "fixed 24 ",
    ] {
        assert!(
            table.lines().any(|line| line.starts_with(row)),
            "{row}: {table}"
        );
    }
    let json = brigade(&["sim", "scenarios/fleet-db.toml", "--format", "json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    assert!(
        stderr(&json).contains("fleet-db: left out"),
        "{}",
        stderr(&json)
    );
}
