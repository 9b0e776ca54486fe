//! How fast a finite source reads, in bytes per second, smoothed over the last few
//! seconds of snapshots: the runtime says how far the source got, the dashboard works
//! out the pace from consecutive snapshots.

use std::collections::VecDeque;

use brigade_controller::Snapshot;

/// Seconds of pipeline time the rate is averaged over.
const SMOOTHING_S: f64 = 5.0;
/// Most samples kept, whatever the tick.
const MOST_SAMPLES: usize = 64;

/// The source's bytes read at the last few snapshots, for its read rate.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadRate {
    /// (pipeline time in seconds, bytes read by then), oldest first.
    samples: VecDeque<(f64, u64)>,
}

impl ReadRate {
    /// Takes one snapshot's progress. A snapshot without progress, or going back in
    /// time or bytes (another run), starts the average again.
    pub(crate) fn record(&mut self, snapshot: &Snapshot) {
        let Some(progress) = snapshot.global.source.progress else {
            self.samples.clear();
            return;
        };
        let sample = (snapshot.at_s, progress.bytes_done);
        if self
            .samples
            .back()
            .is_some_and(|&(at, done)| sample.0 < at || sample.1 < done)
        {
            self.samples.clear();
        }
        self.samples.push_back(sample);
        while self.samples.len() > MOST_SAMPLES
            || (self.samples.len() > 2 && sample.0 - self.samples[1].0 >= SMOOTHING_S)
        {
            self.samples.pop_front();
        }
    }

    /// Bytes read per second over the samples kept; `None` before two of them.
    pub(crate) fn bytes_per_s(&self) -> Option<f64> {
        let (&(first_at, first), &(last_at, last)) = (self.samples.front()?, self.samples.back()?);
        let span = last_at - first_at;
        (span > 0.0).then(|| (last - first) as f64 / span)
    }
}

#[cfg(test)]
mod tests {
    use brigade_controller::Progress;

    use super::*;

    fn at(at_s: f64, bytes_done: u64) -> Snapshot {
        let mut snapshot = Snapshot {
            at_s,
            ..Default::default()
        };
        snapshot.global.source.progress = Some(Progress {
            bytes_done,
            ..Default::default()
        });
        snapshot
    }

    #[test]
    fn the_rate_is_the_bytes_read_over_the_last_seconds() {
        let mut rate = ReadRate::default();
        rate.record(&at(1.0, 0));
        assert_eq!(rate.bytes_per_s(), None, "one sample says no pace");
        rate.record(&at(2.0, 100));
        assert_eq!(rate.bytes_per_s(), Some(100.0));
        // 100 B/s for ten seconds, then 1000 B/s: after five seconds of the new pace
        // the old one is forgotten.
        for t in 3..=10 {
            rate.record(&at(f64::from(t), 100 * (t as u64 - 1)));
        }
        for t in 11..=16 {
            rate.record(&at(f64::from(t), 900 + 1000 * (t as u64 - 10)));
        }
        assert_eq!(rate.bytes_per_s(), Some(1000.0));
    }

    #[test]
    fn another_run_or_no_progress_starts_again() {
        let mut rate = ReadRate::default();
        rate.record(&at(1.0, 0));
        rate.record(&at(2.0, 500));
        rate.record(&at(0.5, 10));
        assert_eq!(rate.bytes_per_s(), None);
        rate.record(&at(1.5, 110));
        assert_eq!(rate.bytes_per_s(), Some(100.0));
        rate.record(&Snapshot::default());
        assert_eq!(rate.bytes_per_s(), None);
    }
}
