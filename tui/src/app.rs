//! The dashboard without a terminal: state, the commands that change it, and drawing.

use brigade_controller::{DecisionRecord, Override, Snapshot};
use ratatui::crossterm::event::KeyEvent;
use ratatui::Frame;

use crate::input::{self, Command};
use crate::state::{Drain, Replay, State, MAX_SPEED, MIN_SPEED};
use crate::view;
use crate::{Feed, Options};

/// Decisions one page of scrolling moves the log by.
const LOG_PAGE: usize = 10;

/// The dashboard: what the feed said, what the operator asked for, and how to draw it.
///
/// [`run`](crate::run) drives it from a terminal; tests drive it directly, drawing into
/// ratatui's `TestBackend`:
///
/// ```
/// use brigade_tui::{App, Options};
/// use ratatui::{backend::TestBackend, Terminal};
///
/// let app = App::new(Options::default());
/// let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
/// terminal.draw(|frame| app.render(frame)).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct App {
    state: State,
    speed: f64,
}

impl App {
    /// A dashboard with nothing to show yet.
    pub fn new(options: Options) -> Self {
        Self {
            state: State::new(options.title, options.history, options.log),
            speed: options.speed.clamp(MIN_SPEED, MAX_SPEED),
        }
    }

    /// Learns whether `feed` is a replay and, if so, starts its clock at the speed of
    /// [`Options::speed`]. Call once, before the first [`poll`](Self::poll).
    pub fn attach<F: Feed + ?Sized>(&mut self, feed: &mut F) {
        if feed.is_replay() {
            let replay = Replay {
                paused: false,
                speed: self.speed,
            };
            feed.set_replay(replay.paused, replay.speed);
            self.state.replay = Some(replay);
        }
        self.state.finished = feed.finished();
    }

    /// Takes every tick the feed has ready, and closes the dashboard once a drain the
    /// operator asked for has finished.
    pub fn poll<F: Feed + ?Sized>(&mut self, feed: &mut F) {
        for (snapshot, decisions) in feed.poll() {
            self.ingest(snapshot, decisions);
        }
        self.state.finished = feed.finished();
        if self.state.finished && self.state.drain.is_some() {
            self.state.exit = true;
        }
    }

    /// Takes one tick: a snapshot and the decisions made after it.
    pub fn ingest(&mut self, snapshot: Snapshot, decisions: Vec<DecisionRecord>) {
        self.state.ingest(snapshot, decisions);
    }

    /// Acts on a key press (see [`input::command`] for the map).
    pub fn handle_key<F: Feed + ?Sized>(&mut self, key: KeyEvent, feed: &mut F) {
        if let Some(command) = input::command(key) {
            self.update(command, feed);
        }
    }

    /// Acts on a command; overrides and replay changes go to `feed`.
    pub fn update<F: Feed + ?Sized>(&mut self, command: Command, feed: &mut F) {
        let state = &mut self.state;
        match command {
            Command::Up => state.selected = state.selected.saturating_sub(1),
            Command::Down => {
                state.selected = (state.selected + 1).min(state.board.stages().saturating_sub(1));
            }
            Command::PinUp => self.pin(1, feed),
            Command::PinDown => self.pin(-1, feed),
            Command::Unpin => self.unpin(feed),
            Command::TogglePause => self.toggle_pause(feed),
            Command::BudgetDown => self.scale_budget(0.8, feed),
            Command::BudgetUp => self.scale_budget(1.25, feed),
            Command::Freeze => {
                if state.frozen.take().is_some() {
                    state.status = Some("display live again".into());
                } else {
                    state.frozen = Some(state.board.clone());
                    state.status = Some("display frozen: f lets it move again".into());
                }
            }
            Command::Slower => {
                self.steer_replay(feed, |r| r.speed = (r.speed / 2.0).max(MIN_SPEED));
            }
            Command::Faster => {
                self.steer_replay(feed, |r| r.speed = (r.speed * 2.0).min(MAX_SPEED));
            }
            Command::ToggleReplay => self.steer_replay(feed, |r| r.paused = !r.paused),
            Command::LogOlder => {
                let last = state.shown().log.len().saturating_sub(1);
                state.log_offset = (state.log_offset + LOG_PAGE).min(last);
            }
            Command::LogNewer => state.log_offset = state.log_offset.saturating_sub(LOG_PAGE),
            Command::Help => state.help = !state.help,
            Command::Back => state.help = false,
            Command::Quit => self.quit(feed),
        }
    }

    /// Draws the whole screen into `frame`.
    pub fn render(&self, frame: &mut Frame) {
        view::render(&self.state, frame);
    }

    /// True once the dashboard should close: a drain finished, or a second `q`.
    pub fn should_exit(&self) -> bool {
        self.state.exit
    }

    /// Index of the selected stage.
    pub fn selected(&self) -> usize {
        self.state.selected
    }

    /// What the last command did, as the footer shows it.
    pub fn status(&self) -> Option<&str> {
        self.state.status.as_deref()
    }

    fn pin<F: Feed + ?Sized>(&mut self, delta: isize, feed: &mut F) {
        let state = &mut self.state;
        let index = state.selected;
        let Some(stage) = state
            .board
            .latest
            .as_ref()
            .and_then(|s| s.stages.get(index))
        else {
            state.status = Some("no stage to pin yet".into());
            return;
        };
        let workers = &stage.workers;
        let pinned = workers.pinned && !state.pending.unpinned.contains(&index);
        let base = state
            .pending
            .pins
            .get(&index)
            .copied()
            .unwrap_or(if pinned { workers.target } else { workers.live });
        let lowest = workers.min.max(1);
        let highest = if workers.max > 0 {
            workers.max
        } else {
            usize::MAX
        };
        let wanted = base.saturating_add_signed(delta);
        if wanted < lowest {
            state.status = Some(format!("{} is at its minimum of {lowest}", stage.name));
            return;
        }
        if wanted > highest {
            state.status = Some(format!("{} is at its maximum of {highest}", stage.name));
            return;
        }
        feed.apply(Override::PinWorkers {
            stage: index,
            workers: wanted,
        });
        state.status = Some(format!("pinned {} at {wanted} workers", stage.name));
        state.pending.pins.insert(index, wanted);
        state.pending.unpinned.retain(|&i| i != index);
    }

    fn unpin<F: Feed + ?Sized>(&mut self, feed: &mut F) {
        let state = &mut self.state;
        let index = state.selected;
        let Some(stage) = state
            .board
            .latest
            .as_ref()
            .and_then(|s| s.stages.get(index))
        else {
            state.status = Some("no stage to unpin yet".into());
            return;
        };
        feed.apply(Override::Unpin { stage: index });
        state.status = Some(format!("{} is the controller's again", stage.name));
        state.pending.pins.remove(&index);
        state.pending.unpinned.push(index);
    }

    fn toggle_pause<F: Feed + ?Sized>(&mut self, feed: &mut F) {
        let state = &mut self.state;
        let paused = state
            .pending
            .paused
            .unwrap_or_else(|| state.board.latest.as_ref().is_some_and(|s| s.paused));
        if paused {
            feed.apply(Override::Resume);
            state.status = Some("controller resumed".into());
        } else {
            feed.apply(Override::Pause);
            state.status = Some("controller paused: knobs stay where they are".into());
        }
        state.pending.paused = Some(!paused);
    }

    fn scale_budget<F: Feed + ?Sized>(&mut self, factor: f64, feed: &mut F) {
        let state = &mut self.state;
        let Some(snapshot) = state.board.latest.as_ref() else {
            state.status = Some("no budget to change yet".into());
            return;
        };
        let global = &snapshot.global;
        let in_flight = (global.inflight_bytes_max > 0).then_some(global.inflight_bytes_max);
        let Some(base) = state
            .pending
            .budget
            .or(global.memory_budget)
            .or(snapshot.knobs.memory_budget)
            .or(in_flight)
        else {
            state.status = Some("no budget, and nothing in flight to start one from".into());
            return;
        };
        let bytes = (base as f64 * factor).round().max(1.0) as u64;
        feed.apply(Override::SetBudget { bytes: Some(bytes) });
        state.status = Some(format!("memory budget → {}", view::format::bytes(bytes)));
        state.pending.budget = Some(bytes);
    }

    fn steer_replay<F: Feed + ?Sized>(&mut self, feed: &mut F, change: impl FnOnce(&mut Replay)) {
        let state = &mut self.state;
        let Some(replay) = state.replay.as_mut() else {
            state.status = Some("a live pipeline runs on the wall clock: no replay keys".into());
            return;
        };
        change(replay);
        feed.set_replay(replay.paused, replay.speed);
        state.status = Some(if replay.paused {
            format!("replay paused at {}×", view::format::speed(replay.speed))
        } else {
            format!("replay at {}×", view::format::speed(replay.speed))
        });
    }

    fn quit<F: Feed + ?Sized>(&mut self, feed: &mut F) {
        let state = &mut self.state;
        if state.drain.is_some() || state.finished {
            state.exit = true;
            return;
        }
        feed.drain();
        state.drain = Some(Drain {
            from: state.in_flight(),
            since_s: state.board.latest.as_ref().map_or(0.0, |s| s.at_s),
        });
        state.frozen = None;
        state.help = false;
        state.status = Some("draining: q again quits at once".into());
    }
}
