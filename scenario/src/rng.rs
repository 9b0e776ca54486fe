//! A small deterministic random number generator (xoshiro256**, seeded by SplitMix64)
//! and sampling of the scenario's distributions. Written out here rather than taken
//! from a crate so that a seed means the same draws on every platform and every
//! version of brigade: reports are byte-identical for the same scenario, seed and
//! policy.

use crate::Dist;

/// The z-score of the 99th percentile of the standard normal distribution.
const Z_P99: f64 = 2.326_347_874_040_841;

/// xoshiro256** by Blackman and Vigna.
#[derive(Clone, Debug)]
pub struct Rng {
    state: [u64; 4],
    spare_normal: Option<f64>,
}

impl Rng {
    /// A generator for `seed` and `stream`: different streams give independent draws.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut x = seed ^ stream.wrapping_mul(0xa076_1d64_78bd_642f);
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Self {
            state: [next(), next(), next(), next()],
            spare_normal: None,
        }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in (0, 1): never exactly 0 or 1.
    pub fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in 0..n (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// A standard normal draw (Box–Muller, both halves used).
    fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare_normal.take() {
            return z;
        }
        let radius = (-2.0 * self.unit().ln()).sqrt();
        let angle = std::f64::consts::TAU * self.unit();
        self.spare_normal = Some(radius * angle.sin());
        radius * angle.cos()
    }

    /// A draw from `dist`.
    pub fn sample(&mut self, dist: &Dist) -> f64 {
        match *dist {
            Dist::Fixed { value } => value,
            Dist::Uniform { min, max } => min + (max - min) * self.unit(),
            Dist::LogNormal { median, p99 } => {
                if median <= 0.0 || p99 <= median {
                    return median;
                }
                let sigma = (p99 / median).ln() / Z_P99;
                median * (sigma * self.normal()).exp()
            }
            Dist::Pareto { min, alpha } => min / self.unit().powf(1.0 / alpha),
        }
    }
}

/// The mean of `dist`.
#[cfg(test)]
fn mean(dist: &Dist) -> f64 {
    match *dist {
        Dist::Fixed { value } => value,
        Dist::Uniform { min, max } => (min + max) / 2.0,
        Dist::LogNormal { median, p99 } => {
            if median <= 0.0 || p99 <= median {
                return median;
            }
            let sigma = (p99 / median).ln() / Z_P99;
            median * (sigma * sigma / 2.0).exp()
        }
        Dist::Pareto { min, alpha } => {
            if alpha > 1.0 {
                alpha * min / (alpha - 1.0)
            } else {
                f64::INFINITY
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws_other_stream_other_draws() {
        let mut a = Rng::new(7, 1);
        let mut b = Rng::new(7, 1);
        let mut c = Rng::new(7, 2);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..5).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn lognormal_has_its_median_and_p99() {
        let dist = Dist::LogNormal {
            median: 4e-3,
            p99: 40e-3,
        };
        let mut rng = Rng::new(1, 0);
        let mut draws: Vec<f64> = (0..200_000).map(|_| rng.sample(&dist)).collect();
        draws.sort_by(f64::total_cmp);
        let median = draws[draws.len() / 2];
        let p99 = draws[draws.len() * 99 / 100];
        assert!((median / 4e-3 - 1.0).abs() < 0.02, "median {median}");
        assert!((p99 / 40e-3 - 1.0).abs() < 0.05, "p99 {p99}");
        let sample_mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((sample_mean / mean(&dist) - 1.0).abs() < 0.02);
    }

    #[test]
    fn uniform_and_pareto_stay_in_range() {
        let mut rng = Rng::new(3, 0);
        for _ in 0..10_000 {
            let u = rng.sample(&Dist::Uniform { min: 2.0, max: 5.0 });
            assert!((2.0..5.0).contains(&u));
            let p = rng.sample(&Dist::Pareto {
                min: 1.0,
                alpha: 1.5,
            });
            assert!(p >= 1.0);
        }
    }
}
