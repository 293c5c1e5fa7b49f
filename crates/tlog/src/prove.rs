//! Roots and proofs read from a [`TreeStore`]: O(log n) stored hashes each, in one read.

use crate::hashes::{indexes_read_by, MapReader};
use crate::store::{TreeStore, TreeStoreError};
use tlog_tiles::{prove_record, prove_tree, tree_hash, Hash, RecordProof, TreeProof};

#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error(transparent)]
    Store(#[from] TreeStoreError),
    #[error("no proof for these sizes: {0}")]
    Sizes(String),
}

async fn reader(tree: &dyn TreeStore, indexes: Vec<u64>) -> Result<MapReader, ProofError> {
    let hashes = tree.hashes(indexes.clone()).await?;
    Ok(MapReader(indexes.into_iter().zip(hashes).collect()))
}

fn sizes(e: tlog_tiles::tlog::Error) -> ProofError {
    ProofError::Sizes(e.to_string())
}

/// The root hash of the tree's first `size` leaves.
pub async fn root(tree: &dyn TreeStore, size: u64) -> Result<Hash, ProofError> {
    let r = reader(tree, indexes_read_by(|r| tree_hash(size, r))).await?;
    tree_hash(size, &r).map_err(sizes)
}

/// The proof that leaf `index` is in the tree of `size` leaves (RFC 9162 §2.1.3).
pub async fn inclusion(
    tree: &dyn TreeStore,
    size: u64,
    index: u64,
) -> Result<RecordProof, ProofError> {
    let r = reader(tree, indexes_read_by(|r| prove_record(size, index, r))).await?;
    prove_record(size, index, &r).map_err(sizes)
}

/// The proof that the tree of `old` leaves is a prefix of the tree of `new` leaves (§2.1.4).
pub async fn consistency(
    tree: &dyn TreeStore,
    new: u64,
    old: u64,
) -> Result<TreeProof, ProofError> {
    let r = reader(tree, indexes_read_by(|r| prove_tree(new, old, r))).await?;
    prove_tree(new, old, &r).map_err(sizes)
}
