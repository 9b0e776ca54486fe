//! `hill`: hill climbing on throughput, one stage at a time, as the .NET ThreadPool
//! injects threads (Hellerstein, Morrison & Eilebrecht, "Optimizing Concurrency Levels
//! in the .NET ThreadPool: A Case Study of Controller Design and Implementation",
//! FeBID workshop 2008).

use super::{clamp_workers, current_workers};
use crate::{Action, Controller, Decision, Snapshot};

/// Moves one stage's worker count a step at a time, keeping each step that raises the
/// pipeline's throughput and undoing each one that does not.
///
/// # The rule
///
/// Throughput is what the sink finished per second (its records out over the window),
/// averaged over `measure_ticks` windows. The climber works on one stage at a time,
/// in pipeline order, round robin:
///
/// 1. Measure throughput at the current counts, then step the stage up by `step`.
/// 2. Measure again. If throughput rose by more than `margin`, keep the step and take
///    another in the same direction. If it fell by more than `margin`, undo the step.
///    If it moved less than `margin` either way, the step did not help: keep the
///    smaller of the two counts (a worker that buys nothing is a cost).
/// 3. When the first step up is undone, reverse: measure, then step down, and climb
///    down the same way. When a direction ends (undone, no help, or the pool's
///    bound), move on to the next stage.
///
/// Pinned stages are passed over. Only `SetWorkers` changes, one per decision tick.
///
/// # Parameters (defaults)
///
/// - `step` = 1 worker.
/// - `margin` = 0.02: a change of throughput within ±2% is noise.
/// - `measure_ticks` = 2 windows measured at each configuration.
///
/// # What it does not do
///
/// - It is slow: every step costs `measure_ticks` windows, and each stage is visited
///   in turn, so a long pipeline waits many windows for its bottleneck's turn.
/// - It sees only the sink's throughput, not why it changed: a burst of input, or a
///   queue draining after a step, reads as the step's effect, and a step that helps by
///   less than the margin is never taken.
/// - The .NET controller (HC3) wraps the climb in rules (hybrid control) and later
///   added a signal-processing refinement; neither is modelled: this is the plain
///   hill-climbing control law.
/// - It knows nothing of the memory budget, giant records, or a source that times out
///   when stalled, and turns no knob but workers.
///
/// ```
/// use brigade_controller::{Controller, Hill, Snapshot};
///
/// let mut policy = Hill::new().step(2).margin(0.05).measure_ticks(3);
/// assert_eq!(policy.name(), "hill");
/// assert!(policy.decide(&Snapshot::default()).is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct Hill {
    step: usize,
    margin: f64,
    measure_ticks: usize,
    /// How many stages the pipeline had at the last tick.
    stages: usize,
    /// The stage being climbed.
    stage: usize,
    phase: Phase,
    meter: Meter,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// Measuring the current counts before stepping.
    Baseline { direction: Direction },
    /// Measuring after a step from `from` workers, taken when throughput was
    /// `baseline`; `climbed` once a step of this direction was kept.
    Trial {
        direction: Direction,
        from: usize,
        baseline: f64,
        climbed: bool,
    },
}

/// The sink's records over the windows measured so far.
#[derive(Clone, Copy, Debug, Default)]
struct Meter {
    records: u64,
    seconds: f64,
    windows: usize,
}

impl Default for Hill {
    fn default() -> Self {
        Self {
            step: 1,
            margin: 0.02,
            measure_ticks: 2,
            stages: 0,
            stage: 0,
            phase: Phase::Baseline {
                direction: Direction::Up,
            },
            meter: Meter::default(),
        }
    }
}

impl Hill {
    /// The climber with the defaults above.
    pub fn new() -> Self {
        Self::default()
    }

    /// Workers added or removed per step (at least 1).
    pub fn step(mut self, workers: usize) -> Self {
        self.step = workers.max(1);
        self
    }

    /// Relative change of throughput, 0..1, below which a step made no difference.
    pub fn margin(mut self, margin: f64) -> Self {
        self.margin = margin;
        self
    }

    /// Windows measured at each configuration (at least 1).
    pub fn measure_ticks(mut self, ticks: usize) -> Self {
        self.measure_ticks = ticks.max(1);
        self
    }

    /// Starts over on the next stage, stepping up first.
    fn next_stage(&mut self) {
        self.stage = (self.stage + 1) % self.stages;
        self.phase = Phase::Baseline {
            direction: Direction::Up,
        };
    }

    /// Steps `stage` in `direction` and measures next, or `None` when the pool's
    /// bounds leave no room. `throughput` is the baseline the step will be judged
    /// against; `climbed` says whether a step this way was already kept.
    fn try_step(
        &mut self,
        snapshot: &Snapshot,
        stage: usize,
        direction: Direction,
        throughput: f64,
        climbed: bool,
        why: String,
    ) -> Option<Decision> {
        let current = current_workers(snapshot, stage);
        let pool = &snapshot.stages[stage].workers;
        let (wanted, sign) = match direction {
            Direction::Up => (current + self.step, '+'),
            Direction::Down => (current.saturating_sub(self.step), '-'),
        };
        let workers = clamp_workers(pool, wanted);
        if workers == current {
            return None;
        }
        self.phase = Phase::Trial {
            direction,
            from: current,
            baseline: throughput,
            climbed,
        };
        Some(Decision::new(
            Action::SetWorkers { stage, workers },
            format!(
                "hill: {why}; {} {sign}{} → {workers} workers",
                snapshot.stages[stage].name,
                current.abs_diff(workers)
            ),
        ))
    }

    /// Moves the climb on by one measurement; at most one decision.
    fn advance(&mut self, snapshot: &Snapshot, throughput: f64) -> Option<Decision> {
        // Each pass decides, or changes phase or stage; a stage takes at most three
        // passes (a trial, then both directions blocked by its bounds).
        for _ in 0..3 * self.stages {
            let stage = self.stage;
            let stats = &snapshot.stages[stage];
            if stats.workers.pinned {
                self.next_stage();
                continue;
            }
            let current = current_workers(snapshot, stage);
            match self.phase {
                Phase::Baseline { direction } => {
                    let plural = if self.measure_ticks == 1 { "" } else { "s" };
                    let why = format!(
                        "{throughput:.1} rec/s over {} tick{plural}",
                        self.measure_ticks
                    );
                    if let Some(decision) =
                        self.try_step(snapshot, stage, direction, throughput, false, why)
                    {
                        return Some(decision);
                    }
                    match direction {
                        Direction::Up => {
                            self.phase = Phase::Baseline {
                                direction: Direction::Down,
                            }
                        }
                        Direction::Down => self.next_stage(),
                    }
                }
                Phase::Trial {
                    direction,
                    from,
                    baseline,
                    climbed,
                } => {
                    let change = relative_change(baseline, throughput);
                    let margin = self.margin * 100.0;
                    let seen = format!(
                        "after {} {from} → {current}, {baseline:.1} → {throughput:.1} rec/s",
                        stats.name
                    );
                    let percent = format!("{:+.1}%", change * 100.0);
                    if change > self.margin {
                        let why = format!("{seen} ({percent} > {margin:.1}%), keep climbing");
                        if let Some(decision) =
                            self.try_step(snapshot, stage, direction, throughput, true, why)
                        {
                            return Some(decision);
                        }
                        self.next_stage();
                        continue;
                    }
                    let (keep, verdict) = if change < -self.margin {
                        (from, format!("{seen} ({percent}), worse"))
                    } else {
                        let verdict = format!("{seen} ({percent}, within {margin:.1}%), no help");
                        (from.min(current), verdict)
                    };
                    let reverse = direction == Direction::Up && !climbed;
                    let next = if reverse {
                        self.phase = Phase::Baseline {
                            direction: Direction::Down,
                        };
                        "try fewer next"
                    } else {
                        self.next_stage();
                        "next stage"
                    };
                    let workers = clamp_workers(&stats.workers, keep);
                    if workers != current {
                        return Some(Decision::new(
                            Action::SetWorkers { stage, workers },
                            format!(
                                "hill: {verdict}; {} back to {workers} workers, {next}",
                                stats.name
                            ),
                        ));
                    }
                }
            }
        }
        None
    }
}

/// (now − before) / before; any gain from nothing counts as infinite.
fn relative_change(before: f64, now: f64) -> f64 {
    if before > 0.0 {
        (now - before) / before
    } else if now > 0.0 {
        f64::INFINITY
    } else {
        0.0
    }
}

impl Controller for Hill {
    fn name(&self) -> &str {
        "hill"
    }

    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision> {
        let Some(sink) = snapshot.stages.last() else {
            return Vec::new();
        };
        if snapshot.window_s <= 0.0 {
            return Vec::new();
        }
        if self.stages != snapshot.stages.len() {
            self.stages = snapshot.stages.len();
            self.stage = 0;
            self.phase = Phase::Baseline {
                direction: Direction::Up,
            };
            self.meter = Meter::default();
        }
        self.meter.records += sink.records_out;
        self.meter.seconds += snapshot.window_s;
        self.meter.windows += 1;
        if self.meter.windows < self.measure_ticks {
            return Vec::new();
        }
        let meter = std::mem::take(&mut self.meter);
        let throughput = meter.records as f64 / meter.seconds;
        self.advance(snapshot, throughput).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_support::{drive, set_workers, SnapshotBuilder, StageBuilder};

    /// `parse` then `write`, with `workers`, and the sink finishing `throughput`
    /// records in each 1 s window.
    fn pipeline(workers: &[usize], throughput: f64) -> SnapshotBuilder {
        let out = throughput as u64;
        SnapshotBuilder::new()
            .stage(StageBuilder::new("parse").workers(workers[0]))
            .stage(
                StageBuilder::new("write")
                    .sink()
                    .workers(workers[1])
                    .records(out, out),
            )
    }

    #[test]
    fn climbs_while_throughput_rises() {
        // parse does 100 rec/s per worker, write 150; the slower one sets the pace.
        let mut policy = Hill::new();
        let moves = drive(&mut policy, vec![2, 2], 8, |w| {
            pipeline(w, (100 * w[0]).min(150 * w[1]) as f64)
        });
        // 200 → 300 rec/s: keep climbing; 300 → 300: no help, back to 3 and on to write.
        assert_eq!(moves, vec![(2, 0, 3), (4, 0, 4), (6, 0, 3), (8, 1, 3)]);
    }

    #[test]
    fn reverses_when_throughput_drops() {
        // A contended stage: every parse worker costs 100 rec/s.
        let moves = drive(&mut Hill::new(), vec![3, 1], 10, |w| {
            pipeline(w, 1000.0 - 100.0 * w[0] as f64)
        });
        // 700 → 600: worse, back to 3 and down: 2 (800), 1 (900), then the pool's min:
        // on to write.
        assert_eq!(
            moves,
            vec![(2, 0, 4), (4, 0, 3), (6, 0, 2), (8, 0, 1), (10, 1, 2)]
        );
    }

    #[test]
    fn moves_on_when_neither_direction_helps() {
        // parse makes no difference; write does 100 rec/s per worker, up to 400.
        let moves = drive(&mut Hill::new(), vec![2, 2], 14, |w| {
            pipeline(w, (100 * w[1]).min(400) as f64)
        });
        assert_eq!(
            moves,
            vec![
                // parse up: no help, back; down: no help, and 1 is cheaper: kept.
                (2, 0, 3),
                (4, 0, 2),
                (6, 0, 1),
                // write climbs to 5, where 400 is the ceiling: back to 4.
                (8, 1, 3),
                (10, 1, 4),
                (12, 1, 5),
                (14, 1, 4),
            ]
        );
    }

    #[test]
    fn reasons_name_the_rule_and_the_numbers() {
        let mut policy = Hill::new();
        let mut decide =
            |w: &[usize], throughput: f64| policy.decide(&pipeline(w, throughput).build());
        assert!(decide(&[2, 2], 200.0).is_empty());
        let first = decide(&[2, 2], 200.0);
        assert_eq!(
            first,
            vec![Decision::new(
                Action::SetWorkers {
                    stage: 0,
                    workers: 3
                },
                "hill: 200.0 rec/s over 2 ticks; parse +1 → 3 workers"
            )]
        );
        assert!(decide(&[3, 2], 300.0).is_empty());
        assert_eq!(
            decide(&[3, 2], 300.0)[0].reason,
            "hill: after parse 2 → 3, 200.0 → 300.0 rec/s (+50.0% > 2.0%), keep climbing; \
             parse +1 → 4 workers"
        );
        assert!(decide(&[4, 2], 295.0).is_empty());
        assert_eq!(
            decide(&[4, 2], 295.0)[0].reason,
            "hill: after parse 3 → 4, 300.0 → 295.0 rec/s (-1.7%, within 2.0%), no help; \
             parse back to 3 workers, next stage"
        );

        let mut policy = Hill::new().measure_ticks(1);
        assert_eq!(
            set_workers(&policy.decide(&pipeline(&[3, 1], 700.0).build())),
            vec![(0, 4)]
        );
        assert_eq!(
            policy.decide(&pipeline(&[4, 1], 600.0).build())[0].reason,
            "hill: after parse 3 → 4, 700.0 → 600.0 rec/s (-14.3%), worse; \
             parse back to 3 workers, try fewer next"
        );
    }

    #[test]
    fn gains_within_the_margin_are_noise() {
        // Each worker adds 1.5%.
        let model = |w: &[usize]| pipeline(w, 1000.0 + 15.0 * w[0] as f64);
        let moves = drive(&mut Hill::new(), vec![1, 1], 4, model);
        assert_eq!(moves, vec![(2, 0, 2), (4, 0, 1)]);
        let moves = drive(&mut Hill::new().margin(0.01), vec![1, 1], 4, model);
        assert_eq!(moves, vec![(2, 0, 2), (4, 0, 3)]);
    }

    #[test]
    fn step_and_measure_ticks_are_parameters() {
        let mut policy = Hill::new().step(3).measure_ticks(1);
        let moves = drive(&mut policy, vec![2, 2], 3, |w| {
            pipeline(w, (100 * w[0]).min(1000) as f64)
        });
        assert_eq!(moves, vec![(1, 0, 5), (2, 0, 8), (3, 0, 11)]);
    }

    #[test]
    fn bounds_and_pins_are_respected() {
        // parse is pinned; write is at its max 2 so it can only go down, which hurts.
        let model = |w: &[usize]| {
            SnapshotBuilder::new()
                .stage(StageBuilder::new("parse").workers(w[0]).pinned())
                .stage(
                    StageBuilder::new("write")
                        .sink()
                        .workers(w[1])
                        .bounds(1, 2)
                        .records(100 * w[1] as u64, 100 * w[1] as u64),
                )
        };
        let moves = drive(&mut Hill::new(), vec![4, 2], 6, model);
        assert_eq!(moves, vec![(2, 1, 1), (4, 1, 2), (6, 1, 1)]);
    }

    #[test]
    fn nothing_without_stages_or_window() {
        let mut policy = Hill::new().measure_ticks(1);
        assert!(policy.decide(&SnapshotBuilder::new().build()).is_empty());
        let no_window = pipeline(&[1, 1], 100.0).window(0.0).build();
        assert!(policy.decide(&no_window).is_empty());
    }
}
