//! The audit: recompute the whole tree from the events as stored and hold the tree store, every
//! signed checkpoint and a checkpoint kept from an earlier audit against it. The first thing that
//! differs is named by its position in the log.

use crate::entry::leaf_hash;
use crate::note::{open_checkpoint, NoteError, OpenedCheckpoint};
use crate::store::{Leaf, TreeStore, TreeStoreError};
use registry_store::{EventStore, RecordedEvent, StoreError};
use std::fmt;
use tlog_tiles::{
    stored_hash_index, stored_hashes_for_record_hash, tree_hash, Error, Hash, HashReader,
};

/// Events read per page.
const PAGE: usize = 10_000;

/// What the audit found first.
#[derive(Debug, PartialEq, Eq)]
pub enum Finding {
    /// The event at this position is not the bytes the tree recorded for it.
    Changed {
        index: u64,
        position: u64,
        stream: String,
        revision: u64,
    },
    /// The tree recorded an event at this position; the log no longer has it.
    Removed { index: u64, position: u64 },
    /// The log has an event the tree did not record at this place (inserted or moved).
    Unexpected {
        index: u64,
        position: u64,
        expected_position: u64,
    },
    /// A signed checkpoint covers more entries than the log has.
    Shorter {
        checkpoint_size: u64,
        events: u64,
        next_position: Option<u64>,
    },
    /// A signed checkpoint's root is not the root of the log's first `size` entries.
    Root { size: u64, kept: bool },
    /// A stored interior hash differs from the recomputed one (the tree store was altered).
    TreeHash {
        level: u8,
        first_leaf: u64,
        last_leaf: u64,
    },
    /// The server's tree has no leaf `index` although it has later ones.
    Gap { index: u64 },
    /// A stored checkpoint's signature does not verify.
    Signature { size: u64, why: String },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Changed { index, position, stream, revision } => write!(
                f,
                "position {position} (leaf {index}, {stream} revision {revision}): the stored event \
                 is not the one the log recorded"
            ),
            Self::Removed { index, position } => write!(
                f,
                "position {position} (leaf {index}): the event the log recorded there is gone"
            ),
            Self::Unexpected { index, position, expected_position } => write!(
                f,
                "position {position} (leaf {index}): an event the log did not record here (the \
                 log recorded position {expected_position} as leaf {index})"
            ),
            Self::Shorter { checkpoint_size, events, next_position } => write!(
                f,
                "position {} (leaf {events}): the log holds {events} events but a signed \
                 checkpoint covers {checkpoint_size}",
                next_position.map_or_else(|| "?".into(), |p| p.to_string())
            ),
            Self::Root { size, kept } => write!(
                f,
                "the first {size} entries do not hash to the root of the {} checkpoint of that \
                 size: an entry up to leaf {} was changed, removed or reordered",
                if *kept { "kept" } else { "signed" },
                size.saturating_sub(1)
            ),
            Self::TreeHash { level, first_leaf, last_leaf } => write!(
                f,
                "the server's stored hash over leaves {first_leaf}..={last_leaf} (level {level}) is \
                 not the recomputed one: its tree was altered, and proofs from it fail"
            ),
            Self::Gap { index } => {
                write!(f, "leaf {index} is missing from the server's tree")
            }
            Self::Signature { size, why } => {
                write!(f, "the stored checkpoint of size {size} does not verify: {why}")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{0}")]
    Found(Finding),
    #[error(transparent)]
    Events(#[from] StoreError),
    #[error(transparent)]
    Tree(#[from] TreeStoreError),
    #[error("the kept checkpoint: {0}")]
    Kept(NoteError),
    #[error("tree arithmetic: {0}")]
    Hashes(String),
}

/// What a passing audit checked.
#[derive(Debug)]
pub struct AuditReport {
    pub events: u64,
    pub root: Hash,
    pub checkpoints: u64,
    /// The newest signed checkpoint, verified: the one to keep for the next audit.
    pub latest: Option<(String, OpenedCheckpoint)>,
    /// The size of the kept checkpoint, when one was given and matched.
    pub kept: Option<u64>,
}

/// Every stored hash of the recomputed tree, in stored-hash order.
#[derive(Debug, Default)]
struct Recomputed(Vec<Hash>);

impl HashReader for Recomputed {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Error> {
        indexes
            .iter()
            .map(|i| {
                self.0
                    .get(*i as usize)
                    .copied()
                    .ok_or(Error::IndexesNotInTree)
            })
            .collect()
    }
}

impl Recomputed {
    fn push(&mut self, n: u64, leaf: Hash) -> Result<(), AuditError> {
        let hashes = stored_hashes_for_record_hash(n, leaf, self)
            .map_err(|e| AuditError::Hashes(e.to_string()))?;
        self.0.extend(hashes);
        Ok(())
    }

    fn root(&self, size: u64) -> Result<Hash, AuditError> {
        tree_hash(size, self).map_err(|e| AuditError::Hashes(e.to_string()))
    }
}

fn found(f: Finding) -> AuditError {
    AuditError::Found(f)
}

/// Compares one page of events with the leaves the tree recorded for them.
fn compare(
    index: u64,
    event: &RecordedEvent,
    leaf: Option<(&Leaf, &Hash)>,
    hash: &Hash,
) -> Result<(), AuditError> {
    let Some((leaf, recorded)) = leaf else {
        return Ok(()); // not in the tree yet: checked against checkpoints only
    };
    if leaf.index != index {
        return Err(found(Finding::Gap { index }));
    }
    if event.position > leaf.position {
        return Err(found(Finding::Removed {
            index,
            position: leaf.position,
        }));
    }
    if event.position < leaf.position || event.event_id != leaf.event_id {
        return Err(found(Finding::Unexpected {
            index,
            position: event.position,
            expected_position: leaf.position,
        }));
    }
    if hash != recorded {
        return Err(found(Finding::Changed {
            index,
            position: event.position,
            stream: event.stream.clone(),
            revision: event.revision,
        }));
    }
    Ok(())
}

/// Runs the audit. `progress` is called with the number of events hashed so far.
pub async fn verify(
    events: &dyn EventStore,
    tree: &dyn TreeStore,
    verifier_key: &str,
    kept: Option<&str>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<AuditReport, AuditError> {
    let kept = kept
        .map(|note| open_checkpoint(note, verifier_key, &[]).map(|c| (note, c)))
        .transpose()
        .map_err(AuditError::Kept)?;
    // What the server had recorded when the audit began: a builder still running adds leaves
    // and checkpoints beyond these while the audit reads, and those are not held against it.
    // Checkpoints first: every checkpoint is of a tree the builder had already stored.
    let signed = tree.latest_checkpoint().await?.map_or(0, |c| c.size);
    let recorded_leaves = tree.tree_size().await?.size;
    let mut recomputed = Recomputed::default();
    let mut n = 0u64;
    let mut last = 0u64;
    loop {
        let page = events.read_all(last + 1, PAGE).await?;
        let Some(end) = page.last() else { break };
        last = end.position;
        let wanted = (page.len() as u64).min(recorded_leaves.saturating_sub(n)) as usize;
        let leaves = tree.leaves(n, wanted).await?;
        let recorded = tree
            .hashes(
                leaves
                    .iter()
                    .map(|l| stored_hash_index(0, l.index))
                    .collect(),
            )
            .await?;
        for (i, event) in page.iter().enumerate() {
            let hash = leaf_hash(event);
            compare(n, event, leaves.get(i).zip(recorded.get(i)), &hash)?;
            recomputed.push(n, hash)?;
            n += 1;
        }
        progress(n);
    }
    // The tree recorded more leaves than the log has events: the tail was removed.
    if n < recorded_leaves {
        if let Some(leaf) = tree.leaves(n, 1).await?.first() {
            return Err(found(Finding::Removed {
                index: leaf.index,
                position: leaf.position,
            }));
        }
    }
    // Every interior hash the server keeps (proofs are read from them) against the recomputed.
    let count = tlog_tiles::stored_hash_count(n.min(recorded_leaves));
    let mut index = 0;
    while index < count {
        let end = (index + PAGE as u64).min(count);
        let stored = tree.hashes((index..end).collect()).await?;
        for (i, hash) in (index..end).zip(stored) {
            if recomputed.0.get(i as usize) != Some(&hash) {
                let (level, k) = tlog_tiles::split_stored_hash_index(i);
                return Err(found(Finding::TreeHash {
                    level,
                    first_leaf: k << level,
                    last_leaf: ((k + 1) << level) - 1,
                }));
            }
        }
        index = end;
    }
    let mut checkpoints = 0;
    let mut latest = None;
    let mut from = 0;
    loop {
        let page = tree.checkpoints(from, 1_000).await?;
        let Some(end) = page.last() else { break };
        from = end.size + 1;
        for stored in page.into_iter().filter(|c| c.size <= signed) {
            let opened = open_checkpoint(&stored.note, verifier_key, &[]).map_err(|e| {
                found(Finding::Signature {
                    size: stored.size,
                    why: e.to_string(),
                })
            })?;
            check_root(&recomputed, n, &opened, false, tree).await?;
            checkpoints += 1;
            latest = Some((stored.note, opened));
        }
    }
    if let Some((_, kept)) = &kept {
        check_root(&recomputed, n, kept, true, tree).await?;
    }
    Ok(AuditReport {
        events: n,
        root: recomputed.root(n)?,
        checkpoints,
        latest,
        kept: kept.map(|(_, c)| c.size),
    })
}

async fn check_root(
    recomputed: &Recomputed,
    events: u64,
    checkpoint: &OpenedCheckpoint,
    kept: bool,
    tree: &dyn TreeStore,
) -> Result<(), AuditError> {
    if checkpoint.size > events {
        let next_position = tree.leaves(events, 1).await?.first().map(|l| l.position);
        return Err(found(Finding::Shorter {
            checkpoint_size: checkpoint.size,
            events,
            next_position,
        }));
    }
    if recomputed.root(checkpoint.size)? != checkpoint.root {
        return Err(found(Finding::Root {
            size: checkpoint.size,
            kept,
        }));
    }
    Ok(())
}
