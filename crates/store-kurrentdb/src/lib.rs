//! The KurrentDB (formerly EventStoreDB) event store, through the official `kurrentdb` client.
//!
//! Why a crate of its own: one of the interchangeable backends of `registry-store`; only the
//! binary chooses it (from a `kurrentdb://`, `kurrent://` or `esdb://` URL, `+discover` too).
//! See ADR 0008 for the mapping:
//!
//! - Streams, revisions and expected revisions map one to one.
//! - A global position is the event's *prepare* position in `$all`: a byte offset in the
//!   server's log, unique and increasing in log order but not dense, so a lag is counted in
//!   events ([`EventStore::count_after`]), never as a difference of positions. The server
//!   commits every event on its own, so each has a position of its own, even within one append.
//! - `$all` is read filtered to the registry's streams (no system streams, no claim streams).
//! - Event ids: the server drops a re-sent append within one stream; this adapter reports it as
//!   already stored. It does not keep an id unique *across* streams (that would cost a write per
//!   event); the registry makes ids with UUID v7 and never reuses one, and the contract says so
//!   ([`EventStore::event_ids_unique_across_streams`]).
//! - Idempotency keys: a claim stream per key, read back against the family stream, so a crash
//!   anywhere in between leaves the key either used or free (the `claim` module).
//! - New events: no subscription (the client spins on a subscription that ends cleanly), but a
//!   look at the head while someone waits, and a wake-up by this process's own appends.

pub mod claim;
mod connection;
mod read;
mod url;

pub use url::{accepts, SCHEMES};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use claim::{Claim, Found, Landed, Resolution};
use connection::Connection;
use kurrentdb::{
    AppendToStreamOptions, ClientSettings, CurrentRevision, EventData, ReadStreamOptions,
    StreamPosition, StreamState,
};
use registry_store::group::wait_for_head_every;
use registry_store::{
    AppendResult, EventStore, ExpectedRevision, IdempotencyKey, NewEvent, RecordedEvent,
    StoreError, StoreResult, StoredIdempotency,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const IDEMPOTENCY_PREFIX: &str = "registry-idempotency-";

/// An append the server has not answered within this long is given up (and its claim, if any,
/// may be taken over once [`claim::CLAIM_LEASE`] has passed).
pub const APPEND_DEADLINE: Duration = Duration::from_secs(10);

/// How often a waiter looks at the head for other processes' appends.
const HEAD_POLL: Duration = Duration::from_millis(50);

/// The KurrentDB event store. Cheap to clone.
#[derive(Clone)]
pub struct KurrentEventStore {
    connection: Arc<Connection>,
    /// The highest position this process appended or saw; wakes its waiters at once.
    head_tx: Arc<watch::Sender<u64>>,
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

impl KurrentEventStore {
    /// Connects to a KurrentDB connection string (any of [`SCHEMES`]).
    pub async fn open(url: &str) -> StoreResult<Self> {
        let settings: ClientSettings = url.parse().map_err(backend)?;
        let connection = Arc::new(Connection::new(settings)?);
        let head = read::head(&connection).await?;
        let (head_tx, head) = watch::channel(head);
        Ok(Self {
            connection,
            head_tx: Arc::new(head_tx),
            head,
        })
    }

    fn saw(&self, position: u64) {
        self.head_tx.send_if_modified(|h| {
            let newer = position > *h;
            if newer {
                *h = position;
            }
            newer
        });
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

    /// The events of `stream` from revision `from` on, at most `count`, read on the leader (a
    /// follower may not have the latest append yet).
    async fn read_events(
        &self,
        stream: &str,
        from: u64,
        count: usize,
    ) -> StoreResult<Vec<kurrentdb::RecordedEvent>> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(from))
            .max_count(count)
            .requires_leader(true);
        let options = &options;
        let read = self
            .connection
            .call(|client| async move { client.read_stream(stream, options).await })
            .await;
        let mut read = match read {
            Ok(read) => read,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(Vec::new()),
            Err(e) => return Err(backend(e)),
        };
        let mut out = Vec::new();
        loop {
            match read.next().await {
                Ok(Some(e)) => out.extend(e.link.or(e.event)),
                Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(out),
                Err(e) => return Err(backend(e)),
            }
        }
    }

    /// The last state of a key's claim stream.
    async fn claim_state(&self, key: &str) -> StoreResult<Found> {
        let options = ReadStreamOptions::default()
            .backwards()
            .position(StreamPosition::End)
            .max_count(1)
            .requires_leader(true);
        let stream = claim::stream_of(key);
        let (stream, options) = (stream.as_str(), &options);
        let read = self
            .connection
            .call(|client| async move { client.read_stream(stream, options).await })
            .await;
        let mut read = match read {
            Ok(read) => read,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(None),
            Err(e) => return Err(backend(e)),
        };
        match read.next().await {
            Ok(Some(e)) => {
                let e = e.get_original_event();
                let claim: Claim = serde_json::from_slice(&e.data).map_err(backend)?;
                Ok(Some((claim, e.revision)))
            }
            Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    /// What a key's claim means now: reads the claim, then the claimed stream where its events
    /// would be.
    async fn resolve_claim(&self, key: &str) -> StoreResult<Resolution> {
        let found = self.claim_state(key).await?;
        let append = match &found {
            Some((Claim::Claimed { append, .. } | Claim::Released { append }, _)) => Some(append),
            _ => None,
        };
        let landed = match append {
            Some(append) => {
                let (from, count) = match append.first_revision {
                    Some(first) => (first, append.event_ids.len().max(1)),
                    None => (0, usize::MAX >> 1),
                };
                self.read_events(&append.stream, from, count)
                    .await?
                    .iter()
                    .map(|e| Landed {
                        id: e.id,
                        revision: e.revision,
                        position: e.position.prepare,
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        Ok(claim::resolve(&found, &landed, Utc::now()))
    }

    async fn write_claim(
        &self,
        key: &str,
        state: StreamState,
        claim: &Claim,
    ) -> Result<u64, kurrentdb::Error> {
        let data = EventData::json("IdempotencyClaim", claim)
            .map_err(|e| kurrentdb::Error::InternalParsingError(e.to_string()))?;
        let options = AppendToStreamOptions::default()
            .stream_state(state)
            .deadline(APPEND_DEADLINE);
        let stream = claim::stream_of(key);
        let (stream, options, data) = (stream.as_str(), &options, &data);
        self.connection
            .call(|client| async move {
                client
                    .append_to_stream(stream, options, data.clone())
                    .await
            })
            .await
        .map(|w| w.next_expected_version)
    }

    /// Takes the idempotency key for this append, or says what it was used for. Returns the
    /// claim's revision in its stream.
    async fn claim(&self, key: &IdempotencyKey, claimed: &Claim) -> StoreResult<u64> {
        let mut state = StreamState::NoStream;
        for _ in 0..3 {
            match self.write_claim(&key.key, state, claimed).await {
                Ok(revision) => return Ok(revision),
                Err(kurrentdb::Error::WrongExpectedVersion { .. }) => {}
                Err(e) => return Err(backend(e)),
            }
            match self.resolve_claim(&key.key).await? {
                Resolution::Free { over } => {
                    state = over.map_or(StreamState::NoStream, StreamState::StreamRevision);
                }
                Resolution::Used {
                    stream,
                    request_hash,
                    last,
                } => {
                    return Err(StoreError::IdempotencyKeyUsed(StoredIdempotency {
                        stream,
                        request_hash,
                        revision: last.revision,
                        position: last.position,
                    }))
                }
                Resolution::InProgress => {
                    return Err(StoreError::Backend(
                        "a request with this idempotency key is in progress; retry shortly".into(),
                    ))
                }
            }
        }
        Err(StoreError::Backend(
            "could not claim the idempotency key".into(),
        ))
    }

    /// Frees a key this append claimed (at `claim`'s revision, so never a later claim of
    /// another request); best effort, the lease frees it otherwise.
    async fn release(
        &self,
        claimed: &Option<(&IdempotencyKey, claim::Append, DateTime<Utc>)>,
        claim: &StoreResult<Option<u64>>,
    ) {
        if let (Some((key, append, _)), Ok(Some(revision))) = (claimed, claim) {
            let state = StreamState::StreamRevision(*revision);
            let released = Claim::Released {
                append: append.clone(),
            };
            if let Err(e) = self.write_claim(&key.key, state, &released).await {
                tracing::warn!(error = %e, "could not release an idempotency claim; it lapses after its lease");
            }
        }
    }

    /// Whether `events` are already stored where this append would put them (a re-sent append).
    async fn stored_already(
        &self,
        stream: &str,
        first_revision: Option<u64>,
        events: &[NewEvent],
    ) -> StoreResult<Option<AppendResult>> {
        let Some(first) = events.first() else {
            return Ok(None);
        };
        let existing = match first_revision {
            Some(from) => self.read_events(stream, from, events.len()).await?,
            None => self.read_events(stream, 0, usize::MAX >> 1).await?,
        };
        let Some(i) = existing.iter().position(|e| e.id == first.event_id) else {
            return Ok(None);
        };
        let run = &existing[i..];
        let same =
            run.len() >= events.len() && run.iter().zip(events).all(|(s, e)| s.id == e.event_id);
        if !same {
            return Err(StoreError::EventIdConflict(first.event_id));
        }
        let last = &run[events.len() - 1];
        Ok(Some(AppendResult {
            revision: last.revision,
            position: last.position.prepare,
            already_stored: true,
        }))
    }

    /// The position of the event at `revision` of `stream`, as readers of `$all` see it.
    async fn position_of(&self, stream: &str, revision: u64) -> StoreResult<Option<u64>> {
        Ok(self
            .read_events(stream, revision, 1)
            .await?
            .first()
            .map(|e| e.position.prepare))
    }
}

fn expected_state(expected: ExpectedRevision) -> StreamState {
    match expected {
        ExpectedRevision::Any => StreamState::Any,
        ExpectedRevision::NoStream => StreamState::NoStream,
        ExpectedRevision::Exact(r) => StreamState::StreamRevision(r),
    }
}

/// The revision the first event of an append will get, when the expectation says it.
fn first_revision(expected: ExpectedRevision) -> Option<u64> {
    match expected {
        ExpectedRevision::Any => None,
        ExpectedRevision::NoStream => Some(0),
        ExpectedRevision::Exact(r) => Some(r + 1),
    }
}

/// Whether the server refused an append before writing any of it. Anything else (a timeout,
/// the server's own "operation timed out", a lost connection) may have written it.
fn refused_for_certain(e: &kurrentdb::Error) -> bool {
    match e {
        kurrentdb::Error::WrongExpectedVersion { .. }
        | kurrentdb::Error::AccessDenied
        | kurrentdb::Error::ResourceDeleted
        | kurrentdb::Error::NotLeaderException(_) => true,
        kurrentdb::Error::Grpc { code, .. } => *code == tonic::Code::InvalidArgument,
        _ => false,
    }
}

/// The store's error for a refused append, saying which limit a too large one hit.
fn append_error(e: kurrentdb::Error, expected: ExpectedRevision, bytes: usize) -> StoreError {
    match e {
        kurrentdb::Error::WrongExpectedVersion { current, .. } => {
            StoreError::WrongExpectedRevision {
                expected,
                actual: match current {
                    CurrentRevision::Current(r) => Some(r),
                    CurrentRevision::NoStream => None,
                },
            }
        }
        other if read::is_too_large(&other) => StoreError::InvalidAppend(format!(
            "the append is {bytes} bytes and the KurrentDB server refuses appends over its \
             MaxAppendSize (1,048,576 bytes by default; raise KURRENTDB_MAX_APPEND_SIZE, as \
             docker-compose.yml does): {other}"
        )),
        other => backend(other),
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
        // Events that cannot be sent are refused before anything is claimed.
        let data = events
            .iter()
            .map(Self::to_event_data)
            .collect::<StoreResult<Vec<_>>>()?;
        let first = first_revision(expected);
        let claimed = idempotency.as_ref().map(|key| {
            let append = claim::Append {
                request_hash: key.request_hash.clone(),
                stream: stream.to_string(),
                first_revision: first,
                event_ids: events.iter().map(|e| e.event_id).collect(),
            };
            (key, append, Utc::now())
        });
        // A re-sent append is found where it would go; the key's claim is written meanwhile.
        let (stored, claim) = tokio::join!(self.stored_already(stream, first, &events), async {
            match &claimed {
                Some((key, append, claimed_at)) => {
                    let claim = Claim::Claimed {
                        append: append.clone(),
                        claimed_at: *claimed_at,
                    };
                    self.claim(key, &claim).await.map(Some)
                }
                None => Ok(None),
            }
        });
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) => {
                self.release(&claimed, &claim).await;
                return Err(e);
            }
        };
        if let Some(stored) = stored {
            // A claim written just now names these very events, so it reads as used.
            return Ok(stored);
        }
        let claim = claim?;
        if let Some((_, _, claimed_at)) = &claimed {
            if claim::age(*claimed_at, Utc::now()) >= claim::SEND_BEFORE {
                // Too late to send within the claim's lease: another request may take it over.
                self.release(&claimed, &Ok(claim)).await;
                return Err(StoreError::Backend(
                    "the event store was too slow to answer; retry with the same key".into(),
                ));
            }
        }
        let bytes: usize = events
            .iter()
            .map(|e| e.data.len() + e.metadata.len() + e.event_type.len())
            .sum();
        let options = AppendToStreamOptions::default()
            .stream_state(expected_state(expected))
            .deadline(APPEND_DEADLINE);
        let written = {
            let (options, data) = (&options, &data);
            self.connection
                .call(|client| async move {
                    client.append_to_stream(stream, options, data.clone()).await
                })
                .await
        };
        let written = match written {
            Ok(w) => w,
            Err(e) => {
                if refused_for_certain(&e) {
                    // Refused for certain: free the key now rather than after the lease.
                    self.release(&claimed, &Ok(claim)).await;
                }
                return Err(append_error(e, expected, bytes));
            }
        };
        // The client's "next expected version" is the last event's revision, and the answer's
        // position is the last event's own position in `$all`; an answer without one (the
        // server could not read it back) is looked up.
        let revision = written.next_expected_version;
        let position = match written.position.prepare {
            0 => self
                .position_of(stream, revision)
                .await?
                .ok_or_else(|| backend("the appended event is not readable"))?,
            p => p,
        };
        self.saw(position);
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
        self.read_events(stream, from_revision, usize::MAX >> 1)
            .await?
            .iter()
            .map(Self::from_recorded)
            .collect()
    }

    async fn read_all(&self, from_position: u64, limit: usize) -> StoreResult<Vec<RecordedEvent>> {
        let events = read::from(&self.connection, from_position, limit).await?;
        let out = events
            .iter()
            .map(Self::from_recorded)
            .collect::<StoreResult<Vec<_>>>()?;
        if let Some(last) = out.last() {
            self.saw(last.position);
        }
        Ok(out)
    }

    async fn head(&self) -> StoreResult<u64> {
        let head = read::head(&self.connection).await?;
        self.saw(head);
        Ok(head)
    }

    async fn count_after(&self, position: u64, at_most: u64) -> StoreResult<u64> {
        read::count_after(&self.connection, position, at_most).await
    }

    async fn wait_for_events(&self, after: u64, timeout: Duration) -> StoreResult<u64> {
        wait_for_head_every(&self.head, after, timeout, HEAD_POLL, || self.head()).await
    }

    async fn find_idempotency(&self, key: &str) -> StoreResult<Option<StoredIdempotency>> {
        Ok(match self.resolve_claim(key).await? {
            Resolution::Used {
                stream,
                request_hash,
                last,
            } => Some(StoredIdempotency {
                stream,
                request_hash,
                revision: last.revision,
                position: last.position,
            }),
            Resolution::Free { .. } | Resolution::InProgress => None,
        })
    }

    fn event_ids_unique_across_streams(&self) -> bool {
        false
    }

    fn backend_name(&self) -> &'static str {
        "kurrentdb"
    }
}
