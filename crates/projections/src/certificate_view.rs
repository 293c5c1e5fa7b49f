//! `certificate_view`: one row per certificate token, what a QR lookup resolves against, and the
//! keys a family is searched by. Pure: it folds events onto the families they touch and turns
//! the families that changed into rows. Expiry is not stored: it is computed when someone looks.

use crate::families::{Families, Folded, Replaced};
use crate::{Projection, ProjectionError};
use registry_domain::{evolve, Family, FamilyEvent, FamilyId, Status};
use registry_read_store::{
    CertificateRow, Changes, KeyChange, SearchKey, CERTIFICATE_VIEW, ERASED,
};
use registry_store::RecordedEvent;
use std::collections::BTreeSet;

/// How many families a rebuild keeps folded in memory before it writes them out and goes on
/// batch by batch (about 2 KiB each): more than Moscow's large families today.
pub const REBUILD_FAMILIES_IN_MEMORY: usize = 300_000;

/// The certificate view projection.
#[derive(Clone, Copy, Debug)]
pub struct CertificateView {
    rebuild_families_in_memory: usize,
}

impl Default for CertificateView {
    fn default() -> Self {
        Self {
            rebuild_families_in_memory: REBUILD_FAMILIES_IN_MEMORY,
        }
    }
}

impl CertificateView {
    /// How many families a rebuild folds in memory before it writes them out and continues
    /// batch by batch (tests make it small to cover that path).
    pub fn with_rebuild_memory(families: usize) -> Self {
        Self {
            rebuild_families_in_memory: families.max(1),
        }
    }
}

impl Projection for CertificateView {
    fn name(&self) -> &'static str {
        CERTIFICATE_VIEW
    }

    /// 2: the search keys were added. 3: a replaced row keeps the day it was replaced on.
    /// 4: erased families (status `erased`, no search keys). 5: members' СНИЛС as search keys
    /// (families granted before are found by it after the rebuild this version asks for).
    fn version(&self) -> i64 {
        5
    }

    fn folds_families(&self) -> bool {
        true
    }

    fn rebuild_memory(&self) -> usize {
        self.rebuild_families_in_memory
    }

    fn project(
        &self,
        families: &mut Families,
        events: &[RecordedEvent],
        _out: &mut Changes,
    ) -> Result<(), ProjectionError> {
        for e in events {
            let Some(family_id) = FamilyId::from_stream_name(&e.stream) else {
                continue;
            };
            if families
                .held
                .get(&family_id)
                .is_some_and(|f| f.revision >= e.revision && f.family.is_some())
            {
                continue; // applied before: a re-delivery changes nothing
            }
            let event =
                FamilyEvent::decode(&e.event_type, e.schema_version, &e.data).map_err(|err| {
                    ProjectionError::BadEvent {
                        position: e.position,
                        reason: err.to_string(),
                    }
                })?;
            let entry = families.held.entry(family_id).or_default();
            if !families.dirty.contains(&family_id) {
                // Its first change since it was stored: the keys it is stored with.
                if let Some(stored) = &entry.family {
                    families.keys_before.insert(family_id, search_keys(stored));
                }
            }
            if let (FamilyEvent::CertificateReissued(_), Some(before)) = (&event, &entry.family) {
                let mut old = before.clone();
                old.members.clear();
                // The old QR's page says when it was replaced.
                old.ended_on = Some(registry_domain::time::moscow_date(e.recorded_at));
                families.replaced.push(Replaced {
                    family: old,
                    revision: e.revision,
                    position: e.position,
                });
            }
            if let (FamilyEvent::PersonalDataErased(_), Some(before)) = (&event, &entry.family) {
                // Every QR the family ever had is no longer in the registry: the rows of its
                // replaced tokens say so too.
                for old_token in &before.previous_certificate_ids {
                    let mut old = before.clone();
                    old.members.clear();
                    old.certificate_id = *old_token;
                    old.erased_on = Some(registry_domain::time::moscow_date(e.recorded_at));
                    families.replaced.push(Replaced {
                        family: old,
                        revision: e.revision,
                        position: e.position,
                    });
                }
            }
            entry.family = evolve(entry.family.take(), &event);
            entry.revision = e.revision;
            entry.position = e.position;
            if entry.family.is_some() {
                families.dirty.insert(family_id);
            }
        }
        Ok(())
    }

    fn flush(&self, families: &mut Families, out: &mut Changes) {
        let mut rows: Vec<CertificateRow> = std::mem::take(&mut families.replaced)
            .into_iter()
            .map(|r| row(r.family, false, r.revision, r.position))
            .collect();
        let mut dirty: Vec<FamilyId> = families.dirty.drain().collect();
        dirty.sort_unstable();
        for id in dirty {
            if let Some(Folded {
                family: Some(family),
                revision,
                position,
            }) = families.take_for_flush(&id)
            {
                let before = families.keys_before.remove(&id).unwrap_or_default();
                out.search
                    .push(KeyChange::replacing(id, before, search_keys(&family)));
                rows.push(row(family, true, revision, position));
            }
        }
        families.keys_before.clear();
        // One row per token, the newest: a token replaced and then erased in one batch has two,
        // and one statement may not write a row twice (PostgreSQL refuses it).
        rows.sort_unstable_by_key(|r| (r.token_id, std::cmp::Reverse(r.position)));
        rows.dedup_by_key(|r| r.token_id);
        out.certificates.extend(rows);
    }
}

/// A certificate row of a family: its current one, or the row a reissue left for the old token.
fn row(family: Family, is_current: bool, revision: u64, position: u64) -> CertificateRow {
    CertificateRow {
        token_id: family.certificate_id,
        family_id: family.family_id,
        is_current,
        certificate_number: family.certificate_number.clone(),
        serial: family.certificate_serial,
        status: if family.erased_on.is_some() {
            ERASED.to_string()
        } else if is_current {
            status_str(family.status).to_string()
        } else {
            "replaced".to_string()
        },
        valid_from: family.valid_from,
        valid_until: family.valid_until,
        family,
        revision,
        position,
    }
}

fn status_str(status: Status) -> &'static str {
    match status {
        Status::Active => "active",
        Status::Terminated => "terminated",
        Status::Revoked => "revoked",
    }
}

/// Every key the family is found by now: its certificate number, each current member by surname
/// and birth date and by СНИЛС, and every decision recorded for it. None once its personal data is erased.
pub fn search_keys(family: &Family) -> Vec<SearchKey> {
    if family.erased_on.is_some() {
        return Vec::new();
    }
    let mut keys = BTreeSet::new();
    keys.insert(SearchKey::CertificateNumber(
        family.certificate_number.clone(),
    ));
    for m in &family.members {
        keys.insert(SearchKey::Member {
            last_name: registry_read_store::normalize_name(&m.last_name),
            birth_date: m.birth_date,
        });
        if let Some(snils) = &m.snils {
            keys.insert(SearchKey::Snils(snils.clone()));
        }
    }
    for number in family
        .decision_numbers
        .iter()
        .chain(std::iter::once(&family.decision.number))
    {
        keys.insert(SearchKey::DecisionNumber(number.trim().to_lowercase()));
    }
    keys.into_iter().collect()
}
