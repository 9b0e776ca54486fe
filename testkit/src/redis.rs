//! A real Redis server for a test: Debian's `redis-server` on a free loopback port,
//! its append-only file in a temporary directory.
//!
//! ```no_run
//! let mut server = brigade_testkit::redis::RedisServer::start().unwrap();
//! server.cli(&["XADD", "events", "*", "id", "1"]).unwrap();
//! server.stop().unwrap(); // SIGTERM: the append-only file is flushed
//! server.start_again().unwrap(); // same port, same directory: the stream is back
//! assert_eq!(server.cli(&["XLEN", "events"]).unwrap().trim(), "1");
//! ```
//!
//! The append-only file is always on (`appendonly yes`), so what a client was told is
//! written survives [`stop`](RedisServer::stop) and [`start_again`](RedisServer::start_again);
//! with [`RedisServer::start_fsync_always`] it is fsynced before every reply. RDB
//! snapshots are off.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::ServerError;

/// How long a start or a stop may take before it is an error.
const PATIENCE: Duration = Duration::from_secs(30);

/// A running (or stopped) `redis-server` in a temporary directory. Dropping it kills
/// the server (SIGKILL), waits for it, and removes its files.
pub struct RedisServer {
    dir: TempDir,
    port: u16,
    fsync_always: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// A new server, append-only file on (`appendfsync everysec`), started.
    pub fn start() -> Result<RedisServer, ServerError> {
        RedisServer::start_with(false)
    }

    /// A new server whose append-only file is fsynced before every reply
    /// (`appendfsync always`), started.
    pub fn start_fsync_always() -> Result<RedisServer, ServerError> {
        RedisServer::start_with(true)
    }

    fn start_with(fsync_always: bool) -> Result<RedisServer, ServerError> {
        if !Path::new("/usr/bin/redis-server").exists() && !on_path("redis-server") {
            return Err(ServerError(
                "no redis-server: install Debian's `redis-server` package".to_owned(),
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("brigade-redis-")
            .tempdir()
            .map_err(|e| ServerError(format!("cannot make a temporary directory: {e}")))?;
        let mut server = RedisServer {
            dir,
            port: 0,
            fsync_always,
            child: None,
        };
        crate::on_a_free_port(|port| {
            server.port = port;
            server.start_again()
        })?;
        Ok(server)
    }

    /// The server's loopback port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's directory: its append-only files and its log (`log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the server is running (as far as this handle started and stopped it).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the server with SIGTERM (it flushes its append-only file and closes every
    /// client) and waits until it has exited. Its files stay;
    /// [`start_again`](Self::start_again) brings it back on the same port.
    pub fn stop(&mut self) -> Result<(), ServerError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .map_err(|e| ServerError(format!("cannot run kill: {e}")))?;
        if !status.success() {
            let _ = child.kill();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ServerError(format!(
                        "redis-server did not stop within {PATIENCE:?}; killed\n{}",
                        self.log_tail()
                    )));
                }
            }
        }
    }

    /// Starts the stopped server again, on its port and in its directory (the
    /// append-only file is loaded), and waits until it answers `PING`.
    pub fn start_again(&mut self) -> Result<(), ServerError> {
        if self.child.is_some() {
            return Ok(());
        }
        let dir = self.dir.path();
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("log"))
            .args(["--appendonly", "yes"])
            .args([
                "--appendfsync",
                if self.fsync_always {
                    "always"
                } else {
                    "everysec"
                },
            ])
            .args(["--save", ""])
            .args(["--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ServerError(format!("cannot run redis-server: {e}")))?;
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(ServerError(format!(
                    "redis-server exited at start ({status})\n{}",
                    self.log_tail()
                )));
            }
            if ping(self.port) {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ServerError(format!(
                    "redis-server did not answer within {PATIENCE:?}\n{}",
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs one command with `redis-cli` and returns its output (raw: one line per
    /// reply element). An error reply is an error.
    pub fn cli(&self, args: &[&str]) -> Result<String, ServerError> {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "--no-raw"])
            .args(args)
            .output()
            .map_err(|e| ServerError(format!("cannot run redis-cli: {e}")))?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() || text.starts_with("(error)") {
            return Err(ServerError(format!(
                "redis-cli {}: {}{}",
                args.join(" "),
                text.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        Ok(text)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(10).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("server log:\n{}", tail.join("\n"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether a server on `port` answers `PING` with `+PONG` (and is done loading).
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    let mut read = 0;
    while read < reply.len() {
        match stream.read(&mut reply[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    reply.starts_with(b"+PONG")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<PathBuf>>())
        .any(|dir| dir.join(program).exists())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_server_keeps_its_stream_across_a_stop_and_a_start_on_its_port() {
        let mut server = RedisServer::start_fsync_always().unwrap();
        server.cli(&["XADD", "s", "*", "n", "1"]).unwrap();
        server.cli(&["XADD", "s", "*", "n", "2"]).unwrap();
        let port = server.port();
        server.stop().unwrap();
        assert!(!ping(port), "a stopped server answered");
        assert!(server.cli(&["PING"]).is_err());
        server.start_again().unwrap();
        assert_eq!(server.port(), port);
        assert_eq!(server.cli(&["XLEN", "s"]).unwrap().trim(), "(integer) 2");
    }

    #[test]
    fn dropping_the_server_stops_it_and_removes_its_files() {
        let server = RedisServer::start().unwrap();
        let (dir, port) = (server.dir().to_owned(), server.port());
        assert!(ping(port));
        assert!(server.cli(&["NOSUCHCOMMAND"]).is_err());
        drop(server);
        assert!(!dir.exists(), "{} is still there", dir.display());
        assert!(!ping(port), "the server still answers");
    }
}
