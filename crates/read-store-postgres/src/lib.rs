//! The read store on PostgreSQL (sqlx's PostgreSQL driver).
//!
//! Why a crate of its own: it is one of the read store's backends (`registry-read-store`); only
//! the binary picks it. Several `registry serve` processes may share it: every one reads, and
//! exactly one applies the projections at a time (a session advisory lock is its lease; see
//! [`PostgresReadStore::lead`]).

mod access;
mod copy;
mod rebuild;
mod rows;
mod schema;
mod tokens;
mod tree;

use async_trait::async_trait;
use registry_domain::{CertificateId, FamilyId};
use registry_read_store::codec::{to_i64, to_u64, CERTIFICATE_COLUMNS, HISTORY_COLUMNS};
use registry_read_store::{
    Applied, Batch, CertificateRow, Checkpoint, FoldedFamily, HistoryRow, ReadResult, ReadStore,
    ReadStoreError, Rebuild, Search, SearchPage,
};
use rows::backend;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Row};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Versions 1001 and up, beside the event store's in one `_sqlx_migrations` table when both live
/// in one database; each side ignores the other's versions (ADR 13).
static MIGRATIONS: sqlx::migrate::Migrator = {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.ignore_missing = true;
    migrator
};

/// The key of the projection lease (`pg_try_advisory_lock`): "regproj" in ASCII.
pub const LEASE_KEY: i64 = 0x0072_6567_7072_6f6a;
/// How often the lease holder checks that its lease connection is alive.
const LEASE_CHECK: Duration = Duration::from_secs(1);

/// The PostgreSQL read store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PostgresReadStore {
    pool: PgPool,
    /// The connection holding the projection lease, and when it was last checked.
    lease: Arc<Mutex<Option<(PgConnection, Instant)>>>,
}

impl PostgresReadStore {
    /// Connects to a `postgres://` URL and runs the migrations.
    pub async fn open(url: &str) -> ReadResult<Self> {
        // One plain connection first: a pool retries a refused connection until its acquire
        // timeout and then says only "pool timed out"; this says why, within seconds.
        let probe = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(url))
            .await
            .map_err(|_| ReadStoreError::Backend("no answer from PostgreSQL within 10 s".into()))?
            .map_err(backend)?;
        let _ = probe.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(backend)?;
        MIGRATIONS
            .run(&pool)
            .await
            .map_err(|e| ReadStoreError::Backend(e.to_string()))?;
        Ok(Self {
            pool,
            lease: Arc::new(Mutex::new(None)),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl ReadStore for PostgresReadStore {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    fn shared(&self) -> bool {
        true
    }

    async fn ping(&self) -> ReadResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn checkpoints(&self) -> ReadResult<Vec<Checkpoint>> {
        let rows = sqlx::query(
            "SELECT name, position, CAST(version AS BIGINT) FROM projection_checkpoints ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| {
                Ok(Checkpoint {
                    name: r.try_get(0).map_err(backend)?,
                    position: to_u64(r.try_get(1).map_err(backend)?),
                    version: r.try_get(2).map_err(backend)?,
                })
            })
            .collect()
    }

    async fn create_projection(&self, name: &str, version: i64) -> ReadResult<()> {
        let tables = schema::tables(name)?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Several servers may start at once: one creates, the others wait and find it made.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(LEASE_KEY + 1)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(tables[0])
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        for sql in schema::create_tables(name, "", true)? {
            sqlx::query(&sql).execute(&mut *tx).await.map_err(backend)?;
        }
        if !exists {
            if schema::has_lz4(&mut tx).await.map_err(backend)? {
                for sql in schema::lz4_columns(name, "") {
                    sqlx::query(&sql).execute(&mut *tx).await.map_err(backend)?;
                }
            }
            for sql in schema::read_indexes(name, "")? {
                sqlx::query(&sql).execute(&mut *tx).await.map_err(backend)?;
            }
        }
        sqlx::query(schema::DROP_RETIRED_INDEXES)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let known: i64 =
            sqlx::query_scalar("SELECT count(*) FROM projection_checkpoints WHERE name = $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
        if known == 0 {
            rows::set_checkpoint(&mut tx, name, 0, version).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn current_families(&self, ids: &[FamilyId]) -> ReadResult<Vec<FoldedFamily>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        rows::current_families(&mut conn, "", ids).await
    }

    async fn apply(&self, batch: Batch) -> ReadResult<Applied> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // The checkpoints, locked for this transaction: a second runner (one that lost its lease
        // without knowing yet) or a rebuild's swap waits here, then finds them moved.
        let names: Vec<&str> = batch.moves.iter().map(|m| m.projection).collect();
        let stored = sqlx::query(
            "SELECT name, position FROM projection_checkpoints WHERE name = ANY($1) \
             ORDER BY name FOR UPDATE",
        )
        .bind(&names)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        for m in &batch.moves {
            let at = stored
                .iter()
                .find(|r| r.try_get::<String, _>(0).is_ok_and(|n| n == m.projection))
                .map(|r| r.try_get::<i64, _>(1).map(to_u64))
                .transpose()
                .map_err(backend)?
                .unwrap_or(0);
            if at != m.from {
                return Ok(Applied::Moved);
            }
        }
        rows::write(&mut tx, "", &batch.changes).await?;
        for m in &batch.moves {
            rows::set_checkpoint(&mut tx, m.projection, m.to, m.version).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(Applied::Done)
    }

    async fn begin_rebuild(&self, name: &str) -> ReadResult<Box<dyn Rebuild>> {
        Ok(Box::new(
            rebuild::PostgresRebuild::begin(self.pool.clone(), name).await?,
        ))
    }

    /// The holder keeps a session advisory lock on a connection of its own; when its process
    /// dies the connection closes, the lock goes, and a standby takes it within a second.
    async fn lead(&self) -> bool {
        let mut lease = self.lease.lock().await;
        if let Some((conn, checked)) = lease.as_mut() {
            if checked.elapsed() < LEASE_CHECK {
                return true;
            }
            if sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok() {
                *checked = Instant::now();
                return true;
            }
            tracing::warn!("lost the projection lease");
            *lease = None;
            return false;
        }
        let Ok(pooled) = self.pool.acquire().await else {
            return false;
        };
        let mut conn = pooled.detach();
        let taken: Result<bool, _> = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEASE_KEY)
            .fetch_one(&mut conn)
            .await;
        if matches!(taken, Ok(true)) {
            *lease = Some((conn, Instant::now()));
            true
        } else {
            false
        }
    }

    async fn certificate_by_token(
        &self,
        token: CertificateId,
    ) -> ReadResult<Option<CertificateRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificate_view WHERE token_id = $1"
        ))
        .bind(token.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows::certificates(&rows)?.pop())
    }

    async fn certificate_of_family(&self, family: FamilyId) -> ReadResult<Option<CertificateRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificate_view WHERE family_id = $1 AND is_current = 1"
        ))
        .bind(family.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(rows::certificates(&rows)?.pop())
    }

    async fn history(&self, family: FamilyId) -> ReadResult<Vec<HistoryRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {HISTORY_COLUMNS} FROM family_history WHERE family_id = $1 ORDER BY revision"
        ))
        .bind(family.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows::histories(&rows)
    }

    async fn search(&self, search: &Search) -> ReadResult<SearchPage> {
        let limit = search.limit.max(1);
        let columns = CERTIFICATE_COLUMNS
            .split(", ")
            .map(|c| format!("c.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {columns} FROM family_search s JOIN certificate_view c \
             ON c.family_id = s.family_id AND c.is_current = 1 \
             WHERE s.kind = $1 AND s.value = $2 AND c.position < $3 \
             ORDER BY c.position DESC LIMIT $4"
        ))
        .bind(search.key.kind())
        .bind(search.key.value())
        .bind(to_i64(search.after.unwrap_or(u64::MAX >> 1)))
        .bind(i64::try_from(limit + 1).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        Ok(SearchPage::of_fetched(rows::certificates(&rows)?, limit))
    }

    async fn scrub(&self) -> ReadResult<()> {
        // `VACUUM FULL` writes each table into new files; the old files are emptied at once and
        // unlinked at the next checkpoint. The WAL still holds the erased rows until the segments
        // that hold them are removed: a checkpoint, a switch to a new segment and a second
        // checkpoint remove them, provided the server does not recycle segments (`wal_recycle =
        // off`) and the role may run them (`pg_checkpoint`, EXECUTE on `pg_switch_wal`).
        // docs/DESIGN.md §9 says what this cannot reach (archives, replicas, backups).
        sqlx::query("VACUUM FULL certificate_view, family_search, family_history")
            .execute(&self.pool)
            .await
            .map_err(rows::backend)?;
        for step in ["CHECKPOINT", "SELECT pg_switch_wal()", "CHECKPOINT"] {
            if let Err(e) = sqlx::query(step).execute(&self.pool).await {
                if is_insufficient_privilege(&e) {
                    tracing::warn!(
                        step,
                        "erased rows stay in the PostgreSQL WAL until it rotates: the role may not run this step (docs/DESIGN.md §9)"
                    );
                    return Ok(());
                }
                return Err(rows::backend(e));
            }
        }
        Ok(())
    }

    async fn dump_certificates(&self) -> ReadResult<Vec<CertificateRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificate_view ORDER BY token_id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows::certificates(&rows)
    }

    async fn dump_history(&self) -> ReadResult<Vec<HistoryRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {HISTORY_COLUMNS} FROM family_history ORDER BY position"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows::histories(&rows)
    }

    async fn dump_search_keys(&self) -> ReadResult<Vec<(String, String, FamilyId)>> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT kind, value, family_id FROM family_search ORDER BY 1, 2, 3")
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        rows.into_iter()
            .map(|(kind, value, family)| {
                let family = uuid::Uuid::parse_str(&family)
                    .map(FamilyId)
                    .map_err(|_| ReadStoreError::Corrupt("family_search: bad family_id".into()))?;
                Ok((kind, value, family))
            })
            .collect()
    }
}

fn is_insufficient_privilege(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(sqlx::error::DatabaseError::code)
        .is_some_and(|c| c == "42501")
}
