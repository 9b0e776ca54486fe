//! The SQLite sink against real database files.

use crate::testing::records;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::{json, Value};

use super::{SqliteError, SqliteSinkConfig, SqliteWriter};
use crate::units::Span;

fn config(key: &[&str]) -> SqliteSinkConfig {
    SqliteSinkConfig {
        path: "out.db".into(),
        table: "people".into(),
        columns: vec!["id".into(), "name".into(), "tags".into()],
        key: key.iter().map(|column| (*column).to_owned()).collect(),
        create_table: None,
        busy_timeout: Some(Span(Duration::from_millis(50))),
    }
}

/// The table's rows, ordered, as (id, name, tags) text.
fn rows(database: &Path) -> Vec<(i64, Option<String>, Option<String>)> {
    let connection = Connection::open(database).unwrap();
    let mut statement = connection
        .prepare("SELECT id, name, tags FROM people ORDER BY id, rowid")
        .unwrap();
    let rows = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn inserts_a_batch_into_a_created_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = SqliteWriter::open(&config(&[]), dir.path()).unwrap();
    let batch = records(&[
        json!({"id": 1, "name": "Zoë", "tags": ["a", "b"]}),
        json!({"id": 2, "extra": true}),
    ]);
    assert_eq!(writer.write(&batch).unwrap(), vec![]);
    assert_eq!(
        rows(&dir.path().join("out.db")),
        vec![
            (1, Some("Zoë".into()), Some(r#"["a","b"]"#.into())),
            (2, None, None)
        ]
    );
}

#[test]
fn a_replayed_batch_with_a_key_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = SqliteWriter::open(&config(&["id"]), dir.path()).unwrap();
    let batch = records(&[json!({"id": 1, "name": "a"}), json!({"id": 2, "name": "b"})]);
    writer.write(&batch).unwrap();
    writer.write(&batch).unwrap();
    let expected = vec![(1, Some("a".into()), None), (2, Some("b".into()), None)];
    assert_eq!(rows(&dir.path().join("out.db")), expected);

    // A later version of a row replaces it.
    writer
        .write(&records(&[json!({"id": 2, "name": "B"})]))
        .unwrap();
    assert_eq!(
        rows(&dir.path().join("out.db"))[1],
        (2, Some("B".into()), None)
    );
}

#[test]
fn without_a_key_a_replay_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = SqliteWriter::open(&config(&[]), dir.path()).unwrap();
    let batch = records(&[json!({"id": 1})]);
    writer.write(&batch).unwrap();
    writer.write(&batch).unwrap();
    assert_eq!(rows(&dir.path().join("out.db")).len(), 2);
}

#[test]
fn a_bad_row_is_rejected_alone() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("out.db");
    Connection::open(&database)
        .unwrap()
        .execute_batch("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, tags)")
        .unwrap();
    let mut writer = SqliteWriter::open(&config(&["id"]), dir.path()).unwrap();
    let batch = records(&[
        json!({"id": 1, "name": "a"}),
        json!({"id": 2}),
        json!({"name": "no key"}),
        json!("not an object"),
        json!({"id": 5, "name": "e"}),
    ]);
    let rejected = writer.write(&batch).unwrap();
    let indices: Vec<usize> = rejected.iter().map(|(index, _)| *index).collect();
    assert_eq!(indices, vec![1, 2, 3]);
    assert!(rejected[0].1.contains("NOT NULL"), "{}", rejected[0].1);
    assert!(
        rejected[1].1.contains("key field `id`"),
        "{}",
        rejected[1].1
    );
    assert!(
        rejected[2].1.contains("not a JSON object"),
        "{}",
        rejected[2].1
    );
    assert_eq!(
        rows(&database),
        vec![(1, Some("a".into()), None), (5, Some("e".into()), None)]
    );
}

#[test]
fn a_locked_database_fails_the_batch_as_transient_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = SqliteWriter::open(&config(&["id"]), dir.path()).unwrap();
    let other = Connection::open(dir.path().join("out.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    assert_eq!(
        writer.write(&[]).unwrap(),
        vec![],
        "an empty batch takes no lock"
    );
    let batch = records(&[json!({"id": 1, "name": "a"})]);
    let error = writer.write(&batch).unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(matches!(error, SqliteError::Write { .. }), "{error}");

    other.execute_batch("COMMIT").unwrap();
    assert_eq!(writer.write(&batch).unwrap(), vec![]);
    assert_eq!(
        rows(&dir.path().join("out.db")),
        vec![(1, Some("a".into()), None)]
    );
}

#[test]
fn the_database_is_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let _writer = SqliteWriter::open(&config(&[]), dir.path()).unwrap();
    let connection = Connection::open(dir.path().join("out.db")).unwrap();
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn an_existing_table_without_a_column_is_named() {
    let dir = tempfile::tempdir().unwrap();
    Connection::open(dir.path().join("out.db"))
        .unwrap()
        .execute_batch("CREATE TABLE people (id, name)")
        .unwrap();
    let error = SqliteWriter::open(&config(&[]), dir.path()).unwrap_err();
    assert!(
        matches!(&error, SqliteError::MissingColumn { column, .. } if column == "tags"),
        "{error}"
    );
    assert!(error.to_string().contains("no column `tags`"), "{error}");

    let problems = config(&[]).check(dir.path());
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].part, "sink");
    assert!(
        problems[0].message.contains("no column `tags`"),
        "{}",
        problems[0]
    );
}

#[test]
fn an_upsert_key_without_a_unique_index_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    Connection::open(dir.path().join("out.db"))
        .unwrap()
        .execute_batch("CREATE TABLE people (id, name, tags)")
        .unwrap();
    let error = SqliteWriter::open(&config(&["id"]), dir.path()).unwrap_err();
    assert!(matches!(error, SqliteError::Table { .. }), "{error}");
    assert!(!config(&["id"]).check(dir.path()).is_empty());
}

#[test]
fn identifiers_are_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let config = SqliteSinkConfig {
        table: "odd \"table\"".into(),
        columns: vec!["select".into(), "a b".into()],
        key: vec!["select".into()],
        ..config(&[])
    };
    let mut writer = SqliteWriter::open(&config, dir.path()).unwrap();
    writer
        .write(&records(&[json!({"select": 1, "a b": "x"})]))
        .unwrap();
    let connection = Connection::open(dir.path().join("out.db")).unwrap();
    let value: String = connection
        .query_row(r#"SELECT "a b" FROM "odd ""table""""#, [], |row| row.get(0))
        .unwrap();
    assert_eq!(value, "x");
}

#[test]
fn the_check_changes_nothing_and_finds_what_open_would() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(config(&["id"]).check(dir.path()), vec![]);
    assert!(
        !dir.path().join("out.db").exists(),
        "the check created the database"
    );

    let missing_dir = SqliteSinkConfig {
        path: "nowhere/out.db".into(),
        ..config(&[])
    };
    let problems = missing_dir.check(dir.path());
    assert!(
        problems[0].message.contains("does not exist"),
        "{}",
        problems[0]
    );

    Connection::open(dir.path().join("out.db"))
        .unwrap()
        .execute_batch("CREATE TABLE other (x)")
        .unwrap();
    let no_create = SqliteSinkConfig {
        create_table: Some(false),
        ..config(&[])
    };
    let problems = no_create.check(dir.path());
    assert!(
        problems[0].message.contains("no table `people`"),
        "{}",
        problems[0]
    );
    assert_eq!(
        config(&[]).check(dir.path()),
        vec![],
        "the table may be created"
    );

    let stray_key = SqliteSinkConfig {
        key: vec!["email".into()],
        ..config(&[])
    };
    let problems = stray_key.check(dir.path());
    assert!(
        problems[0]
            .message
            .contains("key `email` is not one of `columns`"),
        "{}",
        problems[0]
    );
}

#[test]
fn a_writer_can_move_to_its_thread() {
    fn movable<T: Send + 'static>() {}
    movable::<SqliteWriter>();
    movable::<SqliteError>();
}

/// Where the crash test's child writes, and the file it creates once it has committed.
const CRASH_DIR: &str = "BRIGADE_SQLITE_CRASH_DIR";
const COMMITTED: &str = "committed";

/// The child of `a_committed_batch_survives_a_kill_9`, in its own process: writes a
/// batch, says so, and waits to be killed.
#[test]
#[ignore = "run by a_committed_batch_survives_a_kill_9 in a process of its own"]
fn write_a_batch_then_wait_to_be_killed() {
    let dir = std::env::var_os(CRASH_DIR).expect("run by a_committed_batch_survives_a_kill_9");
    let dir = Path::new(&dir);
    let mut writer = SqliteWriter::open(&config(&["id"]), dir).unwrap();
    let batch: Vec<Value> = (0..100).map(|id| json!({"id": id, "name": "x"})).collect();
    assert_eq!(writer.write(&records(&batch)).unwrap(), vec![]);
    std::fs::write(dir.join(COMMITTED), "").unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn a_committed_batch_survives_a_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sqlite::test::write_a_batch_then_wait_to_be_killed",
        ])
        .args(["--ignored", "--test-threads=1"])
        .env(CRASH_DIR, dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.path().join(COMMITTED).exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child ended before it committed"
        );
        assert!(Instant::now() < deadline, "the child never committed");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no checkpoint, no close.
    child.wait().unwrap();
    assert!(
        dir.path().join("out.db-wal").exists(),
        "the batch is still only in the WAL"
    );
    assert_eq!(rows(&dir.path().join("out.db")).len(), 100);
}
