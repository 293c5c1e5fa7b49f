//! The event-store contract against SQLite, each test on a fresh file.

use registry_store_sqlite::SqliteEventStore;
use std::sync::Arc;

async fn fresh() -> Option<(Arc<dyn registry_store_tests::EventStore>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.db");
    let store = SqliteEventStore::open(path.to_str().expect("utf-8 path"))
        .await
        .expect("open store");
    Some((Arc::new(store), dir))
}

registry_store_tests::contract_tests!(fresh());
