//! The Redis connectors against a real `redis-server` (testkit): pending entries first,
//! acknowledgements only when the runtime acknowledges, the janitor, poison entries,
//! outages, the sinks and the healthchecks.

use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use brigade_runtime::Source;
use brigade_testkit::redis::RedisServer;
use redis::{Commands, Connection, Value};
use serde_json::json;

use super::reply::{entries, int, items, text};
use super::*;
use crate::raw::RawData;
use crate::units::Span;
use crate::{Origin, Record};

fn connect(server: &RedisServer) -> Connection {
    redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

fn config(server: &RedisServer, consumer: &str) -> RedisSourceConfig {
    RedisSourceConfig {
        url: server.url(),
        stream: Some("events".into()),
        streams: Vec::new(),
        group: "g".into(),
        consumer: Some(consumer.into()),
        state_dir: None,
        field: None,
        block: Some(Span(Duration::from_millis(50))),
        count: Some(10),
        claim_idle: None,
        max_deliveries: None,
        dead_letter_stream: None,
        start: None,
        stop_when_idle: Some(Span(Duration::from_millis(300))),
    }
}

fn open(config: &RedisSourceConfig) -> RedisSource {
    RedisSource::open(config, Path::new(".")).unwrap()
}

/// Adds entries `n = from..to` to `stream`; their ids.
fn produce(connection: &mut Connection, stream: &str, from: u32, to: u32) -> Vec<String> {
    (from..to)
        .map(|n| {
            connection
                .xadd(stream, "*", &[("n", n.to_string())])
                .unwrap()
        })
        .collect()
}

/// The entry id a record came from.
fn id_of(raw: &crate::raw::Raw) -> String {
    match &raw.origin {
        Origin::StreamEntry(entry) => entry.id.clone(),
        other => panic!("not a stream entry: {other}"),
    }
}

/// `n` of a record read without `field`.
fn n_of(raw: &crate::raw::Raw) -> u32 {
    match &raw.data {
        RawData::Value(value) => value["n"].as_str().unwrap().parse().unwrap(),
        other => panic!("not a value: {other:?}"),
    }
}

/// Pending entries of the group on `stream`: (id, consumer, deliveries).
fn pending(connection: &mut Connection, stream: &str) -> Vec<(String, String, i64)> {
    let reply: Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg("g")
        .arg("-")
        .arg("+")
        .arg(1000)
        .query(connection)
        .unwrap();
    items(&reply)
        .iter()
        .map(|row| {
            let row = items(row);
            (
                text(&row[0]).unwrap(),
                text(&row[1]).unwrap(),
                int(&row[3]).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_restarted_consumer_reads_its_own_pending_entries_first() {
    let server = RedisServer::start().unwrap();
    let mut redis = connect(&server);
    let ids = produce(&mut redis, "events", 0, 10);
    let mut first = open(&config(&server, "a"));
    let read: Vec<_> = (0..5).map(|_| first.next().unwrap()).collect();
    assert_eq!(read.iter().map(id_of).collect::<Vec<_>>(), ids[..5]);
    // The ready entries it had read past the fifth are pending too (a crash loses
    // nothing it read ahead).
    drop(first);
    produce(&mut redis, "events", 10, 13);
    let mut again = open(&config(&server, "a"));
    let mut seen = Vec::new();
    while let Some(raw) = again.next() {
        seen.push(n_of(&raw));
    }
    assert_eq!(
        seen,
        (0..13).collect::<Vec<_>>(),
        "own pending first, in order"
    );
}

#[test]
fn entries_are_acknowledged_only_when_the_runtime_acknowledges_them() {
    let server = RedisServer::start().unwrap();
    let mut redis = connect(&server);
    let ids = produce(&mut redis, "events", 0, 4);
    let mut source = open(&config(&server, "a"));
    for _ in 0..4 {
        source.next().unwrap();
    }
    assert_eq!(
        pending(&mut redis, "events").len(),
        4,
        "read, not acknowledged"
    );
    source.ack(2);
    let left: Vec<String> = pending(&mut redis, "events")
        .into_iter()
        .map(|row| row.0)
        .collect();
    assert_eq!(left, ids[2..], "the first two acknowledged, in one XACK");
    source.ack(4);
    assert!(pending(&mut redis, "events").is_empty());
    assert_eq!(source.stats().figures().acked, 4);
}

#[test]
fn the_janitor_claims_a_dead_consumers_entries_after_claim_idle() {
    let server = RedisServer::start().unwrap();
    let mut redis = connect(&server);
    produce(&mut redis, "events", 0, 20);
    let mut settings = config(&server, "dead");
    settings.claim_idle = Some(Span(Duration::from_millis(300)));
    // Before the entries are delivered: they are idle from then on.
    let started = Instant::now();
    let mut dead = open(&settings);
    for _ in 0..5 {
        dead.next().unwrap();
    }
    dead.ack(2);
    // Killed: its ready entries and the three in flight stay pending with it.
    drop(dead);
    let held = pending(&mut redis, "events");
    assert!(held.len() >= 3 && held.iter().all(|row| row.1 == "dead"));

    settings.consumer = Some("live".into());
    settings.stop_when_idle = Some(Span(Duration::from_millis(800)));
    let mut live = open(&settings);
    let mut seen = Vec::new();
    let mut claimed_at = None;
    while let Some(raw) = live.next() {
        seen.push(n_of(&raw));
        if seen.len() == 18 {
            claimed_at = Some(started.elapsed());
        }
        live.ack(seen.len() as u64);
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (2..20).collect::<Vec<_>>(),
        "every entry not acknowledged"
    );
    let claimed_at = claimed_at.unwrap();
    assert!(
        claimed_at >= Duration::from_millis(300) && claimed_at < Duration::from_millis(1500),
        "claimed after claim_idle plus a sweep: {claimed_at:?}"
    );
    assert!(pending(&mut redis, "events").is_empty());
    let figures = live.stats().figures();
    assert_eq!(figures.claimed, held.len() as u64);
    assert_eq!(figures.consumer, "live");
}

#[test]
fn a_poison_entry_goes_to_the_dead_letter_stream_after_max_deliveries() {
    let server = RedisServer::start().unwrap();
    let mut redis = connect(&server);
    let poison = produce(&mut redis, "events", 0, 1).remove(0);
    let mut settings = config(&server, "c");
    settings.max_deliveries = Some(3);
    settings.count = Some(1);
    settings.claim_idle = Some(Span(Duration::from_millis(100)));
    // Three crashes while it is in flight: once new, twice from the own pending.
    for delivery in 1..=3 {
        let mut source = open(&settings);
        let raw = source.next().unwrap();
        assert_eq!(id_of(&raw), poison);
        drop(source);
        assert_eq!(pending(&mut redis, "events")[0].2, delivery);
    }
    produce(&mut redis, "events", 1, 2);
    let mut source = open(&settings);
    let raw = source.next().unwrap();
    assert_eq!(n_of(&raw), 1, "the group goes on past the poison entry");
    source.ack(1);
    assert!(
        pending(&mut redis, "events").is_empty(),
        "poison acknowledged"
    );
    assert_eq!(source.stats().figures().dead_lettered, 1);
    let dead: Value = redis.xrange_all::<_, Value>("g:dead").unwrap();
    let dead = entries(&dead);
    assert_eq!(dead.len(), 1);
    let fields: std::collections::HashMap<String, String> = dead[0]
        .1
        .clone()
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v).unwrap()))
        .collect();
    assert_eq!(fields["stream"], "events");
    assert_eq!(fields["id"], poison);
    assert_eq!(fields["deliveries"], "3");
    assert_eq!(fields["consumer"], "c");
    assert_eq!(fields["entry"], r#"{"n":"0"}"#);
}

#[test]
fn the_janitor_dead_letters_what_dead_consumers_left_too_often() {
    let server = RedisServer::start().unwrap();
    let mut redis = connect(&server);
    produce(&mut redis, "events", 0, 1);
    let mut settings = config(&server, "c1");
    settings.max_deliveries = Some(2);
    settings.count = Some(1);
    settings.claim_idle = Some(Span(Duration::from_millis(100)));
    let mut first = open(&settings);
    first.next().unwrap();
    drop(first);
    std::thread::sleep(Duration::from_millis(150));
    settings.consumer = Some("c2".into());
    let mut second = open(&settings);
    assert_eq!(
        n_of(&second.next().unwrap()),
        0,
        "claimed: a second delivery"
    );
    assert_eq!(second.stats().figures().claimed, 1);
    drop(second);
    std::thread::sleep(Duration::from_millis(150));
    settings.consumer = Some("c3".into());
    let mut third = open(&settings);
    assert!(
        third.next().is_none(),
        "dead-lettered, not delivered a third time"
    );
    assert_eq!(third.stats().figures().dead_lettered, 1);
    assert!(pending(&mut redis, "events").is_empty());
    assert_eq!(redis.xlen::<_, u64>("g:dead").unwrap(), 1);
}

#[test]
fn partitions_are_read_together_and_a_json_field_is_left_to_decode() {
    let server = RedisServer::start().unwrap();
    let mut redis = connect(&server);
    for p in 0..3 {
        let _: String = redis
            .xadd(format!("s:{p}"), "*", &[("doc", format!(r#"{{"p":{p}}}"#))])
            .unwrap();
    }
    let _: String = redis.xadd("s:1", "*", &[("other", "x")]).unwrap();
    let mut settings = config(&server, "a");
    settings.stream = None;
    settings.streams = vec!["s:{0..2}".into()];
    settings.field = Some("doc".into());
    let mut source = open(&settings);
    let mut got = Vec::new();
    while let Some(raw) = source.next() {
        let stream = match &raw.origin {
            Origin::StreamEntry(entry) => entry.stream.to_string(),
            other => panic!("{other}"),
        };
        got.push((stream, raw.data));
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got.len(), 4);
    assert_eq!(
        got[0],
        ("s:0".into(), RawData::Line(br#"{"p":0}"#.to_vec()))
    );
    let missing = got
        .iter()
        .find(|(_, data)| matches!(data, RawData::Unreadable(_)))
        .unwrap();
    assert_eq!(
        missing.1,
        RawData::Unreadable("the entry has no field `doc`".into())
    );
}

#[test]
fn a_redis_restart_stalls_the_source_and_loses_nothing() {
    let mut server = RedisServer::start_fsync_always().unwrap();
    let mut redis = connect(&server);
    produce(&mut redis, "events", 0, 5);
    let mut settings = config(&server, "a");
    settings.count = Some(5);
    let mut source = open(&settings);
    let mut seen: Vec<u32> = (0..5).map(|_| n_of(&source.next().unwrap())).collect();
    source.ack(3);
    produce(&mut redis, "events", 5, 8);
    server.stop().unwrap();
    source.ack(5); // owed while Redis is away
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        server.start_again().unwrap();
        server
    });
    let stalled = Instant::now();
    while let Some(raw) = source.next() {
        seen.push(n_of(&raw));
        source.ack(seen.len() as u64);
    }
    assert!(
        stalled.elapsed() >= Duration::from_millis(600),
        "it read nothing meanwhile"
    );
    let server = restarter.join().unwrap();
    assert_eq!(seen, (0..8).collect::<Vec<_>>());
    let figures = source.stats().figures();
    assert!(figures.reconnects >= 1, "{figures:?}");
    assert!(figures.connected);
    let mut redis = connect(&server);
    assert!(
        pending(&mut redis, "events").is_empty(),
        "every entry acknowledged"
    );
}

#[test]
fn the_groups_figures_count_lag_pending_and_consumers() {
    let server = RedisServer::start().unwrap();
    let mut redis = connect(&server);
    produce(&mut redis, "events", 0, 30);
    let mut settings = config(&server, "a");
    settings.claim_idle = Some(Span(Duration::from_secs(5)));
    let mut other = open(&RedisSourceConfig {
        consumer: Some("b".into()),
        ..settings.clone()
    });
    other.next().unwrap(); // b holds 10 (one read of `count`)
    let mut source = open(&settings);
    source.next().unwrap(); // a holds the next 10
    std::thread::sleep(Duration::from_millis(1100));
    source.next().unwrap(); // a step is due: the figures are read again
    let figures = source.stats().figures();
    assert_eq!(figures.lag, Some(10));
    assert_eq!(figures.pending_own, 10);
    assert_eq!(figures.pending_others, 10);
    assert_eq!(figures.consumers_alive, 2);
    assert_eq!(figures.read, 2);
    // 30 more entries over the next reading's second: the arrival rate.
    produce(&mut redis, "events", 30, 60);
    std::thread::sleep(Duration::from_millis(1100));
    source.next().unwrap();
    let arrival = source
        .stats()
        .figures()
        .arrival_per_s
        .expect("two readings made");
    assert!((10.0..=40.0).contains(&arrival), "{arrival}/s");
    let group = Source::group(&source).expect("a group source says");
    assert_eq!((group.consumers, group.pending_others), (2, 10));
}

fn record(value: serde_json::Value) -> Record {
    Record {
        value,
        origin: Origin::Line {
            source: "t".into(),
            line: 1,
        },
    }
}

#[test]
fn the_stream_sink_adds_entries_in_order_and_rejects_what_is_not_an_object() {
    let server = RedisServer::start().unwrap();
    let mut redis = connect(&server);
    let config = RedisStreamSinkConfig {
        url: server.url(),
        stream: "out".into(),
        field: None,
        maxlen: None,
    };
    let mut writer = StreamWriter::open(&config).unwrap();
    let batch = vec![
        record(json!({"id": 1, "name": "a"})),
        record(json!("text")),
        record(json!({"id": 2, "name": "b"})),
    ];
    let rejected = writer.write(&batch).unwrap();
    assert_eq!(
        rejected,
        [(1, "the record is a string, not an object".to_owned())]
    );
    let added = entries(&redis.xrange_all::<_, Value>("out").unwrap());
    let names: Vec<Vec<(String, Vec<u8>)>> = added.into_iter().map(|e| e.1.unwrap()).collect();
    assert_eq!(
        names[0],
        [("id".into(), b"1".to_vec()), ("name".into(), b"a".to_vec())]
    );
    assert_eq!(names.len(), 2);

    let trimmed = RedisStreamSinkConfig {
        stream: "trimmed".into(),
        field: Some("doc".into()),
        maxlen: Some(100),
        ..config
    };
    let mut writer = StreamWriter::open(&trimmed).unwrap();
    let batch: Vec<Record> = (0..1000).map(|n| record(json!({"n": n}))).collect();
    for chunk in batch.chunks(100) {
        assert!(writer.write(chunk).unwrap().is_empty());
    }
    let length: u64 = redis.xlen("trimmed").unwrap();
    assert!((100..1000).contains(&length), "MAXLEN ~ 100 kept {length}");
    let last = entries(
        &redis
            .xrevrange_count::<_, _, _, _, Value>("trimmed", "+", "-", 1)
            .unwrap(),
    );
    assert_eq!(
        last[0].1.clone().unwrap(),
        [("doc".into(), br#"{"n":999}"#.to_vec())]
    );
}

#[test]
fn the_hash_sink_writes_one_hash_per_key_and_a_replay_changes_nothing() {
    let server = RedisServer::start().unwrap();
    let mut redis = connect(&server);
    let config = RedisHashSinkConfig {
        url: server.url(),
        key: "user:{id}".into(),
        fields: None,
    };
    let mut writer = HashWriter::open(&config).unwrap();
    let batch = vec![
        record(json!({"id": 1, "name": "ann", "tags": ["x"]})),
        record(json!({"name": "no id"})),
        record(json!({"id": "b7", "name": "bob"})),
    ];
    let rejected = writer.write(&batch).unwrap();
    assert_eq!(
        rejected,
        [(1, "the record has no key field `id`".to_owned())]
    );
    let read = |redis: &mut Connection| {
        let ann: std::collections::BTreeMap<String, String> = redis.hgetall("user:1").unwrap();
        let bob: std::collections::BTreeMap<String, String> = redis.hgetall("user:b7").unwrap();
        let keys: Vec<String> = redis.keys("user:*").unwrap();
        (ann, bob, keys.len())
    };
    let before = read(&mut redis);
    assert_eq!(before.0["name"], "ann");
    assert_eq!(before.0["tags"], r#"["x"]"#);
    assert_eq!(before.1["id"], "b7");
    assert_eq!(before.2, 2);
    writer.write(&batch).unwrap();
    assert_eq!(read(&mut redis), before, "a replayed batch changes nothing");

    let only = RedisHashSinkConfig {
        key: "name:{name}".into(),
        fields: Some(vec!["id".into()]),
        ..config
    };
    HashWriter::open(&only).unwrap().write(&batch[..1]).unwrap();
    let fields: Vec<String> = redis.hkeys("name:ann").unwrap();
    assert_eq!(fields, ["id"]);
}

#[test]
fn a_lost_connection_fails_a_sink_batch_as_transient_and_the_next_reconnects() {
    let mut server = RedisServer::start().unwrap();
    let config = RedisHashSinkConfig {
        url: server.url(),
        key: "k:{id}".into(),
        fields: None,
    };
    let mut writer = HashWriter::open(&config).unwrap();
    server.stop().unwrap();
    let error = writer.write(&[record(json!({"id": 1}))]).unwrap_err();
    assert!(error.is_transient(), "{error}");
    server.start_again().unwrap();
    assert!(writer
        .write(&[record(json!({"id": 1}))])
        .unwrap()
        .is_empty());
    assert_eq!(
        server.cli(&["EXISTS", "k:1"]).unwrap().trim(),
        "(integer) 1"
    );
}

#[test]
fn the_healthcheck_names_an_unreachable_server_a_wrong_type_and_a_refused_group() {
    let server = RedisServer::start().unwrap();
    let base = Path::new(".");
    let good = config(&server, "a");
    assert_eq!(good.check(base), []);
    assert_eq!(
        server.cli(&["EXISTS", "events"]).unwrap().trim(),
        "(integer) 0",
        "the check creates nothing"
    );

    let port = brigade_testkit::free_port().unwrap();
    let away = RedisSourceConfig {
        url: format!("redis://127.0.0.1:{port}/"),
        ..good.clone()
    };
    let problems = away.check(base);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].part, "source");
    assert!(
        problems[0]
            .message
            .starts_with(&format!("redis redis://127.0.0.1:{port}/: PING")),
        "{}",
        problems[0].message
    );
    assert!(problems[0].message.ends_with("is it running?"));

    server.cli(&["SET", "events", "x"]).unwrap();
    let problems = good.check(base);
    assert_eq!(
        problems[0].message,
        format!(
            "redis {}: key `events` (the stream) holds a string, not a stream",
            server.url()
        )
    );
    let sink = RedisStreamSinkConfig {
        url: server.url(),
        stream: "events".into(),
        field: None,
        maxlen: None,
    };
    assert_eq!(sink.check(base)[0].message, problems[0].message);

    server
        .cli(&[
            "ACL", "SETUSER", "app", "on", ">pw", "~*", "+@all", "-xgroup",
        ])
        .unwrap();
    let refused = RedisSourceConfig {
        url: format!("redis://app:pw@127.0.0.1:{}/", server.port()),
        stream: Some("fresh".into()),
        ..good.clone()
    };
    let problems = refused.check(base);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.starts_with(&format!(
            "redis redis://app:***@127.0.0.1:{}/: user `app` may not create group `g` on \
             stream `fresh`",
            server.port()
        )),
        "{}",
        problems[0].message
    );

    let both = RedisSourceConfig {
        streams: vec!["x".into()],
        ..good
    };
    assert_eq!(
        both.check(base)[0].message,
        "`stream` and `streams` are both given; expected one of them"
    );
    let hash = RedisHashSinkConfig {
        url: server.url(),
        key: "users".into(),
        fields: None,
    };
    assert!(hash.check(base)[0].message.contains("names no field"));
}

#[test]
fn the_default_consumer_name_survives_a_restart() {
    let server = RedisServer::start().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut settings = config(&server, "unused");
    settings.consumer = None;
    settings.state_dir = Some(state.path().to_owned());
    let first = RedisSource::open(&settings, Path::new("/")).unwrap();
    let name = first.consumer().to_owned();
    let second = RedisSource::open(&settings, Path::new("/")).unwrap();
    assert_ne!(second.consumer(), name, "two live processes, two names");
    drop((first, second));
    let again = RedisSource::open(&settings, Path::new("/")).unwrap();
    assert_eq!(again.consumer(), name);
    assert_eq!(again.stats().consumer.lock().unwrap().as_str(), name);
    assert!(!again.stats().connected.load(Relaxed), "not read yet");
}

#[test]
fn a_pipeline_file_reads_the_redis_keys_and_names_a_wrong_one() {
    let text = r#"
[source]
type = "redis"
url = "redis://127.0.0.1:6379/"
streams = ["s:{0..1}"]
group = "g"
field = "doc"
claim_idle = "10s"
stop_when_idle = "1s"

[sink]
type = "redis_hash"
url = "redis://127.0.0.1:6379/"
key = "user:{id}"
batch_size = 50
"#;
    let spec = crate::pipeline::parse(text, Path::new("p.toml")).unwrap();
    let crate::pipeline::SourceConfig::Redis(source) = &spec.source.config else {
        panic!("{:?}", spec.source.config);
    };
    assert_eq!(source.streams, ["s:{0..1}"]);
    assert_eq!(source.claim_idle, Some(Span(Duration::from_secs(10))));
    assert_eq!(spec.sink.config.type_name(), "redis_hash");
    assert_eq!(spec.sink.batch_size, Some(50));

    let wrong = text.replace("claim_idle", "claim_idel");
    let error = crate::pipeline::parse(&wrong, Path::new("p.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("p.toml:8:1: source: unknown key `claim_idel` for a `redis` source")
            && error.contains("(did you mean `claim_idle`?)"),
        "{error}"
    );
}

#[test]
fn a_live_but_slow_consumer_keeps_its_entries_from_the_janitors() {
    let server = RedisServer::start().unwrap();
    let mut redis = connect(&server);
    produce(&mut redis, "events", 0, 5);
    let mut settings = config(&server, "slow");
    settings.claim_idle = Some(Span(Duration::from_millis(300)));
    settings.stop_when_idle = Some(Span(Duration::from_millis(1200)));
    let mut slow = open(&settings);
    for _ in 0..5 {
        slow.next().unwrap();
    }
    let other = RedisSourceConfig {
        consumer: Some("other".into()),
        ..settings.clone()
    };
    let janitor = std::thread::spawn(move || {
        let mut source = open(&other);
        let mut read = 0;
        while source.next().is_some() {
            read += 1;
        }
        (read, source.stats().figures().claimed)
    });
    // Four times claim_idle with the five entries in flight, not acknowledged: its
    // heartbeat renews them while it waits for more.
    assert!(slow.next().is_none());
    assert_eq!(
        janitor.join().unwrap(),
        (0, 0),
        "nothing taken from a live consumer"
    );
    let held = pending(&mut redis, "events");
    assert_eq!(held.len(), 5);
    assert!(held
        .iter()
        .all(|(_, owner, deliveries)| owner == "slow" && *deliveries == 1));
}

#[test]
fn after_a_crash_in_suspect_mode_only_the_newest_over_delivered_entry_is_dead_lettered() {
    let server = RedisServer::start().unwrap();
    let mut redis = connect(&server);
    let ids = produce(&mut redis, "events", 0, 2);
    let mut settings = config(&server, "c");
    settings.max_deliveries = Some(3);
    let mut crashed = open(&settings);
    crashed.next().unwrap();
    crashed.next().unwrap();
    drop(crashed);
    // As a crash in suspect mode leaves them: the older one's acknowledgement was on
    // its way when the newer one killed the process.
    for id in &ids {
        let _: Value = redis::cmd("XCLAIM")
            .arg("events")
            .arg("g")
            .arg("c")
            .arg(0)
            .arg(id)
            .arg("RETRYCOUNT")
            .arg(3)
            .arg("JUSTID")
            .query(&mut redis)
            .unwrap();
    }
    let mut again = open(&settings);
    assert_eq!(
        n_of(&again.next().unwrap()),
        0,
        "the older one is tried again"
    );
    again.ack(1);
    assert!(again.next().is_none());
    let dead = entries(&redis.xrange_all::<_, Value>("g:dead").unwrap());
    assert_eq!(dead.len(), 1);
    let fields = dead[0].1.clone().unwrap();
    assert!(fields.contains(&("id".into(), ids[1].clone().into_bytes())));
    assert!(pending(&mut redis, "events").is_empty());
}
