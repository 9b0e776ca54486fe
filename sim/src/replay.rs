//! A simulation replayed on the wall clock, for viewers that show it as it runs (the
//! dashboard of `brigade sim --tui`).

use std::time::Instant;

use brigade_controller::Override;

use crate::{Simulation, TickOutput};

/// Most ticks one [`Replay::poll`] runs. A replay that the simulation (or the viewer)
/// cannot keep up with runs as fast as it can, and does not race to catch up later.
pub const MAX_TICKS_PER_POLL: usize = 16;

/// A [`Simulation`] paced by the wall clock.
///
/// Virtual time runs at `speed ×` wall time: at 1× a scenario with 1 s ticks gives a
/// tick every wall second. The viewer polls for the ticks that are due, may pause the
/// clock or change its speed, steers the simulation with the operator's overrides, and
/// stops the replay when it is done with it. The wall time is always passed in, so the
/// pacing is tested without waiting.
///
/// ```no_run
/// use std::time::{Duration, Instant};
///
/// use brigade_controller::Adaptive;
/// use brigade_scenario as scenario;
/// use brigade_sim::{Replay, Simulation};
///
/// let scenario = scenario::load("scenarios/cpu-bound.toml".as_ref())?;
/// let simulation = Simulation::new(&scenario, Box::new(Adaptive::new()), "adaptive");
/// let mut replay = Replay::new(simulation, Instant::now());
/// replay.set_clock(false, 8.0, Instant::now());
/// while !replay.finished() {
///     for tick in replay.poll(Instant::now()) {
///         println!("{:.0} s: {} decisions", tick.snapshot.at_s, tick.decisions.len());
///     }
///     std::thread::sleep(Duration::from_millis(100));
/// }
/// # Ok::<(), brigade_scenario::ScenarioError>(())
/// ```
pub struct Replay {
    simulation: Simulation,
    tick_s: f64,
    /// Virtual seconds the replay's clock has reached.
    clock_s: f64,
    /// Virtual time of the end of the next window.
    next_tick_s: f64,
    /// Wall time up to which `clock_s` has been brought.
    wall: Instant,
    /// Virtual seconds per wall second.
    speed: f64,
    paused: bool,
    /// The simulation ran to its end.
    ended: bool,
    /// The viewer stopped the replay.
    stopped: bool,
}

impl Replay {
    /// `simulation` from its start, its clock running at 1× from `now`.
    pub fn new(simulation: Simulation, now: Instant) -> Self {
        let tick_s = simulation.scenario().tick_s;
        Self {
            simulation,
            tick_s,
            clock_s: 0.0,
            next_tick_s: tick_s,
            wall: now,
            speed: 1.0,
            paused: false,
            ended: false,
            stopped: false,
        }
    }

    /// Pauses or runs the clock, at `speed` virtual seconds per wall second (a negative
    /// or NaN speed stands still), from `now` on; the time before ran at the old pace.
    pub fn set_clock(&mut self, paused: bool, speed: f64, now: Instant) {
        self.catch_up(now);
        self.paused = paused;
        self.speed = speed.max(0.0);
    }

    /// Runs the simulation through every tick that is due by `now` (at most
    /// [`MAX_TICKS_PER_POLL`]) and returns them, oldest first. Nothing once the
    /// replay has [finished](Self::finished).
    pub fn poll(&mut self, now: Instant) -> Vec<TickOutput> {
        self.catch_up(now);
        let mut ticks = Vec::new();
        while !self.finished() && self.clock_s >= self.next_tick_s {
            if ticks.len() == MAX_TICKS_PER_POLL {
                self.clock_s = self.next_tick_s - self.tick_s;
                break;
            }
            match self.simulation.step() {
                Some(tick) => {
                    self.next_tick_s = tick.snapshot.at_s + self.tick_s;
                    ticks.push(tick);
                }
                None => self.ended = true,
            }
        }
        ticks
    }

    /// Applies an operator's override to the simulation now
    /// ([`Simulation::operate`]); the next tick shows it.
    pub fn operate(&mut self, change: Override) {
        self.simulation.operate(change);
    }

    /// Stops the replay: no tick comes after this.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// True once the simulation has run to its end, or the replay was stopped.
    pub fn finished(&self) -> bool {
        self.ended || self.stopped
    }

    /// Brings the virtual clock up to `now` at the current pace.
    fn catch_up(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.wall).as_secs_f64();
        self.wall = self.wall.max(now);
        if !self.paused {
            self.clock_s += elapsed * self.speed;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use brigade_controller::Static;

    use super::*;
    use brigade_scenario as scenario;

    /// One stage, 1 s ticks, `duration` long.
    fn replay(duration: &str, start: Instant) -> Replay {
        let scenario = scenario::parse_str(
            &format!(
                r#"name = "replayed"
duration = "{duration}"

[source]
rate = 100
size = {{ dist = "fixed", value = "1KiB" }}

[[stage]]
name = "store"
kind = "io"
service = {{ dist = "fixed", value = "5ms" }}
"#
            ),
            "replayed.toml",
        )
        .expect("the scenario parses");
        Replay::new(
            Simulation::new(&scenario, Box::new(Static::new()), "static"),
            start,
        )
    }

    fn at(start: Instant, seconds: f64) -> Instant {
        start + Duration::from_secs_f64(seconds)
    }

    /// The virtual times of the ticks a poll at `seconds` gives.
    fn polled(replay: &mut Replay, start: Instant, seconds: f64) -> Vec<f64> {
        replay
            .poll(at(start, seconds))
            .iter()
            .map(|tick| tick.snapshot.at_s)
            .collect()
    }

    #[test]
    fn at_one_times_a_tick_comes_every_wall_second() {
        let start = Instant::now();
        let mut replay = replay("1m", start);
        assert!(polled(&mut replay, start, 0.5).is_empty());
        assert_eq!(polled(&mut replay, start, 1.0), [1.0]);
        assert_eq!(polled(&mut replay, start, 2.5), [2.0]);
        assert!(polled(&mut replay, start, 2.9).is_empty());
        assert_eq!(polled(&mut replay, start, 3.0), [3.0]);
    }

    #[test]
    fn speed_scales_the_clock_from_the_moment_it_changes() {
        let start = Instant::now();
        let mut replay = replay("1m", start);
        replay.set_clock(false, 4.0, at(start, 0.5));
        assert_eq!(polled(&mut replay, start, 1.0), [1.0, 2.0]);
        replay.set_clock(false, 0.5, at(start, 1.5));
        assert_eq!(polled(&mut replay, start, 1.5), [3.0, 4.0]);
        assert!(polled(&mut replay, start, 2.0).is_empty());
        assert_eq!(polled(&mut replay, start, 2.5), [5.0]);
    }

    #[test]
    fn a_paused_clock_stands_still() {
        let start = Instant::now();
        let mut replay = replay("1m", start);
        replay.set_clock(true, 1.0, at(start, 0.5));
        assert!(polled(&mut replay, start, 60.0).is_empty());
        replay.set_clock(false, 1.0, at(start, 60.0));
        assert!(polled(&mut replay, start, 60.4).is_empty());
        assert_eq!(polled(&mut replay, start, 60.5), [1.0]);
    }

    #[test]
    fn a_poll_runs_at_most_its_share_of_ticks_and_drops_the_rest() {
        let start = Instant::now();
        let mut replay = replay("10m", start);
        replay.set_clock(false, 64.0, start);
        let first = polled(&mut replay, start, 1.0);
        assert_eq!(first.len(), MAX_TICKS_PER_POLL);
        assert_eq!(first.last(), Some(&(MAX_TICKS_PER_POLL as f64)));
        assert!(polled(&mut replay, start, 1.0).is_empty());
        let next = polled(&mut replay, start, 1.05);
        assert_eq!(next, [17.0, 18.0, 19.0]);
    }

    #[test]
    fn overrides_reach_the_simulation() {
        let start = Instant::now();
        let mut replay = replay("1m", start);
        replay.operate(Override::PinWorkers {
            stage: 0,
            workers: 3,
        });
        replay.operate(Override::Pause);
        let ticks = replay.poll(at(start, 1.0));
        let snapshot = &ticks[0].snapshot;
        assert!(snapshot.paused);
        assert!(snapshot.stages[0].workers.pinned);
        assert_eq!(snapshot.stages[0].workers.target, 3);
        assert_eq!(ticks[0].decisions[0].by, "operator");
    }

    #[test]
    fn it_finishes_at_the_end_of_the_run_or_when_stopped() {
        let start = Instant::now();
        let mut ended = replay("3s", start);
        assert_eq!(polled(&mut ended, start, 3.5), [1.0, 2.0, 3.0]);
        assert!(!ended.finished());
        assert!(polled(&mut ended, start, 4.0).is_empty());
        assert!(ended.finished());

        let mut stopped = replay("1m", start);
        assert_eq!(polled(&mut stopped, start, 1.0), [1.0]);
        stopped.stop();
        assert!(stopped.finished());
        assert!(polled(&mut stopped, start, 30.0).is_empty());
    }
}
