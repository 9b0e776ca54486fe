//! The PostgreSQL sink against a real PostgreSQL server (brigade-testkit): types
//! through COPY, upserts replayed, keys repeated in a batch, bad rows found by
//! splitting, more rows than one INSERT may bind, too many connections, a server
//! stopped and started again, and the healthcheck.

use crate::testing::records;
use std::time::Duration;

use brigade_testkit::postgres::PgServer;
use postgres::{Client, NoTls};
use serde_json::{json, Value};

use super::{Method, PostgresSinkConfig, PostgresWriter};
use crate::postgres::{is_transient, PostgresError};
use crate::units::Span;

fn config(server: &PgServer, table: &str, columns: &[&str], key: &[&str]) -> PostgresSinkConfig {
    PostgresSinkConfig {
        url: server.url(),
        table: table.into(),
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        key: key.iter().map(|c| (*c).to_owned()).collect(),
        method: Method::Copy,
        create_table: false,
        connect_timeout: Some(Span(Duration::from_secs(5))),
        statement_timeout: None,
    }
}

fn client(server: &PgServer) -> Client {
    Client::connect(&server.url(), NoTls).unwrap()
}

/// Every row of `sql`'s result, each column as text (`None` for NULL).
fn rows(server: &PgServer, sql: &str) -> Vec<Vec<Option<String>>> {
    client(server)
        .simple_query(sql)
        .unwrap()
        .into_iter()
        .filter_map(|message| match message {
            postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn text(cells: &[Option<&str>]) -> Vec<Option<String>> {
    cells.iter().map(|c| c.map(str::to_owned)).collect()
}

fn count(server: &PgServer, table: &str) -> u64 {
    rows(server, &format!("SELECT count(*) FROM {table}"))[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

const TYPED: &str = "CREATE TABLE typed (i int, b bigint, n numeric, t text, f boolean, \
                     j jsonb, at timestamptz, nothing text)";
const TYPED_COLUMNS: &[&str] = &["i", "b", "n", "t", "f", "j", "at", "nothing"];

#[test]
fn copy_appends_every_type_and_every_awkward_character_exactly() {
    let server = PgServer::start().unwrap();
    server.psql(TYPED).unwrap();
    let mut writer = PostgresWriter::open(&config(&server, "typed", TYPED_COLUMNS, &[])).unwrap();
    let awkward = "tab\there\nnew line\\back slash \\N \r Zoë 東京 🚀 \"quoted\" |pipe|";
    let batch = records(&[
        json!({"i": 7, "b": 9_007_199_254_740_993_i64, "n": "12345678901234567890.123456789",
               "t": awkward, "f": true, "j": {"a": [1, "x\ty"], "b": null, "c": "\\"},
               "at": "2026-12-07T10:00:00+02:00", "nothing": null}),
        json!({"i": "-3", "b": -1, "n": 0.5, "t": "", "f": false, "j": [1, 2]}),
        json!({"t": "\\N"}),
    ]);
    assert_eq!(writer.write(&batch).unwrap(), vec![]);
    let table = rows(
        &server,
        "SET TIME ZONE 'UTC'; SELECT i::text, b::text, n::text, t, f::text, j::text, \
         at::text, nothing FROM typed ORDER BY i NULLS LAST",
    );
    assert_eq!(
        table,
        vec![
            text(&[
                Some("-3"),
                Some("-1"),
                Some("0.5"),
                Some(""),
                Some("false"),
                Some("[1, 2]"),
                None,
                None
            ]),
            text(&[
                Some("7"),
                Some("9007199254740993"),
                Some("12345678901234567890.123456789"),
                Some(awkward),
                Some("true"),
                Some(r#"{"a": [1, "x\ty"], "b": null, "c": "\\"}"#),
                Some("2026-12-07 08:00:00+00"),
                None
            ]),
            text(&[None, None, None, Some("\\N"), None, None, None, None]),
        ]
    );
}

#[test]
fn an_upsert_replayed_leaves_the_table_unchanged_and_a_later_row_wins() {
    let server = PgServer::start().unwrap();
    server
        .psql("CREATE TABLE people (id bigint PRIMARY KEY, name text NOT NULL, tags jsonb)")
        .unwrap();
    for method in [Method::Copy, Method::Insert] {
        server.psql("TRUNCATE people").unwrap();
        let config = PostgresSinkConfig {
            method,
            ..config(&server, "people", &["id", "name", "tags"], &["id"])
        };
        let mut writer = PostgresWriter::open(&config).unwrap();
        let batch = records(&[
            json!({"id": 1, "name": "ada", "tags": ["x"]}),
            json!({"id": 2, "name": "grace"}),
        ]);
        writer.write(&batch).unwrap();
        let before = rows(&server, "SELECT * FROM people ORDER BY id");
        writer.write(&batch).unwrap();
        assert_eq!(
            rows(&server, "SELECT * FROM people ORDER BY id"),
            before,
            "{method:?}"
        );
        assert_eq!(before.len(), 2);

        writer
            .write(&records(&[
                json!({"id": 2, "name": "Grace", "tags": {"k": 1}}),
            ]))
            .unwrap();
        assert_eq!(
            rows(&server, "SELECT name, tags::text FROM people WHERE id = 2"),
            vec![text(&[Some("Grace"), Some(r#"{"k": 1}"#)])],
            "{method:?}"
        );
    }
}

#[test]
fn a_key_repeated_in_one_batch_keeps_its_last_row() {
    let server = PgServer::start().unwrap();
    server
        .psql("CREATE TABLE kv (a text, b int, v text, PRIMARY KEY (a, b))")
        .unwrap();
    for method in [Method::Copy, Method::Insert] {
        server.psql("TRUNCATE kv").unwrap();
        let config = PostgresSinkConfig {
            method,
            ..config(&server, "kv", &["a", "b", "v"], &["b", "a"])
        };
        let mut writer = PostgresWriter::open(&config).unwrap();
        let batch = records(&[
            json!({"a": "x", "b": 1, "v": "first"}),
            json!({"a": "y", "b": 1, "v": "other"}),
            json!({"a": "x", "b": 1, "v": "second"}),
            json!({"a": "x", "b": 1, "v": "last"}),
        ]);
        assert_eq!(writer.write(&batch).unwrap(), vec![], "{method:?}");
        assert_eq!(
            rows(&server, "SELECT a, v FROM kv ORDER BY a"),
            vec![
                text(&[Some("x"), Some("last")]),
                text(&[Some("y"), Some("other")])
            ],
            "{method:?}"
        );
    }
    // Keys the server takes as one ("1" and "01" for an int) are split apart and
    // written in turn: the later one wins.
    let mut writer =
        PostgresWriter::open(&config(&server, "kv", &["a", "b", "v"], &["a", "b"])).unwrap();
    let batch = records(&[
        json!({"a": "z", "b": "1", "v": "early"}),
        json!({"a": "z", "b": "01", "v": "late"}),
    ]);
    assert_eq!(writer.write(&batch).unwrap(), vec![]);
    assert_eq!(
        rows(&server, "SELECT v FROM kv WHERE a = 'z'"),
        vec![text(&[Some("late")])]
    );
}

#[test]
fn bad_rows_are_split_out_with_the_servers_message_and_the_rest_commits() {
    let server = PgServer::start().unwrap();
    server
        .psql(
            "CREATE TABLE orders (id int PRIMARY KEY, qty int NOT NULL CHECK (qty > 0), \
             note text)",
        )
        .unwrap();
    for (method, key) in [
        (Method::Copy, &[][..]),
        (Method::Copy, &["id"][..]),
        (Method::Insert, &["id"][..]),
    ] {
        server.psql("TRUNCATE orders").unwrap();
        let config = PostgresSinkConfig {
            method,
            ..config(&server, "orders", &["id", "qty", "note"], key)
        };
        let mut writer = PostgresWriter::open(&config).unwrap();
        let mut values: Vec<Value> = (0..100).map(|id| json!({"id": id, "qty": 1})).collect();
        values[13] = json!({"id": 13, "qty": "lots"});
        values[40] = json!({"id": 40});
        values[41] = json!({"id": 41, "qty": -2});
        values[77] = json!("not an object");
        values[99] = json!({"id": 99, "qty": 99_999_999_999_i64});
        let rejected = writer.write(&records(&values)).unwrap();
        let what = format!("{method:?} key {key:?}");
        let indices: Vec<usize> = rejected.iter().map(|(index, _)| *index).collect();
        assert_eq!(indices, [13, 40, 41, 77, 99], "{what}: {rejected:?}");
        let reason = |index: usize| &rejected[indices.iter().position(|&i| i == index).unwrap()].1;
        assert!(
            reason(13).contains("invalid input syntax for type integer: \"lots\""),
            "{what}: {}",
            reason(13)
        );
        assert!(reason(13).contains("22P02"), "{what}: {}", reason(13));
        if method == Method::Copy {
            assert!(
                reason(13).contains("column `qty`"),
                "{what}: {}",
                reason(13)
            );
            assert!(
                !reason(13).contains("brigade_stage"),
                "{what}: {}",
                reason(13)
            );
        }
        assert!(
            reason(40).contains("column `qty`"),
            "{what}: {}",
            reason(40)
        );
        assert!(reason(40).contains("not-null"), "{what}: {}", reason(40));
        assert!(
            reason(41).contains("orders_qty_check"),
            "{what}: {}",
            reason(41)
        );
        assert!(
            reason(77).contains("not a JSON object"),
            "{what}: {}",
            reason(77)
        );
        assert!(
            reason(99).contains("out of range"),
            "{what}: {}",
            reason(99)
        );
        assert_eq!(count(&server, "orders"), 95, "{what}");
        assert_eq!(
            rows(
                &server,
                "SELECT count(*) FROM orders WHERE id IN (13, 40, 41, 77, 99)"
            ),
            vec![text(&[Some("0")])],
            "{what}"
        );
    }
}

#[test]
fn copy_names_the_column_of_a_bad_value() {
    let server = PgServer::start().unwrap();
    server
        .psql("CREATE TABLE m (id int, at timestamptz)")
        .unwrap();
    let mut writer = PostgresWriter::open(&config(&server, "m", &["id", "at"], &[])).unwrap();
    let rejected = writer
        .write(&records(&[json!({"id": 1, "at": "yesterday-ish"})]))
        .unwrap();
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].1.contains("column `at`"), "{}", rejected[0].1);
    assert!(rejected[0].1.contains("22007"), "{}", rejected[0].1);
}

#[test]
fn a_transient_error_in_the_middle_of_a_split_rolls_the_whole_batch_back() {
    let server = PgServer::start().unwrap();
    // The 6th row the table sees trips a deadlock error: during the split that
    // looks for the NOT NULL violation, after the first part was written.
    server
        .psql(
            "CREATE TABLE t (id int, v text NOT NULL); CREATE SEQUENCE trip; \
             CREATE FUNCTION trip() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF nextval('trip') = 6 THEN \
                 RAISE EXCEPTION 'staged deadlock' USING ERRCODE = '40P01'; \
               END IF; RETURN NEW; END $$; \
             CREATE TRIGGER trip BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION trip();",
        )
        .unwrap();
    let mut writer = PostgresWriter::open(&config(&server, "t", &["id", "v"], &[])).unwrap();
    let batch = records(&[
        json!({"id": 0, "v": "a"}),
        json!({"id": 1}),
        json!({"id": 2, "v": "c"}),
        json!({"id": 3, "v": "d"}),
    ]);
    let error = writer.write(&batch).unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("40P01"), "{error}");
    assert_eq!(
        count(&server, "t"),
        0,
        "part of a failed batch was committed"
    );

    let rejected = writer.write(&batch).unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].0, 1);
    assert_eq!(
        rows(&server, "SELECT id FROM t ORDER BY id"),
        vec![text(&[Some("0")]), text(&[Some("2")]), text(&[Some("3")])]
    );
}

#[test]
fn the_insert_method_binds_more_than_one_statement_may() {
    let server = PgServer::start().unwrap();
    server
        .psql("CREATE TABLE wide (id int PRIMARY KEY, a text, b jsonb)")
        .unwrap();
    // 30,000 rows of 3 columns: 90,000 parameters, past the protocol's 65,535.
    let values: Vec<Value> = (0..30_000)
        .map(|id| json!({"id": id, "a": format!("row {id}"), "b": {"n": id}}))
        .collect();
    for key in [&[][..], &["id"][..]] {
        server.psql("TRUNCATE wide").unwrap();
        let config = PostgresSinkConfig {
            method: Method::Insert,
            ..config(&server, "wide", &["id", "a", "b"], key)
        };
        let mut writer = PostgresWriter::open(&config).unwrap();
        assert_eq!(writer.write(&records(&values)).unwrap(), vec![]);
        assert_eq!(
            rows(
                &server,
                "SELECT count(*), count(DISTINCT id), max((b->>'n')::int) FROM wide"
            ),
            vec![text(&[Some("30000"), Some("30000"), Some("29999")])],
            "key {key:?}"
        );
    }
}

#[test]
fn too_many_connections_is_transient_and_passes() {
    let server = PgServer::start_with(&[
        ("max_connections", "2"),
        ("superuser_reserved_connections", "0"),
    ])
    .unwrap();
    server.psql("CREATE TABLE t (id int)").unwrap();
    let config = config(&server, "t", &["id"], &[]);
    let first = client(&server);
    let second = client(&server);
    let error = PostgresWriter::open(&config).unwrap_err();
    assert!(matches!(error, PostgresError::Connect { .. }), "{error}");
    assert!(error.to_string().contains("53300"), "{error}");
    assert!(error.is_transient(), "{error}");
    drop((first, second));
    let mut writer = PostgresWriter::open(&config).unwrap();
    assert_eq!(writer.write(&records(&[json!({"id": 1})])).unwrap(), vec![]);
}

#[test]
fn a_server_stopped_and_started_again_fails_writes_as_transient_then_the_writer_reconnects() {
    let mut server = PgServer::start().unwrap();
    server
        .psql("CREATE TABLE t (id int PRIMARY KEY, v text)")
        .unwrap();
    let mut writer = PostgresWriter::open(&config(&server, "t", &["id", "v"], &["id"])).unwrap();
    writer
        .write(&records(&[json!({"id": 1, "v": "before"})]))
        .unwrap();

    server.stop().unwrap();
    let batch = records(&[json!({"id": 2, "v": "during"})]);
    for _ in 0..2 {
        let error = writer.write(&batch).unwrap_err();
        assert!(error.is_transient(), "{error}");
    }

    server.start_again().unwrap();
    assert_eq!(writer.write(&batch).unwrap(), vec![]);
    assert_eq!(
        rows(&server, "SELECT id, v FROM t ORDER BY id"),
        vec![
            text(&[Some("1"), Some("before")]),
            text(&[Some("2"), Some("during")])
        ]
    );
}

#[test]
fn server_errors_are_transient_by_their_sqlstate() {
    let server = PgServer::start().unwrap();
    let mut client = client(&server);
    for (state, transient) in [
        ("40001", true),
        ("40P01", true),
        ("53300", true),
        ("57P01", true),
        ("57P03", true),
        ("08006", true),
        ("22P02", false),
        ("23505", false),
        ("42P01", false),
    ] {
        let error = client
            .batch_execute(&format!(
                "DO $$ BEGIN RAISE EXCEPTION 'staged' USING ERRCODE = '{state}'; END $$"
            ))
            .unwrap_err();
        assert_eq!(error.code().unwrap().code(), state);
        assert_eq!(is_transient(&error), transient, "{state}");
    }
}

#[test]
fn create_table_makes_text_columns_with_the_key_as_primary_key() {
    let server = PgServer::start().unwrap();
    server.psql("CREATE SCHEMA crm").unwrap();
    let config = PostgresSinkConfig {
        create_table: true,
        ..config(&server, "crm.Contacts", &["id", "Full Name"], &["id"])
    };
    assert_eq!(config.check(), vec![], "the table may be created");
    let mut writer = PostgresWriter::open(&config).unwrap();
    let _second = PostgresWriter::open(&config).unwrap();
    writer
        .write(&records(&[json!({"id": 1, "Full Name": "Ada Lovelace"})]))
        .unwrap();
    assert_eq!(
        rows(&server, r#"SELECT id, "Full Name" FROM crm."Contacts""#),
        vec![text(&[Some("1"), Some("Ada Lovelace")])]
    );
    assert_eq!(
        rows(
            &server,
            "SELECT data_type FROM information_schema.columns \
             WHERE table_name = 'Contacts' ORDER BY ordinal_position"
        ),
        vec![text(&[Some("text")]), text(&[Some("text")])]
    );
}

#[test]
fn the_check_names_the_key_and_what_is_wrong_and_changes_nothing() {
    let server = PgServer::start().unwrap();
    server
        .psql(
            "CREATE TABLE people (id int, name text); \
             CREATE TABLE keyed (id int, part int, name text, UNIQUE (id, part))",
        )
        .unwrap();
    let message = |config: &PostgresSinkConfig| -> Vec<String> {
        config
            .check()
            .into_iter()
            .map(|p| {
                assert_eq!(p.part, "sink");
                p.message
            })
            .collect()
    };
    assert_eq!(
        message(&config(
            &server,
            "keyed",
            &["id", "part", "name"],
            &["part", "id"]
        )),
        Vec::<String>::new()
    );

    let missing = message(&config(&server, "nobody", &["id"], &[]));
    assert_eq!(missing.len(), 1);
    assert!(missing[0].starts_with("`table`: "), "{missing:?}");
    assert!(
        missing[0].contains("no table nobody (and create_table = false)"),
        "{missing:?}"
    );
    let created = PostgresSinkConfig {
        create_table: true,
        ..config(&server, "nobody", &["id"], &[])
    };
    assert_eq!(message(&created), Vec::<String>::new());
    assert_eq!(
        rows(&server, "SELECT to_regclass('nobody')"),
        vec![vec![None]],
        "the check created it"
    );

    let columns = message(&config(&server, "people", &["id", "email", "phone"], &[]));
    assert_eq!(columns.len(), 1, "{columns:?}");
    assert!(columns[0].starts_with("`columns`: "), "{columns:?}");
    assert!(
        columns[0].contains("no column `email`, `phone`"),
        "{columns:?}"
    );

    let key = message(&config(&server, "people", &["id", "name"], &["id"]));
    assert!(key[0].starts_with("`key`: "), "{key:?}");
    assert!(
        key[0].contains("no primary key or unique index on exactly (`id`)"),
        "{key:?}"
    );
    let partial = message(&config(&server, "keyed", &["id", "part"], &["id"]));
    assert!(partial[0].starts_with("`key`: "), "{partial:?}");

    let stray = message(&config(&server, "people", &["id"], &["email"]));
    assert!(
        stray[0].contains("key `email` is not one of `columns`"),
        "{stray:?}"
    );

    let port = brigade_testkit::free_port().unwrap();
    let nowhere = PostgresSinkConfig {
        url: format!("host=127.0.0.1 port={port} user=brigade dbname=postgres"),
        ..config(&server, "people", &["id"], &[])
    };
    let unreachable = message(&nowhere);
    assert!(
        unreachable[0].contains(&format!(
            "cannot connect to PostgreSQL at brigade@127.0.0.1:{port}/postgres"
        )),
        "{unreachable:?}"
    );

    let no_database = PostgresSinkConfig {
        url: format!(
            "host=127.0.0.1 port={} user=brigade dbname=shop",
            server.port()
        ),
        ..config(&server, "people", &["id"], &[])
    };
    let refused = message(&no_database);
    assert!(
        refused[0].contains("database \"shop\" does not exist (SQLSTATE 3D000)"),
        "{refused:?}"
    );
}

#[test]
fn writers_upserting_the_same_keys_at_once_in_opposite_orders_do_not_deadlock() {
    let server = PgServer::start().unwrap();
    server
        .psql(
            "CREATE TABLE hot (id int PRIMARY KEY, v text); \
             INSERT INTO hot SELECT g, 'start' FROM generate_series(0, 1999) g",
        )
        .unwrap();
    for method in [Method::Copy, Method::Insert] {
        let config = PostgresSinkConfig {
            method,
            ..config(&server, "hot", &["id", "v"], &["id"])
        };
        let writers: Vec<_> = [false, true]
            .into_iter()
            .map(|descending| {
                let mut writer = PostgresWriter::open(&config).unwrap();
                std::thread::spawn(move || {
                    let mut ids: Vec<i64> = (0..2000).collect();
                    if descending {
                        ids.reverse();
                    }
                    let mut failures = Vec::new();
                    for round in 0..10 {
                        let values: Vec<Value> = ids
                            .iter()
                            .map(|id| json!({"id": id, "v": format!("{descending} {round}")}))
                            .collect();
                        if let Err(error) = writer.write(&records(&values)) {
                            failures.push(error.to_string());
                        }
                    }
                    failures
                })
            })
            .collect();
        for writer in writers {
            let failures = writer.join().unwrap();
            assert!(failures.is_empty(), "{method:?}: {failures:?}");
        }
        assert_eq!(count(&server, "hot"), 2000);
        // Each writer's batch is atomic: every row holds the last batch committed.
        assert_eq!(
            rows(&server, "SELECT count(DISTINCT v) FROM hot"),
            vec![text(&[Some("1")])],
            "{method:?}"
        );
    }
}

#[test]
fn a_writer_can_move_to_its_thread() {
    fn movable<T: Send + 'static>() {}
    movable::<PostgresWriter>();
    movable::<PostgresError>();
}
