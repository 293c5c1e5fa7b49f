//! The embedded event store on one SQLite file (bundled SQLite through `rusqlite`).
//!
//! Why a crate of its own: it is one of three interchangeable backends of `registry-store`, and
//! only the binary chooses among them.
//!
//! Durability: WAL with `synchronous=FULL`, so an acknowledged append survives a power cut. To keep
//! that from costing one fsync per command, all appends go through one writer that commits
//! whatever requests are waiting in one transaction (group commit, ADR 1). Each request is
//! checked (expected revision, re-sent event ids, idempotency key) before anything is written, so
//! one refused request does not disturb the others of its group.
//!
//! Why `rusqlite` here when the read store uses sqlx: this crate is the hot path of every command
//! and every projection rebuild, and sqlx runs each SQLite statement through a hand-off to a
//! worker thread (about 77 µs per statement and 209,000 rows/s at best on the 2-core machine),
//! which put the append and scan targets out of reach. Blocking calls on a small set of
//! connections, run on tokio's blocking pool, do the same work in a few microseconds (ADR 9).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use registry_sqlite_pool::{configure, ReadPool};
use registry_store::group::{wait_for_head, AppendRequest, GroupWriter, WriterQueue};
use registry_store::{
    AppendResult, EventStore, ExpectedRevision, IdempotencyKey, NewEvent, RecordedEvent,
    StoreError, StoreResult, StoredIdempotency,
};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use uuid::Uuid;

/// The schema, one script per version (`PRAGMA user_version` records how far a file is).
const MIGRATIONS: &[&str] = &[include_str!("../migrations/0001_events.sql")];

/// The SQLite event store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SqliteEventStore {
    writer: WriterQueue,
    readers: ReadPool,
    head: watch::Receiver<u64>,
}

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::backend(e)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub use registry_sqlite_pool::path_of;

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, script) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.execute_batch(script)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
    }
    tx.commit()
}

impl SqliteEventStore {
    /// Opens (creating if needed) the store at a path or `sqlite:` URL and runs its migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let path = path_of(url);
        let opened =
            tokio::task::spawn_blocking(move || -> StoreResult<(Connection, PathBuf, u64)> {
                if let Some(parent) = path.parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(backend)?;
                    }
                }
                let mut conn = Connection::open(&path).map_err(backend)?;
                configure(&conn, "FULL").map_err(backend)?;
                migrate(&mut conn).map_err(backend)?;
                let head = head_of(&conn).map_err(backend)?;
                Ok((conn, path, head))
            })
            .await
            .map_err(backend)??;
        let (conn, path, initial) = opened;
        let (head_tx, head) = watch::channel(initial);
        Ok(Self {
            writer: WriterQueue::spawn(SqliteWriter(Arc::new(Mutex::new(conn))), head_tx),
            readers: ReadPool::new(path),
            head,
        })
    }

    pub fn path(&self) -> &Path {
        self.readers.path()
    }

    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> StoreResult<R> {
        self.readers.read(f).await.map_err(backend)
    }

    /// A read by an indexed key on the calling thread: a family's stream, an idempotency key
    /// (a hand-off to the blocking pool and back costs more than such a lookup).
    fn read_now<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> StoreResult<R> {
        self.readers.read_now(f).map_err(backend)
    }
}

fn head_of(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(to_u64)
}

/// The only write connection; appends reach it through the [`WriterQueue`].
struct SqliteWriter(Arc<Mutex<Connection>>);

#[async_trait]
impl GroupWriter for SqliteWriter {
    async fn commit_group(
        &mut self,
        group: Vec<AppendRequest>,
    ) -> StoreResult<(Vec<StoreResult<AppendResult>>, Option<u64>)> {
        let conn = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            commit_group(&mut conn, &group).map_err(backend)
        })
        .await
        .map_err(backend)?
    }
}

/// Commits every request of the group in one transaction. Refusals are per request; a backend
/// error fails the whole group (the transaction rolls back when dropped).
fn commit_group(
    conn: &mut Connection,
    group: &[AppendRequest],
) -> rusqlite::Result<(Vec<StoreResult<AppendResult>>, Option<u64>)> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(group.len());
    let mut last_position = None;
    for request in group {
        let result = append_one(&tx, request)?;
        if let Ok(r) = &result {
            if !r.already_stored {
                last_position = Some(r.position);
            }
        }
        results.push(result);
    }
    tx.commit()?;
    Ok((results, last_position))
}

fn append_one(
    tx: &Transaction<'_>,
    request: &AppendRequest,
) -> rusqlite::Result<StoreResult<AppendResult>> {
    let events = &request.events;
    if let Err(e) = request.check_shape() {
        return Ok(Err(e));
    }
    let mut find_id =
        tx.prepare_cached("SELECT stream, revision, position FROM events WHERE event_id = ?1")?;

    // A re-sent append: its first event id is stored already.
    let existing: Option<(String, i64)> = find_id
        .query_row([events[0].event_id.as_bytes().as_slice()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if let Some((stream, first_revision)) = existing {
        let mut stmt = tx.prepare_cached(
            "SELECT event_id, revision, position FROM events
             WHERE stream = ?1 AND revision >= ?2 ORDER BY revision LIMIT ?3",
        )?;
        let stored: Vec<(Vec<u8>, i64, i64)> = stmt
            .query_map(
                params![
                    stream,
                    first_revision,
                    i64::try_from(events.len()).unwrap_or(i64::MAX)
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?
            .collect::<rusqlite::Result<_>>()?;
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
        let taken = find_id
            .query_row([event.event_id.as_bytes().as_slice()], |_| Ok(()))
            .optional()?;
        if taken.is_some() {
            return Ok(Err(StoreError::EventIdConflict(event.event_id)));
        }
    }

    if let Some(idempotency) = &request.idempotency {
        if let Some(stored) = find_idempotency(tx, &idempotency.key)? {
            return Ok(Err(StoreError::IdempotencyKeyUsed(stored)));
        }
    }

    let current: Option<i64> = tx
        .prepare_cached("SELECT MAX(revision) FROM events WHERE stream = ?1")?
        .query_row([&request.stream], |r| r.get(0))?;
    let current = current.map(to_u64);
    if let Err(e) = request.check_expected(current) {
        return Ok(Err(e));
    }

    let mut insert = tx.prepare_cached(
        "INSERT INTO events
            (event_id, stream, revision, event_type, schema_version, data, metadata, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut revision = current.map_or(0, |c| c + 1);
    let mut position = 0;
    for event in events {
        insert.execute(params![
            event.event_id.as_bytes().as_slice(),
            request.stream,
            to_i64(revision),
            event.event_type,
            i64::from(event.schema_version),
            event.data,
            event.metadata,
            event.recorded_at.timestamp_micros(),
        ])?;
        position = to_u64(tx.last_insert_rowid());
        revision += 1;
    }
    let last_revision = revision - 1;
    if let Some(idempotency) = &request.idempotency {
        tx.prepare_cached(
            "INSERT INTO idempotency_keys (key, request_hash, stream, revision, position)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            idempotency.key,
            idempotency.request_hash,
            request.stream,
            to_i64(last_revision),
            to_i64(position),
        ])?;
    }
    Ok(Ok(AppendResult {
        revision: last_revision,
        position,
        already_stored: false,
    }))
}

fn find_idempotency(conn: &Connection, key: &str) -> rusqlite::Result<Option<StoredIdempotency>> {
    conn.prepare_cached(
        "SELECT stream, request_hash, revision, position FROM idempotency_keys WHERE key = ?1",
    )?
    .query_row([key], |r| {
        Ok(StoredIdempotency {
            stream: r.get(0)?,
            request_hash: r.get(1)?,
            revision: to_u64(r.get(2)?),
            position: to_u64(r.get(3)?),
        })
    })
    .optional()
}

const SELECT_EVENT: &str = "SELECT position, event_id, stream, revision, event_type, \
     schema_version, data, metadata, recorded_at FROM events";

fn decode_row(row: &Row<'_>) -> rusqlite::Result<RecordedEvent> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Blob,
            format!("bad {what}").into(),
        )
    };
    let id: [u8; 16] = row
        .get_ref(1)?
        .as_blob()?
        .try_into()
        .map_err(|_| bad(1, "event_id"))?;
    let micros: i64 = row.get(8)?;
    let schema_version: i64 = row.get(5)?;
    Ok(RecordedEvent {
        position: to_u64(row.get(0)?),
        event_id: Uuid::from_bytes(id),
        stream: row.get(2)?,
        revision: to_u64(row.get(3)?),
        event_type: row.get(4)?,
        schema_version: u16::try_from(schema_version).map_err(|_| bad(5, "schema_version"))?,
        data: row.get(6)?,
        metadata: row.get(7)?,
        recorded_at: DateTime::<Utc>::from_timestamp_micros(micros)
            .ok_or_else(|| bad(8, "recorded_at"))?,
    })
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
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!("{SELECT_EVENT} WHERE stream = ?1 AND revision >= ?2 ORDER BY revision")
        });
        self.read_now(|conn| {
            conn.prepare_cached(&SQL)?
                .query_map(params![stream, to_i64(from_revision)], decode_row)?
                .collect()
        })
    }

    async fn read_all(&self, from_position: u64, limit: usize) -> StoreResult<Vec<RecordedEvent>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "{SELECT_EVENT} WHERE position >= ?1 ORDER BY position LIMIT ?2"
            ))?
            .query_map(
                params![
                    to_i64(from_position),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
                decode_row,
            )?
            .collect()
        })
        .await
    }

    async fn head(&self) -> StoreResult<u64> {
        self.read(head_of).await
    }

    async fn count_after(&self, position: u64, at_most: u64) -> StoreResult<u64> {
        let (after, cap) = (to_i64(position), to_i64(at_most));
        self.read(move |conn| {
            conn.query_row(
                "SELECT count(*) FROM (SELECT 1 FROM events WHERE position > ?1 LIMIT ?2)",
                rusqlite::params![after, cap],
                |r| r.get::<_, i64>(0),
            )
            .map(to_u64)
        })
        .await
    }

    async fn wait_for_events(&self, after: u64, timeout: Duration) -> StoreResult<u64> {
        // Another process may write to the same file: the helper looks at the file too.
        wait_for_head(&self.head, after, timeout, || self.head()).await
    }

    async fn find_idempotency(&self, key: &str) -> StoreResult<Option<StoredIdempotency>> {
        self.read_now(|conn| find_idempotency(conn, key))
    }

    fn backend_name(&self) -> &'static str {
        "sqlite"
    }
}
