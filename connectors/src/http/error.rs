//! What can go wrong opening the HTTP sink or sending a batch, and which of it is worth
//! a retry.

use std::time::Duration;

/// An error of the HTTP sink: its configuration, or a whole batch's request.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The configuration cannot describe a request.
    #[error("http sink: {0}")]
    Config(String),
    /// The request did not get an answer: connection refused or reset, host not
    /// found, timed out.
    #[error("POST {url}: {source}")]
    Send {
        /// The endpoint.
        url: String,
        /// The client's error.
        #[source]
        source: ureq::Error,
    },
    /// The endpoint answered with an error status.
    #[error("POST {url}: HTTP {status}: {reason}")]
    Status {
        /// The endpoint.
        url: String,
        /// The status code.
        status: u16,
        /// The body's reason (an Elasticsearch error's `type: reason`, else the body's
        /// start).
        reason: String,
        /// The `Retry-After` it asked for, if any.
        retry_after: Option<Duration>,
    },
    /// A 2xx answer to `_bulk` that is not a bulk response, or does not account for
    /// every item: what was stored is unknown, so the batch is sent again.
    #[error("POST {url}: unreadable bulk response: {message}")]
    Response {
        /// The endpoint.
        url: String,
        /// What is wrong with it.
        message: String,
    },
}

impl HttpError {
    /// Whether the same request may succeed later: no answer (connection, timeout),
    /// 408, 429 or a 5xx, or an unreadable bulk answer.
    pub fn is_transient(&self) -> bool {
        match self {
            HttpError::Send { .. } | HttpError::Response { .. } => true,
            HttpError::Status { status, .. } => is_transient_status(*status),
            HttpError::Config(_) => false,
        }
    }

    /// How long the endpoint asked to wait before the next try (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HttpError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// 408 (request timeout), 429 (too many requests) and 5xx: a state of the endpoint,
/// not of the request.
pub(crate) fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}
