//! `brigade run` into a real PostgreSQL (brigade-testkit): a CSV upsert killed with
//! `kill -9` at random moments then run again, a server stopped mid-run and started
//! again, and the csv-postgres example as its comment promises.

#[allow(dead_code)]
#[path = "support/pipeline.rs"]
mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use brigade_testkit::postgres::PgServer;
use support::{pad, signal, wait_until, Rng, Workdir};

/// The sink's rate limit, rows per second: slow enough that kills and the outage land
/// mid-run, quick enough that a whole run takes a few seconds.
const RATE: u64 = 8000;

/// A CSV → PostgreSQL upsert of `in/*.csv` into `records`, checkpointed every 100ms,
/// retrying transient failures for ever.
fn pipeline(server: &PgServer) -> String {
    format!(
        r#"name = "pg-crash"
[runtime]
policy = "static:2"
retry = {{ attempts = "forever", initial_backoff = "10ms", max_backoff = "200ms" }}

[source]
type = "file"
path = "in/*.csv"
format = "csv"

[sink]
type = "postgres"
url = "{url}"
table = "records"
columns = ["id", "pad"]
key = ["id"]
batch_size = 200
rate_limit = {RATE}
connect_timeout = "2s"

[dead_letter]
path = "dead.jsonl"

[checkpoint]
dir = "state"
interval = "100ms"
"#,
        url = server.url()
    )
}

/// `files` CSV files `in/NN.csv` of `per_file` rows `id,pad`, ids `0..files * per_file`;
/// returns the count.
fn csv_input(work: &Workdir, files: u64, per_file: u64) -> u64 {
    for file in 0..files {
        let mut text = String::from("id,pad\n");
        for id in file * per_file..(file + 1) * per_file {
            text += &format!("{id},{}\n", pad(id));
        }
        work.write(&format!("in/{file:02}.csv"), text);
    }
    files * per_file
}

fn server_with_table() -> PgServer {
    let server = PgServer::start_with(&[("fsync", "off")]).expect("PostgreSQL starts");
    server
        .psql("CREATE TABLE records (id bigint PRIMARY KEY, pad text NOT NULL)")
        .unwrap();
    server
}

/// The table's rows, `(id, pad)` by id.
fn table(server: &PgServer) -> Vec<(u64, String)> {
    server
        .psql("SELECT id, pad FROM records ORDER BY id")
        .unwrap()
        .lines()
        .map(|line| {
            let (id, pad) = line.split_once('|').expect("id|pad");
            (id.parse().expect("an id"), pad.to_owned())
        })
        .collect()
}

fn count(server: &PgServer) -> u64 {
    server
        .psql("SELECT count(*) FROM records")
        .map_or(0, |out| out.trim().parse().unwrap_or(0))
}

fn expected(total: u64) -> Vec<(u64, String)> {
    (0..total).map(|id| (id, pad(id))).collect()
}

/// Asserts a run ended by itself and clean: exit 0, no failures, nothing
/// dead-lettered, everything admitted acknowledged.
fn assert_clean(output: &Output) -> serde_json::Value {
    let report = support::report(output);
    assert!(
        output.status.success(),
        "status {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["failures"], serde_json::json!([]), "{report}");
    assert_eq!(report["dead_lettered"], 0, "{report}");
    assert_eq!(report["acknowledged"], report["admitted"], "{report}");
    report
}

#[test]
fn kill_9_at_random_moments_then_a_rerun_leaves_the_table_equal_to_the_input() {
    let server = server_with_table();
    let work = Workdir::new();
    let total = csv_input(&work, 4, 6000);
    work.write("p.toml", pipeline(&server));
    let mut rng = Rng::from_env_or_clock("kill_9 postgres sink");
    for kill in 0..4 {
        let mut child = work.spawn();
        let after = Duration::from_millis(rng.between(200, 700));
        std::thread::sleep(after);
        assert!(
            child.try_wait().unwrap().is_none(),
            "run {kill} ended before its kill at {after:?}; the input is too small"
        );
        signal(&child, libc::SIGKILL);
        child.wait().unwrap();
        eprintln!(
            "kill {kill} after {after:?}: {} rows in the table",
            count(&server)
        );
    }
    let rows_before = count(&server);
    assert!(rows_before < total, "the kills left nothing to do");
    let report = assert_clean(&work.command().output().unwrap());
    assert!(
        report["connectors"]["sink"]["written"].as_u64().unwrap() >= total - rows_before,
        "{report}"
    );
    assert!(
        table(&server) == expected(total),
        "the table is not exactly the input"
    );
    assert!(fs::read(work.join("dead.jsonl")).unwrap().is_empty());
}

#[test]
fn a_server_stopped_mid_run_and_started_again_stalls_the_run_which_then_finishes_exact() {
    let mut server = server_with_table();
    let work = Workdir::new();
    let total = csv_input(&work, 3, 8000);
    work.write("p.toml", pipeline(&server));
    let child = work.spawn();
    wait_until(Duration::from_secs(20), "3000 rows in the table", || {
        count(&server) >= 3000
    });
    server.stop().unwrap();
    let stopped = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    server.start_again().unwrap();
    let at_restart = count(&server);
    eprintln!(
        "stopped {:?} with the run going; {at_restart} rows after the restart",
        stopped.elapsed()
    );
    assert!(at_restart < total, "the run finished before the outage");

    let output = child.wait_with_output().unwrap();
    let report = assert_clean(&output);
    assert!(
        table(&server) == expected(total),
        "the table is not exactly the input: {report}"
    );
}

/// `examples/pipelines/` copied to `to`, but what earlier runs left in `out/`.
fn copy_examples(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            fs::create_dir(&target).unwrap();
            if entry.file_name() != "out" {
                copy_examples(&entry.path(), &target);
            }
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `brigade ARGS` with `PG_URL` set to `server`'s.
fn brigade(server: &PgServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brigade"))
        .args(args)
        .env("PG_URL", server.url())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The csv-postgres example is left out of tests/examples.rs, which runs the
/// examples without a server: here it runs against one, as its comment says.
#[test]
fn the_csv_postgres_example_upserts_and_a_replay_leaves_the_table_exact() {
    let server = PgServer::start_with(&[("fsync", "off")]).unwrap();
    let copy = tempfile::tempdir().unwrap();
    copy_examples(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pipelines"),
        copy.path(),
    );
    let dir = copy.path().join("csv-postgres");
    server
        .psql(&fs::read_to_string(dir.join("schema.sql")).unwrap())
        .unwrap();
    let pipeline = dir.join("customers.toml");
    let pipeline = pipeline.to_str().unwrap();

    let validate = brigade(&server, &["validate", pipeline]);
    assert!(validate.status.success(), "{validate:?}");
    let run = || {
        let output = brigade(
            &server,
            &["run", pipeline, "--headless", "--report", "json"],
        );
        assert_clean(&output)
    };
    let customers = || server.psql("SELECT * FROM customers ORDER BY id").unwrap();

    let report = run();
    assert_eq!(report["connectors"]["sink"]["written"], 7, "{report}");
    let table = customers();
    assert_eq!(
        table,
        "c-03|Ada Byron|GB|gold\n\
         c-08|Grace Hopper|US|silver\n\
         c-17|Edsger Dijkstra|NL|silver\n\
         c-21|Barbara Liskov|US|gold\n\
         c-42|Johnson, Katherine|US|bronze\n\
         c-51|Alan Turing|GB|gold\n"
    );

    // Without its checkpoint (as if it crashed before acknowledging anything) every
    // row is written again, and the upsert leaves the table as it was.
    fs::remove_dir_all(copy.path().join("out/postgres-state")).unwrap();
    let replay = run();
    assert_eq!(replay["connectors"]["sink"]["written"], 7, "{replay}");
    assert_eq!(customers(), table);
}
