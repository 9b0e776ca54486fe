//! brigade-testkit: the real servers brigade's tests and benchmarks run against.
//!
//! Nothing here is a mock. Each server is the real program from its Debian package,
//! started in a temporary directory on a free loopback port, and stopped (its files
//! removed) when its handle drops, also when the test that holds it panics:
//!
//! - [`bulk`]: a bulk indexing endpoint (Elasticsearch's `_bulk`, and JSON lines)
//!   written here, with a capacity you set: a concurrency knee, 429s past a limit,
//!   failing documents, stalls;
//! - [`postgres`]: a PostgreSQL cluster made by `initdb`, run by `pg_ctl`; it can be
//!   stopped and started again mid-test, to prove a pipeline rides out an outage.
//! - [`redis`]: a `redis-server` with its append-only file on, which can be stopped
//!   and started again (the file reloaded) on the same port.
//!
//! A server whose package is missing is an error naming the package, so a test can
//! say what to install (`.ci/run` installs them).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bulk;
pub mod postgres;
pub mod redis;

use std::fmt;
use std::net::TcpListener;

/// Why a server could not be made, started or stopped, or a command not run against
/// it: what was tried, and what the program said.
#[derive(Debug)]
pub struct ServerError(String);

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ServerError {}

/// A loopback TCP port nothing listens on now (the OS picks it).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Calls `start` with a free port until it starts, five times at most: a port free
/// when picked may be taken before the server binds it.
fn on_a_free_port(
    mut start: impl FnMut(u16) -> Result<(), ServerError>,
) -> Result<(), ServerError> {
    let mut last = None;
    for _ in 0..5 {
        let port = free_port().map_err(|e| ServerError(format!("no free port: {e}")))?;
        match start(port) {
            Ok(()) => return Ok(()),
            Err(error) => last = Some(error),
        }
    }
    Err(last.expect("tried at least once"))
}
