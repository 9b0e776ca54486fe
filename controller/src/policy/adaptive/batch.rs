//! Rule 3 for a batching sink: bigger batches before more workers, until a linear fit
//! of call time against batch size says the fixed cost of a call is amortised, and
//! never so big that a worker's window holds fewer than `tuning.batch_calls` calls:
//! with fewer, a window's figures (its throughput, its retries) are too coarse to
//! judge the next step by, and every later rule goes blind.

use super::{Adaptive, View};
use crate::{Action, Decision, Snapshot, StageStats};

impl Adaptive {
    /// Rule 3 for a batching sink whose batches are full: bigger batches first.
    pub(super) fn grow_batch(
        &mut self,
        b: usize,
        stats: &StageStats,
        view: &View,
        tick: u64,
        snapshot: &Snapshot,
    ) -> Option<Vec<Decision>> {
        let knobs = snapshot.knobs.stages.get(b)?;
        let batch = knobs.batch_size.max(1);
        let state = &mut self.stages[b];
        if state.batch_done || view.per_call < self.tuning.full_batch * batch as f64 {
            return None;
        }
        let mut target = (batch * self.tuning.batch_step).min(self.tuning.max_batch);
        let fit = fit_line(&state.batch_points);
        if let Some((fixed, per_record)) = fit {
            if per_record > 0.0 {
                let enough = (self.tuning.batch_amortised * fixed / per_record).ceil() as usize;
                target = target.min(enough.max(1));
            }
        }
        // A call at most this long leaves `batch_calls` calls in a worker's window.
        let longest_s = snapshot.window_s / self.tuning.batch_calls as f64;
        let judgeable = match (fit, view.call_s) {
            (Some((fixed, per_record)), _) if per_record > 0.0 => (longest_s - fixed) / per_record,
            // No fit yet: as if the whole call grew with the batch (the bigger batch
            // costs at most that).
            (_, Some(call_s)) => longest_s / call_s * view.per_call,
            (_, None) => 0.0,
        };
        target = target.min(judgeable.max(1.0) as usize);
        if let Some(budget) = snapshot.global.memory_budget {
            let size = stats.record_size_bytes.mean.max(1.0);
            target = target
                .min(((budget as f64 / self.tuning.batch_budget_divisor / size) as usize).max(1));
        }
        // Within a quarter of where it should be: close enough, stop tuning it.
        if target * 4 <= batch * 5 {
            state.batch_done = true;
            return None;
        }
        state.changed_at = tick;
        let describe = fit.map_or(String::new(), |(fixed, per_record)| {
            format!(
                "; calls cost {:.2} ms + {:.1} µs per record",
                fixed * 1e3,
                per_record * 1e6
            )
        });
        let mut out = vec![Decision::new(
            Action::SetBatchSize {
                stage: b,
                size: target,
            },
            format!(
                "adaptive/bottleneck: {} is {:.0}% busy and its batches are full ({:.0} of {batch}); batch {batch} → {target}{describe}",
                stats.name,
                view.utilisation * 100.0,
                view.per_call
            ),
        )];
        let capacity = knobs.queue_capacity;
        if capacity < 2 * target {
            out.push(Decision::new(
                Action::SetQueueCapacity {
                    stage: b,
                    capacity: 2 * target,
                },
                format!(
                    "adaptive/bottleneck: {}'s queue holds two batches of {target}: {capacity} → {}",
                    stats.name,
                    2 * target
                ),
            ));
        }
        Some(out)
    }
}

/// Least-squares line `y = a + b·x` through `points`; `None` unless the x span at
/// least a doubling: over a narrower span (batches not quite full, 617 to 979 rows)
/// the noise of a loaded box makes the intercept anything, a negative one included,
/// which would end batch growth for good.
fn fit_line(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let least = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let most = points.iter().map(|p| p.0).fold(0.0, f64::max);
    if n < 2.0 || most < 2.0 * least {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    if sxx <= 1e-9 * n {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    let slope = sxy / sxx;
    Some((mean_y - slope * mean_x, slope))
}
