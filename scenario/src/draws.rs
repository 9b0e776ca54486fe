//! The model's random draws, keyed exactly as the engine keys them, for whatever must
//! meet the same records as a simulation of the scenario: a real run of it with
//! synthetic stages (brigade-synthetic) draws its sizes, service times, errors and
//! fan-outs here, so the two runs differ by what the runtime and the model do, not by
//! luck.
//!
//! ```
//! use brigade_scenario::draws::{Sizes, StageDraws};
//! use brigade_scenario::parse_str;
//!
//! let scenario = parse_str(
//!     r#"
//!     name = "one"
//!     duration = "1m"
//!     seed = 5
//!     [source]
//!     rate = 100
//!     size = { dist = "lognormal", median = "4KiB", p99 = "64KiB" }
//!     [[stage]]
//!     name = "write"
//!     kind = "io"
//!     service = { dist = "lognormal", median = "2ms", p99 = "20ms" }
//!     error_rate = 0.01
//!     "#,
//!     "one.toml",
//! )?;
//! let first_size = Sizes::new(scenario.seed, &scenario.source).next_size();
//! let write = &scenario.stages[0];
//! let mut draws = StageDraws::new(scenario.seed, 0).call(0, 1);
//! let work = write.work(draws.sample(&write.service), first_size, 1.0);
//! let fails = draws.chance(write.error_rate);
//! assert!(work > 0.0);
//! # let _ = fails;
//! # Ok::<(), brigade_scenario::ScenarioError>(())
//! ```

pub use crate::rng::Rng;
use crate::SourceSpec;

/// The draw key of a record's fan-out (a call's attempts use 1..=5).
const FAN_OUT_DRAW: u32 = 7;

/// The sizes of a source's records in the order it reads them: giants at their drawn
/// positions (one in `every` per `[[source.giant]]`), the usual `size` otherwise.
#[derive(Clone, Debug)]
pub struct Sizes {
    source: SourceSpec,
    rng: Rng,
    /// Per giant spec, the position of its next giant.
    next_giant: Vec<u64>,
    /// Sizes drawn so far: the position of the next record.
    position: u64,
}

impl Sizes {
    /// The sizes of `source`'s records for the scenario's `seed`.
    pub fn new(seed: u64, source: &SourceSpec) -> Self {
        let mut rng = Rng::new(seed, 0);
        let next_giant = source
            .giants
            .iter()
            .map(|giant| rng.below(giant.every))
            .collect();
        Self {
            source: source.clone(),
            rng,
            next_giant,
            position: 0,
        }
    }

    /// The size in bytes of the next record (at least 1).
    pub fn next_size(&mut self) -> u64 {
        let position = self.position;
        self.position += 1;
        let mut giant = None;
        for (i, next) in self.next_giant.iter_mut().enumerate() {
            let every = self.source.giants[i].every;
            if *next == position {
                giant.get_or_insert(i);
                *next = (position / every + 1) * every + self.rng.below(every);
            }
        }
        let dist = match giant {
            Some(i) => self.source.giants[i].size,
            None => self.source.size,
        };
        self.rng.sample(&dist).round().max(1.0) as u64
    }
}

/// The draws of one stage, keyed by record: the same record meets the same service
/// time, error and fan-out at the same stage whatever else happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageDraws {
    /// The scenario's seed, salted with the stage's index.
    seed: u64,
}

impl StageDraws {
    /// The draws of stage `index` (0-based, pipeline order) for the scenario's `seed`.
    pub fn new(seed: u64, index: usize) -> Self {
        Self {
            seed: seed ^ (1 + index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        }
    }

    /// The draws of attempt `attempt` (from 1) of a call whose first record is `id`:
    /// first its service time (`Rng::sample` of the stage's `service`), then whether
    /// it fails (`Rng::chance` of its `error_rate`).
    pub fn call(&self, id: u64, attempt: u32) -> Rng {
        Rng::new(
            self.seed,
            id.wrapping_mul(8).wrapping_add(u64::from(attempt)),
        )
    }

    /// How many outputs record `id` has for an `output_ratio`: its whole part, plus
    /// one with a chance of its fraction.
    pub fn outputs(&self, id: u64, output_ratio: f64) -> u64 {
        let whole = output_ratio.floor();
        let extra =
            output_ratio > whole && self.call(id, FAN_OUT_DRAW).chance(output_ratio - whole);
        whole as u64 + u64::from(extra)
    }
}

/// The id of output `k` (from 0) of record `id`: the first keeps the record's id.
pub fn output_id(id: u64, k: u64) -> u64 {
    if k == 0 {
        id
    } else {
        id.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(k)
    }
}
