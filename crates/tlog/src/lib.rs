//! The transparency log over the event log (DESIGN.md §10, `docs/transparency-log.md`).
//!
//! Why a crate of its own: the tree is a second view of the log with its own store trait, its
//! own key and its own audit, and the server, the CLI and both read-store backends need it while
//! the event store must not know about it. The formats are not written here: hashing, stored
//! hashes and proofs are `tlog_tiles` (a port of Go's `sumdb/tlog`), notes are `signed_note`;
//! this crate decides what an entry is, where hashes are kept and when checkpoints are signed.

pub mod audit;
pub mod builder;
pub mod cosign;
pub mod entry;
pub mod hashes;
pub mod note;
pub mod prove;
pub mod service;
pub mod store;

pub use builder::LogBuilder;
pub use note::{open_checkpoint, LogKey, OpenedCheckpoint, VerifiedCosignature};
pub use service::{InLog, LogError, TransparencyLog};
pub use store::{
    Cosignature, Leaf, StoredCheckpoint, TreeResult, TreeSize, TreeStore, TreeStoreError,
};
pub use tlog_tiles::{Hash, EMPTY_HASH};
