//! brigade-synthetic: a scenario file run for real, on the real runtime, with
//! synthetic stages.
//!
//! A scenario (format 1, `docs/scenarios.md`) describes a pipeline's load, not its code.
//! The simulator (`brigade-sim`) runs it in virtual time; this crate runs it in real
//! time on `brigade-runtime`, with stages that do what the scenario says they cost.
//! It is the engine of `brigade demo`, and the way to check that the simulator tells
//! the truth (the root package's `truth` bench runs both side by side).
//!
//! What a synthetic run does, field by field, with the simulator's meanings:
//!
//! - **Records** carry an id and the bytes of their size, allocated and touched page
//!   by page when made, and weigh exactly their length. Sizes, giants
//!   (`[[source.giant]]`), service times, errors and fan-outs are drawn from the
//!   simulator's own keyed draws ([`brigade_scenario::draws`]): the real run meets the
//!   same records as the simulated one.
//! - **cpu stages** spin for their work in the thread's own CPU time, so that when
//!   more calls spin than there are cores the kernel shares the cores among them (the
//!   model's processor sharing), and none fakes parallelism the machine lacks.
//!   **io stages** sleep for it. Either way a call's work is a draw of `service`
//!   plus `per_mib` per MiB of the record (a batching sink: of the batch), times the
//!   `service_scale` in force when it starts; it progresses at
//!   1 / (1 + σ(n−1) + κ·n(n−1)), n the stage's calls in progress in both lanes,
//!   read again as the call goes on.
//! - A stage before the sink is a fallible flat map: a call that `error_rate` fails
//!   hands its record back as a transient failure, which the runtime retries with
//!   backoff (its draws are keyed by attempt, as the model's are); otherwise the
//!   record becomes `output_ratio` outputs (a fraction is a chance of one more) of
//!   `size_ratio` times its bytes. The sink writes one record per call, or batches
//!   when `batch = true`.
//! - **The source** delivers at most `rate` records a second, only when the runtime
//!   asks, `total` of them if set; it declares its `idle_timeout`, so the runtime's
//!   source guard reads it when back pressure stalls it; if it still goes unread that
//!   long it times out: `on_timeout = "fail"` ends the run with
//!   [`Error::SourceTimeout`], `"reconnect"` pauses it for `reconnect`.
//! - **Phases** happen on the wall clock, `at` seconds after the start.
//! - **Knobs** come from `[runtime]` (memory budget, initial and most workers, queue
//!   capacity, batch size) and the scenario's `tick`; the policy is an [`Options`]
//!   field, `adaptive` by default. `[machine]` describes the simulated machine and is
//!   not enforced: the real one has the cores it has.
//!
//! A run lasts the scenario's `duration` (or [`Options::duration`]), or until a finite
//! source is exhausted; then admission stops and what is in flight drains.
//!
//! ```
//! use std::time::Duration;
//! use brigade_scenario::parse_str;
//! use brigade_synthetic::{start, Options};
//!
//! let scenario = parse_str(
//!     r#"
//!     name = "tiny"
//!     duration = "10s"
//!     tick = "100ms"
//!     [source]
//!     rate = 2000
//!     total = 200
//!     size = { dist = "lognormal", median = "4KiB", p99 = "64KiB" }
//!     [[stage]]
//!     name = "parse"
//!     kind = "cpu"
//!     service = { dist = "fixed", value = "100us" }
//!     output_ratio = 1.5
//!     [[stage]]
//!     name = "write"
//!     kind = "io"
//!     service = { dist = "lognormal", median = "1ms", p99 = "5ms" }
//!     coherency = 0.01
//!     error_rate = 0.02
//!     "#,
//!     "tiny.toml",
//! )?;
//! let demo = start(&scenario, Options::default().duration(Duration::from_secs(5)))?;
//! let monitor = demo.monitor(); // snapshots and decisions, as they come
//! let finished = demo.wait();
//! let report = &finished.report;
//! assert!(finished.failure.is_none());
//! assert_eq!(report.admitted, 200);
//! assert_eq!(report.admitted, report.completed + report.dead_lettered);
//! println!("{:.0} records/s, {} decisions", finished.throughput(), monitor.decisions().len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// Unsafe only for two libc calls (the thread CPU clock, timer slack) in `work.rs`.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod clock;
mod demo;
mod error;
mod pipeline;
mod record;
mod source;
mod stage;
#[cfg(test)]
mod test;
mod work;

use std::sync::Arc;
use std::time::Duration;

use brigade_controller::{from_name, Controller};
use brigade_scenario::{parse_str, Scenario};

pub use demo::{Demo, Finished, Watch};
pub use error::Error;

/// The built-in demo scenario (`scenarios/demo.toml`), sized for a 2-core machine.
const BUILTIN: &str = include_str!("../../scenarios/demo.toml");

/// The built-in demo scenario: a few minutes on a 2-core machine that show everything
/// at once (a contended sink whose throughput peaks and falls, giants through the
/// serial lane, a phase in which the sink slows down).
pub fn builtin() -> Scenario {
    parse_str(BUILTIN, "scenarios/demo.toml").expect("the built-in demo scenario parses")
}

/// How to run a scenario.
pub struct Options {
    /// How long to admit records, overriding the scenario's `duration`.
    pub duration: Option<Duration>,
    /// The policy that turns the knobs (default: `adaptive`).
    pub policy: Box<dyn Controller>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            duration: None,
            policy: from_name("adaptive").expect("adaptive is a policy"),
        }
    }
}

impl Options {
    /// Admits records for `duration` instead of the scenario's `duration`.
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Steers the run with `policy`.
    pub fn policy(mut self, policy: Box<dyn Controller>) -> Self {
        self.policy = policy;
        self
    }
}

/// Starts `scenario` for real with synthetic stages, and returns at once with a
/// handle on the run.
pub fn start(scenario: &Scenario, options: Options) -> Result<Demo, Error> {
    let duration_s = options
        .duration
        .map_or(scenario.duration_s, |duration| duration.as_secs_f64());
    let clock = Arc::new(clock::Clock::new(scenario));
    let idle = Arc::new(source::Idle::new(scenario));
    let running = pipeline::build(scenario, &clock, &idle, options.policy).start()?;
    Ok(Demo::watch(running, clock, idle, duration_s))
}
