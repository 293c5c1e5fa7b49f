//! The event store decorator that seals personal fields on append and opens them on read.

use crate::family_keys::{FamilyKeys, KeyState};
use crate::kek::{DataKey, KeyError};
use crate::seal::{open_event, seal_event, SealError};
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
/// first (so whatever has read an erasure — the projections, a command — can rely on the key
/// being gone, also after a crash between the append and the destruction).
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
        let mut last: Option<(FamilyId, Option<DataKey>)> = None;
        for e in &mut events {
            let Some(family) = FamilyId::from_stream_name(&e.stream) else {
                continue;
            };
            if e.event_type == ERASED {
                self.keys.destroy(family).await.map_err(key_error)?;
                last = None;
                continue;
            }
            if e.schema_version < SEALED_FROM {
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
