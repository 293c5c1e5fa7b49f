//! The families a projection folds events onto: loaded from the store's current rows (a live
//! batch), or held in memory for a whole rebuild.

use registry_domain::{Family, FamilyId};
use registry_read_store::{FoldedFamily, SearchKey};
use registry_store::RecordedEvent;
use std::collections::{HashMap, HashSet};

/// A family as folded so far (`None` until its grant), with its last event's revision and
/// position.
#[derive(Clone, Debug, Default)]
pub struct Folded {
    pub family: Option<Family>,
    pub revision: u64,
    pub position: u64,
}

/// The row a reissue leaves for the replaced certificate: the family as it was, members emptied.
#[derive(Clone, Debug)]
pub struct Replaced {
    pub family: Family,
    pub revision: u64,
    pub position: u64,
}

/// What a folding projection holds between batches.
#[derive(Debug, Default)]
pub struct Families {
    pub(crate) held: HashMap<FamilyId, Folded>,
    /// Every family of the log is held (a rebuild from its start): one not held is new.
    complete: bool,
    /// Families whose current row changed since the last flush.
    pub(crate) dirty: HashSet<FamilyId>,
    /// Rows of replaced certificates, written with the next flush.
    pub(crate) replaced: Vec<Replaced>,
    /// The search keys a family changed since the last flush is stored with (taken from the
    /// family as it was before its first change since): the flush replaces exactly these.
    pub(crate) keys_before: HashMap<FamilyId, Vec<SearchKey>>,
    /// The next flush moves the families it writes out instead of copying them: they are
    /// forgotten after it ([`Families::release`]).
    releasing: bool,
}

impl Families {
    /// For a live batch: families come from the store.
    pub fn loaded() -> Self {
        Self::default()
    }

    /// For a rebuild from the start of the log: nothing to load until it writes some out.
    pub fn complete() -> Self {
        Self {
            complete: true,
            ..Self::default()
        }
    }

    /// The families `events` touch that must be loaded first, sorted.
    pub fn missing(&self, events: &[RecordedEvent]) -> Vec<FamilyId> {
        if self.complete {
            return Vec::new();
        }
        let mut missing: Vec<FamilyId> = events
            .iter()
            .filter_map(|e| FamilyId::from_stream_name(&e.stream))
            .filter(|f| !self.held.contains_key(f))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    /// Holds families loaded from the store's current rows.
    pub fn hold(&mut self, rows: Vec<FoldedFamily>) {
        for row in rows {
            self.held.insert(
                row.family.family_id,
                Folded {
                    family: Some(row.family),
                    revision: row.revision,
                    position: row.position,
                },
            );
        }
    }

    /// Families held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Forgets every family (after their rows were written out): from now on the families an
    /// event touches are loaded first.
    pub fn forget(&mut self) {
        self.held.clear();
        self.dirty.clear();
        self.replaced.clear();
        self.keys_before.clear();
        self.complete = false;
        self.releasing = false;
    }

    /// Says the next flush is followed by [`Families::forget`]: it may move the families out
    /// rather than copy them (a rebuild's last flush writes every family it holds).
    pub fn release(&mut self) {
        self.releasing = true;
    }

    /// A family for a flush to write: moved out if the families are being released, else copied.
    pub(crate) fn take_for_flush(&mut self, id: &FamilyId) -> Option<Folded> {
        if self.releasing {
            self.held.remove(id)
        } else {
            self.held.get(id).cloned()
        }
    }
}
