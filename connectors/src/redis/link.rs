//! One connection to Redis, opened again after it is lost.

use std::time::Duration;

use redis::{Client, Connection, RedisResult};

use super::error::{is_transient, redact, RedisConnectorError};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A client and its connection, if open. A transient error drops the connection; the
/// next call connects again.
pub(crate) struct Link {
    client: Client,
    url: String,
    read_timeout: Duration,
    connection: Option<Connection>,
}

impl Link {
    /// A link to `url` (not connected yet); replies longer than `read_timeout` in
    /// coming are an error (and the connection is dropped).
    pub(crate) fn new(url: &str, read_timeout: Duration) -> Result<Link, RedisConnectorError> {
        let client = Client::open(url).map_err(|error| {
            RedisConnectorError::Config(format!("`url` `{}` is invalid: {error}", redact(url)))
        })?;
        Ok(Link {
            client,
            url: redact(url),
            read_timeout,
            connection: None,
        })
    }

    /// The URL, without its password.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Runs `call` on the connection (opened first if need be). An error is described
    /// by `what`; a transient one drops the connection.
    pub(crate) fn run<T>(
        &mut self,
        what: impl FnOnce() -> String,
        call: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, RedisConnectorError> {
        let outcome = match self.connection() {
            Ok(connection) => call(connection),
            Err(error) => Err(error),
        };
        outcome.map_err(|source| {
            if is_transient(&source) {
                self.connection = None;
            }
            RedisConnectorError::Redis {
                url: self.url.clone(),
                what: what(),
                source,
            }
        })
    }

    fn connection(&mut self) -> RedisResult<&mut Connection> {
        if self.connection.is_none() {
            let connection = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
            connection.set_read_timeout(Some(self.read_timeout))?;
            connection.set_write_timeout(Some(self.read_timeout))?;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("just opened"))
    }
}
