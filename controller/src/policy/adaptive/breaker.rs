//! Rule 0, the breaker: a stage that is stuck (a locked database) gets no new calls,
//! probes for the end of the lock, and after it keeps room for the calls the lock left
//! hung. `DESIGN.md` beside this file says why each figure is what it is, and
//! `EXPERIMENTS.md` how they were measured.

use super::{clamp_workers, Adaptive, Tuning, View};
use crate::{Action, Decision, StageKnobs, StageStats};

/// A tripped breaker: the stage was stuck, new calls are held back.
#[derive(Clone, Copy, Debug)]
pub(super) struct Trip {
    /// The stage's count when it tripped, given back when it recovers.
    pub(super) restore: usize,
    /// Its median call time before it got stuck.
    usual_call_s: Option<f64>,
    /// The rate limit in force before it tripped, given back when it recovers.
    rate_limit: Option<f64>,
    /// Seconds since it tripped.
    open_s: f64,
    /// Where the breaker stands.
    phase: TripPhase,
}

/// The states of a tripped breaker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum TripPhase {
    /// Workers retire as their hung calls end.
    Open,
    /// One call per `tuning.probe_s` may start (a rate limit of `probe_rate` records per
    /// second), each one a probe; a fresh worker is added for a probe only when every
    /// worker is in a call. `spared_s` is `open_s` when the last probe's worker was
    /// added or found waiting.
    HalfOpen { spared_s: f64, probe_rate: f64 },
    /// Calls end again, but those that started during the lock still hang and hold
    /// workers: the pool is its count from before the lock plus `hung` more. `since_s`
    /// is `open_s` when the stage recovered.
    Draining { since_s: f64, hung: usize },
}

impl Adaptive {
    /// Rule 0: the breaker. A stage whose workers are all busy and finish nothing
    /// (a locked database) gets no new calls: every one would hang too, and hung calls
    /// outlive the lock. Open, its workers retire as their hung calls end; half-open,
    /// one call may start at once and then one every `tuning.probe_s`, each one a probe;
    /// once calls end as they did before, it gets its workers back, plus one for every
    /// call still hung, until those end.
    pub(super) fn breaker(
        &mut self,
        i: usize,
        stats: &StageStats,
        knobs: &StageKnobs,
        view: &View,
        tick: u64,
        window_s: f64,
    ) -> Vec<Decision> {
        let state = &mut self.stages[i];
        let finished = stats.records_out as f64 / window_s;
        // With nothing waiting there is no call to hold back: the workers left in
        // calls at the end of a drain, say.
        let stuck = state.intake > 0.0
            && !state.giant_pending
            && stats.queue.mean_depth >= 1.0
            && view.utilisation >= self.tuning.stuck_busy
            && finished < self.tuning.stuck * state.intake_before_stuck();
        state.stuck_streak = if stuck { state.stuck_streak + 1 } else { 0 };
        if let Some(trip) = state.trip.as_mut() {
            trip.open_s += window_s;
            if let TripPhase::Draining { since_s, hung } = trip.phase {
                if state.stuck_streak < self.tuning.stuck_ticks {
                    return self
                        .drain(i, stats, tick, since_s, hung)
                        .into_iter()
                        .collect();
                }
            } else {
                return self.recover(i, stats, knobs, view, tick, finished);
            }
        }
        if state.stuck_streak < self.tuning.stuck_ticks {
            return Vec::new();
        }
        state.stuck_streak = 0;
        let intake = state.intake_before_stuck();
        // Stuck again while draining: the count to give back is still the one from
        // before the first lock, not the one swollen by the calls it left hung.
        let restore = state.trip.map_or(view.workers, |trip| trip.restore);
        state.trip = Some(Trip {
            restore,
            usual_call_s: state.usual_call_s,
            rate_limit: knobs.rate_limit,
            open_s: 0.0,
            phase: TripPhase::Open,
        });
        state.probe = None;
        let reason = format!(
            "adaptive/breaker: {} is {:.0}% busy and finished {finished:.0} records/s \
             (it took {intake:.0}/s): stuck; open: workers retire as their calls end: {} → 1",
            stats.name,
            view.utilisation * 100.0,
            view.workers
        );
        self.force_resize(i, 1, tick, reason).into_iter().collect()
    }

    /// The breaker while open or half-open: recovers the stage once its calls end
    /// again; half-opens it after `tuning.first_probe_s`, and then finds a worker for a
    /// probe every `tuning.probe_s`.
    fn recover(
        &mut self,
        i: usize,
        stats: &StageStats,
        knobs: &StageKnobs,
        view: &View,
        tick: u64,
        finished: f64,
    ) -> Vec<Decision> {
        let tuning = &self.tuning;
        let trip = self.stages[i]
            .trip
            .as_mut()
            .expect("the breaker is tripped");
        // A call that ended in about its usual time did not hang; and a hung
        // call ends once, so more calls ending in a window than the workers held
        // before means some worker made several. Either way calls end again.
        let calls = &stats.service_time_us;
        let fastest_s = calls.min as f64 / 1e6;
        let unhung = calls.count > 0
            && trip
                .usual_call_s
                .is_some_and(|usual| fastest_s <= tuning.unhung_call * usual);
        if unhung || calls.count > trip.restore as u64 {
            let restore = trip.restore;
            let rate_limit = trip.rate_limit;
            // The probes' rate limit goes, unless the operator has set another since.
            let paced = match trip.phase {
                TripPhase::HalfOpen { probe_rate, .. } => knobs
                    .rate_limit
                    .is_some_and(|limit| (limit / probe_rate - 1.0).abs() < 1e-6),
                _ => false,
            };
            let hung = hung_calls(tuning, stats, trip.usual_call_s, 0.0);
            let since_s = trip.open_s;
            let held = if hung >= hung_step(tuning, restore) {
                trip.phase = TripPhase::Draining { since_s, hung };
                clamp_workers(&stats.workers, restore + hung)
            } else {
                self.stages[i].trip = None;
                restore
            };
            self.stages[i].probe = None;
            self.stages[i].stuck_streak = 0;
            let reason = format!(
                "adaptive/breaker: {} finished {finished:.0} records/s again, its \
                 fastest call in {:.1} ms; giving back its {restore} workers, plus one \
                 for each of the {hung} calls still hung: {} → {held}",
                stats.name,
                fastest_s * 1e3,
                view.workers
            );
            let mut out = Vec::new();
            if paced {
                out.push(Decision::new(
                    Action::SetRateLimit {
                        stage: i,
                        per_second: rate_limit,
                    },
                    format!(
                        "adaptive/breaker: {} calls end again: no more paced probes",
                        stats.name
                    ),
                ));
            }
            out.extend(self.force_resize(i, held, tick, reason));
            return out;
        }
        let open_s = trip.open_s;
        let in_calls = stats.running_calls_s.len() >= stats.workers.live;
        match trip.phase {
            TripPhase::Open if open_s >= tuning.first_probe_s => {
                // One call (one batch) per `probe_s`, the first at once.
                let per_second = knobs.batch_size.max(1) as f64 / tuning.probe_s;
                trip.phase = TripPhase::HalfOpen {
                    spared_s: open_s,
                    probe_rate: per_second,
                };
                let to = stats.workers.live + usize::from(in_calls);
                let reason = format!(
                    "adaptive/breaker: {} still stuck after {open_s:.0} s ({finished:.0} \
                     records/s); half-open: one call every {:.0} s, each a probe, \
                     made by a worker whose hung call ended or by one fresh worker: {} → {to}",
                    stats.name, tuning.probe_s, view.workers
                );
                let mut out = vec![Decision::new(
                    Action::SetRateLimit {
                        stage: i,
                        per_second: Some(per_second),
                    },
                    format!(
                        "adaptive/breaker: {} half-open: one call every {:.0} s",
                        stats.name, tuning.probe_s
                    ),
                )];
                out.extend(self.force_resize(i, to, tick, reason));
                out
            }
            TripPhase::HalfOpen {
                spared_s,
                probe_rate,
            } if open_s - spared_s >= tuning.probe_s => {
                trip.phase = TripPhase::HalfOpen {
                    spared_s: open_s,
                    probe_rate,
                };
                if !in_calls {
                    // A worker whose hung call ended waits for the next probe.
                    return Vec::new();
                }
                let to = stats.workers.live + 1;
                let reason = format!(
                    "adaptive/breaker: {} still stuck after {open_s:.0} s, every worker in \
                     a call: one fresh worker for the next probe: {} → {to}",
                    stats.name, view.workers
                );
                self.force_resize(i, to, tick, reason).into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// The breaker after a recovery: the pool keeps room for the calls that started
    /// during the lock and still hang (`hung` of them when it last moved), and lets go
    /// once fewer than a step of them are left.
    fn drain(
        &mut self,
        i: usize,
        stats: &StageStats,
        tick: u64,
        since_s: f64,
        hung: usize,
    ) -> Option<Decision> {
        let tuning = &self.tuning;
        let trip = self.stages[i]
            .trip
            .as_mut()
            .expect("the breaker is tripped");
        let restore = trip.restore;
        let now_hung = hung_calls(tuning, stats, trip.usual_call_s, trip.open_s - since_s);
        let step = hung_step(tuning, restore);
        let held = stats.workers.target;
        if now_hung < step {
            self.stages[i].trip = None;
            let reason = format!(
                "adaptive/breaker: {} has {now_hung} calls left hung from the lock; \
                 counting them back into its {restore} workers: {held} → {restore}",
                stats.name
            );
            return self.force_resize(i, restore, tick, reason);
        }
        if now_hung.abs_diff(hung) < step {
            return None;
        }
        trip.phase = TripPhase::Draining {
            since_s,
            hung: now_hung,
        };
        let to = clamp_workers(&stats.workers, restore + now_hung);
        let reason = format!(
            "adaptive/breaker: {} has {now_hung} calls hung since the lock (the longest \
             for {:.0} s); its {restore} workers plus one for each: {held} → {to}",
            stats.name,
            stats.running_calls_s.first().copied().unwrap_or(0.0)
        );
        self.force_resize(i, to, tick, reason)
    }
}

/// Calls of a stage running for longer than `since_s` (they started before then) and
/// far past its usual call time: hung behind a lock that has since ended.
fn hung_calls(
    tuning: &Tuning,
    stats: &StageStats,
    usual_call_s: Option<f64>,
    since_s: f64,
) -> usize {
    let past = since_s.max(usual_call_s.map_or(0.0, |usual| tuning.unhung_call * usual));
    stats
        .running_calls_s
        .iter()
        .take_while(|&&age| age > past)
        .count()
}

/// The least change in hung calls the pool follows, for a stage of `restore` workers.
fn hung_step(tuning: &Tuning, restore: usize) -> usize {
    ((restore as f64 * tuning.hung_step).ceil() as usize).max(1)
}
