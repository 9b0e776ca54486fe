//! `seda`: the thread pool controller of SEDA (Welsh, Culler & Brewer, "SEDA: An
//! Architecture for Well-Conditioned, Scalable Internet Services", SOSP 2001).

use super::{clamp_workers, current_workers};
use crate::{Action, Controller, Decision, Snapshot};

/// Tolerance for sums of window lengths reaching the idle timeout.
const EPSILON_S: f64 = 1e-9;

/// Adds a worker to a stage while its input queue stays long; removes one when its
/// workers sit idle for the idle timeout.
///
/// # The rule
///
/// SEDA's thread pool controller "periodically samples the input queue and adds a
/// thread when the queue length exceeds some threshold, up to a maximum number of
/// threads per stage. Threads are removed from a stage when they are idle for a
/// specified period of time." Every tick, for every stage that is not pinned:
///
/// - **Grow.** The window's mean input-queue depth is what a sample taken at a random
///   moment sees on average (a single burst up to `max_depth` is not a long queue).
///   When it is at least `threshold` in `grow_ticks` windows in a row, the stage gets
///   one more worker (SEDA adds threads one at a time), up to the pool's max; while it
///   stays long, one more every `grow_ticks` windows.
/// - **Shrink.** A Snapshot pools idle time over a stage's workers instead of timing
///   each thread, so "a thread idle for the timeout" becomes: the workers' waiting
///   share (time blocked on an empty input queue) was at least `idle_share` in every
///   window for `idle_timeout_s` seconds. The stage then loses one worker, down to the
///   pool's min (never below 1), and the timing starts again.
///
/// # Parameters (defaults)
///
/// - `threshold` = 32 records. Sandstorm, SEDA's runtime, shipped 1000 events for
///   unbounded queues; brigade's queues are bounded (64 records by default), where a
///   threshold at or above the capacity could never fire, so the default is half the
///   default capacity.
/// - `grow_ticks` = 1: the observation period is one window (Sandstorm sampled every
///   2 s).
/// - `idle_share` = 0.5.
/// - `idle_timeout_s` = 5 s. Sandstorm retired a thread after 1 s without an event; a
///   pooled share is coarser than one thread's idleness, so it must last longer.
///
/// # What it does not do
///
/// - It never looks at throughput: it adds workers to a sink whose throughput falls
///   as concurrency grows, and to a CPU-bound stage past the number of cores.
/// - Back pressure makes every queue upstream of a bottleneck long too, so those
///   stages grow as well, with workers that only wait on their full output queue.
/// - One worker per period: a stage that needs 30 more takes 30 periods, and growing
///   and idle shrinking can take turns.
/// - It knows nothing of the memory budget, giant records, or a source that times out
///   when stalled, and turns no knob but workers.
///
/// ```
/// use brigade_controller::{Controller, Seda, Snapshot};
///
/// let mut policy = Seda::new().threshold(16.0).idle_timeout_s(10.0);
/// assert_eq!(policy.name(), "seda");
/// assert!(policy.decide(&Snapshot::default()).is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct Seda {
    threshold: f64,
    grow_ticks: u32,
    idle_share: f64,
    idle_timeout_s: f64,
    stages: Vec<StageState>,
}

/// What the controller remembers of one stage between ticks.
#[derive(Clone, Copy, Debug, Default)]
struct StageState {
    /// Consecutive windows with the mean queue depth at or above the threshold.
    long_ticks: u32,
    /// Seconds of consecutive windows with the waiting share at or above `idle_share`.
    idle_s: f64,
}

impl Default for Seda {
    fn default() -> Self {
        Self {
            threshold: 32.0,
            grow_ticks: 1,
            idle_share: 0.5,
            idle_timeout_s: 5.0,
            stages: Vec::new(),
        }
    }
}

impl Seda {
    /// The controller with the defaults above.
    pub fn new() -> Self {
        Self::default()
    }

    /// Mean queue depth, records, at or above which a window counts as long.
    pub fn threshold(mut self, records: f64) -> Self {
        self.threshold = records;
        self
    }

    /// Consecutive long windows per added worker (at least 1).
    pub fn grow_ticks(mut self, ticks: u32) -> Self {
        self.grow_ticks = ticks.max(1);
        self
    }

    /// Waiting share, 0..=1, at or above which a window counts as idle.
    pub fn idle_share(mut self, share: f64) -> Self {
        self.idle_share = share;
        self
    }

    /// Seconds of consecutive idle windows before a worker is removed.
    pub fn idle_timeout_s(mut self, seconds: f64) -> Self {
        self.idle_timeout_s = seconds;
        self
    }
}

impl Controller for Seda {
    fn name(&self) -> &str {
        "seda"
    }

    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision> {
        if snapshot.stages.is_empty() || snapshot.window_s <= 0.0 {
            return Vec::new();
        }
        if self.stages.len() != snapshot.stages.len() {
            self.stages = vec![StageState::default(); snapshot.stages.len()];
        }
        let mut decisions = Vec::new();
        for (stage, (stats, state)) in snapshot.stages.iter().zip(&mut self.stages).enumerate() {
            if stats.workers.pinned {
                *state = StageState::default();
                continue;
            }
            let current = current_workers(snapshot, stage);
            let depth = stats.queue.mean_depth;
            if depth >= self.threshold {
                state.idle_s = 0.0;
                state.long_ticks += 1;
                let workers = clamp_workers(&stats.workers, current + 1);
                if state.long_ticks % self.grow_ticks == 0 && workers > current {
                    let ticks = state.long_ticks;
                    decisions.push(Decision::new(
                        Action::SetWorkers { stage, workers },
                        format!(
                            "seda: queue of {} held {depth:.1} ≥ {} for {ticks} tick{} (max {}); \
                             +1 worker → {workers}",
                            stats.name,
                            self.threshold,
                            if ticks == 1 { "" } else { "s" },
                            stats.queue.max_depth,
                        ),
                    ));
                }
                continue;
            }
            state.long_ticks = 0;
            let waiting = stats.waiting_share();
            if waiting < self.idle_share {
                state.idle_s = 0.0;
                continue;
            }
            state.idle_s += snapshot.window_s;
            if state.idle_s + EPSILON_S < self.idle_timeout_s {
                continue;
            }
            let idle_s = std::mem::take(&mut state.idle_s);
            let workers = clamp_workers(&stats.workers, current.saturating_sub(1));
            if workers < current {
                decisions.push(Decision::new(
                    Action::SetWorkers { stage, workers },
                    format!(
                        "seda: {} idle for {idle_s:.1} s ≥ {} s timeout (waiting {:.0}% ≥ {:.0}%); \
                         -1 worker → {workers}",
                        stats.name,
                        self.idle_timeout_s,
                        waiting * 100.0,
                        self.idle_share * 100.0,
                    ),
                ));
            }
        }
        decisions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_support::{drive, set_workers, SnapshotBuilder, StageBuilder};

    /// A two-stage pipeline whose sink `write` has `workers` workers and the given
    /// mean queue depth and waiting share.
    fn pipeline(workers: usize, depth: f64, waiting: f64) -> SnapshotBuilder {
        SnapshotBuilder::new()
            .stage(StageBuilder::new("parse").workers(2).busy(0.6).waiting(0.4))
            .stage(
                StageBuilder::new("write")
                    .sink()
                    .workers(workers)
                    .queue(depth, 64)
                    .max_depth(64)
                    .busy(1.0 - waiting)
                    .waiting(waiting),
            )
    }

    #[test]
    fn grows_a_long_queue_by_one_worker() {
        let decisions = Seda::new().decide(&pipeline(4, 57.0, 0.0).build());
        assert_eq!(
            decisions,
            vec![Decision::new(
                Action::SetWorkers {
                    stage: 1,
                    workers: 5
                },
                "seda: queue of write held 57.0 ≥ 32 for 1 tick (max 64); +1 worker → 5"
            )]
        );
    }

    #[test]
    fn the_threshold_is_inclusive_and_a_burst_is_not_a_long_queue() {
        let mut policy = Seda::new();
        assert!(policy.decide(&pipeline(4, 31.9, 0.0).build()).is_empty());
        // max_depth 64 is a burst: the mean stayed below the threshold.
        assert!(policy.decide(&pipeline(4, 10.0, 0.1).build()).is_empty());
        // Sandstorm: `if (sz >= threshold) addThread`.
        let at_threshold = pipeline(4, 32.0, 0.0).build();
        assert_eq!(set_workers(&policy.decide(&at_threshold)), vec![(1, 5)]);
    }

    #[test]
    fn grows_one_worker_per_tick_while_the_queue_stays_long() {
        // The queue stays long until write has 6 workers.
        let moves = drive(&mut Seda::new(), vec![2, 3], 6, |w| {
            pipeline(w[1], if w[1] < 6 { 50.0 } else { 5.0 }, 0.0)
        });
        assert_eq!(moves, vec![(1, 1, 4), (2, 1, 5), (3, 1, 6)]);
    }

    #[test]
    fn grow_ticks_is_the_observation_period() {
        let mut policy = Seda::new().grow_ticks(3);
        let long = pipeline(4, 40.0, 0.0).build();
        let fired: Vec<_> = (1..=6)
            .map(|_| set_workers(&policy.decide(&long)))
            .collect();
        assert_eq!(
            fired,
            vec![vec![], vec![], vec![(1, 5)], vec![], vec![], vec![(1, 5)]]
        );
    }

    #[test]
    fn shrinks_an_idle_stage_after_the_timeout() {
        let mut policy = Seda::new();
        let idle = pipeline(4, 0.0, 0.8).build();
        for _ in 0..4 {
            assert!(policy.decide(&idle).is_empty());
        }
        let decisions = policy.decide(&idle);
        assert_eq!(
            decisions,
            vec![Decision::new(
                Action::SetWorkers {
                    stage: 1,
                    workers: 3
                },
                "seda: write idle for 5.0 s ≥ 5 s timeout (waiting 80% ≥ 50%); -1 worker → 3"
            )]
        );
        // The next removal needs a whole new timeout.
        let idle = pipeline(3, 0.0, 0.8).build();
        let fired: Vec<_> = (0..5).map(|_| set_workers(&policy.decide(&idle))).collect();
        assert_eq!(fired, vec![vec![], vec![], vec![], vec![], vec![(1, 2)]]);
    }

    #[test]
    fn the_idle_timeout_counts_seconds_not_ticks() {
        let mut policy = Seda::new();
        let idle = pipeline(4, 0.0, 0.9).window(2.0).build();
        assert!(policy.decide(&idle).is_empty());
        assert!(policy.decide(&idle).is_empty());
        assert_eq!(set_workers(&policy.decide(&idle)), vec![(1, 3)]);
    }

    #[test]
    fn a_busy_window_restarts_the_idle_timer() {
        let mut policy = Seda::new();
        let idle = pipeline(4, 0.0, 0.8).build();
        let busy = pipeline(4, 0.0, 0.2).build();
        let long = pipeline(4, 40.0, 0.8).build();
        for snapshot in [
            &idle, &idle, &idle, &idle, &busy, &idle, &idle, &idle, &idle,
        ] {
            assert!(policy.decide(snapshot).is_empty());
        }
        // A long queue also restarts it (and grows the stage instead).
        assert_eq!(set_workers(&policy.decide(&long)), vec![(1, 5)]);
        for _ in 0..4 {
            assert!(policy.decide(&idle).is_empty());
        }
        assert_eq!(set_workers(&policy.decide(&idle)), vec![(1, 3)]);
    }

    #[test]
    fn respects_the_pool_bounds() {
        let mut policy = Seda::new();
        let at_max = pipeline(4, 0.0, 0.0).stage(
            StageBuilder::new("more")
                .workers(6)
                .bounds(2, 6)
                .queue(60.0, 64),
        );
        assert!(policy.decide(&at_max.build()).is_empty());
        let at_min = SnapshotBuilder::new()
            .stage(StageBuilder::new("a").workers(2).bounds(2, 6).waiting(1.0))
            .stage(StageBuilder::new("b").workers(1).waiting(1.0));
        let mut policy = Seda::new().idle_timeout_s(1.0);
        assert!(policy.decide(&at_min.build()).is_empty());
    }

    #[test]
    fn skips_pinned_stages() {
        let snapshot = SnapshotBuilder::new()
            .stage(StageBuilder::new("a").workers(3).pinned().queue(60.0, 64))
            .stage(StageBuilder::new("b").workers(3).queue(60.0, 64))
            .build();
        assert_eq!(set_workers(&Seda::new().decide(&snapshot)), vec![(1, 4)]);
    }

    #[test]
    fn nothing_without_stages_or_window() {
        let mut policy = Seda::new();
        assert!(policy.decide(&SnapshotBuilder::new().build()).is_empty());
        let no_window = pipeline(4, 60.0, 0.0).window(0.0).build();
        assert!(policy.decide(&no_window).is_empty());
    }
}
