//! The certificate cache in front of a store: a scan never sees a row older than the store's,
//! whoever wrote it. Each check takes the store and a second handle on the same database (as
//! another process would open it).

use crate::rows::{certificate, family};
use crate::{moves, prepared};
use registry_read_store::{
    Batch, CachedCertificates, CertificateRow, Changes, ReadStore, CERTIFICATE_VIEW,
};
use std::sync::Arc;

fn cached(store: &Arc<dyn ReadStore>) -> Arc<dyn ReadStore> {
    Arc::new(CachedCertificates::new(store.clone(), 100))
}

fn rows(certificates: Vec<CertificateRow>) -> Changes {
    Changes {
        certificates,
        ..Changes::default()
    }
}

async fn scan(read: &Arc<dyn ReadStore>, row: &CertificateRow) -> CertificateRow {
    read.certificate_by_token(row.token_id)
        .await
        .unwrap()
        .unwrap()
}

fn hits(read: &Arc<dyn ReadStore>) -> u64 {
    read.cache().unwrap().hits
}

pub async fn a_second_scan_is_answered_from_memory_until_a_batch_rewrites_the_row(
    store: Arc<dyn ReadStore>,
    _other: Arc<dyn ReadStore>,
) {
    let read = cached(&store);
    prepared(&read).await;
    read.checkpoints().await.unwrap();
    let f = family(1, "Смирнова", "77-0001", "Р-1");
    let granted = certificate(&f, 1, true);
    read.apply(Batch {
        moves: moves(0, 1),
        changes: rows(vec![granted.clone()]),
    })
    .await
    .unwrap();
    assert_eq!(scan(&read, &granted).await, granted);
    assert_eq!(scan(&read, &granted).await, granted);
    assert_eq!(hits(&read), 1, "the second scan read no database");

    let mut revoked = certificate(&f, 2, true);
    revoked.status = "revoked".into();
    read.apply(Batch {
        moves: moves(1, 2),
        changes: rows(vec![revoked.clone()]),
    })
    .await
    .unwrap();
    assert_eq!(scan(&read, &granted).await, revoked);
    assert_eq!(read.cache().unwrap().entries, 1);
}

pub async fn a_row_another_process_changed_is_read_again_once_its_checkpoint_is_seen(
    store: Arc<dyn ReadStore>,
    other: Arc<dyn ReadStore>,
) {
    let read = cached(&store);
    prepared(&read).await;
    let f = family(1, "Смирнова", "77-0001", "Р-1");
    let granted = certificate(&f, 1, true);
    read.apply(Batch {
        moves: moves(0, 1),
        changes: rows(vec![granted.clone()]),
    })
    .await
    .unwrap();
    read.checkpoints().await.unwrap();
    assert_eq!(scan(&read, &granted).await, granted);

    // Another process's rebuild swaps in a view where the certificate is revoked.
    let mut revoked = certificate(&f, 2, true);
    revoked.status = "revoked".into();
    let mut rebuild = other.begin_rebuild(CERTIFICATE_VIEW).await.unwrap();
    rebuild.write(rows(vec![revoked.clone()])).await.unwrap();
    rebuild.index().await.unwrap();
    rebuild.lock().await.unwrap();
    rebuild.swap(Changes::default(), 2, 2).await.unwrap();

    // The runner's next step reads the checkpoints and finds them moved.
    read.checkpoints().await.unwrap();
    assert_eq!(scan(&read, &granted).await, revoked);
}

pub async fn a_rebuild_swapped_in_here_empties_the_cache(
    store: Arc<dyn ReadStore>,
    _other: Arc<dyn ReadStore>,
) {
    let read = cached(&store);
    prepared(&read).await;
    read.checkpoints().await.unwrap();
    let f = family(1, "Смирнова", "77-0001", "Р-1");
    let granted = certificate(&f, 1, true);
    read.apply(Batch {
        moves: moves(0, 1),
        changes: rows(vec![granted.clone()]),
    })
    .await
    .unwrap();
    assert_eq!(scan(&read, &granted).await, granted);

    let mut terminated = certificate(&f, 1, true);
    terminated.status = "terminated".into();
    let mut rebuild = read.begin_rebuild(CERTIFICATE_VIEW).await.unwrap();
    rebuild.write(rows(vec![terminated.clone()])).await.unwrap();
    rebuild.index().await.unwrap();
    rebuild.lock().await.unwrap();
    rebuild.swap(Changes::default(), 1, 2).await.unwrap();
    assert_eq!(scan(&read, &granted).await, terminated);
}

pub async fn a_cache_of_size_zero_keeps_nothing(
    store: Arc<dyn ReadStore>,
    _other: Arc<dyn ReadStore>,
) {
    let read: Arc<dyn ReadStore> = Arc::new(CachedCertificates::new(store, 0));
    prepared(&read).await;
    let f = family(1, "Смирнова", "77-0001", "Р-1");
    let granted = certificate(&f, 1, true);
    read.apply(Batch {
        moves: moves(0, 1),
        changes: rows(vec![granted.clone()]),
    })
    .await
    .unwrap();
    assert_eq!(scan(&read, &granted).await, granted);
    assert_eq!(scan(&read, &granted).await, granted);
    let figures = read.cache().unwrap();
    assert_eq!((figures.capacity, figures.entries, figures.hits), (0, 0, 0));
}

/// Generates one `#[tokio::test]` per cache check. `$make` is an async expression giving
/// `Option<(store, second handle, guard)>`.
#[macro_export]
macro_rules! cache_contract_tests {
    ($make:expr) => {
        $crate::cache_contract_tests!(@tests $make;
            a_second_scan_is_answered_from_memory_until_a_batch_rewrites_the_row,
            a_row_another_process_changed_is_read_again_once_its_checkpoint_is_seen,
            a_rebuild_swapped_in_here_empties_the_cache,
            a_cache_of_size_zero_keeps_nothing,
        );
    };
    (@tests $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                if let Some((store, other, _guard)) = $make.await {
                    $crate::cached::$name(store, other).await;
                }
            }
        )+
    };
}
