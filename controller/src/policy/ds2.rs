//! `ds2`: the DS2 scaling model (Kalavri et al., "Three steps is all you need: fast,
//! accurate, automatic scaling decisions for distributed streaming dataflows", OSDI
//! 2018), with the utilisation target, boundary and stabilisation of the Flink
//! Kubernetes operator's autoscaler, which is built on it.

use std::collections::VecDeque;

use super::{clamp_workers, current_workers};
use crate::{Action, Controller, Decision, Snapshot};

/// Tolerance that keeps `ceil` from adding a worker for a rounding error.
const EPSILON: f64 = 1e-9;

/// Sizes every stage at once to the workers its target rate needs at the target
/// utilisation, from each stage's true processing rate.
///
/// # The rule
///
/// DS2 measures each operator's *true* rate, what one instance does per second of
/// useful work (here records out / busy seconds, [`true_rate_per_worker`]), and
/// propagates target rates from the source through the dataflow by the operators'
/// selectivities. Stage `i` must then run
///
/// `pᵢ = ceil(target_outᵢ / (true_rateᵢ × target_utilisation))` workers,
///
/// where `target_out₀ = source rate × selectivity₀` and `target_outᵢ =
/// target_outᵢ₋₁ × selectivityᵢ`, selectivity being records out / records in (1 for a
/// stage that took nothing in).
///
/// - **Source rate.** DS2 uses the source's true output rate. The Snapshot has no
///   source busy time, so this takes the larger of the source's observed read rate
///   and the first stage's intake: the intake is larger while the first queue drains
///   a backlog. Under back pressure both are the rate the pipeline lets the source
///   run at, not the rate it could deliver (see below).
/// - **Metrics window.** Rates come from sums over the last `stabilisation_ticks`
///   windows, so one noisy window does not decide.
/// - **Stabilisation.** Nothing changes until `stabilisation_ticks` windows have been
///   observed since the start or since the last change; the windows before a change
///   are then forgotten.
/// - **Utilisation boundary** (Flink). Each stage's load is the utilisation it would
///   need at its current count: `target_out / (workers × true_rate)`. When every
///   stage's load lies within `target_utilisation ± boundary` nothing changes;
///   otherwise every stage whose `pᵢ` differs from its count is set to `pᵢ`, all in
///   the same tick: DS2 sizes the whole dataflow in one decision, which is how it
///   converges in a few steps.
/// - A stage with no busy time, or pinned, keeps its count (but still passes its
///   target rate on); `pᵢ` is held to the pool's bounds.
///
/// # Parameters (defaults)
///
/// - `target_utilisation` = 0.7 and `boundary` = 0.3: the Flink autoscaler's
///   defaults (`job.autoscaler.target.utilization` and `…utilization.boundary`), so a
///   stage is left alone while its load is within 40%..100%.
/// - `stabilisation_ticks` = 5 windows (Flink waits 5 minutes after a rescale and
///   aggregates metrics over 15; brigade's windows are 1 s).
///
/// # What it does not do
///
/// - It cannot see past a throttled source: when a saturated stage holds the source
///   back, the observed source rate is exactly what the stage delivers, its load
///   is 100%, within the band, and nothing changes. (DS2 and Flink measure the
///   source's busy time to get its true rate.)
/// - It sizes for the current rate: a backlog in a queue gets no catch-up capacity.
/// - It assumes a worker's true rate holds as workers are added: a sink whose
///   throughput falls with concurrency, or a CPU-bound stage past the number of cores,
///   is given workers that do not deliver.
/// - It knows nothing of the memory budget, giant records, or a source that times out
///   when stalled, and turns no knob but workers.
///
/// [`true_rate_per_worker`]: crate::StageStats::true_rate_per_worker
///
/// ```
/// use brigade_controller::{Controller, Ds2, Snapshot};
///
/// let mut policy = Ds2::new().target_utilisation(0.8).stabilisation_ticks(10);
/// assert_eq!(policy.name(), "ds2");
/// assert!(policy.decide(&Snapshot::default()).is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct Ds2 {
    target_utilisation: f64,
    boundary: f64,
    stabilisation_ticks: usize,
    windows: VecDeque<Window>,
}

/// What one window measured, as much as the model needs.
#[derive(Clone, Debug, Default)]
struct Window {
    window_s: f64,
    source_records: f64,
    stages: Vec<Flow>,
}

/// One stage's flow during one window, or summed over several.
#[derive(Clone, Copy, Debug, Default)]
struct Flow {
    records_in: u64,
    records_out: u64,
    busy_s: f64,
}

/// One stage's sizing.
struct Plan {
    stage: usize,
    current: usize,
    raw: usize,
    workers: usize,
    load: f64,
    target_out: f64,
    true_rate: f64,
}

impl Default for Ds2 {
    fn default() -> Self {
        Self {
            target_utilisation: 0.7,
            boundary: 0.3,
            stabilisation_ticks: 5,
            windows: VecDeque::new(),
        }
    }
}

impl Ds2 {
    /// The model with the defaults above.
    pub fn new() -> Self {
        Self::default()
    }

    /// The utilisation, 0..=1, each stage is sized to run at.
    pub fn target_utilisation(mut self, utilisation: f64) -> Self {
        self.target_utilisation = utilisation;
        self
    }

    /// How far a stage's load may stray from the target before the pipeline is
    /// resized.
    pub fn boundary(mut self, boundary: f64) -> Self {
        self.boundary = boundary;
        self
    }

    /// Windows to observe before deciding, after the start and after every change
    /// (at least 1).
    pub fn stabilisation_ticks(mut self, ticks: usize) -> Self {
        self.stabilisation_ticks = ticks.max(1);
        self
    }

    /// Sums the remembered windows.
    fn total(&self) -> Window {
        let mut total = Window::default();
        for window in &self.windows {
            total.window_s += window.window_s;
            total.source_records += window.source_records;
            total.stages.resize(window.stages.len(), Flow::default());
            for (sum, flow) in total.stages.iter_mut().zip(&window.stages) {
                sum.records_in += flow.records_in;
                sum.records_out += flow.records_out;
                sum.busy_s += flow.busy_s;
            }
        }
        total
    }

    /// Sizes every stage that can be sized, in pipeline order.
    fn plan(&self, snapshot: &Snapshot, total: &Window) -> Vec<Plan> {
        let intake = total.stages[0].records_in as f64 / total.window_s;
        let mut target_in = (total.source_records / total.window_s).max(intake);
        let mut plans = Vec::new();
        for (stage, (flow, stats)) in total.stages.iter().zip(&snapshot.stages).enumerate() {
            let selectivity = if flow.records_in > 0 {
                flow.records_out as f64 / flow.records_in as f64
            } else {
                1.0
            };
            let target_out = target_in * selectivity;
            target_in = target_out;
            let has_rate = flow.busy_s > 0.0 && flow.records_out > 0;
            if stats.workers.pinned || !has_rate {
                continue;
            }
            let true_rate = flow.records_out as f64 / flow.busy_s;
            let current = current_workers(snapshot, stage);
            let raw = (target_out / (true_rate * self.target_utilisation) - EPSILON).ceil();
            let raw = raw.max(0.0) as usize;
            plans.push(Plan {
                stage,
                current,
                raw,
                workers: clamp_workers(&stats.workers, raw),
                load: target_out / (current.max(1) as f64 * true_rate),
                target_out,
                true_rate,
            });
        }
        plans
    }

    fn reason(&self, plan: &Plan, snapshot: &Snapshot) -> String {
        let stats = &snapshot.stages[plan.stage];
        let bounds = if plan.workers == plan.raw {
            String::new()
        } else {
            format!(
                ", held to {} by the pool's bounds {}..={}",
                plan.workers, stats.workers.min, stats.workers.max
            )
        };
        format!(
            "ds2: {} must emit {:.1} rec/s; true rate {:.1} rec/s per worker at {:.0}% \
             utilisation → ceil({:.1} / {:.1}) = {} workers{bounds} (at {} it would be \
             {:.0}% busy; band {:.0}%..{:.0}%)",
            stats.name,
            plan.target_out,
            plan.true_rate,
            self.target_utilisation * 100.0,
            plan.target_out,
            plan.true_rate * self.target_utilisation,
            plan.raw,
            plan.current,
            plan.load * 100.0,
            (self.target_utilisation - self.boundary) * 100.0,
            (self.target_utilisation + self.boundary) * 100.0,
        )
    }
}

impl Controller for Ds2 {
    fn name(&self) -> &str {
        "ds2"
    }

    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision> {
        if snapshot.stages.is_empty() || snapshot.window_s <= 0.0 {
            return Vec::new();
        }
        if self
            .windows
            .front()
            .is_some_and(|w| w.stages.len() != snapshot.stages.len())
        {
            self.windows.clear();
        }
        self.windows.push_back(Window {
            window_s: snapshot.window_s,
            source_records: snapshot.global.source.rate * snapshot.window_s,
            stages: snapshot
                .stages
                .iter()
                .map(|s| Flow {
                    records_in: s.records_in,
                    records_out: s.records_out,
                    busy_s: s.busy_s,
                })
                .collect(),
        });
        if self.windows.len() > self.stabilisation_ticks {
            self.windows.pop_front();
        }
        if self.windows.len() < self.stabilisation_ticks {
            return Vec::new();
        }
        let plans = self.plan(snapshot, &self.total());
        let band =
            (self.target_utilisation - self.boundary)..=(self.target_utilisation + self.boundary);
        if plans.iter().all(|p| band.contains(&p.load)) {
            return Vec::new();
        }
        let decisions: Vec<_> = plans
            .iter()
            .filter(|p| p.workers != p.current)
            .map(|p| {
                Decision::new(
                    Action::SetWorkers {
                        stage: p.stage,
                        workers: p.workers,
                    },
                    self.reason(p, snapshot),
                )
            })
            .collect();
        if !decisions.is_empty() {
            self.windows.clear();
        }
        decisions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_support::{set_workers, SnapshotBuilder, StageBuilder};

    /// Feeds the same snapshot until the stabilisation window is full; returns the
    /// last tick's decisions.
    fn settled(policy: &mut Ds2, snapshot: &Snapshot) -> Vec<Decision> {
        for _ in 1..policy.stabilisation_ticks {
            assert!(policy.decide(snapshot).is_empty());
        }
        policy.decide(snapshot)
    }

    /// The source reads 1000 rec/s; `parse` (4 workers, always busy) finishes 800:
    /// 200 rec/s per worker.
    fn falling_behind() -> SnapshotBuilder {
        SnapshotBuilder::new().source_rate(1000.0).stage(
            StageBuilder::new("parse")
                .workers(4)
                .busy(1.0)
                .records(800, 800)
                .queue(60.0, 64),
        )
    }

    #[test]
    fn sizes_a_stage_by_the_ceil_formula() {
        let decisions = settled(&mut Ds2::new(), &falling_behind().build());
        // ceil(1000 / (200 × 0.7)) = ceil(7.14) = 8.
        assert_eq!(
            decisions,
            vec![Decision::new(
                Action::SetWorkers {
                    stage: 0,
                    workers: 8
                },
                "ds2: parse must emit 1000.0 rec/s; true rate 200.0 rec/s per worker at 70% \
                 utilisation → ceil(1000.0 / 140.0) = 8 workers (at 4 it would be 125% busy; \
                 band 40%..100%)"
            )]
        );
    }

    #[test]
    fn propagates_target_rates_by_selectivity() {
        let snapshot = SnapshotBuilder::new()
            .source_rate(1000.0)
            // Emits two records per record: 2000 out over 4 busy s = 500 per worker.
            .stage(
                StageBuilder::new("explode")
                    .workers(4)
                    .busy(1.0)
                    .records(1000, 2000),
            )
            // Keeps one in four: 500 out over 1 busy s.
            .stage(
                StageBuilder::new("filter")
                    .workers(2)
                    .busy(0.5)
                    .records(2000, 500),
            )
            // 250 per worker, and behind.
            .stage(
                StageBuilder::new("write")
                    .sink()
                    .workers(1)
                    .busy(1.0)
                    .records(250, 250),
            )
            .build();
        // explode: ceil(2000 / 350) = 6 (load 100%, resized with the rest);
        // filter:  ceil(500 / 350) = 2, as it is;
        // write:   must take what filter must emit, 500: ceil(500 / 175) = 3.
        assert_eq!(
            set_workers(&settled(&mut Ds2::new(), &snapshot)),
            vec![(0, 6), (2, 3)]
        );
    }

    #[test]
    fn waits_for_the_stabilisation_window_after_every_change() {
        let mut policy = Ds2::new();
        let snapshot = falling_behind().build();
        let fired: Vec<_> = (1..=10)
            .map(|_| set_workers(&policy.decide(&snapshot)))
            .collect();
        let mut expected = vec![Vec::new(); 10];
        expected[4] = vec![(0, 8)];
        expected[9] = vec![(0, 8)];
        assert_eq!(fired, expected);

        let mut quick = Ds2::new().stabilisation_ticks(2);
        assert!(quick.decide(&snapshot).is_empty());
        assert_eq!(set_workers(&quick.decide(&snapshot)), vec![(0, 8)]);
    }

    #[test]
    fn rates_are_summed_over_the_window() {
        let mut policy = Ds2::new();
        let mut fired = Vec::new();
        // Source rates 600..=1400 average 1000: as in the ceil example.
        for rate in [600.0, 800.0, 1000.0, 1200.0, 1400.0] {
            fired = set_workers(&policy.decide(&falling_behind().source_rate(rate).build()));
        }
        assert_eq!(fired, vec![(0, 8)]);
    }

    #[test]
    fn holds_while_every_load_is_within_the_band_and_scales_down_below_it() {
        // 700 rec/s on 5 workers of 200: load 70%.
        let on_target = SnapshotBuilder::new().source_rate(700.0).stage(
            StageBuilder::new("parse")
                .workers(5)
                .busy(0.7)
                .records(700, 700),
        );
        assert!(settled(&mut Ds2::new(), &on_target.build()).is_empty());
        // 900 rec/s: load 90%, ceil(900 / 140) = 7 ≠ 5, but within the band.
        let busy = SnapshotBuilder::new().source_rate(900.0).stage(
            StageBuilder::new("parse")
                .workers(5)
                .busy(0.9)
                .records(900, 900),
        );
        assert!(settled(&mut Ds2::new(), &busy.build()).is_empty());
        // 200 rec/s on 10 workers of 200: load 10% → ceil(200 / 140) = 2.
        let idle = SnapshotBuilder::new().source_rate(200.0).stage(
            StageBuilder::new("parse")
                .workers(10)
                .busy(0.1)
                .records(200, 200),
        );
        assert_eq!(
            set_workers(&settled(&mut Ds2::new(), &idle.build())),
            vec![(0, 2)]
        );
    }

    #[test]
    fn the_first_stage_intake_stands_in_for_a_slower_source() {
        // The source is done; parse drains its backlog at 1000 rec/s (250 per worker).
        let snapshot = SnapshotBuilder::new()
            .stage(
                StageBuilder::new("parse")
                    .workers(8)
                    .busy(0.5)
                    .records(1000, 1000),
            )
            .stage(
                StageBuilder::new("write")
                    .sink()
                    .workers(1)
                    .busy(1.0)
                    .records(500, 500),
            )
            .build();
        // parse: ceil(1000 / 175) = 6; write: ceil(1000 / 350) = 3.
        assert_eq!(
            set_workers(&settled(&mut Ds2::new(), &snapshot)),
            vec![(0, 6), (1, 3)]
        );
    }

    #[test]
    fn cannot_see_past_a_throttled_source() {
        // parse is saturated and holds the source to its own 800 rec/s: load 100%.
        let snapshot = falling_behind().source_rate(800.0).build();
        assert!(settled(&mut Ds2::new(), &snapshot).is_empty());
    }

    #[test]
    fn keeps_idle_and_pinned_stages_and_respects_max() {
        let snapshot = SnapshotBuilder::new()
            .source_rate(1000.0)
            // Pinned: not sized, but still doubles the rate downstream.
            .stage(
                StageBuilder::new("explode")
                    .workers(2)
                    .pinned()
                    .busy(1.0)
                    .records(500, 1000),
            )
            // No busy time: no true rate, keeps its count.
            .stage(StageBuilder::new("cache").workers(3))
            // 2000 / (100 × 0.7) = 28.6 → 29, held to 6.
            .stage(
                StageBuilder::new("write")
                    .sink()
                    .workers(2)
                    .bounds(1, 6)
                    .busy(1.0)
                    .records(200, 200),
            )
            .build();
        let decisions = settled(&mut Ds2::new(), &snapshot);
        assert_eq!(set_workers(&decisions), vec![(2, 6)]);
        assert!(decisions[0]
            .reason
            .contains("= 29 workers, held to 6 by the pool's bounds 1..=6"));
    }

    #[test]
    fn never_resends_a_count_held_at_the_bound() {
        // Wants 8, but 4 is the pool's max and already its count.
        let at_max = SnapshotBuilder::new().source_rate(1000.0).stage(
            StageBuilder::new("parse")
                .workers(4)
                .bounds(1, 4)
                .busy(1.0)
                .records(800, 800),
        );
        assert!(settled(&mut Ds2::new(), &at_max.build()).is_empty());
    }

    #[test]
    fn nothing_without_stages_or_window() {
        let mut policy = Ds2::new().stabilisation_ticks(1);
        assert!(policy.decide(&SnapshotBuilder::new().build()).is_empty());
        assert!(policy
            .decide(&falling_behind().window(0.0).build())
            .is_empty());
    }
}
