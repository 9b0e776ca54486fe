//! The oracle: the best static configuration for a scenario, found by search and
//! verified by simulation. Reports give every policy's figures as ratios to it.
//!
//! "Best" means the most throughput without failing (no crash, no fatal source
//! timeout); throughputs within [`TIE_TOLERANCE`] of the best seen are a tie, and a
//! tie goes to fewer worker-seconds. The search is a coordinate search over workers
//! per stage, batch size, queue capacity, memory budget and serial threshold; the
//! `README.md` beside this file explains it and what it costs. Its figures always come
//! from a full simulation of the scenario with the configuration in force from t = 0.
//!
//! ```no_run
//! use brigade_scenario as scenario;
//! use brigade_sim::oracle;
//!
//! let scenario = scenario::load("scenarios/saturating-db.toml".as_ref())?;
//! let oracle = oracle::search(&scenario);
//! println!("{:?} at {:.0} records/s", oracle.config.workers, oracle.run.throughput());
//! # Ok::<(), brigade_scenario::ScenarioError>(())
//! ```

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};

use brigade_controller::{Action, Static};
use rayon::prelude::*;

use crate::report::OracleReport;
use crate::{RunEnd, RunResult, Simulation, TickSample};
use brigade_scenario::{Dist, Scenario, StageKind};

/// Throughputs within this fraction of the best one seen are a tie, which goes to
/// fewer worker-seconds.
pub const TIE_TOLERANCE: f64 = 0.005;

/// A run that would finish several times more records than this is searched on a
/// shortened copy of its scenario that finishes about this many, then verified in full.
const SCREEN_RECORDS: f64 = 1_000_000.0;

/// A screening run lasts at least this many ticks.
const SCREEN_MIN_TICKS: f64 = 5.0;

/// The share of a screening run's ticks left out of its throughput.
const SCREEN_WARMUP: f64 = 0.2;

/// Screening is worth it only if it shortens runs at least this many times.
const SCREEN_MIN_SAVING: f64 = 4.0;

/// Most screened candidates verified in full, one at a time and best first, before
/// giving up on one that does not fail.
const VERIFY_MAX: usize = 3;

/// Most rounds of the coordinate search.
const MAX_ROUNDS: usize = 6;

/// The memory budget is searched in steps of this fraction of the memory available.
const BUDGET_STEPS: u64 = 16;

/// Batch sizes and queue capacities are searched over the powers of four up to 4^this.
const MAX_POW4: u32 = 8;

/// The label of the oracle's runs.
const LABEL: &str = "oracle";

/// A static configuration: every knob a policy could set, fixed for a whole run.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StaticConfig {
    /// Workers per stage, in pipeline order.
    pub workers: Vec<usize>,
    /// Capacity of every stage's input queue, records.
    pub queue_capacity: usize,
    /// Batch size of a batching sink (ignored by a sink that does not batch).
    pub batch_size: usize,
    /// Memory budget, bytes (`None` = the operator's, if any).
    pub memory_budget: Option<u64>,
    /// Records weighing at least this go through the serial lane (`None` = lane off).
    pub serial_threshold: Option<u64>,
}

impl StaticConfig {
    /// The configuration `scenario` starts with: its `[runtime]` knobs.
    pub fn of(scenario: &Scenario) -> Self {
        let runtime = &scenario.runtime;
        let workers = runtime.initial_workers.clamp(1, runtime.max_workers.max(1));
        Self {
            workers: vec![workers; scenario.stages.len()],
            queue_capacity: runtime.queue_capacity,
            batch_size: runtime.batch_size,
            memory_budget: None,
            serial_threshold: None,
        }
    }

    /// The actions that set this configuration.
    pub fn actions(&self) -> Vec<Action> {
        let mut actions: Vec<Action> = self
            .workers
            .iter()
            .enumerate()
            .flat_map(|(stage, &workers)| {
                [
                    Action::SetWorkers { stage, workers },
                    Action::SetQueueCapacity {
                        stage,
                        capacity: self.queue_capacity,
                    },
                ]
            })
            .collect();
        if let Some(stage) = self.workers.len().checked_sub(1) {
            actions.push(Action::SetBatchSize {
                stage,
                size: self.batch_size,
            });
        }
        actions.push(Action::SetMemoryBudget {
            bytes: self.memory_budget,
        });
        actions.push(Action::SetSerialThreshold {
            bytes: self.serial_threshold,
        });
        actions
    }

    /// A full simulation with this configuration in force from t = 0, labelled `label`.
    pub fn simulate(&self, scenario: &Scenario, label: &str) -> RunResult {
        self.start(scenario, label).run()
    }

    /// A simulation at t = 0 with this configuration applied.
    fn start(&self, scenario: &Scenario, label: &str) -> Simulation {
        let mut simulation = Simulation::new(scenario, Box::new(Static::new()), label);
        for action in self.actions() {
            simulation.apply(&action);
        }
        simulation
    }
}

/// The best static configuration found for a scenario, and its verifying run.
#[derive(Clone, Debug)]
pub struct Oracle {
    /// The configuration.
    pub config: StaticConfig,
    /// Its full simulation, labelled `oracle`.
    pub run: RunResult,
    /// Simulations the search ran, screening and full.
    pub evaluations: usize,
}

impl Oracle {
    /// The oracle as reports show it; `scenario` names the stages.
    pub fn report(&self, scenario: &Scenario) -> OracleReport {
        let workers: BTreeMap<String, usize> = scenario
            .stages
            .iter()
            .zip(&self.config.workers)
            .map(|(stage, &workers)| (stage.name.clone(), workers))
            .collect();
        OracleReport {
            workers,
            throughput: self.run.throughput(),
            worker_seconds: self.run.worker_seconds,
            queue_capacity: self.config.queue_capacity,
            batch_size: self.config.batch_size,
            memory_budget: self.config.memory_budget,
            serial_threshold: self.config.serial_threshold,
            failed: self.run.failed(),
            evaluations: self.evaluations,
        }
    }
}

/// Searches the best static configuration for `scenario` (see the module's docs).
/// Deterministic: the same scenario always gives the same oracle.
pub fn search(scenario: &Scenario) -> Oracle {
    search_with(scenario, SCREEN_RECORDS)
}

/// [`search`], screening on copies that finish about `screen_records` records.
fn search_with(scenario: &Scenario, screen_records: f64) -> Oracle {
    let estimate = Estimate::of(scenario);
    let screen = screening_copy(scenario, estimate.rate, screen_records);
    let starts = starts(scenario, estimate);
    let mut searcher = Searcher::new(
        screen.as_ref().unwrap_or(scenario),
        screen.is_some(),
        starts[0].clone(),
    );
    searcher.run(&starts);
    if screen.is_some() {
        return verify(scenario, searcher);
    }
    let (config, eval) = searcher.best();
    Oracle {
        config: config.clone(),
        run: eval.run.clone(),
        evaluations: searcher.evaluations,
    }
}

/// A shortened copy of `scenario` to search on, when a full run would finish several
/// times `records` records (about `rate` per second) and a shorter run tells the same:
/// no phases, no finite input, no giants (rare by definition).
fn screening_copy(scenario: &Scenario, rate: f64, records: f64) -> Option<Scenario> {
    let steady = scenario.phases.is_empty()
        && scenario.source.total.is_none()
        && scenario.source.giants.is_empty();
    let duration_s = (records / rate).max(SCREEN_MIN_TICKS * scenario.tick_s);
    (steady && duration_s * SCREEN_MIN_SAVING <= scenario.duration_s).then(|| Scenario {
        duration_s,
        ..scenario.clone()
    })
}

/// Runs the best screened candidates in full, one at a time, until one does not fail
/// (or [`VERIFY_MAX`] did), and keeps the best full run.
fn verify(scenario: &Scenario, searcher: Searcher) -> Oracle {
    let mut full: Vec<(StaticConfig, Eval)> = Vec::new();
    for config in searcher.ranked().into_iter().take(VERIFY_MAX) {
        let eval = Eval::of(scenario, config, false);
        let failed = eval.run.failed();
        full.push((config.clone(), eval));
        if !failed {
            break;
        }
    }
    let best = best_throughput(full.iter().map(|(_, eval)| eval));
    let evaluations = searcher.evaluations + full.len();
    let (config, eval) = full
        .into_iter()
        .min_by(|a, b| rank((&a.0, &a.1), (&b.0, &b.1), best))
        .expect("at least one candidate was verified");
    Oracle {
        config,
        run: eval.run,
        evaluations,
    }
}

/// What one simulation of a candidate tells the search.
#[derive(Clone, Debug)]
struct Eval {
    run: RunResult,
    /// The throughput the search compares: the run's, or its steady rate (screening).
    throughput: f64,
    /// Per stage: busy time over worker time, the share of its workers in calls.
    utilization: Vec<f64>,
}

impl Eval {
    /// Simulates `config` on `scenario`, adding up each stage's busy and worker time.
    /// `steady`: `scenario` is a screening copy, whose throughput is taken after its
    /// first [`SCREEN_WARMUP`] of ticks, so that neither the start (empty queues) nor
    /// the end (records still in flight, a larger share of a short run) weighs on it.
    fn of(scenario: &Scenario, config: &StaticConfig, steady: bool) -> Self {
        let mut simulation = config.start(scenario, LABEL);
        let stages = scenario.stages.len();
        let (mut busy, mut worker) = (vec![0.0; stages], vec![0.0; stages]);
        while let Some(tick) = simulation.step() {
            for (i, stage) in tick.snapshot.stages.iter().enumerate() {
                busy[i] += stage.busy_s;
                worker[i] += stage.worker_s;
            }
        }
        let utilization = busy
            .iter()
            .zip(&worker)
            .map(|(&busy, &worker)| if worker > 0.0 { busy / worker } else { 0.0 })
            .collect();
        let run = simulation.finish();
        let throughput = if steady {
            steady_rate(&run.series)
        } else {
            run.throughput()
        };
        Self {
            run,
            throughput,
            utilization,
        }
    }
}

/// Records per second completed after the first [`SCREEN_WARMUP`] of the ticks.
fn steady_rate(series: &[TickSample]) -> f64 {
    let skip =
        ((series.len() as f64 * SCREEN_WARMUP).ceil() as usize).min(series.len().saturating_sub(1));
    let (completed, seconds) = series[skip..].iter().fold((0, 0.0), |(n, s), tick| {
        (n + tick.completed, s + tick.window_s)
    });
    if seconds > 0.0 {
        completed as f64 / seconds
    } else {
        0.0
    }
}

/// The most throughput among the runs that did not fail (0 if all failed).
fn best_throughput<'a>(evals: impl Iterator<Item = &'a Eval>) -> f64 {
    evals
        .filter(|eval| !eval.run.failed())
        .map(|eval| eval.throughput)
        .fold(0.0, f64::max)
}

/// The order of candidates, best first, given the best throughput seen: runs that
/// did not fail before those that did; among the former, a tie with `best` (within
/// [`TIE_TOLERANCE`]) before the rest; ties by fewer worker-seconds, the rest by more
/// throughput; then by the other figure, then by the configuration itself, so that
/// the order is total and never depends on which run finished first.
fn rank(a: (&StaticConfig, &Eval), b: (&StaticConfig, &Eval), best: f64) -> Ordering {
    let class = |eval: &Eval| {
        if eval.run.failed() {
            2
        } else if eval.throughput >= (1.0 - TIE_TOLERANCE) * best {
            0
        } else {
            1
        }
    };
    // Worker-seconds to the millisecond: runs with the same pools differ only by
    // rounding in the sums.
    let cost = |eval: &Eval| (eval.run.worker_seconds * 1e3).round() as u64;
    let throughput = |eval: &Eval| eval.throughput;
    let (ea, eb) = (a.1, b.1);
    let by_cost = cost(ea).cmp(&cost(eb));
    let by_throughput = throughput(eb).total_cmp(&throughput(ea));
    class(ea).cmp(&class(eb)).then_with(|| {
        if class(ea) == 0 {
            by_cost.then(by_throughput)
        } else {
            by_throughput.then(by_cost)
        }
        .then_with(|| a.0.cmp(b.0))
    })
}

/// A knob the coordinate search moves, along a grid of values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dim {
    /// A stage's workers: 1 to `max_workers`.
    Workers(usize),
    /// A batching sink's batch size: powers of four.
    Batch,
    /// Every queue's capacity: powers of four (at least the batch size).
    Queue,
    /// The memory budget: sixteenths of the memory available, then none.
    Budget,
    /// The serial threshold: the smallest size of each class of giants, then off.
    Threshold,
}

/// The coordinate search over one scenario (full or screening copy).
struct Searcher<'a> {
    scenario: &'a Scenario,
    /// `scenario` is a screening copy: compare steady rates.
    steady: bool,
    /// Every candidate simulated so far, by configuration.
    seen: HashMap<StaticConfig, Eval>,
    /// The configuration the search stands on.
    incumbent: StaticConfig,
    /// Simulations run.
    evaluations: usize,
    /// The most throughput of a run that did not fail, so far.
    best: f64,
    /// Bytes the budget grid divides: the operator's budget or the machine's memory.
    memory: u64,
    /// Serial thresholds to try, ascending, `None` (lane off) last.
    thresholds: Vec<Option<u64>>,
}

impl<'a> Searcher<'a> {
    fn new(scenario: &'a Scenario, steady: bool, start: StaticConfig) -> Self {
        let machine = scenario.machine.memory_bytes;
        let memory = scenario
            .runtime
            .memory_budget
            .unwrap_or(machine)
            .min(machine);
        let mut bounds: Vec<u64> = scenario
            .source
            .giants
            .iter()
            .map(|giant| smallest(&giant.size).max(1.0) as u64)
            .collect();
        bounds.sort_unstable();
        bounds.dedup();
        let thresholds = bounds.into_iter().map(Some).chain([None]).collect();
        Self {
            scenario,
            steady,
            seen: HashMap::new(),
            incumbent: start,
            evaluations: 0,
            best: 0.0,
            memory,
            thresholds,
        }
    }

    /// Rounds of line searches over every knob that matters, bottleneck first, until a
    /// round changes nothing. The first round scans the bottleneck's workers coarsely
    /// before its line search, and starts every line search with wide steps. It starts
    /// from the best of `starts` (see [`starts`]) and the incumbent.
    fn run(&mut self, starts: &[StaticConfig]) {
        self.try_candidates(starts);
        for round in 1..=MAX_ROUNDS {
            let first = round == 1;
            let mut changed = false;
            let mut memory_done = false;
            if self.current().run.failed() {
                for dim in self.memory_dims() {
                    changed |= self.optimize(dim, first);
                }
                memory_done = true;
            }
            for (rank, stage) in self.stages_by_utilization().into_iter().enumerate() {
                let dim = Dim::Workers(stage);
                if first && rank == 0 {
                    changed |= self.scan(stage);
                }
                changed |= self.optimize(dim, first);
            }
            if self.batching() {
                changed |= self.optimize(Dim::Batch, first);
            }
            if !memory_done {
                for dim in self.memory_dims() {
                    changed |= self.optimize(dim, first);
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// The incumbent's evaluation.
    fn current(&self) -> &Eval {
        &self.seen[&self.incumbent]
    }

    /// Stage indexes by the incumbent's utilization, highest (the bottleneck) first.
    fn stages_by_utilization(&self) -> Vec<usize> {
        let utilization = &self.current().utilization;
        let mut stages: Vec<usize> = (0..utilization.len()).collect();
        stages.sort_by(|&a, &b| utilization[b].total_cmp(&utilization[a]));
        stages
    }

    /// The knobs that shape memory and what flows: the budget (when it matters), the
    /// serial threshold (when giants come) and the queues.
    fn memory_dims(&self) -> Vec<Dim> {
        let mut dims = Vec::new();
        if self.memory_matters() {
            dims.push(Dim::Budget);
        }
        if self.thresholds.len() > 1 {
            dims.push(Dim::Threshold);
        }
        dims.push(Dim::Queue);
        dims
    }

    /// Searches one knob: every serial threshold (there are few), or a line search.
    fn optimize(&mut self, dim: Dim, first_round: bool) -> bool {
        if dim == Dim::Threshold {
            let candidates: Vec<StaticConfig> = (0..self.thresholds.len())
                .filter_map(|k| self.with(dim, &self.incumbent, k))
                .collect();
            return self.try_candidates(&candidates);
        }
        let at = self.index(dim, &self.incumbent);
        let step = if first_round {
            self.first_step(dim, at)
        } else {
            1
        };
        self.line_search(dim, step)
    }

    /// Scans a stage's workers from half to twice the incumbent's, for the line
    /// search to start from the best: in steps of a factor of 2^⅓, or every count
    /// when the scenario has phases. Contention makes throughput bumpy in the
    /// workers; a phase that strands calls (a lock) makes it a lottery over which
    /// calls it catches, with peaks a count apart.
    fn scan(&mut self, stage: usize) -> bool {
        let at = self.incumbent.workers[stage] as f64;
        let len = self.grid_len(Dim::Workers(stage));
        let mut points: Vec<usize> = if self.scenario.phases.is_empty() {
            (-3..=3)
                .map(|k| ((at * 2f64.powf(f64::from(k) / 3.0)).round() as usize).clamp(1, len))
                .collect()
        } else {
            ((at / 2.0).round() as usize..=(at * 2.0).round() as usize)
                .map(|n| n.clamp(1, len))
                .collect()
        };
        points.dedup();
        let candidates: Vec<StaticConfig> = points
            .into_iter()
            .filter_map(|n| self.with(Dim::Workers(stage), &self.incumbent, n - 1))
            .collect();
        self.try_candidates(&candidates)
    }

    /// Evaluates `candidates` and moves to the best of them and the incumbent. True if
    /// the incumbent changed.
    fn try_candidates(&mut self, candidates: &[StaticConfig]) -> bool {
        self.evaluate(candidates);
        let best = self.best_of(candidates.iter().chain([&self.incumbent]));
        let changed = best != self.incumbent;
        self.incumbent = best;
        changed
    }

    /// The budget is worth searching when giants may come, some run crashed, or the
    /// incumbent holds a quarter of the memory.
    fn memory_matters(&self) -> bool {
        !self.scenario.source.giants.is_empty()
            || self
                .seen
                .values()
                .any(|eval| eval.run.end == RunEnd::Crashed)
            || self.seen[&self.incumbent].run.peak_inflight_bytes >= self.memory / 4
    }

    fn batching(&self) -> bool {
        self.scenario.stages.last().is_some_and(|stage| stage.batch)
    }

    /// Moves `dim` of the incumbent along its grid: tries one step either side, moves
    /// to the better (doubling the step after two moves the same way), halves the
    /// step when neither is better, and stops when a step of one finds nothing better.
    /// A batching sink's workers move down with and without a bigger batch. True if
    /// the incumbent changed.
    fn line_search(&mut self, dim: Dim, mut step: usize) -> bool {
        let len = self.grid_len(dim);
        let mut at = self.index(dim, &self.incumbent);
        let mut direction = 0i8;
        let mut changed = false;
        loop {
            let down = at.saturating_sub(step);
            let up = (at + step).min(len - 1);
            let mut candidates: Vec<StaticConfig> = [down, up]
                .into_iter()
                .filter(|&k| k != at)
                .filter_map(|k| self.with(dim, &self.incumbent, k))
                .collect();
            if down != at && dim == Dim::Workers(self.scenario.stages.len() - 1) && self.batching()
            {
                // Fewer workers of a batching sink need bigger batches: bigger batches
                // alone gain nothing while the workers keep up, so try both at once.
                let fewer = &candidates[0];
                let bigger = self.index(Dim::Batch, fewer) + 1;
                if bigger < self.grid_len(Dim::Batch) {
                    candidates.extend(self.with(Dim::Batch, fewer, bigger));
                }
            }
            self.evaluate(&candidates);
            let best = self.best_of(candidates.iter().chain([&self.incumbent]));
            if best != self.incumbent {
                let moved_to = self.index(dim, &best);
                let now = if moved_to > at { 1 } else { -1 };
                if now == direction {
                    step *= 2;
                }
                direction = now;
                at = moved_to;
                self.incumbent = best;
                changed = true;
            } else if step == 1 {
                return changed;
            } else {
                step /= 2;
                direction = 0;
            }
        }
    }

    /// The first step of a first round: an eighth of the workers, a quarter of the
    /// budget grid, one point of the others.
    fn first_step(&self, dim: Dim, at: usize) -> usize {
        match dim {
            Dim::Workers(_) => (at + 1) / 8,
            Dim::Budget => 4,
            Dim::Batch | Dim::Queue | Dim::Threshold => 1,
        }
        .max(1)
    }

    fn grid_len(&self, dim: Dim) -> usize {
        match dim {
            Dim::Workers(_) => self.scenario.runtime.max_workers.max(1),
            Dim::Batch | Dim::Queue => MAX_POW4 as usize + 1,
            Dim::Budget => BUDGET_STEPS as usize,
            Dim::Threshold => self.thresholds.len(),
        }
    }

    /// Where `config` stands on the grid of `dim`.
    fn index(&self, dim: Dim, config: &StaticConfig) -> usize {
        match dim {
            Dim::Workers(stage) => config.workers[stage] - 1,
            Dim::Batch => (config.batch_size.max(1).ilog2() / 2).min(MAX_POW4) as usize,
            Dim::Queue => (config.queue_capacity.max(1).ilog2() / 2).min(MAX_POW4) as usize,
            Dim::Budget => config
                .memory_budget
                .map_or(BUDGET_STEPS as usize - 1, |bytes| {
                    ((bytes as u128 * BUDGET_STEPS as u128 / self.memory.max(1) as u128) as usize)
                        .clamp(1, BUDGET_STEPS as usize)
                        - 1
                }),
            Dim::Threshold => self
                .thresholds
                .iter()
                .position(|&t| t == config.serial_threshold)
                .unwrap_or(self.thresholds.len() - 1),
        }
    }

    /// `config` with `dim` at grid point `k`, or `None` where that is no candidate (a
    /// queue shorter than the batch).
    fn with(&self, dim: Dim, config: &StaticConfig, k: usize) -> Option<StaticConfig> {
        let mut config = config.clone();
        match dim {
            Dim::Workers(stage) => config.workers[stage] = k + 1,
            Dim::Batch => {
                config.batch_size = 1 << (2 * k);
                config.queue_capacity = config.queue_capacity.max(1 << (2 * k + 2));
            }
            Dim::Queue => {
                if self.batching() && 1 << (2 * k) < config.batch_size {
                    return None;
                }
                config.queue_capacity = 1 << (2 * k);
            }
            Dim::Budget => {
                config.memory_budget = (k + 1 < BUDGET_STEPS as usize)
                    .then(|| (self.memory as u128 * (k as u128 + 1) / BUDGET_STEPS as u128) as u64);
            }
            Dim::Threshold => config.serial_threshold = self.thresholds[k],
        }
        Some(config)
    }

    /// Simulates, in parallel, the candidates not seen yet.
    fn evaluate(&mut self, candidates: &[StaticConfig]) {
        let mut fresh: Vec<&StaticConfig> = candidates
            .iter()
            .filter(|config| !self.seen.contains_key(config))
            .collect();
        fresh.sort();
        fresh.dedup();
        let (scenario, steady) = (self.scenario, self.steady);
        let evals: Vec<Eval> = fresh
            .par_iter()
            .map(|config| Eval::of(scenario, config, steady))
            .collect();
        self.evaluations += evals.len();
        for (config, eval) in fresh.into_iter().zip(evals) {
            if !eval.run.failed() {
                self.best = self.best.max(eval.throughput);
            }
            self.seen.insert(config.clone(), eval);
        }
    }

    /// The best of `candidates` (all seen) by [`rank`].
    fn best_of<'c>(&self, candidates: impl Iterator<Item = &'c StaticConfig>) -> StaticConfig {
        candidates
            .min_by(|a, b| rank((a, &self.seen[*a]), (b, &self.seen[*b]), self.best))
            .expect("the incumbent is always a candidate")
            .clone()
    }

    /// Every candidate seen, best first, less those whose runs cannot be told from a
    /// better one's (same records, same worker-seconds, same end: a queue deeper than
    /// was ever used, a batch larger than was ever waiting).
    fn ranked(&self) -> Vec<&StaticConfig> {
        let mut all: Vec<(&StaticConfig, &Eval)> = self.seen.iter().collect();
        all.sort_by(|a, b| rank(*a, *b, self.best));
        let mut told = HashSet::new();
        all.into_iter()
            .filter(|(_, eval)| {
                let run = &eval.run;
                told.insert((run.completed, run.worker_seconds.to_bits(), run.end as u8))
            })
            .map(|(config, _)| config)
            .collect()
    }

    /// The best candidate seen and its run.
    fn best(&self) -> (&StaticConfig, &Eval) {
        self.seen
            .iter()
            .min_by(|a, b| rank(*a, *b, self.best))
            .expect("the start was evaluated")
    }
}

/// A rough capacity model of a scenario that chooses where the search starts: mean
/// service times, the USL and the cores, no queueing, no phases.
struct Estimate {
    /// Workers to carry `rate`, a batch size, the scenario's other knobs.
    start: StaticConfig,
    /// Source records per second the pipeline can carry, at most the source's rate.
    rate: f64,
}

/// The load in force over a stretch of a run: the source's rate and each stage's
/// `service_scale`.
#[derive(Clone, Debug, PartialEq)]
struct Load {
    rate: f64,
    scales: Vec<f64>,
}

impl Load {
    /// The load at the start of `scenario`.
    fn first(scenario: &Scenario) -> Self {
        Self {
            rate: scenario.source.rate,
            scales: vec![1.0; scenario.stages.len()],
        }
    }

    /// The load at the start of `scenario`, then after each phase, in order of time
    /// (a stall changes no rate or scale: it holds the stage, then the load goes on).
    fn phases(scenario: &Scenario) -> Vec<Load> {
        let mut load = Self::first(scenario);
        let mut phases: Vec<_> = scenario.phases.iter().collect();
        phases.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        let mut loads = vec![load.clone()];
        for phase in phases {
            if let Some(rate) = phase.source_rate {
                load.rate = rate;
            }
            if let Some((stage, scale)) = phase.service_scale {
                if let Some(at) = load.scales.get_mut(stage) {
                    *at = scale;
                }
            }
            if !loads.contains(&load) {
                loads.push(load.clone());
            }
        }
        loads
    }
}

/// Where the search may start: the capacity model's configuration for the first load,
/// then for the peak load of any phase (the one that needs the most workers in all,
/// of those the highest rate), if that differs. A search that starts only from the
/// first load stays near it, and a static configuration must carry the peak too.
fn starts(scenario: &Scenario, first: Estimate) -> Vec<StaticConfig> {
    let peak = Load::phases(scenario)
        .iter()
        .map(|load| Estimate::at(scenario, load))
        .max_by(|a, b| {
            let workers = |e: &Estimate| e.start.workers.iter().sum::<usize>();
            workers(a).cmp(&workers(b)).then(a.rate.total_cmp(&b.rate))
        });
    let mut starts = vec![first.start];
    if let Some(peak) = peak {
        if peak.start != starts[0] {
            starts.push(peak.start);
        }
    }
    starts
}

impl Estimate {
    /// The estimate for the load at the start of `scenario`.
    fn of(scenario: &Scenario) -> Self {
        Self::at(scenario, &Load::first(scenario))
    }

    /// The estimate for `scenario` under `load`.
    fn at(scenario: &Scenario, load: &Load) -> Self {
        let source = &scenario.source;
        let giant_share: f64 = source.giants.iter().map(|g| 1.0 / g.every as f64).sum();
        let giant_bytes: f64 = source
            .giants
            .iter()
            .map(|g| mean(&g.size) / g.every as f64)
            .sum();
        let mut bytes = (1.0 - giant_share).max(0.0) * mean(&source.size) + giant_bytes;
        let mut records = 1.0;
        let mut start = StaticConfig::of(scenario);
        let cores = scenario.machine.cores.max(1) as f64;
        let max_workers = scenario.runtime.max_workers.max(1);
        // Per stage: seconds of work per source record.
        let mut work = Vec::with_capacity(scenario.stages.len());
        for (stage, scale) in scenario.stages.iter().zip(&load.scales) {
            let mib = bytes / (1024.0 * 1024.0);
            let service = mean(&stage.service) * scale;
            let per_mib_s = stage.per_mib_s * scale;
            let batch = if stage.batch {
                let per_record = per_mib_s * mib;
                // Batches whose bytes cost four times the call's fixed cost: 80% of
                // what an endless batch would gain.
                let ideal = if per_record > 0.0 {
                    4.0 * service / per_record
                } else {
                    1024.0
                };
                let batch =
                    1usize << (2 * (ideal.max(1.0).log2() / 2.0).round() as u32).min(2 * MAX_POW4);
                start.batch_size = batch;
                start.queue_capacity = start.queue_capacity.max(4 * batch);
                batch as f64
            } else {
                1.0
            };
            work.push(records * (service + per_mib_s * mib * batch) / batch);
            records *= stage.output_ratio;
            bytes *= stage.size_ratio;
        }
        let capacity = |i: usize, n: usize| {
            let stage = &scenario.stages[i];
            let n_f = n as f64;
            let slowdown =
                1.0 + stage.contention * (n_f - 1.0) + stage.coherency * n_f * (n_f - 1.0);
            let parallel = if stage.kind == StageKind::Cpu {
                n_f.min(cores)
            } else {
                n_f
            };
            if work[i] > 0.0 {
                parallel / (work[i] * slowdown)
            } else {
                f64::INFINITY
            }
        };
        let cpu_work: f64 = (0..work.len())
            .filter(|&i| scenario.stages[i].kind == StageKind::Cpu)
            .map(|i| work[i])
            .sum();
        let mut rate = load.rate;
        if cpu_work > 0.0 {
            rate = rate.min(cores / cpu_work);
        }
        for i in 0..work.len() {
            let most = (1..=max_workers)
                .map(|n| capacity(i, n))
                .fold(0.0, f64::max);
            rate = rate.min(most);
        }
        for (i, workers) in start.workers.iter_mut().enumerate() {
            let enough = (1..=max_workers).find(|&n| capacity(i, n) >= rate * (1.0 - 1e-9));
            *workers = enough.unwrap_or_else(|| {
                (1..=max_workers)
                    .max_by(|&a, &b| capacity(i, a).total_cmp(&capacity(i, b)))
                    .unwrap_or(1)
            });
        }
        Self {
            start,
            rate: rate.max(1e-9),
        }
    }
}

/// The mean of a distribution (for a Pareto without one, its median).
fn mean(dist: &Dist) -> f64 {
    match *dist {
        Dist::Fixed { value } => value,
        Dist::Uniform { min, max } => (min + max) / 2.0,
        Dist::LogNormal { median, p99 } => {
            let sigma = (p99 / median).ln() / 2.326_347_874_040_841;
            median * (sigma * sigma / 2.0).exp()
        }
        Dist::Pareto { min, alpha } if alpha > 1.0 => alpha * min / (alpha - 1.0),
        Dist::Pareto { min, alpha } => min * 2f64.powf(1.0 / alpha),
    }
}

/// A size below which the distribution hardly ever draws (its least value, or its
/// 1st percentile).
fn smallest(dist: &Dist) -> f64 {
    match *dist {
        Dist::Fixed { value } => value,
        Dist::Uniform { min, .. } | Dist::Pareto { min, .. } => min,
        Dist::LogNormal { median, p99 } => median * median / p99,
    }
}

#[cfg(test)]
mod test;
