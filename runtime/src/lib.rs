//! brigade-runtime: run a pipeline as a bucket brigade of stages, measured and steered.
//!
//! A pipeline is a source, a chain of stages and a sink. Each stage is a pool of worker
//! threads behind a bounded queue. The runtime measures every stage (time waiting for
//! input, time blocked on output, service time, queue depth, bytes in flight) and every
//! tick hands a [`Snapshot`](brigade_controller::Snapshot) to a
//! [`Controller`](brigade_controller::Controller), whose decisions resize pools and
//! queues, set sink limits, the memory budget and the serial-lane threshold.
//!
//! What it guarantees:
//! - **Bounded memory**: bytes admitted and not yet finished stay under the budget
//!   (see [`Weigh`]); records at or above the serial threshold run alone.
//! - **Nothing lost**: every admitted record ends in the sink or in the dead-letter
//!   output; a panic in a stage costs that record only.
//! - **Acks in order**: a [`Source`] is acknowledged only up to the last record before
//!   which everything finished.
//! - **Safe resizing and drain**: workers join and retire between records;
//!   [`Running::shutdown`] finishes what is in flight and reports.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//! use brigade_runtime::{Failure, Pipeline};
//!
//! let total = Arc::new(AtomicU64::new(0));
//! let sum = total.clone();
//! let report = Pipeline::from_iter(0..10_000u64)
//!     .memory_budget(1 << 20)
//!     .map("square", |x| x * x)
//!     .workers(1, 4)
//!     .filter("even", |x| x % 2 == 0)
//!     .try_map("checked", |x| {
//!         if x == 4 { Err(Failure::permanent(x, "four is unlucky")) } else { Ok(x) }
//!     })
//!     .sink("sum", move |x| {
//!         sum.fetch_add(x, Ordering::Relaxed);
//!     })
//!     .run()
//!     .unwrap();
//! assert_eq!(report.admitted, 10_000);
//! assert_eq!(report.completed + report.dead_lettered, 10_000);
//! assert_eq!(report.dead_letters[0].stage, "checked");
//! ```

mod budget;
mod clock;
mod config;
mod context;
mod control;
mod failure;
mod ledger;
mod limits;
mod metrics;
mod monitor;
mod pipeline;
mod queue;
mod report;
mod serial;
mod source;
mod stage;
#[cfg(test)]
mod testing;
mod usage;
mod weigh;

pub use config::{BuildError, Oversize};
pub use failure::{BoxError, DeadLetter, DeadLetterCause, Failure, RetryPolicy};
pub use monitor::{Monitor, Tick};
pub use pipeline::{Admission, Builder, Emitter, Pipeline, Running};
pub use report::{Report, StageReport};
pub use source::{IterSource, Source};
pub use weigh::Weigh;
