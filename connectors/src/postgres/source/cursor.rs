//! One server-side cursor read in key order: the source when `partitions = 1`.
//!
//! The source thread holds one connection: `BEGIN ISOLATION LEVEL REPEATABLE READ,
//! READ ONLY`, `DECLARE … NO SCROLL CURSOR` for the query after the checkpointed key
//! in key order, then `FETCH fetch` at a time. A connection that drops (a server
//! restart, `pg_terminate_backend`, the idle-in-transaction timeout) is opened again
//! with backoff and the cursor declared again after the last key *fetched*: rows
//! already fetched are neither lost nor fetched twice. Without a key there is no
//! order to resume in: a drop after the first fetch ends the read with an error.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade_runtime::Source;
use postgres::{Client, Config};
use serde_json::Value;

use super::checkpoint::KeyCheckpoint;
use super::connect::{config, connect, idle_timeout, retrying};
use super::error::PgSourceError;
use super::query::{key_text, Plan};
use super::PgSourceConfig;
use crate::raw::{Raw, RawData};
use crate::Origin;

/// The cursor's name on its connection.
const CURSOR: &str = "brigade_cursor";

/// A PostgreSQL query read through one server-side cursor, yielding each row as a
/// [`RawData::Value`] object with an [`Origin::Row`] naming its key.
pub struct PgSource {
    connection: Config,
    fetch: usize,
    plan: Plan,
    name: Arc<str>,
    client: Option<Client>,
    /// The cursor is declared on `client`.
    declared: bool,
    /// Rows fetched and not yet returned, with their keys.
    fetched: VecDeque<(Raw, Option<Value>)>,
    /// The key of the last row fetched: where a new cursor starts after.
    last_fetched: Option<Value>,
    /// Rows fetched in this run (numbering rows without a key).
    rows: u64,
    /// The cursor has returned its last row.
    exhausted: bool,
    /// Reading stopped on an error, already returned.
    stopped: bool,
    /// Per returned position not yet acknowledged, from `first`: its key (none for
    /// an error that is not a row).
    pending: VecDeque<Option<Value>>,
    first: u64,
    checkpoint: Option<KeyCheckpoint>,
    idle: Option<Duration>,
    /// When the server last heard from the transaction.
    last_statement: Instant,
}

impl PgSource {
    /// Connects, describes the query (see [`check`](PgSourceConfig::check) for what
    /// it must be), reads the server's idle timeout, and loads the checkpoint in
    /// `checkpoint` (a directory and how often to write) if given and the source has
    /// a key. The cursor is declared at the first read.
    pub fn open(
        source: &PgSourceConfig,
        checkpoint: Option<(&std::path::Path, Duration)>,
    ) -> Result<PgSource, PgSourceError> {
        let connection = config(&source.url)?;
        let mut client = connect(&connection)?;
        let plan = Plan::describe(&mut client, source)?;
        let idle = idle_timeout(&mut client)?;
        let (checkpoint, after) = match (checkpoint, plan.key_column()) {
            (Some((dir, interval)), Some(key)) => {
                let (store, after) = KeyCheckpoint::open(dir, &source.id(), &key.name, interval)?;
                (Some(store), after)
            }
            _ => (None, None),
        };
        Ok(PgSource {
            connection,
            fetch: source.fetch,
            plan,
            name: Arc::from(source.name()),
            client: Some(client),
            declared: false,
            fetched: VecDeque::new(),
            last_fetched: after,
            rows: 0,
            exhausted: false,
            stopped: false,
            pending: VecDeque::new(),
            first: 0,
            checkpoint,
            idle,
            last_statement: Instant::now(),
        })
    }

    /// The checkpoint file, if the source keeps one.
    pub fn checkpoint_path(&self) -> Option<&std::path::Path> {
        self.checkpoint.as_ref().map(KeyCheckpoint::path)
    }

    /// Fetches the next rows into `fetched`, reconnecting as it must.
    fn fetch_more(&mut self) -> Result<(), PgSourceError> {
        let resumable = self.plan.key_column().is_some() || self.rows == 0;
        if !resumable {
            return self.fetch_once();
        }
        retrying(|| {
            let outcome = self.fetch_once();
            if outcome.as_ref().is_err_and(PgSourceError::is_transient) {
                self.client = None;
            }
            outcome
        })
        .map_err(|error| match error {
            PgSourceError::Query {
                what,
                message,
                lost,
            } if lost => PgSourceError::Query {
                what: format!("{what} (gave up reconnecting)"),
                message,
                lost,
            },
            other => other,
        })
    }

    /// One FETCH, declaring the cursor first on a new connection.
    fn fetch_once(&mut self) -> Result<(), PgSourceError> {
        let client = match &mut self.client {
            Some(client) if !client.is_closed() => client,
            _ => {
                if self.plan.key_column().is_none() && self.rows > 0 {
                    return Err(PgSourceError::Query {
                        what: "the cursor".to_owned(),
                        message: format!(
                            "the connection dropped after {} rows, and a source without \
                             `key` cannot resume",
                            self.rows
                        ),
                        lost: false,
                    });
                }
                self.declared = false;
                self.client.insert(connect(&self.connection)?)
            }
        };
        if !self.declared {
            declare(client, &self.plan, self.last_fetched.as_ref())?;
            self.declared = true;
        }
        self.last_statement = Instant::now();
        let rows = client
            .query(&format!("FETCH {} FROM {CURSOR}", self.fetch), &[])
            .map_err(|error| PgSourceError::query("the cursor", &error))?;
        let count = rows.len();
        for row in rows {
            self.rows += 1;
            let key = self.plan.key_of(&row);
            if let (Some(last), Some(key), Some(column)) =
                (&self.last_fetched, &key, self.plan.key_column())
            {
                if last == key {
                    return Err(PgSourceError::DuplicateKey {
                        column: column.name.clone(),
                        value: key_text(key),
                    });
                }
            }
            let origin = self.origin(key.as_ref());
            let data = match self.plan.convert(&row) {
                Ok(value) if self.plan.key_column().is_none() || key.is_some() => {
                    RawData::Value(value)
                }
                Ok(_) => RawData::Unreadable(format!(
                    "the key column `{}` is null or unreadable; expected every row to have \
                     a key",
                    self.plan.key_column().map_or("", |k| k.name.as_str())
                )),
                Err(error) => RawData::Unreadable(error.to_string()),
            };
            if key.is_some() {
                self.last_fetched.clone_from(&key);
            }
            self.fetched.push_back((Raw { data, origin }, key));
        }
        if count < self.fetch {
            self.exhausted = true;
            // Every row is fetched: a failed COMMIT of a read-only transaction loses
            // nothing.
            if let Some(mut client) = self.client.take() {
                let _ = client.batch_execute("COMMIT");
            }
        }
        Ok(())
    }

    /// Keeps an open transaction from the server's idle timeout while rows already
    /// fetched are handed out slowly (the runtime's source guard calls `next` every
    /// half timeout under back pressure): a statement once half the timeout has
    /// passed. A failure only drops the connection; the next fetch reconnects.
    fn keep_alive(&mut self) {
        let (Some(idle), Some(client)) = (self.idle, &mut self.client) else {
            return;
        };
        if !self.declared || self.last_statement.elapsed() < idle / 2 {
            return;
        }
        self.last_statement = Instant::now();
        if client.batch_execute("SELECT 1").is_err() {
            self.client = None;
        }
    }

    fn origin(&self, key: Option<&Value>) -> Origin {
        let key = match (key, self.plan.key_column()) {
            (Some(value), Some(column)) => format!("{}={}", column.name, key_text(value)),
            _ => format!("row {}", self.rows),
        };
        Origin::row(Arc::clone(&self.name), key)
    }
}

/// Begins the read-only snapshot and declares the cursor after `after`.
fn declare(client: &mut Client, plan: &Plan, after: Option<&Value>) -> Result<(), PgSourceError> {
    let lost = |error: postgres::Error| PgSourceError::query("the cursor", &error);
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .map_err(lost)?;
    let declare = format!(
        "DECLARE {CURSOR} NO SCROLL CURSOR FOR {}",
        plan.cursor_sql(after.is_some())
    );
    match after {
        Some(key) => client.execute(&declare, &[&key_text(key)]),
        None => client.execute(&declare, &[]),
    }
    .map_err(lost)?;
    Ok(())
}

impl Source for PgSource {
    type Item = Raw;

    fn next(&mut self) -> Option<Raw> {
        self.keep_alive();
        loop {
            if let Some((raw, key)) = self.fetched.pop_front() {
                self.pending.push_back(key);
                return Some(raw);
            }
            if self.exhausted || self.stopped {
                return None;
            }
            let failed = match self.checkpoint.as_ref().and_then(|c| c.error.clone()) {
                Some(error) => Err(PgSourceError::Checkpoint {
                    path: self.checkpoint_path().map(Into::into).unwrap_or_default(),
                    message: error,
                }),
                None => self.fetch_more(),
            };
            if let Err(error) = failed {
                // After the rows fetched before the error, in order.
                self.stopped = true;
                let after = match (&self.last_fetched, self.plan.key_column()) {
                    (Some(key), Some(column)) => format!("after {}={}", column.name, key_text(key)),
                    _ => format!("after row {}", self.rows),
                };
                let raw = Raw {
                    data: RawData::Unreadable(format!("reading stopped: {error}")),
                    origin: Origin::row(Arc::clone(&self.name), after),
                };
                self.fetched.push_back((raw, None));
            }
        }
    }

    fn ack(&mut self, position: u64) {
        let mut last = None;
        while self.first < position {
            match self.pending.pop_front() {
                Some(key) => {
                    if key.is_some() {
                        last = key;
                    }
                    self.first += 1;
                }
                None => break,
            }
        }
        if let (Some(key), Some(checkpoint)) = (last, &mut self.checkpoint) {
            checkpoint.acknowledge(key);
        }
    }

    fn idle_timeout(&self) -> Option<Duration> {
        self.idle
    }
}

impl Drop for PgSource {
    fn drop(&mut self) {
        if let Some(checkpoint) = &mut self.checkpoint {
            checkpoint.flush();
        }
    }
}
