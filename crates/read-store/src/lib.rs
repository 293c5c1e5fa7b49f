//! The read store as one async trait: the rows the projections derive from the log, each
//! projection's checkpoint moved in the same transaction as its rows, rebuilds into shadow
//! tables swapped in at once, and the queries the API answers from.
//!
//! Why a crate of its own: as on the write side, the projections and the HTTP server depend on
//! this trait only; each database (`read-store-sqlite`, `read-store-postgres`) lives in its own
//! crate, both pass one contract suite (`read-store-tests`), and only the binary picks one from
//! the configured URL. The rows are plain values here; projections compute them without SQL.

mod cached;
pub mod codec;
mod rows;
mod search;

pub use cached::{CachedCertificates, DEFAULT_CAPACITY as CERTIFICATE_CACHE_DEFAULT};
pub use rows::{CertificateRow, FoldedFamily, HistoryRow};
pub use search::{normalize_name, Search, SearchKey, SearchPage, SEARCH_PAGE};

use async_trait::async_trait;
use registry_domain::{CertificateId, FamilyId};

/// The certificate view: one row per certificate token (and the family's search keys).
pub const CERTIFICATE_VIEW: &str = "certificate_view";
/// The family history: one row per event.
pub const FAMILY_HISTORY: &str = "family_history";
/// The status of every certificate row of a family whose personal data was erased: its QR
/// codes are no longer in the registry.
pub const ERASED: &str = "erased";
/// Every projection a read store keeps, in the order they are applied.
pub const PROJECTIONS: [&str; 2] = [CERTIFICATE_VIEW, FAMILY_HISTORY];

#[derive(Debug, thiserror::Error)]
pub enum ReadStoreError {
    /// The database failed (I/O, connection, a statement). Never contains personal data.
    #[error("read store: {0}")]
    Backend(String),
    /// A stored row could not be read back.
    #[error("read store: a stored row is unreadable: {0}")]
    Corrupt(String),
    /// A name the store does not keep.
    #[error("read store: no projection named {0:?}")]
    UnknownProjection(String),
}

pub type ReadResult<T> = Result<T, ReadStoreError>;

/// A projection's checkpoint: the last global position applied, and the code version that did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub name: String,
    pub position: u64,
    pub version: i64,
}

/// A family's search keys changing: the keys it is stored with (`before`: none if it was not
/// stored yet) and every key it is found by now (`after`). The projection knows both (it folded
/// the family from its stored row), so the store needs no index by family to replace them: it
/// deletes the keys of `before` not in `after` and adds those of `after` not in `before`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChange {
    pub family: FamilyId,
    pub before: Vec<SearchKey>,
    pub after: Vec<SearchKey>,
}

impl KeyChange {
    /// The keys of a family not stored before.
    pub fn new(family: FamilyId, after: Vec<SearchKey>) -> Self {
        Self {
            family,
            before: Vec::new(),
            after,
        }
    }

    /// The keys of a stored family, replacing the ones it was stored with.
    pub fn replacing(family: FamilyId, before: Vec<SearchKey>, after: Vec<SearchKey>) -> Self {
        Self {
            family,
            before,
            after,
        }
    }

    /// The keys as stored, `(kind, normalized value)`, each once: those of `before` the family no
    /// longer has (to delete), and those of `after` not stored yet (to insert). An unchanged key
    /// is in neither, so a write leaves its index page alone.
    pub fn diff(&self) -> (Vec<StoredKey>, Vec<StoredKey>) {
        let before = stored_keys(&self.before);
        let after = stored_keys(&self.after);
        let gone = before.difference(&after).cloned().collect();
        let added = after.difference(&before).cloned().collect();
        (gone, added)
    }
}

/// A search key as stored: its kind and normalized value.
pub type StoredKey = (&'static str, String);

/// Keys as stored, each once.
pub fn stored_keys(keys: &[SearchKey]) -> std::collections::BTreeSet<StoredKey> {
    keys.iter().map(|k| (k.kind(), k.value())).collect()
}

/// The rows one batch of events changes. A certificate row replaces the stored one only if it is
/// newer (its `position` is higher), so a re-delivered batch changes nothing; a family's search
/// keys change as [`KeyChange`] says; history rows are keyed by position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub certificates: Vec<CertificateRow>,
    pub search: Vec<KeyChange>,
    pub history: Vec<HistoryRow>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty() && self.search.is_empty() && self.history.is_empty()
    }

    pub fn extend(&mut self, other: Changes) {
        self.certificates.extend(other.certificates);
        self.search.extend(other.search);
        self.history.extend(other.history);
    }
}

/// One projection's checkpoint moving with a batch: from where its changes were computed, to
/// where they take it, with the code version that computed them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    pub projection: &'static str,
    pub from: u64,
    pub to: u64,
    pub version: i64,
}

/// What a live batch applies: its rows, and each projection's checkpoint move.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub moves: Vec<Move>,
    pub changes: Changes,
}

/// How a [`Batch`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// Someone else (a rebuild, another process) moved a checkpoint since the batch was read:
    /// nothing was written; start again from the stored checkpoints.
    Moved,
}

/// A cache's figures for `/metrics`: its size, what it holds, and how lookups went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheFigures {
    pub name: &'static str,
    pub capacity: u64,
    pub entries: usize,
    pub hits: u64,
    pub misses: u64,
}

/// The read store.
#[async_trait]
pub trait ReadStore: Send + Sync + std::fmt::Debug + 'static {
    /// `sqlite` or `postgres`, for logs.
    fn backend_name(&self) -> &'static str;

    /// Several processes may share this store (then a lease picks who applies).
    fn shared(&self) -> bool;

    /// Checks the database answers.
    async fn ping(&self) -> ReadResult<()>;

    /// Every stored checkpoint, by name.
    async fn checkpoints(&self) -> ReadResult<Vec<Checkpoint>>;

    /// Creates a projection's empty tables (with their indexes) and its checkpoint at 0, if
    /// missing.
    async fn create_projection(&self, name: &str, version: i64) -> ReadResult<()>;

    /// The current rows of these families, to fold new events onto.
    async fn current_families(&self, ids: &[FamilyId]) -> ReadResult<Vec<FoldedFamily>>;

    /// Applies a batch in one transaction, if every checkpoint is still at its move's `from`.
    async fn apply(&self, batch: Batch) -> ReadResult<Applied>;

    /// Starts rebuilding a projection into empty shadow tables beside the live ones.
    async fn begin_rebuild(&self, name: &str) -> ReadResult<Box<dyn Rebuild>>;

    /// Whether this process may apply events now (the lease on a shared store; always on a
    /// store of its own). A holder that dies loses it within about a second.
    async fn lead(&self) -> bool;

    async fn certificate_by_token(
        &self,
        token: CertificateId,
    ) -> ReadResult<Option<CertificateRow>>;

    /// The same row, shared: a cache in front of the store hands out the row it keeps without
    /// copying it (a QR scan reads it only).
    async fn shared_certificate_by_token(
        &self,
        token: CertificateId,
    ) -> ReadResult<Option<std::sync::Arc<CertificateRow>>> {
        Ok(self
            .certificate_by_token(token)
            .await?
            .map(std::sync::Arc::new))
    }

    /// The family's current certificate.
    async fn certificate_of_family(&self, family: FamilyId) -> ReadResult<Option<CertificateRow>>;

    /// The family's history rows, in stream order.
    async fn history(&self, family: FamilyId) -> ReadResult<Vec<HistoryRow>>;

    /// Families found by a search key, newest first, a page at a time (an index, never a scan).
    async fn search(&self, search: &Search) -> ReadResult<SearchPage>;

    /// After an erasure: makes the rows it rewrote gone from the database's files, not only from
    /// its tables (SQLite: `secure_delete` is on, and the WAL is checkpointed and truncated;
    /// PostgreSQL: `VACUUM` of the projections' tables).
    async fn scrub(&self) -> ReadResult<()>;

    /// Every certificate row, in token order (tests and benchmarks).
    async fn dump_certificates(&self) -> ReadResult<Vec<CertificateRow>>;

    /// Every history row, in position order (tests and benchmarks).
    async fn dump_history(&self) -> ReadResult<Vec<HistoryRow>>;

    /// Every stored search key as `(kind, value, family)`, in that order (tests).
    async fn dump_search_keys(&self) -> ReadResult<Vec<(String, String, FamilyId)>>;

    /// The figures of a cache in front of the store, if there is one.
    fn cache(&self) -> Option<CacheFigures> {
        None
    }
}

/// A rebuild of one projection into shadow tables. The live tables stay readable, and keep
/// following the log, until [`Rebuild::swap`].
#[async_trait]
pub trait Rebuild: Send {
    /// Writes rows into the shadow tables (in transactions of its own). It may return before the
    /// write commits (the caller projects its next page meanwhile): every later call waits for
    /// it first and returns its error, so nothing is swapped in that did not commit.
    async fn write(&mut self, changes: Changes) -> ReadResult<()>;

    /// The current rows of families written earlier, read from the shadow tables (a rebuild that
    /// outgrew its memory folds on from them).
    async fn current_families(&mut self, ids: &[FamilyId]) -> ReadResult<Vec<FoldedFamily>>;

    /// Creates the shadow tables' indexes (cheaper once the rows are in).
    async fn index(&mut self) -> ReadResult<()>;

    /// Holds off every live writer until [`Rebuild::swap`]: read the log's tail only after this,
    /// so an event a live runner applied before is in it, and one it applies after finds the
    /// checkpoint moved.
    async fn lock(&mut self) -> ReadResult<()>;

    /// Writes the tail's rows, replaces the live tables with the shadow ones and sets the
    /// checkpoint, in the transaction [`Rebuild::lock`] began.
    async fn swap(&mut self, tail: Changes, position: u64, version: i64) -> ReadResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(last_name: &str, born: (i32, u32, u32)) -> SearchKey {
        SearchKey::Member {
            last_name: last_name.into(),
            birth_date: chrono::NaiveDate::from_ymd_opt(born.0, born.1, born.2).unwrap(),
        }
    }

    #[test]
    fn given_a_corrected_surname_when_diffed_then_only_that_key_goes_and_comes() {
        let family = FamilyId(uuid::Uuid::from_u128(7));
        let number = SearchKey::CertificateNumber("77-0007".into());
        let change = KeyChange::replacing(
            family,
            vec![number.clone(), member("Ёлкина", (1986, 4, 12))],
            // The same number written otherwise normalizes alike: not a change.
            vec![
                SearchKey::CertificateNumber(" 77-0007".into()),
                member("Соколова", (1986, 4, 12)),
            ],
        );
        let (gone, added) = change.diff();
        assert_eq!(gone, [("member", "елкина|1986-04-12".to_string())]);
        assert_eq!(added, [("member", "соколова|1986-04-12".to_string())]);
    }

    #[test]
    fn given_a_family_not_stored_before_when_diffed_then_every_key_comes_once() {
        let family = FamilyId(uuid::Uuid::from_u128(8));
        let key = member("Орлова", (1990, 1, 2));
        let (gone, added) = KeyChange::new(family, vec![key.clone(), key]).diff();
        assert!(gone.is_empty());
        assert_eq!(added.len(), 1);
    }
}
