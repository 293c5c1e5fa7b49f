//! The event store as one small async trait.
//!
//! Why a crate of its own: the application, the projections and the HTTP server depend on this
//! trait only; each backend (SQLite, PostgreSQL, KurrentDB) lives in its own crate, and only the
//! binary picks one from the configured URL. Payloads are opaque JSON text here: the store knows
//! streams, revisions and positions, not families.

pub mod group;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;
use std::time::Duration;
use uuid::Uuid;

/// What the writer expects of the stream before its append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "revision")]
pub enum ExpectedRevision {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last revision must be exactly this (revisions start at 0).
    Exact(u64),
}

/// An event to append. `recorded_at` comes from the caller's injected clock.
#[derive(Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    /// JSON text of the event data.
    pub data: String,
    /// JSON text of the metadata (actor, correlation, causation, idempotency key).
    pub metadata: String,
    pub recorded_at: DateTime<Utc>,
}

impl fmt::Debug for NewEvent {
    // Payloads hold personal data: never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewEvent")
            .field("event_id", &self.event_id)
            .field("event_type", &self.event_type)
            .field("schema_version", &self.schema_version)
            .field("data_bytes", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// An event as stored: the envelope plus the payload.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    pub position: u64,
    pub event_id: Uuid,
    pub stream: String,
    pub revision: u64,
    pub event_type: String,
    pub schema_version: u16,
    pub data: String,
    pub metadata: String,
    pub recorded_at: DateTime<Utc>,
}

impl fmt::Debug for RecordedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedEvent")
            .field("position", &self.position)
            .field("stream", &self.stream)
            .field("revision", &self.revision)
            .field("event_type", &self.event_type)
            .field("event_id", &self.event_id)
            .finish_non_exhaustive()
    }
}

/// A command-level idempotency key, kept by the store atomically with the append so that a retried
/// command is recognised across processes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Already scoped by the caller (for example `actor:key`).
    pub key: String,
    /// A digest of the request the key was first used with.
    pub request_hash: String,
}

/// Where a successful append left the stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppendResult {
    /// Revision of the last event of the append.
    pub revision: u64,
    /// Global position of the last event of the append.
    pub position: u64,
    /// The events' ids were already stored (a re-sent append): nothing new was written.
    pub already_stored: bool,
}

/// What an idempotency key was first used for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredIdempotency {
    pub stream: String,
    pub request_hash: String,
    /// Revision and position of the last event of the original append.
    pub revision: u64,
    pub position: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: the stream was not where the writer expected it.
    #[error("wrong expected revision: expected {expected:?}, stream is at {actual:?}")]
    WrongExpectedRevision {
        expected: ExpectedRevision,
        /// `None` when the stream does not exist.
        actual: Option<u64>,
    },
    /// The idempotency key was already used; the original use is returned.
    #[error("idempotency key already used")]
    IdempotencyKeyUsed(StoredIdempotency),
    /// Some event ids of the append are stored, but not as this same append.
    #[error("event id {0} is already stored elsewhere")]
    EventIdConflict(Uuid),
    /// An append with no events, or an invalid stream name.
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// The backend failed (I/O, connection, ...). Never contains payloads.
    #[error("event store backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn backend(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Backend(Box::new(e))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The event store. All backends pass the same contract suite (`registry-store-tests`).
#[async_trait]
pub trait EventStore: Send + Sync + fmt::Debug + 'static {
    /// Appends `events` to `stream` atomically if the stream is at `expected`. Returns the new
    /// revision and global position of the last event. Re-sending an append whose event ids are
    /// already stored returns the original result with `already_stored` and writes nothing.
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
        idempotency: Option<IdempotencyKey>,
    ) -> StoreResult<AppendResult>;

    /// The events of a stream from `from_revision` on, in revision order.
    async fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
    ) -> StoreResult<Vec<RecordedEvent>>;

    /// At most `limit` events with position at least `from_position`, in global order. Readers
    /// pass 1, a position seen, or one more than a position seen (where positions are byte
    /// offsets, KurrentDB's, other values may be refused). Never skips
    /// an event that commits late with a lower position: when this returns events up to position
    /// P, every event with a position below P is visible.
    async fn read_all(&self, from_position: u64, limit: usize) -> StoreResult<Vec<RecordedEvent>>;

    /// The position of the last event readers can see (0 when empty).
    async fn head(&self) -> StoreResult<u64>;

    /// How many events readers can see with a position above `position`, counting no further
    /// than `at_most` (it returns `at_most` when there are more). Lag is counted with this, in
    /// events: positions are not dense on every backend (KurrentDB's are byte offsets in its
    /// log, PostgreSQL's sequence may skip), so `head - position` is not a number of events.
    async fn count_after(&self, position: u64, at_most: u64) -> StoreResult<u64>;

    /// Waits until the head is past `after` or `timeout` elapses; returns the head.
    async fn wait_for_events(&self, after: u64, timeout: Duration) -> StoreResult<u64>;

    /// What an idempotency key was used for, if it was.
    async fn find_idempotency(&self, key: &str) -> StoreResult<Option<StoredIdempotency>>;

    /// Whether an event id already stored in one stream is refused in another
    /// ([`StoreError::EventIdConflict`]). Every backend refuses it within a stream; KurrentDB
    /// does not look across streams (ADR 0008), where the registry's fresh UUID v7 ids are what
    /// keeps them apart.
    fn event_ids_unique_across_streams(&self) -> bool {
        true
    }

    /// A short name of the backend for logs and status output (`sqlite`, `postgres`, ...).
    fn backend_name(&self) -> &'static str;
}
