//! brigade-tui: the terminal dashboard.
//!
//! One screen, readable at a glance, for people who run pipelines for a living: a
//! header with the pipeline-wide figures, a table of stages, a detail pane for the
//! selected stage (history charts and histograms), the serial lane, and the log of
//! every knob the controller (or the operator) moved, with its reason. Keys pin and
//! unpin a stage's workers, pause the controller, change the memory budget, steer a
//! replay, and quit with a drain.
//!
//! The dashboard knows [`Snapshot`]s and [`DecisionRecord`]s, never threads: whatever
//! produces them (the runtime's monitor, a simulation replay) implements [`Feed`], and
//! [`run`] does the rest. [`App`] is the same dashboard without a terminal, for tests.
//!
//! The crate is laid out like tokio-console: `state` holds what the feed told us,
//! `view` draws it (one widget a file), [`input`] turns keys into [`Command`]s.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod app;
pub mod input;
mod state;
mod terminal;
mod view;

use std::io;
use std::time::Duration;

use brigade_controller::{DecisionRecord, Override, Snapshot};
use ratatui::crossterm::event::{self, Event};

pub use app::App;
pub use input::Command;

/// What the dashboard shows and where its commands go. Implemented by the binary for a
/// live pipeline (runtime Monitor) and for a simulation replay.
pub trait Feed {
    /// New ticks since the last call (non-blocking).
    fn poll(&mut self) -> Vec<(Snapshot, Vec<DecisionRecord>)>;
    /// Operator overrides (pin/unpin/pause/resume/budget).
    fn apply(&mut self, change: Override);
    /// Replays only: pause/resume the clock and set the speed (×); live feeds ignore these.
    fn set_replay(&mut self, _paused: bool, _speed: f64) {}
    /// True for a replay, whose clock the dashboard may pause and speed up.
    fn is_replay(&self) -> bool {
        false
    }
    /// Starts a drain (quit); progress then comes through snapshots (totals.in_flight)
    /// until `finished()`.
    fn drain(&mut self);
    /// True once the pipeline has ended: drained, or run to its end.
    fn finished(&self) -> bool;
}

/// How the dashboard looks and behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Shown in the header beside "brigade": the pipeline, scenario or policy.
    pub title: String,
    /// Longest time between two redraws; input redraws at once.
    pub redraw: Duration,
    /// Ticks of history kept for the charts and sparklines.
    pub history: usize,
    /// Decisions kept in the log.
    pub log: usize,
    /// Replay speed to start at (×), between 0.25 and 64.
    pub speed: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            title: String::new(),
            redraw: Duration::from_millis(150),
            history: 300,
            log: 1000,
            speed: 1.0,
        }
    }
}

/// Runs the dashboard on the terminal until the operator quits (after a drain, or at
/// once with a second `q`).
///
/// It owns the terminal: raw mode and the alternate screen, both restored on exit and
/// on panic. It redraws every [`Options::redraw`] and on input, and only ever polls the
/// feed, so a stalled pipeline never freezes the screen.
pub fn run<F: Feed>(mut feed: F, options: Options) -> io::Result<()> {
    let redraw = options.redraw;
    let mut terminal = terminal::Guard::enter()?;
    let mut app = App::new(options);
    app.attach(&mut feed);
    loop {
        app.poll(&mut feed);
        if app.should_exit() {
            break;
        }
        terminal.draw(|frame| app.render(frame))?;
        if event::poll(redraw)? {
            loop {
                if let Event::Key(key) = event::read()? {
                    app.handle_key(key, &mut feed);
                }
                if !event::poll(Duration::ZERO)? {
                    break;
                }
            }
        }
    }
    terminal.leave()
}
