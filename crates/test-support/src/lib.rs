//! Test support shared by the test suites of several crates.
//!
//! Why a crate of its own: the event-store, projection, end-to-end and CLI tests all need the
//! same throwaway PostgreSQL and the same PDF readers, and none of it belongs in production code.

pub mod pdf;
pub mod postgres;

pub use postgres::{fresh_database, server_url};
