//! The HTTP server: `GET /metrics` and `POST /control/…` (see the crate docs). One
//! thread answers requests one at a time; tiny_http reads them on its own threads.

use std::io::Read;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use brigade_controller::{Override, Snapshot};
use prometheus_client::registry::Registry;
use serde_json::json;
use tiny_http::{Header, Method, Request, Response};

use crate::config::Error;
use crate::{metrics, Shared};
use brigade_controller::units::{format_bytes, parse_size};

/// Longest form body read, bytes.
const MAX_BODY: u64 = 4096;

/// The running server and the way to stop it.
pub(crate) struct HttpServer {
    server: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

/// Serves on `listener` until [`HttpServer::stop`].
pub(crate) fn serve(listener: TcpListener, shared: Arc<Shared>) -> Result<HttpServer, Error> {
    let addr = listener
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let server =
        tiny_http::Server::from_listener(listener, None).map_err(|e| Error::MetricsAddr {
            value: addr,
            reason: e.to_string(),
        })?;
    let server = Arc::new(server);
    let stopping = Arc::new(AtomicBool::new(false));
    let registry = metrics::registry(shared.clone());
    let thread = {
        let server = server.clone();
        let stopping = stopping.clone();
        std::thread::Builder::new()
            .name("brigade:daemon-http".into())
            .spawn(move || loop {
                match server.recv() {
                    Ok(request) => answer(request, &shared, &registry),
                    Err(_) if stopping.load(SeqCst) => break,
                    Err(error) => {
                        tracing::warn!(%error, "metrics server: a connection failed");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            })
            .map_err(|error| Error::Thread {
                what: "HTTP",
                error,
            })?
    };
    Ok(HttpServer {
        server,
        stopping,
        thread,
    })
}

impl HttpServer {
    /// Stops answering, closes the listener and waits for the thread.
    pub fn stop(self) {
        self.stopping.store(true, SeqCst);
        self.server.unblock();
        if self.thread.join().is_err() {
            tracing::error!("the daemon's HTTP thread panicked");
        }
    }
}

/// A response: status, content type, body.
#[derive(Debug, PartialEq)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }

    fn error(status: u16, message: impl Into<String>) -> Self {
        Self::json(status, json!({"ok": false, "error": message.into()}))
    }
}

fn answer(mut request: Request, shared: &Shared, registry: &Registry) {
    let (path, query) = request
        .url()
        .split_once('?')
        .map_or((request.url(), ""), |(p, q)| (p, q));
    let (path, mut params) = (path.to_owned(), query.to_owned());
    if is_form(&request) {
        let mut body = String::new();
        if request
            .as_reader()
            .take(MAX_BODY)
            .read_to_string(&mut body)
            .is_ok()
        {
            if !params.is_empty() && !body.is_empty() {
                params.push('&');
            }
            params.push_str(&body);
        }
    }
    let accept = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Accept"))
        .map(|h| h.value.as_str().to_owned());
    let reply = route(
        request.method(),
        &path,
        &params,
        accept.as_deref(),
        shared,
        registry,
    );
    let mut response = Response::from_data(reply.body).with_status_code(reply.status);
    if let Ok(header) = Header::from_bytes(&b"Content-Type"[..], reply.content_type.as_bytes()) {
        response = response.with_header(header);
    }
    if let Err(error) = request.respond(response) {
        tracing::debug!(%error, "metrics server: the client left before the answer");
    }
}

fn is_form(request: &Request) -> bool {
    request.headers().iter().any(|h| {
        h.field.equiv("Content-Type")
            && h.value
                .as_str()
                .starts_with("application/x-www-form-urlencoded")
    })
}

const CONTROLS: [&str; 5] = [
    "/control/pin",
    "/control/unpin",
    "/control/pause",
    "/control/resume",
    "/control/budget",
];

fn route(
    method: &Method,
    path: &str,
    query: &str,
    accept: Option<&str>,
    shared: &Shared,
    registry: &Registry,
) -> Reply {
    match path {
        "/metrics" if matches!(method, Method::Get | Method::Head) => {
            let format = metrics::Format::negotiate(accept);
            match metrics::encode(registry, format) {
                Ok(body) => Reply {
                    status: 200,
                    content_type: format.content_type(),
                    body,
                },
                Err(_) => Reply::error(500, "the metrics could not be encoded"),
            }
        }
        "/metrics" => Reply::error(405, format!("{path} takes GET, not {method}")),
        _ if CONTROLS.contains(&path) && *method == Method::Post => {
            match control(path, query, shared) {
                Ok((change, stage)) => {
                    tracing::info!(
                        target: "brigade::operator",
                        stage = %stage.as_deref().unwrap_or("pipeline"),
                        "over HTTP: {}",
                        describe(&change)
                    );
                    if let Some(monitor) = shared.monitor.get() {
                        monitor.apply(change.clone());
                    }
                    let mut body = json!({"ok": true, "override": change});
                    if let Some(stage) = stage {
                        body["stage"] = json!(stage);
                    }
                    Reply::json(200, body)
                }
                Err(reply) => reply,
            }
        }
        _ if CONTROLS.contains(&path) => {
            Reply::error(405, format!("{path} takes POST, not {method}"))
        }
        _ => Reply::error(
            404,
            format!(
                "no endpoint {path}: there are GET /metrics and POST {}",
                CONTROLS.join(", ")
            ),
        ),
    }
}

/// The override a control request asks for, and the stage's name if it names one.
fn control(path: &str, query: &str, shared: &Shared) -> Result<(Override, Option<String>), Reply> {
    let mut params = Params::parse(query).map_err(|m| Reply::error(400, m))?;
    let bad = |m: String| Reply::error(400, m);
    let change = match path {
        "/control/pause" => Override::Pause,
        "/control/resume" => Override::Resume,
        "/control/budget" => {
            let text = params.require("bytes").map_err(bad)?;
            let bytes = match text.as_str() {
                "none" => None,
                _ => match parse_size(&text) {
                    Ok(0) => return Err(bad("bytes: the budget must be at least 1 byte".into())),
                    Ok(bytes) => Some(bytes),
                    Err(_) => {
                        return Err(bad(format!(
                            "bytes: expected a size like 512MiB, 1.5GiB or 1048576 (units B, \
                             KiB, MiB, GiB, TiB), or none; got {text:?}"
                        )))
                    }
                },
            };
            Override::SetBudget { bytes }
        }
        _ => {
            let stage = params.require("stage").map_err(bad)?;
            let workers = match path {
                "/control/pin" => Some(params.require("workers").map_err(bad)?),
                _ => None,
            };
            params.finish().map_err(bad)?;
            let snapshot = shared
                .monitor
                .get()
                .and_then(|m| m.latest())
                .ok_or_else(|| {
                    Reply::error(
                        503,
                        "no tick has closed yet: stage names are known after the first",
                    )
                })?;
            let index = find_stage(&snapshot, &stage)?;
            let name = snapshot.stages[index].name.clone();
            let change = match workers {
                Some(text) => Override::PinWorkers {
                    stage: index,
                    workers: parse_workers(&snapshot, index, &text).map_err(bad)?,
                },
                None => Override::Unpin { stage: index },
            };
            return Ok((change, Some(name)));
        }
    };
    params.finish().map_err(bad)?;
    if shared.monitor.get().is_none() {
        return Err(Reply::error(503, "the pipeline has not started yet"));
    }
    Ok((change, None))
}

/// What an override does, in words: `pin 4 workers`, `memory budget → 512.0 MiB`.
fn describe(change: &Override) -> String {
    match change {
        Override::PinWorkers { workers, .. } => format!("pin {workers} workers"),
        Override::Unpin { .. } => "unpin".to_owned(),
        Override::Pause => "pause the controller".to_owned(),
        Override::Resume => "resume the controller".to_owned(),
        Override::SetBudget { bytes: Some(bytes) } => {
            format!("memory budget → {}", format_bytes(*bytes))
        }
        Override::SetBudget { bytes: None } => "memory budget → none".to_owned(),
        other => format!("{other:?}"),
    }
}

/// The index of the stage named `text`, or numbered `text`.
fn find_stage(snapshot: &Snapshot, text: &str) -> Result<usize, Reply> {
    let stages = &snapshot.stages;
    stages
        .iter()
        .position(|s| s.name == text)
        .or_else(|| text.parse::<usize>().ok().filter(|&i| i < stages.len()))
        .ok_or_else(|| {
            let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
            Reply::error(
                404,
                format!(
                    "stage: no stage {text:?}; the stages are {} (or their indices 0 to {})",
                    names.join(", "),
                    stages.len().saturating_sub(1)
                ),
            )
        })
}

/// A worker count within the stage's bounds.
fn parse_workers(snapshot: &Snapshot, index: usize, text: &str) -> Result<usize, String> {
    let bounds = &snapshot.stages[index].workers;
    let workers: usize = text
        .parse()
        .map_err(|_| format!("workers: expected a whole number of workers, got {text:?}"))?;
    if workers < bounds.min || workers > bounds.max {
        return Err(format!(
            "workers: stage {:?} takes {} to {} workers, got {workers}",
            snapshot.stages[index].name, bounds.min, bounds.max
        ));
    }
    Ok(workers)
}

/// Decoded `key=value` pairs of a query string or form body.
#[derive(Debug)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Result<Self, String> {
        let mut pairs = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            pairs.push((decode(key)?, decode(value)?));
        }
        Ok(Self(pairs))
    }

    /// Takes parameter `key`, which must be given once.
    fn require(&mut self, key: &str) -> Result<String, String> {
        let mut values = self.0.iter().filter(|(k, _)| k == key);
        match (values.next(), values.next()) {
            (None, _) => Err(format!("missing parameter {key}")),
            (Some(_), Some(_)) => Err(format!("parameter {key} is given more than once")),
            (Some((_, value)), None) => {
                let value = value.clone();
                self.0.retain(|(k, _)| k != key);
                Ok(value)
            }
        }
    }

    /// Refuses parameters nobody took.
    fn finish(self) -> Result<(), String> {
        match self.0.first() {
            Some((key, _)) => Err(format!("unknown parameter {key:?}")),
            None => Ok(()),
        }
    }
}

/// Percent-decodes a query component (`+` is a space).
fn decode(text: &str) -> Result<String, String> {
    let malformed = || format!("malformed percent-encoding in {text:?}");
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        bytes.push(match byte {
            b'+' => b' ',
            b'%' => {
                let hex = rest.get(..2).ok_or_else(malformed)?;
                rest = &rest[2..];
                std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(malformed)?
            }
            _ => byte,
        });
    }
    String::from_utf8(bytes).map_err(|_| format!("{text:?} is not UTF-8 once decoded"))
}

#[cfg(test)]
mod tests {
    use brigade_controller::{StageStats, WorkerStats};

    use super::*;

    fn snapshot() -> Snapshot {
        let stage = |name: &str| StageStats {
            name: name.into(),
            workers: WorkerStats {
                live: 1,
                target: 1,
                min: 1,
                max: 8,
                pinned: false,
            },
            ..StageStats::default()
        };
        Snapshot {
            stages: vec![stage("parse"), stage("write to db")],
            ..Snapshot::default()
        }
    }

    #[test]
    fn stages_by_name_or_index() {
        let snapshot = snapshot();
        assert_eq!(find_stage(&snapshot, "write to db"), Ok(1));
        assert_eq!(find_stage(&snapshot, "0"), Ok(0));
        let reply = find_stage(&snapshot, "2").unwrap_err();
        assert_eq!(reply.status, 404);
        assert!(
            reply.body.contains(
                r#"no stage \"2\"; the stages are parse, write to db (or their indices 0 to 1)"#
            ),
            "{}",
            reply.body
        );
    }

    #[test]
    fn workers_within_the_stage_bounds() {
        let snapshot = snapshot();
        assert_eq!(parse_workers(&snapshot, 0, "8"), Ok(8));
        assert_eq!(
            parse_workers(&snapshot, 0, "9"),
            Err(r#"workers: stage "parse" takes 1 to 8 workers, got 9"#.into())
        );
        assert_eq!(
            parse_workers(&snapshot, 0, "-1"),
            Err(r#"workers: expected a whole number of workers, got "-1""#.into())
        );
    }

    #[test]
    fn params_decode_and_refuse_repeats_and_strangers() {
        let mut params = Params::parse("stage=write+to%20db&workers=3&&x").unwrap();
        assert_eq!(params.require("stage"), Ok("write to db".into()));
        assert_eq!(params.require("workers"), Ok("3".into()));
        assert_eq!(
            params.require("workers"),
            Err("missing parameter workers".into())
        );
        assert_eq!(params.finish(), Err(r#"unknown parameter "x""#.into()));
        let mut twice = Params::parse("bytes=1&bytes=2").unwrap();
        assert_eq!(
            twice.require("bytes"),
            Err("parameter bytes is given more than once".into())
        );
        assert!(Params::parse("stage=%zz").is_err());
        assert!(Params::parse("stage=%4").is_err());
        assert!(Params::parse("stage=%ff").is_err());
    }
}
