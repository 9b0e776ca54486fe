//! Reading answers: a `_bulk` response item by item, an error body's reason, and
//! `Retry-After`.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::error::is_transient_status;

/// The longest `Retry-After` honoured: a longer one is cut to it, so that a worker
/// never sleeps through a drain.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What became of one item of a `_bulk` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// Stored (or, for `create`, already there).
    Done,
    /// Refused for now (429, 5xx): send again. The reason.
    Retry(String),
    /// Refused for good (another 4xx): the reason.
    Reject(String),
}

/// The items of a 2xx `_bulk` answer, in order, `sent` of them expected. With
/// `errors: false` every item is done. `create`: a 409 means the document is already
/// stored, so it is done. Err says what makes the answer unreadable.
pub(crate) fn bulk_items(body: &str, sent: usize, create: bool) -> Result<Vec<Item>, String> {
    let answer: Value =
        serde_json::from_str(body).map_err(|error| format!("not JSON ({error}): {}", start(body)))?;
    match answer.get("errors") {
        Some(Value::Bool(false)) => return Ok(vec![Item::Done; sent]),
        Some(Value::Bool(true)) => {}
        _ => return Err(format!("no boolean `errors`: {}", start(body))),
    }
    let Some(items) = answer.get("items").and_then(Value::as_array) else {
        return Err(format!("`errors` is true and there is no `items` array: {}", start(body)));
    };
    if items.len() != sent {
        return Err(format!("{} items answered for {sent} sent", items.len()));
    }
    items
        .iter()
        .enumerate()
        .map(|(number, item)| {
            let Some(result) = item
                .as_object()
                .and_then(|object| object.values().next())
                .filter(|result| result.is_object())
            else {
                return Err(format!("item {number} is not an object with an action"));
            };
            let Some(status) = result
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|status| u16::try_from(status).ok())
            else {
                return Err(format!("item {number} has no numeric `status`"));
            };
            Ok(item_outcome(status, result, create))
        })
        .collect()
}

/// An item's fate by its status and error.
fn item_outcome(status: u16, result: &Value, create: bool) -> Item {
    if (200..300).contains(&status) || (create && status == 409) {
        return Item::Done;
    }
    let reason = format!(
        "HTTP {status} for item `_id` {}: {}",
        result
            .get("_id")
            .and_then(Value::as_str)
            .map_or_else(|| "(none)".to_owned(), |id| format!("{id:?}")),
        result.get("error").map_or_else(|| "no error given".to_owned(), error_reason)
    );
    if is_transient_status(status) {
        Item::Retry(reason)
    } else {
        Item::Reject(reason)
    }
}

/// `type: reason` of an Elasticsearch error object (and its `caused_by`), or the
/// value itself.
fn error_reason(error: &Value) -> String {
    match error {
        Value::Object(object) => {
            let kind = object.get("type").and_then(Value::as_str);
            let reason = object.get("reason").and_then(Value::as_str);
            let mut text = match (kind, reason) {
                (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
                (Some(text), None) | (None, Some(text)) => text.to_owned(),
                (None, None) => error.to_string(),
            };
            if let Some(cause) = object.get("caused_by") {
                text.push_str(&format!(" (caused by {})", error_reason(cause)));
            }
            text
        }
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The reason an error answer gives: its JSON `error` (`type: reason`), else the
/// start of the body, else `empty body`.
pub(crate) fn body_reason(body: &str) -> String {
    if let Ok(answer) = serde_json::from_str::<Value>(body) {
        if let Some(error) = answer.get("error") {
            return error_reason(error);
        }
    }
    if body.trim().is_empty() {
        "empty body".to_owned()
    } else {
        start(body)
    }
}

/// The first 200 characters of `text`, on one line.
fn start(text: &str) -> String {
    let line: String = text.trim().chars().take(200).collect();
    let line = line.replace('\n', " ");
    if text.trim().chars().count() > 200 {
        format!("{line}…")
    } else {
        line
    }
}

/// A `Retry-After` header's wait, read at `now`: whole seconds, or an HTTP date
/// (a date past gives zero); at most [`MAX_RETRY_AFTER`]. `None` if unreadable.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use brigade_connectors::http::parse_retry_after;
///
/// assert_eq!(parse_retry_after(" 3 ", SystemTime::now()), Some(Duration::from_secs(3)));
/// let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
/// assert_eq!(
///     parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
///     Some(Duration::from_secs(7))
/// );
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or_default()
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}
