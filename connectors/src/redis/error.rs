//! What can go wrong talking to Redis, and which of it is worth a retry.

/// An error of the Redis source or sinks.
#[derive(Debug, thiserror::Error)]
pub enum RedisConnectorError {
    /// The configuration is wrong (the message names the key).
    #[error("{0}")]
    Config(String),
    /// Redis could not be reached, or refused a command.
    #[error("redis {url}: {what}: {source}")]
    Redis {
        /// The server's URL, without its password.
        url: String,
        /// What was being done: `connecting`, `XADD to stream events`.
        what: String,
        /// The client's error.
        #[source]
        source: redis::RedisError,
    },
    /// The consumer's id file could not be read or written.
    #[error("consumer id in {path}: {source}")]
    State {
        /// The file or directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl RedisConnectorError {
    /// Whether it may go away by itself: the connection was lost, refused or timed
    /// out, or the server is loading its data or failing over.
    pub fn is_transient(&self) -> bool {
        match self {
            RedisConnectorError::Redis { source, .. } => is_transient(source),
            RedisConnectorError::Config(_) | RedisConnectorError::State { .. } => false,
        }
    }
}

/// Whether a client error may go away by itself (see
/// [`RedisConnectorError::is_transient`]).
pub(crate) fn is_transient(error: &redis::RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_timeout()
        || matches!(
            error.code(),
            Some("LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN" | "READONLY")
        )
}

/// `url` with its password, if any, replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("redis://app:s3cret@db:6379/0"),
            "redis://app:***@db:6379/0"
        );
        assert_eq!(redact("redis://db:6379/"), "redis://db:6379/");
        assert_eq!(redact("redis://app@db/"), "redis://app@db/");
    }
}
