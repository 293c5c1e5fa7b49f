//! Test support shared by the test suites of several crates.
//!
//! Why a crate of its own: the event-store, projection, end-to-end and CLI tests all need the
//! same throwaway PostgreSQL, the same PDF readers, the same family builders and the same way to
//! run a suite on both databases, and none of it belongs in production code.

mod backends;
pub mod builders;
pub mod pdf;
pub mod postgres;

pub use backends::Db;
pub use postgres::{fresh_database, server_url};
