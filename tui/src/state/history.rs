//! What the charts draw: a few figures per tick, kept for the last ticks.

use brigade_controller::Snapshot;

use super::ring::Ring;

/// One stage's figures over the last ticks, aligned with [`History::at_s`].
#[derive(Clone, Debug)]
pub(crate) struct StageHistory {
    /// Records out per second.
    pub(crate) rate: Ring<f64>,
    /// Live workers at the end of each tick.
    pub(crate) live: Ring<f64>,
    /// Target workers at the end of each tick.
    pub(crate) target: Ring<f64>,
    /// Utilisation, 0..=1.
    pub(crate) busy: Ring<f64>,
    /// Workers that could not open their resource, over every tick seen.
    pub(crate) open_failures: u64,
    /// The message of the last of those failures.
    pub(crate) open_error: Option<String>,
}

impl StageHistory {
    fn new(capacity: usize) -> Self {
        Self {
            rate: Ring::new(capacity),
            live: Ring::new(capacity),
            target: Ring::new(capacity),
            busy: Ring::new(capacity),
            open_failures: 0,
            open_error: None,
        }
    }
}

/// The pipeline's figures over the last ticks.
#[derive(Clone, Debug)]
pub(crate) struct History {
    capacity: usize,
    /// When each tick closed, seconds since the start: the charts' x axis.
    pub(crate) at_s: Ring<f64>,
    /// Records the sink finished per second.
    pub(crate) throughput: Ring<f64>,
    /// Per stage, in pipeline order.
    pub(crate) stages: Vec<StageHistory>,
}

impl History {
    /// Empty, keeping `capacity` ticks.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            at_s: Ring::new(capacity),
            throughput: Ring::new(capacity),
            stages: Vec::new(),
        }
    }

    /// Adds one tick. A snapshot with another number of stages is another pipeline:
    /// the history starts again.
    pub(crate) fn record(&mut self, snapshot: &Snapshot) {
        if self.stages.len() != snapshot.stages.len() {
            *self = Self::new(self.capacity);
            self.stages = (0..snapshot.stages.len())
                .map(|_| StageHistory::new(self.capacity))
                .collect();
        }
        self.at_s.push(snapshot.at_s);
        self.throughput.push(
            snapshot
                .stages
                .last()
                .map_or(0.0, |sink| sink.observed_rate(snapshot.window_s)),
        );
        for (history, stage) in self.stages.iter_mut().zip(&snapshot.stages) {
            history.rate.push(stage.observed_rate(snapshot.window_s));
            history.live.push(stage.workers.live as f64);
            history.target.push(stage.workers.target as f64);
            history.busy.push(stage.utilisation());
            history.open_failures += stage.open_failures;
            if stage.open_error.is_some() {
                history.open_error.clone_from(&stage.open_error);
            }
        }
    }

    /// `values` against time, as chart points.
    pub(crate) fn points(&self, values: &Ring<f64>) -> Vec<(f64, f64)> {
        self.at_s
            .iter()
            .copied()
            .zip(values.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use brigade_controller::StageStats;

    use super::*;

    fn snapshot(at_s: f64, stages: usize) -> Snapshot {
        Snapshot {
            at_s,
            window_s: 1.0,
            stages: (0..stages)
                .map(|i| StageStats {
                    records_out: 10 * (i as u64 + 1),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn records_rates_and_restarts_on_a_new_shape() {
        let mut history = History::new(10);
        history.record(&snapshot(1.0, 2));
        history.record(&snapshot(2.0, 2));
        assert_eq!(
            history.points(&history.throughput),
            [(1.0, 20.0), (2.0, 20.0)]
        );
        assert_eq!(history.stages[0].rate.last(5), [10.0, 10.0]);
        history.record(&snapshot(3.0, 3));
        assert_eq!(history.stages[0].open_failures, 0);
        assert_eq!(history.at_s.len(), 1);
        assert_eq!(history.stages.len(), 3);
    }

    fn failing(failures: u64, error: Option<&str>) -> Snapshot {
        Snapshot {
            stages: vec![StageStats {
                open_failures: failures,
                open_error: error.map(str::to_owned),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn open_failures_add_up_and_the_last_error_stays() {
        let mut history = History::new(10);
        history.record(&failing(2, Some("connection refused")));
        history.record(&failing(0, None));
        history.record(&failing(1, Some("too many connections")));
        history.record(&failing(0, None));
        assert_eq!(history.stages[0].open_failures, 3);
        assert_eq!(
            history.stages[0].open_error.as_deref(),
            Some("too many connections")
        );
    }
}
