//! `brigade sim --tui`: one policy through one scenario, replayed in the dashboard.
//!
//! The pacing is the sim crate's [`Replay`]; this is only the [`Feed`] that hands it to
//! the dashboard, so that neither crate knows the other.

use std::time::Instant;

use anyhow::{Context, Result};
use brigade_controller::{from_name, DecisionRecord, Override, Snapshot};
use brigade_scenario::Scenario;
use brigade_sim::{Replay, Simulation};
use brigade_tui::{Feed, Options};

/// Runs the dashboard on a replay of `policy` through `scenario` until the operator
/// quits.
pub fn run(scenario: &Scenario, policy: &str) -> Result<()> {
    let simulation = Simulation::new(scenario, from_name(policy)?, policy).with_histograms();
    let feed = ReplayFeed(Replay::new(simulation, Instant::now()));
    let options = Options {
        title: format!("{} · {policy}", scenario.name),
        ..Options::default()
    };
    brigade_tui::run(feed, options).context("the dashboard failed")
}

/// A replay as the dashboard sees it: a feed whose clock it may pause and speed up, and
/// whose drain stops it (a simulation has nothing to finish).
struct ReplayFeed(Replay);

impl Feed for ReplayFeed {
    fn poll(&mut self) -> Vec<(Snapshot, Vec<DecisionRecord>)> {
        self.0
            .poll(Instant::now())
            .into_iter()
            .map(|tick| (tick.snapshot, tick.decisions))
            .collect()
    }

    fn apply(&mut self, change: Override) {
        self.0.operate(change);
    }

    fn set_replay(&mut self, paused: bool, speed: f64) {
        self.0.set_clock(paused, speed, Instant::now());
    }

    fn is_replay(&self) -> bool {
        true
    }

    fn drain(&mut self) {
        self.0.stop();
    }

    fn finished(&self) -> bool {
        self.0.finished()
    }
}
