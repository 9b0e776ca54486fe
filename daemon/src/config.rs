//! What the daemon is asked to do, and what can go wrong setting it up.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// The daemon's settings: where to serve metrics and controls, where to log ticks,
/// and when to stop by itself. [`Daemon::new`](crate::Daemon::new) checks them (binds
/// the address, opens the file) before anything runs.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Where to serve `GET /metrics` and `POST /control/*` (`--metrics-addr`); port 0
    /// takes any free port (see [`Daemon::metrics_addr`](crate::Daemon::metrics_addr)).
    /// `None`: no HTTP server.
    pub metrics_addr: Option<SocketAddr>,
    /// Where to write one JSON line per tick (`--metrics-log`), created or truncated.
    /// `None`: no log file.
    pub metrics_log: Option<PathBuf>,
    /// How long after [`Daemon::run`](crate::Daemon::run) starts to stop admission and
    /// drain. `None`: until the source runs out or a signal arrives.
    pub deadline: Option<Duration>,
    /// Whether [`Daemon::new`](crate::Daemon::new) installs SIGINT and SIGTERM
    /// handlers (the first asks for a drain, a second during it exits with 128 + the
    /// signal's number). Off by default: they are process-wide, so a program
    /// embedding the daemon keeps its own and drains with a
    /// [`Stopper`](crate::Stopper); the `brigade` binary turns them on.
    pub handle_signals: bool,
}

/// Why the daemon could not start. Each names the flag and the value at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metrics address is malformed, does not resolve, or cannot be bound.
    #[error("--metrics-addr {value}: {reason}")]
    MetricsAddr {
        /// The address as given.
        value: String,
        /// What went wrong.
        reason: String,
    },
    /// The metrics log file cannot be opened for writing.
    #[error("--metrics-log {}: cannot open for writing: {error}", path.display())]
    MetricsLog {
        /// The path as given.
        path: PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// SIGINT and SIGTERM handlers could not be installed.
    #[error("cannot handle SIGINT and SIGTERM: {0}")]
    Signals(io::Error),
    /// A thread of the daemon could not be started.
    #[error("cannot start the daemon's {what} thread: {error}")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// What the system said.
        error: io::Error,
    },
}

/// Reads a `--metrics-addr` value: `HOST:PORT`, where HOST is an IP address or a name
/// that resolves (`127.0.0.1:9100`, `[::1]:9100`, `localhost:9100`); the first address
/// it resolves to is taken.
pub fn parse_metrics_addr(value: &str) -> Result<SocketAddr, Error> {
    let error = |reason: String| Error::MetricsAddr {
        value: value.to_owned(),
        reason,
    };
    let mut addrs = value.to_socket_addrs().map_err(|e| {
        error(format!(
            "expected HOST:PORT (like 127.0.0.1:9100 or localhost:9100): {e}"
        ))
    })?;
    addrs
        .next()
        .ok_or_else(|| error("resolves to no address".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_resolve() {
        assert_eq!(
            parse_metrics_addr("127.0.0.1:9100").unwrap(),
            "127.0.0.1:9100".parse().unwrap()
        );
        assert_eq!(parse_metrics_addr("localhost:0").unwrap().port(), 0);
    }

    #[test]
    fn a_bad_address_names_the_flag_and_the_value() {
        for bad in ["9100", "127.0.0.1", "127.0.0.1:port", ""] {
            let message = parse_metrics_addr(bad).unwrap_err().to_string();
            assert!(
                message.starts_with(&format!("--metrics-addr {bad}: expected HOST:PORT")),
                "{message}"
            );
        }
    }
}
