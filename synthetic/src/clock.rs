//! The run's wall clock: seconds since the start, and the scenario's phases read off
//! it. A phase needs no thread of its own: whoever needs a stage's service scale or
//! the source's rate asks the clock for the one in force at that moment.

use std::time::{Duration, Instant};

use brigade_scenario::{Phase, Scenario};

use crate::work;

/// Longest sleep before [`Clock::sleep_until`] looks whether to give up.
const GIVE_UP_CHECK: Duration = Duration::from_millis(50);

/// Seconds since the start of a run, and the phases of its scenario.
pub(crate) struct Clock {
    start: Instant,
    /// Sorted by `at_s`, as the parser leaves them.
    phases: Vec<Phase>,
    /// The source's rate before any phase changes it.
    rate: f64,
}

impl Clock {
    /// A clock starting now for `scenario`'s phases.
    pub(crate) fn new(scenario: &Scenario) -> Self {
        Self {
            start: Instant::now(),
            phases: scenario.phases.clone(),
            rate: scenario.source.rate,
        }
    }

    /// Seconds since the start.
    pub(crate) fn now_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Sleeps until `at_s` seconds since the start (at once if that has passed),
    /// looking every 50 ms whether to `give_up`; false if it gave up.
    pub(crate) fn sleep_until(&self, at_s: f64, give_up: impl Fn() -> bool) -> bool {
        loop {
            let left = at_s - self.now_s();
            if left <= 0.0 {
                return true;
            }
            if give_up() {
                return false;
            }
            work::precise_timers();
            std::thread::sleep(Duration::from_secs_f64(left).min(GIVE_UP_CHECK));
        }
    }

    /// The service scale of stage `stage` at `at_s`: the last phase for it that has
    /// begun sets it, 1 before any.
    pub(crate) fn service_scale(&self, stage: usize, at_s: f64) -> f64 {
        self.begun(at_s)
            .filter_map(|phase| phase.service_scale)
            .filter(|&(index, _)| index == stage)
            .last()
            .map_or(1.0, |(_, scale)| scale)
    }

    /// How long a `stall` still holds stage `stage` at `at_s`, seconds; `None` when
    /// no stall holds it.
    pub(crate) fn stall_left(&self, stage: usize, at_s: f64) -> Option<f64> {
        self.begun(at_s)
            .filter_map(|phase| {
                phase
                    .stall
                    .map(|(index, stall_s)| (index, phase.at_s + stall_s))
            })
            .filter(|&(index, end)| index == stage && at_s < end)
            .map(|(_, end)| end - at_s)
            .reduce(f64::max)
    }

    /// The source's rate at `at_s`, records per second: the last phase that set one,
    /// else the scenario's `source.rate`.
    pub(crate) fn source_rate(&self, at_s: f64) -> f64 {
        self.begun(at_s)
            .filter_map(|phase| phase.source_rate)
            .last()
            .unwrap_or(self.rate)
    }

    fn begun(&self, at_s: f64) -> impl Iterator<Item = &Phase> {
        self.phases
            .iter()
            .take_while(move |phase| phase.at_s <= at_s)
    }
}
