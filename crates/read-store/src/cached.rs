//! Certificate rows kept in memory by token, in front of a read store: a second scan of a QR
//! reads no database (ADR 24). Every other call goes to the store.
//!
//! A kept row is never older than the store's: every batch this process applies evicts the
//! tokens it writes, a swapped-in rebuild empties the cache, and so does a checkpoint found
//! moved by someone else (another process's rebuild, seen at the runner's next step, within
//! about a second). A lookup that raced a write keeps nothing: the write moves `epoch`, and the
//! lookup drops its row when it sees the move. So use this only in front of a store no other
//! process applies batches to (`!shared()`): on a shared store the other servers' batches are not
//! seen here.
//!
//! Bounded (`capacity` rows; 0 keeps none), with its figures for `/metrics`.

use crate::{
    Applied, Batch, CacheFigures, CertificateRow, Changes, Checkpoint, FoldedFamily, HistoryRow,
    ReadResult, ReadStore, Rebuild, Search, SearchPage, CERTIFICATE_VIEW,
};
use async_trait::async_trait;
use registry_domain::{CertificateId, FamilyId};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

type Rows = quick_cache::sync::Cache<CertificateId, Arc<CertificateRow>>;

/// The default number of rows kept: about 60 MB of rows of a family of five.
pub const DEFAULT_CAPACITY: usize = 20_000;

/// What the cache's name is in `/metrics`.
pub const CACHE_NAME: &str = "certificate_rows";

#[derive(Debug)]
struct Kept {
    /// `None` when the configured size is 0.
    rows: Option<Rows>,
    /// Moves before every eviction: a lookup that saw it move keeps nothing.
    epoch: AtomicU64,
    /// The certificate view's checkpoint after this process's last batch (`None`: not known).
    applied_to: Mutex<Option<u64>>,
    /// Batches of this process being applied: a checkpoint read meanwhile may show one of
    /// them, not someone else's move.
    applying: AtomicUsize,
}

impl Kept {
    fn forget(&self, tokens: impl Iterator<Item = CertificateId>) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(rows) = &self.rows {
            for token in tokens {
                rows.remove(&token);
            }
        }
    }

    fn forget_all(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(rows) = &self.rows {
            rows.clear();
        }
    }

    fn applied_to(&self) -> std::sync::MutexGuard<'_, Option<u64>> {
        self.applied_to
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Counts a batch as being applied while alive (also when its future is dropped midway).
struct Applying<'a>(&'a Kept);

impl<'a> Applying<'a> {
    fn new(kept: &'a Kept) -> Self {
        kept.applying.fetch_add(1, Ordering::SeqCst);
        Self(kept)
    }
}

impl Drop for Applying<'_> {
    fn drop(&mut self) {
        self.0.applying.fetch_sub(1, Ordering::SeqCst);
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
                epoch: AtomicU64::new(0),
                applied_to: Mutex::new(None),
                applying: AtomicUsize::new(0),
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
            .map(|c| c.position);
        if self.kept.applying.load(Ordering::SeqCst) > 0 {
            return Ok(checkpoints);
        }
        let mut applied_to = self.kept.applied_to();
        if stored != *applied_to {
            // Moved by someone else (a rebuild in another process), or first seen: what is
            // kept may be older than the store.
            self.kept.forget_all();
            *applied_to = stored;
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
            .map(|m| m.to);
        let tokens: Vec<CertificateId> = batch
            .changes
            .certificates
            .iter()
            .map(|r| r.token_id)
            .collect();
        let _applying = Applying::new(&self.kept);
        let result = self.inner.apply(batch).await;
        // Evicted whatever happened: an error may still have committed.
        self.kept.forget(tokens.into_iter());
        {
            let mut applied_to = self.kept.applied_to();
            match (&result, moved_to) {
                (Ok(Applied::Done), Some(to)) if applied_to.is_some() => *applied_to = Some(to),
                (Ok(Applied::Done), _) => {}
                // Not known what the store holds now: the next checkpoint read decides.
                _ => *applied_to = None,
            }
        }
        result
    }

    async fn begin_rebuild(&self, name: &str) -> ReadResult<Box<dyn Rebuild>> {
        let inner = self.inner.begin_rebuild(name).await?;
        Ok(Box::new(CachedRebuild {
            inner,
            kept: self.kept.clone(),
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
        let epoch = self.kept.epoch.load(Ordering::SeqCst);
        let Some(row) = self.inner.certificate_by_token(token).await?.map(Arc::new) else {
            return Ok(None);
        };
        rows.insert(token, row.clone());
        // A write since the read began may have evicted before this insert: drop it then
        // (the write's own eviction comes after its epoch move, so one of the two removes a row
        // read before the write).
        if self.kept.epoch.load(Ordering::SeqCst) != epoch {
            rows.remove(&token);
        }
        Ok(Some(row))
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
        let result = self.inner.swap(tail, position, version).await;
        self.kept.forget_all();
        *self.kept.applied_to() = None;
        result
    }
}
