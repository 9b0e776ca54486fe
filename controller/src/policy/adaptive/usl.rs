//! A stage's call time against its concurrency, fitted to the Universal Scalability
//! Law (Gunther): with n calls in progress each takes `a + b(n−1) + c·n(n−1)`
//! seconds, that is `a·(1 + σ(n−1) + κ·n(n−1))` with σ = b/a and κ = c/a. The stage
//! then delivers `n / call time` records per second, which peaks at
//! `n = sqrt((1 − σ) / κ)` when κ > 0. Processor sharing of the cores shows up the
//! same way (σ near 1 once the cores are full), so one curve covers both.

use std::collections::BTreeMap;

use super::Tuning;

/// Observed call times by concurrency, and the curve through them. Points are kept
/// per bucket of concurrency (a quarter of a doubling wide), so that a long stay at
/// one count does not push out what was seen at others. When the calls themselves
/// change (a phase in which the database is twice as slow), the call times at all
/// concurrencies move together: the points seen before are scaled to the new calls,
/// or the fit would read the change as contention. The curve keeps its shape.
#[derive(Debug, Default)]
pub(super) struct Usl {
    /// Bucket → (sum of concurrency, sum of call time, weight).
    buckets: BTreeMap<i32, (f64, f64, f64)>,
    /// Windows in a row whose call time was `tuning.usl_shift` off what was seen before,
    /// the same way, held out of the points until they say whether the calls
    /// changed: (concurrency, call time, ratio to the expected call time).
    held: Vec<(f64, f64, f64)>,
}

/// The fitted curve: `a`, `b`, `c` as in the module doc.
#[derive(Clone, Copy, Debug)]
struct Curve {
    a: f64,
    b: f64,
    c: f64,
}

impl Curve {
    fn call_s(&self, n: f64) -> f64 {
        self.a + self.b * (n - 1.0) + self.c * n * (n - 1.0)
    }

    fn throughput(&self, n: f64) -> f64 {
        n / self.call_s(n)
    }
}

impl Usl {
    /// Records one window: `concurrency` calls in progress on average, each taking
    /// `call_s` seconds. True when this window showed that the calls changed, and the
    /// points seen before were rescaled.
    pub(super) fn observe(&mut self, tuning: &Tuning, concurrency: f64, call_s: f64) -> bool {
        if concurrency < tuning.usl_min_concurrency || !call_s.is_finite() || call_s <= 0.0 {
            return false;
        }
        let n = concurrency.max(1.0);
        let way = match self.shift_of(tuning, n, call_s) {
            Some(ratio) if ratio >= tuning.usl_shift => 1.0,
            Some(ratio) if ratio <= 1.0 / tuning.usl_shift => -1.0,
            _ => 0.0,
        };
        let same_way = self
            .held
            .first()
            .is_some_and(|&(_, _, ratio)| (ratio - 1.0).signum() == way);
        if way == 0.0 || !same_way {
            self.release_held(tuning, 1.0);
        }
        if way == 0.0 {
            self.add(tuning, n, call_s);
            return false;
        }
        let ratio = self.shift_of(tuning, n, call_s).unwrap_or(1.0);
        self.held.push((n, call_s, ratio));
        if self.held.len() < tuning.usl_shift_windows {
            return false;
        }
        let mean_log =
            self.held.iter().map(|&(_, _, r)| r.ln()).sum::<f64>() / self.held.len() as f64;
        self.release_held(tuning, mean_log.exp());
        true
    }

    /// Adds the held windows to the points, after scaling the points already there by
    /// `scale` (1 when the windows were noise, the shift when they were not).
    fn release_held(&mut self, tuning: &Tuning, scale: f64) {
        if scale != 1.0 {
            for (_, sum_s, _) in self.buckets.values_mut() {
                *sum_s *= scale;
            }
        }
        for (n, call_s, _) in std::mem::take(&mut self.held) {
            self.add(tuning, n, call_s);
        }
    }

    /// Adds one window to its bucket.
    fn add(&mut self, tuning: &Tuning, n: f64, call_s: f64) {
        let bucket = (n.log2() * tuning.usl_buckets_per_doubling).round() as i32;
        let (sum_n, sum_s, weight) = self.buckets.entry(bucket).or_default();
        if *weight >= tuning.usl_bucket_memory {
            let fade = (tuning.usl_bucket_memory - 1.0) / *weight;
            *sum_n *= fade;
            *sum_s *= fade;
            *weight *= fade;
        }
        *sum_n += n;
        *sum_s += call_s;
        *weight += 1.0;
    }

    /// The ratio of `call_s` to what was seen before at concurrency `n`: the fitted
    /// curve, within the span of concurrencies it was fitted on, or else the
    /// window's bucket once it has a few windows. `None` when nothing was seen there.
    fn shift_of(&self, tuning: &Tuning, n: f64, call_s: f64) -> Option<f64> {
        let (low, high) = self.span();
        let bucket = (n.log2() * tuning.usl_buckets_per_doubling).round() as i32;
        let expected = match (self.curve(), self.buckets.get(&bucket)) {
            (Some(curve), _)
                if n >= low / tuning.usl_span_margin && n <= high * tuning.usl_span_margin =>
            {
                curve.call_s(n)
            }
            (_, Some(&(_, sum_s, weight))) if weight >= tuning.usl_settled_weight => sum_s / weight,
            _ => return None,
        };
        Some(call_s / expected)
    }

    /// Lowest and highest concurrency seen (∞, 0 when none).
    fn span(&self) -> (f64, f64) {
        self.points()
            .fold((f64::INFINITY, 0.0f64), |(low, high), (n, _, _)| {
                (low.min(n), high.max(n))
            })
    }

    /// One (concurrency, call time) point per bucket, with its weight.
    fn points(&self) -> impl Iterator<Item = (f64, f64, f64)> + '_ {
        self.buckets
            .values()
            .map(|&(sum_n, sum_s, weight)| (sum_n / weight, sum_s / weight, weight))
    }

    /// True once the points span concurrencies at least 2× apart.
    pub(super) fn confident(&self) -> bool {
        let (low, high) = self.span();
        self.buckets.len() >= 3 && high >= 2.0 * low
    }

    /// Weighted least squares over the buckets, with b, c ≥ 0 (contention never helps).
    fn curve(&self) -> Option<Curve> {
        if !self.confident() {
            return None;
        }
        let features = |n: f64| [1.0, n - 1.0, n * (n - 1.0)];
        let solve = |columns: &[usize]| -> Option<Vec<f64>> {
            let k = columns.len();
            let mut matrix = vec![vec![0.0; k + 1]; k];
            for (n, y, weight) in self.points() {
                let x = features(n);
                for (r, &cr) in columns.iter().enumerate() {
                    for (c, &cc) in columns.iter().enumerate() {
                        matrix[r][c] += weight * x[cr] * x[cc];
                    }
                    matrix[r][k] += weight * x[cr] * y;
                }
            }
            gauss(matrix)
        };
        let mut coefficients = [0.0; 3];
        for columns in [&[0, 1, 2][..], &[0, 2], &[0, 1], &[0]] {
            if let Some(solution) = solve(columns) {
                if solution.iter().all(|&v| v >= 0.0) && solution[0] > 0.0 {
                    for (&column, value) in columns.iter().zip(solution) {
                        coefficients[column] = value;
                    }
                    let [a, b, c] = coefficients;
                    return Some(Curve { a, b, c });
                }
            }
        }
        None
    }

    /// The cheapest worker count (≤ `most`) whose predicted throughput is within
    /// `tuning.usl_near_peak` of the best the curve predicts up to `most`.
    pub(super) fn cheapest_near_peak(&self, tuning: &Tuning, most: usize) -> Option<usize> {
        let curve = self.curve()?;
        let best = (1..=most)
            .map(|n| curve.throughput(n as f64))
            .fold(0.0, f64::max);
        (1..=most).find(|&n| curve.throughput(n as f64) >= tuning.usl_near_peak * best)
    }

    /// The fit in words, for decision reasons ("" when there is none).
    pub(super) fn describe(&self) -> String {
        match self.curve() {
            Some(curve) => format!(
                "; USL fit: one call {:.2} ms, σ {:.3}, κ {:.4}",
                curve.a * 1e3,
                curve.b / curve.a,
                curve.c / curve.a
            ),
            None => String::new(),
        }
    }
}

/// Solves the augmented system `matrix` (k rows of k + 1) by Gaussian elimination
/// with partial pivoting; `None` if it is singular.
fn gauss(mut matrix: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let k = matrix.len();
    for col in 0..k {
        let pivot =
            (col..k).max_by(|&x, &y| matrix[x][col].abs().total_cmp(&matrix[y][col].abs()))?;
        if matrix[pivot][col].abs() < 1e-12 {
            return None;
        }
        matrix.swap(col, pivot);
        let pivot_row = matrix[col].clone();
        for (r, row) in matrix.iter_mut().enumerate() {
            if r != col {
                let factor = row[col] / pivot_row[col];
                for (x, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                    *x -= factor * p;
                }
            }
        }
    }
    Some((0..k).map(|r| matrix[r][k] / matrix[r][r]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(sigma: f64, kappa: f64, counts: &[f64]) -> Usl {
        let mut usl = Usl::default();
        for &n in counts {
            usl.observe(
                &Tuning::default(),
                n,
                0.0065 * (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0)),
            );
        }
        usl
    }

    #[test]
    fn finds_the_peak_of_a_contended_database() {
        // σ 0.05, κ 0.004: the peak is at sqrt(0.95 / 0.004) ≈ 15.4.
        let usl = observed(0.05, 0.004, &[1.0, 2.0, 4.0, 8.0, 16.0]);
        let cheapest = usl.cheapest_near_peak(&Tuning::default(), 64).unwrap();
        assert!((12..=15).contains(&cheapest), "{cheapest}");
    }

    #[test]
    fn no_peak_without_coherency_means_grow_to_the_limit() {
        let usl = observed(0.0, 0.0, &[1.0, 2.0, 4.0]);
        assert_eq!(usl.cheapest_near_peak(&Tuning::default(), 40), Some(40));
    }

    #[test]
    fn calls_that_all_slow_down_rescale_the_curve_instead_of_bending_it() {
        let mut usl = observed(0.05, 0.004, &[1.0, 2.0, 4.0, 8.0, 16.0]);
        let before = usl.cheapest_near_peak(&Tuning::default(), 64);
        let slower = |n: f64| 2.0 * 0.0065 * (1.0 + 0.05 * (n - 1.0) + 0.004 * n * (n - 1.0));
        // Two slow windows could be noise; the third means the calls changed.
        assert!(!usl.observe(&Tuning::default(), 16.0, slower(16.0)));
        assert!(!usl.observe(&Tuning::default(), 16.0, slower(16.0)));
        assert!(
            usl.describe().contains("one call 6.50 ms"),
            "{}",
            usl.describe()
        );
        assert!(usl.observe(&Tuning::default(), 16.0, slower(16.0)));
        assert!(
            usl.describe().contains("one call 13.00 ms"),
            "{}",
            usl.describe()
        );
        assert_eq!(usl.cheapest_near_peak(&Tuning::default(), 64), before);
        // Growing on from there follows the rescaled curve: no contention read
        // into the change.
        assert!(!usl.observe(&Tuning::default(), 24.0, slower(24.0)));
        assert_eq!(usl.cheapest_near_peak(&Tuning::default(), 64), before);
    }

    #[test]
    fn slow_windows_broken_by_a_usual_one_are_noise_not_a_shift() {
        let mut usl = observed(0.05, 0.004, &[1.0, 2.0, 4.0, 8.0, 16.0]);
        let call = |n: f64| 0.0065 * (1.0 + 0.05 * (n - 1.0) + 0.004 * n * (n - 1.0));
        for factor in [1.6, 1.6, 1.0, 1.6, 1.6, 0.9] {
            assert!(!usl.observe(&Tuning::default(), 16.0, factor * call(16.0)));
        }
        let (_, one_call, _) = usl.points().next().unwrap();
        assert!((one_call - 0.0065).abs() < 1e-9, "{one_call}");
        // No window is lost: each counts at its concurrency, or is still held to see
        // whether the next ones go its way.
        let (_, _, weight) = usl.points().last().unwrap();
        assert_eq!(weight + usl.held.len() as f64, 7.0);
    }

    #[test]
    fn needs_a_spread_of_concurrencies() {
        let usl = observed(0.05, 0.004, &[4.0, 4.5, 5.0]);
        assert!(!usl.confident());
        assert_eq!(usl.cheapest_near_peak(&Tuning::default(), 64), None);
    }
}
