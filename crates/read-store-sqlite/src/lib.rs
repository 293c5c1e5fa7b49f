//! The embedded read store: the projections' rows, their checkpoints and the access tokens in one
//! SQLite file, through rusqlite.
//!
//! Why a crate of its own: it is one of the read store's backends (`registry-read-store`); only
//! the binary picks it. Writes go through one connection, on tokio's blocking pool; reads through
//! a small set of read-only connections (`registry-sqlite-pool`), the point lookups of a QR scan
//! and a token check on the calling thread (a hand-off would cost more than the lookup).

mod access;
mod family_text;
mod insert;
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
use registry_sqlite_pool::{configure, Checkpointer, ReadPool, BACKSTOP_PAGES};
use rows::backend;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

/// The SQLite read store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SqliteReadStore {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: ReadPool,
    /// Copies the WAL back into the file beside the writer, not inside its commits.
    _checkpointer: Arc<Checkpointer>,
}

pub use registry_sqlite_pool::path_of;

/// Opens a read-write connection with the read store's settings.
pub(crate) fn open_writer(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // 8 KiB pages (set before WAL, so only a new file takes them). A live batch writes each
    // page it dirties to the WAL whole, and a grant's random keys (certificate id, number,
    // names) dirty a leaf each: with 16 KiB pages the WAL traffic of a steady 1,000 commands/s
    // held up the event store's fsyncs (lag median 93 ms, p99 ~460 ms); 8 KiB pages brought the
    // median to 2-3 ms and cost a rebuild about 2% (4 KiB: 13%). BENCHMARKS.md, ADR 16.
    conn.execute_batch("PRAGMA page_size = 8192;")?;
    // The read store can always be rebuilt from the log, and its checkpoint commits with its
    // rows, so NORMAL (no fsync per commit) is safe here. The WAL shrinks back to 64 MiB when
    // reset after a rebuild made it large.
    configure(&conn, "NORMAL")?;
    // What a live batch deletes or rewrites (an erased family's rows) is overwritten in the file,
    // freed pages included, so erased data does not linger in it (ADR 19). A rebuild's own
    // connection leaves this off: dropping the old tables would write every freed page again.
    conn.execute_batch("PRAGMA secure_delete = ON;")?;
    // The WAL is copied back by a checkpointer beside the writer (`Checkpointer`); the writer's
    // own automatic checkpoint is a backstop. The WAL shrinks back to 64 MiB when reset.
    conn.execute_batch(&format!(
        "PRAGMA journal_size_limit = 67108864; PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES};"
    ))?;
    Ok(conn)
}

impl SqliteReadStore {
    /// Opens (or creates) the store at a `sqlite:PATH` URL or a plain path.
    pub async fn open(url: &str) -> ReadResult<Self> {
        let path = path_of(url);
        let opened = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || -> ReadResult<(Connection, Checkpointer)> {
                if let Some(parent) = path.parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent)
                            .map_err(|e| ReadStoreError::Backend(e.to_string()))?;
                    }
                }
                let conn = open_writer(&path).map_err(backend)?;
                schema::migrate(&conn).map_err(backend)?;
                let checkpointer = Checkpointer::spawn(&path, "NORMAL").map_err(backend)?;
                Ok((conn, checkpointer))
            })
            .await
            .map_err(|e| ReadStoreError::Backend(e.to_string()))??
        };
        let (writer, checkpointer) = opened;
        Ok(Self {
            readers: ReadPool::new(path.clone()),
            path,
            writer: Arc::new(Mutex::new(writer)),
            _checkpointer: Arc::new(checkpointer),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the writer connection, on the blocking pool.
    pub(crate) async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> ReadResult<R> + Send + 'static,
    ) -> ReadResult<R> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = writer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| ReadStoreError::Backend(e.to_string()))?
    }

    /// Runs `f` on a read connection on the calling thread (point lookups by key).
    pub(crate) fn read_now<R>(
        &self,
        f: impl FnOnce(&Connection) -> ReadResult<R>,
    ) -> ReadResult<R> {
        let mut out = None;
        self.readers
            .read_now(|conn| {
                out = Some(f(conn));
                Ok(())
            })
            .map_err(|e| ReadStoreError::Backend(e.to_string()))?;
        out.unwrap_or_else(|| Err(ReadStoreError::Backend("no read connection".into())))
    }

    /// Runs `f` on a read connection on the blocking pool (longer reads).
    pub(crate) async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> ReadResult<R> + Send + 'static,
    ) -> ReadResult<R> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.read_now(f))
            .await
            .map_err(|e| ReadStoreError::Backend(e.to_string()))?
    }
}

/// `BEGIN IMMEDIATE`: take the write lock up front, so a transaction that reads and then writes
/// waits for another writer instead of failing.
pub(crate) fn begin_now(conn: &mut Connection) -> ReadResult<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)
}

#[async_trait]
impl ReadStore for SqliteReadStore {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    fn shared(&self) -> bool {
        false
    }

    async fn ping(&self) -> ReadResult<()> {
        self.read_now(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(backend))
    }

    async fn checkpoints(&self) -> ReadResult<Vec<Checkpoint>> {
        self.read_now(|conn| {
            let mut q = conn
                .prepare_cached(
                    "SELECT name, position, version FROM projection_checkpoints ORDER BY name",
                )
                .map_err(backend)?;
            let rows = q
                .query_map([], |r| {
                    Ok(Checkpoint {
                        name: r.get(0)?,
                        position: to_u64(r.get(1)?),
                        version: r.get(2)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
    }

    async fn create_projection(&self, name: &str, version: i64) -> ReadResult<()> {
        let name = name.to_string();
        self.write(move |conn| {
            let tables = schema::tables(&name)?;
            let tx = begin_now(conn)?;
            let exists: bool = tx
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [tables[0]],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(backend)?
                > 0;
            if !exists {
                tx.execute_batch(&schema::create_tables(&name, "")?)
                    .map_err(backend)?;
                tx.execute_batch(&schema::read_indexes(&name, "")?)
                    .map_err(backend)?;
            } else {
                // Tables a later version of a projection added (idempotent).
                tx.execute_batch(&schema::create_tables(&name, "")?)
                    .map_err(backend)?;
            }
            let known: i64 = tx
                .query_row(
                    "SELECT count(*) FROM projection_checkpoints WHERE name = ?1",
                    [&name],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if known == 0 {
                rows::set_checkpoint(&tx, &name, 0, version)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn current_families(&self, ids: &[FamilyId]) -> ReadResult<Vec<FoldedFamily>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Point lookups by an indexed key: on this thread.
        self.read_now(|conn| rows::current_families(conn, "", ids))
    }

    async fn apply(&self, batch: Batch) -> ReadResult<Applied> {
        self.write(move |conn| {
            let tx = begin_now(conn)?;
            for m in &batch.moves {
                if rows::checkpoint(&tx, m.projection)? != m.from {
                    return Ok(Applied::Moved);
                }
            }
            rows::write(&tx, "", &batch.changes)?;
            for m in &batch.moves {
                rows::set_checkpoint(&tx, m.projection, m.to, m.version)?;
            }
            tx.commit().map_err(backend)?;
            Ok(Applied::Done)
        })
        .await
    }

    async fn begin_rebuild(&self, name: &str) -> ReadResult<Box<dyn Rebuild>> {
        Ok(Box::new(rebuild::SqliteRebuild::begin(self, name).await?))
    }

    async fn lead(&self) -> bool {
        true
    }

    async fn certificate_by_token(
        &self,
        token: CertificateId,
    ) -> ReadResult<Option<CertificateRow>> {
        // A point lookup by the primary key: on this thread, its text built once.
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!("SELECT {CERTIFICATE_COLUMNS} FROM certificate_view WHERE token_id = ?1")
        });
        self.read_now(|conn| Ok(rows::certificates(conn, &SQL, [token.to_string()])?.pop()))
    }

    async fn certificate_of_family(&self, family: FamilyId) -> ReadResult<Option<CertificateRow>> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {CERTIFICATE_COLUMNS} FROM certificate_view \
                 WHERE family_id = ?1 AND is_current = 1"
            )
        });
        self.read_now(|conn| Ok(rows::certificates(conn, &SQL, [family.to_string()])?.pop()))
    }

    async fn history(&self, family: FamilyId) -> ReadResult<Vec<HistoryRow>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {HISTORY_COLUMNS} FROM family_history WHERE family_id = ?1 ORDER BY revision"
            );
            rows::histories(conn, &sql, [family.to_string()])
        })
        .await
    }

    async fn search(&self, search: &Search) -> ReadResult<SearchPage> {
        let (kind, value) = (search.key.kind(), search.key.value());
        let after = to_i64(search.after.unwrap_or(u64::MAX >> 1));
        let limit = i64::try_from(search.limit.max(1)).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let columns = CERTIFICATE_COLUMNS
                .split(", ")
                .map(|c| format!("c.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "SELECT {columns} FROM family_search s JOIN certificate_view c \
                 ON c.family_id = s.family_id AND c.is_current = 1 \
                 WHERE s.kind = ?1 AND s.value = ?2 AND c.position < ?3 \
                 ORDER BY c.position DESC LIMIT ?4"
            );
            let hits =
                rows::certificates(conn, &sql, rusqlite::params![kind, value, after, limit + 1])?;
            Ok(SearchPage::of_fetched(
                hits,
                usize::try_from(limit).unwrap_or(usize::MAX),
            ))
        })
        .await
    }

    async fn scrub(&self) -> ReadResult<()> {
        self.write(|conn| {
            // Copy every page back into the file and empty the WAL, which still holds the pages
            // as they were before the erasure. Readers can hold it up: try a few times.
            for _ in 0..50 {
                let busy: i64 = conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                    .map_err(backend)?;
                if busy == 0 {
                    return Ok(());
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(ReadStoreError::Backend(
                "the read store's WAL could not be emptied: readers held it".into(),
            ))
        })
        .await
    }

    async fn dump_certificates(&self) -> ReadResult<Vec<CertificateRow>> {
        self.read(|conn| {
            let sql =
                format!("SELECT {CERTIFICATE_COLUMNS} FROM certificate_view ORDER BY token_id");
            rows::certificates(conn, &sql, [])
        })
        .await
    }

    async fn dump_history(&self) -> ReadResult<Vec<HistoryRow>> {
        self.read(|conn| {
            let sql = format!("SELECT {HISTORY_COLUMNS} FROM family_history ORDER BY position");
            rows::histories(conn, &sql, [])
        })
        .await
    }

    async fn dump_search_keys(&self) -> ReadResult<Vec<(String, String, FamilyId)>> {
        self.read(|conn| {
            let mut q = conn
                .prepare("SELECT kind, value, family_id FROM family_search ORDER BY 1, 2, 3")
                .map_err(backend)?;
            let rows = q
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            rows.into_iter()
                .map(|(kind, value, family)| Ok((kind, value, parse_family(&family)?)))
                .collect()
        })
        .await
    }
}

/// A family id as stored in the search keys.
fn parse_family(id: &str) -> ReadResult<FamilyId> {
    uuid::Uuid::parse_str(id)
        .map(FamilyId)
        .map_err(|_| ReadStoreError::Corrupt("family_search: bad family_id".into()))
}
