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

/// A store made before the search keys were replaced by primary key kept an index of them by
/// family, which every write kept up to date; opening its projection drops it, and only it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_the_retired_search_index_loses_it_when_its_projection_opens() {
    use sqlx::Connection;
    let Some(url) = registry_test_support::fresh_database().await else {
        return;
    };
    let store = PostgresReadStore::open(&url).await.expect("open");
    store
        .create_projection("certificate_view", 5)
        .await
        .unwrap();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE INDEX family_search_family_0a1b ON family_search (family_id)")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(indexes(&mut conn).await.len(), 4);
    store
        .create_projection("certificate_view", 5)
        .await
        .unwrap();
    let left = indexes(&mut conn).await;
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.iter().all(|i| !i.starts_with("family_search_family_")));
}

/// The projection tables' indexes, by name.
async fn indexes(conn: &mut sqlx::PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes \
         WHERE tablename IN ('family_search', 'certificate_view') ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .expect("list the indexes")
}
