//! Each family's data key, stored wrapped by the key-encryption key; destroyed on erasure.

use crate::kek::{DataKey, KeyEncryptionKey, KeyError};
use async_trait::async_trait;
use registry_domain::FamilyId;
use rusqlite::{params, Connection, OptionalExtension};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What the store holds for a family.
#[derive(Clone, Debug)]
pub enum KeyState {
    Present(DataKey),
    /// Destroyed by an erasure: its sealed fields read as erased, for ever.
    Destroyed,
    /// Never made (no sealed event of this family was written here).
    Missing,
}

/// The families' data keys. One backend today ([`SqliteFamilyKeys`], a file under `data/keys`).
#[async_trait]
pub trait FamilyKeys: Send + Sync + fmt::Debug + 'static {
    /// The family's key, made (and stored durably) on first use. `None` once it was destroyed.
    async fn key_for_append(&self, family: FamilyId) -> Result<Option<DataKey>, KeyError>;
    async fn key(&self, family: FamilyId) -> Result<KeyState, KeyError>;
    /// Destroys the family's key and records that it did: a destroyed key is never made again.
    /// Idempotent. Returns true when this call destroyed it.
    async fn destroy(&self, family: FamilyId) -> Result<bool, KeyError>;
}

/// Keys in a SQLite file (`data/keys/family-keys.db`), written with `secure_delete` so a
/// destroyed key's bytes are overwritten, and the WAL truncated after each destruction.
pub struct SqliteFamilyKeys {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    /// New keys waiting for the next group commit, and the lock one commit at a time takes.
    pending: Mutex<Vec<NewKey>>,
    writer: tokio::sync::Mutex<()>,
    kek: Arc<dyn KeyEncryptionKey>,
    cache: quick_cache::sync::Cache<FamilyId, Option<DataKey>>,
}

impl fmt::Debug for SqliteFamilyKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteFamilyKeys")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What a commit answers for one new key: whether the family's key was destroyed before, and
/// the wrapped key stored (this one, or one stored before it).
type Stored = (bool, Option<Vec<u8>>);

/// A family's new key, wrapped, and where its commit's answer goes.
struct NewKey {
    id: String,
    wrapped: Vec<u8>,
    reply: tokio::sync::oneshot::Sender<Result<Stored, KeyError>>,
}

/// Unwrapped keys kept in memory (about 100 bytes each).
pub const KEY_CACHE: usize = 100_000;
const CHECK: &[u8] = b"registry personal-data key check";

fn backend(e: rusqlite::Error) -> KeyError {
    KeyError::Backend(e.to_string())
}

fn aad(family: FamilyId) -> Vec<u8> {
    format!("family-key/{family}").into_bytes()
}

impl SqliteFamilyKeys {
    pub const FILE: &'static str = "family-keys.db";

    /// Opens (or creates) the key file and checks that `kek` is the key that wrapped its keys:
    /// a wrong key-encryption key is refused here, before anything is served.
    pub fn open(path: &Path, kek: Arc<dyn KeyEncryptionKey>) -> Result<Self, KeyError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS family_keys (
                 family_id TEXT PRIMARY KEY, wrapped BLOB NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS destroyed_keys (
                 family_id TEXT PRIMARY KEY, destroyed_at TEXT NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS kek_check (
                 id INTEGER PRIMARY KEY CHECK (id = 1), wrapped BLOB NOT NULL);",
        )
        .map_err(backend)?;
        let stored: Option<Vec<u8>> = conn
            .query_row("SELECT wrapped FROM kek_check WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(backend)?;
        let check = DataKey::from_bytes(&CHECK[..32]).ok_or(KeyError::BadKeyFile(path.into()))?;
        match stored {
            Some(wrapped) => {
                let opened = kek.unwrap(&wrapped, b"kek-check");
                if opened.map(|k| *k.as_bytes()) != Some(*check.as_bytes()) {
                    return Err(KeyError::WrongKek(path.to_path_buf()));
                }
            }
            None => {
                conn.execute(
                    "INSERT INTO kek_check (id, wrapped) VALUES (1, ?1)",
                    [kek.wrap(&check, b"kek-check")],
                )
                .map_err(backend)?;
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            conn: Arc::new(Mutex::new(conn)),
            pending: Mutex::new(Vec::new()),
            writer: tokio::sync::Mutex::new(()),
            kek,
            cache: quick_cache::sync::Cache::new(KEY_CACHE),
        })
    }

    /// Stores every key queued so far in one transaction (one fsync for all of them: a group
    /// commit, as the event store does), and answers each. A caller whose key a commit already
    /// took finds its answer waiting.
    async fn commit_pending(&self) -> Result<(), KeyError> {
        let _writer = self.writer.lock().await;
        let batch = std::mem::take(
            &mut *self
                .pending
                .lock()
                .map_err(|_| KeyError::Backend("the key store's queue was poisoned".into()))?,
        );
        if batch.is_empty() {
            return Ok(());
        }
        self.on_conn(move |conn| {
            let stored = (|| -> Result<Vec<Stored>, KeyError> {
                conn.execute_batch("BEGIN IMMEDIATE").map_err(backend)?;
                let mut out = Vec::with_capacity(batch.len());
                for new in &batch {
                    let destroyed = conn
                        .query_row(
                            "SELECT 1 FROM destroyed_keys WHERE family_id = ?1",
                            [&new.id],
                            |_| Ok(()),
                        )
                        .optional()
                        .map_err(backend)?
                        .is_some();
                    if destroyed {
                        out.push((true, None));
                        continue;
                    }
                    conn.execute(
                        "INSERT OR IGNORE INTO family_keys (family_id, wrapped) VALUES (?1, ?2)",
                        params![new.id, new.wrapped],
                    )
                    .map_err(backend)?;
                    let wrapped: Vec<u8> = conn
                        .query_row(
                            "SELECT wrapped FROM family_keys WHERE family_id = ?1",
                            [&new.id],
                            |r| r.get(0),
                        )
                        .map_err(backend)?;
                    out.push((false, Some(wrapped)));
                }
                // Durable before the first sealed event uses any of them (synchronous = FULL).
                conn.execute_batch("COMMIT").map_err(backend)?;
                Ok(out)
            })();
            match stored {
                Ok(out) => {
                    for (new, answer) in batch.into_iter().zip(out) {
                        let _ = new.reply.send(Ok(answer));
                    }
                }
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    for new in batch {
                        let _ = new.reply.send(Err(KeyError::Backend(e.to_string())));
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn on_conn<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, KeyError> + Send + 'static,
    ) -> Result<R, KeyError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn
                .lock()
                .map_err(|_| KeyError::Backend("the key store's lock was poisoned".into()))?;
            f(&conn)
        })
        .await
        .map_err(|e| KeyError::Backend(e.to_string()))?
    }

    fn unwrap(&self, family: FamilyId, wrapped: &[u8]) -> Result<DataKey, KeyError> {
        self.kek
            .unwrap(wrapped, &aad(family))
            .ok_or_else(|| KeyError::Unwrap(format!("family {family}")))
    }
}

/// The key cache's figures in `/metrics`, under `cache="family_keys"`.
const CACHE_LABEL: &str = "family_keys";

impl SqliteFamilyKeys {
    /// The cache's answer for a family (`Some(None)`: its key was destroyed), counted as a hit
    /// or a miss.
    fn cached(&self, family: FamilyId) -> Option<Option<DataKey>> {
        let found = self.cache.get(&family);
        let counter = if found.is_some() {
            "cache_hits_total"
        } else {
            "cache_misses_total"
        };
        metrics::counter!(counter, "cache" => CACHE_LABEL).increment(1);
        found
    }

    #[allow(clippy::cast_precision_loss)]
    fn remember(&self, family: FamilyId, key: Option<DataKey>) {
        self.cache.insert(family, key);
        metrics::gauge!("cache_entries", "cache" => CACHE_LABEL).set(self.cache.len() as f64);
        metrics::gauge!("cache_capacity_entries", "cache" => CACHE_LABEL)
            .set(self.cache.capacity() as f64);
    }
}

#[async_trait]
impl FamilyKeys for SqliteFamilyKeys {
    async fn key_for_append(&self, family: FamilyId) -> Result<Option<DataKey>, KeyError> {
        if let Some(cached) = self.cached(family) {
            return Ok(cached);
        }
        let fresh = DataKey::generate();
        let wrapped_fresh = self.kek.wrap(&fresh, &aad(family));
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| KeyError::Backend("the key store's queue was poisoned".into()))?
            .push(NewKey {
                id: family.to_string(),
                wrapped: wrapped_fresh,
                reply,
            });
        self.commit_pending().await?;
        let (destroyed, wrapped) = answer
            .await
            .map_err(|_| KeyError::Backend("a new key's commit was lost".into()))??;
        let key = match (destroyed, wrapped) {
            (false, Some(w)) => Some(self.unwrap(family, &w)?),
            _ => None,
        };
        self.remember(family, key.clone());
        Ok(key)
    }

    async fn key(&self, family: FamilyId) -> Result<KeyState, KeyError> {
        if let Some(cached) = self.cached(family) {
            return Ok(cached.map_or(KeyState::Destroyed, KeyState::Present));
        }
        let id = family.to_string();
        let (wrapped, destroyed) = self
            .on_conn(move |conn| {
                let wrapped: Option<Vec<u8>> = conn
                    .query_row(
                        "SELECT wrapped FROM family_keys WHERE family_id = ?1",
                        [&id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(backend)?;
                let destroyed = conn
                    .query_row(
                        "SELECT 1 FROM destroyed_keys WHERE family_id = ?1",
                        [&id],
                        |_| Ok(()),
                    )
                    .optional()
                    .map_err(backend)?
                    .is_some();
                Ok((wrapped, destroyed))
            })
            .await?;
        Ok(match (wrapped, destroyed) {
            (_, true) => {
                self.remember(family, None);
                KeyState::Destroyed
            }
            (Some(w), false) => {
                let key = self.unwrap(family, &w)?;
                self.remember(family, Some(key.clone()));
                KeyState::Present(key)
            }
            (None, false) => KeyState::Missing,
        })
    }

    async fn destroy(&self, family: FamilyId) -> Result<bool, KeyError> {
        let id = family.to_string();
        let now = unix_seconds_now();
        let destroyed = self
            .on_conn(move |conn| {
                let deleted = conn
                    .execute("DELETE FROM family_keys WHERE family_id = ?1", [&id])
                    .map_err(backend)?;
                conn.execute(
                    "INSERT OR IGNORE INTO destroyed_keys (family_id, destroyed_at) \
                     VALUES (?1, ?2)",
                    params![id, now],
                )
                .map_err(backend)?;
                // Copy the zeroed pages back and empty the WAL, so no file keeps the old key.
                conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                    .map_err(backend)?;
                Ok(deleted > 0)
            })
            .await?;
        self.remember(family, None);
        Ok(destroyed)
    }
}

fn unix_seconds_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    now.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kek::FileKek;
    use uuid::Uuid;

    fn kek() -> Arc<dyn KeyEncryptionKey> {
        Arc::new(FileKek::from_key(DataKey::generate()))
    }

    #[tokio::test]
    async fn given_a_family_when_its_key_is_made_destroyed_and_asked_again_then_it_never_comes_back(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        let kek = kek();
        let keys = SqliteFamilyKeys::open(&path, kek.clone()).unwrap();
        let family = FamilyId(Uuid::now_v7());
        assert!(matches!(keys.key(family).await.unwrap(), KeyState::Missing));
        let made = keys.key_for_append(family).await.unwrap().unwrap();
        // Another process (a restart) reads the same key.
        let reopened = SqliteFamilyKeys::open(&path, kek.clone()).unwrap();
        match reopened.key(family).await.unwrap() {
            KeyState::Present(k) => assert_eq!(k.as_bytes(), made.as_bytes()),
            other => panic!("{other:?}"),
        }
        let wrapped: Vec<u8> = Connection::open(&path)
            .unwrap()
            .query_row("SELECT wrapped FROM family_keys", [], |r| r.get(0))
            .unwrap();
        assert!(keys.destroy(family).await.unwrap());
        assert!(!keys.destroy(family).await.unwrap(), "idempotent");
        let reopened = SqliteFamilyKeys::open(&path, kek).unwrap();
        assert!(matches!(
            reopened.key(family).await.unwrap(),
            KeyState::Destroyed
        ));
        assert!(reopened.key_for_append(family).await.unwrap().is_none());
        // The wrapped key's bytes are gone from every file of the store (secure_delete, and the
        // WAL emptied).
        drop((keys, reopened));
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes.windows(wrapped.len()).any(|w| w == wrapped));
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn given_many_new_families_at_once_when_their_keys_are_made_then_each_has_one_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        let kek = kek();
        let keys = Arc::new(SqliteFamilyKeys::open(&path, kek.clone()).unwrap());
        let families: Vec<FamilyId> = (0..40).map(|_| FamilyId(Uuid::now_v7())).collect();
        // Each family asked for twice at once: the same key both times.
        let mut tasks = Vec::new();
        for f in families.iter().chain(families.iter()) {
            let (keys, f) = (keys.clone(), *f);
            tasks.push(tokio::spawn(async move {
                (
                    f,
                    *keys.key_for_append(f).await.unwrap().unwrap().as_bytes(),
                )
            }));
        }
        let mut made = std::collections::HashMap::new();
        for t in tasks {
            let (f, key) = t.await.unwrap();
            assert_eq!(*made.entry(f).or_insert(key), key, "one key per family");
        }
        let distinct: std::collections::HashSet<_> = made.values().collect();
        assert_eq!(distinct.len(), families.len());
        // Stored for good: another process reads the same keys.
        let reopened = SqliteFamilyKeys::open(&path, kek).unwrap();
        for f in &families {
            match reopened.key(*f).await.unwrap() {
                KeyState::Present(k) => assert_eq!(k.as_bytes(), &made[f]),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn given_keys_wrapped_by_one_kek_when_opened_with_another_then_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        SqliteFamilyKeys::open(&path, kek()).unwrap();
        let err = SqliteFamilyKeys::open(&path, kek()).unwrap_err();
        assert!(matches!(err, KeyError::WrongKek(_)), "{err}");
    }
}
