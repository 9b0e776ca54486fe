//! The Redis Streams source: one consumer of a group over one or more streams.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brigade_runtime::Source;
use redis::Value;

use super::consumer::ConsumerName;
use super::group::Group;
use super::janitor::{retire, Janitor};
use super::link::Link;
use super::reply::{streams, Entry};
use super::stats::GroupStats;
use super::{expand_streams, RedisConnectorError, RedisSourceConfig};
use crate::raw::{Raw, RawData};
use crate::{Origin, StreamEntry};

const DEFAULT_BLOCK: Duration = Duration::from_millis(500);
const DEFAULT_COUNT: usize = 100;
const DEFAULT_CLAIM_IDLE: Duration = Duration::from_secs(30);
const DEFAULT_MAX_DELIVERIES: u64 = 5;
/// How often the group's figures are read.
const FIGURES_EVERY: Duration = Duration::from_secs(1);
/// The longest wait between two attempts to reach Redis again.
const MOST_BACKOFF: Duration = Duration::from_secs(2);
/// The most ids one `XACK` or `XCLAIM` names.
const IDS_PER_COMMAND: usize = 1000;
/// How long acknowledgements still owed are tried when the source is dropped.
const LAST_ACKS_PATIENCE: Duration = Duration::from_secs(10);
/// The longest a read waits for new entries while records are in flight, so that the
/// runtime's acknowledgements reach Redis soon.
const BLOCK_IN_FLIGHT: Duration = Duration::from_millis(20);
/// After a repeated crash, how long each suspect entry has on its own before the next
/// is handed out (see [`RedisSource::read_history`])...
const SUSPECT_PAUSE: Duration = Duration::from_millis(300);
/// ...and the first, while the pipeline's workers start (exec processes).
const FIRST_SUSPECT_PAUSE: Duration = Duration::from_secs(2);

/// Reads a consumer group's entries as [`Raw`] records; see the module docs.
pub struct RedisSource {
    link: Link,
    group: Group,
    /// Holds the consumer id file's lock while the source lives.
    _name: ConsumerName,
    field: Option<String>,
    block: Duration,
    count: usize,
    stop_when_idle: Option<Duration>,
    /// Entries read and not yet returned: (stream index, entry).
    ready: VecDeque<(usize, Entry)>,
    /// While reading this consumer's own pending entries: each stream's last id read,
    /// `None` once its history is done.
    history: Option<Vec<Option<String>>>,
    /// Whether the own pending entries were already delivered more than once (the
    /// process crashed with them twice): then they are handed out one at a time.
    suspects: bool,
    /// When the last entry of the history was handed out.
    last_history: Option<Instant>,
    /// Entries returned and not acknowledged, in position order from `first_position`.
    in_flight: VecDeque<(usize, String)>,
    first_position: u64,
    /// Ids the runtime acknowledged and Redis has not yet been told, by stream.
    owed: Vec<Vec<String>>,
    janitor: Janitor,
    heartbeat_every: Duration,
    heartbeat_due: Instant,
    figures_due: Instant,
    groups_ready: bool,
    last_entry: Instant,
    backoff: Duration,
    in_outage: bool,
    stats: Arc<GroupStats>,
}

impl RedisSource {
    /// Checks `config`, takes the consumer's name (from `consumer`, or the id file in
    /// `state_dir`, relative to `base`), and connects; the group is created on the
    /// first read. An unreachable Redis is not an error here: the source waits for it.
    pub fn open(
        config: &RedisSourceConfig,
        base: &Path,
    ) -> Result<RedisSource, RedisConnectorError> {
        let names = expand_streams(config.stream.as_deref(), &config.streams)
            .map_err(RedisConnectorError::Config)?;
        let settings = Settings::of(config)?;
        let name = match &config.consumer {
            Some(name) => ConsumerName::given(name),
            None => {
                let dir = config
                    .state_dir
                    .clone()
                    .unwrap_or_else(|| "brigade-state".into());
                ConsumerName::claim(&base.join(dir), &config.group)?
            }
        };
        let read_timeout = settings.block + Duration::from_secs(10);
        let link = Link::new(&config.url, read_timeout)?;
        let streams: Vec<Arc<str>> = names.iter().map(|name| Arc::from(name.as_str())).collect();
        let count = streams.len();
        let group = Group {
            streams,
            name: config.group.clone(),
            consumer: name.as_str().to_owned(),
            start: settings.start,
            claim_idle: settings.claim_idle,
            max_deliveries: settings.max_deliveries,
            dead_letter_stream: config
                .dead_letter_stream
                .clone()
                .unwrap_or_else(|| format!("{}:dead", config.group)),
        };
        let now = Instant::now();
        let heartbeat_every = (settings.claim_idle / 3).max(Duration::from_millis(20));
        Ok(RedisSource {
            stats: Arc::new(GroupStats::new(&group.consumer)),
            janitor: Janitor::new(count, settings.claim_idle),
            link,
            group,
            _name: name,
            field: config.field.clone(),
            block: settings.block,
            count: settings.count,
            stop_when_idle: config.stop_when_idle.map(|span| span.0),
            ready: VecDeque::new(),
            history: Some(vec![Some("0".to_owned()); count]),
            suspects: false,
            last_history: None,
            in_flight: VecDeque::new(),
            first_position: 0,
            owed: vec![Vec::new(); count],
            heartbeat_every,
            heartbeat_due: now + heartbeat_every,
            figures_due: now,
            groups_ready: false,
            last_entry: now,
            backoff: Duration::from_millis(50),
            in_outage: false,
        })
    }

    /// The group's figures, updated as the source runs.
    pub fn stats(&self) -> Arc<GroupStats> {
        Arc::clone(&self.stats)
    }

    /// This consumer's name in the group.
    pub fn consumer(&self) -> &str {
        &self.group.consumer
    }

    /// What is owed to Redis, and due: the group's creation, acknowledgements, the
    /// heartbeat of held entries, the group's figures.
    fn upkeep(&mut self) -> Result<(), RedisConnectorError> {
        if !self.groups_ready {
            self.group.create(&mut self.link)?;
            self.groups_ready = true;
        }
        self.pay_acks()?;
        if Instant::now() >= self.heartbeat_due {
            self.heartbeat()?;
            self.heartbeat_due = Instant::now() + self.heartbeat_every;
        }
        if Instant::now() >= self.figures_due {
            self.group.refresh(&mut self.link, &self.stats)?;
            self.figures_due = Instant::now() + FIGURES_EVERY;
        }
        Ok(())
    }

    /// One fetch of entries: this consumer's own pending entries first, then the
    /// janitor's claims, then new entries.
    fn fetch(&mut self) -> Result<(), RedisConnectorError> {
        self.upkeep()?;
        if self.history.is_some() {
            return self.read_history();
        }
        if self.janitor.is_due() {
            let in_flight = &self.in_flight;
            self.janitor.sweep(
                &mut self.link,
                &self.group,
                &self.stats,
                self.count,
                &mut self.ready,
                |stream, id| in_flight.iter().any(|(s, i)| *s == stream && i == id),
            )?;
            if !self.ready.is_empty() {
                return Ok(());
            }
        }
        self.read_new()
    }

    /// Whether [`upkeep`](Self::upkeep) has something to do.
    fn upkeep_due(&self) -> bool {
        let now = Instant::now();
        now >= self.figures_due
            || now >= self.heartbeat_due
            || !self.groups_ready
            || self.owed.iter().any(|ids| !ids.is_empty())
    }

    /// After a failed call: a group Redis lost is created again; a lost connection is
    /// waited out (with backoff); anything else fails the source.
    fn handle(&mut self, outcome: Result<(), RedisConnectorError>) {
        match outcome {
            Ok(()) => self.recovered(),
            Err(RedisConnectorError::Redis { source, .. }) if source.code() == Some("NOGROUP") => {
                // The group (or the stream) was deleted, or Redis lost it: again.
                self.groups_ready = false;
            }
            Err(error) => self.recover(error),
        }
    }

    /// Reads the next page of this consumer's own pending entries (`XREADGROUP … 0`),
    /// first moving those delivered too often to the dead-letter stream.
    ///
    /// Redis counts a delivery for every entry a read returns. When the own pending
    /// entries were already delivered twice (this consumer crashed twice while they
    /// were in flight, perhaps because one of them kills it), they are suspects: read
    /// one at a time, each given [`SUSPECT_PAUSE`] on its own (the first
    /// [`FIRST_SUSPECT_PAUSE`]), so that only the entry in flight at the next crash is
    /// counted again, and those before it are acknowledged meanwhile. (A record slower
    /// than that through the pipeline may have its crash counted against the next.)
    /// Otherwise a page is `count` entries.
    fn read_history(&mut self) -> Result<(), RedisConnectorError> {
        let Some(cursors) = self.history.as_ref() else {
            return Ok(());
        };
        if cursors.iter().all(|cursor| cursor.as_deref() == Some("0")) {
            let mut most = 0;
            for index in 0..self.group.streams.len() {
                let consumer = self.group.consumer.clone();
                let retired = retire(
                    &mut self.link,
                    &self.group,
                    &self.stats,
                    index,
                    0,
                    Some(&consumer),
                )?;
                most = most.max(retired.most_deliveries);
            }
            self.suspects = most >= 2;
        }
        let open: Vec<(usize, String)> = cursors
            .iter()
            .enumerate()
            .filter_map(|(index, cursor)| Some((index, cursor.clone()?)))
            .collect();
        if open.is_empty() {
            self.history = None;
            return Ok(());
        }
        if self.suspects {
            if let Some(last) = self.last_history {
                let pause = if self.stats.read.load(Relaxed) == 1 {
                    FIRST_SUSPECT_PAUSE
                } else {
                    SUSPECT_PAUSE
                };
                std::thread::sleep(pause.saturating_sub(last.elapsed()));
            }
        }
        let count = if self.suspects { 1 } else { self.count };
        let reply = self.xreadgroup(&open, None, count)?;
        let mut cursors = vec![None; self.group.streams.len()];
        for (index, entries) in reply {
            let Some(last) = entries.last() else {
                continue;
            };
            cursors[index] = Some(last.0.clone());
            for entry in entries {
                match entry.1 {
                    Some(_) => self.ready.push_back((index, entry)),
                    // Trimmed from the stream since it was delivered: nothing to do.
                    None => self.owed[index].push(entry.0),
                }
            }
        }
        self.history = Some(cursors);
        Ok(())
    }

    /// Waits up to `block` for new entries (`XREADGROUP … >`), or only
    /// [`BLOCK_IN_FLIGHT`] while records are in flight, so that their
    /// acknowledgements are not held up.
    fn read_new(&mut self) -> Result<(), RedisConnectorError> {
        let open: Vec<(usize, String)> = (0..self.group.streams.len())
            .map(|index| (index, ">".to_owned()))
            .collect();
        let block = if self.in_flight.is_empty() {
            self.block
        } else {
            self.block.min(BLOCK_IN_FLIGHT)
        };
        for (index, entries) in self.xreadgroup(&open, Some(block), self.count)? {
            self.ready
                .extend(entries.into_iter().map(|entry| (index, entry)));
        }
        Ok(())
    }

    /// `XREADGROUP` of at most `count` entries per stream over `(stream index, id)`,
    /// blocking if `block`; the entries by stream index.
    fn xreadgroup(
        &mut self,
        from: &[(usize, String)],
        block: Option<Duration>,
        count: usize,
    ) -> Result<Vec<(usize, Vec<Entry>)>, RedisConnectorError> {
        let group = &self.group;
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(&group.name)
            .arg(&group.consumer)
            .arg("COUNT")
            .arg(count);
        if let Some(block) = block {
            command.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        command.arg("STREAMS");
        for (index, _) in from {
            command.arg(&*group.streams[*index]);
        }
        for (_, id) in from {
            command.arg(id);
        }
        let reply: Value = self.link.run(
            || format!("reading group `{}`", group.name),
            |connection| command.query(connection),
        )?;
        Ok(streams(&reply)
            .into_iter()
            .filter_map(|(name, entries)| {
                let index = group.streams.iter().position(|s| **s == *name)?;
                Some((index, entries))
            })
            .collect())
    }

    /// Sends the acknowledgements owed, per stream, in one pipelined round trip. On
    /// failure they stay owed.
    fn pay_acks(&mut self) -> Result<(), RedisConnectorError> {
        if self.owed.iter().all(Vec::is_empty) {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (index, ids) in self.owed.iter().enumerate() {
            for chunk in ids.chunks(IDS_PER_COMMAND) {
                pipe.cmd("XACK")
                    .arg(&*self.group.streams[index])
                    .arg(&self.group.name)
                    .arg(chunk);
            }
        }
        let acked: Vec<i64> = self.link.run(
            || format!("acknowledging entries of group `{}`", self.group.name),
            |connection| pipe.query(connection),
        )?;
        GroupStats::add(&self.stats.acked, acked.iter().sum::<i64>().max(0) as u64);
        self.owed.iter_mut().for_each(Vec::clear);
        Ok(())
    }

    /// Resets the idle time of every entry this consumer holds (`XCLAIM … JUSTID`, which
    /// does not count a delivery), so the janitors of others leave them alone.
    fn heartbeat(&mut self) -> Result<(), RedisConnectorError> {
        let mut held: Vec<Vec<&str>> = vec![Vec::new(); self.group.streams.len()];
        let ids = self.in_flight.iter().map(|(s, id)| (*s, id.as_str()));
        let waiting = self.ready.iter().map(|(s, entry)| (*s, entry.0.as_str()));
        for (index, id) in ids.chain(waiting) {
            held[index].push(id);
        }
        if held.iter().all(Vec::is_empty) {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (index, ids) in held.iter().enumerate() {
            for chunk in ids.chunks(IDS_PER_COMMAND) {
                pipe.cmd("XCLAIM")
                    .arg(&*self.group.streams[index])
                    .arg(&self.group.name)
                    .arg(&self.group.consumer)
                    .arg(0)
                    .arg(chunk)
                    .arg("JUSTID")
                    .ignore();
            }
        }
        self.link.run(
            || {
                format!(
                    "renewing the entries consumer `{}` holds",
                    self.group.consumer
                )
            },
            |connection| pipe.query::<()>(connection),
        )
    }

    /// The record of an entry of stream `index`.
    fn raw(&self, index: usize, id: String, fields: Vec<(String, Vec<u8>)>) -> Raw {
        let origin = Origin::StreamEntry(Arc::new(StreamEntry {
            stream: Arc::clone(&self.group.streams[index]),
            id,
        }));
        let data = match &self.field {
            Some(wanted) => match fields.into_iter().find(|(name, _)| name == wanted) {
                Some((_, bytes)) => RawData::Line(bytes),
                None => RawData::Unreadable(format!("the entry has no field `{wanted}`")),
            },
            None => {
                let mut object = serde_json::Map::new();
                let mut bad = None;
                for (name, bytes) in fields {
                    match String::from_utf8(bytes) {
                        Ok(text) => {
                            object.insert(name, serde_json::Value::String(text));
                        }
                        Err(error) => {
                            bad = Some(format!(
                                "field `{name}` is not UTF-8 (at byte {})",
                                error.utf8_error().valid_up_to()
                            ));
                        }
                    }
                }
                match bad {
                    Some(why) => RawData::Unreadable(why),
                    None => RawData::Value(serde_json::Value::Object(object)),
                }
            }
        };
        Raw { data, origin }
    }

    /// After a failed call: a lost connection is waited out (with backoff); anything
    /// else fails the source.
    fn recover(&mut self, error: RedisConnectorError) {
        self.stats.note_error(&error);
        if !error.is_transient() {
            // The runtime reports a panic of the source as the run's failure, with
            // this message, and drains what was read.
            panic!("redis source: {error}");
        }
        if !self.in_outage {
            self.in_outage = true;
            self.stats.connected.store(false, Relaxed);
        }
        std::thread::sleep(self.backoff);
        self.backoff = (self.backoff * 2).min(MOST_BACKOFF);
    }

    fn recovered(&mut self) {
        self.backoff = Duration::from_millis(50);
        if self.in_outage {
            self.in_outage = false;
            GroupStats::add(&self.stats.reconnects, 1);
            // An outage is not idleness: a batch job waits a whole period after it.
            self.last_entry = Instant::now();
        }
        self.stats.connected.store(true, Relaxed);
    }
}

impl Source for RedisSource {
    type Item = Raw;

    fn next(&mut self) -> Option<Raw> {
        loop {
            if self.upkeep_due() && !self.ready.is_empty() {
                let outcome = self.upkeep();
                self.handle(outcome);
                continue;
            }
            if let Some((index, (id, fields))) = self.ready.pop_front() {
                self.in_flight.push_back((index, id.clone()));
                if self.history.is_some() {
                    self.last_history = Some(Instant::now());
                }
                GroupStats::add(&self.stats.read, 1);
                self.last_entry = Instant::now();
                return Some(self.raw(index, id, fields.unwrap_or_default()));
            }
            if let Some(limit) = self.stop_when_idle {
                if !self.in_outage && self.history.is_none() && self.last_entry.elapsed() >= limit {
                    return None;
                }
            }
            let outcome = self.fetch();
            self.handle(outcome);
        }
    }

    fn ack(&mut self, position: u64) {
        let done = position.saturating_sub(self.first_position) as usize;
        for (index, id) in self.in_flight.drain(..done.min(self.in_flight.len())) {
            self.owed[index].push(id);
        }
        self.first_position = self.first_position.max(position);
        if let Err(error) = self.pay_acks() {
            // Owed still: paid on the next read, or when the source is dropped.
            self.stats.note_error(&error);
        }
    }

    /// The group's figures as last read (about once a second): what the Snapshot,
    /// the dashboard and `/metrics` show, and what the recommendation of processes is
    /// made from.
    fn group(&self) -> Option<brigade_controller::GroupStats> {
        let figures = self.stats.figures();
        Some(brigade_controller::GroupStats {
            lag: figures.lag,
            pending_own: figures.pending_own,
            pending_others: figures.pending_others,
            consumers: figures.consumers_alive,
            claims: figures.claimed,
            arrival_per_s: figures.arrival_per_s,
        })
    }
}

impl Drop for RedisSource {
    /// Pays the acknowledgements still owed, trying for a while if Redis is away.
    fn drop(&mut self) {
        let deadline = Instant::now() + LAST_ACKS_PATIENCE;
        while let Err(error) = self.pay_acks() {
            self.stats.note_error(&error);
            if !error.is_transient() || Instant::now() >= deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The source's settings with their defaults.
pub(super) struct Settings {
    pub(super) block: Duration,
    pub(super) count: usize,
    pub(super) claim_idle: Duration,
    pub(super) max_deliveries: u64,
    pub(super) start: String,
}

impl Settings {
    pub(super) fn of(config: &RedisSourceConfig) -> Result<Settings, RedisConnectorError> {
        let error = |message: &str| Err(RedisConnectorError::Config(message.to_owned()));
        let start = config.start.clone().unwrap_or_else(|| "0".to_owned());
        if start != "0" && start != "$" {
            return error("`start` must be \"0\" (the whole stream) or \"$\" (new entries)");
        }
        if config.group.trim().is_empty() {
            return error("`group` is empty");
        }
        if config
            .consumer
            .as_ref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return error("`consumer` is empty");
        }
        let count = config.count.unwrap_or(DEFAULT_COUNT);
        if count == 0 {
            return error("`count` must be at least 1");
        }
        let max_deliveries = config.max_deliveries.unwrap_or(DEFAULT_MAX_DELIVERIES);
        if max_deliveries == 0 {
            return error("`max_deliveries` must be at least 1");
        }
        let block = config.block.map_or(DEFAULT_BLOCK, |span| span.0);
        if block.is_zero() {
            return error("`block` must be above zero (0 would block forever)");
        }
        let claim_idle = config.claim_idle.map_or(DEFAULT_CLAIM_IDLE, |span| span.0);
        if claim_idle < Duration::from_millis(10) {
            return error("`claim_idle` must be at least 10ms");
        }
        Ok(Settings {
            block,
            count,
            claim_idle,
            max_deliveries,
            start,
        })
    }
}
