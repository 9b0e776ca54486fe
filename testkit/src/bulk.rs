//! A bulk indexing endpoint for a test: a real HTTP server on a free loopback port that
//! answers `POST /_bulk` as Elasticsearch and OpenSearch do, and `POST /` (any other
//! path) as a plain JSON-lines endpoint, with a capacity you set.
//!
//! ```no_run
//! use std::time::Duration;
//! use brigade_testkit::bulk::{BulkServer, Capacity};
//!
//! let server = BulkServer::start(Capacity {
//!     knee: 4,
//!     limit: 16,
//!     per_doc: Duration::from_micros(50),
//!     ..Capacity::default()
//! })
//! .unwrap();
//! // POST NDJSON to format!("{}/_bulk", server.url()), then:
//! let seen = server.received();
//! assert_eq!(seen.throttled, 0);
//! ```
//!
//! The capacity ([`Capacity`]): up to `knee` requests in progress are each served at
//! full speed (`per_request` plus `per_doc` per document); past the knee every request
//! in progress slows in proportion to the overload (`in progress / knee`, re-read as
//! it runs, so a request's cost follows the load while it lasts), and between the knee
//! and `limit` that share of the items is refused with a per-item 429
//! (`es_rejected_execution_exception`, as Elasticsearch does when its write queue is
//! full). A request arriving when `limit` are in progress is refused whole: 429 with
//! `Retry-After`. `fail_share` of the documents (chosen by a hash of the `_id`, or of
//! the document without one, so the same ones fail on every try) get a per-item 400
//! `mapper_parsing_exception`; [`BulkServer::rejects`] says which.
//!
//! [`BulkServer::stall`] makes requests hang after they are processed (the documents
//! stored, the answer withheld): the lost answer a client times out on and sends
//! again. [`BulkServer::fail_next`] answers the next requests with a status of your
//! choice. What it received ([`Received`], [`BulkServer::documents`],
//! [`BulkServer::lines`]) is kept for assertions. Dropping the server stops it: its
//! threads are joined, stalls cut short.
//!
//! Bodies may be gzip-compressed (`Content-Encoding: gzip`). `GET` and `HEAD` on any
//! path answer 200 with a small JSON description, as a cluster's root does.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use flate2::read::GzDecoder;
use serde_json::{json, Value};
use tiny_http::{Header, Method, Request, Response, Server};

/// How much load the endpoint takes, and how it fails past it.
#[derive(Clone, Debug, PartialEq)]
pub struct Capacity {
    /// Requests in progress served at full speed; past it, each slows by the factor
    /// `in progress / knee`. At least 1.
    pub knee: usize,
    /// Requests in progress past which a new one is refused whole with 429.
    pub limit: usize,
    /// What one request costs at full speed, whatever its size.
    pub per_request: Duration,
    /// What one document costs at full speed.
    pub per_doc: Duration,
    /// The share of documents (0 to 1) refused with a per-item 400, the same ones on
    /// every try.
    pub fail_share: f64,
    /// Whether, between the knee and the limit, that share of the overload's items is
    /// refused with a per-item 429 (`_bulk` only).
    pub item_throttling: bool,
    /// The `Retry-After` seconds sent with a whole-request 429 (`None`: no header).
    pub retry_after: Option<u64>,
}

impl Default for Capacity {
    /// A knee of 4 requests, a limit of 32, 1 ms per request and 20 µs per document,
    /// no failing documents, per-item 429s past the knee, `Retry-After: 1`.
    fn default() -> Self {
        Self {
            knee: 4,
            limit: 32,
            per_request: Duration::from_millis(1),
            per_doc: Duration::from_micros(20),
            fail_share: 0.0,
            item_throttling: true,
            retry_after: Some(1),
        }
    }
}

/// Counts of what the endpoint was sent and answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Requests answered (any method, any status).
    pub requests: u64,
    /// Requests refused whole with 429 (over the limit).
    pub throttled: u64,
    /// `_bulk` items refused with a per-item 429 (past the knee).
    pub items_throttled: u64,
    /// `_bulk` items refused with a per-item 400 (`fail_share`, malformed documents).
    pub items_rejected: u64,
    /// `_bulk` items refused with 409 (`create` of an id already stored).
    pub items_conflicted: u64,
    /// Documents stored, overwrites included: above the distinct ids when a document
    /// came twice.
    pub indexed: u64,
    /// Requests whose body was gzip-compressed.
    pub gzipped: u64,
    /// The most requests in progress at once.
    pub most_concurrent: u64,
}

/// A running bulk endpoint; dropping it stops it.
pub struct BulkServer {
    state: Arc<State>,
    server: Arc<Server>,
    port: u16,
    dispatcher: Option<JoinHandle<()>>,
}

/// What the handler threads share.
struct State {
    capacity: Mutex<Capacity>,
    store: Mutex<Store>,
    in_progress: Mutex<usize>,
    stall_until: Mutex<Option<Instant>>,
    fail_next: Mutex<Option<(usize, u16)>>,
    stopping: AtomicBool,
}

/// What was stored and counted.
#[derive(Default)]
struct Store {
    received: Received,
    /// By index, then id.
    documents: BTreeMap<String, BTreeMap<String, Value>>,
    /// The JSON-lines endpoint's documents, in arrival order.
    lines: Vec<Value>,
    /// Ids given to documents sent without one.
    generated: u64,
    /// Items seen while overloaded, to throttle a steady share of them.
    overloaded_items: u64,
}

impl BulkServer {
    /// Starts an endpoint with `capacity` on a free loopback port.
    pub fn start(capacity: Capacity) -> io::Result<BulkServer> {
        let server = Server::http("127.0.0.1:0").map_err(io::Error::other)?;
        let port = server
            .server_addr()
            .to_ip()
            .map(|addr| addr.port())
            .ok_or_else(|| io::Error::other("the bulk endpoint has no IP address"))?;
        let server = Arc::new(server);
        let state = Arc::new(State {
            capacity: Mutex::new(sane(capacity)),
            store: Mutex::default(),
            in_progress: Mutex::new(0),
            stall_until: Mutex::new(None),
            fail_next: Mutex::new(None),
            stopping: AtomicBool::new(false),
        });
        let dispatcher = {
            let (server, state) = (Arc::clone(&server), Arc::clone(&state));
            thread::Builder::new()
                .name("bulk-endpoint".into())
                .spawn(move || dispatch(&server, &state))?
        };
        Ok(BulkServer {
            state,
            server,
            port,
            dispatcher: Some(dispatcher),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Changes the capacity for the requests that start from now on.
    pub fn set_capacity(&self, capacity: Capacity) {
        *lock(&self.state.capacity) = sane(capacity);
    }

    /// For `duration` from now, every request hangs once processed (its documents
    /// stored) until the stall ends: the answer a client waits for and times out on.
    pub fn stall(&self, duration: Duration) {
        *lock(&self.state.stall_until) = Some(Instant::now() + duration);
    }

    /// The next `count` requests (bodies read, nothing stored) are answered with
    /// `status` and an Elasticsearch-like error body (`injected_failure`); a 429 with
    /// the capacity's `Retry-After`.
    pub fn fail_next(&self, count: usize, status: u16) {
        *lock(&self.state.fail_next) = Some((count, status));
    }

    /// The counts so far.
    pub fn received(&self) -> Received {
        lock(&self.state.store).received.clone()
    }

    /// The documents stored in `index` by `_bulk`, by id (the last version of each).
    pub fn documents(&self, index: &str) -> BTreeMap<String, Value> {
        lock(&self.state.store)
            .documents
            .get(index)
            .cloned()
            .unwrap_or_default()
    }

    /// The documents the JSON-lines endpoint took, in arrival order (duplicates kept).
    pub fn lines(&self) -> Vec<Value> {
        lock(&self.state.store).lines.clone()
    }

    /// Whether the document with this `_id` (or, sent without one, this JSON text as
    /// sent) is one the capacity's `fail_share` refuses.
    pub fn rejects(&self, key: &str) -> bool {
        fails(key, lock(&self.state.capacity).fail_share)
    }
}

impl Drop for BulkServer {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(dispatcher) = self.dispatcher.take() {
            let _ = dispatcher.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A capacity that cannot divide by zero.
fn sane(mut capacity: Capacity) -> Capacity {
    capacity.knee = capacity.knee.max(1);
    capacity.limit = capacity.limit.max(capacity.knee);
    capacity
}

/// Takes requests until the server is unblocked, one thread each; joins them all.
fn dispatch(server: &Server, state: &Arc<State>) {
    let mut handlers: Vec<JoinHandle<()>> = Vec::new();
    while !state.stopping.load(Ordering::SeqCst) {
        let Ok(request) = server.recv() else { break };
        handlers.retain(|handler| !handler.is_finished());
        let state = Arc::clone(state);
        match thread::Builder::new()
            .name("bulk-request".into())
            .spawn(move || handle(request, &state))
        {
            Ok(handler) => handlers.push(handler),
            Err(_) => continue,
        }
    }
    for handler in handlers {
        let _ = handler.join();
    }
}

/// A request's answer: status, body, extra headers.
struct Answer {
    status: u16,
    body: String,
    headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    /// An Elasticsearch error body.
    fn error(status: u16, kind: &str, reason: &str) -> Self {
        Self::json(
            status,
            json!({
                "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
                "status": status,
            }),
        )
    }
}

fn handle(mut request: Request, state: &State) {
    let answer = answer(&mut request, state);
    lock(&state.store).received.requests += 1;
    let mut response = Response::from_string(answer.body).with_status_code(answer.status);
    let headers = [("Content-Type", "application/json".to_owned())]
        .into_iter()
        .chain(answer.headers);
    for (name, value) in headers {
        if let Ok(header) = Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    let _ = request.respond(response);
}

fn answer(request: &mut Request, state: &State) -> Answer {
    match request.method() {
        Method::Get | Method::Head => {
            return Answer::json(
                200,
                json!({"name": "brigade-testkit", "version": {"number": "8.0.0-testkit"}}),
            )
        }
        Method::Post | Method::Put => {}
        other => {
            return Answer::error(
                405,
                "illegal_argument_exception",
                &format!("method {other} is not allowed"),
            )
        }
    }
    let capacity = lock(&state.capacity).clone();
    let Some(_slot) = Slot::take(state, capacity.limit) else {
        lock(&state.store).received.throttled += 1;
        let mut answer = Answer::error(
            429,
            "es_rejected_execution_exception",
            "rejected execution: too many concurrent requests",
        );
        if let Some(seconds) = capacity.retry_after {
            answer.headers.push(("Retry-After", seconds.to_string()));
        }
        return answer;
    };
    let body = match read_body(request, state) {
        Ok(body) => body,
        Err(error) => {
            return Answer::error(400, "parse_exception", &format!("unreadable body: {error}"))
        }
    };
    if let Some(status) = take_failure(state) {
        let mut answer = Answer::error(status, "injected_failure", "failure injected by fail_next");
        if let (429, Some(seconds)) = (status, capacity.retry_after) {
            answer.headers.push(("Retry-After", seconds.to_string()));
        }
        return answer;
    }
    let path = request.url().split('?').next().unwrap_or("/").to_owned();
    let started = Instant::now();
    let answer = if path == "/_bulk" || path.ends_with("/_bulk") {
        let default_index = path
            .strip_suffix("/_bulk")
            .map(|index| index.trim_start_matches('/').to_owned())
            .filter(|index| !index.is_empty());
        bulk(&body, default_index.as_deref(), state, &capacity)
    } else {
        json_lines(&body, state)
    };
    let answer = match answer {
        Ok((answer, documents)) => {
            work(state, &capacity, documents);
            answer
        }
        Err(answer) => answer,
    };
    stall(state);
    match answer {
        Answer { status: 200, .. } if path.ends_with("_bulk") => answer_took(answer, started),
        answer => answer,
    }
}

/// Fills in a bulk answer's `took`, milliseconds.
fn answer_took(mut answer: Answer, started: Instant) -> Answer {
    if let Ok(mut body) = serde_json::from_str::<Value>(&answer.body) {
        body["took"] = json!(started.elapsed().as_millis() as u64);
        answer.body = body.to_string();
    }
    answer
}

/// One request in progress, counted while it lives.
struct Slot<'s> {
    state: &'s State,
}

impl<'s> Slot<'s> {
    /// A place among the requests in progress, unless `limit` are.
    fn take(state: &'s State, limit: usize) -> Option<Self> {
        let mut in_progress = lock(&state.in_progress);
        if *in_progress >= limit {
            return None;
        }
        *in_progress += 1;
        let now = *in_progress as u64;
        drop(in_progress);
        let mut store = lock(&state.store);
        store.received.most_concurrent = store.received.most_concurrent.max(now);
        Some(Self { state })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *lock(&self.state.in_progress) -= 1;
    }
}

/// The request's body, gunzipped if it says so.
fn read_body(request: &mut Request, state: &State) -> io::Result<String> {
    let gzipped = request.headers().iter().any(|header| {
        header.field.equiv("Content-Encoding") && header.value.as_str().eq_ignore_ascii_case("gzip")
    });
    let mut raw = Vec::new();
    request.as_reader().read_to_end(&mut raw)?;
    let mut text = String::new();
    if gzipped {
        lock(&state.store).received.gzipped += 1;
        GzDecoder::new(raw.as_slice()).read_to_string(&mut text)?;
    } else {
        text = String::from_utf8(raw).map_err(io::Error::other)?;
    }
    Ok(text)
}

/// The status to fail this request with, if `fail_next` asked.
fn take_failure(state: &State) -> Option<u16> {
    let mut next = lock(&state.fail_next);
    let (count, status) = (*next)?;
    *next = (count > 1).then_some((count - 1, status));
    Some(status)
}

/// Spends the request's cost: `per_request + documents × per_doc` at full speed, slowed
/// by the overload (`in progress / knee`) as it is while the request runs.
fn work(state: &State, capacity: &Capacity, documents: usize) {
    let mut left = (capacity.per_request + capacity.per_doc * documents as u32).as_secs_f64();
    while left > 0.0 && !state.stopping.load(Ordering::SeqCst) {
        let slowdown = (*lock(&state.in_progress) as f64 / capacity.knee as f64).max(1.0);
        let slice = (left * slowdown).min(0.002);
        thread::sleep(Duration::from_secs_f64(slice));
        left -= slice / slowdown;
    }
}

/// Holds the answer while a stall lasts.
fn stall(state: &State) {
    loop {
        let until = *lock(&state.stall_until);
        match until {
            Some(until) if Instant::now() < until && !state.stopping.load(Ordering::SeqCst) => {
                thread::sleep(Duration::from_millis(2));
            }
            _ => return,
        }
    }
}

/// Whether the document keyed `key` is one of the `share` that fail: FNV-1a of the key,
/// as a fraction of its range.
fn fails(key: &str, share: f64) -> bool {
    if share <= 0.0 {
        return false;
    }
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash as f64 / u64::MAX as f64) < share
}

/// The share of items past the knee to throttle: the overload's share of the room
/// between the knee and the limit.
fn throttle_share(state: &State, capacity: &Capacity) -> f64 {
    if !capacity.item_throttling {
        return 0.0;
    }
    let in_progress = *lock(&state.in_progress);
    if in_progress <= capacity.knee {
        return 0.0;
    }
    let room = (capacity.limit - capacity.knee).max(1) as f64;
    ((in_progress - capacity.knee) as f64 / room).min(1.0)
}

/// A `_bulk` request: NDJSON pairs of an action (`index` or `create`, with `_index`
/// unless the path names one, and `_id` or not) and a document. Ok with the answer and
/// the documents it costs; Err with a whole-request error.
fn bulk(
    body: &str,
    default_index: Option<&str>,
    state: &State,
    capacity: &Capacity,
) -> Result<(Answer, usize), Answer> {
    let mut lines = body.lines().filter(|line| !line.trim().is_empty());
    let mut items = Vec::new();
    let mut errors = false;
    let share = throttle_share(state, capacity);
    let mut store = lock(&state.store);
    while let Some(action_line) = lines.next() {
        let malformed = |why: &str| {
            Answer::error(
                400,
                "illegal_argument_exception",
                &format!("Malformed action/metadata line [{action_line}]: {why}"),
            )
        };
        let action: Value =
            serde_json::from_str(action_line).map_err(|error| malformed(&error.to_string()))?;
        let Some((op, meta)) = action.as_object().and_then(|object| object.iter().next()) else {
            return Err(malformed("expected an object with one action"));
        };
        if op != "index" && op != "create" {
            return Err(malformed(&format!("unsupported action [{op}]")));
        }
        let index = meta
            .get("_index")
            .and_then(Value::as_str)
            .or(default_index)
            .ok_or_else(|| {
                Answer::error(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: index is missing;",
                )
            })?
            .to_owned();
        let id = meta.get("_id").and_then(Value::as_str).map(str::to_owned);
        let Some(source) = lines.next() else {
            return Err(malformed("the action has no document line after it"));
        };
        let key = id.as_deref().unwrap_or(source);
        let item = |status: u16, id: &str, extra: Value| {
            let mut item = json!({"_index": index, "_id": id, "status": status});
            if let (Some(item), Value::Object(extra)) = (item.as_object_mut(), extra) {
                item.extend(extra);
            }
            json!({ op.as_str(): item })
        };
        let refusal = |kind: &str, reason: &str| json!({"error": {"type": kind, "reason": reason}});
        let shown_id = id.clone().unwrap_or_default();
        if share > 0.0 {
            let before = store.overloaded_items;
            store.overloaded_items += 1;
            if (((before + 1) as f64) * share).floor() > ((before as f64) * share).floor() {
                store.received.items_throttled += 1;
                errors = true;
                items.push(item(
                    429,
                    &shown_id,
                    refusal(
                        "es_rejected_execution_exception",
                        "rejected execution of coordinating operation: write queue full",
                    ),
                ));
                continue;
            }
        }
        let document = match serde_json::from_str::<Value>(source) {
            Ok(document) if document.is_object() && !fails(key, capacity.fail_share) => document,
            Ok(_) | Err(_) => {
                store.received.items_rejected += 1;
                errors = true;
                items.push(item(
                    400,
                    &shown_id,
                    refusal(
                        "mapper_parsing_exception",
                        &format!("failed to parse document [{shown_id}]"),
                    ),
                ));
                continue;
            }
        };
        let id = match id {
            Some(id) => id,
            None => {
                store.generated += 1;
                format!("generated-{}", store.generated)
            }
        };
        let stored = store.documents.entry(index.clone()).or_default();
        let existed = stored.contains_key(&id);
        if op == "create" && existed {
            store.received.items_conflicted += 1;
            errors = true;
            items.push(item(
                409,
                &id,
                refusal(
                    "version_conflict_engine_exception",
                    &format!("[{id}]: version conflict, document already exists"),
                ),
            ));
            continue;
        }
        stored.insert(id.clone(), document);
        store.received.indexed += 1;
        let (status, result) = if existed {
            (200, "updated")
        } else {
            (201, "created")
        };
        items.push(item(status, &id, json!({"result": result})));
    }
    let documents = items.len();
    let body = json!({"took": 0, "errors": errors, "items": items});
    Ok((Answer::json(200, body), documents))
}

/// A JSON-lines request: one document per line, all stored, or 400 naming the first
/// line that is not JSON (nothing stored).
fn json_lines(body: &str, state: &State) -> Result<(Answer, usize), Answer> {
    let mut documents = Vec::new();
    for (number, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(document) => documents.push(document),
            Err(error) => {
                return Err(Answer::error(
                    400,
                    "parse_exception",
                    &format!("line {}: {error}", number + 1),
                ))
            }
        }
    }
    let count = documents.len();
    let mut store = lock(&state.store);
    store.received.indexed += count as u64;
    store.lines.extend(documents);
    Ok((Answer::json(200, json!({"count": count})), count))
}
