//! The read-store contract against SQLite, each check on a fresh file.

use registry_read_store_sqlite::SqliteReadStore;
use std::sync::Arc;

async fn fresh() -> registry_read_store_tests::Fresh<tempfile::TempDir> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("views.db");
    let store = SqliteReadStore::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open store");
    Some((
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(store),
        dir,
    ))
}

registry_read_store_tests::contract_tests!(fresh());

/// The whole contract again with the certificate cache in front: it keeps every behaviour.
mod through_the_certificate_cache {
    use registry_read_store::CachedCertificates;
    use std::sync::Arc;

    async fn fresh() -> registry_read_store_tests::Fresh<tempfile::TempDir> {
        let (read, tokens, access, dir) = super::fresh().await?;
        let read = Arc::new(CachedCertificates::new(read, 100));
        Some((read, tokens, access, dir))
    }

    registry_read_store_tests::contract_tests!(fresh());
}

/// The store, and a second handle on the same file, as another process opens it.
async fn fresh_pair() -> Option<(
    Arc<dyn registry_read_store::ReadStore>,
    Arc<dyn registry_read_store::ReadStore>,
    tempfile::TempDir,
)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("views.db");
    let path = path.to_str().expect("utf-8 path");
    let store = SqliteReadStore::open(path).await.expect("open store");
    let other = SqliteReadStore::open(path).await.expect("open store again");
    Some((Arc::new(store), Arc::new(other), dir))
}

mod certificate_cache {
    use super::fresh_pair;
    registry_read_store_tests::cache_contract_tests!(fresh_pair());
}

/// Only the SHA-256 of a token is in the file, never the token.
#[tokio::test]
async fn the_file_holds_no_token_in_the_clear() {
    use registry_access::{Role, TokenStoreExt};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("views.db");
    let store = SqliteReadStore::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open store");
    let (token, _) = store
        .create_access_token("x", Role::Officer, None, None, chrono::Utc::now())
        .await
        .expect("token");
    for file in ["views.db", "views.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }
}

async fn fresh_tree() -> Option<(Arc<dyn registry_tlog::TreeStore>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("views.db");
    let store = SqliteReadStore::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open store");
    Some((Arc::new(store), dir))
}

mod tree {
    use super::fresh_tree;
    registry_read_store_tests::tree_contract_tests!(fresh_tree());
}
