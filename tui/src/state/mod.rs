//! The dashboard's state: what the feed has told us so far, and what the operator has
//! asked for. Nothing here draws or talks to the feed.

mod history;
mod progress;
mod ring;

use std::collections::BTreeMap;

use brigade_controller::fleet::Capacity;
use brigade_controller::{DecisionRecord, Snapshot};

pub(crate) use history::History;
pub(crate) use progress::ReadRate;
pub(crate) use ring::Ring;

/// Slowest replay speed the keys reach (×).
pub(crate) const MIN_SPEED: f64 = 0.25;
/// Fastest replay speed the keys reach (×).
pub(crate) const MAX_SPEED: f64 = 64.0;

/// What the screen draws: the latest snapshot, the history behind it and the log.
/// Freezing the display keeps a copy of one while the feed goes on filling the other.
#[derive(Clone, Debug)]
pub(crate) struct Board {
    /// The newest snapshot, once a tick has passed.
    pub(crate) latest: Option<Snapshot>,
    /// Figures of the last ticks, for the charts.
    pub(crate) history: History,
    /// Decisions, oldest first.
    pub(crate) log: Ring<DecisionRecord>,
    /// How fast a finite source reads.
    pub(crate) read_rate: ReadRate,
    /// What this process can finish per second, for the processes a consumer group's
    /// backlog calls for.
    pub(crate) capacity: Capacity,
}

impl Board {
    fn new(history: usize, log: usize) -> Self {
        Self {
            latest: None,
            history: History::new(history),
            log: Ring::new(log),
            read_rate: ReadRate::default(),
            capacity: Capacity::default(),
        }
    }

    fn record(&mut self, snapshot: Snapshot, decisions: Vec<DecisionRecord>) {
        self.history.record(&snapshot);
        self.read_rate.record(&snapshot);
        self.capacity.observe(&snapshot);
        for decision in decisions {
            self.log.push(decision);
        }
        self.latest = Some(snapshot);
    }

    /// True when the newest snapshot has a line of its source's own: how far a
    /// finite source has read, or the consumer group a shared one reads in.
    pub(crate) fn has_source_line(&self) -> bool {
        self.latest.as_ref().is_some_and(|s| {
            let source = &s.global.source;
            source.progress.is_some() || source.group.is_some()
        })
    }

    /// Number of stages in the newest snapshot.
    pub(crate) fn stages(&self) -> usize {
        self.latest.as_ref().map_or(0, |s| s.stages.len())
    }
}

/// Overrides sent since the last snapshot, which does not show them yet: a second `+`
/// before the next tick pins one more, not the same count again.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pending {
    /// Stage → worker count last pinned.
    pub(crate) pins: BTreeMap<usize, usize>,
    /// Stages unpinned.
    pub(crate) unpinned: Vec<usize>,
    /// Budget last set.
    pub(crate) budget: Option<u64>,
    /// Controller paused (true) or resumed (false).
    pub(crate) paused: Option<bool>,
}

/// The replay's clock as the operator set it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Replay {
    /// The clock is stopped.
    pub(crate) paused: bool,
    /// Virtual seconds per real second.
    pub(crate) speed: f64,
}

/// A drain the operator started.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Drain {
    /// Records in flight when it started.
    pub(crate) from: u64,
    /// Pipeline time when it started, seconds.
    pub(crate) since_s: f64,
}

/// Everything the dashboard knows.
#[derive(Clone, Debug)]
pub(crate) struct State {
    /// Shown in the header.
    pub(crate) title: String,
    /// What the feed says now.
    pub(crate) board: Board,
    /// What the screen shows while frozen.
    pub(crate) frozen: Option<Board>,
    /// Index of the selected stage.
    pub(crate) selected: usize,
    /// Decisions scrolled past, from the newest.
    pub(crate) log_offset: usize,
    /// The help overlay is up.
    pub(crate) help: bool,
    /// `Some` for a replay.
    pub(crate) replay: Option<Replay>,
    /// Overrides the snapshots do not show yet.
    pub(crate) pending: Pending,
    /// `Some` once the operator quit.
    pub(crate) drain: Option<Drain>,
    /// The feed has ended.
    pub(crate) finished: bool,
    /// The dashboard should close.
    pub(crate) exit: bool,
    /// What the last command did, for the footer.
    pub(crate) status: Option<String>,
}

impl State {
    /// Empty, keeping `history` ticks for charts and `log` decisions.
    pub(crate) fn new(title: String, history: usize, log: usize) -> Self {
        Self {
            title,
            board: Board::new(history, log),
            frozen: None,
            selected: 0,
            log_offset: 0,
            help: false,
            replay: None,
            pending: Pending::default(),
            drain: None,
            finished: false,
            exit: false,
            status: None,
        }
    }

    /// Takes one tick from the feed.
    pub(crate) fn ingest(&mut self, snapshot: Snapshot, decisions: Vec<DecisionRecord>) {
        self.pending = Pending::default();
        self.board.record(snapshot, decisions);
        self.selected = self.selected.min(self.board.stages().saturating_sub(1));
    }

    /// What the screen shows: the frozen copy, or the live board.
    pub(crate) fn shown(&self) -> &Board {
        self.frozen.as_ref().unwrap_or(&self.board)
    }

    /// Records in flight now, per the live board.
    pub(crate) fn in_flight(&self) -> u64 {
        self.board
            .latest
            .as_ref()
            .map_or(0, |s| s.global.totals.in_flight)
    }
}

#[cfg(test)]
mod tests {
    use brigade_controller::StageStats;

    use super::*;

    #[test]
    fn frozen_board_stays_while_the_live_one_moves() {
        let mut state = State::new(String::new(), 10, 10);
        let tick = |n: u64| Snapshot {
            tick: n,
            stages: vec![StageStats::default()],
            ..Default::default()
        };
        state.ingest(tick(1), Vec::new());
        state.frozen = Some(state.board.clone());
        state.ingest(tick(2), Vec::new());
        assert_eq!(state.shown().latest.as_ref().unwrap().tick, 1);
        assert_eq!(state.board.history.at_s.len(), 2);
    }

    #[test]
    fn selection_follows_a_shrinking_pipeline() {
        let mut state = State::new(String::new(), 10, 10);
        state.selected = 4;
        state.ingest(
            Snapshot {
                stages: vec![StageStats::default(); 2],
                ..Default::default()
            },
            Vec::new(),
        );
        assert_eq!(state.selected, 1);
    }
}
