//! The postgres source through the real binary: `brigade run` of a PostgreSQL table
//! into a file, with one cursor and with partitions, killed with `kill -9` mid-run
//! and rerun from its checkpoint; `brigade validate` naming what is wrong.

// The support module serves several test files; this one uses part of it.
#[allow(dead_code)]
#[path = "support/pipeline.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use brigade_testkit::postgres::PgServer;
use support::{complete_lines, signal, wait_until, Workdir};

/// A server with `items`: ids 1..=rows, each with a name and a price.
fn server(rows: u64) -> PgServer {
    let server = PgServer::start_with(&[("fsync", "off")]).expect("PostgreSQL starts");
    server
        .psql(&format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(10,2));
             INSERT INTO items SELECT g, 'item ' || g, g * 0.5 FROM generate_series(1, {rows}) g;"
        ))
        .expect("the table is made");
    server
}

/// A pipeline file from `items` (its `[source]` extra keys in `source`) into
/// `out.jsonl`, with `extra` sections.
fn pipeline(server: &PgServer, source: &str, extra: &str) -> String {
    format!(
        r#"[source]
type = "postgres"
url = "{}"
table = "items"
key = "id"
{source}

[sink]
type = "file"
path = "out.jsonl"
{extra}
"#,
        server.url()
    )
}

/// The ids in `out.jsonl`, each line checked whole (`name` and `price` match its id).
fn written_ids(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .expect("out.jsonl reads")
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            let id = row["id"].as_u64().expect("an id");
            assert_eq!(row["name"], format!("item {id}"), "{line}");
            assert_eq!(
                row["price"],
                format!("{}.{}0", id / 2, if id % 2 == 1 { 5 } else { 0 }),
                "{line}"
            );
            id
        })
        .collect()
}

/// How many times each id in 1..=rows was written; panics on an id never in the table.
fn counts(ids: &[u64], rows: u64) -> Vec<u32> {
    let mut counts = vec![0; rows as usize + 1];
    for &id in ids {
        assert!((1..=rows).contains(&id), "id {id} is not in the table");
        counts[id as usize] += 1;
    }
    counts[1..].to_vec()
}

fn assert_clean_run(work: &Workdir, rows: u64) -> serde_json::Value {
    let (output, report) = work.run();
    assert!(
        output.status.success(),
        "status {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["dead_lettered"], 0, "{report}");
    assert_eq!(report["failures"], serde_json::json!([]), "{report}");
    let ids = written_ids(&work.join("out.jsonl"));
    assert_eq!(ids.len() as u64, rows, "every row once");
    assert!(counts(&ids, rows).iter().all(|&count| count == 1));
    report
}

#[test]
fn a_postgres_to_file_pipeline_writes_every_row_once() {
    let server = server(10_000);
    let work = Workdir::new();
    work.write("p.toml", pipeline(&server, "fetch = 500", ""));
    let report = assert_clean_run(&work, 10_000);
    assert_eq!(report["completed"], 10_000, "{report}");
    // One cursor in key order, and a single-worker sink keeps that order.
    let ids = written_ids(&work.join("out.jsonl"));
    let sorted = ids.windows(2).filter(|pair| pair[0] < pair[1]).count();
    assert!(sorted > 9_000, "{sorted} of 9999 pairs in order");
}

#[test]
fn with_partitions_every_row_is_written_once() {
    let server = server(20_000);
    server
        .psql("DELETE FROM items WHERE id % 10 = 3")
        .expect("gaps are made");
    let work = Workdir::new();
    work.write(
        "p.toml",
        pipeline(
            &server,
            "fetch = 250\npartitions = 4",
            "[runtime]\npolicy = \"static:4,1\"",
        ),
    );
    let (output, report) = work.run();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["dead_lettered"], 0, "{report}");
    let ids = written_ids(&work.join("out.jsonl"));
    let expected: Vec<u64> = (1..=20_000).filter(|id| id % 10 != 3).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected, "every row once");
    let stages = report["stages"].to_string();
    assert!(
        stages.contains("\"read\""),
        "the read stage is in the report: {stages}"
    );
}

#[test]
fn kill_9_mid_run_then_a_rerun_with_its_checkpoint_writes_every_row_at_least_once() {
    const ROWS: u64 = 30_000;
    let server = server(ROWS);
    let work = Workdir::new();
    let extra = "rate_limit = 10000\nbatch_size = 50\n\n[checkpoint]\ndir = \"state\"\n\
                 interval = \"100ms\"";
    for (round, source) in ["fetch = 500", "fetch = 500\npartitions = 3"]
        .iter()
        .enumerate()
    {
        let _ = std::fs::remove_file(work.join("out.jsonl"));
        let _ = std::fs::remove_dir_all(work.join("state"));
        work.write("p.toml", pipeline(&server, source, extra));
        let out = work.join("out.jsonl");
        for kill in 0..2 {
            let mut child = work.spawn();
            let before = complete_lines(&out);
            wait_until(Duration::from_secs(15), "rows written", || {
                complete_lines(&out) > before + 4000
            });
            signal(&child, libc::SIGKILL);
            child.wait().expect("the killed run is reaped");
            eprintln!("round {round} kill {kill}: {} lines", complete_lines(&out));
        }
        let (output, report) = work.run();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(report["dead_lettered"], 0, "{report}");
        let ids = written_ids(&out);
        let counts = counts(&ids, ROWS);
        let missing = counts.iter().filter(|&&count| count == 0).count();
        let duplicates: u32 = counts.iter().map(|&count| count.saturating_sub(1)).sum();
        eprintln!(
            "round {round} ({source:?}): {} lines for {ROWS} rows, {duplicates} written twice",
            ids.len()
        );
        assert_eq!(missing, 0, "no row lost");
        // Two kills each repeat at most what was in flight since the last checkpoint.
        assert!(duplicates < 2 * 5000, "{duplicates} duplicates");
        assert!(
            std::fs::read_dir(work.join("state"))
                .unwrap()
                .any(|entry| entry
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|e| e == "pgkey")),
            "the checkpoint is kept"
        );
    }
}

#[test]
fn validate_names_what_is_wrong_with_a_postgres_source() {
    let server = server(1);
    let work = Workdir::new();
    let validate = |text: String| {
        work.write("p.toml", text);
        let output = Command::new(env!("CARGO_BIN_EXE_brigade"))
            .args(["validate", "p.toml"])
            .current_dir(work.path())
            .output()
            .expect("the binary runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (ok, text) = validate(pipeline(&server, "", ""));
    assert!(ok, "{text}");
    let (ok, text) = validate(pipeline(&server, "", "").replace("key = \"id\"", "key = \"nid\""));
    assert!(!ok);
    assert!(
        text.contains(
            "source: the key column `nid` is not in table `items`'s result; its \
                       columns are: id, name, price"
        ),
        "{text}"
    );
    let (ok, text) = validate(
        pipeline(&server, "", "[checkpoint]\ndir = \"state\"").replace("key = \"id\"\n", ""),
    );
    assert!(!ok);
    assert!(
        text.contains("checkpoint: a `postgres` source without `key` cannot resume"),
        "{text}"
    );
    let (ok, text) =
        validate(pipeline(&server, "partitions = 2", "").replace("key = \"id\"\n", ""));
    assert!(!ok);
    assert!(
        text.contains("source.partitions: partitions split the range of `key`"),
        "{text}"
    );
}

#[test]
fn a_server_restart_mid_run_stalls_the_pipeline_which_then_finishes_with_every_row_once() {
    const ROWS: u64 = 20_000;
    let mut server = server(ROWS);
    let work = Workdir::new();
    work.write(
        "p.toml",
        pipeline(
            &server,
            "fetch = 500",
            "rate_limit = 10000\nbatch_size = 50",
        ),
    );
    let out = work.join("out.jsonl");
    let child = work.spawn();
    wait_until(Duration::from_secs(15), "rows written", || {
        complete_lines(&out) > 2000
    });
    server.stop().expect("the server stops");
    std::thread::sleep(Duration::from_millis(1500));
    server.start_again().expect("the server starts again");
    let output = child.wait_with_output().expect("the run ends");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = support::report(&output);
    assert_eq!(report["dead_lettered"], 0, "{report}");
    let ids = written_ids(&out);
    assert_eq!(
        ids,
        (1..=ROWS).collect::<Vec<_>>(),
        "every row once, in key order"
    );
}
