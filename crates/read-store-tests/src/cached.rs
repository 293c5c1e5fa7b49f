//! The certificate cache in front of a store: a scan never sees a row older than the store's,
//! whoever wrote it. Each check takes the store and a second handle on the same database (as
//! another process would open it).

use crate::rows::{certificate, family};
use crate::{moves, prepared};
use registry_domain::Family;
use registry_read_store::{
    Batch, CachedCertificates, CertificateRow, Changes, ReadStore, CERTIFICATE_VIEW,
};
use std::sync::Arc;

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

/// A prepared store with the cache of `capacity` in front and one family's row applied at
/// position 1 (the checkpoints read first, as the runner does, when `seen`).
async fn granted(
    store: Arc<dyn ReadStore>,
    capacity: usize,
    seen: bool,
) -> (Arc<dyn ReadStore>, Family, CertificateRow) {
    let read: Arc<dyn ReadStore> = Arc::new(CachedCertificates::new(store, capacity));
    prepared(&read).await;
    if seen {
        read.checkpoints().await.unwrap();
    }
    let f = family(1, "Смирнова", "77-0001", "Р-1");
    let row = certificate(&f, 1, true);
    apply(&read, 0, vec![row.clone()]).await;
    (read, f, row)
}

async fn apply(read: &Arc<dyn ReadStore>, from: u64, certificates: Vec<CertificateRow>) {
    read.apply(Batch {
        moves: moves(from, from + 1),
        changes: rows(certificates),
    })
    .await
    .unwrap();
}

/// The row of `f` at `position` with the status `status`.
fn with_status(f: &Family, position: u64, status: &str) -> CertificateRow {
    let mut row = certificate(f, position, true);
    row.status = status.into();
    row
}

fn hits(read: &Arc<dyn ReadStore>) -> u64 {
    read.cache().unwrap().hits
}

pub async fn a_second_scan_is_answered_from_memory_until_a_batch_rewrites_the_row(
    store: Arc<dyn ReadStore>,
    _other: Arc<dyn ReadStore>,
) {
    let (read, f, granted) = granted(store, 100, true).await;
    assert_eq!(scan(&read, &granted).await, granted);
    assert_eq!(scan(&read, &granted).await, granted);
    assert_eq!(hits(&read), 1, "the second scan read no database");

    let revoked = with_status(&f, 2, "revoked");
    apply(&read, 1, vec![revoked.clone()]).await;
    assert_eq!(scan(&read, &granted).await, revoked);
    assert_eq!(read.cache().unwrap().entries, 1);
}

pub async fn a_row_another_process_changed_is_read_again_once_its_checkpoint_is_seen(
    store: Arc<dyn ReadStore>,
    other: Arc<dyn ReadStore>,
) {
    let (read, f, granted) = granted(store, 100, false).await;
    read.checkpoints().await.unwrap();
    assert_eq!(scan(&read, &granted).await, granted);

    // Another process's rebuild swaps in a view where the certificate is revoked.
    let revoked = with_status(&f, 2, "revoked");
    swap_in(&other, revoked.clone(), 2).await;

    // The runner's next step reads the checkpoints and finds them moved.
    read.checkpoints().await.unwrap();
    assert_eq!(scan(&read, &granted).await, revoked);
}

/// A rebuild of the certificate view holding only `row`, swapped in at `position`.
async fn swap_in(read: &Arc<dyn ReadStore>, row: CertificateRow, position: u64) {
    let mut rebuild = read.begin_rebuild(CERTIFICATE_VIEW).await.unwrap();
    rebuild.write(rows(vec![row])).await.unwrap();
    rebuild.index().await.unwrap();
    rebuild.lock().await.unwrap();
    rebuild.swap(Changes::default(), position, 2).await.unwrap();
}

pub async fn a_rebuild_swapped_in_here_empties_the_cache(
    store: Arc<dyn ReadStore>,
    _other: Arc<dyn ReadStore>,
) {
    let (read, f, granted) = granted(store, 100, true).await;
    assert_eq!(scan(&read, &granted).await, granted);

    let terminated = with_status(&f, 1, "terminated");
    swap_in(&read, terminated.clone(), 1).await;
    assert_eq!(scan(&read, &granted).await, terminated);
}

pub async fn a_cache_of_size_zero_keeps_nothing(
    store: Arc<dyn ReadStore>,
    _other: Arc<dyn ReadStore>,
) {
    let (read, _, granted) = granted(store, 0, false).await;
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
