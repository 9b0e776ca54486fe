//! brigade-sim: the discrete-event simulator.
//!
//! It will read scenario files (format 1, `SCENARIOS.md`), model a pipeline's load and
//! resources in virtual time, and drive any policy through the same
//! [`Snapshot`](brigade_controller::Snapshot)/[`Decision`](brigade_controller::Decision)
//! interface as the real runtime, thousands of times faster than real time. It does
//! not depend on the runtime: both speak only the controller's vocabulary.

pub mod scenario;
