//! The read-store contract against PostgreSQL, each check on a fresh database of the test
//! cluster (skipped where none is available, failed in CI).

use registry_read_store::ReadStore;
use registry_read_store_postgres::PostgresReadStore;
use std::sync::Arc;

async fn fresh() -> registry_read_store_tests::Fresh<()> {
    let url = registry_test_support::fresh_database().await?;
    let store = PostgresReadStore::open(&url).await.expect("open store");
    Some((
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(store),
        (),
    ))
}

registry_read_store_tests::contract_tests!(fresh());

/// Several servers share one store; exactly one holds the projection lease at a time, and it
/// passes on when its holder goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_two_processes_leads_and_the_other_takes_over_when_it_goes() {
    let Some(url) = registry_test_support::fresh_database().await else {
        return;
    };
    let first = PostgresReadStore::open(&url).await.expect("open");
    let second = PostgresReadStore::open(&url).await.expect("open");
    assert!(first.lead().await);
    assert!(!second.lead().await, "two leaders");
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !second.lead().await {
        assert!(
            std::time::Instant::now() < deadline,
            "the lease was never passed on"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn fresh_tree() -> Option<(Arc<dyn registry_tlog::TreeStore>, ())> {
    let url = registry_test_support::fresh_database().await?;
    let store = PostgresReadStore::open(&url).await.expect("open store");
    Some((Arc::new(store), ()))
}

mod tree {
    use super::fresh_tree;
    registry_read_store_tests::tree_contract_tests!(fresh_tree());
}
