//! The embedded event store on one SQLite file (sqlx, bundled SQLite).
//!
//! Why a crate of its own: it is one of three interchangeable backends of `registry-store`, and
//! only the binary chooses among them.
//!
//! Durability: WAL with `synchronous=FULL`, so an acknowledged append survives a power cut. To keep
//! that from costing one fsync per command, all appends go through one writer task that drains
//! whatever requests are waiting and commits them in one transaction (group commit). Each request
//! is checked (expected revision, re-sent event ids, idempotency key) before anything is written,
//! so one refused request does not disturb the others of its group.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use registry_store::group::{wait_for_head, AppendRequest, GroupWriter, WriterQueue};
use registry_store::{
    AppendResult, EventStore, ExpectedRevision, IdempotencyKey, NewEvent, RecordedEvent,
    StoreError, StoreResult, StoredIdempotency,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The SQLite event store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SqliteEventStore {
    writer: WriterQueue,
    readers: SqlitePool,
    head: watch::Receiver<u64>,
}

/// Connection options shared by the writer and the readers.
pub fn connect_options(url: &str) -> StoreResult<SqliteConnectOptions> {
    let url = if url.starts_with("sqlite:") {
        url.to_string()
    } else {
        format!("sqlite://{url}")
    };
    Ok(SqliteConnectOptions::from_str(&url)
        .map_err(StoreError::backend)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30))
        .pragma("cache_size", "-32768")
        .log_statements(tracing::log::LevelFilter::Trace))
}

impl SqliteEventStore {
    /// Opens (creating if needed) the store at a path or `sqlite:` URL and runs its migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = connect_options(url)?;
        if let Some(parent) = Path::new(options.get_filename()).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(StoreError::backend)?;
            }
        }
        let mut writer = options.connect().await.map_err(StoreError::backend)?;
        MIGRATOR
            .run(&mut writer)
            .await
            .map_err(StoreError::backend)?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(options.read_only(true))
            .await
            .map_err(StoreError::backend)?;
        let initial = current_head(&readers).await?;
        let (head_tx, head) = watch::channel(initial);
        Ok(Self {
            writer: WriterQueue::spawn(SqliteWriter(writer), head_tx),
            readers,
            head,
        })
    }
}

async fn current_head(pool: &SqlitePool) -> StoreResult<u64> {
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .map_err(StoreError::backend)?;
    Ok(to_u64(head))
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The only write connection; appends reach it through the [`WriterQueue`].
struct SqliteWriter(SqliteConnection);

#[async_trait]
impl GroupWriter for SqliteWriter {
    async fn commit_group(
        &mut self,
        group: &[AppendRequest],
    ) -> StoreResult<(Vec<StoreResult<AppendResult>>, Option<u64>)> {
        let result = commit_group(&mut self.0, group).await;
        if result.is_err() {
            // The connection may be left in a broken transaction; make sure it is not.
            let _ = sqlx::query("ROLLBACK").execute(&mut self.0).await;
        }
        result.map_err(StoreError::backend)
    }
}

/// Commits every request of the group in one transaction. Refusals are per request; a backend
/// error fails the whole group (nothing of it is written).
async fn commit_group(
    conn: &mut SqliteConnection,
    group: &[AppendRequest],
) -> Result<(Vec<StoreResult<AppendResult>>, Option<u64>), sqlx::Error> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut results = Vec::with_capacity(group.len());
    let mut last_position = None;
    for request in group {
        let result = append_one(&mut tx, request).await?;
        if let Ok(r) = &result {
            if !r.already_stored {
                last_position = Some(r.position);
            }
        }
        results.push(result);
    }
    tx.commit().await?;
    Ok((results, last_position))
}

async fn append_one(
    conn: &mut SqliteConnection,
    request: &AppendRequest,
) -> Result<StoreResult<AppendResult>, sqlx::Error> {
    let events = &request.events;
    if let Err(e) = request.check_shape() {
        return Ok(Err(e));
    }

    // A re-sent append: its first event id is stored already.
    let existing: Option<(String, i64)> =
        sqlx::query_as("SELECT stream, revision FROM events WHERE event_id = ?")
            .bind(events[0].event_id.as_bytes().as_slice())
            .fetch_optional(&mut *conn)
            .await?;
    if let Some((stream, first_revision)) = existing {
        let stored: Vec<(Vec<u8>, i64, i64)> = sqlx::query_as(
            "SELECT event_id, revision, position FROM events
             WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?",
        )
        .bind(&stream)
        .bind(first_revision)
        .bind(i64::try_from(events.len()).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await?;
        let same = stream == request.stream
            && stored.len() == events.len()
            && stored
                .iter()
                .zip(events)
                .all(|((id, _, _), e)| id.as_slice() == e.event_id.as_bytes());
        return Ok(match (same, stored.last()) {
            (true, Some((_, revision, position))) => Ok(AppendResult {
                revision: to_u64(*revision),
                position: to_u64(*position),
                already_stored: true,
            }),
            _ => Err(StoreError::EventIdConflict(events[0].event_id)),
        });
    }
    for event in &events[1..] {
        let taken: Option<i64> =
            sqlx::query_scalar("SELECT position FROM events WHERE event_id = ?")
                .bind(event.event_id.as_bytes().as_slice())
                .fetch_optional(&mut *conn)
                .await?;
        if taken.is_some() {
            return Ok(Err(StoreError::EventIdConflict(event.event_id)));
        }
    }

    if let Some(idempotency) = &request.idempotency {
        if let Some(stored) = find_idempotency(&mut *conn, &idempotency.key).await? {
            return Ok(Err(StoreError::IdempotencyKeyUsed(stored)));
        }
    }

    let current: Option<i64> =
        sqlx::query_scalar("SELECT MAX(revision) FROM events WHERE stream = ?")
            .bind(&request.stream)
            .fetch_one(&mut *conn)
            .await?;
    let current = current.map(to_u64);
    if let Err(e) = request.check_expected(current) {
        return Ok(Err(e));
    }

    let mut revision = current.map_or(0, |c| c + 1);
    let mut position = 0;
    for event in events {
        let p: i64 = sqlx::query_scalar(
            "INSERT INTO events
                (event_id, stream, revision, event_type, schema_version, data, metadata, recorded_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING position",
        )
        .bind(event.event_id.as_bytes().as_slice())
        .bind(&request.stream)
        .bind(to_i64(revision))
        .bind(&event.event_type)
        .bind(i64::from(event.schema_version))
        .bind(&event.data)
        .bind(&event.metadata)
        .bind(event.recorded_at.timestamp_micros())
        .fetch_one(&mut *conn)
        .await?;
        position = to_u64(p);
        revision += 1;
    }
    let last_revision = revision - 1;
    if let Some(idempotency) = &request.idempotency {
        sqlx::query(
            "INSERT INTO idempotency_keys (key, request_hash, stream, revision, position)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&idempotency.key)
        .bind(&idempotency.request_hash)
        .bind(&request.stream)
        .bind(to_i64(last_revision))
        .bind(to_i64(position))
        .execute(&mut *conn)
        .await?;
    }
    Ok(Ok(AppendResult {
        revision: last_revision,
        position,
        already_stored: false,
    }))
}

async fn find_idempotency<'c, E>(
    executor: E,
    key: &str,
) -> Result<Option<StoredIdempotency>, sqlx::Error>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let row: Option<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT stream, request_hash, revision, position FROM idempotency_keys WHERE key = ?",
    )
    .bind(key)
    .fetch_optional(executor)
    .await?;
    Ok(row.map(
        |(stream, request_hash, revision, position)| StoredIdempotency {
            stream,
            request_hash,
            revision: to_u64(revision),
            position: to_u64(position),
        },
    ))
}

const SELECT_EVENT: &str = "SELECT position, event_id, stream, revision, event_type, \
     schema_version, data, metadata, recorded_at FROM events";

fn decode_row(row: &SqliteRow) -> Result<RecordedEvent, sqlx::Error> {
    let id: &[u8] = row.try_get(1)?;
    let event_id = Uuid::from_slice(id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let micros: i64 = row.try_get(8)?;
    let recorded_at = DateTime::<Utc>::from_timestamp_micros(micros)
        .ok_or_else(|| sqlx::Error::Decode("recorded_at out of range".into()))?;
    let schema_version: i64 = row.try_get(5)?;
    Ok(RecordedEvent {
        position: to_u64(row.try_get(0)?),
        event_id,
        stream: row.try_get(2)?,
        revision: to_u64(row.try_get(3)?),
        event_type: row.try_get(4)?,
        schema_version: u16::try_from(schema_version).unwrap_or(u16::MAX),
        data: row.try_get(6)?,
        metadata: row.try_get(7)?,
        recorded_at,
    })
}

fn decode_rows(rows: &[SqliteRow]) -> StoreResult<Vec<RecordedEvent>> {
    rows.iter()
        .map(decode_row)
        .collect::<Result<_, _>>()
        .map_err(StoreError::backend)
}

#[async_trait]
impl EventStore for SqliteEventStore {
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
            "{SELECT_EVENT} WHERE stream = ? AND revision >= ? ORDER BY revision"
        ))
        .bind(stream)
        .bind(to_i64(from_revision))
        .fetch_all(&self.readers)
        .await
        .map_err(StoreError::backend)?;
        decode_rows(&rows)
    }

    async fn read_all(&self, from_position: u64, limit: usize) -> StoreResult<Vec<RecordedEvent>> {
        let rows = sqlx::query(&format!(
            "{SELECT_EVENT} WHERE position >= ? ORDER BY position LIMIT ?"
        ))
        .bind(to_i64(from_position))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.readers)
        .await
        .map_err(StoreError::backend)?;
        decode_rows(&rows)
    }

    async fn head(&self) -> StoreResult<u64> {
        current_head(&self.readers).await
    }

    async fn wait_for_events(&self, after: u64, timeout: Duration) -> StoreResult<u64> {
        // Another process may write to the same file: the helper looks at the file too.
        wait_for_head(&self.head, after, timeout, || current_head(&self.readers)).await
    }

    async fn find_idempotency(&self, key: &str) -> StoreResult<Option<StoredIdempotency>> {
        find_idempotency(&self.readers, key)
            .await
            .map_err(StoreError::backend)
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}

/// Keeps `Arc` users of the trait object simple.
pub fn shared(store: SqliteEventStore) -> Arc<dyn EventStore> {
    Arc::new(store)
}
