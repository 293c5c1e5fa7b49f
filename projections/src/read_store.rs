//! The read store: SQLite or PostgreSQL through sqlx's `Any` driver, so the projection code is
//! written once. SQL here uses `$1` placeholders, which both databases accept.

use crate::ProjectionError;
use registry_sqlite_pool::ReadPool;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::time::Duration;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
/// Versions 1001 and up, beside the event store's in one `_sqlx_migrations` table when both live
/// in one database; each side ignores the other's versions.
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.ignore_missing = true;
    migrator
};

/// Which database holds the read models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool to the read-model database.
#[derive(Clone, Debug)]
pub struct ReadStore {
    pool: AnyPool,
    backend: Backend,
    /// On SQLite, direct read connections for the hot lookups (the QR scan, the token check).
    fast: Option<ReadPool>,
}

/// Turns a plain path into a `sqlite://` URL that creates the file if needed.
fn normalize_url(url: &str) -> (String, Backend) {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return (url.to_string(), Backend::Postgres);
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let query = if query.is_empty() {
        "mode=rwc".to_string()
    } else if query.contains("mode=") {
        query.to_string()
    } else {
        format!("{query}&mode=rwc")
    };
    (format!("sqlite://{path}?{query}"), Backend::Sqlite)
}

impl ReadStore {
    /// Connects to `sqlite:PATH`, a plain path, or `postgres://...`, and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self, ProjectionError> {
        sqlx::any::install_default_drivers();
        let (url, backend) = normalize_url(url);
        if backend == Backend::Sqlite {
            let path = url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap_or_default();
            if let Some(parent) = std::path::Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| ProjectionError::Store(e.to_string()))?;
                }
            }
        }
        let options = AnyConnectOptions::from_str(&url)?;
        if backend == Backend::Postgres {
            // A pool retries a refused connection until its acquire timeout and then says only
            // "pool timed out"; one plain connection first says why, within seconds.
            use sqlx::ConnectOptions;
            let probe = tokio::time::timeout(Duration::from_secs(10), options.connect())
                .await
                .map_err(|_| {
                    ProjectionError::Store("no answer from PostgreSQL within 10 s".into())
                })??;
            let _ = sqlx::Connection::close(probe).await;
        }
        let max = match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // The read store can always be rebuilt from the log, and its checkpoint
                        // commits with its rows, so NORMAL (no fsync per commit) is safe here.
                        // 16 KiB pages (set before WAL, so only a new file takes them): a
                        // certificate row is about 2.5 KiB and a history row 1 KiB, and a
                        // rebuild writes a quarter as many pages (1.27x faster; ADR 11). The
                        // WAL shrinks back to 64 MiB when reset after a rebuild made it large.
                        conn.execute(
                            "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; \
                             PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 30000; \
                             PRAGMA cache_size = -32768; PRAGMA journal_size_limit = 67108864;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let fast = (backend == Backend::Sqlite).then(|| {
            let path = url
                .trim_start_matches("sqlite://")
                .split('?')
                .next()
                .unwrap_or_default();
            ReadPool::new(path)
        });
        let store = Self {
            pool,
            backend,
            fast,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), ProjectionError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| ProjectionError::Store(e.to_string()))
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Direct read connections, on SQLite only.
    pub(crate) fn fast(&self) -> Option<&ReadPool> {
        self.fast.as_ref()
    }

    /// Each projection's checkpoint: `(name, position, version)`.
    pub async fn checkpoints(&self) -> Result<Vec<(String, u64, i64)>, ProjectionError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT name, position, CAST(version AS BIGINT) FROM projection_checkpoints ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(n, p, v)| (n, u64::try_from(p).unwrap_or(0), v))
            .collect())
    }

    /// One projection's checkpoint (0 when it never ran).
    pub async fn checkpoint(&self, name: &str) -> Result<u64, ProjectionError> {
        let p: Option<i64> =
            sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        Ok(p.and_then(|p| u64::try_from(p).ok()).unwrap_or(0))
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), ProjectionError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
