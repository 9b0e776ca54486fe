use crate::testing::records;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brigade_runtime::{DeadLetterCause, Failure, Report};
use brigade_testkit::bulk::{BulkServer, Capacity};
use serde_json::{json, Value};

use super::body::{self, Items};
use super::response::{body_reason, bulk_items, Item};
use super::*;
use crate::pipeline::{build, parse, Overrides};
use crate::units::Span;
use crate::Record;

fn config(url: &str, format: HttpFormat) -> HttpSinkConfig {
    HttpSinkConfig {
        url: url.to_owned(),
        format,
        index: (format == HttpFormat::Bulk).then(|| "docs".to_owned()),
        id_field: (format == HttpFormat::Bulk).then(|| "id".to_owned()),
        action: BulkAction::Index,
        headers: Default::default(),
        timeout: Some(Span(Duration::from_secs(5))),
        gzip: false,
    }
}

/// `{"id": "doc-N", "n": N}` for N in `range`.
fn documents(range: std::ops::Range<u64>) -> Vec<Value> {
    range
        .map(|n| json!({"id": format!("doc-{n}"), "n": n}))
        .collect()
}

/// Runs a pipeline reading `values` as JSON lines into the http sink written as `sink`
/// (its keys, without `type`), with quick, patient retries; dead letters stay in the
/// report. Returns it with the records the sink counted written.
fn run(values: &[Value], sink: &str) -> (Report, u64) {
    let dir = tempfile::tempdir().unwrap();
    let text: String = values.iter().map(|value| format!("{value}\n")).collect();
    std::fs::write(dir.path().join("in.jsonl"), text).unwrap();
    let file = format!(
        "[runtime]\nretry = {{ attempts = 60, initial_backoff = \"1ms\", max_backoff = \"20ms\" }}\n\
         [source]\ntype = \"file\"\npath = \"in.jsonl\"\nformat = \"jsonl\"\n\
         [sink]\ntype = \"http\"\n{sink}\n"
    );
    let spec = parse(&file, &dir.path().join("p.toml")).unwrap();
    let built = build(&spec, &Overrides::default()).unwrap();
    let written = Arc::clone(&built.figures.written);
    let report = built.pipeline.run().unwrap();
    (report, written.load(Relaxed))
}

fn ids(range: std::ops::Range<u64>) -> Vec<String> {
    range.map(|n| format!("doc-{n}")).collect()
}

#[test]
fn a_bulk_body_pairs_each_action_with_its_document() {
    let mut config = config("http://localhost:9200/_bulk", HttpFormat::Bulk);
    config.action = BulkAction::Create;
    let batch = records(&[
        json!({"id": "a", "x": 1}),
        json!({"id": 7}),
        json!("a string"),
        json!({"x": 2}),
        json!({"id": [1]}),
    ]);
    let mut out = Vec::new();
    let Items { sent, refused } = body::bulk(&batch, &config, "docs", &mut out);
    assert_eq!(sent, [0, 1]);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "{\"create\":{\"_id\":\"a\",\"_index\":\"docs\"}}\n{\"id\":\"a\",\"x\":1}\n\
         {\"create\":{\"_id\":\"7\",\"_index\":\"docs\"}}\n{\"id\":7}\n"
    );
    assert_eq!(
        refused,
        [
            (
                2,
                "a bulk document must be a JSON object, got a string".to_owned()
            ),
            (
                3,
                "the record has no field `id` (id_field) for its `_id`".to_owned()
            ),
            (
                4,
                "field `id` (id_field) is an array; expected a string that is not empty or \
                 a number for the document's `_id`"
                    .to_owned()
            ),
        ]
    );
}

#[test]
fn a_bulk_response_is_read_item_by_item() {
    assert_eq!(
        bulk_items(r#"{"took":3,"errors":false,"items":[]}"#, 2, false),
        Ok(vec![Item::Done, Item::Done])
    );
    let answer = json!({"took": 1, "errors": true, "items": [
        {"index": {"_id": "a", "status": 201}},
        {"index": {"_id": "b", "status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
        {"index": {"_id": "c", "status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [n]",
            "caused_by": {"type": "number_format_exception", "reason": "For input string: \"x\""}}}},
        {"create": {"_id": "d", "status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}},
        {"index": {"_id": "e", "status": 503, "error": "unavailable"}},
    ]})
    .to_string();
    let items = bulk_items(&answer, 5, false).unwrap();
    assert_eq!(items[0], Item::Done);
    assert_eq!(
        items[1],
        Item::Retry(
            "HTTP 429 for item `_id` \"b\": es_rejected_execution_exception: queue full".into()
        )
    );
    assert_eq!(
        items[2],
        Item::Reject(
            "HTTP 400 for item `_id` \"c\": mapper_parsing_exception: failed to parse field \
             [n] (caused by number_format_exception: For input string: \"x\")"
                .into()
        )
    );
    // A 409 is a refusal for `index`, and the document already stored for `create`.
    assert!(matches!(items[3], Item::Reject(_)));
    assert_eq!(bulk_items(&answer, 5, true).unwrap()[3], Item::Done);
    assert_eq!(
        items[4],
        Item::Retry("HTTP 503 for item `_id` \"e\": unavailable".into())
    );

    assert_eq!(
        bulk_items(&answer, 4, false),
        Err("5 items answered for 4 sent".into())
    );
    assert!(bulk_items("<html>", 1, false)
        .unwrap_err()
        .starts_with("not JSON"));
    assert!(bulk_items(r#"{"acknowledged":true}"#, 1, false)
        .unwrap_err()
        .starts_with("no boolean `errors`"));
}

#[test]
fn an_error_body_gives_its_reason() {
    let es =
        r#"{"error":{"type":"security_exception","reason":"missing authentication"},"status":401}"#;
    assert_eq!(
        body_reason(es),
        "security_exception: missing authentication"
    );
    assert_eq!(body_reason("Bad Gateway\n"), "Bad Gateway");
    assert_eq!(body_reason(""), "empty body");
    assert_eq!(body_reason(&"x".repeat(300)).chars().count(), 201);
}

#[test]
fn retry_after_is_read_as_seconds_or_a_date_and_capped() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(60)));
    assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
    let later = httpdate::fmt_http_date(now + Duration::from_secs(9));
    assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(9)));
    let earlier = httpdate::fmt_http_date(now - Duration::from_secs(9));
    assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("-1", now), None);
    assert_eq!(parse_retry_after("", SystemTime::now()), None);
}

#[test]
fn the_configuration_is_checked_before_anything_is_sent() {
    let problem = |config: &HttpSinkConfig| HttpWriter::open(config).unwrap_err().to_string();
    let mut bulk = config("http://localhost:9200/_bulk", HttpFormat::Bulk);
    bulk.index = None;
    assert_eq!(
        problem(&bulk),
        "http sink: `format = \"bulk\"` needs `index`, the index documents go to"
    );
    assert!(problem(&config("localhost:9200", HttpFormat::Jsonl)).contains("no http:// scheme"));
    assert!(problem(&config("https://es:9200/_bulk", HttpFormat::Jsonl))
        .contains("https is not supported"));
    assert!(problem(&config("http://exa mple/", HttpFormat::Jsonl)).contains("is not a URL"));
    let mut jsonl = config("http://localhost:9200/", HttpFormat::Jsonl);
    jsonl.id_field = Some("id".into());
    assert_eq!(
        problem(&jsonl),
        "http sink: `id_field` is for `format = \"bulk\"`; this sink sends JSON lines"
    );
    let mut headers = config("http://localhost:9200/", HttpFormat::Jsonl);
    headers
        .headers
        .insert("Authorization".into(), "Bearer a\nb".into());
    assert!(problem(&headers).contains("header `Authorization`"));
}

#[test]
fn the_configuration_shows_no_header_value() {
    let mut config = config("http://localhost:9200/", HttpFormat::Jsonl);
    config
        .headers
        .insert("Authorization".into(), "Bearer s3cret".into());
    let shown = format!("{config:?}");
    assert!(
        shown.contains("Authorization") && !shown.contains("s3cret"),
        "{shown}"
    );
}

#[test]
fn the_healthcheck_finds_an_endpoint_that_does_not_answer() {
    let server = BulkServer::start(Capacity::default()).unwrap();
    let good = config(&format!("{}/_bulk", server.url()), HttpFormat::Bulk);
    assert_eq!(good.check(), []);
    assert_eq!(server.received().requests, 1, "one GET, no document");

    let port = brigade_testkit::free_port().unwrap();
    let refused = config(&format!("http://127.0.0.1:{port}/_bulk"), HttpFormat::Bulk);
    let problems = refused.check();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].part, "sink");
    assert!(
        problems[0].message.starts_with(&format!(
            "the endpoint http://127.0.0.1:{port}/_bulk does not answer: GET http://127.0.0.1:{port}/:"
        )),
        "{}",
        problems[0].message
    );
    let mut no_index = good.clone();
    no_index.index = None;
    assert!(no_index.check()[0].message.contains("needs `index`"));
}

#[test]
fn json_lines_reach_the_endpoint_each_once() {
    let server = BulkServer::start(Capacity::default()).unwrap();
    let values = documents(0..1_000);
    let (report, written) = run(
        &values,
        &format!("url = \"{}/\"\ngzip = true\nbatch_size = 50", server.url()),
    );
    assert!(report.is_clean(), "{:?}", report.failures);
    assert_eq!((report.completed, written), (1_000, 1_000));
    let mut lines = server.lines();
    lines.sort_by_key(|line| line["n"].as_u64());
    assert_eq!(lines, values);
}

#[test]
fn refused_items_are_dead_lettered_with_their_reason_and_throttled_ones_retried_until_stored() {
    // A knee of one request and a limit of eight: four workers always overload it, so
    // a share of the items is refused with 429, and 10% fail their mapping.
    let server = BulkServer::start(Capacity {
        knee: 1,
        limit: 8,
        per_doc: Duration::from_micros(100),
        fail_share: 0.1,
        ..Capacity::default()
    })
    .unwrap();
    let (report, written) = run(
        &documents(0..1_500),
        &format!(
            "url = \"{}/_bulk\"\nformat = \"bulk\"\nindex = \"docs\"\nid_field = \"id\"\n\
             batch_size = 50\nworkers = {{ min = 4, initial = 4, max = 4 }}",
            server.url()
        ),
    );
    let refused: Vec<String> = ids(0..1_500)
        .into_iter()
        .filter(|id| server.rejects(id))
        .collect();
    let seen = server.received();
    assert!(seen.items_throttled > 0, "{seen:?}");
    assert_eq!(
        seen.items_rejected,
        refused.len() as u64,
        "each refused once"
    );
    let stored = server.documents("docs");
    assert_eq!(stored.len() + refused.len(), 1_500);
    assert_eq!(
        seen.indexed,
        stored.len() as u64,
        "throttled items are not sent twice once stored"
    );
    assert_eq!(written, stored.len() as u64);
    assert_eq!(report.dead_letters.len(), refused.len());
    for letter in &report.dead_letters {
        assert_eq!(letter.cause, DeadLetterCause::Permanent);
        let record = letter.record::<Record>().unwrap();
        let id = record.value["id"].as_str().unwrap();
        assert!(refused.iter().any(|r| r == id), "{id}");
        assert_eq!(
            letter.error,
            format!(
                "HTTP 400 for item `_id` \"{id}\": mapper_parsing_exception: failed to parse \
                 document [{id}]"
            )
        );
    }
}

#[test]
fn a_throttled_request_waits_for_retry_after_and_a_5xx_is_sent_again() {
    let server = BulkServer::start(Capacity {
        retry_after: Some(1),
        ..Capacity::default()
    })
    .unwrap();
    let mut writer = HttpWriter::open(&config(
        &format!("{}/_bulk", server.url()),
        HttpFormat::Bulk,
    ))
    .unwrap();
    server.fail_next(1, 429);
    let written = AtomicU64::new(0);
    let batch = records(&documents(0..10));
    match writer.write_batch(batch.clone(), &written) {
        Err(Failure::Transient {
            record,
            error,
            retry_after,
            partial: None,
        }) => {
            assert_eq!(record, batch);
            assert_eq!(retry_after, Some(Duration::from_secs(1)));
            assert!(error.to_string().contains("HTTP 429"), "{error}");
        }
        other => panic!("expected a transient failure, got {other:?}"),
    }

    // Through the runtime: the second try comes a second later, not after the backoff.
    server.fail_next(1, 429);
    let started = Instant::now();
    let (report, written) = run(
        &documents(0..100),
        &format!(
            "url = \"{}/_bulk\"\nformat = \"bulk\"\nindex = \"docs\"\nid_field = \"id\"\npin = 1",
            server.url()
        ),
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!((report.completed, written), (100, 100));

    server.fail_next(2, 503);
    let (report, _) = run(
        &documents(100..200),
        &format!(
            "url = \"{}/_bulk\"\nformat = \"bulk\"\nindex = \"docs\"\nid_field = \"id\"",
            server.url()
        ),
    );
    assert_eq!(report.completed, 100);
    assert!(report.dead_letters.is_empty());
    assert_eq!(server.documents("docs").len(), 200);
}

#[test]
fn past_its_limit_the_endpoint_refuses_whole_requests_with_retry_after() {
    let server = BulkServer::start(Capacity {
        knee: 1,
        limit: 1,
        retry_after: Some(2),
        ..Capacity::default()
    })
    .unwrap();
    let config = config(&format!("{}/_bulk", server.url()), HttpFormat::Bulk);
    server.stall(Duration::from_millis(600));
    let busy = {
        let config = config.clone();
        std::thread::spawn(move || {
            HttpWriter::open(&config)
                .unwrap()
                .write(&records(&documents(0..5)))
        })
    };
    while server.received().most_concurrent == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut writer = HttpWriter::open(&config).unwrap();
    let error = writer.write(&records(&documents(5..10))).unwrap_err();
    assert!(error.is_transient());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(2)));
    assert!(
        error
            .to_string()
            .ends_with("HTTP 429: es_rejected_execution_exception: rejected execution: too many concurrent requests"),
        "{error}"
    );
    assert_eq!(busy.join().unwrap().unwrap(), Written::default());
    assert_eq!(server.received().throttled, 1);
}

#[test]
fn a_request_refused_for_good_dead_letters_its_batch_with_the_status_and_reason() {
    let server = BulkServer::start(Capacity::default()).unwrap();
    server.fail_next(1, 400);
    let (report, written) = run(
        &documents(0..100),
        &format!(
            "url = \"{}/_bulk\"\nformat = \"bulk\"\nindex = \"docs\"\nbatch_size = 10\n\
             workers = {{ min = 1, max = 1 }}",
            server.url()
        ),
    );
    let dead = report.dead_letters.len() as u64;
    assert!((1..=10).contains(&dead), "{dead}");
    assert_eq!(written + dead, 100);
    for letter in &report.dead_letters {
        assert_eq!(letter.cause, DeadLetterCause::Permanent);
        assert!(
            letter
                .error
                .ends_with("/_bulk: HTTP 400: injected_failure: failure injected by fail_next"),
            "{}",
            letter.error
        );
    }
}

#[test]
fn a_stalled_endpoint_times_out_and_the_replay_with_ids_duplicates_nothing() {
    let server = BulkServer::start(Capacity::default()).unwrap();
    server.stall(Duration::from_millis(1_500));
    let (report, written) = run(
        &documents(0..300),
        &format!(
            "url = \"{}/_bulk\"\nformat = \"bulk\"\nindex = \"docs\"\nid_field = \"id\"\n\
             timeout = \"300ms\"\nbatch_size = 100",
            server.url()
        ),
    );
    assert_eq!((report.completed, written), (300, 300));
    assert!(report.dead_letters.is_empty());
    let seen = server.received();
    // Requests stored and then lost their answer: sent again, overwritten by `_id`.
    assert!(seen.indexed > 300, "{seen:?}");
    let stored = server.documents("docs");
    assert_eq!(stored.len(), 300);
    assert_eq!(stored["doc-42"], json!({"id": "doc-42", "n": 42}));
}

#[test]
fn a_create_replayed_counts_as_written_once_stored() {
    let server = BulkServer::start(Capacity::default()).unwrap();
    let mut config = config(&format!("{}/docs/_bulk", server.url()), HttpFormat::Bulk);
    config.action = BulkAction::Create;
    let mut writer = HttpWriter::open(&config).unwrap();
    let batch = records(&documents(0..20));
    assert_eq!(writer.write(&batch).unwrap(), Written::default());
    assert_eq!(writer.write(&batch).unwrap(), Written::default());
    let seen = server.received();
    assert_eq!((seen.indexed, seen.items_conflicted), (20, 20));
}
