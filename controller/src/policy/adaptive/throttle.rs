//! Throttling as a knee signal: a stage whose calls fail transiently and are retried
//! (an endpoint's 429s, a database's deadlocks and serialization failures) in at
//! least `tuning.throttle_share` of its calls, `tuning.throttle_windows` windows in a
//! row, is past its knee, whatever its busy time says (retry backoff counts as busy,
//! so a throttled stage looks short of workers). It does not grow; it steps back toward the workers it had in its last
//! window without throttling (halfway, geometrically, so that a knee between the two
//! counts is found in a few steps), or, throttled at that count or below it, down
//! by `tuning.throttle_decrease`; and it stays capped there for
//! `tuning.throttle_cooldown_s` of snapshot time after its last throttled window.
//! Then it may probe one worker more, and a probe that passes another cooldown
//! unthrottled lifts the cap, as the open-failure ceiling does.

use super::{clamp_workers, current_workers, Adaptive, Tuning};
use crate::{Decision, Snapshot, StageStats};

/// What the rule remembers of a stage.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Throttle {
    /// Workers in the stage's last settled window without throttling.
    clean: Option<usize>,
    /// Throttled windows in a row.
    streak: u32,
    /// The cap in force, if any.
    ceiling: Option<Ceiling>,
}

/// A throttled stage's cap.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Ceiling {
    /// Most workers the policy may set.
    workers: usize,
    /// The fewest workers seen throttled since the cap was set: the knee lies
    /// below. While the cap is more than one under it, the knee is still sought.
    throttled: usize,
    /// Snapshot time at which the cap relaxes.
    until_s: f64,
    /// The cap is one above the workers that ran unthrottled: a probe.
    probing: bool,
}

/// The share of a window's attempts that were retried after a transient failure,
/// when there were enough retries to tell throttling from a stray error.
fn throttled_share(tuning: &Tuning, stats: &StageStats) -> Option<f64> {
    let attempts = stats.service_time_us.count + stats.retries;
    let share = stats.retries as f64 / attempts.max(1) as f64;
    (stats.retries >= tuning.throttle_retries && share >= tuning.throttle_share).then_some(share)
}

/// The count halfway (geometrically) between `low` and `high`, strictly between
/// them where there is room.
fn between(low: usize, high: usize) -> usize {
    (((low * high) as f64).sqrt().round() as usize).clamp(low + 1, high.max(low + 2) - 1)
}

impl Throttle {
    /// Takes in a window of the stage, which has `workers` and whose figures count
    /// (`settled`) or not yet (a change is too recent), ending at `at_s`. Returns the
    /// count to step down to, if the stage is throttled and has more than that.
    fn update(
        &mut self,
        tuning: &Tuning,
        stats: &StageStats,
        workers: usize,
        settled: bool,
        at_s: f64,
    ) -> Option<usize> {
        let until_s = at_s + tuning.throttle_cooldown_s;
        self.streak = if throttled_share(tuning, stats).is_some() {
            self.streak + 1
        } else {
            0
        };
        if self.streak == 0 {
            if settled {
                self.clean = Some(workers);
            }
            let Some(cap) = &mut self.ceiling else {
                return None;
            };
            if settled && workers >= cap.workers && cap.throttled > workers + 1 {
                // Unthrottled at the cap, and room below the throttled count: the
                // knee lies between, try halfway.
                cap.workers = between(workers, cap.throttled);
            } else if at_s >= cap.until_s {
                self.ceiling = (!cap.probing).then_some(Ceiling {
                    workers: cap.workers + 1,
                    throttled: cap.throttled,
                    until_s,
                    probing: true,
                });
            }
            return None;
        }
        if self.streak < tuning.throttle_windows {
            // One window could be chance: a stray burst of errors.
            return None;
        }
        let least = stats.workers.min.max(1);
        if !settled {
            // Retries of calls begun before the last change still show in the
            // window after it: hold the stage, and let a settled window say more.
            let cap = self.ceiling.map_or(workers, |cap| cap.workers.min(workers));
            self.ceiling = Some(Ceiling {
                workers: cap,
                throttled: self.ceiling.map_or(workers + 1, |cap| cap.throttled),
                until_s,
                probing: false,
            });
            return None;
        }
        let to = match self.clean.filter(|&clean| clean < workers) {
            // The knee lies between the last clean count and this one.
            Some(clean) => between(clean, workers).min(workers - 1),
            // Throttled at its clean count: the endpoint's capacity dropped.
            None => {
                self.clean = None;
                (workers as f64 * tuning.throttle_decrease).floor() as usize
            }
        }
        .max(least);
        self.ceiling = Some(Ceiling {
            workers: to,
            throttled: workers,
            until_s,
            probing: false,
        });
        (to < workers).then_some(to)
    }

    /// The cap in force, if any.
    pub(super) fn cap(&self) -> Option<usize> {
        self.ceiling.map(|cap| cap.workers)
    }
}

impl Adaptive {
    /// The throttle rule's phase: takes in every stage's window, steps throttled
    /// stages down, and returns each stage's cap in force. Pinned stages and those
    /// the breaker holds are left alone.
    pub(super) fn throttles(
        &mut self,
        snapshot: &Snapshot,
        out: &mut Vec<Decision>,
    ) -> Vec<Option<usize>> {
        let mut caps = Vec::with_capacity(snapshot.stages.len());
        for (i, stats) in snapshot.stages.iter().enumerate() {
            let state = &mut self.stages[i];
            if stats.workers.pinned || state.trip.is_some() {
                caps.push(None);
                continue;
            }
            let workers = current_workers(snapshot, i);
            let settled = snapshot.tick > state.changed_at + self.tuning.settle_ticks;
            let step = state
                .throttle
                .update(&self.tuning, stats, workers, settled, snapshot.at_s);
            caps.push(state.throttle.cap());
            let Some(to) = step.map(|to| clamp_workers(&stats.workers, to)) else {
                continue;
            };
            if to >= workers {
                continue;
            }
            // The step it took into the throttling is judged already.
            state.probe = None;
            let share = throttled_share(&self.tuning, stats).unwrap_or_default();
            let reason = format!(
                "adaptive/throttle: {} retried {:.0}% of its calls after transient failures \
                 (throttled: past its knee); {workers} → {to} workers, capped there for {:.0} s",
                stats.name,
                share * 100.0,
                self.tuning.throttle_cooldown_s
            );
            out.extend(self.force_resize(i, to, snapshot.tick, reason));
        }
        caps
    }
}

/// Bounds each stage's cap in `caps` (the open-failure ceiling's) by its throttle
/// cap, so that every rule that asks whether a stage may grow sees both.
pub(super) fn merge_caps(caps: &mut [Option<usize>], throttle_caps: &[Option<usize>]) {
    for (cap, throttled) in caps.iter_mut().zip(throttle_caps) {
        *cap = match (*cap, *throttled) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}
