//! PostgreSQL connectors.
//!
//! - [`source`]: a query or table read through a server-side cursor in key order,
//!   resumable from the last acknowledged key, or split into key ranges read in
//!   parallel (`partitions`).

pub mod source;
