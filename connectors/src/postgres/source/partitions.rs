//! `partitions = N > 1`: the key's range split into pages read in parallel.
//!
//! The source is a planner: at open it asks the server for the integer key's least
//! and greatest values and the row count (after the checkpointed key), and yields
//! [`Page`]s of the range, each wide enough to hold about `fetch` rows if the keys are
//! spread evenly. A stage named `read` (whose most workers is `partitions`, tuned by
//! the controller like any stage) reads each page on its worker's own connection,
//! `SELECT … WHERE key BETWEEN first AND last ORDER BY key`, and emits its rows. A
//! page's position is acknowledged once every row of it has finished, and the
//! checkpoint is the last key of the last page of the contiguous acknowledged run.
//!
//! Each page is read in its own statement (its own snapshot): rows whose key lies in
//! the planned range are read once; rows added after planning above the greatest key
//! are left for the next run.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use brigade_runtime::{Source, Weigh};
use postgres::{Client, Config, Statement};
use serde_json::Value;

use super::checkpoint::KeyCheckpoint;
use super::connect::{config, connect, retrying};
use super::error::PgSourceError;
use super::query::{key_text, Plan};
use super::PgSourceConfig;
use crate::{Origin, Record};

/// A slice of an integer key's range, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Page {
    /// The least key of the page.
    pub first: i64,
    /// The greatest key of the page.
    pub last: i64,
}

impl Weigh for Page {
    fn weigh(&self) -> u64 {
        size_of::<Page>() as u64
    }
}

/// The source of a partitioned read: the key range's pages, in order.
pub struct PagePlanner {
    /// The next page's first key (i128: the range may end at `i64::MAX`).
    next: i128,
    /// The greatest key, `None` when there is nothing to read.
    end: Option<i128>,
    /// Keys per page.
    width: i128,
    /// Per returned position not yet acknowledged, from `first`: its page's last key.
    pending: VecDeque<i64>,
    first: u64,
    checkpoint: Option<KeyCheckpoint>,
}

impl PagePlanner {
    /// Connects, describes the query, loads the checkpoint in `checkpoint` (a
    /// directory and how often to write) if given, and plans the pages after it.
    pub fn open(
        source: &PgSourceConfig,
        checkpoint: Option<(&std::path::Path, Duration)>,
    ) -> Result<PagePlanner, PgSourceError> {
        let mut client = connect(&config(&source.url)?)?;
        let plan = Plan::describe(&mut client, source)?;
        let key = plan
            .key_column()
            .ok_or_else(|| PgSourceError::Shape("partitions need `key`".to_owned()))?;
        let (checkpoint, after) = match checkpoint {
            Some((dir, interval)) => {
                let (store, after) = KeyCheckpoint::open(dir, &source.id(), &key.name, interval)?;
                (Some(store), after)
            }
            None => (None, None),
        };
        let after = match &after {
            Some(after) => Some(key_text(after).parse::<i64>().map_err(|_| {
                PgSourceError::Checkpoint {
                    path: checkpoint
                        .as_ref()
                        .map(|c| c.path().to_owned())
                        .unwrap_or_default(),
                    message: format!("`after` is {after}; expected an integer key"),
                }
            })?),
            None => None,
        };
        let bounds = client
            .query_one(&plan.bounds_sql(), &[&after])
            .map_err(|error| PgSourceError::query("the key range", &error))?;
        let read = |error: postgres::Error| PgSourceError::query("the key range", &error);
        let nulls: i64 = bounds.try_get(3).map_err(read)?;
        if nulls > 0 {
            return Err(PgSourceError::Shape(format!(
                "{nulls} rows have a null key `{}`, which no page holds; expected every row \
                 to have a key (filter them out in the query, or read without partitions \
                 to dead-letter them)",
                key.name
            )));
        }
        let least: Option<i64> = bounds.try_get(0).map_err(read)?;
        let greatest: Option<i64> = bounds.try_get(1).map_err(read)?;
        let count: i64 = bounds.try_get(2).map_err(read)?;
        let (next, end, width) = match (least, greatest) {
            (Some(least), Some(greatest)) => {
                let span = i128::from(greatest) - i128::from(least) + 1;
                let rows = i128::from(count.max(1));
                let width = ((span * source.fetch as i128 + rows - 1) / rows).max(1);
                (i128::from(least), Some(i128::from(greatest)), width)
            }
            _ => (0, None, 1),
        };
        Ok(PagePlanner {
            next,
            end,
            width,
            pending: VecDeque::new(),
            first: 0,
            checkpoint,
        })
    }

    /// The checkpoint file, if the source keeps one.
    pub fn checkpoint_path(&self) -> Option<&std::path::Path> {
        self.checkpoint.as_ref().map(KeyCheckpoint::path)
    }
}

impl Source for PagePlanner {
    type Item = Page;

    fn next(&mut self) -> Option<Page> {
        let end = self.end?;
        if self.next > end {
            return None;
        }
        let last = (self.next + self.width - 1).min(end);
        // Both ends lie within the i64 key's least..=greatest.
        let page = Page {
            first: i64::try_from(self.next).ok()?,
            last: i64::try_from(last).ok()?,
        };
        self.next = last + 1;
        self.pending.push_back(page.last);
        Some(page)
    }

    fn ack(&mut self, position: u64) {
        let mut last = None;
        while self.first < position {
            let Some(key) = self.pending.pop_front() else {
                break;
            };
            last = Some(key);
            self.first += 1;
        }
        if let (Some(key), Some(checkpoint)) = (last, &mut self.checkpoint) {
            checkpoint.acknowledge(Value::from(key));
        }
    }
}

impl Drop for PagePlanner {
    fn drop(&mut self) {
        if let Some(checkpoint) = &mut self.checkpoint {
            checkpoint.flush();
        }
    }
}

/// One `read` worker's connection, reading whole pages.
pub struct PageReader {
    connection: Config,
    plan: Plan,
    name: Arc<str>,
    client: Option<(Client, Statement)>,
}

impl PageReader {
    /// Connects and prepares the page query.
    pub fn open(source: &PgSourceConfig) -> Result<PageReader, PgSourceError> {
        let connection = config(&source.url)?;
        let mut client = connect(&connection)?;
        let plan = Plan::describe(&mut client, source)?;
        let statement = client
            .prepare(&plan.page_sql())
            .map_err(|error| PgSourceError::query("the page query", &error))?;
        Ok(PageReader {
            connection,
            plan,
            name: Arc::from(source.name()),
            client: Some((client, statement)),
        })
    }

    /// Every row of `page` as records in key order, reconnecting (and reading the
    /// page again from its start) when the connection drops. A row that does not
    /// convert fails the page, naming the row and column.
    pub fn read(&mut self, page: Page) -> Result<Vec<Record>, PgSourceError> {
        let rows = retrying(|| {
            let outcome = self.query(page);
            if outcome.as_ref().is_err_and(PgSourceError::is_transient) {
                self.client = None;
            }
            outcome
        })?;
        let column = self.plan.key_column().map_or("", |key| key.name.as_str());
        let mut records = Vec::with_capacity(rows.len());
        let mut previous: Option<Value> = None;
        for row in rows {
            let key = self.plan.key_of(&row).unwrap_or(Value::Null);
            if previous.as_ref() == Some(&key) {
                return Err(PgSourceError::DuplicateKey {
                    column: column.to_owned(),
                    value: key_text(&key),
                });
            }
            let origin = Origin::row(
                Arc::clone(&self.name),
                format!("{column}={}", key_text(&key)),
            );
            let value = self
                .plan
                .convert(&row)
                .map_err(|error| PgSourceError::Value {
                    column: column.to_owned(),
                    message: format!("row {origin}: {error}"),
                })?;
            records.push(Record { value, origin });
            previous = Some(key);
        }
        Ok(records)
    }

    fn query(&mut self, page: Page) -> Result<Vec<postgres::Row>, PgSourceError> {
        let (client, statement) = match &mut self.client {
            Some((client, statement)) if !client.is_closed() => (client, statement),
            _ => {
                let mut client = connect(&self.connection)?;
                let statement = client
                    .prepare(&self.plan.page_sql())
                    .map_err(|error| PgSourceError::query("the page query", &error))?;
                let (client, statement) = self.client.insert((client, statement));
                (client, statement)
            }
        };
        client
            .query(&*statement, &[&page.first, &page.last])
            .map_err(|error| PgSourceError::query(&format!("the page {page}"), &error))
    }
}

impl std::fmt::Display for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..={}", self.first, self.last)
    }
}
