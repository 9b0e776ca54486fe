//! The [`Controller`] trait and the policies that implement it.
//!
//! A policy sees one [`Snapshot`] per tick and answers with [`Decision`]s. It is pure:
//! no threads, no clock, no I/O, so the same snapshots always give the same decisions,
//! whether a real pipeline or the simulator produced them.

mod adaptive;
mod ds2;
mod hill;
mod seda;
mod static_policy;
#[cfg(test)]
pub(crate) mod test_support;

pub use adaptive::{Adaptive, Tuning};
pub use ds2::Ds2;
pub use hill::Hill;
pub use seda::Seda;
pub use static_policy::Static;

use crate::{Decision, Snapshot, WorkerStats};

/// The policies [`from_name`] builds, by name; the first, `adaptive`, is the default.
/// `static` also comes as `static:N` and `static:A,B,…`.
pub const POLICY_NAMES: &[&str] = &["adaptive", "static", "seda", "ds2", "hill"];

/// A policy name that [`from_name`] does not know.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown policy `{name}`: the policies are {}, static:N for N ≥ 1 workers per stage, \
     and static:A,B,… for A, B, … ≥ 1 workers in pipeline order",
    POLICY_NAMES.join(", ")
)]
pub struct UnknownPolicy {
    /// The name as given.
    pub name: String,
}

/// Builds a policy, with its defaults, from its name: `adaptive`, `static` (the pipeline's own
/// knobs), `static:N` (N ≥ 1 workers for every stage), `static:A,B,…` (A workers for
/// the first stage, B for the second, …; stages past the list keep theirs), `seda`, `ds2`
/// or `hill`.
///
/// ```
/// use brigade_controller::from_name;
///
/// assert_eq!(from_name("static:4").unwrap().name(), "static:4");
/// assert_eq!(from_name("static:2,30").unwrap().name(), "static:2,30");
/// assert!(from_name("static:0").is_err());
/// assert!(from_name("static:2,").is_err());
/// ```
pub fn from_name(spec: &str) -> Result<Box<dyn Controller>, UnknownPolicy> {
    Ok(match spec {
        "adaptive" => Box::new(Adaptive::new()),
        "static" => Box::new(Static::new()),
        "seda" => Box::new(Seda::new()),
        "ds2" => Box::new(Ds2::new()),
        "hill" => Box::new(Hill::new()),
        _ => {
            let unknown = || UnknownPolicy {
                name: spec.to_owned(),
            };
            let counts = spec.strip_prefix("static:").ok_or_else(unknown)?;
            let workers = counts
                .split(',')
                .map(|n| {
                    n.bytes()
                        .all(|b| b.is_ascii_digit())
                        .then(|| n.parse::<usize>().ok())
                        .flatten()
                        .filter(|&n| n >= 1)
                })
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(unknown)?;
            match workers[..] {
                [workers] => Box::new(Static::new().workers(workers)),
                _ => Box::new(Static::new().workers_per_stage(workers)),
            }
        }
    })
}

/// A feedback policy: turns each window's measurements into knob changes.
///
/// # Example
///
/// A policy that adds a worker to any stage whose workers never wait for input:
///
/// ```
/// use brigade_controller::{Action, Controller, Decision, Snapshot};
///
/// struct Greedy;
///
/// impl Controller for Greedy {
///     fn name(&self) -> &str {
///         "greedy"
///     }
///
///     fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision> {
///         snapshot
///             .stages
///             .iter()
///             .enumerate()
///             .filter(|(_, s)| s.records_in > 0 && s.waiting_share() < 0.01)
///             .map(|(i, s)| {
///                 Decision::new(
///                     Action::SetWorkers { stage: i, workers: s.workers.target + 1 },
///                     format!("greedy: {} never waited for input", s.name),
///                 )
///             })
///             .collect()
///     }
/// }
///
/// assert!(Greedy.decide(&Snapshot::default()).is_empty());
/// ```
pub trait Controller: Send {
    /// The policy's name, as reports and decision logs show it.
    fn name(&self) -> &str;

    /// Decides what to change after a window. Called once per tick, in order.
    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision>;
}

impl<C: Controller + ?Sized> Controller for Box<C> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn decide(&mut self, snapshot: &Snapshot) -> Vec<Decision> {
        (**self).decide(snapshot)
    }
}

/// The worker count stage `index` is converging to: its knob, or the pool's target
/// when the snapshot carries no knob for it.
fn current_workers(snapshot: &Snapshot, index: usize) -> usize {
    snapshot
        .knobs
        .stages
        .get(index)
        .map_or(snapshot.stages[index].workers.target, |knobs| knobs.workers)
}

/// `workers` kept within the pool's bounds, and never below 1.
fn clamp_workers(pool: &WorkerStats, workers: usize) -> usize {
    let min = pool.min.max(1);
    workers.clamp(min, pool.max.max(min))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_builds_the_policy_of_that_name() {
        for &name in POLICY_NAMES {
            assert_eq!(from_name(name).unwrap().name(), name);
        }
    }

    #[test]
    fn static_takes_a_worker_count() {
        let policy = from_name("static:4").unwrap();
        assert_eq!(policy.name(), "static:4");
        assert_eq!(from_name("static:12").unwrap().name(), "static:12");
    }

    #[test]
    fn static_takes_a_worker_count_per_stage() {
        use crate::{Action, Knobs, StageKnobs};
        let mut policy = from_name("static:2,30").unwrap();
        assert_eq!(policy.name(), "static:2,30");
        let snapshot = Snapshot {
            knobs: Knobs {
                stages: vec![StageKnobs::default(); 3],
                ..Default::default()
            },
            ..Default::default()
        };
        let set: Vec<_> = policy
            .decide(&snapshot)
            .into_iter()
            .map(|decision| decision.action)
            .collect();
        let to = |stage, workers| Action::SetWorkers { stage, workers };
        assert_eq!(set, [to(0, 2), to(1, 30)], "the third stage keeps its own");
    }

    #[test]
    fn unknown_names_are_refused_with_the_known_ones() {
        for bad in [
            "",
            "greedy",
            "SEDA",
            "static:",
            "static:0",
            "static:+4",
            "static:x",
            "static:4 ",
            "static:2,",
            "static:,2",
            "static:2,0",
            "static:2, 3",
            "static:2;3",
        ] {
            assert_eq!(
                from_name(bad).err(),
                Some(UnknownPolicy {
                    name: bad.to_owned()
                }),
                "{bad:?}"
            );
        }
        assert_eq!(
            UnknownPolicy {
                name: "fast".to_owned()
            }
            .to_string(),
            "unknown policy `fast`: the policies are adaptive, static, seda, ds2, hill, static:N \
             for N ≥ 1 workers per stage, and static:A,B,… for A, B, … ≥ 1 workers in pipeline \
             order"
        );
    }
}
