//! One worker's HTTP agent and the batched POST, read item by item for `_bulk`.

use std::io::Write;
use std::time::SystemTime;

use flate2::write::GzEncoder;
use flate2::Compression;
use ureq::http::{HeaderName, HeaderValue, Uri};
use ureq::Agent;

use super::body::{self, Items};
use super::response::{body_reason, bulk_items, parse_retry_after, Item};
use super::{HttpError, HttpFormat, HttpSinkConfig};
use crate::Record;

/// The largest answer read: a bulk response names every item, ~200 bytes each.
const MAX_ANSWER: u64 = 256 << 20;

/// What a write did with a batch besides writing it: records refused for good and
/// records to send again, each as (index in the batch, why). Every other record of the
/// batch was written.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Refused for good: not a bulk document, or an item answered with a 4xx.
    pub rejected: Vec<(usize, String)>,
    /// Refused for now: items answered with 429 or a 5xx.
    pub retry: Vec<(usize, String)>,
}

/// One worker's agent (its own keep-alive connection) to the sink's endpoint.
#[derive(Debug)]
pub struct HttpWriter {
    agent: Agent,
    config: HttpSinkConfig,
    index: String,
    body: Vec<u8>,
}

impl HttpWriter {
    /// An agent for `config`'s endpoint, with its timeout; the configuration checked
    /// (URL, headers, `index` for `bulk`). Connects at the first write.
    pub fn open(config: &HttpSinkConfig) -> Result<HttpWriter, HttpError> {
        validate(config)?;
        Ok(HttpWriter {
            agent: agent(config),
            config: config.clone(),
            index: config.index.clone().unwrap_or_default(),
            body: Vec::new(),
        })
    }

    /// POSTs `batch` (nothing for an empty one). Ok tells which records were refused
    /// for good or for now ([`Written`]), the rest being written; Err means the
    /// request as a whole failed, [`HttpError::is_transient`] says whether to send it
    /// again.
    pub fn write(&mut self, batch: &[Record]) -> Result<Written, HttpError> {
        self.body.clear();
        let items = match self.config.format {
            HttpFormat::Jsonl => body::json_lines(batch, &mut self.body),
            HttpFormat::Bulk => body::bulk(batch, &self.config, &self.index, &mut self.body),
        };
        let Items { sent, refused } = items;
        let mut written = Written {
            rejected: refused,
            retry: Vec::new(),
        };
        if sent.is_empty() {
            return Ok(written);
        }
        let answer = self.post()?;
        if self.config.format == HttpFormat::Bulk {
            let outcomes = bulk_items(&answer, sent.len(), body::is_create(&self.config))
                .map_err(|message| HttpError::Response {
                    url: self.config.url.clone(),
                    message,
                })?;
            for (at, outcome) in sent.into_iter().zip(outcomes) {
                match outcome {
                    Item::Done => {}
                    Item::Retry(reason) => written.retry.push((at, reason)),
                    Item::Reject(reason) => written.rejected.push((at, reason)),
                }
            }
            written.rejected.sort_unstable_by_key(|(at, _)| *at);
        }
        Ok(written)
    }

    /// Sends the body; the answer's text for a 2xx, else the status as an error.
    fn post(&mut self) -> Result<String, HttpError> {
        let url = &self.config.url;
        let send_error = |source| HttpError::Send {
            url: url.clone(),
            source,
        };
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", "application/x-ndjson");
        for (name, value) in &self.config.headers {
            request = request.header(name, value);
        }
        let response = if self.config.gzip {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            let compressed = encoder
                .write_all(&self.body)
                .and_then(|()| encoder.finish())
                .map_err(|error| send_error(ureq::Error::Io(error)))?;
            request
                .header("Content-Encoding", "gzip")
                .send(&compressed[..])
        } else {
            request.send(&self.body[..])
        };
        let mut response = response.map_err(send_error)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(send_error)?;
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(HttpError::Status {
                url: url.clone(),
                status,
                reason: body_reason(&text),
                retry_after,
            })
        }
    }
}

/// An agent that hands back every status (the sink reads them) and gives up after the
/// configured timeout.
pub(super) fn agent(config: &HttpSinkConfig) -> Agent {
    Agent::config_builder()
        .timeout_global(Some(config.timeout()))
        .http_status_as_error(false)
        .max_idle_connections_per_host(1)
        .user_agent(concat!("brigade/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// What the configuration alone can get wrong: the URL (an `http://` URL with a
/// host), the headers, `index` for `bulk` and the bulk keys without it.
pub(super) fn validate(config: &HttpSinkConfig) -> Result<Uri, HttpError> {
    let bad = |message: String| Err(HttpError::Config(message));
    let uri: Uri = match config.url.parse() {
        Ok(uri) => uri,
        Err(error) => return bad(format!("`url` {:?} is not a URL: {error}", config.url)),
    };
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return bad(format!(
                "`url` {:?}: https is not supported by this build; expected an http:// URL \
                 (a TLS-terminating proxy on loopback, for instance)",
                config.url
            ))
        }
        _ => {
            return bad(format!(
                "`url` {:?} has no http:// scheme; expected a URL like http://localhost:9200/_bulk",
                config.url
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return bad(format!("`url` {:?} has no host", config.url));
    }
    for (name, value) in &config.headers {
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return bad(format!("header name {name:?} is not a valid HTTP header name"));
        }
        if HeaderValue::from_str(value).is_err() {
            return bad(format!(
                "the value of header `{name}` has characters a header cannot carry"
            ));
        }
    }
    match config.format {
        HttpFormat::Bulk => match &config.index {
            Some(index) if !index.trim().is_empty() => {}
            _ => return bad("`format = \"bulk\"` needs `index`, the index documents go to".into()),
        },
        HttpFormat::Jsonl => {
            let bulk_only = [
                ("index", config.index.is_some()),
                ("id_field", config.id_field.is_some()),
            ];
            if let Some((key, _)) = bulk_only.iter().find(|(_, set)| *set) {
                return bad(format!(
                    "`{key}` is for `format = \"bulk\"`; this sink sends JSON lines"
                ));
            }
        }
    }
    if config.id_field.as_deref().is_some_and(|field| field.trim().is_empty()) {
        return bad("`id_field` is empty; expected the field that holds the `_id`".into());
    }
    Ok(uri)
}
