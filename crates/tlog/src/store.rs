//! Where the tree is kept: the stored hashes (so a proof costs O(log n) reads), which event each
//! leaf is, the signed checkpoints and the witnesses' cosignatures.
//!
//! Why a trait: like the event store and the read store, each database has its own crate
//! (SQLite, PostgreSQL) and one contract suite holds both to the same behaviour. The tree is
//! derived data: it can always be recomputed from the event log, and `registry audit verify`
//! does exactly that to check it.

use async_trait::async_trait;
use std::fmt;
use tlog_tiles::Hash;
use uuid::Uuid;

/// One leaf: the `index`-th event of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leaf {
    pub index: u64,
    /// The event's global position in the event store.
    pub position: u64,
    pub event_id: Uuid,
}

/// How far the tree has got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeSize {
    /// Number of leaves.
    pub size: u64,
    /// Position of the last leaf's event (0 for an empty tree).
    pub last_position: u64,
}

/// A checkpoint as the log signed it: the whole signed note (without cosignatures).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub note: String,
}

/// A witness's cosignature on one checkpoint: its signature line (`— name base64`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosignature {
    pub size: u64,
    /// The witness key's name and id (`name+hexid`): one cosignature per witness and size.
    pub witness: String,
    pub line: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TreeStoreError {
    /// The tree does not have the size the append started from (another builder got there).
    #[error("the tree has {actual} leaves, not {expected}")]
    Conflict { expected: u64, actual: u64 },
    /// A stored hash that the tree of this size must have is missing.
    #[error("stored hash {0} is missing")]
    MissingHash(u64),
    #[error("tree store: {0}")]
    Backend(String),
}

pub type TreeResult<T> = Result<T, TreeStoreError>;

#[async_trait]
pub trait TreeStore: Send + Sync + fmt::Debug + 'static {
    async fn tree_size(&self) -> TreeResult<TreeSize>;

    /// Adds leaves `from..from + leaves.len()` and the stored hashes they complete, in one
    /// transaction. Refused with [`TreeStoreError::Conflict`], changing nothing, unless the tree
    /// has exactly `from` leaves.
    async fn append(
        &self,
        from: u64,
        leaves: Vec<Leaf>,
        hashes: Vec<(u64, Hash)>,
    ) -> TreeResult<()>;

    /// The stored hashes at these indexes (tlog stored-hash numbering), in the same order.
    async fn hashes(&self, indexes: Vec<u64>) -> TreeResult<Vec<Hash>>;

    /// Leaves `from..` in index order, at most `limit`.
    async fn leaves(&self, from: u64, limit: usize) -> TreeResult<Vec<Leaf>>;

    async fn leaf_of_event(&self, event_id: Uuid) -> TreeResult<Option<Leaf>>;

    /// Keeps a signed checkpoint; saving one of a size already kept changes nothing.
    async fn save_checkpoint(&self, checkpoint: StoredCheckpoint) -> TreeResult<()>;

    async fn latest_checkpoint(&self) -> TreeResult<Option<StoredCheckpoint>>;

    async fn checkpoint(&self, size: u64) -> TreeResult<Option<StoredCheckpoint>>;

    /// Every kept checkpoint of a size in `from..`, smallest first, at most `limit`.
    async fn checkpoints(&self, from: u64, limit: usize) -> TreeResult<Vec<StoredCheckpoint>>;

    /// Keeps a cosignature, replacing an earlier one of the same witness on the same size.
    async fn add_cosignature(&self, cosignature: Cosignature) -> TreeResult<()>;

    async fn cosignatures(&self, size: u64) -> TreeResult<Vec<Cosignature>>;
}
