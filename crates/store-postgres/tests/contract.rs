//! The event-store contract against PostgreSQL, each test in a fresh database.

use registry_store_postgres::PostgresEventStore;
use std::sync::Arc;

async fn fresh() -> Option<(Arc<dyn registry_store_tests::EventStore>, ())> {
    let url = registry_test_support::fresh_database().await?;
    let store = PostgresEventStore::open(&url).await.expect("open store");
    Some((Arc::new(store), ()))
}

registry_store_tests::contract_tests!(fresh());
