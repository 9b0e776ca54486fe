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
//! - **Per-worker resources**: a `_with` stage's worker
//!   ([`Builder::try_map_with`], [`Builder::try_flat_map_with`],
//!   [`Builder::try_batch_sink_with`]) opens its own connection or process on its
//!   thread when it joins and drops it when it leaves. An open that fails shows in
//!   the Snapshot; the stage stays at the workers that opened, and its only worker
//!   retries with backoff: the pipeline stalls, it loses nothing.
//! - **Partial batch failures**: a batch write may [`Rejected`] some records; only
//!   those are dead-lettered, each at its own source position.
//! - **A dead-letter output that fails stops admission**: a letter refused by
//!   [`Builder::try_on_dead_letter`]'s handler is kept in the report, and the source
//!   is never acknowledged past it.
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
//!
//! # Model checking
//!
//! The promises above rest on a few compare-and-swap loops and condition variables:
//! the memory budget, the resizable queue, the sink limits, the ledger's tickets and
//! acknowledgement feed, and the worker pool. These take their atomics and locks from one facade
//! (`sync.rs`), which a build with `--cfg loom` fills with [loom]'s, and their
//! models (tests that loom runs in every interleaving of two or three threads, with
//! up to two preemptions) check:
//! - budget: admission never passes the cap; a blocked admit is woken by a release;
//!   growth has priority over admission; past the cap only by the escape, one grower
//!   at a time, by one record's growth at most;
//! - queue: no record lost or duplicated across push, pop, close and resizing; a
//!   blocked producer is woken by a pop or a raised capacity, a blocked consumer by a
//!   push, and every consumer by the close; `wait_for_room` and `force_push` as the
//!   source uses them;
//! - limits: calls never exceed the concurrency limit; a held caller is woken when a
//!   call exits or the limit rises;
//! - ledger: acknowledgements only rise and never pass an unfinished record, with
//!   fanned-out records finishing in any order; each record is counted once;
//! - pool: shrinking, growing back and closing never leave more workers than the
//!   target once a fill returns, nor fewer than none; exactly one worker is the last
//!   out after the close, and none starts after it.
//!
//! loom has no clock: in the model a timed wait may end without a notification, as
//! a time-out would, and time jumps to its deadline (see `sync.rs`). Run them with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test -p brigade-runtime --release --lib loom
//! ```
//!
//! (The separate target directory keeps the normal build's artefacts.) CI runs them
//! after the other tests.
//!
//! [loom]: https://docs.rs/loom

#![forbid(unsafe_code)]
#![warn(missing_docs)]

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
mod spill;
mod stage;
mod sync;
#[cfg(test)]
mod testing;
mod usage;
mod weigh;

pub use config::{BuildError, Oversize};
pub use failure::{
    BoxError, DeadLetter, DeadLetterCause, DeadLetterRefused, Failure, Partial, Rejected,
    RetryPolicy,
};
pub use monitor::{Monitor, Tick};
pub use pipeline::{Admission, Builder, Emitter, Pipeline, Running};
pub use report::{Report, RunFailure, StageInFlight, StageReport};
pub use source::{IterSource, Source};
pub use spill::{SpillConfig, Spillable};
pub use weigh::Weigh;
