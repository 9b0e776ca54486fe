//! PostgreSQL connectors: the [`sink`] (COPY, upsert, multi-row INSERT), with what
//! every PostgreSQL connector shares: opening a connection from a pipeline's `url`
//! ([`Server`]) and telling a transient failure from a permanent one by its SQLSTATE
//! ([`is_transient`], [`PostgresError`]).
//!
//! The client is the synchronous `postgres` crate, without TLS: each worker's
//! connection lives on that worker's thread and does its I/O there.

mod connect;
mod error;
pub mod sink;

pub use connect::{Server, DEFAULT_CONNECT_TIMEOUT};
pub use error::{describe, is_transient, PostgresError};
