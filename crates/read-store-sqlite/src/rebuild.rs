//! A rebuild on SQLite: shadow tables (`_rebuild`) in the same file, written through a
//! connection of the rebuild's own, then swapped in by renaming, in one transaction.

use crate::rows::{self, backend};
use crate::{begin_now, open_writer, schema, SqliteReadStore};
use async_trait::async_trait;
use registry_domain::FamilyId;
use registry_read_store::{Changes, FoldedFamily, ReadResult, ReadStoreError, Rebuild};
use rusqlite::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const SHADOW: &str = "_rebuild";

/// The rebuild connection's own automatic checkpoint, in pages (1 GiB of WAL).
const REBUILD_BACKSTOP_PAGES: u32 = 131_072;

/// One projection's rebuild.
pub struct SqliteRebuild {
    name: String,
    /// Taken while a call runs on the blocking pool.
    conn: Option<Connection>,
    /// A write still running on the blocking pool, with the connection it took: `write` returns
    /// once it has started, so the job projects its next page meanwhile; every later call waits
    /// for it first and reports its error.
    pending: Option<tokio::task::JoinHandle<(Connection, ReadResult<()>)>>,
    /// The shadow tables' indexes exist: made after the first write (a bulk load into tables
    /// without indexes, then one sort per index), or before it reads back from them.
    indexed: bool,
    /// Between `lock` and `swap`: a write transaction is open on `conn`.
    locked: bool,
    /// Set when the rebuild is given up: a write still running then rolls back (see `Drop`).
    given_up: Arc<AtomicBool>,
}

impl SqliteRebuild {
    pub async fn begin(store: &SqliteReadStore, name: &str) -> ReadResult<Self> {
        let tables = schema::tables(name)?;
        let path = store.path().to_path_buf();
        let name = name.to_string();
        let create = schema::create_tables(&name, SHADOW)?;
        let conn = tokio::task::spawn_blocking(move || -> ReadResult<Connection> {
            let conn = open_writer(&path).map_err(backend)?;
            // The store's checkpointer copies the WAL back beside this connection, on the other
            // core; this connection's own automatic checkpoint (inside a commit, with the rebuild
            // waiting) only bounds the WAL, at 1 GiB of 8 KiB pages. At SQLite's default, and at
            // 128 MiB, a rebuild spent a fifth of its time in those checkpoints (ADR 11, ADR 16,
            // BENCHMARKS.md 2026-12-03).
            conn.execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = {REBUILD_BACKSTOP_PAGES}; PRAGMA cache_size = -{};",
                registry_sqlite_pool::REBUILD_CACHE_KIB
            ))
            .map_err(backend)?;
            for t in tables {
                conn.execute_batch(&format!("DROP TABLE IF EXISTS {t}{SHADOW};"))
                    .map_err(backend)?;
            }
            conn.execute_batch(&create).map_err(backend)?;
            Ok(conn)
        })
        .await
        .map_err(|e| ReadStoreError::Backend(e.to_string()))??;
        Ok(Self {
            name,
            conn: Some(conn),
            pending: None,
            indexed: false,
            locked: false,
            given_up: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Waits for the write still running, if any; its error is this call's.
    async fn settle(&mut self) -> ReadResult<()> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let (conn, result) = pending
            .await
            .map_err(|e| ReadStoreError::Backend(e.to_string()))?;
        self.conn = Some(conn);
        result
    }

    /// The connection, once no write holds it.
    async fn take_conn(&mut self) -> ReadResult<Connection> {
        self.settle().await?;
        self.conn
            .take()
            .ok_or_else(|| ReadStoreError::Backend("the rebuild's connection was lost".into()))
    }

    /// Runs `f` on the rebuild's connection, on the blocking pool.
    async fn on_conn<R: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> ReadResult<R> + Send + 'static,
    ) -> ReadResult<R> {
        let mut conn = self.take_conn().await?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = f(&mut conn);
            (conn, result)
        })
        .await
        .map_err(|e| ReadStoreError::Backend(e.to_string()))?;
        self.conn = Some(conn);
        result
    }

    async fn ensure_indexes(&mut self) -> ReadResult<()> {
        if self.indexed {
            return Ok(());
        }
        let sql = schema::read_indexes(&self.name, SHADOW)?;
        self.on_conn(move |conn| {
            let tx = begin_now(conn)?;
            tx.execute_batch(&sql).map_err(backend)?;
            tx.commit().map_err(backend)
        })
        .await?;
        self.indexed = true;
        Ok(())
    }
}

#[async_trait]
impl Rebuild for SqliteRebuild {
    async fn write(&mut self, changes: Changes) -> ReadResult<()> {
        let mut conn = self.take_conn().await?;
        let given_up = self.given_up.clone();
        self.pending = Some(tokio::task::spawn_blocking(move || {
            let written = (|| {
                let tx = begin_now(&mut conn)?;
                rows::write(&tx, SHADOW, &changes)?;
                if given_up.load(Ordering::SeqCst) {
                    return tx.rollback().map_err(backend);
                }
                tx.commit().map_err(backend)
            })();
            drop_beside(changes);
            (conn, written)
        }));
        Ok(())
    }

    async fn current_families(&mut self, ids: &[FamilyId]) -> ReadResult<Vec<FoldedFamily>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Reading back by family needs the index, so it is made now rather than at the end.
        self.ensure_indexes().await?;
        let ids = ids.to_vec();
        self.on_conn(move |conn| rows::current_families(conn, SHADOW, &ids))
            .await
    }

    async fn index(&mut self) -> ReadResult<()> {
        self.settle().await?;
        self.ensure_indexes().await
    }

    async fn lock(&mut self) -> ReadResult<()> {
        // The live tables-to-be have their indexes whether or not the caller asked for `index`.
        self.ensure_indexes().await?;
        self.on_conn(|conn| conn.execute_batch("BEGIN IMMEDIATE").map_err(backend))
            .await?;
        self.locked = true;
        Ok(())
    }

    async fn swap(&mut self, tail: Changes, position: u64, version: i64) -> ReadResult<()> {
        if !self.locked {
            self.lock().await?;
        }
        let name = self.name.clone();
        let result = self
            .on_conn(move |conn| {
                let swapped = (|| -> ReadResult<()> {
                    rows::write(conn, SHADOW, &tail)?;
                    for t in schema::tables(&name)? {
                        conn.execute_batch(&format!(
                            "DROP TABLE IF EXISTS {t}; ALTER TABLE {t}{SHADOW} RENAME TO {t};"
                        ))
                        .map_err(backend)?;
                    }
                    rows::set_checkpoint(conn, &name, position, version)?;
                    conn.execute_batch("COMMIT").map_err(backend)
                })();
                if swapped.is_err() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                swapped
            })
            .await;
        self.locked = false;
        result
    }
}

/// Frees a written page on a thread of its own: a rebuild's last page holds every family, and
/// freeing them took the writer about 0.6 s that the index could have had (BENCHMARKS.md,
/// 2026-12-06).
fn drop_beside<T: Send + 'static>(value: T) {
    // Without a thread to be had, the failed spawn frees the value itself.
    let _ = std::thread::Builder::new()
        .name("rebuild-free".into())
        .spawn(move || drop(value));
}

impl Drop for SqliteRebuild {
    fn drop(&mut self) {
        // A write still running rolls back instead of committing. It holds the write lock from
        // its start, so a rebuild begun next (which first drops these shadow tables) either
        // waits for it, or got the lock first, after this flag was set.
        self.given_up.store(true, Ordering::SeqCst);
        // An abandoned swap: nothing of it is committed.
        if self.locked {
            if let Some(conn) = &self.conn {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
    }
}
