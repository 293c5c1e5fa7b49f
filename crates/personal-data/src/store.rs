//! The event store decorator that seals personal fields on append and opens them on read.

use crate::family_keys::{FamilyKeys, KeyState};
use crate::kek::{DataKey, KeyError};
use crate::seal::{has_sealed, open_event, seal_event, SealError};
use async_trait::async_trait;
use registry_domain::FamilyId;
use registry_store::{
    AppendResult, EventStore, ExpectedRevision, IdempotencyKey, NewEvent, RecordedEvent,
    StoreError, StoreResult, StoredIdempotency,
};
use std::sync::Arc;
use std::time::Duration;

/// The first schema version whose events are sealed at rest (`FamilyEvent::SCHEMA_VERSION`).
const SEALED_FROM: u16 = 2;
const ERASED: &str = "PersonalDataErased";

/// Seals the personal fields of family events (schema version 2 on) before they reach `inner`,
/// and opens them on every read. Reading a `PersonalDataErased` event destroys the family's key
/// before anything of that read is opened (so whatever has read an erasure — the projections, a
/// command — can rely on the key being gone, also after a crash between the append and the
/// destruction, and no read that holds the erasure shows the data).
#[derive(Debug)]
pub struct SealingStore {
    inner: Arc<dyn EventStore>,
    keys: Arc<dyn FamilyKeys>,
}

impl SealingStore {
    pub fn new(inner: Arc<dyn EventStore>, keys: Arc<dyn FamilyKeys>) -> Self {
        Self { inner, keys }
    }

    pub fn keys(&self) -> &Arc<dyn FamilyKeys> {
        &self.keys
    }

    async fn open(&self, mut events: Vec<RecordedEvent>) -> StoreResult<Vec<RecordedEvent>> {
        // Erasures first: a read that holds a family's erasure returns its earlier events erased
        // too. A key is destroyed once; a later read of the erasure (a rebuild, a command's
        // load) finds it so and writes nothing.
        for e in events.iter().filter(|e| e.event_type == ERASED) {
            if let Some(family) = FamilyId::from_stream_name(&e.stream) {
                if !matches!(
                    self.keys.key(family).await.map_err(key_error)?,
                    KeyState::Destroyed
                ) {
                    self.keys.destroy(family).await.map_err(key_error)?;
                }
            }
        }
        let mut last: Option<(FamilyId, Option<DataKey>)> = None;
        for e in &mut events {
            let Some(family) = FamilyId::from_stream_name(&e.stream) else {
                continue;
            };
            // Nothing sealed in it (no personal fields, or written before sealing): no key to
            // look up, nothing to copy.
            if e.schema_version < SEALED_FROM || !has_sealed(&e.data) {
                continue;
            }
            let key = match &last {
                Some((f, key)) if *f == family => key.clone(),
                _ => {
                    let key = match self.keys.key(family).await.map_err(key_error)? {
                        KeyState::Present(k) => Some(k),
                        KeyState::Destroyed => None,
                        KeyState::Missing => {
                            // A key store older than the log (restored from an old backup):
                            // the fields cannot be read, so they read as erased, and it is said.
                            tracing::error!(%family, "no data key for a sealed event: its personal fields read as erased");
                            None
                        }
                    };
                    last = Some((family, key.clone()));
                    key
                }
            };
            e.data = open_event(&e.data, e.event_id, key.as_ref()).map_err(seal_error)?;
        }
        Ok(events)
    }
}

fn key_error(e: KeyError) -> StoreError {
    StoreError::backend(e)
}

fn seal_error(e: SealError) -> StoreError {
    StoreError::backend(e)
}

#[async_trait]
impl EventStore for SealingStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        mut events: Vec<NewEvent>,
        idempotency: Option<IdempotencyKey>,
    ) -> StoreResult<AppendResult> {
        let family = FamilyId::from_stream_name(stream);
        if let Some(family) = family {
            if events.iter().any(|e| e.schema_version >= SEALED_FROM) {
                let key = self
                    .keys
                    .key_for_append(family)
                    .await
                    .map_err(key_error)?
                    .ok_or_else(|| {
                        StoreError::InvalidAppend(
                            "the personal data of this family was erased".into(),
                        )
                    })?;
                for e in &mut events {
                    if e.schema_version >= SEALED_FROM {
                        e.data = seal_event(&e.data, e.event_id, &key).map_err(seal_error)?;
                    }
                }
            }
        }
        self.inner
            .append(stream, expected, events, idempotency)
            .await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
    ) -> StoreResult<Vec<RecordedEvent>> {
        let events = self.inner.read_stream(stream, from_revision).await?;
        self.open(events).await
    }

    async fn read_all(&self, from_position: u64, limit: usize) -> StoreResult<Vec<RecordedEvent>> {
        let events = self.inner.read_all(from_position, limit).await?;
        self.open(events).await
    }

    async fn head(&self) -> StoreResult<u64> {
        self.inner.head().await
    }

    async fn count_after(&self, position: u64, at_most: u64) -> StoreResult<u64> {
        self.inner.count_after(position, at_most).await
    }

    fn event_ids_unique_across_streams(&self) -> bool {
        self.inner.event_ids_unique_across_streams()
    }

    async fn wait_for_events(&self, after: u64, timeout: Duration) -> StoreResult<u64> {
        self.inner.wait_for_events(after, timeout).await
    }

    async fn find_idempotency(&self, key: &str) -> StoreResult<Option<StoredIdempotency>> {
        self.inner.find_idempotency(key).await
    }

    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileKek, SqliteFamilyKeys};
    use registry_store_sqlite::SqliteEventStore;
    use uuid::Uuid;

    fn event(event_type: &str, data: String) -> NewEvent {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: SEALED_FROM,
            data,
            metadata: "{}".into(),
            recorded_at: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn given_a_sealing_store_when_a_family_is_erased_then_its_names_read_as_erased_and_stay_sealed_at_rest(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let plain: Arc<dyn EventStore> = Arc::new(
            SqliteEventStore::open(dir.path().join("events.db").to_str().unwrap())
                .await
                .unwrap(),
        );
        let kek = FileKek::load_or_create(dir.path()).unwrap();
        let keys =
            Arc::new(SqliteFamilyKeys::open(&dir.path().join("keys.db"), Arc::new(kek)).unwrap());
        let store = SealingStore::new(plain.clone(), keys.clone());
        let family = FamilyId(Uuid::now_v7());
        let stream = family.stream_name();
        let member =
            r#"{"members":[{"member_id":"m","last_name":"Иванова","birth_date":"1986-04-12"}]}"#;
        store
            .append(
                &stream,
                ExpectedRevision::NoStream,
                vec![event("StatusGranted", member.into())],
                None,
            )
            .await
            .unwrap();
        let at_rest = plain.read_stream(&stream, 0).await.unwrap();
        assert!(!at_rest[0].data.contains("Иванова"), "sealed at rest");
        assert!(store.read_stream(&stream, 0).await.unwrap()[0]
            .data
            .contains("Иванова"));

        store
            .append(
                &stream,
                ExpectedRevision::Exact(0),
                vec![event(ERASED, "{}".into())],
                None,
            )
            .await
            .unwrap();
        for _ in 0..2 {
            let read = store.read_stream(&stream, 0).await.unwrap();
            assert!(!read[0].data.contains("Иванова"));
            assert!(read[0]
                .data
                .contains(registry_domain::personal::ERASED_TEXT));
        }
        assert!(matches!(
            keys.key(family).await.unwrap(),
            KeyState::Destroyed
        ));
        // No more sealed events for it.
        let refused = store
            .append(
                &stream,
                ExpectedRevision::Exact(1),
                vec![event("MemberAdded", member.into())],
                None,
            )
            .await;
        assert!(
            matches!(refused, Err(StoreError::InvalidAppend(_))),
            "{refused:?}"
        );
    }
}
