//! A fleet of real `brigade run` processes on one Redis Streams consumer group
//! (testkit's `redis-server`), writing to one SQLite table with an upsert key: one
//! killed with `kill -9` mid-run, Redis stopped and started mid-run, a poison entry
//! that kills its process every time.
//!
//! Each test prints its figures (duplicates, claim time, stall) to standard error:
//! `cargo test --test redis -- --nocapture`.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use brigade_testkit::redis::RedisServer;
use redis::{Connection, Value};

/// Entries the fleet test produces, as the issue asks.
const FLEET_ENTRIES: u64 = 300_000;
/// The source's `claim_idle`, in milliseconds; the janitor sweeps every quarter of it
/// (its tick).
const CLAIM_IDLE_MS: u64 = 2000;

/// A pipeline file: the group `fleet` on `events` (the record as JSON in the entry's
/// `doc` field) through an optional stage into the SQLite table `records`, upserting
/// on `id`; each process ends after `idle` without new entries.
fn pipeline(stage: &str, idle: &str, rate: u64) -> String {
    format!(
        r#"name = "fleet"
[runtime]
retry = {{ attempts = "forever", initial_backoff = "10ms", max_backoff = "200ms" }}

[source]
type = "redis"
url = "${{REDIS_URL}}"
stream = "events"
group = "fleet"
consumer = "${{CONSUMER}}"
field = "doc"
count = 200
block = "200ms"
claim_idle = "{CLAIM_IDLE_MS}ms"
max_deliveries = 3
stop_when_idle = "{idle}"
{stage}
[sink]
type = "sqlite"
path = "out.db"
table = "records"
columns = ["id", "pad"]
key = ["id"]
batch_size = 200
rate_limit = {rate}

[dead_letter]
path = "dead-${{CONSUMER}}.jsonl"
"#
    )
}

/// Held by each test: they run one at a time, so that their timings do not depend on
/// the other tests' processes sharing the machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The pad of entry `id`, to check a row arrived whole.
fn pad(id: u64) -> String {
    format!("p{:x}", id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40)
}

fn connect(server: &RedisServer) -> Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// Adds entries `from..to` to `events`, pipelined a thousand at a time.
fn produce(redis: &mut Connection, from: u64, to: u64) {
    let ids: Vec<u64> = (from..to).collect();
    for chunk in ids.chunks(1000) {
        let mut pipe = redis::pipe();
        for id in chunk {
            let doc = format!(r#"{{"id":{id},"pad":"{}"}}"#, pad(*id));
            pipe.cmd("XADD")
                .arg("events")
                .arg("*")
                .arg("doc")
                .arg(doc)
                .ignore();
        }
        pipe.query::<()>(redis).unwrap();
    }
}

/// The table `records`, with a trigger counting every upsert that hit an existing
/// row (a duplicate delivery) in `duplicates`.
fn prepare_table(dir: &Path) {
    let db = rusqlite::Connection::open(dir.join("out.db")).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE records (id, pad, PRIMARY KEY (id));
         CREATE TABLE duplicates (id);
         CREATE TRIGGER counted AFTER UPDATE ON records
         BEGIN INSERT INTO duplicates VALUES (new.id); END;",
    )
    .unwrap();
}

/// The table's rows, by id, and the duplicates counted.
fn table(dir: &Path) -> (Vec<(u64, String)>, u64) {
    let db = rusqlite::Connection::open(dir.join("out.db")).unwrap();
    let mut statement = db
        .prepare("SELECT id, pad FROM records ORDER BY id")
        .unwrap();
    let rows = statement
        .query_map([], |row| Ok((row.get::<_, i64>(0)? as u64, row.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<(u64, String)>, _>>()
        .unwrap();
    let duplicates: i64 = db
        .query_row("SELECT count(*) FROM duplicates", [], |row| row.get(0))
        .unwrap();
    (rows, duplicates as u64)
}

fn rows_now(dir: &Path) -> u64 {
    let db = rusqlite::Connection::open(dir.join("out.db")).unwrap();
    db.query_row("SELECT count(*) FROM records", [], |row| {
        row.get::<_, i64>(0)
    })
    .unwrap() as u64
}

/// Waits (at most 20 s) until the table holds `rows` rows.
fn wait_for_rows(dir: &Path, rows: u64) {
    let start = Instant::now();
    while rows_now(dir) < rows {
        assert!(start.elapsed() < Duration::from_secs(20), "no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `brigade run p.toml` in `dir` as consumer `name`.
fn spawn(dir: &Path, server: &RedisServer, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_brigade"))
        .args(["run", "p.toml", "--headless", "--report", "json"])
        .current_dir(dir)
        .env("REDIS_URL", server.url())
        .env("CONSUMER", name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a run and asserts it ended clean: exit 0, no failure, nothing
/// dead-lettered, everything admitted acknowledged.
fn assert_clean(child: Child, name: &str) -> serde_json::Value {
    let output: Output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{name}: {:?}\n{stderr}",
        output.status
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{name}: the report is JSON ({error})\n{stderr}"));
    assert_eq!(
        report["failures"],
        serde_json::json!([]),
        "{name}: {report}"
    );
    assert_eq!(report["dead_lettered"], 0, "{name}: {report}");
    assert_eq!(
        report["acknowledged"], report["admitted"],
        "{name}: {report}"
    );
    report
}

/// Pending entries of the group: in all, and of consumer `name`.
fn pending(redis: &mut Connection, name: &str) -> (u64, u64) {
    let reply: Value = redis::cmd("XPENDING")
        .arg("events")
        .arg("fleet")
        .query(redis)
        .unwrap();
    let Value::Array(parts) = reply else {
        panic!("XPENDING: {reply:?}");
    };
    let total = match &parts[0] {
        Value::Int(n) => *n as u64,
        other => panic!("{other:?}"),
    };
    let mut own = 0;
    if let Value::Array(consumers) = &parts[3] {
        for row in consumers {
            if let Value::Array(pair) = row {
                let who: String = redis::from_redis_value(pair[0].clone()).unwrap();
                let count: String = redis::from_redis_value(pair[1].clone()).unwrap();
                if who == name {
                    own = count.parse().unwrap();
                }
            }
        }
    }
    (total, own)
}

/// The ids pending in the group (with `consumer` only, if given).
fn pending_ids(redis: &mut Connection, consumer: Option<&str>) -> Vec<String> {
    let mut command = redis::cmd("XPENDING");
    command
        .arg("events")
        .arg("fleet")
        .arg("-")
        .arg("+")
        .arg(1_000_000);
    if let Some(consumer) = consumer {
        command.arg(consumer);
    }
    let rows: Vec<(String, String, u64, u64)> = command.query(redis).unwrap();
    rows.into_iter().map(|row| row.0).collect()
}

/// The group's `lag` and `entries-read` (`XINFO GROUPS`).
fn group_progress(redis: &mut Connection) -> (i64, i64) {
    let groups: Vec<std::collections::HashMap<String, Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg("events")
        .query(redis)
        .unwrap();
    let number = |value: &Value| match value {
        Value::Int(n) => *n,
        other => panic!("{other:?}"),
    };
    (
        number(&groups[0]["lag"]),
        number(&groups[0]["entries-read"]),
    )
}

fn expected(total: u64, skip: Option<u64>) -> Vec<(u64, String)> {
    (0..total)
        .filter(|id| Some(*id) != skip)
        .map(|id| (id, pad(id)))
        .collect()
}

/// A seed from `BRIGADE_TEST_SEED` or the clock, printed, and a moment from it.
fn random_moment(low_ms: u64, high_ms: u64) -> Duration {
    let seed = std::env::var("BRIGADE_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |elapsed| elapsed.as_nanos() as u64)
        });
    eprintln!("seed {seed} (repeat with BRIGADE_TEST_SEED={seed})");
    let mixed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 16;
    Duration::from_millis(low_ms + mixed % (high_ms - low_ms))
}

#[test]
fn three_processes_share_a_group_and_a_kill_9_loses_nothing() {
    let _alone = one_at_a_time();
    let server = RedisServer::start().unwrap();
    let mut redis = connect(&server);
    let dir = tempfile::tempdir().unwrap();
    prepare_table(dir.path());
    std::fs::write(dir.path().join("p.toml"), pipeline("", "6s", 20_000)).unwrap();
    produce(&mut redis, 0, FLEET_ENTRIES);

    let started = Instant::now();
    let names = ["a", "b", "victim"];
    let mut children: Vec<Child> = names
        .iter()
        .map(|name| spawn(dir.path(), &server, name))
        .collect();
    let victim = children.pop().unwrap();
    let at = random_moment(1500, 4000);
    std::thread::sleep(at.saturating_sub(started.elapsed()));
    let rows_at_kill = rows_now(dir.path());
    let mut victim = victim;
    assert!(
        victim.try_wait().unwrap().is_none(),
        "the victim ended before its kill at {at:?}"
    );
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    let killed = Instant::now();
    let held_ids = pending_ids(&mut redis, Some("victim"));
    let held = held_ids.len() as u64;
    eprintln!("killed `victim` at {at:?} with {rows_at_kill} rows written; it held {held} entries");
    assert!(
        held > 0,
        "the victim held nothing at its kill: the run is too quick"
    );
    assert!(
        rows_at_kill < FLEET_ENTRIES * 9 / 10,
        "the kill came too late"
    );

    // Finished: acknowledged by the survivors, so no longer pending with anyone.
    let mut claimed_after = None;
    let mut finished_after = None;
    while finished_after.is_none() && killed.elapsed() < Duration::from_secs(30) {
        if claimed_after.is_none() && pending(&mut redis, "victim").1 == 0 {
            claimed_after = Some(killed.elapsed());
        }
        let still: std::collections::HashSet<String> =
            pending_ids(&mut redis, None).into_iter().collect();
        if held_ids.iter().all(|id| !still.contains(id)) {
            finished_after = Some(killed.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let finished_after = finished_after.expect("the victim's entries were finished");
    let claimed_after = claimed_after.unwrap_or(finished_after);
    let reports: Vec<serde_json::Value> = children
        .into_iter()
        .zip(names)
        .map(|(child, name)| assert_clean(child, name))
        .collect();
    let took = started.elapsed();

    let (rows, duplicates) = table(dir.path());
    assert!(
        rows == expected(FLEET_ENTRIES, None),
        "the table is not exactly the input ({} rows)",
        rows.len()
    );
    assert_eq!(pending(&mut redis, "").0, 0, "every entry acknowledged");
    assert_eq!(
        group_progress(&mut redis),
        (0, FLEET_ENTRIES as i64),
        "every entry delivered"
    );
    let written: u64 = reports
        .iter()
        .map(|report| report["connectors"]["sink"]["written"].as_u64().unwrap())
        .sum();
    eprintln!(
        "{FLEET_ENTRIES} entries in {took:?}; the survivors wrote {written}; the victim's \
         {held} pending entries were all claimed {claimed_after:?} and all finished \
         {finished_after:?} after the kill (claim_idle {CLAIM_IDLE_MS}ms, tick {}ms); \
         {duplicates} duplicates (at most the {held} it held)",
        CLAIM_IDLE_MS / 4
    );
    // Idle since the victim's last heartbeat at the latest, claimable after claim_idle,
    // claimed at the next tick (a second of slack for a busy CI machine); then they go
    // through the survivors' full pipelines.
    let tick = CLAIM_IDLE_MS / 4;
    let limit = Duration::from_millis(CLAIM_IDLE_MS + tick + 1000);
    assert!(
        claimed_after <= limit,
        "claimed {claimed_after:?} after the kill, more than {limit:?}"
    );
    // Finished: the claimed entries then queue behind what the survivors had already
    // admitted, so this is the claim plus the pipelines' latency: 2.1–3.1 s on a quiet
    // machine, 8.9 s once on a loaded 2-core CI box, hence the slack.
    let limit = Duration::from_millis(CLAIM_IDLE_MS + tick + 10_000);
    assert!(
        finished_after <= limit,
        "finished {finished_after:?} after the kill, more than {limit:?}"
    );
    assert!(
        duplicates <= held,
        "{duplicates} duplicates, more than the {held} entries the victim held"
    );
}

#[test]
fn a_redis_restart_mid_run_stalls_the_fleet_and_loses_nothing() {
    let _alone = one_at_a_time();
    let mut server = RedisServer::start_fsync_always().unwrap();
    let mut redis = connect(&server);
    let dir = tempfile::tempdir().unwrap();
    prepare_table(dir.path());
    std::fs::write(dir.path().join("p.toml"), pipeline("", "4s", 5000)).unwrap();
    produce(&mut redis, 0, 30_000);
    let children: Vec<Child> = ["a", "b"]
        .iter()
        .map(|name| spawn(dir.path(), &server, name))
        .collect();
    std::thread::sleep(Duration::from_millis(1200));
    let before = rows_now(dir.path());
    server.stop().unwrap();
    // What was in flight drains into the table; then nothing moves.
    std::thread::sleep(Duration::from_millis(1200));
    let stalled = rows_now(dir.path());
    std::thread::sleep(Duration::from_millis(1500));
    let still = rows_now(dir.path());
    eprintln!(
        "Redis stopped with {before} rows written; {stalled} after 1.2 s, {still} after 2.7 s"
    );
    assert_eq!(stalled, still, "the fleet went on without Redis");
    assert!(still < 30_000, "the run ended before Redis stopped");
    let restarted = Instant::now();
    server.start_again().unwrap();
    let mut redis = connect(&server);
    produce(&mut redis, 30_000, 35_000);
    wait_for_rows(dir.path(), still + 1);
    eprintln!(
        "writing again {:?} after Redis restarted",
        restarted.elapsed()
    );
    let reports: Vec<serde_json::Value> = children
        .into_iter()
        .zip(["a", "b"])
        .map(|(child, name)| assert_clean(child, name))
        .collect();
    let (rows, duplicates) = table(dir.path());
    assert!(
        rows == expected(35_000, None),
        "the table is not exactly the input ({} rows)",
        rows.len()
    );
    assert_eq!(pending(&mut redis, "").0, 0, "every entry acknowledged");
    eprintln!("{duplicates} duplicates after the restart");
    for report in reports {
        assert!(report["connectors"]["sink"]["written"].as_u64().unwrap() > 0);
    }
}

#[test]
fn a_poison_entry_that_kills_its_process_ends_in_the_dead_letter_stream() {
    let _alone = one_at_a_time();
    let server = RedisServer::start().unwrap();
    let mut redis = connect(&server);
    let dir = tempfile::tempdir().unwrap();
    prepare_table(dir.path());
    // The exec stage's program dies with its whole process (SIGKILL to brigade, its
    // parent) on the poison record: the record is never finished nor dead-lettered
    // locally; only its deliveries count.
    std::fs::write(
        dir.path().join("stage.py"),
        "import json, os, signal, sys\n\
         for line in sys.stdin:\n\
         \x20   record = json.loads(line)\n\
         \x20   if record.get('poison'):\n\
         \x20       os.kill(os.getppid(), signal.SIGKILL)\n\
         \x20       sys.exit(1)\n\
         \x20   print(json.dumps({'out': record}), flush=True)\n",
    )
    .unwrap();
    let stage =
        "[[stage]]\nname = \"crashy\"\ntype = \"exec\"\ncommand = [\"python3\", \"stage.py\"]\n";
    std::fs::write(dir.path().join("p.toml"), pipeline(stage, "1s", 100_000)).unwrap();
    produce(&mut redis, 0, 20);
    let poison: String = redis::cmd("XADD")
        .arg("events")
        .arg("*")
        .arg("doc")
        .arg(r#"{"id":20,"pad":"x","poison":true}"#)
        .query(&mut redis)
        .unwrap();
    produce(&mut redis, 21, 40);

    // A supervisor restarting the process as systemd would, until it ends by itself.
    let mut crashes = 0;
    let report = loop {
        let child = spawn(dir.path(), &server, "only");
        let output = child.wait_with_output().unwrap();
        if output.status.success() {
            break serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap();
        }
        crashes += 1;
        let rows: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg("events")
            .arg("fleet")
            .arg("-")
            .arg("+")
            .arg(100)
            .query(&mut redis)
            .unwrap();
        let counts: Vec<u64> = rows.iter().map(|row| row.3).collect();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(4).collect();
        eprintln!(
            "crash {crashes} ({:?}): deliveries of the pending entries {counts:?}; {tail:?}",
            output.status
        );
        assert!(crashes <= 3, "still crashing after {crashes} runs");
    };
    assert_eq!(crashes, 3, "killed once per delivery");
    assert_eq!(report["failures"], serde_json::json!([]), "{report}");
    let (rows, _) = table(dir.path());
    assert!(rows == expected(40, Some(20)), "every other entry written");
    assert_eq!(
        pending(&mut redis, "").0,
        0,
        "the poison entry acknowledged"
    );
    let dead: Vec<(String, std::collections::HashMap<String, String>)> = {
        let reply: Value = redis::cmd("XRANGE")
            .arg("fleet:dead")
            .arg("-")
            .arg("+")
            .query(&mut redis)
            .unwrap();
        redis::from_redis_value(reply).unwrap()
    };
    assert_eq!(dead.len(), 1, "{dead:?}");
    let fields = &dead[0].1;
    assert_eq!(fields["id"], poison);
    assert_eq!(fields["deliveries"], "3");
    assert_eq!(fields["consumer"], "only");
    let entry: serde_json::Value = serde_json::from_str(&fields["entry"]).unwrap();
    assert_eq!(
        entry["doc"].as_str().unwrap(),
        r#"{"id":20,"pad":"x","poison":true}"#
    );
}

#[test]
fn validate_names_a_stream_key_of_another_type_and_run_refuses_to_start() {
    let _alone = one_at_a_time();
    let server = RedisServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.toml"), pipeline("", "1s", 1000)).unwrap();
    let command = |verb: &str| {
        Command::new(env!("CARGO_BIN_EXE_brigade"))
            .args([verb, "p.toml"])
            .current_dir(dir.path())
            .env("REDIS_URL", server.url())
            .env("CONSUMER", "a")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let output = command("validate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    server.cli(&["SET", "events", "not a stream"]).unwrap();
    for verb in ["validate", "run"] {
        let output = command(verb);
        let stderr =
            String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{verb} passed");
        assert!(
            stderr.contains(&format!(
                "source: redis {}: key `events` (the stream) holds a string, not a stream",
                server.url()
            )),
            "{verb}: {stderr}"
        );
    }
}
