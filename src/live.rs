//! Wiring a running pipeline to the dashboard: a thread that owns the [`Running`]
//! pipeline and waits for its end, and the dashboard's [`Feed`] over the pipeline's
//! [`Monitor`].

use std::sync::Arc;
use std::thread::{self, JoinHandle};

use anyhow::{Context, Result};

use brigade_controller::{DecisionRecord, Override, Snapshot};
use brigade_runtime::{Admission, Monitor, Report, Running, Tick};
use brigade_tui::Feed;
use crossbeam_channel::{Receiver, TryRecvError};

/// The thread that owns a running pipeline and waits for its end; anyone holding the
/// keeper may stop admission.
pub struct Keeper {
    monitor: Monitor,
    admission: Admission,
    thread: JoinHandle<Report>,
}

impl Keeper {
    /// Takes `running` over and waits for it on a thread of its own.
    pub fn start(running: Running) -> Self {
        let monitor = running.monitor();
        let admission = running.admission();
        let thread = thread::Builder::new()
            .name("brigade-keeper".into())
            .spawn(move || running.wait())
            .expect("the keeper thread starts");
        Self {
            monitor,
            admission,
            thread,
        }
    }

    /// The pipeline's monitor.
    pub fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// Stops admission; what is in flight goes on to the end.
    pub fn drain(&self) {
        self.admission.stop();
    }

    /// True once the pipeline has drained and its report is ready.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    /// Waits for the drain and returns the report.
    pub fn report(self) -> Report {
        self.thread.join().expect("the keeper thread panicked")
    }
}

/// What the dashboard leaves of a run it watched to the end of its drain.
pub struct Watched {
    /// The run's report.
    pub report: Report,
    /// The last snapshot the run closed.
    pub last: Option<Arc<Snapshot>>,
}

/// Watches `running` in the dashboard, titled `title`, until the operator quits.
/// `None` if they quit before the drain ended (said on standard error: the records
/// still in flight).
pub fn watch(running: Running, title: String) -> Result<Option<Watched>> {
    let keeper = Keeper::start(running);
    let dashboard = brigade_tui::Options {
        title,
        ..brigade_tui::Options::default()
    };
    brigade_tui::run(LiveFeed::new(&keeper), dashboard)
        .context("the dashboard cannot use this terminal")?;
    let last = keeper.monitor().latest();
    if !keeper.is_finished() {
        let left = last.map_or(0, |s| s.global.totals.in_flight);
        eprintln!("brigade: quit before the drain ended; {left} records were left in flight");
        return Ok(None);
    }
    Ok(Some(Watched {
        report: keeper.report(),
        last,
    }))
}

/// The dashboard's view of a live pipeline.
pub struct LiveFeed<'a> {
    keeper: &'a Keeper,
    ticks: Receiver<Tick>,
    ended: bool,
}

impl<'a> LiveFeed<'a> {
    /// A feed of the pipeline `keeper` owns, from its next tick on.
    pub fn new(keeper: &'a Keeper) -> Self {
        Self {
            ticks: keeper.monitor().subscribe(),
            keeper,
            ended: false,
        }
    }
}

impl Feed for LiveFeed<'_> {
    fn poll(&mut self) -> Vec<(Snapshot, Vec<DecisionRecord>)> {
        let mut ticks = Vec::new();
        loop {
            match self.ticks.try_recv() {
                Ok(tick) => ticks.push((Snapshot::clone(&tick.snapshot), tick.decisions)),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.ended = true;
                    break;
                }
            }
        }
        ticks
    }

    fn apply(&mut self, change: Override) {
        self.keeper.monitor().apply(change);
    }

    fn drain(&mut self) {
        self.keeper.drain();
    }

    fn finished(&self) -> bool {
        self.ended || self.keeper.is_finished()
    }
}
