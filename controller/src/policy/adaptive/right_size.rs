//! Rule 6: every stage that is not the bottleneck sized to its load: grown at once when
//! it runs out of headroom, shrunk only after a long calm (scale down lazily, never
//! while a backlog drains).

use super::knee::Probe;
use super::{clamp_workers, Adaptive, Now, View};
use crate::{Decision, StageStats};

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
        let tuning = &self.tuning;
        let target = clamp_workers(&stats.workers, view.right_size(tuning));
        let working = state.stuck_streak == 0 && view.short_of_workers;
        if view.utilisation >= tuning.grow_busy
            && view.fill < tuning.backlog
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
                tuning.target_utilisation * 100.0
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
        let smoothed = ((state.load / tuning.target_utilisation).ceil() as usize).max(1);
        let target = clamp_workers(&stats.workers, smoothed);
        // A queue backed up behind a stage that mostly waits on its own output is
        // not a backlog this stage could drain faster.
        let no_backlog = view.fill < tuning.calm_fill || view.blocked >= tuning.held_back;
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
        if state.calm < tuning.calm_ticks {
            return None;
        }
        state.calm = 0;
        let reason = format!(
            "adaptive/right-size: {} ran {:.1} calls in progress on {} workers for {} windows with no backlog; {} → {target} workers for {:.0}% utilisation",
            stats.name,
            state.load,
            view.workers,
            tuning.calm_ticks,
            view.workers,
            tuning.target_utilisation * 100.0
        );
        self.resize(i, view.workers, target, tick, reason)
    }
}
