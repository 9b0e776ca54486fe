//! Rules 4 and 5: deeper queues, within the memory budget, behind a bottleneck that
//! cannot grow (a buffer for later) and behind a stage whose heavy-tailed calls back
//! records up (bursts).

use super::{cores_full, StageState, Tuning, View};
use crate::units::format_bytes;
use crate::{Action, Decision, Snapshot, StageStats};

/// Rule 4: a bottleneck capped at its knee, with the source held back behind
/// it and the budget mostly free, gets a deeper input queue: the source keeps
/// reading, and the backlog is there to be worked off when the load drops (a phase
/// of lighter input, the end of a slow spell). It trades latency for throughput,
/// bounded by 60% of the budget and 30 s of the stage's work.
pub(super) fn buffer(
    tuning: &Tuning,
    b: usize,
    stats: &StageStats,
    view: &View,
    snapshot: &Snapshot,
) -> Option<Decision> {
    let budget = snapshot.global.memory_budget?;
    let capacity = snapshot.knobs.stages.get(b)?.queue_capacity;
    let held_back = snapshot.stages.first().is_some_and(|first| {
        first.queue.mean_depth >= tuning.buffer_full * first.queue.capacity as f64
    });
    let room = (snapshot.global.inflight_bytes_max as f64) < tuning.buffer_room * budget as f64;
    // On full cores, the stages upstream would fill the deeper queue with cores taken
    // from the bottleneck: the buffer would cost throughput now. The first stage's
    // queue is filled by the source alone.
    if view.fill < tuning.buffer_full
        || !held_back
        || !room
        || (b > 0 && cores_full(tuning, snapshot))
    {
        return None;
    }
    let size = stats.record_size_bytes.mean.max(1.0);
    deeper_queue(
        tuning,
        stats,
        capacity,
        budget,
        tuning.max_buffer_s,
        snapshot.window_s,
    )
    .map(|to| {
        Decision::new(
            Action::SetQueueCapacity {
                stage: b,
                capacity: to,
            },
            format!(
                "adaptive/buffer: {} cannot keep up and holds the source back, with {} of \
                 the {} budget in flight; its queue {capacity} → {to} records (≤ {:.0}% of \
                 the budget at {}, ≤ {:.0} s of its work)",
                stats.name,
                format_bytes(snapshot.global.inflight_bytes_max),
                format_bytes(budget),
                tuning.buffer_share * 100.0,
                format_bytes(size as u64),
                tuning.max_buffer_s
            ),
        )
    })
}

/// Rule 5: bursts. With no stage short of workers, a queue that fills at some
/// moment of every window holds the source back all the same: calls far slower
/// than their median (a heavy tail, a batch after a stall) back the records up behind
/// them, and the source waits while the stage keeps up on average. The queue of
/// the last stage where that happens (the one the others back up behind) gets 4×
/// deeper, to hold `tuning.burst_s` of the stage's work at most, within the budget.
pub(super) fn absorb(
    tuning: &Tuning,
    states: &[StageState],
    snapshot: &Snapshot,
) -> Option<Decision> {
    let budget = snapshot.global.memory_budget?;
    let first = snapshot.stages.first()?;
    let held_back = first.queue.capacity > 0 && first.queue.max_depth >= first.queue.capacity;
    let room = (snapshot.global.inflight_bytes_max as f64) < tuning.buffer_room * budget as f64;
    if !held_back || !room {
        return None;
    }
    let (b, stats) = snapshot
        .stages
        .iter()
        .enumerate()
        .rev()
        .find(|(i, _)| states[*i].full_streak >= tuning.burst_windows)?;
    let capacity = snapshot.knobs.stages.get(b)?.queue_capacity;
    deeper_queue(
        tuning,
        stats,
        capacity,
        budget,
        tuning.burst_s,
        snapshot.window_s,
    )
    .map(|to| {
        Decision::new(
            Action::SetQueueCapacity {
                stage: b,
                capacity: to,
            },
            format!(
                "adaptive/burst: {}'s queue filled at some moment of each of the last \
                 {} windows while no stage was short of workers, and the source waited; \
                 its queue {capacity} → {to} records (≤ {:.0} s of its work)",
                stats.name, states[b].full_streak, tuning.burst_s
            ),
        )
    })
}

/// A queue of `capacity` records in front of `stats`' stage made 4× deeper, but to
/// hold no more than `work_s` seconds of what the stage delivered this window (a
/// window of `window_s`), nor records of its mean weight past 60% of `budget`;
/// `None` when that is no deeper.
fn deeper_queue(
    tuning: &Tuning,
    stats: &StageStats,
    capacity: usize,
    budget: u64,
    work_s: f64,
    window_s: f64,
) -> Option<usize> {
    let size = stats.record_size_bytes.mean.max(1.0);
    let most = ((budget as f64 * tuning.buffer_share / size) as usize)
        .min((stats.observed_rate(window_s) * work_s) as usize)
        .min(tuning.max_queue);
    let to = (capacity * tuning.deeper).min(most);
    (to > capacity).then_some(to)
}
