//! Opening a connection from a pipeline's `url`: a libpq keyword string
//! (`host=… port=… user=… dbname=…`) or a `postgres://` URI, with the connector's
//! timeouts, named in messages without its password.

use std::time::Duration;

use postgres::config::Host;
use postgres::{Client, Config, NoTls};

use super::error::PostgresError;

/// How long a connection attempt waits when neither the connector nor the `url` says.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A PostgreSQL server as a `url` describes it, ready to connect to.
#[derive(Clone, Debug)]
pub struct Server {
    config: Config,
    name: String,
}

impl Server {
    /// Parses `url`. `connect_timeout`, when given, replaces the url's; without either
    /// a connection attempt waits [`DEFAULT_CONNECT_TIMEOUT`]. `statement_timeout`,
    /// when given, is set for the session (the server cancels a longer statement).
    pub fn parse(
        url: &str,
        connect_timeout: Option<Duration>,
        statement_timeout: Option<Duration>,
    ) -> Result<Server, PostgresError> {
        let mut config: Config = url.parse().map_err(|error: postgres::Error| {
            PostgresError::Config(format!(
                "`url` is not a PostgreSQL connection string: {error}"
            ))
        })?;
        match connect_timeout {
            Some(timeout) => {
                config.connect_timeout(timeout);
            }
            None if config.get_connect_timeout().is_none() => {
                config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
            }
            None => {}
        }
        if config.get_application_name().is_none() {
            config.application_name("brigade");
        }
        if let Some(timeout) = statement_timeout {
            let setting = format!("-c statement_timeout={}", timeout.as_millis().max(1));
            let options = match config.get_options() {
                Some(options) if !options.trim().is_empty() => format!("{options} {setting}"),
                _ => setting,
            };
            config.options(&options);
        }
        let name = name_of(&config);
        Ok(Server { config, name })
    }

    /// `user@host:port/dbname`: the server in messages, never its password.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A new connection (no TLS).
    pub fn connect(&self) -> Result<Client, PostgresError> {
        self.config
            .connect(NoTls)
            .map_err(|source| PostgresError::Connect {
                server: self.name.clone(),
                source,
            })
    }
}

fn name_of(config: &Config) -> String {
    let user = config.get_user().unwrap_or("");
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let dbname = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { "" } else { "@" };
    format!("{user}{at}{host}:{port}/{dbname}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_strings_and_uris_are_named_without_their_password() {
        let server = Server::parse(
            "host=db.example port=6543 user=loader password=secret dbname=shop",
            None,
            None,
        )
        .unwrap();
        assert_eq!(server.name(), "loader@db.example:6543/shop");
        let server = Server::parse("postgres://loader:secret@db.example/shop", None, None).unwrap();
        assert_eq!(server.name(), "loader@db.example:5432/shop");
        assert!(!format!("{server:?}").contains("secret"), "{server:?}");
    }

    #[test]
    fn a_bad_url_names_the_key() {
        let error = Server::parse("host=a port=notaport", None, None).unwrap_err();
        assert!(error.to_string().contains("`url`"), "{error}");
        assert!(!error.is_transient());
    }
}
