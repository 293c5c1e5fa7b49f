//! A rebuild given up halfway (its job failed, or the process is stopping it).

use crate::rows::{certificate, family};
use crate::{one_live_family, AccessRecord, ReadStore, TokenStore};
use registry_read_store::{Changes, CERTIFICATE_VIEW};
use std::sync::Arc;

/// A rebuild dropped while a large write into its shadow tables is still running leaves the
/// store answering as before on every connection it has (a write stopped in the middle of its
/// protocol would hand a connection back that answers the next query with another's result),
/// and nothing of that write reaches the shadow tables of the rebuild begun next.
pub async fn a_rebuild_given_up_during_a_write_leaves_the_store_answering_as_before(
    read: Arc<dyn ReadStore>,
    _: Arc<dyn TokenStore>,
    _: Arc<dyn AccessRecord>,
) {
    let live = one_live_family(&read).await;
    let checkpoints = read.checkpoints().await.unwrap();
    let rebuilt: Vec<_> = (2..2_002)
        .map(|i| certificate(&family(i, "Орлова", &format!("77-{i:05}"), "Р-2"), 1, true))
        .collect();
    for _ in 0..16 {
        let mut rebuild = read.begin_rebuild(CERTIFICATE_VIEW).await.unwrap();
        rebuild
            .write(Changes {
                certificates: rebuilt.clone(),
                ..Changes::default()
            })
            .await
            .unwrap();
        drop(rebuild);
        for _ in 0..4 {
            assert_eq!(read.checkpoints().await.unwrap(), checkpoints);
            assert_eq!(
                read.certificate_of_family(live.family_id).await.unwrap(),
                Some(certificate(&live, 1, true))
            );
        }
    }
    // The next rebuild starts from empty shadow tables: swapped in with nothing written, the
    // view is empty.
    let mut rebuild = read.begin_rebuild(CERTIFICATE_VIEW).await.unwrap();
    rebuild.index().await.unwrap();
    rebuild.swap(Changes::default(), 1, 2).await.unwrap();
    assert_eq!(read.dump_certificates().await.unwrap(), vec![]);
}
