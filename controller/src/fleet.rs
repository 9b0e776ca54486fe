//! The fleet's shared limit: how many writers a sink shared by several processes
//! gets in all, decided in one place.
//!
//! When several processes write to one sink, each one's writers slow the others'
//! calls. If every process tuned its own writers from its own throughput, one
//! process's growth would look, to the others, like a sink that got slower, and they
//! would shrink, then grow again when it shrank: a tug of war. So the fleet's writers
//! to a shared sink are sized by one process only (the leader the fleet elects), on
//! the fleet's total throughput, and every process holds an equal share of the total
//! ([`shares`]); each process's own policy still tunes its other stages.
//!
//! [`FleetLimit`] is that decision, pure like every policy: it is handed the
//! processes' figures for the shared stage each window ([`ShareFigures`]) and answers
//! the total. It climbs in steps big enough to be judged (half as many again), judged
//! on the fleet's throughput over a few windows: a step that pays its share (as the
//! adaptive policy's knee: doubling must bring +15%) is kept and the next taken; one
//! that pays less settles in the middle; one that pays nothing goes back, and tries
//! fewer writers than before, which are kept if they lose nothing. Settled, it holds until the fleet's throughput
//! moves by a fifth (the sink or the load changed), then probes once up and, if that
//! does not pay, down. Throttling (retried calls: deadlocks, 429s) is the sink saying
//! the total is past its knee: the limit steps back at once and keeps under it.
//!
//! How many processes? [`Capacity`] estimates what one process can finish per second
//! from its Snapshots, and [`recommend`] turns that and its group's arrival rate and
//! lag ([`GroupStats`]) into the processes that keep the lag from growing and those
//! that drain it within a set time: what an autoscaler acts on.
//!
//! ```
//! use brigade_controller::fleet::{shares, FleetLimit, ShareFigures};
//!
//! let mut fleet = FleetLimit::new(3, 64);
//! assert_eq!(fleet.limit(), 3);
//! // Each tick, each process's figures for the shared stage:
//! let figures = [ShareFigures { records_out: 900, window_s: 1.0, calls: 90, retries: 0 }; 3];
//! fleet.decide(&figures);
//! assert_eq!(shares(fleet.limit(), 3).iter().sum::<usize>(), fleet.limit());
//! ```

use std::collections::VecDeque;

use crate::{GroupStats, Snapshot};

/// One process's figures for the shared stage over the last window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ShareFigures {
    /// Records it wrote.
    pub records_out: u64,
    /// The window's length, seconds.
    pub window_s: f64,
    /// Calls it made (first attempts and retries).
    pub calls: u64,
    /// Calls repeated after a transient failure (a deadlock, a 429).
    pub retries: u64,
}

/// The total split as evenly as it goes: the first `total % processes` processes hold
/// one writer more; every process at least one.
pub fn shares(total: usize, processes: usize) -> Vec<usize> {
    let processes = processes.max(1);
    let total = total.max(processes);
    (0..processes)
        .map(|i| total / processes + usize::from(i < total % processes))
        .collect()
}

/// Windows skipped after a change, while the writers start and the queues refill.
const SETTLING_WINDOWS: usize = 1;
/// Windows averaged to judge a step.
const JUDGED_WINDOWS: usize = 3;
/// A step up pays if the throughput grows by at least this share of the step's
/// proportion: the adaptive policy's knee (doubling must bring +15%).
const KNEE: f64 = 0.15;
/// A gain or loss smaller than this is noise.
const MEASURABLE: f64 = 0.03;
/// Settled, a move of the throughput by this share starts a new search.
const DRIFT: f64 = 0.2;
/// Retried calls above this share of a window's calls: the sink is throttling.
const THROTTLED: f64 = 0.02;

/// Where the search is.
#[derive(Clone, Debug, PartialEq)]
enum State {
    /// Measuring the throughput at the limit in force before stepping.
    Baseline,
    /// A step from `from` to the limit in force is being measured; `before` is the
    /// throughput at `from`; `climbed`: `from` was reached by a step up that paid, so
    /// fewer writers than it are known to cost throughput.
    Probe {
        from: usize,
        before: f64,
        up: bool,
        climbed: bool,
    },
    /// Holding the limit; `rate` is the throughput measured there.
    Settled { rate: f64 },
}

/// The fleet-wide limit on a shared sink's writers, as the leader decides it.
#[derive(Clone, Debug)]
pub struct FleetLimit {
    processes: usize,
    max_total: usize,
    limit: usize,
    /// No step goes to this many or more: a step there did not pay, or throttled.
    ceiling: usize,
    state: State,
    /// Windows seen since the last change.
    windows: usize,
    /// Their throughputs, past the settling ones.
    rates: Vec<f64>,
}

impl FleetLimit {
    /// A search for `processes` processes, starting at one writer each, never above
    /// `max_total` writers in all (at least one each); a fleet that grows or shrinks
    /// keeps the same most per process.
    pub fn new(processes: usize, max_total: usize) -> Self {
        let processes = processes.max(1);
        Self {
            processes,
            max_total: max_total.max(processes),
            limit: processes,
            ceiling: usize::MAX,
            state: State::Baseline,
            windows: 0,
            rates: Vec::new(),
        }
    }

    /// The total in force.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The fleet now has `processes` members (one joined, or left, or died): what
    /// was measured no longer holds, so the search starts again from the total in
    /// force (at least one writer each), under no ceiling.
    pub fn set_processes(&mut self, processes: usize) -> Option<(usize, String)> {
        let processes = processes.max(1);
        if processes == self.processes {
            return None;
        }
        let was = self.processes;
        self.max_total = self.max_total / was * processes;
        self.processes = processes;
        self.ceiling = usize::MAX;
        self.state = State::Baseline;
        let to = self.limit.max(processes).min(self.max_total);
        let why = format!("the fleet went from {was} to {processes} processes: measuring again");
        self.change(to, why.clone()).or(Some((to, why)))
    }

    /// Takes one window of every process's figures and returns the new total when it
    /// changes, with why.
    pub fn decide(&mut self, figures: &[ShareFigures]) -> Option<(usize, String)> {
        let window_s = figures.iter().map(|f| f.window_s).fold(0.0, f64::max);
        if window_s <= 0.0 {
            return None;
        }
        let rate = figures.iter().map(|f| f.records_out).sum::<u64>() as f64 / window_s;
        let calls: u64 = figures.iter().map(|f| f.calls).sum();
        let retries: u64 = figures.iter().map(|f| f.retries).sum();
        self.windows += 1;
        if calls > 0 && retries as f64 > THROTTLED * calls as f64 && self.limit > self.processes {
            return self.throttled(retries, calls);
        }
        if self.windows <= SETTLING_WINDOWS {
            return None;
        }
        self.rates.push(rate);
        if let State::Settled { rate: settled } = self.state {
            // Settled, every window counts: a sustained move starts a new search.
            let recent = &self.rates[self.rates.len().saturating_sub(JUDGED_WINDOWS)..];
            let mean = recent.iter().sum::<f64>() / recent.len() as f64;
            if recent.len() == JUDGED_WINDOWS && (mean / settled - 1.0).abs() > DRIFT {
                self.ceiling = usize::MAX;
                return self.step_up(mean, false, "the fleet's throughput moved: probing up");
            }
            return None;
        }
        if self.rates.len() < JUDGED_WINDOWS {
            return None;
        }
        let measured = self.rates.iter().sum::<f64>() / self.rates.len() as f64;
        match self.state.clone() {
            State::Baseline => self.step_up(measured, false, "growing the fleet's writers"),
            State::Probe {
                from,
                before,
                up,
                climbed,
            } => self.judge(from, before, up, climbed, measured),
            State::Settled { .. } => None,
        }
    }

    /// Judges the step from `from` (throughput `before`) to the limit in force
    /// (throughput `after`).
    fn judge(
        &mut self,
        from: usize,
        before: f64,
        up: bool,
        climbed: bool,
        after: f64,
    ) -> Option<(usize, String)> {
        let to = self.limit;
        let gain = if before > 0.0 {
            after / before - 1.0
        } else {
            0.0
        };
        if up {
            let proportion = to as f64 / from as f64 - 1.0;
            if gain >= KNEE * proportion {
                return self.step_up(after, true, "the last step paid");
            }
            self.ceiling = to;
            if gain >= MEASURABLE {
                let middle = ((from * to) as f64).sqrt().round() as usize;
                let middle = middle.clamp(from, to);
                return self.settle(middle, after, "the last step paid less than its share");
            }
            if !climbed && before >= after {
                // Nothing gained up from a count not known to be under the knee:
                // perhaps it is past it; try fewer.
                return self.step_down(from, before, "the step up did not pay");
            }
            return self.settle(from, before, "the last step did not pay");
        }
        // Down: fewer writers losing no measurable throughput are better.
        if gain >= -MEASURABLE {
            if to > self.processes {
                return self.step_down(to, after, "fewer writers lost nothing");
            }
            return self.settle(to, after, "at one writer per process");
        }
        self.settle(from, before, "fewer writers lost throughput")
    }

    fn step_up(&mut self, rate: f64, climbed: bool, why: &str) -> Option<(usize, String)> {
        let from = self.limit;
        let to = (from + (from / 2).max(1)).min(self.max_total);
        let to = to.min(self.ceiling.saturating_sub(1)).max(from);
        if to == from {
            return self.settle(from, rate, "at the most writers the fleet may have");
        }
        self.state = State::Probe {
            from,
            before: rate,
            up: true,
            climbed,
        };
        self.change(to, format!("{why}: {from} → {to} writers in all"))
    }

    fn step_down(&mut self, from: usize, rate: f64, why: &str) -> Option<(usize, String)> {
        let to = (from - (from / 3).max(1)).max(self.processes);
        if to == from {
            return self.settle(from, rate, why);
        }
        self.ceiling = self.ceiling.min(from + 1);
        self.state = State::Probe {
            from,
            before: rate,
            up: false,
            climbed: false,
        };
        self.change(to, format!("{why}: {from} → {to} writers in all"))
    }

    fn settle(&mut self, at: usize, rate: f64, why: &str) -> Option<(usize, String)> {
        self.state = State::Settled { rate };
        self.change(at, format!("{why}: settled at {at} writers in all"))
    }

    fn throttled(&mut self, retries: u64, calls: u64) -> Option<(usize, String)> {
        let from = self.limit;
        let to = (from - (from / 3).max(1)).max(self.processes);
        self.ceiling = from;
        self.state = State::Baseline;
        let why = format!(
            "the sink throttled ({retries} of {calls} calls retried): {from} → {to} writers in all"
        );
        // Back at the new limit, measure before anything else.
        self.change(to, why)
    }

    fn change(&mut self, to: usize, why: String) -> Option<(usize, String)> {
        self.windows = 0;
        self.rates.clear();
        if to == self.limit {
            return None;
        }
        self.limit = to;
        Some((to, why))
    }
}

/// Windows [`Capacity`] averages over.
const CAPACITY_WINDOWS: usize = 30;
/// [`Capacity`] extrapolates from a stage this busy at the least: below it, a
/// process's spare time says little about what it could do.
const LEAST_BUSY: f64 = 0.25;

/// What one process can finish per second, estimated from its recent windows: the
/// sink's rate divided by its busiest stage's utilisation (a process whose busiest
/// stage works half the time could do about twice as much), averaged over the last
/// 30 windows.
#[derive(Clone, Debug, Default)]
pub struct Capacity {
    estimates: VecDeque<f64>,
}

impl Capacity {
    /// Takes one window.
    pub fn observe(&mut self, snapshot: &Snapshot) {
        let Some(sink) = snapshot.stages.last() else {
            return;
        };
        if snapshot.window_s <= 0.0 || sink.records_out == 0 {
            return;
        }
        let busiest = snapshot
            .stages
            .iter()
            .map(|stage| stage.utilisation())
            .fold(0.0, f64::max);
        let rate = sink.records_out as f64 / snapshot.window_s;
        if self.estimates.len() == CAPACITY_WINDOWS {
            self.estimates.pop_front();
        }
        self.estimates
            .push_back(rate / busiest.clamp(LEAST_BUSY, 1.0));
    }

    /// Records per second this process could finish, if it has seen any.
    pub fn per_s(&self) -> Option<f64> {
        (!self.estimates.is_empty())
            .then(|| self.estimates.iter().sum::<f64>() / self.estimates.len() as f64)
    }
}

/// The time a recommendation's drain figure gives the lag by default: ten minutes.
pub const DRAIN_WITHIN_S: f64 = 600.0;

/// How many processes a group's backlog calls for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recommendation {
    /// Processes that finish entries as fast as they arrive: the lag stops growing.
    pub keep_up: u64,
    /// Processes that also drain the lag within the set time.
    pub drain: u64,
}

/// The processes that keep up with `group`'s arrivals and that drain its lag within
/// `drain_within_s`, each doing `per_process_per_s` ([`Capacity::per_s`]); `None`
/// while the arrival rate or the capacity is unknown. Assumes processes add up: a
/// shared sink past its knee does not, and the fleet's limit then caps what more
/// processes bring.
pub fn recommend(
    group: &GroupStats,
    per_process_per_s: f64,
    drain_within_s: f64,
) -> Option<Recommendation> {
    let arrival = group.arrival_per_s?;
    if per_process_per_s <= 0.0 || !per_process_per_s.is_finite() {
        return None;
    }
    let backlog = (group.lag.unwrap_or(0) + group.pending_own + group.pending_others) as f64;
    let keep_up = (arrival / per_process_per_s).ceil().max(1.0) as u64;
    let needed = arrival + backlog / drain_within_s.max(1.0);
    let drain = ((needed / per_process_per_s).ceil() as u64).max(keep_up);
    Some(Recommendation { keep_up, drain })
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::StageStats;

    /// A sink after the universal scalability law: `per_writer` records/s each,
    /// slowed by contention and coherency; peak at √((1 − σ)/κ) writers.
    fn usl(writers: usize, per_writer: f64, sigma: f64, kappa: f64) -> f64 {
        let n = writers as f64;
        per_writer * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
    }

    /// Runs `fleet` for `windows` one-second windows against `sink` (throughput of a
    /// total), returning the limit after each; the total is split across 3 processes.
    fn drive(
        fleet: &mut FleetLimit,
        windows: usize,
        sink: impl Fn(usize) -> (f64, f64),
    ) -> Vec<usize> {
        (0..windows)
            .map(|_| {
                let (rate, retried) = sink(fleet.limit());
                let per = (rate / 3.0) as u64;
                let calls = (rate / 10.0 / 3.0).max(1.0) as u64;
                let figures = ShareFigures {
                    records_out: per,
                    window_s: 1.0,
                    calls,
                    retries: (calls as f64 * retried) as u64,
                };
                fleet.decide(&[figures; 3]);
                fleet.limit()
            })
            .collect()
    }

    fn reversals(limits: &[usize]) -> usize {
        let mut direction = 0i8;
        let mut reversals = 0;
        for pair in limits.windows(2) {
            let now = (pair[1] as i64 - pair[0] as i64).signum() as i8;
            if now != 0 {
                if now == -direction {
                    reversals += 1;
                }
                direction = now;
            }
        }
        reversals
    }

    fn window(records_out: u64, busy_s: f64) -> Snapshot {
        Snapshot {
            window_s: 1.0,
            stages: vec![StageStats {
                records_out,
                busy_s,
                worker_s: 1.0,
                ..StageStats::default()
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn capacity_extrapolates_from_the_busiest_stage_and_no_further_than_four_times() {
        let mut capacity = Capacity::default();
        assert_eq!(capacity.per_s(), None);
        capacity.observe(&window(500, 0.5));
        assert_eq!(capacity.per_s(), Some(1000.0));
        let mut idle = Capacity::default();
        idle.observe(&window(100, 0.01));
        assert_eq!(idle.per_s(), Some(400.0));
        idle.observe(&window(0, 0.0));
        assert_eq!(idle.per_s(), Some(400.0), "an empty window says nothing");
    }

    #[test]
    fn the_recommendation_keeps_up_with_arrivals_and_drains_the_lag_in_time() {
        let group = GroupStats {
            lag: Some(600_000),
            arrival_per_s: Some(2_500.0),
            ..GroupStats::default()
        };
        // 1,000/s each: 3 keep up; 2,500 + 600,000 / 600 s = 3,500/s drains in 10 min.
        let advice = recommend(&group, 1_000.0, 600.0).unwrap();
        assert_eq!(
            advice,
            Recommendation {
                keep_up: 3,
                drain: 4
            }
        );
        let quiet = GroupStats {
            lag: Some(0),
            arrival_per_s: Some(10.0),
            ..GroupStats::default()
        };
        let advice = recommend(&quiet, 1_000.0, 600.0).unwrap();
        assert_eq!(
            advice,
            Recommendation {
                keep_up: 1,
                drain: 1
            }
        );
        let unknown = GroupStats::default();
        assert_eq!(recommend(&unknown, 1_000.0, 600.0), None);
        assert_eq!(recommend(&group, 0.0, 600.0), None);
    }

    #[test]
    fn shares_add_up_to_the_total_and_differ_by_one_at_most() {
        assert_eq!(shares(10, 3), vec![4, 3, 3]);
        assert_eq!(shares(9, 3), vec![3, 3, 3]);
        assert_eq!(shares(1, 3), vec![1, 1, 1]);
        assert_eq!(shares(5, 0), vec![5]);
    }

    #[test]
    fn the_limit_climbs_to_the_knee_of_a_contended_sink_and_holds() {
        // Peak at √(0.95 / 0.004) ≈ 15 writers.
        let sink = |n: usize| (usl(n, 250.0, 0.05, 0.004), 0.0);
        let mut fleet = FleetLimit::new(3, 64);
        let limits = drive(&mut fleet, 120, sink);
        let settled = *limits.last().unwrap();
        let best = (1..=64).map(|n| sink(n).0).fold(0.0, f64::max);
        assert!(
            sink(settled).0 >= 0.9 * best,
            "settled at {settled}: {:.0}/s of the best {best:.0}/s ({limits:?})",
            sink(settled).0
        );
        assert!(settled <= 17, "past the peak: {limits:?}");
        // Held for the last minute: no oscillation.
        assert!(limits[60..].iter().all(|&l| l == settled), "{limits:?}");
        assert!(reversals(&limits) <= 1, "{limits:?}");
    }

    #[test]
    fn a_sink_that_scales_gets_the_most_writers_allowed() {
        let mut fleet = FleetLimit::new(3, 24);
        let limits = drive(&mut fleet, 60, |n| (100.0 * n as f64, 0.0));
        assert_eq!(*limits.last().unwrap(), 24, "{limits:?}");
    }

    #[test]
    fn throttling_steps_the_limit_back_and_keeps_it_under() {
        // Past 9 writers in all the sink answers one call in ten with a retry.
        let sink = |n: usize| (100.0 * n as f64, if n > 9 { 0.1 } else { 0.0 });
        let mut fleet = FleetLimit::new(3, 64);
        let limits = drive(&mut fleet, 90, sink);
        assert!(limits[40..].iter().all(|&l| l <= 9), "{limits:?}");
        assert!(*limits.last().unwrap() >= 6, "{limits:?}");
    }

    #[test]
    fn a_process_joining_starts_a_new_search_from_the_total_in_force() {
        let mut fleet = FleetLimit::new(1, 64);
        let sink = |n: usize| (usl(n, 250.0, 0.05, 0.004), 0.0);
        drive(&mut fleet, 60, sink);
        let alone = fleet.limit();
        let (total, why) = fleet.set_processes(3).expect("a new member is news");
        assert_eq!(total, alone.max(3));
        assert!(why.contains("from 1 to 3 processes"), "{why}");
        assert_eq!(fleet.set_processes(3), None);
        let limits = drive(&mut fleet, 60, sink);
        let settled = *limits.last().unwrap();
        let best = (1..=64).map(|n| sink(n).0).fold(0.0, f64::max);
        assert!(sink(settled).0 >= 0.9 * best, "{limits:?}");
    }

    #[test]
    fn a_sink_that_slows_down_makes_it_search_again_and_shed_writers() {
        let mut fleet = FleetLimit::new(3, 64);
        let fast = |n: usize| (usl(n, 250.0, 0.05, 0.004), 0.0);
        let before = drive(&mut fleet, 60, fast);
        let settled = *before.last().unwrap();
        // The sink degrades: its knee moves to about 5 writers.
        let slow = |n: usize| (usl(n, 250.0, 0.2, 0.04), 0.0);
        let after = drive(&mut fleet, 90, slow);
        let now = *after.last().unwrap();
        let best = (1..=64).map(|n| slow(n).0).fold(0.0, f64::max);
        assert!(now < settled, "{before:?} then {after:?}");
        assert!(slow(now).0 >= 0.9 * best, "{after:?}");
    }
}
