//! What the server's callers ask of the log: the latest checkpoint with its cosignatures, proofs,
//! witnesses' cosignatures, and a family's events proved included. The JSON API and the console
//! both call these; neither touches the tree store directly.

use crate::cosign::CosignatureVerifier;
use crate::entry::{entry_bytes, leaf_hash};
use crate::note::{open_checkpoint, NoteError, OpenedCheckpoint};
use crate::prove::{consistency, inclusion, ProofError};
use crate::store::{Cosignature, Leaf, TreeStore, TreeStoreError};
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
    /// The leaf, when the tree has the event.
    pub leaf: Option<u64>,
    /// The proof against the checkpoint checked out for the event as stored.
    pub included: bool,
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
        let mut note = latest.note;
        for c in self.tree.cosignatures(latest.size).await? {
            note.push_str(&c.line);
        }
        Ok(note)
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
        let size = match size {
            Some(s) => s,
            None => self.latest_size().await?,
        };
        let leaf = self
            .tree
            .leaf_of_event(event_id)
            .await?
            .ok_or(LogError::UnknownEvent(event_id))?;
        let tree_size = self.tree.tree_size().await?.size;
        if leaf.index >= size || size > tree_size {
            return Err(LogError::BadSize(format!(
                "the event is leaf {} and the tree has {tree_size} leaves: ask for a size above \
                 the leaf and at most the tree's",
                leaf.index
            )));
        }
        let event = self
            .events
            .read_all(leaf.position, 1)
            .await?
            .into_iter()
            .find(|e| e.position == leaf.position && e.event_id == event_id)
            .ok_or(LogError::UnknownEvent(event_id))?;
        Ok(InclusionProof {
            leaf,
            size,
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
        for witness in &self.witnesses {
            if !opened
                .witnesses
                .iter()
                .any(|w| w == signed_note::Verifier::name(witness))
            {
                continue;
            }
            let line = note
                .lines()
                .find(|l| l.starts_with(&format!("— {} ", signed_note::Verifier::name(witness))))
                .map(|l| format!("{l}\n"))
                .ok_or_else(|| bad(&"cosignature line not found"))?;
            self.tree
                .add_cosignature(Cosignature {
                    size: opened.size,
                    witness: witness.label(),
                    line,
                })
                .await?;
            kept.push(signed_note::Verifier::name(witness).to_owned());
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
        let mut events = Vec::new();
        for event in self.events.read_stream(stream, 0).await? {
            let leaf = self.tree.leaf_of_event(event.event_id).await?;
            let included = match leaf {
                Some(l) if l.index < checkpoint.size && l.position == event.position => {
                    let proof = inclusion(self.tree.as_ref(), checkpoint.size, l.index).await?;
                    check_record(
                        &proof,
                        checkpoint.size,
                        checkpoint.root,
                        l.index,
                        leaf_hash(&event),
                    )
                    .is_ok()
                }
                _ => false,
            };
            events.push(EventInclusion {
                event_id: event.event_id,
                position: event.position,
                leaf: leaf.map(|l| l.index),
                included,
            });
        }
        Ok(FamilyInclusion { checkpoint, events })
    }
}
