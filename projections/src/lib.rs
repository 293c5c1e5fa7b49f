//! Projections of the event log (DESIGN.md §4).
//!
//! Why a crate of its own: the read models are derived data with their own database (the read
//! store), their own schema and their own lifecycle (rebuilds); the command path and the HTTP
//! server only see the queries and the read-your-writes wait. The read store's database also
//! keeps the API access tokens (hashed), which are not derived from events and never rebuilt.
//!
//! A projection has a stable name and applies events in global order inside a read-store
//! transaction that also moves its checkpoint, so a crash or a re-delivery never applies an event
//! twice and never skips one. Rows also remember the last position applied to them.

mod access_tokens;
mod certificate_view;
mod family_history;
mod read_store;
mod runner;

pub use access_tokens::{token_hash, AccessToken, TOKEN_PREFIX};
pub use certificate_view::{CertificateRow, CertificateView};
pub use family_history::{reason_and_decision, FamilyHistory, HistoryRow};
pub use read_store::{Backend, ReadStore};
pub use runner::{ProjectionHandle, ProjectionRunner, RebuildProgress, SwapHook, Target};

use async_trait::async_trait;
use registry_store::RecordedEvent;
use sqlx::AnyConnection;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("read store: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("read store: {0}")]
    Store(String),
    #[error("event store: {0}")]
    EventStore(#[from] registry_store::StoreError),
    #[error("event at position {position} cannot be projected: {reason}")]
    BadEvent { position: u64, reason: String },
    #[error("no projection named {0:?}")]
    UnknownProjection(String),
    #[error("timed out waiting for the projections")]
    Timeout,
    #[error("the rebuild stopped: another part of it failed, or it was cancelled")]
    Stopped,
    #[error("{0}")]
    Injected(String),
}

impl From<rusqlite::Error> for ProjectionError {
    fn from(e: rusqlite::Error) -> Self {
        ProjectionError::Store(e.to_string())
    }
}

impl From<registry_sqlite_pool::ReadError> for ProjectionError {
    fn from(e: registry_sqlite_pool::ReadError) -> Self {
        ProjectionError::Store(e.to_string())
    }
}

/// A projection: a stable name, tables it owns, and a batch `apply` inside a transaction.
#[async_trait]
pub trait Projection: Send + Sync + std::fmt::Debug + 'static {
    /// Stable name, the key of its checkpoint.
    fn name(&self) -> &'static str;

    /// Version of the projection's code and schema; a stored checkpoint with another version
    /// makes the runner rebuild the projection.
    fn version(&self) -> i64;

    /// The statements creating the projection's tables for the given target, if missing.
    fn create_tables(&self, backend: Backend, target: Target) -> Vec<String>;

    /// The statements creating the tables' secondary indexes. They run once: right after a new
    /// projection's tables, or after a rebuild has written its rows (building an index from
    /// loaded rows is much cheaper than keeping it up to date through a bulk load).
    fn create_indexes(&self, _backend: Backend, _target: Target) -> Vec<String> {
        Vec::new()
    }

    /// A rebuild's own way to take the whole log (for instance folding in memory and writing
    /// each row once). `None`: the rebuild calls [`Projection::apply`] page by page.
    fn rebuilder(&self) -> Option<Box<dyn Rebuilder>> {
        None
    }

    /// On SQLite, the rebuild's writer over a direct connection (rusqlite), run on a thread of
    /// its own. `None`: the rebuild goes through [`Projection::rebuilder`] or `apply` as on
    /// PostgreSQL. (A row through sqlx's `Any` driver is converted twice and every statement
    /// crosses to the driver's worker thread and back: that was most of a rebuild's time.)
    fn sqlite_rebuilder(&self) -> Option<Box<dyn SqliteRebuilder>> {
        None
    }

    /// The projection's table names (live names), for swapping after a rebuild.
    fn tables(&self) -> &'static [&'static str];

    /// Applies events (in global order, all after the checkpoint) inside `conn`'s transaction.
    async fn apply(
        &self,
        conn: &mut AnyConnection,
        backend: Backend,
        target: Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError>;
}

/// What a rebuild feeds the whole log to, page after page in global order. It has a connection
/// of its own and opens a transaction whenever it writes to the shadow tables.
#[async_trait]
pub trait Rebuilder: Send {
    /// Takes the next events; may hold them and write later.
    async fn feed(
        &mut self,
        conn: &mut AnyConnection,
        backend: Backend,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError>;

    /// Writes whatever it still holds.
    async fn finish(
        &mut self,
        conn: &mut AnyConnection,
        backend: Backend,
    ) -> Result<(), ProjectionError>;

    /// It created the shadow tables' indexes itself (it needed them before the end).
    fn indexes_created(&self) -> bool {
        false
    }
}

/// [`Rebuilder`] for the SQLite read store through a direct connection: blocking calls, made on
/// a thread of the rebuild's own. It opens a transaction whenever it writes to the shadow tables.
pub trait SqliteRebuilder: Send {
    /// Takes the next events; may hold them and write later.
    fn feed(
        &mut self,
        conn: &mut rusqlite::Connection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError>;

    /// Writes whatever it still holds.
    fn finish(&mut self, conn: &mut rusqlite::Connection) -> Result<(), ProjectionError>;

    /// It created the shadow tables' indexes itself (it needed them before the end).
    fn indexes_created(&self) -> bool {
        false
    }
}

/// Starts a write transaction on a direct SQLite connection, taking the write lock up front
/// (as `runner::begin_immediate` does through sqlx).
pub(crate) fn begin_immediate_sqlite(
    conn: &mut rusqlite::Connection,
) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

/// Creates a projection's indexes on its shadow tables, in one transaction.
pub(crate) fn create_indexes_sqlite(
    conn: &mut rusqlite::Connection,
    projection: &dyn Projection,
) -> Result<(), ProjectionError> {
    let tx = begin_immediate_sqlite(conn)?;
    for sql in projection.create_indexes(Backend::Sqlite, runner::Target::Rebuild) {
        tx.execute_batch(&sql)?;
    }
    tx.commit()?;
    Ok(())
}

/// The default projections, in the order they are applied.
pub fn default_projections() -> Vec<std::sync::Arc<dyn Projection>> {
    vec![
        std::sync::Arc::new(CertificateView::default()),
        std::sync::Arc::new(FamilyHistory),
    ]
}

/// Builds `($1, $2, ...), (...)` for `rows` rows of `columns` values: numbered on PostgreSQL,
/// plain `?` on SQLite. (sqlx looks every numbered SQLite parameter up by name, and SQLite finds
/// a name by a linear scan, so a statement of n `$k` parameters costs O(n²) to bind: half of a
/// rebuild's time went there. Anonymous `?` parameters have no names to scan.)
pub(crate) fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 0..columns {
            if c > 0 {
                out.push(',');
            }
            match backend {
                Backend::Sqlite => out.push('?'),
                Backend::Postgres => {
                    out.push('$');
                    out.push_str(&n.to_string());
                }
            }
            n += 1;
        }
        out.push(')');
    }
    out
}

pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}
