//! Rule 6: every stage that is not the bottleneck sized to its load: grown at once when
//! it runs out of headroom, shrunk only after a long calm (scale down lazily, never
//! while a backlog drains).

use super::knee::Probe;
use super::{clamp_workers, Adaptive, Now, View, BACKLOG, HELD_BACK, TARGET_UTILISATION};
use crate::{Decision, StageStats};

/// An input queue fuller than this share of its capacity is a backlog to drain
/// before shrinking.
const CALM_FILL: f64 = 0.25;
/// Windows in a row a stage must look oversized before it shrinks (scale down lazily).
pub(super) const CALM_TICKS: u32 = 30;

impl Adaptive {
    /// Rule 6: sizes a stage that is not the bottleneck to its load.
    pub(super) fn right_size(
        &mut self,
        i: usize,
        stats: &StageStats,
        view: &View,
        now: Now,
    ) -> Option<Decision> {
        let Now {
            tick,
            rate,
            stalled,
            held_upstream,
            probing,
            cpu_full,
        } = now;
        let state = &mut self.stages[i];
        let target = clamp_workers(&stats.workers, view.right_size());
        let working = state.stuck_streak == 0 && view.short_of_workers;
        if view.utilisation >= 0.9
            && view.fill < BACKLOG
            && working
            && !cpu_full
            && target > view.workers
            && !probing
        {
            state.calm = 0;
            let target = state
                .cap
                .map_or(target, |cap| target.min(cap.max(view.workers)));
            let reason = format!(
                "adaptive/right-size: {} is {:.0}% busy with {:.1} calls in progress; {} → {target} workers for {:.0}% utilisation",
                stats.name,
                view.utilisation * 100.0,
                view.concurrency,
                view.workers,
                TARGET_UTILISATION * 100.0
            );
            let decision = self.resize(i, view.workers, target, tick, reason)?;
            let delivered_before = self.stages[i].delivered();
            self.stages[i].probe = Some(Probe {
                from: view.workers,
                to: target,
                rate_before: rate,
                delivered_before,
                // This rule grows a stage only on cores with room to spare.
                past_the_cores: false,
            });
            return Some(decision);
        }
        let smoothed = ((state.load / TARGET_UTILISATION).ceil() as usize).max(1);
        let target = clamp_workers(&stats.workers, smoothed);
        // A queue backed up behind a stage that mostly waits on its own output is
        // not a backlog this stage could drain faster.
        let no_backlog = view.fill < CALM_FILL || view.blocked >= HELD_BACK;
        // A stalled window says nothing either way, nor does one held back by a
        // stage upstream: the count neither grows nor starts again (with a giant
        // every few seconds it never got to 30).
        if !stalled && !held_upstream {
            state.calm = if no_backlog && target < view.workers {
                state.calm + 1
            } else {
                0
            };
        }
        if state.calm < CALM_TICKS {
            return None;
        }
        state.calm = 0;
        let reason = format!(
            "adaptive/right-size: {} ran {:.1} calls in progress on {} workers for {CALM_TICKS} windows with no backlog; {} → {target} workers for {:.0}% utilisation",
            stats.name,
            state.load,
            view.workers,
            view.workers,
            TARGET_UTILISATION * 100.0
        );
        self.resize(i, view.workers, target, tick, reason)
    }
}
