//! Certificate rows kept in memory by token, in front of a read store: a second scan of a QR
//! reads no database (ADR 24). Every other call goes to the store.
//!
//! What this process writes is never answered from an older kept row once the write is
//! reported: a batch (or a swap) evicts its tokens (or everything) before it returns, and while
//! it runs no lookup keeps what it read. A checkpoint read that finds the certificate view's
//! checkpoint (position or version) other than this process's last batch left it empties the
//! cache before it answers: a command waiting on the checkpoint, and the runner's next step, see
//! another process's rebuild that way. Until such a read, a row another process changed may
//! still be answered from memory (the runner reads the checkpoints at least once a second). So
//! use this only in front of a store no other process applies batches to (`!shared()`).
//!
//! Bounded (`capacity` rows; 0 keeps none), with its figures for `/metrics`.

use crate::{
    Applied, Batch, CacheFigures, CertificateRow, Changes, Checkpoint, FoldedFamily, HistoryRow,
    ReadResult, ReadStore, Rebuild, Search, SearchPage, CERTIFICATE_VIEW,
};
use async_trait::async_trait;
use registry_domain::{CertificateId, FamilyId};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

type Rows = quick_cache::sync::Cache<CertificateId, Arc<CertificateRow>>;

/// The default number of rows kept: about 45 MB of rows of a family of five (20,000 until
/// 2026-12-04, when the encoded verify answers took part of the memory; ADR 25).
pub const DEFAULT_CAPACITY: usize = 15_000;

/// What the cache's name is in `/metrics`.
const CACHE_NAME: &str = "certificate_rows";

/// A checkpoint's position and code version.
type Mark = (u64, i64);

#[derive(Debug, Default)]
struct Bookkeeping {
    /// Moves at the start and the end of every write and at every emptying: a lookup keeps its
    /// row only if it did not move while the lookup read the store.
    epoch: u64,
    /// Writes of this process running now (no lookup keeps a row meanwhile).
    writing: usize,
    /// The certificate view's checkpoint after this process's last write (`None`: not known).
    applied_to: Option<Mark>,
}

#[derive(Debug)]
struct Kept {
    /// `None` when the configured size is 0.
    rows: Option<Rows>,
    books: Mutex<Bookkeeping>,
}

impl Kept {
    fn books(&self) -> MutexGuard<'_, Bookkeeping> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn clear(&self, books: &mut Bookkeeping) {
        books.epoch += 1;
        if let Some(rows) = &self.rows {
            rows.clear();
        }
    }

    /// Keeps `row`, read since `epoch`, if nothing was written meanwhile.
    fn keep(&self, epoch: u64, row: &Arc<CertificateRow>) {
        let books = self.books();
        if let Some(rows) = &self.rows {
            if books.writing == 0 && books.epoch == epoch {
                rows.insert(row.token_id, row.clone());
            }
        }
    }

    fn start_write(self: &Arc<Self>) -> Write {
        let mut books = self.books();
        books.epoch += 1;
        books.writing += 1;
        Write {
            kept: self.clone(),
            done: false,
        }
    }
}

/// A write of this process in flight. Ended with [`Write::end`]; dropped midway (its future
/// given up), it empties the cache, since the write may have committed.
struct Write {
    kept: Arc<Kept>,
    done: bool,
}

impl Write {
    /// Evicts `tokens` (all, if `None`) and records where the write left the checkpoint
    /// (`None`: not known, the next checkpoint read decides).
    fn end(mut self, tokens: Option<&[CertificateId]>, applied_to: Option<Mark>) {
        self.done = true;
        let mut books = self.kept.books();
        books.epoch += 1;
        match (tokens, &self.kept.rows) {
            (Some(tokens), Some(rows)) => tokens.iter().for_each(|token| {
                rows.remove(token);
            }),
            (Some(_), None) => {}
            (None, _) => self.kept.clear(&mut books),
        }
        books.applied_to = applied_to;
        books.writing -= 1;
    }
}

impl Drop for Write {
    fn drop(&mut self) {
        if !self.done {
            let mut books = self.kept.books();
            self.kept.clear(&mut books);
            books.applied_to = None;
            books.writing -= 1;
        }
    }
}

/// A read store with a bounded cache of certificate rows by token.
#[derive(Debug)]
pub struct CachedCertificates {
    inner: Arc<dyn ReadStore>,
    kept: Arc<Kept>,
}

impl CachedCertificates {
    pub fn new(inner: Arc<dyn ReadStore>, capacity: usize) -> Self {
        Self {
            inner,
            kept: Arc::new(Kept {
                rows: (capacity > 0).then(|| Rows::new(capacity)),
                books: Mutex::new(Bookkeeping::default()),
            }),
        }
    }
}

#[async_trait]
impl ReadStore for CachedCertificates {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }

    fn shared(&self) -> bool {
        self.inner.shared()
    }

    async fn ping(&self) -> ReadResult<()> {
        self.inner.ping().await
    }

    async fn checkpoints(&self) -> ReadResult<Vec<Checkpoint>> {
        let checkpoints = self.inner.checkpoints().await?;
        let stored = checkpoints
            .iter()
            .find(|c| c.name == CERTIFICATE_VIEW)
            .map(|c| (c.position, c.version));
        let mut books = self.kept.books();
        if stored != books.applied_to {
            // Moved by someone else (a rebuild in another process), by a write of this process
            // not ended yet, or first seen: what is kept may be older than the store.
            self.kept.clear(&mut books);
            if books.writing == 0 {
                books.applied_to = stored;
            }
        }
        Ok(checkpoints)
    }

    async fn create_projection(&self, name: &str, version: i64) -> ReadResult<()> {
        self.inner.create_projection(name, version).await
    }

    async fn current_families(&self, ids: &[FamilyId]) -> ReadResult<Vec<FoldedFamily>> {
        self.inner.current_families(ids).await
    }

    async fn apply(&self, batch: Batch) -> ReadResult<Applied> {
        let moved_to = batch
            .moves
            .iter()
            .find(|m| m.projection == CERTIFICATE_VIEW)
            .map(|m| (m.to, m.version));
        let tokens: Vec<CertificateId> = batch
            .changes
            .certificates
            .iter()
            .map(|r| r.token_id)
            .collect();
        let write = self.kept.start_write();
        let result = self.inner.apply(batch).await;
        // Evicted whatever happened: an error may still have committed.
        let applied_to = match result {
            Ok(Applied::Done) => moved_to,
            _ => None,
        };
        write.end(Some(&tokens), applied_to);
        result
    }

    async fn begin_rebuild(&self, name: &str) -> ReadResult<Box<dyn Rebuild>> {
        let inner = self.inner.begin_rebuild(name).await?;
        Ok(Box::new(CachedRebuild {
            inner,
            kept: self.kept.clone(),
            certificates: name == CERTIFICATE_VIEW,
        }))
    }

    async fn lead(&self) -> bool {
        self.inner.lead().await
    }

    async fn certificate_by_token(
        &self,
        token: CertificateId,
    ) -> ReadResult<Option<CertificateRow>> {
        Ok(self
            .shared_certificate_by_token(token)
            .await?
            .map(|row| CertificateRow::clone(&row)))
    }

    async fn shared_certificate_by_token(
        &self,
        token: CertificateId,
    ) -> ReadResult<Option<Arc<CertificateRow>>> {
        let Some(rows) = &self.kept.rows else {
            return Ok(self.inner.certificate_by_token(token).await?.map(Arc::new));
        };
        if let Some(row) = rows.get(&token) {
            return Ok(Some(row));
        }
        let epoch = self.kept.books().epoch;
        let found = self.inner.certificate_by_token(token).await?.map(Arc::new);
        if let Some(row) = &found {
            self.kept.keep(epoch, row);
        }
        Ok(found)
    }

    async fn certificate_of_family(&self, family: FamilyId) -> ReadResult<Option<CertificateRow>> {
        self.inner.certificate_of_family(family).await
    }

    async fn history(&self, family: FamilyId) -> ReadResult<Vec<HistoryRow>> {
        self.inner.history(family).await
    }

    async fn search(&self, search: &Search) -> ReadResult<SearchPage> {
        self.inner.search(search).await
    }

    async fn scrub(&self) -> ReadResult<()> {
        self.inner.scrub().await
    }

    async fn dump_certificates(&self) -> ReadResult<Vec<CertificateRow>> {
        self.inner.dump_certificates().await
    }

    async fn dump_history(&self) -> ReadResult<Vec<HistoryRow>> {
        self.inner.dump_history().await
    }

    async fn dump_search_keys(&self) -> ReadResult<Vec<(String, String, FamilyId)>> {
        self.inner.dump_search_keys().await
    }

    fn cache(&self) -> Option<CacheFigures> {
        let (capacity, entries, hits, misses) = self.kept.rows.as_ref().map_or((0, 0, 0, 0), |c| {
            (c.capacity(), c.len(), c.hits(), c.misses())
        });
        Some(CacheFigures {
            name: CACHE_NAME,
            capacity,
            entries,
            hits,
            misses,
        })
    }
}

/// A rebuild whose swap empties the cache (every row may have been rewritten).
struct CachedRebuild {
    inner: Box<dyn Rebuild>,
    kept: Arc<Kept>,
    /// A rebuild of the certificate view (another projection's swap writes no certificate).
    certificates: bool,
}

#[async_trait]
impl Rebuild for CachedRebuild {
    async fn write(&mut self, changes: Changes) -> ReadResult<()> {
        self.inner.write(changes).await
    }

    async fn current_families(&mut self, ids: &[FamilyId]) -> ReadResult<Vec<FoldedFamily>> {
        self.inner.current_families(ids).await
    }

    async fn index(&mut self) -> ReadResult<()> {
        self.inner.index().await
    }

    async fn lock(&mut self) -> ReadResult<()> {
        self.inner.lock().await
    }

    async fn swap(&mut self, tail: Changes, position: u64, version: i64) -> ReadResult<()> {
        if !self.certificates {
            return self.inner.swap(tail, position, version).await;
        }
        let write = self.kept.start_write();
        let result = self.inner.swap(tail, position, version).await;
        let applied_to = result.is_ok().then_some((position, version));
        write.end(None, applied_to);
        result
    }
}
