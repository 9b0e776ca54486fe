//! The janitor: claims the entries of consumers idle longer than `claim_idle`
//! (`XAUTOCLAIM`), and moves entries delivered `max_deliveries` times to the
//! dead-letter stream.
//!
//! An over-delivered entry is first claimed by this consumer with `XCLAIM` and the
//! same idle time, so that of several janitors at most one takes it; then it is added
//! to the dead-letter stream and acknowledged in one `MULTI` transaction, so it is
//! never acknowledged without its dead letter. (A crash between the claim and the
//! transaction leaves it pending: it is dead-lettered later, by whoever claims it.)

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use redis::Value;

use super::group::Group;
use super::link::Link;
use super::reply::{entries, int, items, text, Entry};
use super::stats::GroupStats;
use super::RedisConnectorError;

/// The most pending entries looked at for over-delivery per stream and sweep.
const PENDING_PAGE: usize = 100;

/// When the next sweep is due, and where each stream's claiming goes on from.
#[derive(Debug)]
pub(crate) struct Janitor {
    every: Duration,
    due: Instant,
    cursors: Vec<String>,
}

impl Janitor {
    /// A janitor for `streams` streams, sweeping every quarter of `claim_idle` (at
    /// least every 5 s, at most every 50 ms), the first sweep at once.
    pub(crate) fn new(streams: usize, claim_idle: Duration) -> Janitor {
        Janitor {
            every: (claim_idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(5)),
            due: Instant::now(),
            cursors: vec!["0-0".to_owned(); streams],
        }
    }

    /// Whether a sweep is due.
    pub(crate) fn is_due(&self) -> bool {
        Instant::now() >= self.due
    }

    /// One sweep of every stream: over-delivered entries dead-lettered, then up to
    /// `count` idle entries per stream claimed into `claimed` (stream index, entry),
    /// leaving out those `is_ours` says this consumer already holds. The next sweep is
    /// due at once while a stream has more to claim.
    pub(crate) fn sweep(
        &mut self,
        link: &mut Link,
        group: &Group,
        stats: &GroupStats,
        count: usize,
        claimed: &mut VecDeque<(usize, Entry)>,
        is_ours: impl Fn(usize, &str) -> bool,
    ) -> Result<(), RedisConnectorError> {
        let idle = group.claim_idle_ms();
        for (index, stream) in group.streams.iter().enumerate() {
            retire(link, group, stats, index, idle, None)?;
            let reply: Value = link.run(
                || format!("claiming idle entries of stream `{stream}`"),
                |connection| {
                    redis::cmd("XAUTOCLAIM")
                        .arg(&**stream)
                        .arg(&group.name)
                        .arg(&group.consumer)
                        .arg(idle)
                        .arg(&self.cursors[index])
                        .arg("COUNT")
                        .arg(count)
                        .query(connection)
                },
            )?;
            let parts = items(&reply);
            self.cursors[index] = parts.first().and_then(text).unwrap_or_else(|| "0-0".into());
            let mut taken = 0;
            for entry in parts.get(1).map(entries).unwrap_or_default() {
                if entry.1.is_some() && !is_ours(index, &entry.0) {
                    taken += 1;
                    claimed.push_back((index, entry));
                }
            }
            GroupStats::add(&stats.claimed, taken);
        }
        self.due = if self.cursors.iter().any(|cursor| cursor != "0-0") {
            Instant::now()
        } else {
            Instant::now() + self.every
        };
        Ok(())
    }
}

/// What [`retire`] did and saw.
#[derive(Debug, Default)]
pub(crate) struct Retired {
    /// Entries moved to the dead-letter stream.
    pub moved: u64,
    /// The most deliveries of an entry left pending (0 if none).
    pub most_deliveries: u64,
}

/// Dead-letters the entries of stream `index` pending at least `idle` ms (with
/// `owner` only, if given) and delivered `max_deliveries` times or more.
///
/// For a restarted consumer's own entries (`owner` given) with `max_deliveries` of 3
/// or more, only the newest over-delivered entry is dead-lettered: the entries reach
/// that count while handed out one at a time (see the source's suspects), so the
/// newest is the one in flight at the crash; an older one is there only because its
/// acknowledgement was still on its way. It is set back to one delivery short, and
/// tried alone again.
pub(crate) fn retire(
    link: &mut Link,
    group: &Group,
    stats: &GroupStats,
    index: usize,
    idle: u64,
    owner: Option<&str>,
) -> Result<Retired, RedisConnectorError> {
    let stream = &*group.streams[index];
    let mut start = "-".to_owned();
    let mut retired = Retired::default();
    let mut over = Vec::new();
    loop {
        let reply: Value = link.run(
            || format!("reading the pending entries of stream `{stream}`"),
            |connection| {
                let mut command = redis::cmd("XPENDING");
                command
                    .arg(stream)
                    .arg(&group.name)
                    .arg("IDLE")
                    .arg(idle)
                    .arg(&start)
                    .arg("+")
                    .arg(PENDING_PAGE);
                if let Some(owner) = owner {
                    command.arg(owner);
                }
                command.query(connection)
            },
        )?;
        let rows = items(&reply);
        for row in rows {
            let [id, consumer, _, deliveries] = items(row) else {
                continue;
            };
            let (Some(id), Some(consumer), Some(deliveries)) =
                (text(id), text(consumer), int(deliveries))
            else {
                continue;
            };
            start = format!("({id}");
            let count = deliveries.max(0) as u64;
            if count < group.max_deliveries {
                retired.most_deliveries = retired.most_deliveries.max(count);
            } else {
                over.push((id, consumer, deliveries));
            }
        }
        if rows.len() < PENDING_PAGE {
            break;
        }
    }
    let spared = if owner.is_some() && group.max_deliveries >= 3 {
        over.len().saturating_sub(1)
    } else {
        0
    };
    if spared > 0 {
        let again = group.max_deliveries - 1;
        let mut pipe = redis::pipe();
        for (id, _, _) in &over[..spared] {
            pipe.cmd("XCLAIM")
                .arg(stream)
                .arg(&group.name)
                .arg(&group.consumer)
                .arg(0)
                .arg(id)
                .arg("RETRYCOUNT")
                .arg(again)
                .arg("JUSTID")
                .ignore();
        }
        link.run(
            || format!("setting back the deliveries of entries of stream `{stream}`"),
            |connection| pipe.query::<()>(connection),
        )?;
        retired.most_deliveries = retired.most_deliveries.max(again);
    }
    for (id, consumer, deliveries) in &over[spared..] {
        if dead_letter(link, group, index, id, consumer, *deliveries, idle)? {
            retired.moved += 1;
            GroupStats::add(&stats.dead_lettered, 1);
        }
    }
    Ok(retired)
}

/// Claims entry `id` (if still idle `idle` ms), adds it with its history to the
/// dead-letter stream and acknowledges it. False if another consumer took it first.
fn dead_letter(
    link: &mut Link,
    group: &Group,
    index: usize,
    id: &str,
    owner: &str,
    deliveries: i64,
    idle: u64,
) -> Result<bool, RedisConnectorError> {
    let stream = &*group.streams[index];
    let claimed: Value = link.run(
        || format!("claiming entry {id} of stream `{stream}` to dead-letter it"),
        |connection| {
            redis::cmd("XCLAIM")
                .arg(stream)
                .arg(&group.name)
                .arg(&group.consumer)
                .arg(idle)
                .arg(id)
                .query(connection)
        },
    )?;
    let Some((_, fields)) = entries(&claimed).into_iter().next() else {
        return Ok(false);
    };
    let fields: serde_json::Map<String, serde_json::Value> = fields
        .unwrap_or_default()
        .into_iter()
        .map(|(name, bytes)| {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            (name, serde_json::Value::String(text))
        })
        .collect();
    let entry = serde_json::Value::Object(fields).to_string();
    link.run(
        || {
            format!(
                "moving entry {id} of stream `{stream}` to dead-letter stream `{}`",
                group.dead_letter_stream
            )
        },
        |connection| {
            redis::pipe()
                .atomic()
                .cmd("XADD")
                .arg(&group.dead_letter_stream)
                .arg("*")
                .arg("stream")
                .arg(stream)
                .arg("id")
                .arg(id)
                .arg("group")
                .arg(&group.name)
                .arg("consumer")
                .arg(owner)
                .arg("deliveries")
                .arg(deliveries)
                .arg("dead_lettered_by")
                .arg(&group.consumer)
                .arg("entry")
                .arg(entry)
                .ignore()
                .cmd("XACK")
                .arg(stream)
                .arg(&group.name)
                .arg(id)
                .ignore()
                .query::<()>(connection)
        },
    )?;
    Ok(true)
}
