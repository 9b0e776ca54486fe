//! The postgres source against a real PostgreSQL (brigade-testkit).

use std::collections::BTreeSet;
use std::time::Duration;

use brigade_runtime::Source;
use brigade_testkit::postgres::PgServer;
use serde_json::{json, Value};

use super::*;
use crate::raw::{Raw, RawData};
use crate::Origin;

/// `items`: `rows` rows, ids 1..=rows, of every type the source converts.
fn items(server: &PgServer, rows: u64) {
    server
        .psql(&format!(
            "CREATE TABLE items (
                id bigint PRIMARY KEY, small smallint, whole integer, price numeric(12,2),
                ratio double precision, tenth real, name text, label varchar(8), code char(3),
                ok boolean, doc jsonb, raw json, at timestamptz, local timestamp, day date,
                tod time, uid uuid, blob bytea, tags text[], nums int[], nothing text);
             INSERT INTO items SELECT g, (g % 100)::smallint, g * 3, g * 1.25 + 0.01,
                g / 4.0, 0.1, 'name ' || g, 'l' || (g % 10), 'abc', g % 2 = 0,
                jsonb_build_object('g', g, 'deep', jsonb_build_array(1, 'two', null)),
                '{{\"x\": 1.5}}'::json,
                timestamptz '2024-05-01 12:30:00.25+02' + g * interval '1 second',
                timestamp '1999-12-31 23:59:59', date '2024-02-29', time '08:15:00',
                '123e4567-e89b-12d3-a456-426614174000', '\\x00ff10'::bytea,
                ARRAY['a', NULL, 'c'], ARRAY[1, 2], NULL
             FROM generate_series(1, {rows}) g;"
        ))
        .unwrap();
}

fn config(server: &PgServer) -> PgSourceConfig {
    PgSourceConfig {
        url: server.url(),
        query: None,
        table: Some("items".to_owned()),
        key: Some("id".to_owned()),
        fetch: 333,
        partitions: 1,
        id: None,
    }
}

/// The row's object, panicking on anything else.
fn value(raw: Raw) -> Value {
    match raw.data {
        RawData::Value(value) => value,
        other => panic!("expected a row, got {other:?} at {}", raw.origin),
    }
}

fn id(raw: Raw) -> i64 {
    value(raw)["id"].as_i64().unwrap()
}

/// Reads `count` rows (or all, `None`) and returns their ids.
fn read(source: &mut PgSource, count: Option<usize>) -> Vec<i64> {
    let mut ids = Vec::new();
    while count.is_none_or(|count| ids.len() < count) {
        match source.next() {
            Some(raw) => ids.push(id(raw)),
            None => break,
        }
    }
    ids
}

#[test]
fn every_row_is_read_once_in_key_order_with_faithful_types() {
    let server = PgServer::start().unwrap();
    items(&server, 10_000);
    let mut source = PgSource::open(&config(&server), None).unwrap();
    let first = source.next().unwrap();
    assert_eq!(first.origin.to_string(), "items[id=1]");
    assert_eq!(
        value(first),
        json!({
            "id": 1, "small": 1, "whole": 3, "price": "1.26", "ratio": 0.25, "tenth": 0.1,
            "name": "name 1", "label": "l1", "code": "abc", "ok": false,
            "doc": {"g": 1, "deep": [1, "two", null]}, "raw": {"x": 1.5},
            "at": "2024-05-01T10:30:01.25Z", "local": "1999-12-31T23:59:59",
            "day": "2024-02-29", "tod": "08:15:00",
            "uid": "123e4567-e89b-12d3-a456-426614174000", "blob": "AP8Q",
            "tags": ["a", null, "c"], "nums": [1, 2], "nothing": null
        })
    );
    let rest = read(&mut source, None);
    assert_eq!(rest, (2..=10_000).collect::<Vec<_>>());
    assert!(source.next().is_none());
}

#[test]
fn numerics_too_wide_for_a_float_keep_every_digit() {
    let server = PgServer::start().unwrap();
    let mut source = PgSource::open(
        &PgSourceConfig {
            query: Some(
                "SELECT 1 AS id, 12345678901234567890.123456789::numeric AS big, \
                 -0.000001::numeric AS small, 'NaN'::numeric AS nan, \
                 9223372036854775807::bigint AS most, 'infinity'::timestamptz AS never;"
                    .to_owned(),
            ),
            table: None,
            ..config(&server)
        },
        None,
    )
    .unwrap();
    assert_eq!(
        value(source.next().unwrap()),
        json!({"id": 1, "big": "12345678901234567890.123456789", "small": "-0.000001",
               "nan": "NaN", "most": 9223372036854775807_i64, "never": "infinity"})
    );
    assert!(source.next().is_none());
}

#[test]
fn ack_then_reopen_resumes_after_the_acknowledged_key() {
    let server = PgServer::start().unwrap();
    items(&server, 3000);
    let dir = tempfile::tempdir().unwrap();
    let every = Duration::from_secs(3600);
    let mut source = PgSource::open(&config(&server), Some((dir.path(), every))).unwrap();
    assert_eq!(
        read(&mut source, Some(1200)),
        (1..=1200).collect::<Vec<_>>()
    );
    // Positions 0..1000 (ids 1..=1000) finished; 1001..=1200 still in flight.
    source.ack(1000);
    let path = source.checkpoint_path().unwrap().to_owned();
    drop(source);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        r#"{"version":1,"source":"items","key":"id","after":1000}"#
    );
    let mut again = PgSource::open(&config(&server), Some((dir.path(), every))).unwrap();
    assert_eq!(read(&mut again, None), (1001..=3000).collect::<Vec<_>>());

    // A checkpoint of another key is refused, naming both.
    let by_name = PgSourceConfig {
        key: Some("name".to_owned()),
        ..config(&server)
    };
    let error = PgSource::open(&by_name, Some((dir.path(), every)))
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("written for the key `id`") && error.contains("the key `name`"),
        "{error}"
    );
}

#[test]
fn a_terminated_connection_or_a_server_restart_loses_and_repeats_no_row() {
    let mut server = PgServer::start().unwrap();
    items(&server, 10_000);
    let mut source = PgSource::open(&config(&server), None).unwrap();
    let mut ids = read(&mut source, Some(1000));
    let killed = server
        .psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE application_name = 'brigade postgres source'",
        )
        .unwrap();
    assert_eq!(killed.trim(), "1");
    ids.extend(read(&mut source, Some(3000)));

    server.stop().unwrap();
    let restart = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        server.start_again().unwrap();
        server
    });
    ids.extend(read(&mut source, None));
    let _server = restart.join().unwrap();
    assert_eq!(ids, (1..=10_000).collect::<Vec<_>>());
}

#[test]
fn the_idle_timeout_is_the_servers_and_a_timed_out_transaction_resumes() {
    let server = PgServer::start_with(&[("idle_in_transaction_session_timeout", "700ms")]).unwrap();
    items(&server, 2000);
    let mut source = PgSource::open(&config(&server), None).unwrap();
    assert_eq!(source.idle_timeout(), Some(Duration::from_millis(700)));
    let mut ids = read(&mut source, Some(400));
    // Idle in its transaction past the timeout: the server ends the session.
    std::thread::sleep(Duration::from_millis(1500));
    ids.extend(read(&mut source, None));
    assert_eq!(ids, (1..=2000).collect::<Vec<_>>());

    let plain = PgServer::start().unwrap();
    items(&plain, 1);
    let source = PgSource::open(&config(&plain), None).unwrap();
    assert_eq!(source.idle_timeout(), None);
}

#[test]
fn partitions_read_each_row_exactly_once() {
    let server = PgServer::start().unwrap();
    items(&server, 10_000);
    // Gaps in the keys: pages are sized by the count, not the range alone.
    server.psql("DELETE FROM items WHERE id % 7 = 0").unwrap();
    let partitioned = PgSourceConfig {
        partitions: 4,
        fetch: 500,
        ..config(&server)
    };
    let mut planner = PagePlanner::open(&partitioned, None).unwrap();
    let mut pages = Vec::new();
    while let Some(page) = planner.next() {
        pages.push(page);
    }
    assert!((15..=30).contains(&pages.len()), "{pages:?}");
    assert_eq!((pages[0].first, pages.last().unwrap().last), (1, 10_000));
    for pair in pages.windows(2) {
        assert_eq!(pair[0].last + 1, pair[1].first, "{pages:?}");
    }
    let chunks: Vec<Vec<Page>> = pages
        .chunks(pages.len().div_ceil(4))
        .map(<[Page]>::to_vec)
        .collect();
    let ids: Vec<i64> = std::thread::scope(|scope| {
        let readers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let config = partitioned.clone();
                scope.spawn(move || {
                    let mut reader = PageReader::open(&config).unwrap();
                    let mut ids = Vec::new();
                    for page in chunk {
                        for record in reader.read(page).unwrap() {
                            assert_eq!(
                                record.origin,
                                Origin::row("items".into(), format!("id={}", record.value["id"]))
                            );
                            ids.push(record.value["id"].as_i64().unwrap());
                        }
                    }
                    ids
                })
            })
            .collect();
        readers
            .into_iter()
            .flat_map(|reader| reader.join().unwrap())
            .collect()
    });
    let expected: Vec<i64> = (1..=10_000).filter(|id| id % 7 != 0).collect();
    assert_eq!(ids, expected);
}

#[test]
fn partitions_checkpoint_the_last_contiguous_acknowledged_page() {
    let server = PgServer::start().unwrap();
    items(&server, 1000);
    let dir = tempfile::tempdir().unwrap();
    let partitioned = PgSourceConfig {
        partitions: 2,
        fetch: 100,
        ..config(&server)
    };
    let every = Duration::ZERO;
    let mut planner = PagePlanner::open(&partitioned, Some((dir.path(), every))).unwrap();
    let pages: Vec<Page> = std::iter::from_fn(|| planner.next()).collect();
    assert_eq!(pages.len(), 10);
    planner.ack(3);
    drop(planner);
    let mut again = PagePlanner::open(&partitioned, Some((dir.path(), every))).unwrap();
    assert_eq!(
        again.next(),
        Some(Page {
            first: 301,
            last: 400
        })
    );
}

#[test]
fn a_repeated_key_stops_the_read_naming_it() {
    let server = PgServer::start().unwrap();
    let mut source = PgSource::open(
        &PgSourceConfig {
            query: Some("SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (2, 'c')) v(id, x)".to_owned()),
            table: None,
            ..config(&server)
        },
        None,
    )
    .unwrap();
    assert_eq!(id(source.next().unwrap()), 1);
    assert_eq!(id(source.next().unwrap()), 2);
    let stop = source.next().unwrap();
    assert_eq!(stop.origin.to_string(), "query[after id=2]");
    assert_eq!(
        stop.data,
        RawData::Unreadable(
            "reading stopped: the key column `id` is not unique: two rows have id = 2; \
             resuming after a key needs a unique key"
                .to_owned()
        )
    );
    assert!(source.next().is_none());
}

#[test]
fn without_a_key_rows_are_numbered_and_read_once() {
    let server = PgServer::start().unwrap();
    items(&server, 50);
    let mut source = PgSource::open(
        &PgSourceConfig {
            key: None,
            fetch: 7,
            ..config(&server)
        },
        None,
    )
    .unwrap();
    let raws: Vec<Raw> = std::iter::from_fn(|| source.next()).collect();
    assert_eq!(raws[0].origin.to_string(), "items[row 1]");
    let ids: BTreeSet<i64> = raws.into_iter().map(id).collect();
    assert_eq!(ids, (1..=50).collect());
}

#[test]
fn the_healthcheck_names_what_is_wrong() {
    let server = PgServer::start().unwrap();
    server
        .psql("CREATE TABLE t (id bigint, name text, span interval)")
        .unwrap();
    let base = std::path::Path::new(".");
    let check = |config: PgSourceConfig| -> Vec<String> {
        config
            .check(base)
            .into_iter()
            .map(|problem| problem.to_string())
            .collect()
    };
    let good = PgSourceConfig {
        query: Some("SELECT id, name FROM t".to_owned()),
        table: None,
        ..config(&server)
    };
    assert_eq!(check(good.clone()), Vec::<String>::new());

    let port = brigade_testkit::free_port().unwrap();
    let down = check(PgSourceConfig {
        url: format!("host=127.0.0.1 port={port} user=brigade connect_timeout=2"),
        ..good.clone()
    });
    assert_eq!(down.len(), 1);
    assert!(
        down[0].starts_with("source: cannot connect to PostgreSQL"),
        "{down:?}"
    );

    let bad_url = check(PgSourceConfig {
        url: "host=".to_owned() + "x port=notaport",
        ..good.clone()
    });
    assert!(
        bad_url[0].starts_with("source: `url` is not a PostgreSQL connection string"),
        "{bad_url:?}"
    );

    assert_eq!(
        check(PgSourceConfig {
            table: Some("nope".to_owned()),
            query: None,
            ..good.clone()
        }),
        ["source: table `nope`: relation \"nope\" does not exist"]
    );
    assert_eq!(
        check(PgSourceConfig {
            query: Some("SELECT nid FROM t".to_owned()),
            ..good.clone()
        }),
        [
            "source: the query: column \"nid\" does not exist; hint: Perhaps you meant to \
          reference the column \"t.id\"."
        ]
    );
    let syntax = check(PgSourceConfig {
        query: Some("SELEC id FROM t".to_owned()),
        ..good.clone()
    });
    assert!(
        syntax[0].starts_with("source: the query: syntax error at or near"),
        "{syntax:?}"
    );
    assert_eq!(
        check(PgSourceConfig {
            key: Some("nid".to_owned()),
            ..good.clone()
        }),
        ["source: the key column `nid` is not in the query's result; its columns are: id, name"]
    );
    assert_eq!(
        check(PgSourceConfig {
            query: Some("SELECT * FROM t".to_owned()),
            ..good.clone()
        }),
        [
            "source: column `span`: its type `interval` has no JSON conversion in the postgres \
          source; cast it in the query (for example `column::text`)"
        ]
    );
    assert_eq!(
        check(PgSourceConfig {
            key: Some("name".to_owned()),
            partitions: 4,
            ..good
        }),
        ["source: partitions need an integer key (smallint, integer or bigint); `name` is `text`"]
    );
}

#[test]
fn rows_handed_out_every_half_timeout_keep_the_transaction_alive() {
    let server = PgServer::start_with(&[("idle_in_transaction_session_timeout", "600ms")]).unwrap();
    items(&server, 100);
    let mut source = PgSource::open(
        &PgSourceConfig {
            fetch: 50,
            ..config(&server)
        },
        None,
    )
    .unwrap();
    let backend = || {
        server
            .psql(
                "SELECT pid FROM pg_stat_activity \
                 WHERE application_name = 'brigade postgres source'",
            )
            .unwrap()
    };
    let mut ids = read(&mut source, Some(1));
    let first = backend();
    // As the source guard does under back pressure: one row every half timeout,
    // from the rows already fetched.
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(300));
        ids.extend(read(&mut source, Some(1)));
    }
    assert_eq!(backend(), first, "the same session, never timed out");
    ids.extend(read(&mut source, None));
    assert_eq!(ids, (1..=100).collect::<Vec<_>>());
}

/// The errors of a pipeline file `text`, one a line.
fn file_errors(text: &str) -> String {
    crate::pipeline::parse(text, std::path::Path::new("p.toml"))
        .unwrap_err()
        .to_string()
}

const FILE: &str = "[source]\ntype = \"postgres\"\nurl = \"host=db\"\ntable = \"items\"\n\
                    key = \"id\"\n[sink]\ntype = \"stdout\"\n";

#[test]
fn a_pipeline_file_reads_the_source_and_names_what_is_wrong() {
    let spec = crate::pipeline::parse(
        &FILE.replace(
            "key = \"id\"\n",
            "key = \"id\"\npartitions = 3\nfetch = 50\n",
        ),
        std::path::Path::new("p.toml"),
    )
    .unwrap();
    let crate::pipeline::SourceConfig::Postgres(config) = &spec.source.config else {
        panic!("{:?}", spec.source.config);
    };
    assert_eq!(
        (config.partitions, config.fetch, config.id()),
        (3, 50, "items".to_owned())
    );
    assert_eq!(spec.first_stage_name(), "read");

    assert_eq!(
        file_errors(&FILE.replace(
            "table = \"items\"\n",
            "table = \"items\"\nquery = \"SELECT 1\"\n"
        )),
        "p.toml:4:9: source.table: expected `query` or `table`, not both"
    );
    assert_eq!(
        file_errors(&FILE.replace("key = \"id\"\n", "partitions = 2\n")),
        "p.toml:5:14: source.partitions: partitions split the range of `key`, an integer \
         column; expected `key`"
    );
    assert_eq!(
        file_errors(&format!(
            "{}[checkpoint]\ndir = \"state\"\n",
            FILE.replace("key = \"id\"\n", "")
        )),
        "p.toml:7:1: checkpoint: a `postgres` source without `key` cannot resume (rows have \
         no order to continue in); expected `source.key` or no [checkpoint] section"
    );
    assert_eq!(
        file_errors(&format!(
            "{}[[stage]]\nname = \"read\"\ntype = \"fields\"\n",
            FILE.replace("key = \"id\"\n", "key = \"id\"\npartitions = 2\n")
        )),
        "p.toml:10:8: stage.read: the name `read` is already the partitioned source's read \
         stage's; expected names unique among the stages and the sink"
    );
}

#[test]
fn a_page_reader_rides_out_a_server_restart() {
    let mut server = PgServer::start().unwrap();
    items(&server, 300);
    let partitioned = PgSourceConfig {
        partitions: 2,
        fetch: 100,
        ..config(&server)
    };
    let mut reader = PageReader::open(&partitioned).unwrap();
    let ids = |records: Vec<crate::Record>| -> Vec<i64> {
        records
            .iter()
            .map(|r| r.value["id"].as_i64().unwrap())
            .collect()
    };
    let page = |first, last| Page { first, last };
    assert_eq!(
        ids(reader.read(page(1, 100)).unwrap()),
        (1..=100).collect::<Vec<_>>()
    );
    server.stop().unwrap();
    let restart = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(800));
        server.start_again().unwrap();
        server
    });
    // The connection is gone: the reader reconnects (with backoff) and reads the
    // page whole, once.
    assert_eq!(
        ids(reader.read(page(101, 250)).unwrap()),
        (101..=250).collect::<Vec<_>>()
    );
    let _server = restart.join().unwrap();
}

#[test]
fn rows_with_a_null_key_are_dead_lettered_or_refused_never_skipped() {
    let server = PgServer::start().unwrap();
    server
        .psql(
            "CREATE TABLE n (id integer, x text);
             INSERT INTO n VALUES (1, 'a'), (NULL, 'b'), (2, 'c');",
        )
        .unwrap();
    let keyed = PgSourceConfig {
        table: Some("n".to_owned()),
        ..config(&server)
    };
    let dir = tempfile::tempdir().unwrap();
    let every = Duration::ZERO;
    let mut source = PgSource::open(&keyed, Some((dir.path(), every))).unwrap();
    assert_eq!(id(source.next().unwrap()), 1);
    source.ack(1);
    drop(source);
    // Resumed after id 1: id 2, then the null key, last, as an error with its row.
    let mut source = PgSource::open(&keyed, Some((dir.path(), every))).unwrap();
    assert_eq!(id(source.next().unwrap()), 2);
    let null = source.next().unwrap();
    assert_eq!(null.origin.to_string(), "n[row 2]");
    assert_eq!(
        null.data,
        RawData::Unreadable(
            "the key column `id` is null or unreadable; expected every row to have a key"
                .to_owned()
        )
    );
    assert!(source.next().is_none());

    let error = PagePlanner::open(
        &PgSourceConfig {
            partitions: 2,
            ..keyed
        },
        None,
    )
    .err()
    .unwrap();
    assert_eq!(
        error.to_string(),
        "1 rows have a null key `id`, which no page holds; expected every row to have a key \
         (filter them out in the query, or read without partitions to dead-letter them)"
    );
}
