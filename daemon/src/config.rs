//! What the daemon is asked to do, and what can go wrong setting it up.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The daemon's settings: where to serve metrics and controls, where to log ticks,
/// and when to stop by itself. [`Daemon::new`](crate::Daemon::new) checks them (binds
/// the address, opens the file) before anything runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to serve `GET /metrics` and `POST /control/*` (`--metrics-addr`); port 0
    /// takes any free port (see [`Daemon::metrics_addr`](crate::Daemon::metrics_addr)).
    /// `None`: no HTTP server.
    pub metrics_addr: Option<SocketAddr>,
    /// Who may use the control endpoints. [`Control::Open`] (the default) is refused
    /// on an address that is not loopback.
    pub control: Control,
    /// Where to write one JSON line per tick (`--metrics-log`), created or truncated.
    /// `None`: no log file.
    pub metrics_log: Option<PathBuf>,
    /// How long after [`Daemon::run`](crate::Daemon::run) starts to stop admission and
    /// drain. `None`: until the source runs out or a signal arrives.
    pub deadline: Option<Duration>,
    /// How long the drain may take (`--drain-timeout`): at the end of it, records
    /// still in flight are abandoned unacknowledged and the report says where they
    /// were. `None`: the drain waits for every record.
    pub drain_timeout: Option<Duration>,
    /// Whether [`Daemon::new`](crate::Daemon::new) installs SIGINT and SIGTERM
    /// handlers (the first asks for a drain, a second during it exits with 128 + the
    /// signal's number). Off by default: they are process-wide, so a program
    /// embedding the daemon keeps its own and drains with a
    /// [`Stopper`](crate::Stopper); the `brigade` binary turns them on.
    pub handle_signals: bool,
    /// How often to log a finite source's progress on stderr (`progress: 3/10 files,
    /// 1.2 GiB of 4.0 GiB (30%), 85.0 MiB/s, 42s left`), in the run's time; a last
    /// line says when it is read to its end. Nothing for a source that cannot say how
    /// far it got. `None`: never. Default: every 5 s.
    pub progress_every: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            metrics_addr: None,
            control: Control::default(),
            metrics_log: None,
            deadline: None,
            drain_timeout: None,
            handle_signals: false,
            progress_every: Some(Duration::from_secs(5)),
        }
    }
}

/// Who may use the control endpoints (`POST /control/*`); `GET /metrics` is open to
/// whoever can connect, whatever this is.
#[derive(Clone, Debug, Default)]
pub enum Control {
    /// Anyone who can connect. Only on a loopback address: elsewhere
    /// [`Daemon::new`](crate::Daemon::new) refuses to start.
    #[default]
    Open,
    /// Only requests that carry `Authorization: Bearer TOKEN`; others get 401.
    Token(ControlToken),
    /// Not served (`--no-control`): `/control/*` answers 404, metrics alone are served.
    Off,
}

/// The secret the control endpoints ask for. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ControlToken(String);

impl ControlToken {
    /// `text` without surrounding whitespace, which must leave a token: visible ASCII
    /// (what an HTTP header carries), at least one character. Otherwise what is
    /// wrong, for the caller to say where the text came from.
    pub fn new(text: &str) -> Result<Self, String> {
        let token = text.trim();
        if token.is_empty() {
            return Err("is empty (or only whitespace): put the token in it".into());
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "holds a character that cannot go in an HTTP header: a token is visible \
                 ASCII with no spaces"
                    .into(),
            );
        }
        Ok(Self(token.to_owned()))
    }

    /// The token in the file at `path` (`--control-token-file`): its content, trimmed.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let refused = |reason: String| Error::ControlTokenFile {
            path: path.to_owned(),
            reason,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| refused(format!("cannot read: {e}")))?;
        Self::new(&text).map_err(refused)
    }

    /// The token's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for ControlToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ControlToken(…)")
    }
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
    /// The control endpoints would be open to the network: the address is not
    /// loopback and no token is configured.
    #[error(
        "--metrics-addr {addr}: not a loopback address, so the control endpoints there \
         would let anyone who reaches it pin stages and change the budget; give them a \
         token (--control-token-file PATH, or the BRIGADE_CONTROL_TOKEN environment \
         variable) or serve metrics alone (--no-control)"
    )]
    OpenControl {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The control token file cannot be read or holds no token.
    #[error("--control-token-file {}: {reason}", path.display())]
    ControlTokenFile {
        /// The path as given.
        path: PathBuf,
        /// What is wrong.
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
    fn tokens_are_trimmed_and_must_fit_a_header() {
        assert_eq!(
            ControlToken::new("  s3cret\n").unwrap().as_bytes(),
            b"s3cret"
        );
        assert!(ControlToken::new(" \n")
            .unwrap_err()
            .starts_with("is empty"));
        assert!(ControlToken::new("two words").is_err());
        assert!(ControlToken::new("caf\u{e9}").is_err());
        assert_eq!(
            format!("{:?}", ControlToken::new("s3cret").unwrap()),
            "ControlToken(…)"
        );
    }

    #[test]
    fn a_token_file_is_named_when_it_cannot_serve() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let message = ControlToken::read(&missing).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "--control-token-file {}: cannot read:",
                missing.display()
            )),
            "{message}"
        );
        let blank = dir.path().join("blank");
        std::fs::write(&blank, "\n\n").unwrap();
        let message = ControlToken::read(&blank).unwrap_err().to_string();
        assert_eq!(
            message,
            format!(
                "--control-token-file {}: is empty (or only whitespace): put the token in it",
                blank.display()
            )
        );
        let good = dir.path().join("good");
        std::fs::write(&good, "tok-123\n").unwrap();
        assert_eq!(ControlToken::read(&good).unwrap().as_bytes(), b"tok-123");
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
