//! What `/metrics` shows: the latest snapshot, and the sums and histograms of every
//! window the daemon has seen (Prometheus counters and histograms count from the start,
//! where a snapshot holds one window).

use std::sync::Arc;

use brigade_controller::fleet::Capacity;
use brigade_controller::{HistogramData, HistogramError, Snapshot};
use brigade_runtime::Tick;

/// Upper bounds of the time histograms' buckets, microseconds (1 µs to 1 min).
const TIME_BOUNDS_US: [u64; 24] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000,
    250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// Upper bounds of the size histograms' buckets, bytes: powers of 4 from 64 B to 4 GiB.
const SIZE_BOUNDS: [u64; 14] = [
    1 << 6,
    1 << 8,
    1 << 10,
    1 << 12,
    1 << 14,
    1 << 16,
    1 << 18,
    1 << 20,
    1 << 22,
    1 << 24,
    1 << 26,
    1 << 28,
    1 << 30,
    1 << 32,
];

/// A Prometheus histogram built from hdrhistograms: fixed buckets, counts since the
/// start.
#[derive(Clone, Debug)]
pub(crate) struct Buckets {
    /// Upper bounds in the hdrhistogram's unit.
    bounds: &'static [u64],
    /// Histogram units per exported unit (1e6 for microseconds to seconds); dividing
    /// by it puts a bound on the exported unit's nearest float (`5e-6`, not
    /// `4.9999999999999996e-6`).
    per_unit: f64,
    /// Values per bucket (not cumulative); the last is above every bound (+Inf).
    counts: Vec<u64>,
    /// Sum of the values, in the exported unit.
    pub sum: f64,
    /// Number of values.
    pub count: u64,
}

impl Buckets {
    /// Buckets for microsecond histograms, exported in seconds.
    pub fn time() -> Self {
        Self::new(&TIME_BOUNDS_US, 1e6)
    }

    /// Buckets for byte histograms.
    pub fn size() -> Self {
        Self::new(&SIZE_BOUNDS, 1.0)
    }

    fn new(bounds: &'static [u64], per_unit: f64) -> Self {
        Self {
            bounds,
            per_unit,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// Adds one window's histogram. A value goes to the first bucket whose bound lies
    /// in the value's hdrhistogram bucket or above it.
    pub fn add(&mut self, data: &HistogramData) -> Result<(), HistogramError> {
        let histogram = data.decode()?;
        for item in histogram.iter_recorded() {
            let value = item.value_iterated_to();
            let index = self
                .bounds
                .partition_point(|&bound| histogram.highest_equivalent(bound) < value);
            self.counts[index] += item.count_at_value();
        }
        self.count += histogram.len();
        // The mean is the histogram's own (exact to its precision); the sum follows.
        self.sum += data.mean * histogram.len() as f64 / self.per_unit;
        Ok(())
    }

    /// `(upper bound in the exported unit, values in that bucket)`, +Inf last: what
    /// prometheus-client's histogram encoding takes.
    pub fn pairs(&self) -> Vec<(f64, u64)> {
        self.bounds
            .iter()
            .map(|&bound| bound as f64 / self.per_unit)
            .chain([f64::INFINITY])
            .zip(self.counts.iter().copied())
            .collect()
    }
}

/// One stage's sums since the daemon started watching.
#[derive(Clone, Debug)]
pub(crate) struct StageSums {
    pub records_in: u64,
    pub records_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub errors: u64,
    pub retries: u64,
    pub dead_lettered: u64,
    pub open_failures: u64,
    pub busy_s: f64,
    pub wait_in_s: f64,
    pub wait_out_s: f64,
    pub worker_s: f64,
    pub service_time: Buckets,
    pub input_wait: Buckets,
    pub record_size: Buckets,
}

impl Default for StageSums {
    fn default() -> Self {
        Self {
            records_in: 0,
            records_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            errors: 0,
            retries: 0,
            dead_lettered: 0,
            open_failures: 0,
            busy_s: 0.0,
            wait_in_s: 0.0,
            wait_out_s: 0.0,
            worker_s: 0.0,
            service_time: Buckets::time(),
            input_wait: Buckets::time(),
            record_size: Buckets::size(),
        }
    }
}

/// Sums of the source's window figures.
#[derive(Clone, Debug, Default)]
pub(crate) struct SourceSums {
    pub records: u64,
    pub bytes: u64,
    pub guard_reads: u64,
}

/// Sums of the serial lane's window figures.
#[derive(Clone, Debug, Default)]
pub(crate) struct SerialSums {
    pub records: u64,
    pub bytes: u64,
    pub busy_s: f64,
}

/// The latest snapshot and the sums since the daemon started watching.
#[derive(Debug)]
pub(crate) struct Board {
    pub latest: Option<Arc<Snapshot>>,
    pub stages: Vec<StageSums>,
    pub latency: Buckets,
    pub source: SourceSums,
    pub serial: SerialSums,
    /// Decisions seen (controller's and operator's).
    pub decisions: u64,
    /// Records completed per second over the latest window.
    pub throughput: f64,
    /// What this process can finish per second, for the processes its consumer
    /// group's backlog calls for.
    pub capacity: Capacity,
}

impl Default for Board {
    fn default() -> Self {
        Self {
            latest: None,
            stages: Vec::new(),
            latency: Buckets::time(),
            source: SourceSums::default(),
            serial: SerialSums::default(),
            decisions: 0,
            throughput: 0.0,
            capacity: Capacity::default(),
        }
    }
}

impl Board {
    /// Adds one tick. Returns the histograms that could not be read (named), which
    /// are left out of the sums.
    pub fn take(&mut self, tick: &Tick) -> Vec<(String, HistogramError)> {
        let snapshot = &tick.snapshot;
        let mut unreadable = Vec::new();
        let mut add = |buckets: &mut Buckets, data: &HistogramData, name: String| {
            if let Err(error) = buckets.add(data) {
                unreadable.push((name, error));
            }
        };
        if self.stages.len() < snapshot.stages.len() {
            self.stages
                .resize_with(snapshot.stages.len(), StageSums::default);
        }
        for (sums, stage) in self.stages.iter_mut().zip(&snapshot.stages) {
            sums.records_in += stage.records_in;
            sums.records_out += stage.records_out;
            sums.bytes_in += stage.bytes_in;
            sums.bytes_out += stage.bytes_out;
            sums.errors += stage.errors;
            sums.retries += stage.retries;
            sums.dead_lettered += stage.dead_lettered;
            sums.open_failures += stage.open_failures;
            sums.busy_s += stage.busy_s;
            sums.wait_in_s += stage.wait_in_s;
            sums.wait_out_s += stage.wait_out_s;
            sums.worker_s += stage.worker_s;
            let name = |what: &str| format!("{what} of stage `{}`", stage.name);
            add(
                &mut sums.service_time,
                &stage.service_time_us,
                name("service time"),
            );
            add(&mut sums.input_wait, &stage.wait_in_us, name("input wait"));
            add(
                &mut sums.record_size,
                &stage.record_size_bytes,
                name("record size"),
            );
        }
        let global = &snapshot.global;
        add(&mut self.latency, &global.latency_us, "latency".into());
        self.source.records += global.source.records;
        self.source.bytes += global.source.bytes;
        self.source.guard_reads += global.source.guard_reads;
        self.serial.records += global.serial.records;
        self.serial.bytes += global.serial.bytes;
        self.serial.busy_s += global.serial.busy_s;
        self.decisions += tick.decisions.len() as u64;
        // Over the window when the previous one was seen, else since the start.
        let (before, span) = match &self.latest {
            Some(previous) => (previous.global.totals.completed, snapshot.window_s),
            None => (0, snapshot.at_s),
        };
        let completed = global.totals.completed.saturating_sub(before);
        self.throughput = if span > 0.0 {
            completed as f64 / span
        } else {
            0.0
        };
        self.capacity.observe(snapshot);
        self.latest = Some(snapshot.clone());
        unreadable
    }
}

#[cfg(test)]
mod tests {
    use brigade_controller::{Histogram, StageStats};

    use super::*;

    fn histogram(values: &[u64]) -> HistogramData {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for &v in values {
            h.record(v).unwrap();
        }
        HistogramData::from_histogram(&h)
    }

    #[test]
    fn values_land_in_the_first_bucket_at_or_above_them() {
        let mut buckets = Buckets::time();
        buckets
            .add(&histogram(&[1, 3, 1_000, 1_001, 100_000_000]))
            .unwrap();
        let pairs = buckets.pairs();
        let count_at = |le: f64| pairs.iter().find(|(b, _)| *b == le).unwrap().1;
        assert_eq!(count_at(1e-6), 1);
        assert_eq!(count_at(5e-6), 1);
        assert_eq!(count_at(1e-3), 1);
        assert_eq!(count_at(2.5e-3), 1);
        assert_eq!(count_at(f64::INFINITY), 1);
        assert_eq!(buckets.count, 5);
        assert_eq!(pairs.iter().map(|(_, n)| n).sum::<u64>(), 5);
        assert!((buckets.sum - 100.002005).abs() < 0.1, "{}", buckets.sum);
    }

    #[test]
    fn windows_add_up() {
        let tick = |tick: u64, completed: u64, service: &[u64]| Tick {
            snapshot: Arc::new(Snapshot {
                tick,
                at_s: tick as f64,
                window_s: 1.0,
                stages: vec![StageStats {
                    name: "s".into(),
                    records_in: 10,
                    errors: 1,
                    service_time_us: histogram(service),
                    ..StageStats::default()
                }],
                global: brigade_controller::GlobalStats {
                    totals: brigade_controller::Totals {
                        completed,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                ..Snapshot::default()
            }),
            decisions: Vec::new(),
        };
        let mut board = Board::default();
        assert!(board.take(&tick(1, 100, &[10, 20])).is_empty());
        assert_eq!(board.throughput, 100.0);
        assert!(board.take(&tick(2, 250, &[30])).is_empty());
        assert_eq!(board.throughput, 150.0);
        let stage = &board.stages[0];
        assert_eq!((stage.records_in, stage.errors), (20, 2));
        assert_eq!(stage.service_time.count, 3);
        assert_eq!(board.latest.as_ref().unwrap().tick, 2);
    }

    #[test]
    fn an_unreadable_histogram_is_named_and_skipped() {
        let mut board = Board::default();
        let snapshot = Snapshot {
            stages: vec![StageStats {
                name: "parse".into(),
                wait_in_us: HistogramData {
                    count: 1,
                    encoded: "!!!".into(),
                    ..Default::default()
                },
                ..StageStats::default()
            }],
            ..Snapshot::default()
        };
        let unreadable = board.take(&Tick {
            snapshot: Arc::new(snapshot),
            decisions: Vec::new(),
        });
        assert_eq!(unreadable.len(), 1);
        assert_eq!(unreadable[0].0, "input wait of stage `parse`");
        assert_eq!(board.stages[0].input_wait.count, 0);
    }
}
