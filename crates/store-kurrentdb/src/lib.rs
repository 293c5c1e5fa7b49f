//! The KurrentDB (formerly EventStoreDB) event store, through the official `kurrentdb` client.
//!
//! Why a crate of its own: one of the interchangeable backends of `registry-store`; only the
//! binary chooses it (from a `kurrentdb://` or `esdb://` URL). See ADR 0008 for the mapping:
//!
//! - Streams, revisions, expected revisions and event ids map one to one.
//! - A global position is the event's *prepare* position in `$all` (unique, increasing in log
//!   order). `read_all` never ends a page inside one append, and resumes from the last event's
//!   own log position, so a reader that checkpoints the last position it saw never skips an event.
//! - `$all` is read filtered to the registry's streams (no system streams, no idempotency
//!   streams).
//! - Idempotency keys: KurrentDB has no unique index across streams, so each key gets a small
//!   stream, `registry-idempotency-{sha256(key)}`, claimed with an optimistic `NoStream` append
//!   before the family append and completed after it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, EventData, Position,
    ReadAllOptions, ReadStreamOptions, StreamPosition, StreamState, SubscribeToAllOptions,
    SubscriptionEvent, SubscriptionFilter,
};
use registry_store::group::wait_for_head;
use registry_store::{
    AppendResult, EventStore, ExpectedRevision, IdempotencyKey, NewEvent, RecordedEvent,
    StoreError, StoreResult, StoredIdempotency,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::sync::watch;

const IDEMPOTENCY_PREFIX: &str = "registry-idempotency-";

/// The registry's streams in `$all`: not system streams (`$...`), not idempotency claims.
fn registry_filter() -> SubscriptionFilter {
    SubscriptionFilter::on_stream_name().regex(format!("^(?!{IDEMPOTENCY_PREFIX})[^$]"))
}

/// The KurrentDB event store. Cheap to clone.
#[derive(Clone)]
pub struct KurrentEventStore {
    client: Client,
    head: watch::Receiver<u64>,
}

impl std::fmt::Debug for KurrentEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KurrentEventStore").finish_non_exhaustive()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string().into())
}

/// What the registry keeps in an event's user metadata.
#[derive(Serialize, Deserialize)]
struct Envelope {
    schema_version: u16,
    recorded_at: DateTime<Utc>,
    metadata: Box<serde_json::value::RawValue>,
}

/// The events of an idempotency claim stream.
#[derive(Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
enum Claim {
    Claimed {
        request_hash: String,
        stream: String,
    },
    Completed {
        request_hash: String,
        stream: String,
        revision: u64,
        position: u64,
    },
    Released,
}

impl KurrentEventStore {
    /// Connects to a `kurrentdb://` (or `esdb://`) connection string.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let url = url.replacen("esdb://", "kurrentdb://", 1);
        let settings: ClientSettings = url.parse().map_err(backend)?;
        let client = Client::new(settings).map_err(backend)?;
        let store_head = Self::read_head(&client).await?;
        let (head_tx, head) = watch::channel(store_head);
        let subscriber = client.clone();
        tokio::spawn(async move {
            loop {
                let options = SubscribeToAllOptions::default()
                    .position(StreamPosition::End)
                    .filter(registry_filter());
                let mut subscription = subscriber.subscribe_to_all(&options).await;
                loop {
                    match subscription.next_subscription_event().await {
                        Ok(SubscriptionEvent::EventAppeared(e)) => {
                            let p = e.get_original_event().position.prepare;
                            head_tx.send_if_modified(|h| {
                                let newer = p > *h;
                                if newer {
                                    *h = p;
                                }
                                newer
                            });
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::warn!(error = %e, "KurrentDB subscription interrupted; resubscribing");
                            break;
                        }
                    }
                    if head_tx.is_closed() {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Ok(Self { client, head })
    }

    async fn read_head(client: &Client) -> StoreResult<u64> {
        let options = ReadAllOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .filter(registry_filter())
            .max_count(1);
        let mut stream = client.read_all(&options).await.map_err(backend)?;
        Ok(stream
            .next()
            .await
            .map_err(backend)?
            .map_or(0, |e| e.get_original_event().position.prepare))
    }

    fn to_event_data(event: &NewEvent) -> StoreResult<EventData> {
        let data = serde_json::value::RawValue::from_string(event.data.clone()).map_err(backend)?;
        let envelope = Envelope {
            schema_version: event.schema_version,
            recorded_at: event.recorded_at,
            metadata: serde_json::value::RawValue::from_string(event.metadata.clone())
                .map_err(backend)?,
        };
        EventData::json(&event.event_type, &data)
            .and_then(|e| e.id(event.event_id).metadata_as_json(&envelope))
            .map_err(backend)
    }

    fn from_recorded(e: &kurrentdb::RecordedEvent) -> StoreResult<RecordedEvent> {
        let envelope: Envelope = serde_json::from_slice(&e.custom_metadata).map_err(backend)?;
        Ok(RecordedEvent {
            position: e.position.prepare,
            event_id: e.id,
            stream: e.stream_id().to_string(),
            revision: e.revision,
            event_type: e.event_type.clone(),
            schema_version: envelope.schema_version,
            data: String::from_utf8(e.data.to_vec()).map_err(backend)?,
            metadata: envelope.metadata.get().to_string(),
            recorded_at: envelope.recorded_at,
        })
    }

    async fn read_events(
        &self,
        stream: &str,
        from: u64,
    ) -> StoreResult<Vec<kurrentdb::RecordedEvent>> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(from));
        let mut read = match self.client.read_stream(stream, &options).await {
            Ok(read) => read,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
            Err(e) => return Err(backend(e)),
        };
        let mut out = Vec::new();
        loop {
            match read.next().await {
                Ok(Some(e)) => out.extend(e.link.or(e.event)),
                Ok(None) => return Ok(out),
                Err(kurrentdb::Error::ResourceNotFound) => return Ok(out),
                Err(e) => return Err(backend(e)),
            }
        }
    }

    fn claim_stream(key: &str) -> String {
        let digest = Sha256::digest(key.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{IDEMPOTENCY_PREFIX}{hex}")
    }

    /// The claim stream's last state and revision.
    async fn claim_state(&self, key: &str) -> StoreResult<Option<(Claim, u64)>> {
        let events = self.read_events(&Self::claim_stream(key), 0).await?;
        Ok(match events.last() {
            Some(e) => Some((
                serde_json::from_slice(&e.data).map_err(backend)?,
                e.revision,
            )),
            None => None,
        })
    }

    async fn write_claim(
        &self,
        key: &str,
        state: StreamState,
        claim: &Claim,
    ) -> Result<(), kurrentdb::Error> {
        let data = EventData::json("IdempotencyClaim", claim)
            .map_err(|e| kurrentdb::Error::InternalParsingError(e.to_string()))?;
        self.client
            .append_to_stream(
                Self::claim_stream(key),
                &AppendToStreamOptions::default().stream_state(state),
                data,
            )
            .await
            .map(|_| ())
    }

    /// Takes the idempotency key for this request, or says what it was used for.
    async fn claim(&self, stream: &str, key: &IdempotencyKey) -> StoreResult<()> {
        let claimed = Claim::Claimed {
            request_hash: key.request_hash.clone(),
            stream: stream.to_string(),
        };
        let mut state = StreamState::NoStream;
        for _ in 0..3 {
            match self.write_claim(&key.key, state, &claimed).await {
                Ok(()) => return Ok(()),
                Err(kurrentdb::Error::WrongExpectedVersion { .. }) => {}
                Err(e) => return Err(backend(e)),
            }
            match self.claim_state(&key.key).await? {
                Some((
                    Claim::Completed {
                        request_hash,
                        stream,
                        revision,
                        position,
                    },
                    _,
                )) => {
                    return Err(StoreError::IdempotencyKeyUsed(StoredIdempotency {
                        stream,
                        request_hash,
                        revision,
                        position,
                    }))
                }
                Some((Claim::Released, revision)) => state = StreamState::StreamRevision(revision),
                Some((Claim::Claimed { .. }, _)) => {
                    return Err(StoreError::Backend(
                        "a request with this idempotency key is in progress; retry shortly".into(),
                    ))
                }
                None => state = StreamState::NoStream,
            }
        }
        Err(StoreError::Backend(
            "could not claim the idempotency key".into(),
        ))
    }
}

fn expected_state(expected: ExpectedRevision) -> StreamState {
    match expected {
        ExpectedRevision::Any => StreamState::Any,
        ExpectedRevision::NoStream => StreamState::NoStream,
        ExpectedRevision::Exact(r) => StreamState::StreamRevision(r),
    }
}

#[async_trait]
impl EventStore for KurrentEventStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
        idempotency: Option<IdempotencyKey>,
    ) -> StoreResult<AppendResult> {
        registry_store::group::AppendRequest {
            stream: stream.to_string(),
            expected,
            events: events.clone(),
            idempotency: None,
        }
        .check_shape()?;
        // A re-sent append: KurrentDB answers it idempotently when the ids match what is stored
        // at the expected revision; we tell the caller it was already stored.
        if let Some(first) = events.first() {
            let existing = self.read_events(stream, 0).await?;
            if let Some(i) = existing.iter().position(|e| e.id == first.event_id) {
                let same = existing.len() >= i + events.len()
                    && existing[i..i + events.len()]
                        .iter()
                        .zip(&events)
                        .all(|(s, e)| s.id == e.event_id);
                let last = &existing[(i + events.len()).min(existing.len()) - 1];
                return if same {
                    Ok(AppendResult {
                        revision: last.revision,
                        position: last.position.prepare,
                        already_stored: true,
                    })
                } else {
                    Err(StoreError::EventIdConflict(first.event_id))
                };
            }
        }
        if let Some(key) = &idempotency {
            self.claim(stream, key).await?;
        }
        let data = events
            .iter()
            .map(Self::to_event_data)
            .collect::<StoreResult<Vec<_>>>()?;
        let options = AppendToStreamOptions::default().stream_state(expected_state(expected));
        let written = self.client.append_to_stream(stream, &options, data).await;
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                if let Some(key) = &idempotency {
                    let _ = self
                        .write_claim(&key.key, StreamState::Any, &Claim::Released)
                        .await;
                }
                return Err(match e {
                    kurrentdb::Error::WrongExpectedVersion { current, .. } => {
                        StoreError::WrongExpectedRevision {
                            expected,
                            actual: match current {
                                CurrentRevision::Current(r) => Some(r),
                                CurrentRevision::NoStream => None,
                            },
                        }
                    }
                    other => backend(other),
                });
            }
        };
        let revision = written.next_expected_version;
        // The write result carries the append's position; the last event's own position is
        // what readers see, so read it back.
        let position = self
            .read_events(stream, revision)
            .await?
            .first()
            .map_or(written.position.prepare, |e| e.position.prepare);
        if let Some(key) = &idempotency {
            let done = Claim::Completed {
                request_hash: key.request_hash.clone(),
                stream: stream.to_string(),
                revision,
                position,
            };
            self.write_claim(&key.key, StreamState::Any, &done)
                .await
                .map_err(backend)?;
        }
        Ok(AppendResult {
            revision,
            position,
            already_stored: false,
        })
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
    ) -> StoreResult<Vec<RecordedEvent>> {
        self.read_events(stream, from_revision)
            .await?
            .iter()
            .map(Self::from_recorded)
            .collect()
    }

    async fn read_all(&self, from_position: u64, limit: usize) -> StoreResult<Vec<RecordedEvent>> {
        // Resume at the last event's own log position (a record boundary); skip it.
        let start = if from_position <= 1 {
            StreamPosition::Start
        } else {
            let last = from_position - 1;
            StreamPosition::Position(Position {
                commit: last,
                prepare: last,
            })
        };
        let options = ReadAllOptions::default()
            .forwards()
            .position(start)
            .filter(registry_filter())
            .max_count(limit.saturating_add(1024));
        let mut read = self.client.read_all(&options).await.map_err(backend)?;
        let mut out: Vec<RecordedEvent> = Vec::new();
        let mut last_commit = None;
        while let Some(e) = read.next().await.map_err(backend)? {
            let e = e.get_original_event();
            if e.position.prepare < from_position {
                continue;
            }
            // Never end a page inside one append: its events share the commit position.
            if out.len() >= limit && last_commit != Some(e.position.commit) {
                break;
            }
            last_commit = Some(e.position.commit);
            out.push(Self::from_recorded(e)?);
        }
        Ok(out)
    }

    async fn head(&self) -> StoreResult<u64> {
        Self::read_head(&self.client).await
    }

    async fn wait_for_events(&self, after: u64, timeout: Duration) -> StoreResult<u64> {
        wait_for_head(&self.head, after, timeout, || Self::read_head(&self.client)).await
    }

    async fn find_idempotency(&self, key: &str) -> StoreResult<Option<StoredIdempotency>> {
        Ok(match self.claim_state(key).await? {
            Some((
                Claim::Completed {
                    request_hash,
                    stream,
                    revision,
                    position,
                },
                _,
            )) => Some(StoredIdempotency {
                stream,
                request_hash,
                revision,
                position,
            }),
            _ => None,
        })
    }

    fn backend_name(&self) -> &'static str {
        "kurrentdb"
    }
}
