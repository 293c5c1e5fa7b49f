//! Keeps the tree up with the event log and signs a checkpoint after each round of new events.
//!
//! The builder follows the log as stored (sealed fields stay sealed: it reads the plain store),
//! adds each page of events as leaves with the stored hashes they complete, and signs the new
//! tree head. A page is appended only if the tree still has the size it was computed from, so two
//! builders (two servers on one PostgreSQL) never fork the tree; both would sign the same heads.

use crate::entry::leaf_hash;
use crate::hashes::{appended, frontier};
use crate::note::LogKey;
use crate::prove::{root, ProofError};
use crate::store::{Leaf, StoredCheckpoint, TreeSize, TreeStore, TreeStoreError};
use registry_store::{EventStore, StoreError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events read and added per transaction.
pub const PAGE: usize = 2_000;

/// How long a round of catching up runs before it signs what it has (the checkpoint is then at
/// most this much behind the log under a steady load).
pub const SIGN_EVERY: Duration = Duration::from_millis(500);

/// A round starts at least this long after the one before: under a steady load one round takes
/// in everything appended meanwhile (a round costs two write transactions, some reads and a
/// signature, so following each command on its own cost an eighth of the server's CPU during
/// grants, and held the read store's writer from the projections). A lone event after a quiet
/// spell is taken at once; any event is in a signed checkpoint within about this long plus the
/// round's own time.
pub const ROUND_GAP: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Events(#[from] StoreError),
    #[error(transparent)]
    Tree(#[from] TreeStoreError),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("tree arithmetic: {0}")]
    Hashes(String),
    #[error(transparent)]
    Note(#[from] crate::note::NoteError),
}

#[derive(Debug)]
pub struct LogBuilder {
    events: Arc<dyn EventStore>,
    tree: Arc<dyn TreeStore>,
    key: Arc<LogKey>,
}

impl LogBuilder {
    pub fn new(events: Arc<dyn EventStore>, tree: Arc<dyn TreeStore>, key: Arc<LogKey>) -> Self {
        Self { events, tree, key }
    }

    /// Adds one page of events after the tree's last leaf; returns how many it added (or 1 when
    /// another builder added that page first: there may be more, so the caller goes on).
    async fn add_page(&self) -> Result<usize, BuildError> {
        let at = self.tree.tree_size().await?;
        let events = self.events.read_all(at.last_position + 1, PAGE).await?;
        if events.is_empty() {
            return Ok(0);
        }
        let edge = frontier(at.size);
        let known = self.tree.hashes(edge.clone()).await?;
        let leaf_hashes: Vec<_> = events.iter().map(leaf_hash).collect();
        let hashes = appended(at.size, edge.into_iter().zip(known).collect(), &leaf_hashes)
            .map_err(|e| BuildError::Hashes(e.to_string()))?;
        let leaves = (at.size..)
            .zip(&events)
            .map(|(index, e)| Leaf {
                index,
                position: e.position,
                event_id: e.event_id,
            })
            .collect();
        match self.tree.append(at.size, leaves, hashes).await {
            Ok(()) => Ok(events.len()),
            // Another builder added this page first: the next round starts from its tree.
            Err(TreeStoreError::Conflict { .. }) => Ok(1),
            Err(e) => Err(e.into()),
        }
    }

    /// Signs the tree's current head unless the latest checkpoint already has its size.
    pub async fn sign(&self) -> Result<StoredCheckpoint, BuildError> {
        let size = self.tree.tree_size().await?.size;
        if let Some(latest) = self.tree.latest_checkpoint().await? {
            if latest.size == size {
                return Ok(latest);
            }
        }
        let note = self.key.sign(size, root(self.tree.as_ref(), size).await?)?;
        let checkpoint = StoredCheckpoint { size, note };
        self.tree.save_checkpoint(checkpoint.clone()).await?;
        Ok(checkpoint)
    }

    /// Adds every event the log has, signing at least every [`SIGN_EVERY`] on the way and once
    /// at the end.
    pub async fn catch_up(&self) -> Result<TreeSize, BuildError> {
        let mut since = Instant::now();
        while self.add_page().await? > 0 {
            if since.elapsed() >= SIGN_EVERY {
                self.sign().await?;
                since = Instant::now();
            }
        }
        self.sign().await?;
        Ok(self.tree.tree_size().await?)
    }

    /// Follows the log until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let started = tokio::time::Instant::now();
            let after = match self.catch_up().await {
                Ok(size) => size.last_position,
                Err(e) => {
                    tracing::error!(error = %e, "the transparency log could not catch up");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                _ = self.events.wait_for_events(after, Duration::from_secs(1)) => {}
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep_until(started + ROUND_GAP) => {}
            }
        }
    }
}
