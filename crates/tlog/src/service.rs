//! What the server's callers ask of the log: the latest checkpoint with its cosignatures, proofs,
//! witnesses' cosignatures, and a family's events proved included. The JSON API and the console
//! both call these; neither touches the tree store directly.

use crate::cosign::CosignatureVerifier;
use crate::entry::{entry_bytes, leaf_hash};
use crate::note::{open_checkpoint, NoteError, OpenedCheckpoint};
use crate::prove::{consistency, inclusion, ProofError};
use crate::store::{Cosignature, Leaf, StoredCheckpoint, TreeStore, TreeStoreError};
use registry_store::{EventStore, StoreError};
use std::sync::Arc;
use tlog_tiles::{check_record, Hash};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Nothing signed yet (a log that has never run its builder).
    #[error("the log has no signed checkpoint yet")]
    NoCheckpoint,
    #[error("the log has no event {0}")]
    UnknownEvent(Uuid),
    /// The event is in the log but not yet in a signed checkpoint (it will be within a second).
    #[error("the event is not in a signed checkpoint yet")]
    NotYetSigned,
    /// A size the log never had, or an event not covered by that size.
    #[error("{0}")]
    BadSize(String),
    #[error("not a cosigned checkpoint of this log: {0}")]
    BadCosignature(String),
    #[error(transparent)]
    Tree(#[from] TreeStoreError),
    #[error(transparent)]
    Events(#[from] StoreError),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(transparent)]
    Note(#[from] NoteError),
}

/// An event's inclusion proof against the tree of `size` leaves.
#[derive(Debug)]
pub struct InclusionProof {
    pub leaf: Leaf,
    pub size: u64,
    /// The event's stream (a family's, for every event today).
    pub stream: String,
    /// The event's entry bytes as hashed (auditors only: it holds the sealed payload).
    pub entry: Vec<u8>,
    pub proof: Vec<Hash>,
    /// The signed checkpoint of that size, when one was kept.
    pub checkpoint: Option<String>,
}

/// How one event of a family stands in the signed log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventInclusion {
    pub event_id: Uuid,
    pub position: u64,
    pub state: InLog,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InLog {
    /// The proof against the checkpoint checked out for the event as stored: leaf `0`.
    Included(u64),
    /// Newer than the checkpoint (or than the tree): the next checkpoint will cover it.
    Pending,
    /// The event is not the one the log recorded (its proof fails), or it sits at a place the
    /// tree already passed without recording it (inserted afterwards).
    Altered,
}

/// A family's events checked against the latest signed checkpoint.
#[derive(Debug)]
pub struct FamilyInclusion {
    pub checkpoint: OpenedCheckpoint,
    pub events: Vec<EventInclusion>,
}

#[derive(Clone, Debug)]
pub struct TransparencyLog {
    /// The event store as stored (sealed fields sealed): entries are hashed from it.
    events: Arc<dyn EventStore>,
    tree: Arc<dyn TreeStore>,
    verifier_key: String,
    witnesses: Vec<CosignatureVerifier>,
}

impl TransparencyLog {
    pub fn new(
        events: Arc<dyn EventStore>,
        tree: Arc<dyn TreeStore>,
        verifier_key: String,
        witnesses: Vec<CosignatureVerifier>,
    ) -> Self {
        Self {
            events,
            tree,
            verifier_key,
            witnesses,
        }
    }

    /// The log's public key (`name+id+base64`).
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    pub fn tree(&self) -> &Arc<dyn TreeStore> {
        &self.tree
    }

    /// The latest signed checkpoint, with every kept cosignature line after the log's.
    pub async fn checkpoint(&self) -> Result<String, LogError> {
        let latest = self
            .tree
            .latest_checkpoint()
            .await?
            .ok_or(LogError::NoCheckpoint)?;
        self.with_cosignatures(latest).await
    }

    /// A kept checkpoint's note with every kept cosignature line after the log's.
    async fn with_cosignatures(&self, kept: StoredCheckpoint) -> Result<String, LogError> {
        let mut note = kept.note;
        for c in self.tree.cosignatures(kept.size).await? {
            note.push_str(&c.line);
        }
        Ok(note)
    }

    /// The kept checkpoint of `size` with its cosignatures (witnesses cosign a checkpoint that
    /// may no longer be the latest by the time they answer).
    pub async fn checkpoint_of(&self, size: u64) -> Result<Option<String>, LogError> {
        match self.tree.checkpoint(size).await? {
            Some(kept) => Ok(Some(self.with_cosignatures(kept).await?)),
            None => Ok(None),
        }
    }

    async fn latest_size(&self) -> Result<u64, LogError> {
        Ok(self
            .tree
            .latest_checkpoint()
            .await?
            .ok_or(LogError::NoCheckpoint)?
            .size)
    }

    /// The proof that `event_id` is in the tree of `size` leaves (default: the latest
    /// checkpoint's size).
    pub async fn inclusion(
        &self,
        event_id: Uuid,
        size: Option<u64>,
    ) -> Result<InclusionProof, LogError> {
        let asked = size;
        let size = match size {
            Some(s) => s,
            None => self.latest_size().await?,
        };
        let leaf = self
            .tree
            .leaf_of_event(event_id)
            .await?
            .ok_or(LogError::UnknownEvent(event_id))?;
        if asked.is_none() && leaf.index >= size {
            return Err(LogError::NotYetSigned);
        }
        let tree_size = self.tree.tree_size().await?.size;
        if leaf.index >= size || size > tree_size {
            return Err(LogError::BadSize(format!(
                "the event is leaf {} and the tree has {tree_size} leaves: ask for a size above \
                 the leaf and at most the tree's",
                leaf.index
            )));
        }
        // Read from just after the previous leaf, as the builder did: on KurrentDB a position is
        // a byte offset and only "last seen + 1" is a valid place to start.
        let from = match leaf.index {
            0 => 1,
            i => self
                .tree
                .leaves(i - 1, 1)
                .await?
                .first()
                .map_or(1, |previous| previous.position + 1),
        };
        let event = self
            .events
            .read_all(from, 1)
            .await?
            .into_iter()
            .find(|e| e.position == leaf.position && e.event_id == event_id)
            .ok_or(LogError::UnknownEvent(event_id))?;
        Ok(InclusionProof {
            leaf,
            size,
            stream: event.stream.clone(),
            entry: entry_bytes(&event),
            proof: inclusion(self.tree.as_ref(), size, leaf.index).await?,
            checkpoint: self.tree.checkpoint(size).await?.map(|c| c.note),
        })
    }

    /// The proof that the tree of `from` leaves is a prefix of the tree of `to` leaves.
    pub async fn consistency(&self, from: u64, to: u64) -> Result<Vec<Hash>, LogError> {
        let tree_size = self.tree.tree_size().await?.size;
        if from > to || to > tree_size {
            return Err(LogError::BadSize(format!(
                "sizes must satisfy from <= to <= {tree_size} (the tree's size)"
            )));
        }
        if from == 0 || from == to {
            return Ok(Vec::new());
        }
        Ok(consistency(self.tree.as_ref(), to, from).await?)
    }

    /// Keeps the cosignatures of configured witnesses found on a note of one of the log's
    /// checkpoints (the note a witness returns: the checkpoint, the log's signature, its own).
    /// Returns the witnesses whose cosignatures were kept.
    pub async fn add_cosignatures(&self, note: &str) -> Result<Vec<String>, LogError> {
        let bad = |why: &dyn std::fmt::Display| LogError::BadCosignature(why.to_string());
        let opened =
            open_checkpoint(note, &self.verifier_key, &self.witnesses).map_err(|e| bad(&e))?;
        let stored = self.tree.checkpoint(opened.size).await?.ok_or_else(|| {
            bad(&format!(
                "the log never signed a checkpoint of size {}",
                opened.size
            ))
        })?;
        if !stored.note.starts_with(&opened.text) {
            return Err(bad(&"the log signed another tree head of that size"));
        }
        let mut kept = Vec::new();
        let stored_lines = self.tree.cosignatures(opened.size).await?;
        for cosig in &opened.witnesses {
            let label = format!("{}+{:08x}", cosig.name, cosig.key_id);
            // Only a newer cosignature replaces a witness's earlier one on this size.
            let newer = stored_lines
                .iter()
                .filter(|c| c.witness == label)
                .filter_map(|c| crate::cosign::line_timestamp(&c.line))
                .all(|t| cosig.timestamp > t);
            if newer {
                self.tree
                    .add_cosignature(Cosignature {
                        size: opened.size,
                        witness: label,
                        line: cosig.line.clone(),
                    })
                    .await?;
            }
            kept.push(cosig.name.clone());
        }
        if kept.is_empty() {
            return Err(bad(&"no cosignature of a configured witness"));
        }
        Ok(kept)
    }

    /// Checks every event of `stream`, as stored, against the latest signed checkpoint.
    pub async fn prove_stream(&self, stream: &str) -> Result<FamilyInclusion, LogError> {
        let latest = self
            .tree
            .latest_checkpoint()
            .await?
            .ok_or(LogError::NoCheckpoint)?;
        let checkpoint = open_checkpoint(&latest.note, &self.verifier_key, &[])?;
        let tree = self.tree.tree_size().await?;
        let mut events = Vec::new();
        for event in self.events.read_stream(stream, 0).await? {
            let state = match self.tree.leaf_of_event(event.event_id).await? {
                Some(l) if l.position != event.position => InLog::Altered,
                Some(l) if l.index < checkpoint.size => {
                    let proof = inclusion(self.tree.as_ref(), checkpoint.size, l.index).await?;
                    let hash = leaf_hash(&event);
                    match check_record(&proof, checkpoint.size, checkpoint.root, l.index, hash) {
                        Ok(()) => InLog::Included(l.index),
                        Err(_) => InLog::Altered,
                    }
                }
                Some(_) => InLog::Pending,
                None if event.position <= tree.last_position => InLog::Altered,
                None => InLog::Pending,
            };
            events.push(EventInclusion {
                event_id: event.event_id,
                position: event.position,
                state,
            });
        }
        Ok(FamilyInclusion { checkpoint, events })
    }
}
