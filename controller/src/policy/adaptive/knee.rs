//! Rules 2 and 3: growing the bottleneck in steps big enough to be judged, and
//! judging each step on the sink's throughput to find the knee past which more
//! workers stop paying.

use super::{clamp_workers, cores_full, Adaptive, View};
use crate::{Decision, Snapshot, StageRole, StageStats};

/// A growth step: from `from` to `to` workers, with the sink's throughput before it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Probe {
    /// Workers before the step.
    pub(super) from: usize,
    /// Workers after it.
    pub(super) to: usize,
    /// The sink's throughput before it.
    pub(super) rate_before: f64,
    /// What the stage itself delivered per second before it.
    pub(super) delivered_before: f64,
    /// The cores were full when the step was taken and the stage had a worker per
    /// core already: more workers could only share the cores, unless they wait on
    /// I/O, and the throughput tells which.
    pub(super) past_the_cores: bool,
}

impl Adaptive {
    /// Rule 2: judges last tick's growth step of stage `i`.
    pub(super) fn judge(
        &mut self,
        i: usize,
        stats: &StageStats,
        view: &View,
        rate: f64,
        tick: u64,
        cpu_full: bool,
    ) -> Option<Decision> {
        let probe = self.stages[i].probe.take()?;
        // A stage that now has time to spare, or waits on its output, passed the
        // limit on to another stage: the step did what it could. Unless the cores
        // are full: then a cpu stage's new workers only took cores from the others,
        // and the throughput alone says whether the step paid.
        // A step past the cores taken on full cores is judged so too: the burst that
        // filled them may be over by now, and leave the stage idle.
        let cpu_full = cpu_full || probe.past_the_cores;
        let passed_on =
            view.utilisation < self.tuning.busy || view.blocked >= self.tuning.held_back;
        if (passed_on && !cpu_full) || probe.rate_before <= 0.0 {
            return None;
        }
        let gain = rate / probe.rate_before - 1.0;
        let proportional = probe.to as f64 / probe.from as f64 - 1.0;
        let pays = self.tuning.knee * proportional;
        if proportional < self.tuning.judged_step || gain >= pays {
            return None;
        }
        // Some gain, less than the step's share: the peak lies between the two
        // counts, so settle in the (geometric) middle. No measurable gain: back to where it was.
        // On full cores a gain under the threshold may still be real: the stage
        // delivers measurably more and the sink lost nothing.
        let delivered_gain = self.stages[i].delivered() / probe.delivered_before - 1.0;
        let some_gain = gain >= self.tuning.measurable_gain
            || (cpu_full && gain >= 0.0 && delivered_gain >= self.tuning.measurable_gain);
        let (best, verdict) = if some_gain {
            (
                (((probe.from * probe.to) as f64).sqrt().round() as usize)
                    .clamp(probe.from + 1, probe.to),
                "near its knee",
            )
        } else {
            (probe.from, "past its knee")
        };
        let state = &mut self.stages[i];
        // The fitted curve knows better where the peak lies between the two counts,
        // and below them (cpu stages sharing full cores fit as heavy contention,
        // with a peak at a few workers); one window's throughput knows better above.
        // A step that brought some gain toward a peak the curve puts at or past it
        // stays: the middle would give back part of a gain both saw.
        let best = match state
            .usl
            .cheapest_near_peak(&self.tuning, stats.workers.max.max(1))
        {
            Some(peak) if peak > probe.from && peak < probe.to => peak,
            Some(peak) if some_gain && peak >= probe.to => probe.to,
            Some(peak) => best.min(peak),
            None => best,
        };
        let best = clamp_workers(&stats.workers, best);
        state.cap = Some(best);
        let reason = format!(
            "adaptive/knee: {} went {} → {} workers and the sink's throughput moved {:+.1}% \
             (a step that pays brings ≥ {:+.1}%); {verdict}, holding at {best}{}",
            stats.name,
            probe.from,
            probe.to,
            gain * 100.0,
            pays * 100.0,
            state.usl.describe()
        );
        self.resize(i, view.workers, best, tick, reason)
    }

    /// Rule 3: grows the bottleneck `b`.
    pub(super) fn grow(
        &mut self,
        b: usize,
        stats: &StageStats,
        view: &View,
        rate: f64,
        tick: u64,
        snapshot: &Snapshot,
    ) -> Vec<Decision> {
        let mut out = Vec::new();
        if stats.role == StageRole::BatchSink {
            if let Some(decisions) = self.grow_batch(b, stats, view, tick, snapshot) {
                return decisions;
            }
        }
        let state = &self.stages[b];
        let most = state.cap.unwrap_or(stats.workers.max);
        // Scale up fast: ×4 while the pool is small, ×2 after
        // (Not ×4 on a machine already half busy: a cpu stage would take cores from
        // the others before the step can be judged.)
        let cores = snapshot.global.cores as f64;
        let half_busy = cores > 0.0
            && snapshot.global.cpu_percent >= self.tuning.fast_start_cpu * 100.0 * cores;
        let factor = if view.workers < self.tuning.fast_start && !half_busy {
            4
        } else {
            2
        };
        let mut to = (view.workers * factor).min(most);
        if let Some(peak) = state
            .usl
            .cheapest_near_peak(&self.tuning, stats.workers.max.max(1))
        {
            // Up to the fitted peak, but in a step big enough to be judged: small
            // unjudged steps would ratchet a noisy stage up for nothing.
            let judged = (view.workers as f64 * (1.0 + self.tuning.judged_step)).ceil() as usize;
            to = to.min(peak.max(judged));
        }
        let to = clamp_workers(&stats.workers, to);
        if to <= view.workers {
            return out;
        }
        let reason = format!(
            "adaptive/bottleneck: {} is {:.0}% busy with its queue {:.0}% full; {} → {to} workers{}",
            stats.name,
            view.utilisation * 100.0,
            view.fill * 100.0,
            view.workers,
            self.stages[b].usl.describe()
        );
        if let Some(decision) = self.resize(b, view.workers, to, tick, reason) {
            let delivered_before = self.stages[b].delivered();
            self.stages[b].probe = Some(Probe {
                from: view.workers,
                to,
                rate_before: rate,
                delivered_before,
                past_the_cores: cores_full(&self.tuning, snapshot)
                    && view.workers >= snapshot.global.cores,
            });
            out.push(decision);
        }
        out
    }
}
