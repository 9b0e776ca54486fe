//! The open-failure ceiling: a stage whose workers failed to open their resource (too
//! many connections, a command that will not start) is capped at the workers live
//! then, at least its minimum, so the policy does not grow it into the failure again
//! and again. After `tuning.open_cooldown_s` of snapshot time without a failure it may
//! probe one worker more; a probe that passes another cooldown without a failure
//! lifts the cap.

use super::Tuning;
use crate::{Action, Decision, StageStats};

/// A stage's cap after failed opens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct OpenCeiling {
    /// Most workers the policy may set.
    workers: usize,
    /// Snapshot time at which the cap relaxes.
    until_s: f64,
    /// The cap is one above the workers that opened: a probe.
    probing: bool,
}

impl OpenCeiling {
    /// Updates a stage's cap from its window ending at `at_s`; returns the cap in
    /// force, if any.
    pub(super) fn update(
        tuning: &Tuning,
        ceiling: &mut Option<OpenCeiling>,
        stats: &StageStats,
        at_s: f64,
    ) -> Option<usize> {
        if stats.open_failures > 0 {
            *ceiling = Some(OpenCeiling {
                workers: stats.workers.live.max(stats.workers.min).max(1),
                until_s: at_s + tuning.open_cooldown_s,
                probing: false,
            });
        } else if let Some(cap) = *ceiling {
            if at_s >= cap.until_s {
                *ceiling = (!cap.probing).then_some(OpenCeiling {
                    workers: cap.workers + 1,
                    until_s: at_s + tuning.open_cooldown_s,
                    probing: true,
                });
            }
        }
        ceiling.map(|cap| cap.workers)
    }
}

/// Lowers each `SetWorkers` decision above its stage's cap to the cap, saying `why`
/// (`"; capped at N: {why}"`), and drops it if that leaves the stage's worker count
/// (`current`) as it is. The caps of the open-failure ceiling and of throttling both
/// apply through it.
pub(super) fn cap_decisions(
    decisions: &mut Vec<Decision>,
    caps: &[Option<usize>],
    why: &str,
    current: impl Fn(usize) -> usize,
) {
    decisions.retain_mut(|decision| {
        let Action::SetWorkers { stage, workers } = &mut decision.action else {
            return true;
        };
        let Some(cap) = caps.get(*stage).copied().flatten() else {
            return true;
        };
        if *workers <= cap {
            return true;
        }
        *workers = cap;
        decision
            .reason
            .push_str(&format!("; capped at {cap}: {why}"));
        cap != current(*stage)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::test_support::{set_workers, StageBuilder};

    fn stats(live: usize, min: usize, open_failures: u64) -> StageStats {
        let (mut stats, _) = StageBuilder::new("db")
            .bounds(min, 64)
            .workers(live)
            .build(1.0);
        stats.open_failures = open_failures;
        stats
    }

    #[test]
    fn a_failed_open_caps_the_stage_at_its_live_workers_then_probes_one_more() {
        let mut ceiling = None;
        assert_eq!(
            OpenCeiling::update(&Tuning::default(), &mut ceiling, &stats(3, 1, 0), 1.0),
            None
        );
        assert_eq!(
            OpenCeiling::update(&Tuning::default(), &mut ceiling, &stats(3, 1, 2), 2.0),
            Some(3)
        );
        assert_eq!(
            OpenCeiling::update(&Tuning::default(), &mut ceiling, &stats(3, 1, 0), 31.0),
            Some(3)
        );
        // The cooldown has passed: one worker more may be tried.
        assert_eq!(
            OpenCeiling::update(&Tuning::default(), &mut ceiling, &stats(3, 1, 0), 32.0),
            Some(4)
        );
        // The probe failed to open: capped at the workers live again.
        assert_eq!(
            OpenCeiling::update(&Tuning::default(), &mut ceiling, &stats(3, 1, 1), 33.0),
            Some(3)
        );
        assert_eq!(
            OpenCeiling::update(&Tuning::default(), &mut ceiling, &stats(3, 1, 0), 63.0),
            Some(4)
        );
        // A probe that passes a cooldown without a failure lifts the cap.
        assert_eq!(
            OpenCeiling::update(&Tuning::default(), &mut ceiling, &stats(4, 1, 0), 93.0),
            None
        );
    }

    #[test]
    fn the_cap_is_never_below_the_stage_minimum() {
        let mut ceiling = None;
        assert_eq!(
            OpenCeiling::update(&Tuning::default(), &mut ceiling, &stats(1, 4, 1), 5.0),
            Some(4)
        );
    }

    #[test]
    fn growth_past_the_cap_is_lowered_to_it_or_dropped() {
        let grow =
            |stage, workers| Decision::new(Action::SetWorkers { stage, workers }, "bottleneck");
        let mut decisions = vec![grow(0, 8), grow(1, 8), grow(2, 2)];
        cap_decisions(
            &mut decisions,
            &[Some(4), Some(3), Some(3)],
            "its workers failed to open",
            |stage| [2, 3, 3][stage],
        );
        // Stage 0 grows to its cap only; stage 1 is at its cap already; stage 2
        // shrinks, which a cap never stops.
        assert_eq!(set_workers(&decisions), vec![(0, 4), (2, 2)]);
        assert!(
            decisions[0].reason.contains("capped at 4"),
            "{}",
            decisions[0].reason
        );
    }
}
