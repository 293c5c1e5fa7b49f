//! A rebuild on PostgreSQL: shadow tables (`_rebuild`) beside the live ones, swapped in by
//! renaming in the transaction that holds the checkpoint's row lock.

use crate::copy;
use crate::rows::{self, backend};
use crate::schema;
use async_trait::async_trait;
use registry_domain::FamilyId;
use registry_read_store::{Changes, FoldedFamily, ReadResult, ReadStoreError, Rebuild};
use sqlx::{PgPool, Postgres, Transaction};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const SHADOW: &str = "_rebuild";

pub struct PostgresRebuild {
    pool: PgPool,
    name: String,
    /// The shadow tables' keys and indexes exist: made once the bulk load is in (a `COPY` into
    /// tables without any, then one sort per index): by `index`, or earlier by the first write
    /// that replaces rows or erases, a read back, or `lock`.
    indexed: bool,
    /// Rows were written: a later write may replace some, so it goes through `INSERT … ON
    /// CONFLICT` (history rows excepted: a rebuild reads each position once).
    written: bool,
    /// Between `lock` and `swap`.
    locked: Option<Transaction<'static, Postgres>>,
    /// A write still running: `write` returns once it has started, so the job projects its next
    /// page while the server takes this one; every later call waits for it and reports its error.
    pending: Option<tokio::task::JoinHandle<ReadResult<()>>>,
    /// Set when the rebuild is given up: a write still running then rolls back instead of
    /// committing (see `Drop`).
    given_up: Arc<AtomicBool>,
}

impl PostgresRebuild {
    pub async fn begin(pool: PgPool, name: &str) -> ReadResult<Self> {
        let mut conn = pool.acquire().await.map_err(backend)?;
        for t in schema::tables(name)? {
            sqlx::query(&format!("DROP TABLE IF EXISTS {t}{SHADOW}"))
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
        }
        let mut create = schema::create_tables(name, SHADOW, false)?;
        if schema::has_lz4(&mut conn).await.map_err(backend)? {
            create.extend(schema::lz4_columns(name, SHADOW));
        }
        for sql in create {
            sqlx::query(&sql)
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
        }
        Ok(Self {
            pool,
            name: name.to_string(),
            indexed: false,
            written: false,
            locked: None,
            pending: None,
            given_up: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Waits for the write still running, if any; its error is this call's.
    async fn settle(&mut self) -> ReadResult<()> {
        match self.pending.take() {
            Some(pending) => pending
                .await
                .map_err(|e| ReadStoreError::Backend(e.to_string()))?,
            None => Ok(()),
        }
    }

    async fn ensure_indexes(&mut self) -> ReadResult<()> {
        self.settle().await?;
        if self.indexed {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let indexes = schema::primary_keys(&self.name, SHADOW)?
            .into_iter()
            .chain(schema::read_indexes(&self.name, SHADOW)?);
        for sql in indexes {
            sqlx::query(&sql).execute(&mut *tx).await.map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        self.indexed = true;
        Ok(())
    }
}

#[async_trait]
impl Rebuild for PostgresRebuild {
    async fn write(&mut self, changes: Changes) -> ReadResult<()> {
        self.settle().await?;
        let bulk = !self.written;
        let replaces = !changes.certificates.is_empty() || !changes.search.is_empty();
        if !bulk && replaces {
            // Replacing rows and search keys goes by their primary keys.
            self.ensure_indexes().await?;
        }
        let pool = self.pool.clone();
        let given_up = self.given_up.clone();
        self.pending = Some(tokio::spawn(async move {
            let mut tx = pool.begin().await.map_err(backend)?;
            if bulk {
                copy::certificates(&mut tx, SHADOW, &changes.certificates).await?;
                copy::search(&mut tx, SHADOW, &changes.search).await?;
            } else {
                rows::write_certificates(&mut tx, SHADOW, &changes.certificates).await?;
                rows::write_search(&mut tx, SHADOW, &changes.search).await?;
            }
            copy::history(&mut tx, SHADOW, &changes.history).await?;
            if given_up.load(Ordering::SeqCst) {
                return tx.rollback().await.map_err(backend);
            }
            tx.commit().await.map_err(backend)
        }));
        self.written = true;
        Ok(())
    }

    async fn current_families(&mut self, ids: &[FamilyId]) -> ReadResult<Vec<FoldedFamily>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.ensure_indexes().await?;
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        rows::current_families(&mut conn, SHADOW, ids).await
    }

    async fn index(&mut self) -> ReadResult<()> {
        self.ensure_indexes().await
    }

    async fn lock(&mut self) -> ReadResult<()> {
        // The live tables-to-be have their keys whether or not the caller asked for `index`.
        self.ensure_indexes().await?;
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // Every live batch locks its checkpoints first, so it waits here until the swap.
        sqlx::query("SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE")
            .bind(&self.name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        self.locked = Some(tx);
        Ok(())
    }

    async fn swap(&mut self, tail: Changes, position: u64, version: i64) -> ReadResult<()> {
        if self.locked.is_none() {
            self.lock().await?;
        }
        let mut tx = self
            .locked
            .take()
            .ok_or_else(|| ReadStoreError::Backend("the swap lost its transaction".into()))?;
        rows::write(&mut tx, SHADOW, &tail).await?;
        for t in schema::tables(&self.name)? {
            sqlx::query(&format!("DROP TABLE IF EXISTS {t}"))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            sqlx::query(&format!("ALTER TABLE {t}{SHADOW} RENAME TO {t}"))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        rows::set_checkpoint(&mut tx, &self.name, position, version).await?;
        tx.commit().await.map_err(backend)
    }
}

impl Drop for PostgresRebuild {
    fn drop(&mut self) {
        // A rebuild given up with a write still running: that write rolls back instead of
        // committing, so it cannot write into the shadow tables of a rebuild begun next. (Its
        // rows went into these tables, whose lock it holds until then, or it sees the flag.) It
        // is not aborted: a query stopped halfway, a `COPY` above all, would hand its connection
        // back to the pool in the middle of the protocol, and the next query on it would read
        // another's answer (a checkpoint read came back empty that way).
        self.given_up.store(true, Ordering::SeqCst);
    }
}
