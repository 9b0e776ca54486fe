//! The daemon's endpoints: `GET /metrics` and `POST /control/…` (see the crate
//! docs), who may use the controls, and their parameters. The connections
//! themselves are [`server`](crate::server)'s.

use std::net::TcpListener;
use std::sync::Arc;

use brigade_controller::{Override, Snapshot};
use prometheus_client::registry::Registry;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::config::{Control, Error};
use crate::server::{self, Reply, Request, Server};
use crate::{metrics, Shared};
use brigade_controller::units::{format_bytes, parse_size};

/// Serves the endpoints on `listener` until [`Server::stop`], the controls as
/// `control` says.
pub(crate) fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    control: Control,
) -> Result<Server, Error> {
    let registry = metrics::registry(shared.clone());
    let handler = move |request: &Request| route(request, &shared, &registry, &control);
    server::serve(listener, Arc::new(handler)).map_err(|error| Error::Thread {
        what: "HTTP",
        error,
    })
}

/// The parameters of a request: the query string, then a form body.
fn params(request: &Request) -> Result<String, Reply> {
    let mut params = request.query.clone();
    let form = request.header("content-type").is_some_and(|t| {
        t.split(';').next().is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if form && !request.body.is_empty() {
        let body = std::str::from_utf8(&request.body)
            .map_err(|_| Reply::error(400, "the form body is not UTF-8"))?;
        if !params.is_empty() {
            params.push('&');
        }
        params.push_str(body);
    }
    Ok(params)
}

/// Whether `request` may use the control endpoints; the refusal if not.
fn authorize(request: &Request, control: &Control) -> Result<(), Reply> {
    let token = match control {
        Control::Open => return Ok(()),
        Control::Off => {
            return Err(Reply::error(
                404,
                format!(
                    "no endpoint {}: the control endpoints are off (--no-control)",
                    request.path
                ),
            ))
        }
        Control::Token(token) => token,
    };
    let given = request.header("authorization").and_then(|value| {
        let (scheme, credentials) = value.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| credentials.trim())
    });
    let refuse = |message: &str| {
        let mut reply = Reply::error(401, message);
        reply
            .headers
            .push(("WWW-Authenticate", r#"Bearer realm="brigade""#.to_owned()));
        Err(reply)
    };
    match given {
        None => refuse(
            "the control endpoints need Authorization: Bearer TOKEN, with the daemon's \
             token (its --control-token-file or BRIGADE_CONTROL_TOKEN)",
        ),
        // Constant time: how much of a guess matches does not show in the answer's time.
        Some(given) if bool::from(given.as_bytes().ct_eq(token.as_bytes())) => Ok(()),
        Some(_) => refuse("the bearer token is not the daemon's control token"),
    }
}

const CONTROLS: [&str; 5] = [
    "/control/pin",
    "/control/unpin",
    "/control/pause",
    "/control/resume",
    "/control/budget",
];

fn route(request: &Request, shared: &Shared, registry: &Registry, control: &Control) -> Reply {
    let (method, path) = (request.method.as_str(), request.path.as_str());
    match path {
        "/metrics" if matches!(method, "GET" | "HEAD") => {
            let format = metrics::Format::negotiate(request.header("accept"));
            match metrics::encode(registry, format) {
                Ok(body) => Reply {
                    status: 200,
                    content_type: format.content_type(),
                    headers: Vec::new(),
                    body,
                },
                Err(_) => Reply::error(500, "the metrics could not be encoded"),
            }
        }
        "/metrics" => Reply::error(405, format!("{path} takes GET, not {method}")),
        _ if CONTROLS.contains(&path) && method == "POST" => {
            let answer = authorize(request, control)
                .and_then(|()| params(request))
                .and_then(|params| control_override(path, &params, shared));
            match answer {
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
fn control_override(
    path: &str,
    query: &str,
    shared: &Shared,
) -> Result<(Override, Option<String>), Reply> {
    let mut params = Params::parse(query).map_err(|m| Reply::error(400, m))?;
    let bad = |m: String| Reply::error(400, m);
    let change = match path {
        "/control/pause" => Override::Pause,
        "/control/resume" => Override::Resume,
        "/control/budget" => {
            let text = params.require("bytes").map_err(bad)?;
            let memory = shared
                .monitor
                .get()
                .and_then(|m| m.latest())
                .map(|s| s.global.machine_memory_bytes);
            let bytes = match text.as_str() {
                "none" => None,
                _ => Some(parse_budget(&text, memory).map_err(bad)?),
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

/// A budget from `bytes=…`: at least a byte, and no more than the machine's
/// `memory` (when known), which a budget that large could not protect.
fn parse_budget(text: &str, memory: Option<u64>) -> Result<u64, String> {
    let bytes = parse_size(text).map_err(|e| format!("bytes: {e}, or none for no budget"))?;
    if bytes == 0 {
        return Err("bytes: the budget must be at least 1 byte".into());
    }
    match memory {
        Some(memory) if memory > 0 && bytes > memory => Err(format!(
            "bytes: {text} ({}) is more than the machine's memory ({}): a budget that \
             large caps nothing; use none for no budget",
            format_bytes(bytes),
            format_bytes(memory)
        )),
        _ => Ok(bytes),
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
    fn budgets_are_sizes_within_the_machine() {
        let gib = 1 << 30;
        assert_eq!(parse_budget("512MiB", Some(gib)), Ok(512 << 20));
        assert_eq!(parse_budget("1048576", None), Ok(1 << 20));
        assert_eq!(parse_budget("64TiB", None), Ok(64 << 40));
        assert_eq!(
            parse_budget("2GiB", Some(gib)),
            Err(
                "bytes: 2GiB (2.0 GiB) is more than the machine's memory (1.0 GiB): a \
                 budget that large caps nothing; use none for no budget"
                    .into()
            )
        );
        for absurd in ["1e999GiB", "NaN", "inf", "1.5.3MiB", "12XB", "", "GiB"] {
            let error = parse_budget(absurd, Some(gib)).unwrap_err();
            assert!(
                error.starts_with("bytes: expected a size"),
                "{absurd}: {error}"
            );
            assert!(error.contains(&format!("{absurd:?}")), "{absurd}: {error}");
        }
        assert_eq!(
            parse_budget("99999999999TiB", None),
            Err(r#"bytes: too large, got "99999999999TiB", or none for no budget"#.into())
        );
        assert_eq!(
            parse_budget("-1MiB", None),
            Err(r#"bytes: must not be negative, got "-1MiB", or none for no budget"#.into())
        );
        assert!(parse_budget("0", None)
            .unwrap_err()
            .contains("at least 1 byte"));
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
