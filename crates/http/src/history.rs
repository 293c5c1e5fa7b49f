//! A family's timeline as auditors and officers see it: who, when and why from the read store's
//! `family_history`, and what each event recorded from the event store. The read store keeps no
//! copy of the events' data (personal fields among them): the event store holds them sealed, and
//! once a family's key is destroyed they read as erased there, the one place they are kept.

use crate::error::ApiError;
use crate::state::AppState;
use registry_app::AppError;
use registry_domain::FamilyId;
use registry_read_store::HistoryRow;
use std::collections::HashMap;

/// One event of the timeline, with the data it recorded (JSON text, as stored).
pub struct HistoryEntry {
    pub row: HistoryRow,
    pub data: String,
}

/// The family's timeline in stream order, as far as the projection has applied it (events the
/// event store holds beyond that are not shown yet). Empty for a family the registry does not know.
pub async fn family_history(
    state: &AppState,
    family: FamilyId,
) -> Result<Vec<HistoryEntry>, ApiError> {
    let rows = state.read().history(family).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut data: HashMap<u64, String> = state
        .registry()
        .store()
        .read_stream(&family.stream_name(), 0)
        .await
        .map_err(AppError::from)?
        .into_iter()
        .map(|e| (e.revision, e.data))
        .collect();
    rows.into_iter()
        .map(|row| {
            // Every projected event is in the log (the log is append-only and the projection is
            // made from it); revisions, unlike positions, are the same on every event store.
            let data = data.remove(&row.revision).ok_or_else(|| {
                ApiError::from(AppError::Corrupt(format!(
                    "revision {} of family {family}: in the history but not in its stream",
                    row.revision
                )))
            })?;
            Ok(HistoryEntry { row, data })
        })
        .collect()
}
