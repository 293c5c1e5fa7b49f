//! Read-only SQLite connections (rusqlite) kept for reuse, with an async `read` that runs the
//! blocking query on tokio's blocking pool.
//!
//! Why a crate of its own: both the embedded event store and the read store's QR lookup use it,
//! and neither should depend on the other. It exists because a statement through sqlx's SQLite
//! driver costs a hand-off to a worker thread and back (ADR 9), which dominated the hot paths.

mod checkpoint;

pub use checkpoint::{Checkpointer, BACKSTOP_PAGES, CHECKPOINT_EVERY};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The path of a `sqlite:PATH` / `sqlite://PATH` URL (any `?options` dropped), or of a plain
/// path: both SQLite stores take either.
pub fn path_of(url: &str) -> PathBuf {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    PathBuf::from(path.split('?').next().unwrap_or(path))
}

/// Idle connections kept open.
const MAX_IDLE: usize = 8;

/// The page cache of a live writing connection (KiB), one per file: new rows land at the right
/// edges of time-ordered keys, and the rest comes from the kernel's page cache.
const WRITER_CACHE_KIB: u32 = 16 * 1024;
/// The page cache of a connection that rewrites a whole table (a rebuild), which lives only as
/// long as the rebuild: `PRAGMA cache_size = -REBUILD_CACHE_KIB`.
pub const REBUILD_CACHE_KIB: u32 = 64 * 1024;
/// The page cache of a read connection (KiB): the B-trees' inner pages a QR lookup walks; leaf
/// pages come from the kernel's page cache, shared by every connection.
const READER_CACHE_KIB: u32 = 4 * 1024;

/// Settings every writing connection of the registry's SQLite files gets: wait for locks instead
/// of failing, WAL, a larger page cache and cached prepared statements. No memory-mapped I/O:
/// every connection maps the file anew and its pages count in the process's resident memory
/// once per mapping, while `pread` goes through the kernel's page cache, which the kernel shares
/// and reclaims (issue 17, BENCHMARKS.md).
pub fn configure(conn: &Connection, synchronous: &str) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(30))?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
         PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA mmap_size = 0;"
    ))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// A set of read-only connections to one file.
#[derive(Clone, Debug)]
pub struct ReadPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// A failed read: the connection or the query.
#[derive(Debug)]
pub enum ReadError {
    Sqlite(rusqlite::Error),
    Join(tokio::task::JoinError),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Sqlite(e) => e.fmt(f),
            ReadError::Join(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {}

impl ReadPool {
    /// Connections are opened on first use; the file must exist by then.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                path: path.into(),
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    fn with<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> rusqlite::Result<R> {
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let conn = match idle {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.inner.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                c.busy_timeout(Duration::from_secs(30))?;
                c.execute_batch(&format!(
                    "PRAGMA cache_size = -{READER_CACHE_KIB}; PRAGMA mmap_size = 0;"
                ))?;
                c.set_prepared_statement_cache_capacity(64);
                c
            }
        };
        let result = f(&conn);
        let mut idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        result
    }

    /// Runs `f` on a read connection on the calling thread, for point lookups by key that take
    /// microseconds once the pages are cached (the QR scan): a hand-off to the blocking pool and
    /// back costs more than the lookup. Opening a connection (the first call, or after a burst)
    /// also happens here.
    pub fn read_now<R>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
    ) -> Result<R, ReadError> {
        self.with(f).map_err(ReadError::Sqlite)
    }

    /// Runs `f` on a read connection, on the blocking pool.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, ReadError> {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(ReadError::Join)?
            .map_err(ReadError::Sqlite)
    }
}
