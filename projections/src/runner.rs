//! The projection runner: catch up from the checkpoints, then follow new events; rebuilds aside
//! and swaps; and the read-your-writes wait.

use crate::read_store::{Backend, ReadStore};
use crate::{to_i64, to_u64, Projection, ProjectionError};
use registry_store::{EventStore, RecordedEvent};
use sqlx::{AnyConnection, Connection};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Mutex};

/// Events per transaction while catching up.
pub const BATCH: usize = 2000;
/// A rebuild reads and commits this many batches at a time.
const REBUILD_PAGES: usize = 10;

/// Which set of tables a projection writes: the live ones or the shadow ones of a rebuild.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Live,
    Rebuild,
}

/// Where a rebuild stands, for progress bars.
#[derive(Clone, Copy, Debug, Default)]
pub struct RebuildProgress {
    pub position: u64,
    pub head: u64,
    pub events: u64,
}

/// Applies a set of projections, in one transaction per batch, from their checkpoints on.
pub struct ProjectionRunner {
    store: Arc<dyn EventStore>,
    read: ReadStore,
    projections: Vec<Arc<dyn Projection>>,
    applied: watch::Sender<u64>,
    /// The position the next batch starts from (one past the lowest checkpoint).
    next: Mutex<Option<u64>>,
    batch: usize,
    /// On PostgreSQL: the connection holding the projection lease, and when it was last checked.
    lease: Mutex<Option<(AnyConnection, std::time::Instant)>>,
    /// Runs when a rebuild's shadow tables are complete, just before it swaps them in (tests
    /// force interleavings with it).
    before_swap: Option<SwapHook>,
}

/// See [`ProjectionRunner::before_swap`].
pub type SwapHook =
    Arc<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A wrapper so the runner stays `Debug`.
struct HookDebug<'a>(&'a Option<SwapHook>);

/// The key of the projection lease (`pg_try_advisory_lock`): "regproj" in ASCII.
pub const LEASE_KEY: i64 = 0x0072_6567_7072_6f6a;
/// How often the lease holder checks that its lease connection is alive, and how often a standby
/// tries to take the lease: a dead holder is replaced within about this long.
pub const LEASE_CHECK: Duration = Duration::from_secs(1);

/// What the command path and the HTTP server hold: a way to wait until the projections have
/// applied a position.
#[derive(Clone, Debug)]
pub struct ProjectionHandle {
    applied: watch::Receiver<u64>,
    read: ReadStore,
    watched: &'static str,
}

impl ProjectionHandle {
    /// A handle that polls the read store (when the runner lives in another process).
    pub fn polling(read: ReadStore) -> Self {
        let (_tx, rx) = watch::channel(0);
        Self {
            applied: rx,
            read,
            watched: crate::certificate_view::NAME,
        }
    }

    /// Waits until the certificate view has applied `position`, at most `timeout`.
    pub async fn wait_applied(
        &self,
        position: u64,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut applied = self.applied.clone();
        loop {
            if *applied.borrow_and_update() >= position {
                return Ok(());
            }
            // The runner may live in another process, or this handle's runner may be gone.
            if self.read.checkpoint(self.watched).await? >= position {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(ProjectionError::Timeout);
            }
            // The runner that applies may live in another process: look at the read store often.
            let nap = (deadline - now).min(Duration::from_millis(10));
            tokio::select! {
                changed = applied.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(nap).await;
                    }
                }
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// The last position the local runner reported applied.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    pub fn read_store(&self) -> &ReadStore {
        &self.read
    }
}

/// Creates a projection's indexes on its shadow tables, in one transaction.
pub(crate) async fn create_rebuild_indexes(
    conn: &mut AnyConnection,
    backend: Backend,
    projection: &dyn Projection,
) -> Result<(), ProjectionError> {
    let mut tx = begin_immediate(conn, backend).await?;
    for sql in projection.create_indexes(backend, Target::Rebuild) {
        sqlx::query(&sql).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn begin_immediate(
    conn: &mut AnyConnection,
    backend: Backend,
) -> Result<sqlx::Transaction<'_, sqlx::Any>, sqlx::Error> {
    match backend {
        // Take the write lock up front: a deferred transaction that reads and then writes can
        // fail at once instead of waiting when another writer got there first.
        Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => Connection::begin(conn).await,
    }
}

impl ProjectionRunner {
    pub fn new(
        store: Arc<dyn EventStore>,
        read: ReadStore,
        projections: Vec<Arc<dyn Projection>>,
    ) -> Self {
        let (applied, _) = watch::channel(0);
        Self {
            store,
            read,
            projections,
            applied,
            next: Mutex::new(None),
            batch: BATCH,
            lease: Mutex::new(None),
            before_swap: None,
        }
    }

    /// Runs `hook` in every rebuild after the shadow tables are complete and before the swap
    /// (for tests that make the live runner apply events in that gap).
    #[doc(hidden)]
    pub fn before_swap(mut self, hook: SwapHook) -> Self {
        self.before_swap = Some(hook);
        self
    }

    /// Events per transaction (tests use small batches).
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    pub fn handle(&self) -> ProjectionHandle {
        ProjectionHandle {
            applied: self.applied.subscribe(),
            read: self.read.clone(),
            watched: crate::certificate_view::NAME,
        }
    }

    pub fn projections(&self) -> &[Arc<dyn Projection>] {
        &self.projections
    }

    /// Creates missing tables and checkpoints; rebuilds a projection whose stored version differs
    /// from its code.
    pub async fn prepare(&self) -> Result<(), ProjectionError> {
        let backend = self.read.backend();
        let stored: HashMap<String, i64> = self
            .read
            .checkpoints()
            .await?
            .into_iter()
            .map(|(name, _, version)| (name, version))
            .collect();
        let mut stale = Vec::new();
        // A new projection over a log that already holds events is built by a rebuild, which
        // folds in memory and writes each row once, instead of batch by batch. (On PostgreSQL
        // several servers may start at once and share the read store, so there it catches up
        // through the leased runner instead.)
        let log_has_events = backend == Backend::Sqlite && self.store.head().await? > 0;
        let mut conn = self.read.pool().acquire().await?;
        for p in &self.projections {
            match stored.get(p.name()) {
                Some(v) if *v == p.version() => {
                    for sql in p.create_tables(backend, Target::Live) {
                        sqlx::query(&sql).execute(&mut *conn).await?;
                    }
                }
                Some(v) => {
                    tracing::warn!(
                        projection = p.name(),
                        stored = v,
                        code = p.version(),
                        "projection version changed; rebuilding"
                    );
                    stale.push(p.name());
                }
                None if log_has_events => {
                    tracing::info!(projection = p.name(), "new projection; building it");
                    stale.push(p.name());
                }
                None => {
                    let mut tx = begin_immediate(&mut conn, backend).await?;
                    for sql in p
                        .create_tables(backend, Target::Live)
                        .into_iter()
                        .chain(p.create_indexes(backend, Target::Live))
                    {
                        sqlx::query(&sql).execute(&mut *tx).await?;
                    }
                    write_checkpoint(&mut tx, p.as_ref(), 0).await?;
                    tx.commit().await?;
                }
            }
        }
        drop(conn);
        if !stale.is_empty() {
            self.rebuild(&stale, |_| {}).await?;
        }
        Ok(())
    }

    async fn lowest_checkpoint(&self) -> Result<u64, ProjectionError> {
        let stored: HashMap<String, u64> = self
            .read
            .checkpoints()
            .await?
            .into_iter()
            .map(|(name, position, _)| (name, position))
            .collect();
        Ok(self
            .projections
            .iter()
            .map(|p| stored.get(p.name()).copied().unwrap_or(0))
            .min()
            .unwrap_or(0))
    }

    /// Applies at most one batch. Returns how many events were read (0: caught up).
    pub async fn step(&self) -> Result<usize, ProjectionError> {
        let mut next = self.next.lock().await;
        let from = match *next {
            Some(n) => n,
            None => self.lowest_checkpoint().await? + 1,
        };
        let events = self.store.read_all(from, self.batch).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            *next = Some(from);
            self.applied.send_if_modified(|a| {
                let moved = *a != from - 1;
                *a = from - 1;
                moved
            });
            return Ok(0);
        };
        let backend = self.read.backend();
        let mut conn = self.read.pool().acquire().await?;
        let mut tx = begin_immediate(&mut conn, backend).await?;
        let checkpoints = read_checkpoints(&mut tx, backend, &self.projections).await?;
        let lowest = checkpoints.values().copied().min().unwrap_or(0);
        if lowest + 1 != from {
            // Someone else (a rebuild, another process) moved the checkpoints: start over there.
            tx.rollback().await?;
            *next = Some(lowest + 1);
            return Ok(events.len());
        }
        for p in &self.projections {
            let done = checkpoints.get(p.name()).copied().unwrap_or(0);
            let fresh: &[RecordedEvent] = {
                let start = events.partition_point(|e| e.position <= done);
                &events[start..]
            };
            if !fresh.is_empty() {
                p.apply(&mut tx, backend, Target::Live, fresh).await?;
            }
            write_checkpoint(&mut tx, p.as_ref(), last.max(done)).await?;
        }
        tx.commit().await?;
        *next = Some(last + 1);
        self.applied.send_if_modified(|a| {
            let moved = *a < last;
            if moved {
                *a = last;
            }
            moved
        });
        Ok(events.len())
    }

    /// Applies batches until the projections have reached the log's head as it was at the call.
    pub async fn catch_up(&self) -> Result<(), ProjectionError> {
        let head = self.store.head().await?;
        loop {
            let read = self.step().await?;
            if read == 0 || *self.applied.borrow() >= head {
                return Ok(());
            }
        }
    }

    /// Whether this runner may apply events now. On SQLite there is one process: always. On
    /// PostgreSQL several servers share the read store and exactly one holds the lease (a
    /// session advisory lock on a connection of its own); when its process dies the connection
    /// closes, the lock goes, and a standby takes it within [`LEASE_CHECK`].
    pub async fn lead(&self) -> bool {
        if self.read.backend() == Backend::Sqlite {
            return true;
        }
        let mut lease = self.lease.lock().await;
        if let Some((conn, checked)) = lease.as_mut() {
            if checked.elapsed() < LEASE_CHECK {
                return true;
            }
            if sqlx::query("SELECT 1").execute(&mut *conn).await.is_ok() {
                *checked = std::time::Instant::now();
                return true;
            }
            tracing::warn!("lost the projection lease");
            *lease = None;
            return false;
        }
        let Ok(pooled) = self.read.pool().acquire().await else {
            return false;
        };
        let mut conn = pooled.detach();
        let taken: Result<bool, _> = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(LEASE_KEY)
            .fetch_one(&mut conn)
            .await;
        if matches!(taken, Ok(true)) {
            tracing::info!("took the projection lease; applying events");
            *lease = Some((conn, std::time::Instant::now()));
            *self.next.lock().await = None;
            true
        } else {
            false
        }
    }

    /// Catches up, then follows new events until `shutdown` resolves. Errors are logged and
    /// retried with a growing pause; they never stop the runner. On PostgreSQL only the lease
    /// holder applies; the others stand by.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut pause = Duration::from_millis(50);
        let mut standing_by = false;
        loop {
            if !self.lead().await {
                if !standing_by {
                    tracing::info!("another process holds the projection lease; standing by");
                    standing_by = true;
                }
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(LEASE_CHECK) => {}
                }
                continue;
            }
            standing_by = false;
            let step = tokio::select! {
                () = &mut shutdown => return,
                step = self.step() => step,
            };
            match step {
                Ok(0) => {
                    pause = Duration::from_millis(50);
                    let at = *self.applied.borrow();
                    tokio::select! {
                        () = &mut shutdown => return,
                        _ = self.store.wait_for_events(at, Duration::from_secs(1)) => {}
                    }
                }
                Ok(_) => pause = Duration::from_millis(50),
                Err(e) => {
                    tracing::error!(error = %e, "projection batch failed; retrying");
                    *self.next.lock().await = None;
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Rebuilds the named projections from the whole log into shadow tables, then swaps them for
    /// the live ones in one transaction. The live views stay readable (and keep following) all
    /// along.
    pub async fn rebuild(
        &self,
        names: &[&str],
        progress: impl Fn(RebuildProgress),
    ) -> Result<u64, ProjectionError> {
        let mut chosen = Vec::new();
        for name in names {
            let p = self
                .projections
                .iter()
                .find(|p| p.name() == *name)
                .ok_or_else(|| ProjectionError::UnknownProjection((*name).to_string()))?;
            chosen.push(p.clone());
        }
        let backend = self.read.backend();
        let mut conn = self.read.pool().acquire().await?;
        for p in &chosen {
            for t in p.tables() {
                sqlx::query(&format!("DROP TABLE IF EXISTS {t}_rebuild"))
                    .execute(&mut *conn)
                    .await?;
            }
            for sql in p.create_tables(backend, Target::Rebuild) {
                sqlx::query(&sql).execute(&mut *conn).await?;
            }
        }
        // One reader of the log, and one task per projection with its own connection, so one
        // folds in memory while another writes and a rebuild uses more than one core. The reader
        // stays up to two pages ahead of the slowest projection.
        let (report, mut reports) = tokio::sync::mpsc::unbounded_channel();
        let page = self.batch.saturating_mul(REBUILD_PAGES);
        let head = Arc::new(std::sync::atomic::AtomicU64::new(self.store.head().await?));
        // Set when a part fails, or when this future is dropped: every part checks it between
        // pages. Blocking threads cannot be aborted, so a failure waits for them to stop.
        let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
        let mut tasks = tokio::task::JoinSet::new();
        let mut feeds = Vec::new();
        for (i, p) in chosen.iter().enumerate() {
            let (feed, pages) = tokio::sync::mpsc::channel(2);
            feeds.push(feed);
            let job = RebuildJob {
                read: self.read.clone(),
                projection: p.clone(),
                pages,
                head: head.clone(),
                stop: stop.0.clone(),
            };
            let report = report.clone();
            tasks.spawn(async move {
                let done = job
                    .run(move |at| {
                        let _ = report.send((i, at));
                    })
                    .await;
                (Some(i), done)
            });
        }
        drop(report);
        let reader = LogReader {
            store: self.store.clone(),
            page,
            head,
            feeds,
            stop: stop.0.clone(),
        };
        tasks.spawn(async move {
            let read = reader.run().await.map(|()| RebuildProgress::default());
            (None, read)
        });
        let mut at = vec![RebuildProgress::default(); chosen.len()];
        let mut ended = vec![None; chosen.len()];
        let mut failure = None;
        loop {
            tokio::select! {
                Some((i, p)) = reports.recv() => {
                    at[i] = p;
                    progress(RebuildProgress {
                        position: at.iter().map(|a| a.position).min().unwrap_or(0),
                        head: at.iter().map(|a| a.head).max().unwrap_or(0),
                        events: at.iter().map(|a| a.events).min().unwrap_or(0),
                    });
                }
                joined = tasks.join_next() => {
                    let e = match joined {
                        None => break,
                        Some(Ok((Some(i), Ok(done)))) => {
                            ended[i] = Some(done);
                            continue;
                        }
                        Some(Ok((None, Ok(_)))) => continue,
                        Some(Ok((_, Err(e)))) => e,
                        Some(Err(e)) => ProjectionError::Store(format!("rebuild task failed: {e}")),
                    };
                    stop.0.store(true, Ordering::SeqCst);
                    // The first cause, not the other parts' "stopped".
                    if matches!(failure, None | Some(ProjectionError::Stopped)) {
                        failure = Some(e);
                    }
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let ended: Vec<RebuildProgress> = ended.into_iter().flatten().collect();
        let mut position = ended.iter().map(|a| a.position).min().unwrap_or(0);
        let mut count = ended.iter().map(|a| a.events).min().unwrap_or(0);
        let head = ended.iter().map(|a| a.head).max().unwrap_or(0);
        // The swap: the events each rebuild has not seen yet, then the shadow tables replace the
        // live ones. The tail is read only once the swap holds the live runners off (SQLite's
        // write lock; on PostgreSQL the checkpoint rows, which every runner's batch locks
        // first): an event a live runner applied before that is in the tail, and one it applies
        // after waits and then finds the checkpoints moved.
        if let Some(hook) = &self.before_swap {
            hook().await;
        }
        let mut tx = begin_immediate(&mut conn, backend).await?;
        read_checkpoints(&mut tx, backend, &self.projections).await?;
        let tail = self.store.read_all(position + 1, usize::MAX >> 1).await?;
        for (p, done) in chosen.iter().zip(&ended) {
            let start = tail.partition_point(|e| e.position <= done.position);
            if start < tail.len() {
                p.apply(&mut tx, backend, Target::Rebuild, &tail[start..])
                    .await?;
            }
        }
        count += tail.len() as u64;
        position = tail
            .last()
            .map_or(position, |e| e.position)
            .max(ended.iter().map(|a| a.position).max().unwrap_or(0));
        for p in &chosen {
            for t in p.tables() {
                sqlx::query(&format!("DROP TABLE IF EXISTS {t}"))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!("ALTER TABLE {t}_rebuild RENAME TO {t}"))
                    .execute(&mut *tx)
                    .await?;
            }
            write_checkpoint(&mut tx, p.as_ref(), position).await?;
        }
        tx.commit().await?;
        progress(RebuildProgress {
            position,
            head: head.max(position),
            events: count,
        });
        // This process's runner must restart from the new checkpoints.
        *self.next.lock().await = None;
        Ok(count)
    }
}

impl std::fmt::Debug for ProjectionRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("store", &self.store)
            .field("read", &self.read)
            .field("projections", &self.projections)
            .field("batch", &self.batch)
            .field("before_swap", &HookDebug(&self.before_swap))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for HookDebug<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// `Err(Stopped)` once the rebuild's stop flag is set.
fn go_on(stop: &AtomicBool) -> Result<(), ProjectionError> {
    if stop.load(Ordering::SeqCst) {
        Err(ProjectionError::Stopped)
    } else {
        Ok(())
    }
}

/// A rebuild's reader: the whole log, page by page, to every projection's job.
struct LogReader {
    store: Arc<dyn EventStore>,
    page: usize,
    /// The log's head when it looked last.
    head: Arc<std::sync::atomic::AtomicU64>,
    feeds: Vec<tokio::sync::mpsc::Sender<Page>>,
    stop: Arc<AtomicBool>,
}

/// A page of the log for a rebuild job; `None`: the log ends here. A job whose channel closes
/// without it stops with an error (the reader failed, or the rebuild was stopped), so it never
/// takes a partial log for the whole.
type Page = Option<Arc<Vec<RecordedEvent>>>;

impl LogReader {
    async fn run(self) -> Result<(), ProjectionError> {
        use std::sync::atomic::Ordering;
        let mut from = 1;
        loop {
            go_on(&self.stop)?;
            let events = Arc::new(self.store.read_all(from, self.page).await?);
            let Some(last) = events.last().map(|e| e.position) else {
                break;
            };
            self.head.fetch_max(last, Ordering::Relaxed);
            for feed in &self.feeds {
                if feed.send(Some(events.clone())).await.is_err() {
                    // That job failed; the rebuild reports its error.
                    return Ok(());
                }
            }
            from = last + 1;
            if events.len() < self.page {
                let head = self.store.head().await?;
                self.head.fetch_max(head, Ordering::Relaxed);
                if head <= last {
                    break;
                }
            }
        }
        for feed in &self.feeds {
            let _ = feed.send(None).await;
        }
        Ok(())
    }
}

/// The next page for a job, `None` at the end of the log; `Err(Stopped)` when the rebuild
/// stopped, or when the channel closed without the reader saying the log ended.
fn page_or_stop(
    received: Option<Page>,
    stop: &AtomicBool,
) -> Result<Option<Arc<Vec<RecordedEvent>>>, ProjectionError> {
    go_on(stop)?;
    received.ok_or(ProjectionError::Stopped)
}

/// One projection's part of a rebuild: the pages of the log, into its shadow tables.
struct RebuildJob {
    read: ReadStore,
    projection: Arc<dyn Projection>,
    pages: tokio::sync::mpsc::Receiver<Page>,
    head: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RebuildJob {
    /// Returns where it stopped (the log's head when the reader looked last).
    async fn run(
        mut self,
        progress: impl Fn(RebuildProgress) + Send + 'static,
    ) -> Result<RebuildProgress, ProjectionError> {
        let backend = self.read.backend();
        if let (Some(path), Some(rebuilder)) = (
            self.read.fast().map(|p| p.path().to_path_buf()),
            self.projection.sqlite_rebuilder(),
        ) {
            return tokio::task::spawn_blocking(move || {
                self.run_sqlite(&path, rebuilder, progress)
            })
            .await
            .map_err(|e| ProjectionError::Store(format!("rebuild task failed: {e}")))?;
        }
        let mut conn = self.read.pool().acquire().await?;
        let mut rebuilder = self.projection.rebuilder();
        let mut at = RebuildProgress::default();
        while let Some(events) = page_or_stop(self.pages.recv().await, &self.stop)? {
            match rebuilder.as_mut() {
                // A rebuilder opens its own transactions when it has something to write.
                Some(r) => r.feed(&mut conn, backend, &events).await?,
                None => {
                    let mut tx = begin_immediate(&mut conn, backend).await?;
                    self.projection
                        .apply(&mut tx, backend, Target::Rebuild, &events)
                        .await?;
                    tx.commit().await?;
                }
            }
            progress(self.advance(&mut at, &events));
        }
        // What the rebuilder still holds, then the indexes over the loaded rows.
        if let Some(r) = rebuilder.as_mut() {
            r.finish(&mut conn, backend).await?;
        }
        go_on(&self.stop)?;
        if !rebuilder.as_ref().is_some_and(|r| r.indexes_created()) {
            create_rebuild_indexes(&mut conn, backend, self.projection.as_ref()).await?;
        }
        Ok(self.advance(&mut at, &[]))
    }

    /// [`RebuildJob::run`] on SQLite through a direct connection, on a blocking thread.
    fn run_sqlite(
        mut self,
        path: &std::path::Path,
        mut rebuilder: Box<dyn crate::SqliteRebuilder>,
        progress: impl Fn(RebuildProgress),
    ) -> Result<RebuildProgress, ProjectionError> {
        // The file exists (the pool created the shadow tables in it): never create another.
        let mut conn = rusqlite::Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
                | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )?;
        // As the read store's pool (`ReadStore::connect`): the read store can be rebuilt.
        registry_sqlite_pool::configure(&conn, "NORMAL")?;
        // Each checkpoint ends with an fsync of the database file: with the default (every
        // 1,000 pages) a rebuild spent a fifth of its time in them. Up to 256 MiB of WAL with
        // the read store's 16 KiB pages (64 MiB with the 4 KiB pages of older read stores); the
        // WAL file shrinks back to 64 MiB when it is next reset.
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint = 16384; PRAGMA journal_size_limit = 67108864;",
        )?;
        let mut at = RebuildProgress::default();
        let started = std::time::Instant::now();
        while let Some(events) = page_or_stop(self.pages.blocking_recv(), &self.stop)? {
            rebuilder.feed(&mut conn, &events)?;
            progress(self.advance(&mut at, &events));
        }
        let fed = started.elapsed();
        rebuilder.finish(&mut conn)?;
        let finished = started.elapsed();
        go_on(&self.stop)?;
        if !rebuilder.indexes_created() {
            crate::create_indexes_sqlite(&mut conn, self.projection.as_ref())?;
        }
        tracing::info!(
            projection = self.projection.name(),
            events = at.events,
            fed_ms = fed.as_millis(),
            written_ms = finished.as_millis(),
            indexed_ms = started.elapsed().as_millis(),
            "rebuilt the shadow tables"
        );
        Ok(self.advance(&mut at, &[]))
    }

    /// Counts `events` as applied.
    fn advance(&self, at: &mut RebuildProgress, events: &[RecordedEvent]) -> RebuildProgress {
        if let Some(last) = events.last() {
            at.position = last.position;
            at.events += events.len() as u64;
        }
        at.head = self
            .head
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(at.position);
        *at
    }
}

/// The checkpoints, locked for this transaction: on PostgreSQL a second runner (one that lost its
/// lease without knowing yet) waits here, then sees the moved checkpoints and starts over, so no
/// batch is ever applied twice. On SQLite `BEGIN IMMEDIATE` already serializes writers.
async fn read_checkpoints(
    conn: &mut AnyConnection,
    backend: Backend,
    projections: &[Arc<dyn Projection>],
) -> Result<HashMap<String, u64>, ProjectionError> {
    let sql = match backend {
        Backend::Sqlite => "SELECT position FROM projection_checkpoints WHERE name = $1",
        Backend::Postgres => {
            "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE"
        }
    };
    let mut out = HashMap::new();
    for p in projections {
        let position: Option<i64> = sqlx::query_scalar(sql)
            .bind(p.name())
            .fetch_optional(&mut *conn)
            .await?;
        out.insert(p.name().to_string(), position.map_or(0, to_u64));
    }
    Ok(out)
}

async fn write_checkpoint(
    conn: &mut AnyConnection,
    projection: &dyn Projection,
    position: u64,
) -> Result<(), ProjectionError> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position, version, updated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET \
         position = excluded.position, version = excluded.version, updated_at = excluded.updated_at",
    )
    .bind(projection.name())
    .bind(to_i64(position))
    .bind(projection.version())
    .bind(chrono::Utc::now().to_rfc3339())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// How long a command waits for its events to show in the certificate view.
pub const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(5);

#[async_trait::async_trait]
impl registry_app::Visibility for ProjectionHandle {
    async fn wait_visible(&self, position: u64) -> Result<(), String> {
        self.wait_applied(position, VISIBILITY_TIMEOUT)
            .await
            .map_err(|e| e.to_string())
    }
}
