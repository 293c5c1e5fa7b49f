//! The PostgreSQL event store.
//!
//! Why a crate of its own: one of the interchangeable backends of `registry-store`; only the
//! binary chooses it (from a `postgres://` URL).
//!
//! The sequence-gap problem (a reader must never skip an event that commits late with a lower
//! position) is solved by assigning positions only while holding a transaction-scoped advisory
//! lock: appends commit in position order, across every process (ADR 0007). To keep that lock
//! from costing one commit per command, each process groups waiting appends into one transaction
//! (the same group commit as the SQLite store).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use registry_store::group::{wait_for_head, AppendRequest, GroupWriter, WriterQueue};
use registry_store::{
    AppendResult, EventStore, ExpectedRevision, IdempotencyKey, NewEvent, RecordedEvent,
    StoreError, StoreResult, StoredIdempotency,
};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, Row};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// Versions 1 to 999. The read store's migrations (1001 and up) may share the database and its
/// `_sqlx_migrations` table: each side ignores the other's versions.
static MIGRATOR: sqlx::migrate::Migrator = {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.ignore_missing = true;
    migrator
};

/// The key of the append lock (`pg_advisory_xact_lock`): "registry" in ASCII.
pub const APPEND_LOCK: i64 = 0x7265_6769_7374_7279;
const CHANNEL: &str = "registry_events";

/// The PostgreSQL event store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PostgresEventStore {
    writer: WriterQueue,
    readers: PgPool,
    head: watch::Receiver<u64>,
}

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::backend(e)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

async fn current_head(pool: &PgPool) -> StoreResult<u64> {
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .map_err(backend)?;
    Ok(to_u64(head))
}

impl PostgresEventStore {
    /// Connects to a `postgres://` URL and runs the migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        // One plain connection first: a pool retries a refused connection until its acquire
        // timeout and then says only "pool timed out"; this says why, within seconds.
        let probe = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(url))
            .await
            .map_err(|_| StoreError::Backend("no answer from PostgreSQL within 10 s".into()))?
            .map_err(backend)?;
        let _ = probe.close().await;
        let readers = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(backend)?;
        MIGRATOR.run(&readers).await.map_err(StoreError::backend)?;
        let writer = PgConnection::connect(url).await.map_err(backend)?;
        let (head_tx, head) = watch::channel(current_head(&readers).await?);
        // Wake-ups from every process's commits.
        let mut listener = PgListener::connect(url).await.map_err(backend)?;
        listener.listen(CHANNEL).await.map_err(backend)?;
        let notify = head_tx.clone();
        tokio::spawn(async move {
            loop {
                match listener.recv().await {
                    Ok(n) => {
                        if let Ok(p) = n.payload().parse::<u64>() {
                            notify.send_if_modified(|h| {
                                let newer = p > *h;
                                if newer {
                                    *h = p;
                                }
                                newer
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "event notifications interrupted; polling meanwhile");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                if notify.is_closed() {
                    return;
                }
            }
        });
        Ok(Self {
            writer: WriterQueue::spawn(
                PostgresWriter {
                    url: url.to_string(),
                    conn: Some(writer),
                },
                head_tx,
            ),
            readers,
            head,
        })
    }
}

struct PostgresWriter {
    url: String,
    conn: Option<PgConnection>,
}

#[async_trait]
impl GroupWriter for PostgresWriter {
    async fn commit_group(
        &mut self,
        group: Vec<AppendRequest>,
    ) -> StoreResult<(Vec<StoreResult<AppendResult>>, Option<u64>)> {
        let conn = match self.conn.as_mut() {
            Some(conn) => conn,
            None => self
                .conn
                .insert(PgConnection::connect(&self.url).await.map_err(backend)?),
        };
        let result = commit_group(conn, &group).await;
        if result.is_err() {
            // Reconnect next time: the connection may be broken.
            self.conn = None;
        }
        result.map_err(backend)
    }
}

/// An event row about to be inserted.
struct Row_ {
    position: i64,
    event: NewEvent,
    stream: String,
    revision: i64,
}

async fn commit_group(
    conn: &mut PgConnection,
    group: &[AppendRequest],
) -> Result<(Vec<StoreResult<AppendResult>>, Option<u64>), sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut *tx)
        .await?;

    // What the group needs to know, in three reads.
    let ids: Vec<Uuid> = group
        .iter()
        .flat_map(|r| r.events.iter().map(|e| e.event_id))
        .collect();
    let mut stored_ids: HashMap<Uuid, (String, u64, u64)> = sqlx::query(
        "SELECT event_id, stream, revision, position FROM events WHERE event_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| {
        (
            r.get::<Uuid, _>(0),
            (r.get::<String, _>(1), to_u64(r.get(2)), to_u64(r.get(3))),
        )
    })
    .collect();
    let streams: Vec<&str> = group.iter().map(|r| r.stream.as_str()).collect();
    let mut heads: HashMap<String, u64> = sqlx::query(
        "SELECT stream, MAX(revision) FROM events WHERE stream = ANY($1) GROUP BY stream",
    )
    .bind(&streams)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.get::<String, _>(0), to_u64(r.get(1))))
    .collect();
    let keys: Vec<&str> = group
        .iter()
        .filter_map(|r| r.idempotency.as_ref().map(|i| i.key.as_str()))
        .collect();
    let mut used_keys: HashMap<String, StoredIdempotency> = if keys.is_empty() {
        HashMap::new()
    } else {
        sqlx::query(
            "SELECT key, request_hash, stream, revision, position FROM idempotency_keys WHERE key = ANY($1)",
        )
        .bind(&keys)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| {
            (
                r.get::<String, _>(0),
                StoredIdempotency {
                    request_hash: r.get(1),
                    stream: r.get(2),
                    revision: to_u64(r.get(3)),
                    position: to_u64(r.get(4)),
                },
            )
        })
        .collect()
    };
    let mut next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(&mut *tx)
        .await?;

    let mut rows: Vec<Row_> = Vec::new();
    let mut new_keys: Vec<(String, StoredIdempotency)> = Vec::new();
    let mut results = Vec::with_capacity(group.len());
    for request in group {
        let result = decide_one(
            request,
            &mut stored_ids,
            &mut heads,
            &mut used_keys,
            &mut next,
            &mut rows,
            &mut new_keys,
        );
        results.push(result);
    }

    let last = rows.last().map(|r| to_u64(r.position));
    if !rows.is_empty() {
        let mut positions = Vec::with_capacity(rows.len());
        let mut event_ids = Vec::with_capacity(rows.len());
        let mut stream_names = Vec::with_capacity(rows.len());
        let mut revisions = Vec::with_capacity(rows.len());
        let mut types = Vec::with_capacity(rows.len());
        let mut versions = Vec::with_capacity(rows.len());
        let mut data = Vec::with_capacity(rows.len());
        let mut metadata = Vec::with_capacity(rows.len());
        let mut recorded = Vec::with_capacity(rows.len());
        for r in rows {
            positions.push(r.position);
            event_ids.push(r.event.event_id);
            stream_names.push(r.stream);
            revisions.push(r.revision);
            types.push(r.event.event_type);
            versions.push(i32::from(r.event.schema_version));
            data.push(r.event.data);
            metadata.push(r.event.metadata);
            recorded.push(r.event.recorded_at);
        }
        sqlx::query(
            "INSERT INTO events (position, event_id, stream, revision, event_type, schema_version, data, metadata, recorded_at)
             SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::int[], $7::text[], $8::text[], $9::timestamptz[])",
        )
        .bind(positions)
        .bind(event_ids)
        .bind(stream_names)
        .bind(revisions)
        .bind(types)
        .bind(versions)
        .bind(data)
        .bind(metadata)
        .bind(recorded)
        .execute(&mut *tx)
        .await?;
    }
    for (key, stored) in new_keys {
        sqlx::query(
            "INSERT INTO idempotency_keys (key, request_hash, stream, revision, position) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(key)
        .bind(stored.request_hash)
        .bind(stored.stream)
        .bind(to_i64(stored.revision))
        .bind(to_i64(stored.position))
        .execute(&mut *tx)
        .await?;
    }
    if let Some(p) = last {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(p.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok((results, last))
}

/// Checks one request against the stored state plus the group's earlier requests, and queues its
/// rows.
fn decide_one(
    request: &AppendRequest,
    stored_ids: &mut HashMap<Uuid, (String, u64, u64)>,
    heads: &mut HashMap<String, u64>,
    used_keys: &mut HashMap<String, StoredIdempotency>,
    next: &mut i64,
    rows: &mut Vec<Row_>,
    new_keys: &mut Vec<(String, StoredIdempotency)>,
) -> StoreResult<AppendResult> {
    request.check_shape()?;
    let events = &request.events;
    if let Some((stream, first, _)) = stored_ids.get(&events[0].event_id) {
        // A re-sent append: the same ids, in the same stream, in the same order.
        let same = *stream == request.stream
            && events.iter().enumerate().all(|(i, e)| {
                stored_ids
                    .get(&e.event_id)
                    .is_some_and(|(s, r, _)| s == stream && *r == first + i as u64)
            });
        let last = events.last().and_then(|e| stored_ids.get(&e.event_id));
        return match (same, last) {
            (true, Some((_, revision, position))) => Ok(AppendResult {
                revision: *revision,
                position: *position,
                already_stored: true,
            }),
            _ => Err(StoreError::EventIdConflict(events[0].event_id)),
        };
    }
    if let Some(taken) = events.iter().find(|e| stored_ids.contains_key(&e.event_id)) {
        return Err(StoreError::EventIdConflict(taken.event_id));
    }
    if let Some(key) = &request.idempotency {
        if let Some(original) = used_keys.get(&key.key) {
            return Err(StoreError::IdempotencyKeyUsed(original.clone()));
        }
    }
    let current = heads.get(&request.stream).copied();
    request.check_expected(current)?;

    let mut revision = current.map_or(0, |c| c + 1);
    for event in events {
        *next += 1;
        stored_ids.insert(
            event.event_id,
            (request.stream.clone(), revision, to_u64(*next)),
        );
        rows.push(Row_ {
            position: *next,
            event: event.clone(),
            stream: request.stream.clone(),
            revision: to_i64(revision),
        });
        revision += 1;
    }
    let result = AppendResult {
        revision: revision - 1,
        position: to_u64(*next),
        already_stored: false,
    };
    heads.insert(request.stream.clone(), result.revision);
    if let Some(key) = &request.idempotency {
        let stored = StoredIdempotency {
            stream: request.stream.clone(),
            request_hash: key.request_hash.clone(),
            revision: result.revision,
            position: result.position,
        };
        used_keys.insert(key.key.clone(), stored.clone());
        new_keys.push((key.key.clone(), stored));
    }
    Ok(result)
}

const SELECT_EVENT: &str = "SELECT position, event_id, stream, revision, event_type, \
     schema_version, data, metadata, recorded_at FROM events";

fn decode_row(row: &PgRow) -> Result<RecordedEvent, sqlx::Error> {
    let schema_version: i32 = row.try_get(5)?;
    let recorded_at: DateTime<Utc> = row.try_get(8)?;
    Ok(RecordedEvent {
        position: to_u64(row.try_get(0)?),
        event_id: row.try_get(1)?,
        stream: row.try_get(2)?,
        revision: to_u64(row.try_get(3)?),
        event_type: row.try_get(4)?,
        schema_version: u16::try_from(schema_version).unwrap_or(u16::MAX),
        data: row.try_get(6)?,
        metadata: row.try_get(7)?,
        recorded_at,
    })
}

fn decode_rows(rows: &[PgRow]) -> StoreResult<Vec<RecordedEvent>> {
    rows.iter()
        .map(decode_row)
        .collect::<Result<_, _>>()
        .map_err(backend)
}

#[async_trait]
impl EventStore for PostgresEventStore {
    async fn append(
        &self,
        stream: &str,
        expected: ExpectedRevision,
        events: Vec<NewEvent>,
        idempotency: Option<IdempotencyKey>,
    ) -> StoreResult<AppendResult> {
        self.writer
            .append(AppendRequest {
                stream: stream.to_string(),
                expected,
                events,
                idempotency,
            })
            .await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_revision: u64,
    ) -> StoreResult<Vec<RecordedEvent>> {
        let rows = sqlx::query(&format!(
            "{SELECT_EVENT} WHERE stream = $1 AND revision >= $2 ORDER BY revision"
        ))
        .bind(stream)
        .bind(to_i64(from_revision))
        .fetch_all(&self.readers)
        .await
        .map_err(backend)?;
        decode_rows(&rows)
    }

    async fn read_all(&self, from_position: u64, limit: usize) -> StoreResult<Vec<RecordedEvent>> {
        let rows = sqlx::query(&format!(
            "{SELECT_EVENT} WHERE position >= $1 ORDER BY position LIMIT $2"
        ))
        .bind(to_i64(from_position))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.readers)
        .await
        .map_err(backend)?;
        decode_rows(&rows)
    }

    async fn head(&self) -> StoreResult<u64> {
        current_head(&self.readers).await
    }

    async fn count_after(&self, position: u64, at_most: u64) -> StoreResult<u64> {
        // Only what readers may see: below the head, which waits for late commits.
        let head = to_i64(current_head(&self.readers).await?);
        let count: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT 1 FROM events WHERE position > $1 AND position <= $2 LIMIT $3) AS e",
        )
        .bind(to_i64(position))
        .bind(head)
        .bind(to_i64(at_most))
        .fetch_one(&self.readers)
        .await
        .map_err(backend)?;
        Ok(to_u64(count))
    }

    async fn wait_for_events(&self, after: u64, timeout: Duration) -> StoreResult<u64> {
        wait_for_head(&self.head, after, timeout, || current_head(&self.readers)).await
    }

    async fn find_idempotency(&self, key: &str) -> StoreResult<Option<StoredIdempotency>> {
        let row = sqlx::query(
            "SELECT request_hash, stream, revision, position FROM idempotency_keys WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(&self.readers)
        .await
        .map_err(backend)?;
        Ok(row.map(|r| StoredIdempotency {
            request_hash: r.get(0),
            stream: r.get(1),
            revision: to_u64(r.get(2)),
            position: to_u64(r.get(3)),
        }))
    }

    fn backend_name(&self) -> &'static str {
        "postgres"
    }
}
