use crate::clock::Clock;
use crate::metadata::{Actor, EventMetadata};
use chrono::{DateTime, Utc};
use registry_domain::{
    decide, evolve, policy_for, time::moscow_date, Command, DecideContext, DomainError, Family,
    FamilyEvent, FamilyId, Policy, PolicyBook,
};
use registry_store::{
    EventStore, ExpectedRevision, IdempotencyKey, NewEvent, RecordedEvent, StoreError,
    StoredIdempotency,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use uuid::Uuid;

/// How often a command is decided again after a concurrent writer moved the stream, unless the
/// caller pinned a revision.
pub const MAX_RETRIES: usize = 16;

/// A command with its envelope.
#[derive(Clone, Debug)]
pub struct CommandRequest {
    pub family_id: FamilyId,
    pub command: Command,
    pub actor: Actor,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    /// The client's `Idempotency-Key`; scoped to the actor by the registry.
    pub idempotency_key: Option<String>,
    /// A digest of the request (see [`request_hash`]); a reused key with another digest is refused.
    pub request_hash: String,
    /// `If-Match`: decide only if the stream is at exactly this revision.
    pub expected_revision: Option<u64>,
}

/// The result of an accepted command (or of its idempotent replay).
#[derive(Clone, Debug)]
pub struct CommandOutcome {
    pub family: Family,
    /// Revision and global position of the command's last event.
    pub revision: u64,
    pub position: u64,
    /// The command's events.
    pub events: Vec<FamilyEvent>,
    /// The answer is the replay of an earlier request with the same idempotency key.
    pub replayed: bool,
}

/// A family with where its stream stands.
#[derive(Clone, Debug)]
pub struct LoadedFamily {
    pub family: Family,
    pub revision: u64,
    pub position: u64,
}

/// A family as it was at an instant.
#[derive(Clone, Debug)]
pub struct FamilyAt {
    pub family: Family,
    pub revision: u64,
    pub position: u64,
    pub at: DateTime<Utc>,
}

/// A stored event, decoded.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub envelope: RecordedEvent,
    pub event: FamilyEvent,
    pub metadata: EventMetadata,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The domain refused the command.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The caller pinned a revision (`If-Match`) and the stream is elsewhere.
    #[error("the family is at revision {actual:?}, not {expected}")]
    RevisionMismatch { expected: u64, actual: Option<u64> },
    /// The idempotency key was used before with a different request.
    #[error("the idempotency key was already used with a different request")]
    IdempotencyMismatch,
    /// Concurrent writers kept moving the stream; nothing was appended.
    #[error("the family kept changing concurrently; try again")]
    Contention,
    /// The event store failed.
    #[error(transparent)]
    Store(StoreError),
    /// A stored event could not be read.
    #[error("stored event could not be read: {0}")]
    Corrupt(String),
    /// The events were appended, but the views did not show them within the bound.
    #[error("the change was recorded but is not yet visible: {0}")]
    NotYetVisible(String),
}

impl CommandOutcome {
    /// The type names of the command's events.
    pub fn event_types(&self) -> Vec<&'static str> {
        self.events.iter().map(FamilyEvent::event_type).collect()
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Store(e)
    }
}

/// The SHA-256 of a request's method, path and body, hex: what an idempotency key is bound to.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Read-your-writes: something that can wait until the read models show a global position.
#[async_trait::async_trait]
pub trait Visibility: Send + Sync + std::fmt::Debug + 'static {
    /// Returns once `position` is visible in the views a QR scan reads, or an error after a
    /// bounded wait.
    async fn wait_visible(&self, position: u64) -> Result<(), String>;
}

/// The registry's command path and family reads over one event store.
#[derive(Clone, Debug)]
pub struct Registry {
    store: Arc<dyn EventStore>,
    clock: Arc<dyn Clock>,
    policies: Arc<PolicyBook>,
    visibility: Option<Arc<dyn Visibility>>,
}

impl Registry {
    /// A registry deciding by `policies` (a book of presets over time, or one preset).
    pub fn new(
        store: Arc<dyn EventStore>,
        clock: Arc<dyn Clock>,
        policies: impl Into<PolicyBook>,
    ) -> Self {
        Self {
            store,
            clock,
            policies: Arc::new(policies.into()),
            visibility: None,
        }
    }

    /// Commands answer only once their events are visible through `visibility`.
    pub fn with_visibility(mut self, visibility: Arc<dyn Visibility>) -> Self {
        self.visibility = Some(visibility);
        self
    }

    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn policies(&self) -> &PolicyBook {
        &self.policies
    }

    /// The preset a family's dates were derived with (recorded in its events), or, for a name
    /// this build does not know, the preset in force today.
    pub fn policy_of(&self, family: &Family) -> Policy {
        Policy::by_name(&family.policy).unwrap_or_else(|_| {
            self.policies
                .in_force_on(self.today())
                .cloned()
                .unwrap_or_default()
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Today's date in Moscow by the registry's clock.
    pub fn today(&self) -> chrono::NaiveDate {
        moscow_date(self.clock.now())
    }

    /// Runs a command: load the stream, fold, decide, append with the expected revision; on a
    /// concurrent change decide again (up to [`MAX_RETRIES`]) unless the caller pinned a revision.
    /// With a [`Visibility`], answers only once the views show the command's events.
    #[tracing::instrument(skip_all, fields(family_id = %request.family_id, command = request.command.name()))]
    pub async fn execute(&self, request: CommandRequest) -> Result<CommandOutcome, AppError> {
        let outcome = self.execute_unseen(request).await?;
        if let Some(visibility) = &self.visibility {
            visibility
                .wait_visible(outcome.position)
                .await
                .map_err(AppError::NotYetVisible)?;
        }
        Ok(outcome)
    }

    async fn execute_unseen(&self, request: CommandRequest) -> Result<CommandOutcome, AppError> {
        let stream = request.family_id.stream_name();
        let idempotency = request.idempotency_key.as_ref().map(|key| IdempotencyKey {
            key: format!("{}:{}", request.actor.id, key),
            request_hash: request.request_hash.clone(),
        });
        if let Some(idem) = &idempotency {
            if let Some(original) = self.store.find_idempotency(&idem.key).await? {
                return self.replay(original, &idem.request_hash).await;
            }
        }
        for attempt in 0..MAX_RETRIES {
            if attempt > 0 {
                // Spread the contenders out a little so that one of them wins the next round.
                let jitter = rand::random::<u64>() % (250 * attempt as u64);
                tokio::time::sleep(std::time::Duration::from_micros(jitter)).await;
            }
            let (state, revision) = self.fold_stream(&stream).await?;
            if let Some(expected) = request.expected_revision {
                if revision != Some(expected) {
                    return Err(AppError::RevisionMismatch {
                        expected,
                        actual: revision,
                    });
                }
            }
            let now = self.clock.now();
            let today = moscow_date(now);
            let policy = policy_for(&self.policies, &request.command, today)?;
            let ctx = DecideContext {
                today,
                policy,
                family_id: request.family_id,
            };
            let events = decide(state.as_ref(), &request.command, &ctx)?;
            let metadata = serde_json::to_string(&EventMetadata {
                actor: request.actor.clone(),
                correlation_id: request.correlation_id,
                causation_id: request.causation_id,
                idempotency_key: request.idempotency_key.clone(),
            })
            .map_err(|e| AppError::Corrupt(e.to_string()))?;
            let new_events = to_new_events(&events, &metadata, now);
            let expected = match revision {
                Some(r) => ExpectedRevision::Exact(r),
                None => ExpectedRevision::NoStream,
            };
            match self
                .store
                .append(&stream, expected, new_events, idempotency.clone())
                .await
            {
                Ok(appended) => {
                    let family = events
                        .iter()
                        .fold(state, evolve)
                        .ok_or_else(|| AppError::Corrupt("no family after the events".into()))?;
                    return Ok(CommandOutcome {
                        family,
                        revision: appended.revision,
                        position: appended.position,
                        events,
                        replayed: false,
                    });
                }
                Err(StoreError::WrongExpectedRevision { actual, .. }) => {
                    if let Some(expected) = request.expected_revision {
                        return Err(AppError::RevisionMismatch { expected, actual });
                    }
                    tracing::debug!("concurrent change; deciding again");
                }
                Err(StoreError::IdempotencyKeyUsed(original)) => {
                    let hash = idempotency
                        .as_ref()
                        .map(|i| i.request_hash.as_str())
                        .unwrap_or_default();
                    return self.replay(original, hash).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppError::Contention)
    }

    /// The answer of the original request of an idempotency key, rebuilt from its events.
    async fn replay(
        &self,
        original: StoredIdempotency,
        request_hash: &str,
    ) -> Result<CommandOutcome, AppError> {
        if original.request_hash != request_hash {
            return Err(AppError::IdempotencyMismatch);
        }
        let events = self.decoded(&original.stream).await?;
        let mut family = None;
        let mut command_events = Vec::new();
        let mut correlation = None;
        for e in events
            .into_iter()
            .filter(|e| e.envelope.revision <= original.revision)
        {
            family = evolve(family, &e.event);
            // The original command's events are the trailing run that shares its correlation id
            // and idempotency key.
            let key = (
                e.metadata.correlation_id,
                e.metadata.idempotency_key.clone(),
            );
            if correlation.as_ref() != Some(&key) {
                command_events.clear();
                correlation = Some(key);
            }
            command_events.push(e.event);
        }
        let family = family.ok_or_else(|| AppError::Corrupt("replayed stream is empty".into()))?;
        Ok(CommandOutcome {
            family,
            revision: original.revision,
            position: original.position,
            events: command_events,
            replayed: true,
        })
    }

    async fn fold_stream(&self, stream: &str) -> Result<(Option<Family>, Option<u64>), AppError> {
        let mut state = None;
        let mut revision = None;
        for recorded in self.store.read_stream(stream, 0).await? {
            let event = decode(&recorded)?;
            state = evolve(state, &event);
            revision = Some(recorded.revision);
        }
        Ok((state, revision))
    }

    /// The family's current state, folded from its stream.
    pub async fn load(&self, family_id: FamilyId) -> Result<Option<LoadedFamily>, AppError> {
        let events = self.store.read_stream(&family_id.stream_name(), 0).await?;
        let mut state = None;
        for recorded in &events {
            state = evolve(state, &decode(recorded)?);
        }
        Ok(match (state, events.last()) {
            (Some(family), Some(last)) => Some(LoadedFamily {
                family,
                revision: last.revision,
                position: last.position,
            }),
            _ => None,
        })
    }

    /// The family as it was at `at`: its stream folded up to the last event recorded at or
    /// before that instant. `None` if the family did not exist yet.
    pub async fn as_of(
        &self,
        family_id: FamilyId,
        at: DateTime<Utc>,
    ) -> Result<Option<FamilyAt>, AppError> {
        let events = self.store.read_stream(&family_id.stream_name(), 0).await?;
        let mut state = None;
        let mut last = None;
        for recorded in events.iter().take_while(|e| e.recorded_at <= at) {
            state = evolve(state, &decode(recorded)?);
            last = Some(recorded);
        }
        Ok(match (state, last) {
            (Some(family), Some(last)) => Some(FamilyAt {
                family,
                revision: last.revision,
                position: last.position,
                at,
            }),
            _ => None,
        })
    }

    /// Every event of the family, decoded, in stream order.
    pub async fn events(&self, family_id: FamilyId) -> Result<Vec<StoredEvent>, AppError> {
        self.decoded(&family_id.stream_name()).await
    }

    async fn decoded(&self, stream: &str) -> Result<Vec<StoredEvent>, AppError> {
        self.store
            .read_stream(stream, 0)
            .await?
            .into_iter()
            .map(|envelope| {
                let event = decode(&envelope)?;
                let metadata = serde_json::from_str(&envelope.metadata)
                    .map_err(|e| AppError::Corrupt(format!("metadata: {e}")))?;
                Ok(StoredEvent {
                    envelope,
                    event,
                    metadata,
                })
            })
            .collect()
    }
}

fn decode(recorded: &RecordedEvent) -> Result<FamilyEvent, AppError> {
    FamilyEvent::decode(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.data,
    )
    .map_err(|e| AppError::Corrupt(format!("position {}: {e}", recorded.position)))
}

/// The domain's events as the store takes them: a fresh event id each (UUID v7), the current
/// schema version, one envelope metadata and one recording time for all.
pub fn to_new_events(
    events: &[FamilyEvent],
    metadata: &str,
    recorded_at: DateTime<Utc>,
) -> Vec<NewEvent> {
    events
        .iter()
        .map(|e| NewEvent {
            event_id: Uuid::now_v7(),
            event_type: e.event_type().to_string(),
            schema_version: FamilyEvent::SCHEMA_VERSION,
            data: e.to_json().to_string(),
            metadata: metadata.to_string(),
            recorded_at,
        })
        .collect()
}
