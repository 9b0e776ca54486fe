//! Nothing lost: `brigade run` on real files, stopped by SIGTERM, killed with
//! `kill -9` at random moments, fed malformed input, and writing to sinks that fail.

#[path = "support/pipeline.rs"]
mod support;

// Shared with tests/dashboard.rs, which uses all of it; this file does not.
#[allow(dead_code)]
#[path = "support/pty.rs"]
mod pty;

use std::os::unix::process::CommandExt;
use std::time::Duration;

use support::{
    assert_none_missing, complete_lines, occurrences, pad, signal, sink_ids, sqlite_rows,
    wait_until, Rng, Workdir,
};

/// The sink's rate limit, records per second: slow enough that kills land mid-run.
const RATE: u64 = 8000;
/// The checkpoint interval, in milliseconds.
const CHECKPOINT_MS: u64 = 100;
/// Queue capacity, workers per stage and sink batch size (a static policy keeps them).
const QUEUE: u64 = 64;
const WORKERS: u64 = 2;
const BATCH: u64 = 50;

/// A pipeline file: the `in/` JSON-lines files through a `fields` stage into `sink`,
/// with the dead-letter file and a checkpoint every [`CHECKPOINT_MS`].
fn pipeline(sink: &str) -> String {
    format!(
        r#"name = "crash"
[runtime]
policy = "static:{WORKERS}"
queue_capacity = {QUEUE}
retry = {{ attempts = "forever", initial_backoff = "10ms", max_backoff = "200ms" }}

[source]
type = "file"
path = "in/*.jsonl"
format = "jsonl"

[[stage]]
name = "tag"
type = "fields"
set = {{ seen = true }}

[sink]
batch_size = {BATCH}
rate_limit = {RATE}
{sink}

[dead_letter]
path = "dead.jsonl"

[checkpoint]
dir = "state"
interval = "{CHECKPOINT_MS}ms"
"#
    )
}

const FILE_SINK: &str = "type = \"file\"\npath = \"out.jsonl\"";

/// The most records a `kill -9` may make the next run write again: every record
/// admitted and not acknowledged (three queues — decode, tag, sink — of [`QUEUE`],
/// one record in each decode and tag worker, a batch in each sink worker) plus the
/// records acknowledged since the last checkpoint. The sink acknowledges at most
/// [`RATE`] a second and the checkpoint is written every [`CHECKPOINT_MS`]; two
/// intervals leave room for a checkpoint write late on a busy machine.
const IN_FLIGHT_BOUND: u64 =
    3 * QUEUE + 2 * WORKERS + WORKERS * BATCH + RATE * 2 * CHECKPOINT_MS / 1000;

/// Asserts a run was clean: exit 0, no failures, nothing dead-lettered, everything
/// admitted acknowledged.
fn assert_clean(output: &std::process::Output, report: &serde_json::Value) {
    assert!(
        output.status.success(),
        "status {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["failures"], serde_json::json!([]), "{report}");
    assert_eq!(report["dead_lettered"], 0, "{report}");
    assert_eq!(report["acknowledged"], report["admitted"], "{report}");
}

/// Starts `brigade run` and kills it with SIGKILL at a random moment, asserting it
/// was still running then.
fn kill_at_random(work: &Workdir, rng: &mut Rng, kill: usize) {
    let mut child = work.spawn();
    let after = Duration::from_millis(rng.between(150, 500));
    std::thread::sleep(after);
    assert!(
        child.try_wait().expect("the child is waited on").is_none(),
        "run {kill} ended before its kill at {after:?}; the input is too small"
    );
    signal(&child, libc::SIGKILL);
    child.wait().expect("the killed run is reaped");
    eprint!("kill {kill} after {after:?}: ");
}

#[test]
fn kill_9_at_random_moments_then_a_rerun_loses_nothing_and_repeats_only_what_was_in_flight() {
    let work = Workdir::new();
    let total = work.ids_input(6, 5000);
    work.write("p.toml", pipeline(FILE_SINK));
    let mut rng = Rng::from_env_or_clock("kill_9 file sink");
    let out = work.join("out.jsonl");

    let mut lines_at_kill = Vec::new();
    for kill in 0..5 {
        kill_at_random(&work, &mut rng, kill);
        lines_at_kill.push(complete_lines(&out));
        eprintln!("{} lines in out.jsonl", lines_at_kill[kill]);
        if kill == 2 {
            // A kill inside the sink's write leaves a torn line; one write is too
            // quick to hit by chance, so tear one by hand: the next run must cut it.
            let mut file = std::fs::OpenOptions::new().append(true).open(&out).unwrap();
            std::io::Write::write_all(&mut file, b"{\"id\":12,\"pa").unwrap();
        }
    }
    let (output, report) = work.run();
    assert_clean(&output, &report);

    let ids = sink_ids(&out);
    let counts = occurrences(&ids, total);
    assert_none_missing(&counts);
    // Each rerun writes again what the kill before it caught in flight: the ids of
    // the lines after a kill's mark that were already before it.
    let mut marks = lines_at_kill.clone();
    marks.push(ids.len());
    let mut seen = vec![false; total as usize];
    let mut start = 0;
    for (kill, &end) in marks.iter().enumerate() {
        let repeated = ids[start..end]
            .iter()
            .filter(|&&id| std::mem::replace(&mut seen[id as usize], true))
            .count() as u64;
        if kill > 0 {
            eprintln!("kill {}: {repeated} records written again", kill - 1);
            assert!(
                repeated <= IN_FLIGHT_BOUND,
                "kill {}: {repeated} duplicates, more than the {IN_FLIGHT_BOUND} in flight",
                kill - 1
            );
        }
        start = end;
    }
    let duplicates = ids.len() as u64 - total;
    eprintln!("{duplicates} duplicates in all over 5 kills (bound {IN_FLIGHT_BOUND} each)");
    assert!(std::fs::read(work.join("dead.jsonl")).unwrap().is_empty());
}

#[test]
fn kill_9_at_random_moments_with_a_sqlite_upsert_leaves_the_table_equal_to_the_input() {
    let work = Workdir::new();
    let total = work.ids_input(6, 5000);
    work.write(
        "p.toml",
        pipeline(
            "type = \"sqlite\"\npath = \"out.db\"\ntable = \"records\"\n\
             columns = [\"id\", \"pad\"]\nkey = [\"id\"]",
        ),
    );
    let mut rng = Rng::from_env_or_clock("kill_9 sqlite sink");
    for kill in 0..5 {
        kill_at_random(&work, &mut rng, kill);
        let rows = sqlite_rows(&work.join("out.db"), "records").len();
        eprintln!("{rows} rows in the table");
    }
    let (output, report) = work.run();
    assert_clean(&output, &report);
    let expected: Vec<(u64, String)> = (0..total).map(|id| (id, pad(id))).collect();
    assert!(
        sqlite_rows(&work.join("out.db"), "records") == expected,
        "the table is not exactly the input"
    );
}

#[test]
fn sigterm_drains_and_the_rerun_completes_the_rest_exactly_once() {
    let work = Workdir::new();
    let total = work.ids_input(4, 5000);
    work.write("p.toml", pipeline(FILE_SINK));
    let out = work.join("out.jsonl");

    let child = work.spawn();
    wait_until(Duration::from_secs(20), "1000 records written", || {
        complete_lines(&out) >= 1000
    });
    signal(&child, libc::SIGTERM);
    let output = child.wait_with_output().expect("the run ends");
    let report = support::report(&output);
    assert_clean(&output, &report);
    let first = complete_lines(&out) as u64;
    assert!(
        first < total,
        "the drain stopped reading: {first} of {total}"
    );
    assert_eq!(report["connectors"]["sink"]["written"], first, "{report}");

    let (output, report) = work.run();
    assert_clean(&output, &report);
    assert_eq!(
        report["connectors"]["sink"]["written"],
        total - first,
        "{report}"
    );
    let counts = occurrences(&sink_ids(&out), total);
    assert!(
        counts.iter().all(|&count| count == 1),
        "not every id exactly once"
    );
}

#[test]
fn q_in_the_dashboard_drains_and_the_rerun_completes_the_rest_exactly_once() {
    let work = Workdir::new();
    let total = work.ids_input(4, 5000);
    work.write("p.toml", pipeline(FILE_SINK));
    let out = work.join("out.jsonl");

    let mut terminal = pty::Pty::spawn(
        env!("CARGO_BIN_EXE_brigade"),
        &["run", "p.toml"],
        work.path(),
        40,
        120,
    );
    terminal.wait_for("1000 records written", Duration::from_secs(20), |_| {
        complete_lines(&out) >= 1000
    });
    assert!(terminal.screen().alternate_screen(), "the dashboard is up");
    terminal.type_keys("q");
    let status = terminal.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}: the drain ended cleanly");
    let first = complete_lines(&out) as u64;
    assert!(
        first < total,
        "the drain stopped reading: {first} of {total}"
    );

    let (output, report) = work.run();
    assert_clean(&output, &report);
    assert_eq!(report["connectors"]["sink"]["written"], total - first);
    let counts = occurrences(&sink_ids(&out), total);
    assert!(
        counts.iter().all(|&count| count == 1),
        "not every id exactly once"
    );
}

#[test]
fn malformed_input_is_dead_lettered_with_its_file_and_line_and_the_rest_goes_through() {
    let work = Workdir::new();
    // JSON lines: a bad line, and a gzip file cut in the middle.
    work.write(
        "in/a.jsonl",
        "{\"id\":0}\n{\"id\":1}\n{\"id\": oops\n{\"id\":3}\n",
    );
    let whole: String = (100..3100).map(|id| format!("{{\"id\":{id}}}\n")).collect();
    work.write("whole", &whole);
    let gzip = std::process::Command::new("gzip")
        .args(["-c", "whole"])
        .current_dir(work.path())
        .output()
        .expect("gzip runs")
        .stdout;
    work.write("in/b.jsonl.gz", &gzip[..gzip.len() / 2]);
    // CSV: rows with too many and too few fields; lines: a line that is not UTF-8.
    work.write("in/c.csv", "id,name\n1,a\n2,b,extra\n3,c\n4\n5,e\n");
    work.write("in/d.txt", b"ok one\nbad \xff\xfe byte\nok three\n");

    let runs = [
        ("jsonl", "in/*.jsonl*"),
        ("csv", "in/*.csv"),
        ("lines", "in/*.txt"),
    ];
    for (format, glob) in runs {
        work.write(
            "p.toml",
            format!(
                "[source]\ntype = \"file\"\npath = \"{glob}\"\nformat = \"{format}\"\n\
                 [sink]\ntype = \"file\"\npath = \"out.jsonl\"\n\
                 [dead_letter]\npath = \"dead.jsonl\"\n"
            ),
        );
        let (output, _) = work.run();
        assert!(output.status.success(), "{format}: {output:?}");
    }

    let out = std::fs::read_to_string(work.join("out.jsonl")).unwrap();
    let out: Vec<serde_json::Value> = out
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let gz_ids: Vec<u64> = out[3..]
        .iter()
        .take_while(|value| value["id"].is_u64())
        .map(|value| value["id"].as_u64().unwrap())
        .collect();
    let through = gz_ids.len() as u64;
    assert!(
        through > 0 && gz_ids == (100..100 + through).collect::<Vec<_>>(),
        "the gzip file's readable part went through, in order: {gz_ids:?}"
    );
    let mut expected: Vec<serde_json::Value> = [0, 1, 3]
        .iter()
        .map(|id| serde_json::json!({ "id": id }))
        .collect();
    expected.extend((100..100 + through).map(|id| serde_json::json!({ "id": id })));
    for (id, name) in [("1", "a"), ("3", "c"), ("5", "e")] {
        expected.push(serde_json::json!({ "id": id, "name": name }));
    }
    expected.extend(["ok one", "ok three"].map(serde_json::Value::from));
    assert_eq!(out, expected);

    let dead: Vec<serde_json::Value> = std::fs::read_to_string(work.join("dead.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let origins: Vec<&str> = dead.iter().map(|d| d["origin"].as_str().unwrap()).collect();
    let gz_origin = format!("in/b.jsonl.gz:{}", through + 1);
    assert_eq!(
        origins,
        [
            "in/a.jsonl:3",
            &gz_origin,
            "in/c.csv:3",
            "in/c.csv:5",
            "in/d.txt:2"
        ]
    );
    assert_eq!(dead[0]["record"], "{\"id\": oops");
    assert!(
        dead[1]["error"].as_str().unwrap().contains("gzip"),
        "{}",
        dead[1]
    );
    assert_eq!(dead[2]["record"], serde_json::json!(["2", "b", "extra"]));
    assert_eq!(dead[4]["record_base64"], "YmFkIP/+IGJ5dGU=");
    assert!(dead.iter().all(|d| d["stage"] == "decode"));
}

#[test]
fn a_sqlite_database_locked_by_another_process_stalls_the_sink_until_released() {
    let work = Workdir::new();
    let total = work.ids_input(3, 8000);
    work.write(
        "p.toml",
        pipeline(
            "type = \"sqlite\"\npath = \"out.db\"\ntable = \"records\"\n\
             columns = [\"id\", \"pad\"]\nkey = [\"id\"]\nbusy_timeout = \"50ms\"",
        ),
    );
    // Once the run has written rows, another process takes the database's exclusive
    // lock and holds it for 1.5 s: every write in that time fails and is retried.
    let holder = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys, time\n\
             db = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             while True:\n\
             \x20   try:\n\
             \x20       if db.execute('SELECT count(*) FROM records').fetchone()[0] > 0: break\n\
             \x20   except sqlite3.OperationalError:\n\
             \x20       pass\n\
             \x20   time.sleep(0.01)\n\
             db.execute('BEGIN EXCLUSIVE')\n\
             rows = db.execute('SELECT count(*) FROM records').fetchone()[0]\n\
             time.sleep(1.5)\n\
             db.execute('COMMIT')\n\
             print(rows, flush=True)\n",
        ])
        .arg(work.join("out.db"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");

    let (output, report) = work.run();
    let holder = holder.wait_with_output().unwrap();
    assert!(holder.status.success(), "{holder:?}");
    let rows_at_lock: u64 = String::from_utf8(holder.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    eprintln!("locked at {rows_at_lock} rows of {total}");
    assert!(
        rows_at_lock < total,
        "the lock came after the run wrote all"
    );
    assert_clean(&output, &report);
    let sink = &report["stages"][2];
    assert_eq!(sink["name"], "sink");
    assert!(sink["retries"].as_u64().unwrap() > 0, "retried: {sink}");
    assert!(
        report["elapsed_s"].as_f64().unwrap() >= 1.5,
        "stalled while locked: {report}"
    );
    let expected: Vec<(u64, String)> = (0..total).map(|id| (id, pad(id))).collect();
    assert!(sqlite_rows(&work.join("out.db"), "records") == expected);
}

/// A full disk, simulated with RLIMIT_FSIZE on the run (writes past the limit fail
/// with EFBIG; SIGXFSZ is ignored). A process's limit cannot be lifted from outside,
/// so the fault goes away by rerunning without it: the first run shows the stall
/// (retried, nothing dead-lettered, the drain deadline reached with records held, the
/// checkpoint short of them), the rerun completes every record exactly once.
#[test]
fn a_full_disk_stalls_the_file_sink_without_loss_and_a_rerun_completes_exactly() {
    let work = Workdir::new();
    let total = work.ids_input(3, 2000);
    work.write("p.toml", pipeline(FILE_SINK));
    let out = work.join("out.jsonl");
    const LIMIT: u64 = 64 * 1024;

    let mut command = work.command();
    command.args(["--drain-timeout", "500ms"]);
    // SAFETY: setrlimit and signal are async-signal-safe; nothing else runs here.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0
                || libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().expect("brigade starts");
    // Full: within a batch (50 records of some 45 bytes) of the limit, and growing
    // no more.
    let size = || std::fs::metadata(&out).map_or(0, |m| m.len());
    wait_until(Duration::from_secs(20), "the sink file to fill", || {
        size() + 4096 > LIMIT
    });
    let mut last = size();
    wait_until(Duration::from_secs(20), "the sink to stall", || {
        std::thread::sleep(Duration::from_millis(300));
        std::mem::replace(&mut last, size()) == last
    });
    signal(&child, libc::SIGTERM);
    let output = child.wait_with_output().expect("the run ends");
    let report = support::report(&output);
    assert!(!output.status.success(), "the drain deadline fails the run");
    assert_eq!(report["failures"][0]["kind"], "drain_deadline", "{report}");
    assert!(report["failures"][0]["records"].as_u64().unwrap() > 0);
    assert_eq!(report["dead_lettered"], 0, "{report}");
    // The sink's call is still retrying when the drain gives up, and the runtime
    // counts a call's retries when it ends, so the stall shows as records held in
    // the sink's queue and written stopping short of the input.
    assert!(
        report["failures"][0]["stages"][2]["queued"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(std::fs::metadata(&out).unwrap().len() <= LIMIT);
    let acknowledged = report["connectors"]["source"]["acknowledged"]
        .as_u64()
        .unwrap();
    assert!(acknowledged < total, "{report}");

    let (output, report) = work.run();
    assert_clean(&output, &report);
    let counts = occurrences(&sink_ids(&out), total);
    assert_none_missing(&counts);
    assert!(
        counts.iter().all(|&count| count == 1),
        "{} ids written twice",
        counts.iter().filter(|&&count| count > 1).count()
    );
}
