//! The phases of one tick of [`Adaptive::decide`](super::Adaptive), in the order it
//! runs them: observe the window, the breaker, judge last tick's growth step, find
//! the bottlenecks, grow them, deepen queues, right-size the rest. Each phase appends
//! its decisions; the rules themselves live in their own files.

use super::buffer::{absorb, buffer};
use super::{
    cores_full, current_workers, typical_call_s, Adaptive, Now, OpenCeiling, StageState, Tuning,
    View,
};
use crate::{Decision, Snapshot, StageRole, StageStats};

/// What the phases of one tick share, read once from its snapshot by
/// [`Adaptive::observe`].
pub(super) struct Window {
    /// The snapshot's tick.
    tick: u64,
    /// Each stage's view of this window.
    views: Vec<View>,
    /// Each stage's open-failure cap in force, if any.
    pub(super) caps: Vec<Option<usize>>,
    /// The sink's throughput over the last two windows: steps are judged, and their
    /// baselines taken, on two windows, because one window of a bursty pipeline is
    /// too noisy to tell a few percent.
    rate: f64,
    /// The source was held back this window: left unread for a good part of it (by
    /// the budget, a giant, a full queue), so low utilisation is a stall, not a drop
    /// in load, and no reason to shrink; or read to its end, leaving a pipeline
    /// draining, with no load to size for.
    stalled: bool,
    /// The process uses the cores to the full.
    cpu_full: bool,
}

impl Window {
    /// Stage `b` has as many workers as its open-failure cap lets it have.
    fn at_cap(&self, b: usize) -> bool {
        self.caps[b].is_some_and(|cap| self.views[b].workers >= cap)
    }
}

impl Adaptive {
    /// Phase 1, observe: updates every stage's memory with this window (open-failure
    /// caps, the sink's and each stage's recent rates, streaks, smoothed intake and
    /// load, usual call time and record weight, the USL and batch points) and
    /// returns what the later phases read of it.
    pub(super) fn observe(&mut self, snapshot: &Snapshot) -> Window {
        self.stages
            .resize_with(snapshot.stages.len(), StageState::default);
        let tuning = &self.tuning;
        let caps: Vec<Option<usize>> = self
            .stages
            .iter_mut()
            .zip(&snapshot.stages)
            .map(|(state, stats)| {
                OpenCeiling::update(tuning, &mut state.open_ceiling, stats, snapshot.at_s)
            })
            .collect();
        let views: Vec<View> = snapshot
            .stages
            .iter()
            .enumerate()
            .map(|(i, stats)| {
                let batch = snapshot.knobs.stages.get(i).map_or(1, |k| k.batch_size);
                View::of(
                    tuning,
                    stats,
                    current_workers(snapshot, i),
                    batch,
                    snapshot.window_s,
                )
            })
            .collect();
        let sink = snapshot.stages.last().expect("checked non-empty");
        let now_rate = sink.observed_rate(snapshot.window_s);
        self.recent = [self.recent[1], now_rate];
        for (state, stats) in self.stages.iter_mut().zip(&snapshot.stages) {
            let out = stats.records_out as f64 / snapshot.window_s;
            state.out_recent = [state.out_recent[1], out];
            state.in_total += stats.records_in;
            state.out_total += stats.records_out;
        }
        let rate = (self.recent[0] + self.recent[1]) / 2.0;
        let stalled = snapshot.global.source.longest_idle_s
            > tuning.stall_share * snapshot.window_s
            || snapshot.global.source.exhausted;
        let cpu_full = cores_full(tuning, snapshot);
        for ((state, stats), view) in self.stages.iter_mut().zip(&snapshot.stages).zip(&views) {
            state.observe(tuning, stats, view, snapshot.tick, snapshot.window_s);
        }
        Window {
            tick: snapshot.tick,
            views,
            caps,
            rate,
            stalled,
            cpu_full,
        }
    }

    /// Phase 2, the breaker (rule 0), on every stage the operator has not pinned.
    pub(super) fn breakers(&mut self, snapshot: &Snapshot, window: &Window) -> Vec<Decision> {
        let mut out = Vec::new();
        for (i, view) in window.views.iter().enumerate() {
            let stats = &snapshot.stages[i];
            if stats.workers.pinned {
                continue;
            }
            let knobs = snapshot.knobs.stages.get(i).cloned().unwrap_or_default();
            out.extend(self.breaker(i, stats, &knobs, view, window.tick, snapshot.window_s));
        }
        out
    }

    /// Phase 3, judge (rule 2): last tick's growth steps, on every settled stage that
    /// is neither pinned nor the breaker's. True when a step was undone or held back.
    pub(super) fn judge_steps(
        &mut self,
        snapshot: &Snapshot,
        window: &Window,
        out: &mut Vec<Decision>,
    ) -> bool {
        let mut undone = false;
        for (i, view) in window.views.iter().enumerate() {
            let stats = &snapshot.stages[i];
            if stats.workers.pinned || self.stages[i].trip.is_some() || !self.settled(i, window) {
                continue;
            }
            let rate = self.rate_past(i, window.rate);
            if let Some(decision) = self.judge(i, stats, view, rate, window.tick, window.cpu_full) {
                undone = true;
                out.push(decision);
            }
        }
        undone
    }

    /// Phase 4: every stage short of workers for long enough to grow (rule 3), that
    /// is neither pinned, stuck, the breaker's nor settling, the fullest queue first.
    pub(super) fn bottlenecks(&self, snapshot: &Snapshot, window: &Window) -> Vec<usize> {
        let tuning = &self.tuning;
        let mut bottlenecks: Vec<usize> = window
            .views
            .iter()
            .enumerate()
            .filter(|(i, view)| {
                let state = &self.stages[*i];
                view.bottleneck(tuning)
                    && state.streak >= state.streak_needed(tuning, window.tick)
                    && state.trip.is_none()
                    && state.stuck_streak == 0
                    && !snapshot.stages[*i].workers.pinned
                    && self.settled(*i, window)
            })
            .map(|(i, _)| i)
            .collect();
        bottlenecks.sort_by(|&a, &b| window.views[b].fill.total_cmp(&window.views[a].fill));
        bottlenecks
    }

    /// Phase 5, grow (rule 3): every bottleneck below its open-failure cap grows, in
    /// the same step: stages short of workers in the same windows would each, grown
    /// alone, only pass the limit to the other. Returns the stages that grew.
    pub(super) fn grow_bottlenecks(
        &mut self,
        snapshot: &Snapshot,
        window: &Window,
        bottlenecks: &[usize],
        out: &mut Vec<Decision>,
    ) -> Vec<usize> {
        let mut grown = Vec::new();
        for &b in bottlenecks.iter().filter(|&&b| !window.at_cap(b)) {
            let rate = self.rate_past(b, window.rate);
            let decisions = self.grow(
                b,
                &snapshot.stages[b],
                &window.views[b],
                rate,
                window.tick,
                snapshot,
            );
            if !decisions.is_empty() {
                grown.push(b);
            }
            out.extend(decisions);
        }
        grown
    }

    /// Phase 6, deeper queues: a buffer behind the first `bottleneck` if it did not
    /// grow and cannot (rule 4); with no growth step in flight and no stage short of
    /// workers, room for bursts (rule 5).
    pub(super) fn deepen_queues(
        &self,
        snapshot: &Snapshot,
        window: &Window,
        bottleneck: Option<usize>,
        grown: &[usize],
        probing: bool,
        out: &mut Vec<Decision>,
    ) {
        let tuning = &self.tuning;
        // Capped at its knee, or at the most workers it may have: it cannot grow.
        let capped = |b: usize| {
            self.stages[b].cap.is_some()
                || window.views[b].workers >= snapshot.stages[b].workers.max
                || window.at_cap(b)
        };
        if let Some(b) = bottleneck.filter(|&b| !grown.contains(&b) && capped(b)) {
            out.extend(buffer(
                tuning,
                b,
                &snapshot.stages[b],
                &window.views[b],
                snapshot,
            ));
        }
        if !probing && !window.views.iter().any(|view| view.bottleneck(tuning)) {
            out.extend(absorb(tuning, &self.stages, snapshot));
        }
    }

    /// Phase 7, right-size (rule 6): every settled stage that did not grow this tick,
    /// is not the first bottleneck, and is neither pinned nor the breaker's. A stage
    /// grown here starts a step that the stages after it see as in flight.
    pub(super) fn right_size_rest(
        &mut self,
        snapshot: &Snapshot,
        window: &Window,
        bottleneck: Option<usize>,
        grown: &[usize],
        undone: bool,
        out: &mut Vec<Decision>,
    ) {
        for (i, view) in window.views.iter().enumerate() {
            let stats = &snapshot.stages[i];
            if grown.contains(&i)
                || Some(i) == bottleneck
                || stats.workers.pinned
                || self.stages[i].trip.is_some()
                || !self.settled(i, window)
            {
                continue;
            }
            let now = Now {
                tick: window.tick,
                rate: self.rate_past(i, window.rate),
                stalled: window.stalled,
                held_upstream: self.held_upstream(i, snapshot, window),
                probing: undone || self.probing(),
                cpu_full: window.cpu_full,
            };
            if let Some(decision) = self.right_size(i, stats, view, now) {
                out.push(decision);
            }
        }
    }

    /// A growth step is waiting to be judged.
    pub(super) fn probing(&self) -> bool {
        self.stages.iter().any(|state| state.probe.is_some())
    }

    /// Stage `i`'s figures count again: a window has passed since its last change.
    fn settled(&self, i: usize, window: &Window) -> bool {
        window.tick > self.stages[i].changed_at + self.tuning.settle_ticks
    }

    /// A stage before `i` is short of workers and may still grow: what reaches `i`
    /// is held back, and says nothing of its load once that stage has grown.
    fn held_upstream(&self, i: usize, snapshot: &Snapshot, window: &Window) -> bool {
        (0..i).any(|j| {
            let stats = &snapshot.stages[j];
            let most = self.stages[j].cap.unwrap_or(stats.workers.max);
            window.views[j].bottleneck(&self.tuning)
                && window.views[j].workers < most
                && !stats.workers.pinned
        })
    }
}

impl StageState {
    /// Takes in one window of the stage: its streaks, smoothed intake, usual call time
    /// and record weight, whether it is busy on a giant, and, once its figures count
    /// again after a change (`tick`), its load, USL and batch points.
    fn observe(
        &mut self,
        tuning: &Tuning,
        stats: &StageStats,
        view: &View,
        tick: u64,
        window_s: f64,
    ) {
        self.streak = if view.bottleneck(tuning) {
            self.streak + 1
        } else {
            0
        };
        let queue = &stats.queue;
        self.full_streak = if queue.capacity > 0 && queue.max_depth >= queue.capacity {
            self.full_streak + 1
        } else {
            0
        };
        let intake = stats.records_in as f64 / window_s;
        self.intake += tuning.load_smoothing * (intake - self.intake);
        self.slow_intake += tuning.slow_smoothing * (intake - self.slow_intake);
        if self.trip.is_none() && self.stuck_streak == 0 {
            self.usual_call_s = typical_call_s(tuning, stats).or(self.usual_call_s);
        }
        // Against the usual weight, or the window's own before there is one (a giant
        // in the very first window).
        let sizes = &stats.record_size_bytes;
        let took_giant = self
            .usual_record_bytes
            .or_else(|| (sizes.count >= 2 && sizes.p90 > 0).then_some(sizes.p90 as f64))
            .is_some_and(|usual| sizes.max as f64 >= tuning.giant * usual);
        self.giant_pending = took_giant || (self.giant_pending && stats.records_out == 0);
        if sizes.count >= tuning.typical_calls && sizes.p90 > 0 {
            self.usual_record_bytes = Some(sizes.p90 as f64);
        }
        if tick <= self.changed_at + tuning.settle_ticks {
            return;
        }
        if let Some(typical) = typical_call_s(tuning, stats) {
            if self.usl.observe(tuning, view.concurrency, typical) {
                // The calls changed: what batches cost before says nothing now.
                self.batch_points.clear();
                self.batch_done = false;
            }
        }
        self.load = if self.load > 0.0 {
            self.load + tuning.load_smoothing * (view.concurrency - self.load)
        } else {
            view.concurrency
        };
        if let Some(call_s) = view.call_s {
            if stats.role == StageRole::BatchSink {
                if self.batch_points.len() == tuning.batch_points {
                    self.batch_points.remove(0);
                }
                self.batch_points.push((view.per_call, call_s));
            }
        }
    }
}
