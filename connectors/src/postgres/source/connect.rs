//! Connections: opened from `url`, and opened again with backoff when they drop.

use std::thread::sleep;
use std::time::{Duration, Instant};

use postgres::{Client, Config, NoTls};

use super::error::PgSourceError;

/// How long a reader keeps trying to reconnect (and redo what failed) before it
/// gives up: a server restart or failover fits well within it.
pub(crate) const RECONNECT_FOR: Duration = Duration::from_secs(300);
/// The first wait before a reconnect; doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between two reconnects.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long a connection attempt may take unless `url` says (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// `url` parsed: a libpq keyword string or a `postgres://` URI.
pub(crate) fn config(url: &str) -> Result<Config, PgSourceError> {
    let mut config: Config = url.parse().map_err(PgSourceError::Url)?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("brigade postgres source");
    }
    Ok(config)
}

/// A new connection (no TLS).
pub(crate) fn connect(config: &Config) -> Result<Client, PgSourceError> {
    config.connect(NoTls).map_err(PgSourceError::Connect)
}

/// Runs `attempt` until it succeeds, fails for good, or keeps failing transiently
/// (a lost connection, a server that is down) for [`RECONNECT_FOR`]; it sleeps with
/// doubling backoff between attempts. `attempt` reconnects as it needs.
pub(crate) fn retrying<T>(
    mut attempt: impl FnMut() -> Result<T, PgSourceError>,
) -> Result<T, PgSourceError> {
    let deadline = Instant::now() + RECONNECT_FOR;
    let mut backoff = FIRST_BACKOFF;
    loop {
        match attempt() {
            Err(error) if error.is_transient() && Instant::now() + backoff < deadline => {
                sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            outcome => return outcome,
        }
    }
}

/// The server's `idle_in_transaction_session_timeout`, `None` when it has none (0).
pub(crate) fn idle_timeout(client: &mut Client) -> Result<Option<Duration>, PgSourceError> {
    let row = client
        .query_one(
            "SELECT setting::int8 FROM pg_settings \
             WHERE name = 'idle_in_transaction_session_timeout'",
            &[],
        )
        .map_err(|error| PgSourceError::query("reading the server's idle timeout", &error))?;
    let millis: i64 = row
        .try_get(0)
        .map_err(|error| PgSourceError::query("reading the server's idle timeout", &error))?;
    Ok(u64::try_from(millis)
        .ok()
        .filter(|&millis| millis > 0)
        .map(Duration::from_millis))
}
