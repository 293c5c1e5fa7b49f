//! The tree-store contract (`registry_tlog::TreeStore`): what the transparency log keeps.

use registry_tlog::hashes::{appended, frontier, MapReader};
use registry_tlog::prove::{consistency, inclusion, root};
use registry_tlog::{
    Cosignature, Hash, Leaf, StoredCheckpoint, TreeSize, TreeStore, TreeStoreError,
};
use std::collections::HashMap;
use std::sync::Arc;
use tlog_tiles::{check_record, check_tree, record_hash, stored_hash_index, tree_hash};
use uuid::Uuid;

/// Generates one `#[tokio::test]` per tree-store check. `$make` is an async expression giving
/// `Option<(Arc<dyn TreeStore>, guard)>`; `None` skips the check.
#[macro_export]
macro_rules! tree_contract_tests {
    ($make:expr) => {
        $crate::tree_contract_tests!(@tests $make;
            an_empty_tree_has_no_leaves_and_no_checkpoint,
            appended_leaves_are_found_by_index_and_by_event_and_their_hashes_in_order,
            an_append_from_a_stale_size_is_refused_and_changes_nothing,
            proofs_read_from_the_store_check_against_its_roots,
            checkpoints_are_kept_once_per_size_and_the_latest_is_the_largest,
            a_witness_cosignature_replaces_its_own_earlier_one_only,
        );
    };
    (@tests $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some((tree, _guard)) = $make.await {
                    $crate::tree::$name(tree).await;
                }
            }
        )+
    };
}

fn leaf_hashes(range: std::ops::Range<u64>) -> Vec<Hash> {
    range.map(|i| record_hash(&i.to_be_bytes())).collect()
}

/// Appends leaves `from..to` (positions `10 * (i + 1)`, so with gaps) as the builder does.
async fn grow(tree: &Arc<dyn TreeStore>, from: u64, to: u64) -> Vec<Leaf> {
    let edge = frontier(from);
    let known = tree.hashes(edge.clone()).await.unwrap();
    let hashes = appended(
        from,
        edge.into_iter().zip(known).collect(),
        &leaf_hashes(from..to),
    )
    .unwrap();
    let leaves: Vec<Leaf> = (from..to)
        .map(|index| Leaf {
            index,
            position: 10 * (index + 1),
            event_id: Uuid::now_v7(),
        })
        .collect();
    tree.append(from, leaves.clone(), hashes).await.unwrap();
    leaves
}

pub async fn an_empty_tree_has_no_leaves_and_no_checkpoint(tree: Arc<dyn TreeStore>) {
    assert_eq!(tree.tree_size().await.unwrap(), TreeSize::default());
    assert!(tree.latest_checkpoint().await.unwrap().is_none());
    assert!(tree.leaves(0, 10).await.unwrap().is_empty());
    assert_eq!(
        root(tree.as_ref(), 0).await.unwrap(),
        registry_tlog::EMPTY_HASH
    );
}

pub async fn appended_leaves_are_found_by_index_and_by_event_and_their_hashes_in_order(
    tree: Arc<dyn TreeStore>,
) {
    let first = grow(&tree, 0, 5).await;
    let second = grow(&tree, 5, 9).await;
    assert_eq!(
        tree.tree_size().await.unwrap(),
        TreeSize {
            size: 9,
            last_position: 90
        }
    );
    assert_eq!(
        tree.leaves(3, 4).await.unwrap(),
        [&first[3..], &second[..2]].concat()
    );
    assert_eq!(
        tree.leaf_of_event(second[1].event_id).await.unwrap(),
        Some(second[1])
    );
    assert_eq!(tree.leaf_of_event(Uuid::now_v7()).await.unwrap(), None);
    let wanted = vec![stored_hash_index(0, 7), stored_hash_index(0, 2)];
    assert_eq!(
        tree.hashes(wanted).await.unwrap(),
        vec![
            record_hash(&7u64.to_be_bytes()),
            record_hash(&2u64.to_be_bytes())
        ]
    );
    assert!(matches!(
        tree.hashes(vec![stored_hash_index(0, 9)]).await,
        Err(TreeStoreError::MissingHash(_))
    ));
}

pub async fn an_append_from_a_stale_size_is_refused_and_changes_nothing(tree: Arc<dyn TreeStore>) {
    grow(&tree, 0, 3).await;
    let stale = Leaf {
        index: 2,
        position: 999,
        event_id: Uuid::now_v7(),
    };
    let refused = tree
        .append(2, vec![stale], vec![(999, record_hash(b"x"))])
        .await;
    assert!(matches!(
        refused,
        Err(TreeStoreError::Conflict {
            expected: 2,
            actual: 3
        })
    ));
    assert_eq!(tree.tree_size().await.unwrap().size, 3);
    assert_eq!(tree.leaf_of_event(stale.event_id).await.unwrap(), None);
}

pub async fn proofs_read_from_the_store_check_against_its_roots(tree: Arc<dyn TreeStore>) {
    grow(&tree, 0, 6).await;
    grow(&tree, 6, 13).await;
    let all: HashMap<u64, Hash> = appended(0, HashMap::new(), &leaf_hashes(0..13))
        .unwrap()
        .into_iter()
        .collect();
    let expected_root = tree_hash(13, &MapReader(all)).unwrap();
    assert_eq!(root(tree.as_ref(), 13).await.unwrap(), expected_root);
    let proof = inclusion(tree.as_ref(), 13, 4).await.unwrap();
    check_record(
        &proof,
        13,
        expected_root,
        4,
        record_hash(&4u64.to_be_bytes()),
    )
    .unwrap();
    let old_root = root(tree.as_ref(), 6).await.unwrap();
    let proof = consistency(tree.as_ref(), 13, 6).await.unwrap();
    check_tree(&proof, 13, expected_root, 6, old_root).unwrap();
    assert!(inclusion(tree.as_ref(), 13, 13).await.is_err());
}

pub async fn checkpoints_are_kept_once_per_size_and_the_latest_is_the_largest(
    tree: Arc<dyn TreeStore>,
) {
    let note = |size: u64, tag: &str| StoredCheckpoint {
        size,
        note: format!("o\n{size}\n{tag}\n"),
    };
    for size in [0, 4, 9] {
        tree.save_checkpoint(note(size, "first")).await.unwrap();
    }
    tree.save_checkpoint(note(4, "second")).await.unwrap();
    assert_eq!(
        tree.latest_checkpoint().await.unwrap(),
        Some(note(9, "first"))
    );
    assert_eq!(tree.checkpoint(4).await.unwrap(), Some(note(4, "first")));
    assert_eq!(tree.checkpoint(5).await.unwrap(), None);
    assert_eq!(
        tree.checkpoints(1, 10).await.unwrap(),
        vec![note(4, "first"), note(9, "first")]
    );
    assert_eq!(
        tree.checkpoints(0, 1).await.unwrap(),
        vec![note(0, "first")]
    );
}

pub async fn a_witness_cosignature_replaces_its_own_earlier_one_only(tree: Arc<dyn TreeStore>) {
    let cosig = |size: u64, witness: &str, line: &str| Cosignature {
        size,
        witness: witness.into(),
        line: line.into(),
    };
    tree.add_cosignature(cosig(4, "b+00000002", "old"))
        .await
        .unwrap();
    tree.add_cosignature(cosig(4, "a+00000001", "a"))
        .await
        .unwrap();
    tree.add_cosignature(cosig(4, "b+00000002", "new"))
        .await
        .unwrap();
    tree.add_cosignature(cosig(5, "a+00000001", "a5"))
        .await
        .unwrap();
    assert_eq!(
        tree.cosignatures(4).await.unwrap(),
        vec![cosig(4, "a+00000001", "a"), cosig(4, "b+00000002", "new")]
    );
    assert!(tree.cosignatures(6).await.unwrap().is_empty());
}
