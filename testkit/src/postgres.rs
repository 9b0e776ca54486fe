//! A real PostgreSQL server for a test: `initdb` into a temporary directory, `pg_ctl`
//! on a free loopback port, trust authentication for the user `brigade`.
//!
//! ```no_run
//! let server = brigade_testkit::postgres::PgServer::start().unwrap();
//! server.psql("CREATE TABLE t (id bigint PRIMARY KEY)").unwrap();
//! // connect a client to `server.url()`...
//! ```
//!
//! The binaries are the Debian package's (`postgresql`, under
//! `/usr/lib/postgresql/<version>/bin`), or `initdb` and `pg_ctl` on the `PATH`.
//! PostgreSQL refuses to run as root, so under root the server runs as the package's
//! `postgres` user (with `runuser`), its directory handed to that user.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

use crate::ServerError;

/// The database user the server trusts.
pub const USER: &str = "brigade";

/// A running (or stopped) PostgreSQL cluster in a temporary directory. Dropping it
/// stops the server at once (`pg_ctl stop -m immediate`) and removes its files.
pub struct PgServer {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    running: bool,
}

impl PgServer {
    /// A new cluster with PostgreSQL's default settings, started.
    pub fn start() -> Result<PgServer, ServerError> {
        PgServer::start_with(&[])
    }

    /// A new cluster with these `postgresql.conf` settings added (`("fsync", "off")`,
    /// `("max_connections", "300")`), started.
    pub fn start_with(settings: &[(&str, &str)]) -> Result<PgServer, ServerError> {
        let bin = binaries()?;
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("brigade-pg-")
            .tempdir()
            .map_err(|e| ServerError(format!("cannot make a temporary directory: {e}")))?;
        if as_postgres {
            hand_to_postgres(dir.path())?;
        }
        let mut server = PgServer {
            dir,
            bin,
            port: 0,
            as_postgres,
            running: false,
        };
        server.initdb()?;
        let mut conf = String::from("listen_addresses = '127.0.0.1'\n");
        conf += &format!(
            "unix_socket_directories = '{}'\n",
            server.dir.path().display()
        );
        conf += "max_connections = 200\n";
        for (key, value) in settings {
            conf += &format!("{key} = '{value}'\n");
        }
        append(&server.data().join("postgresql.conf"), &conf)?;
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

    /// A libpq connection string for the `postgres` database as [`USER`]:
    /// `host=127.0.0.1 port=… user=brigade dbname=postgres`.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} dbname=postgres",
            self.port
        )
    }

    /// The cluster's directory (its data directory is `data` in it, its log `log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the server is running (as far as this handle started and stopped it).
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Stops the server, disconnecting every client (`pg_ctl stop -m fast`), and
    /// waits until it has stopped. Its data stays; [`start_again`](Self::start_again)
    /// brings it back on the same port.
    pub fn stop(&mut self) -> Result<(), ServerError> {
        if !self.running {
            return Ok(());
        }
        self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"])?;
        self.running = false;
        Ok(())
    }

    /// Starts the stopped server again, on its port, and waits until it accepts
    /// connections.
    pub fn start_again(&mut self) -> Result<(), ServerError> {
        if self.running {
            return Ok(());
        }
        let log = self.dir.path().join("log");
        let options = format!("-p {}", self.port);
        self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-l",
            &log.display().to_string(),
            "-o",
            &options,
        ])?;
        self.running = true;
        Ok(())
    }

    /// Runs SQL with `psql` (stopping at the first error) and returns its output,
    /// unaligned, tuples only: one row a line, columns split by `|`.
    pub fn psql(&self, sql: &str) -> Result<String, ServerError> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url())
            .arg("-c")
            .arg(sql)
            .output()
            .map_err(|e| ServerError(format!("cannot run psql: {e}")))?;
        checked("psql", &output)?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn initdb(&self) -> Result<(), ServerError> {
        let data = self.data().display().to_string();
        let output = self
            .command("initdb")
            .args(["-D", &data, "-U", USER, "--auth=trust", "-E", "UTF8"])
            .args(["--no-sync", "--no-instructions", "--locale=C"])
            .output()
            .map_err(|e| ServerError(format!("cannot run initdb: {e}")))?;
        checked("initdb", &output)
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), ServerError> {
        let data = self.data().display().to_string();
        let output = self
            .command("pg_ctl")
            .args(["-D", &data])
            .args(args)
            .output()
            .map_err(|e| ServerError(format!("cannot run pg_ctl: {e}")))?;
        checked("pg_ctl", &output).map_err(|ServerError(message)| {
            let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            ServerError(format!("{message}\nserver log:\n{}", tail.join("\n")))
        })
    }

    /// A command for one of the server's binaries, run as `postgres` under root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "30"]);
        }
    }
}

/// The directory holding `initdb`, `pg_ctl` and `psql`: the newest Debian
/// `/usr/lib/postgresql/<version>/bin`, else the one on the `PATH` holding `initdb`.
fn binaries() -> Result<PathBuf, ServerError> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
        .ok_or_else(|| {
            ServerError(
                "no PostgreSQL server binaries (initdb, pg_ctl): install Debian's \
                 `postgresql` package"
                    .to_owned(),
            )
        })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Gives the directory to the `postgres` user, so the server run as it can write.
fn hand_to_postgres(dir: &Path) -> Result<(), ServerError> {
    let output = Command::new("chown")
        .arg("postgres:")
        .arg(dir)
        .output()
        .map_err(|e| ServerError(format!("cannot run chown: {e}")))?;
    checked("chown postgres (PostgreSQL will not run as root)", &output)
}

fn append(path: &Path, text: &str) -> Result<(), ServerError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|e| ServerError(format!("cannot write {}: {e}", path.display())))
}

fn checked(what: &str, output: &Output) -> Result<(), ServerError> {
    if output.status.success() {
        return Ok(());
    }
    Err(ServerError(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim(),
        String::from_utf8_lossy(&output.stdout).trim()
    )))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn a_server_starts_answers_stops_and_starts_again_on_its_port() {
        let mut server = PgServer::start().unwrap();
        server
            .psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)")
            .unwrap();
        assert_eq!(server.psql("SELECT count(*) FROM t").unwrap().trim(), "2");
        let port = server.port();
        server.stop().unwrap();
        assert!(
            server.psql("SELECT 1").is_err(),
            "a stopped server answered"
        );
        server.start_again().unwrap();
        assert_eq!(server.port(), port);
        assert_eq!(server.psql("SELECT count(*) FROM t").unwrap().trim(), "2");
    }

    #[test]
    fn dropping_the_server_stops_it_and_removes_its_files() {
        let server = PgServer::start_with(&[("fsync", "off")]).unwrap();
        let dir = server.dir().to_owned();
        let url = server.url();
        assert_eq!(server.psql("SHOW fsync").unwrap().trim(), "off");
        drop(server);
        assert!(!dir.exists(), "{} is still there", dir.display());
        let refused = Command::new("psql")
            .args(["-X", "-d", &url, "-c", "SELECT 1"])
            .output();
        assert!(refused.is_ok_and(|output| !output.status.success()));
    }
}
