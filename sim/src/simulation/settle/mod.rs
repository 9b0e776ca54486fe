//! Settling time per phase, as docs/scenarios.md "Reports" defines `settle_s`.
//!
//! A run is cut at the moments its load changes: its start, and each phase's `at`
//! (for a phase with a `stall`, the moment the stall ends, since nothing can settle
//! while a stage is held). For each span between two such moments (or the last one and
//! the end of the run) that lasts at least [`MIN_SPAN_S`], the settling time is the
//! time from the span's start until the [`WINDOW_S`] moving throughput first reaches
//! [`SHARE`] of the best [`WINDOW_S`] throughput within the span. `settle_s` is the
//! longest over the spans.
//!
//! Two readings of the rule, so that a change is judged only on what follows it:
//!
//! - the moving window never reaches back before its span's start: during a span's
//!   first [`WINDOW_S`] it is shorter, as it is at the run's start, so the load before
//!   a change counts neither for nor against the settling after it;
//! - the best is taken over full windows inside the span, so a burst of one tick (the
//!   backlog a stall released, say) does not set a bar no 30 s can reach.

use brigade_scenario::Scenario;

use super::TickSample;

/// The moving window, seconds.
pub(crate) const WINDOW_S: f64 = 30.0;

/// The share of the span's best throughput that counts as settled.
pub(crate) const SHARE: f64 = 0.95;

/// Spans shorter than this are not judged, seconds.
pub(crate) const MIN_SPAN_S: f64 = 60.0;

/// Slack for comparing tick times, which are sums of floating-point windows.
const EPSILON: f64 = 1e-9;

/// The moments `scenario`'s load changes, ascending and without repeats: 0, then each
/// phase's `at`, or the end of its stall.
pub(crate) fn load_changes(scenario: &Scenario) -> Vec<f64> {
    let mut moments: Vec<f64> = std::iter::once(0.0)
        .chain(scenario.phases.iter().map(|phase| {
            phase
                .stall
                .map_or(phase.at_s, |(_, stall_s)| phase.at_s + stall_s)
        }))
        .collect();
    moments.sort_by(f64::total_cmp);
    moments.dedup_by(|a, b| (*a - *b).abs() < EPSILON);
    moments
}

/// The longest settling time over the spans between `changes` (ascending, see
/// [`load_changes`]) in `series`, which ends at `end_s`; 0 if no span is judged.
pub(crate) fn settle_s(series: &[TickSample], changes: &[f64], end_s: f64) -> f64 {
    changes
        .iter()
        .enumerate()
        .filter_map(|(i, &from)| {
            let to = changes.get(i + 1).copied().unwrap_or(end_s).min(end_s);
            (to - from >= MIN_SPAN_S - EPSILON).then(|| span_settle_s(series, from, to))
        })
        .fold(0.0, f64::max)
}

/// The settling time of the span from `from` to `to`: the first tick whose moving
/// throughput (never reaching back before `from`) is at least [`SHARE`] of the best
/// full window ending within the span, less `from`.
fn span_settle_s(series: &[TickSample], from: f64, to: f64) -> f64 {
    let ticks: Vec<&TickSample> = series
        .iter()
        .filter(|tick| tick.at_s - tick.window_s >= from - EPSILON && tick.at_s <= to + EPSILON)
        .collect();
    let moving = moving_throughput(&ticks, from);
    let best = moving
        .iter()
        .filter(|m| m.full)
        .map(|m| m.rate)
        .fold(0.0, f64::max);
    moving
        .iter()
        .find(|m| m.rate >= SHARE * best)
        .map_or(0.0, |m| m.at_s - from)
}

/// The moving throughput at one tick.
struct Moving {
    at_s: f64,
    /// Records per second over the window.
    rate: f64,
    /// The window is a full [`WINDOW_S`] long.
    full: bool,
}

/// The throughput over the trailing [`WINDOW_S`] at every tick of `ticks`, the window
/// starting no earlier than `from`.
fn moving_throughput(ticks: &[&TickSample], from: f64) -> Vec<Moving> {
    let mut start = 0;
    let mut completed = 0u64;
    ticks
        .iter()
        .map(|tick| {
            completed += tick.completed;
            while ticks[start].at_s - ticks[start].window_s < tick.at_s - WINDOW_S - EPSILON {
                completed -= ticks[start].completed;
                start += 1;
            }
            let window_from = ticks[start].at_s - ticks[start].window_s;
            let seconds = (tick.at_s - window_from).max(EPSILON);
            Moving {
                at_s: tick.at_s,
                rate: completed as f64 / seconds,
                full: tick.at_s - from.max(window_from) >= WINDOW_S - EPSILON,
            }
        })
        .collect()
}

#[cfg(test)]
mod test;
