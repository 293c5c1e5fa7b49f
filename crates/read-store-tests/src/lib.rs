//! The read-store contract suite.
//!
//! Why a crate of its own: the suite is written once against the `ReadStore` and `TokenStore`
//! traits and each backend crate runs it from its own tests with [`contract_tests!`], so the
//! SQLite and the PostgreSQL read stores are held to exactly the same behaviour.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod cached;
mod given_up;
/// Families and rows to store, for this suite and for the unit tests of crates above the stores.
pub mod rows;
pub mod tree;

pub use given_up::a_rebuild_given_up_during_a_write_leaves_the_store_answering_as_before;
pub use registry_access::{AccessRecord, TokenStore};
pub use registry_read_store::ReadStore;

use registry_access::{Role, TokenStoreExt};
use registry_read_store::{
    Applied, Batch, Changes, KeyChange, Move, Search, SearchKey, CERTIFICATE_VIEW, FAMILY_HISTORY,
};
use rows::{certificate, family, history};
use std::sync::Arc;
use std::time::Duration;

/// A fresh store for one check: the same database as a read store and as a token store, and a
/// guard (a temporary directory, or nothing) that lives until the check ends.
pub type Fresh<G> = Option<(
    Arc<dyn ReadStore>,
    Arc<dyn TokenStore>,
    Arc<dyn AccessRecord>,
    G,
)>;

/// Generates one `#[tokio::test]` per contract check. `$make` is an async expression giving a
/// [`Fresh`] store; `None` means the backend is not available here and the check is skipped.
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@tests $make;
            a_new_store_creates_each_projection_once,
            a_batch_moves_rows_and_checkpoints_together,
            a_batch_computed_from_a_moved_checkpoint_writes_nothing,
            a_redelivered_batch_changes_nothing,
            the_current_certificate_and_replaced_tokens_are_found,
            search_finds_families_by_each_key_newest_first_a_page_at_a_time,
            a_rebuild_is_written_aside_and_swapped_in_at_once,
            a_rebuild_reads_back_the_families_it_wrote_out,
            a_bulk_rebuild_finds_every_family_by_every_key,
            a_rebuild_holds_off_live_batches_until_its_swap,
            a_rebuild_swapped_in_without_indexing_takes_live_batches_after,
            a_rebuild_given_up_during_a_write_leaves_the_store_answering_as_before,
            access_tokens_are_found_by_their_value_but_stored_hashed,
            officials_signed_in_through_the_provider_are_remembered_by_id,
            the_access_record_lists_entries_by_family_and_by_actor_and_changes_none,
        );
    };
    (@tests $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                if let Some((read, tokens, access, _guard)) = $make.await {
                    $crate::$name(read, tokens, access).await;
                }
            }
        )+
    };
}

async fn prepared(read: &Arc<dyn ReadStore>) {
    read.create_projection(CERTIFICATE_VIEW, 2).await.unwrap();
    read.create_projection(FAMILY_HISTORY, 1).await.unwrap();
}

/// The certificate view's checkpoint alone moving (after a rebuild of it swapped its own in).
fn certificate_view_moves(from: u64, to: u64) -> Vec<Move> {
    vec![Move {
        projection: CERTIFICATE_VIEW,
        from,
        to,
        version: 2,
    }]
}

fn moves(from: u64, to: u64) -> Vec<Move> {
    vec![
        Move {
            projection: CERTIFICATE_VIEW,
            from,
            to,
            version: 2,
        },
        Move {
            projection: FAMILY_HISTORY,
            from,
            to,
            version: 1,
        },
    ]
}

/// A prepared store with one family applied live (checkpoints at 1); returns the family.
async fn one_live_family(read: &Arc<dyn ReadStore>) -> registry_domain::Family {
    prepared(read).await;
    let live = family(1, "Смирнова", "77-0001", "Р-1");
    read.apply(Batch {
        moves: moves(0, 1),
        changes: Changes {
            certificates: vec![certificate(&live, 1, true)],
            search: vec![KeyChange::new(live.family_id, rows::keys(&live))],
            history: vec![history(&live, 1, 0)],
        },
    })
    .await
    .unwrap();
    live
}

async fn checkpoint(read: &Arc<dyn ReadStore>, name: &str) -> u64 {
    read.checkpoints()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| c.position)
        .unwrap()
}

pub async fn a_new_store_creates_each_projection_once(
    read: Arc<dyn ReadStore>,
    _: Arc<dyn TokenStore>,
    _: Arc<dyn AccessRecord>,
) {
    assert!(read.checkpoints().await.unwrap().is_empty());
    prepared(&read).await;
    prepared(&read).await;
    let checkpoints = read.checkpoints().await.unwrap();
    assert_eq!(checkpoints.len(), 2);
    assert!(checkpoints.iter().all(|c| c.position == 0));
    assert!(read.dump_certificates().await.unwrap().is_empty());
    assert!(read.create_projection("no_such", 1).await.is_err());
}

pub async fn a_batch_moves_rows_and_checkpoints_together(
    read: Arc<dyn ReadStore>,
    _: Arc<dyn TokenStore>,
    _: Arc<dyn AccessRecord>,
) {
    prepared(&read).await;
    let f = family(1, "Смирнова", "77-0001", "Р-1");
    let changes = Changes {
        certificates: vec![certificate(&f, 1, true)],
        search: vec![KeyChange::new(f.family_id, rows::keys(&f))],
        history: vec![history(&f, 1, 0)],
    };
    let done = read
        .apply(Batch {
            moves: moves(0, 1),
            changes,
        })
        .await
        .unwrap();
    assert_eq!(done, Applied::Done);
    assert_eq!(checkpoint(&read, CERTIFICATE_VIEW).await, 1);
    assert_eq!(checkpoint(&read, FAMILY_HISTORY).await, 1);
    let row = read
        .certificate_of_family(f.family_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row,
        certificate(&f, 1, true),
        "the row reads back as written"
    );
    assert_eq!(
        read.history(f.family_id).await.unwrap(),
        vec![history(&f, 1, 0)]
    );
    let folded = read.current_families(&[f.family_id]).await.unwrap();
    assert_eq!(folded.len(), 1);
    assert_eq!((folded[0].family.clone(), folded[0].position), (f, 1));
}

pub async fn a_batch_computed_from_a_moved_checkpoint_writes_nothing(
    read: Arc<dyn ReadStore>,
    _: Arc<dyn TokenStore>,
    _: Arc<dyn AccessRecord>,
) {
    prepared(&read).await;
    let f = family(1, "Смирнова", "77-0001", "Р-1");
    let stale = read
        .apply(Batch {
            moves: moves(5, 6),
            changes: Changes {
                certificates: vec![certificate(&f, 6, true)],
                search: vec![],
                history: vec![history(&f, 6, 0)],
            },
        })
        .await
        .unwrap();
    assert_eq!(stale, Applied::Moved);
    assert!(read.dump_certificates().await.unwrap().is_empty());
    assert!(read.dump_history().await.unwrap().is_empty());
    assert_eq!(checkpoint(&read, CERTIFICATE_VIEW).await, 0);
}

pub async fn a_redelivered_batch_changes_nothing(
    read: Arc<dyn ReadStore>,
    _: Arc<dyn TokenStore>,
    _: Arc<dyn AccessRecord>,
) {
    prepared(&read).await;
    let f = family(1, "Смирнова", "77-0001", "Р-1");
    let mut later = f.clone();
    later.valid_until = chrono::NaiveDate::from_ymd_opt(2031, 1, 1).unwrap();
    let first = Changes {
        certificates: vec![certificate(&f, 1, true)],
        search: vec![],
        history: vec![history(&f, 1, 0)],
    };
    let second = Changes {
        certificates: vec![certificate(&later, 2, true)],
        search: vec![],
        history: vec![history(&later, 2, 1)],
    };
    read.apply(Batch {
        moves: moves(0, 1),
        changes: first.clone(),
    })
    .await
    .unwrap();
    read.apply(Batch {
        moves: moves(1, 2),
        changes: second,
    })
    .await
    .unwrap();
    let before = (
        read.dump_certificates().await.unwrap(),
        read.dump_history().await.unwrap(),
    );
    // The first batch once more (a runner that did not see its own commit): older rows do not
    // replace newer ones, and events already there are not added twice.
    let again = read
        .apply(Batch {
            moves: moves(2, 2),
            changes: first,
        })
        .await
        .unwrap();
    assert_eq!(again, Applied::Done);
    let after = (
        read.dump_certificates().await.unwrap(),
        read.dump_history().await.unwrap(),
    );
    assert_eq!(before, after);
    assert_eq!(after.0[0].position, 2);
}

pub async fn the_current_certificate_and_replaced_tokens_are_found(
    read: Arc<dyn ReadStore>,
    _: Arc<dyn TokenStore>,
    _: Arc<dyn AccessRecord>,
) {
    prepared(&read).await;
    let old = family(1, "Смирнова", "77-0001", "Р-1");
    let mut new = old.clone();
    new.certificate_id = registry_domain::CertificateId(uuid::Uuid::from_u128(0xC0DE));
    new.certificate_serial = 2;
    read.apply(Batch {
        moves: moves(0, 2),
        changes: Changes {
            certificates: vec![certificate(&old, 2, false), certificate(&new, 2, true)],
            search: vec![],
            history: vec![],
        },
    })
    .await
    .unwrap();
    let current = read
        .certificate_of_family(old.family_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.token_id, new.certificate_id);
    let replaced = read
        .certificate_by_token(old.certificate_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!replaced.is_current);
    assert_eq!(replaced.status, "replaced");
    assert!(read
        .certificate_by_token(registry_domain::CertificateId(uuid::Uuid::from_u128(7)))
        .await
        .unwrap()
        .is_none());
}

pub async fn search_finds_families_by_each_key_newest_first_a_page_at_a_time(
    read: Arc<dyn ReadStore>,
    _: Arc<dyn TokenStore>,
    _: Arc<dyn AccessRecord>,
) {
    prepared(&read).await;
    // 25 families of one surname (ё and е alike), each with its own number and decision.
    let mut changes = Changes::default();
    for i in 1..=25u64 {
        let surname = if i % 2 == 0 {
            "Ёлкина"
        } else {
            "Елкина"
        };
        let f = family(i, surname, &format!("77-{i:04}"), &format!("Р-{i}"));
        changes
            .search
            .push(KeyChange::new(f.family_id, rows::keys(&f)));
        changes.certificates.push(certificate(&f, i, true));
    }
    read.apply(Batch {
        moves: moves(0, 25),
        changes,
    })
    .await
    .unwrap();
    let by = |key: SearchKey, after: Option<u64>| Search {
        key,
        after,
        limit: 10,
    };
    let member = SearchKey::Member {
        last_name: "ЕЛКИНА ".into(),
        birth_date: rows::mother_born(),
    };
    let first = read.search(&by(member.clone(), None)).await.unwrap();
    let positions: Vec<u64> = first.hits.iter().map(|h| h.position).collect();
    assert_eq!(
        positions,
        (16..=25).rev().collect::<Vec<_>>(),
        "newest first"
    );
    let second = read.search(&by(member.clone(), first.next)).await.unwrap();
    assert_eq!(second.hits.first().map(|h| h.position), Some(15));
    let third = read.search(&by(member.clone(), second.next)).await.unwrap();
    assert_eq!(third.hits.len(), 5);
    assert_eq!(third.next, None, "the last page says so");

    let number = read
        .search(&by(SearchKey::CertificateNumber("77-0007".into()), None))
        .await
        .unwrap();
    assert_eq!(number.hits.len(), 1);
    assert_eq!(number.hits[0].certificate_number, "77-0007");
    let decision = read
        .search(&by(SearchKey::DecisionNumber(" р-12".into()), None))
        .await
        .unwrap();
    assert_eq!(decision.hits.len(), 1);
    assert_eq!(decision.hits[0].position, 12);
    let nobody = read
        .search(&by(
            SearchKey::Member {
                last_name: "Елкина".into(),
                birth_date: chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
            },
            None,
        ))
        .await
        .unwrap();
    assert!(nobody.hits.is_empty());

    // A family's keys are replaced whole: a corrected surname is found by the new one only.
    let stored = family(3, "Елкина", "77-0003", "Р-3");
    let mut renamed = family(3, "Петрова", "77-0003", "Р-3");
    renamed.members[0].last_name = "Петрова".into();
    read.apply(Batch {
        moves: moves(25, 26),
        changes: Changes {
            certificates: vec![certificate(&renamed, 26, true)],
            search: vec![KeyChange::replacing(
                renamed.family_id,
                rows::keys(&stored),
                rows::keys(&renamed),
            )],
            history: vec![],
        },
    })
    .await
    .unwrap();
    let all_old = read
        .search(&Search {
            key: member,
            after: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(all_old.hits.len(), 24);
    assert!(all_old
        .hits
        .iter()
        .all(|h| h.family_id != renamed.family_id));
    let new = read
        .search(&by(
            SearchKey::Member {
                last_name: "петрова".into(),
                birth_date: rows::mother_born(),
            },
            None,
        ))
        .await
        .unwrap();
    assert_eq!(new.hits.len(), 1);
}

pub async fn a_rebuild_is_written_aside_and_swapped_in_at_once(
    read: Arc<dyn ReadStore>,
    _: Arc<dyn TokenStore>,
    _: Arc<dyn AccessRecord>,
) {
    let live = one_live_family(&read).await;
    let rebuilt = family(2, "Орлова", "77-0002", "Р-2");
    let mut rebuild = read.begin_rebuild(CERTIFICATE_VIEW).await.unwrap();
    rebuild
        .write(Changes {
            certificates: vec![certificate(&rebuilt, 1, true)],
            search: vec![KeyChange::new(rebuilt.family_id, rows::keys(&rebuilt))],
            history: vec![],
        })
        .await
        .unwrap();
    rebuild.index().await.unwrap();
    // Until the swap the live view is what it was.
    assert!(read
        .certificate_of_family(live.family_id)
        .await
        .unwrap()
        .is_some());
    assert!(read
        .certificate_of_family(rebuilt.family_id)
        .await
        .unwrap()
        .is_none());
    rebuild.lock().await.unwrap();
    let tail = family(3, "Волкова", "77-0003", "Р-3");
    rebuild
        .swap(
            Changes {
                certificates: vec![certificate(&tail, 2, true)],
                search: vec![KeyChange::new(tail.family_id, rows::keys(&tail))],
                history: vec![],
            },
            2,
            2,
        )
        .await
        .unwrap();
    let rows = read.dump_certificates().await.unwrap();
    let families: Vec<_> = rows.iter().map(|r| r.family_id).collect();
    assert!(families.contains(&rebuilt.family_id) && families.contains(&tail.family_id));
    assert!(
        !families.contains(&live.family_id),
        "the live table was replaced"
    );
    assert_eq!(checkpoint(&read, CERTIFICATE_VIEW).await, 2);
    // The other projection was not touched, and the search follows the swapped view.
    assert_eq!(checkpoint(&read, FAMILY_HISTORY).await, 1);
    assert_eq!(read.dump_history().await.unwrap().len(), 1);
    let found = read
        .search(&Search {
            key: SearchKey::CertificateNumber("77-0003".into()),
            after: None,
            limit: 5,
        })
        .await
        .unwrap();
    assert_eq!(found.hits.len(), 1);
    // A second rebuild starts from empty shadow tables again.
    let mut again = read.begin_rebuild(CERTIFICATE_VIEW).await.unwrap();
    again.index().await.unwrap();
    again.swap(Changes::default(), 3, 2).await.unwrap();
    assert!(read.dump_certificates().await.unwrap().is_empty());
}

/// A caller that swaps a rebuild in without asking for its indexes first still gets tables a
/// live batch can write to: a newer row of the same certificate replaces the rebuilt one, and
/// a family's keys are replaced by their keys.
pub async fn a_rebuild_swapped_in_without_indexing_takes_live_batches_after(
    read: Arc<dyn ReadStore>,
    _: Arc<dyn TokenStore>,
    _: Arc<dyn AccessRecord>,
) {
    prepared(&read).await;
    let rebuilt = family(1, "Орлова", "77-0001", "Р-1");
    let mut rebuild = read.begin_rebuild(CERTIFICATE_VIEW).await.unwrap();
    rebuild
        .write(Changes {
            certificates: vec![certificate(&rebuilt, 1, true)],
            search: vec![KeyChange::new(rebuilt.family_id, rows::keys(&rebuilt))],
            history: vec![],
        })
        .await
        .unwrap();
    rebuild.swap(Changes::default(), 1, 2).await.unwrap();
    let mut renamed = rebuilt.clone();
    renamed.members[0].last_name = "Соколова".into();
    read.apply(Batch {
        moves: certificate_view_moves(1, 2),
        changes: Changes {
            certificates: vec![certificate(&renamed, 2, true)],
            search: vec![KeyChange::replacing(
                renamed.family_id,
                rows::keys(&rebuilt),
                rows::keys(&renamed),
            )],
            history: vec![],
        },
    })
    .await
    .unwrap();
    let rows = read.dump_certificates().await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].family.members[0].last_name, "Соколова");
    let keys = read.dump_search_keys().await.unwrap();
    assert_eq!(keys.len(), rows::keys(&renamed).len());
    assert!(keys.iter().any(|(_, v, _)| v.starts_with("соколова|")));
    assert!(!keys.iter().any(|(_, v, _)| v.starts_with("орлова|")));
}

/// A rebuild writes its rows in bulk (on SQLite: keys made on a second thread, many rows to a
/// statement); every family of a write that large is found by each of its keys, and a live
/// change afterwards replaces only that family's keys.
pub async fn a_bulk_rebuild_finds_every_family_by_every_key(
    read: Arc<dyn ReadStore>,
    _: Arc<dyn TokenStore>,
    _: Arc<dyn AccessRecord>,
) {
    prepared(&read).await;
    const FAMILIES: u64 = 2_345;
    let all: Vec<_> = (1..=FAMILIES)
        .map(|i| {
            family(
                i,
                &format!("Фамилия{i}"),
                &format!("77-{i:05}"),
                &format!("Р-{i}"),
            )
        })
        .collect();
    let mut rebuild = read.begin_rebuild(CERTIFICATE_VIEW).await.unwrap();
    rebuild
        .write(Changes {
            certificates: all
                .iter()
                .zip(1..)
                .map(|(f, i)| certificate(f, i, true))
                .collect(),
            search: all
                .iter()
                .map(|f| KeyChange::new(f.family_id, rows::keys(f)))
                .collect(),
            history: vec![],
        })
        .await
        .unwrap();
    rebuild.index().await.unwrap();
    rebuild.swap(Changes::default(), FAMILIES, 2).await.unwrap();
    let found = |key: SearchKey| {
        let read = read.clone();
        async move {
            read.search(&Search {
                key,
                after: None,
                limit: 5,
            })
            .await
            .unwrap()
            .hits
            .iter()
            .map(|h| h.family_id)
            .collect::<Vec<_>>()
        }
    };
    for (i, f) in (1..)
        .zip(&all)
        .step_by(97)
        .chain([(FAMILIES, &all[all.len() - 1])])
    {
        assert_eq!(
            found(SearchKey::CertificateNumber(format!("77-{i:05}"))).await,
            vec![f.family_id]
        );
        assert_eq!(
            found(SearchKey::DecisionNumber(format!("р-{i}"))).await,
            vec![f.family_id]
        );
        assert_eq!(
            found(SearchKey::Member {
                last_name: format!("фамилия{i}"),
                birth_date: rows::mother_born(),
            })
            .await,
            vec![f.family_id]
        );
    }
    // A live batch renames one family: its old surname finds nothing, its new one finds it, and
    // its neighbours keep theirs.
    let stored = all[41].clone();
    let mut renamed = all[41].clone();
    for m in &mut renamed.members {
        m.last_name = "Новая".into();
    }
    read.apply(Batch {
        moves: certificate_view_moves(FAMILIES, FAMILIES + 1),
        changes: Changes {
            certificates: vec![certificate(&renamed, FAMILIES + 1, true)],
            search: vec![KeyChange::replacing(
                renamed.family_id,
                rows::keys(&stored),
                rows::keys(&renamed),
            )],
            history: vec![],
        },
    })
    .await
    .unwrap();
    let member = |name: &str| SearchKey::Member {
        last_name: name.into(),
        birth_date: rows::mother_born(),
    };
    assert!(found(member("фамилия42")).await.is_empty());
    assert_eq!(found(member("новая")).await, vec![renamed.family_id]);
    assert_eq!(found(member("фамилия43")).await, vec![all[42].family_id]);
    assert_eq!(
        found(SearchKey::CertificateNumber("77-00042".into())).await,
        vec![renamed.family_id]
    );
    // A live batch as large as a bulk load, renaming every other family: each old surname finds
    // nothing (a write that large with keys to delete is not a bulk load).
    let moved: Vec<_> = all
        .iter()
        .filter(|f| f.family_id != renamed.family_id)
        .map(|f| {
            let mut m = f.clone();
            m.members[0].last_name = format!("{}-Иная", f.members[0].last_name);
            (f, m)
        })
        .collect();
    read.apply(Batch {
        moves: certificate_view_moves(FAMILIES + 1, FAMILIES + 2),
        changes: Changes {
            certificates: moved
                .iter()
                .map(|(_, m)| certificate(m, FAMILIES + 2, true))
                .collect(),
            search: moved
                .iter()
                .map(|(f, m)| KeyChange::replacing(m.family_id, rows::keys(f), rows::keys(m)))
                .collect(),
            history: vec![],
        },
    })
    .await
    .unwrap();
    assert!(found(member("фамилия43")).await.is_empty());
    assert_eq!(
        found(member("фамилия43-иная")).await,
        vec![all[42].family_id]
    );
    assert_eq!(
        read.dump_search_keys().await.unwrap().len() as u64,
        FAMILIES * 6
    );
}

pub async fn a_rebuild_reads_back_the_families_it_wrote_out(
    read: Arc<dyn ReadStore>,
    _: Arc<dyn TokenStore>,
    _: Arc<dyn AccessRecord>,
) {
    prepared(&read).await;
    let f = family(1, "Смирнова", "77-0001", "Р-1");
    let mut rebuild = read.begin_rebuild(CERTIFICATE_VIEW).await.unwrap();
    rebuild
        .write(Changes {
            certificates: vec![certificate(&f, 4, true)],
            search: vec![],
            history: vec![],
        })
        .await
        .unwrap();
    let back = rebuild.current_families(&[f.family_id]).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].family.clone(), back[0].position), (f.clone(), 4));
    // The live store knows nothing of it.
    assert!(read
        .current_families(&[f.family_id])
        .await
        .unwrap()
        .is_empty());
}

pub async fn a_rebuild_holds_off_live_batches_until_its_swap(
    read: Arc<dyn ReadStore>,
    _: Arc<dyn TokenStore>,
    _: Arc<dyn AccessRecord>,
) {
    prepared(&read).await;
    let mut rebuild = read.begin_rebuild(CERTIFICATE_VIEW).await.unwrap();
    rebuild.index().await.unwrap();
    rebuild.lock().await.unwrap();
    let live = read.clone();
    let f = family(1, "Смирнова", "77-0001", "Р-1");
    let mut batch = tokio::spawn(async move {
        live.apply(Batch {
            moves: moves(0, 1),
            changes: Changes {
                certificates: vec![certificate(&f, 1, true)],
                search: vec![],
                history: vec![],
            },
        })
        .await
        .unwrap()
    });
    // Not finished while the rebuild holds the lock (a finished batch would have written from
    // the old checkpoint, under the rebuild's feet).
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut batch)
            .await
            .is_err(),
        "a live batch went through during a swap"
    );
    rebuild.swap(Changes::default(), 7, 2).await.unwrap();
    assert_eq!(
        batch.await.unwrap(),
        Applied::Moved,
        "it then finds the checkpoint moved"
    );
    assert_eq!(checkpoint(&read, CERTIFICATE_VIEW).await, 7);
}

pub async fn access_tokens_are_found_by_their_value_but_stored_hashed(
    _: Arc<dyn ReadStore>,
    tokens: Arc<dyn TokenStore>,
    _: Arc<dyn AccessRecord>,
) {
    let now = chrono::Utc::now();
    let (officer, record) = tokens
        .create_access_token("Петрова А. В.", Role::Officer, None, Some("УСЗН ЦАО"), now)
        .await
        .unwrap();
    let family = registry_domain::FamilyId(uuid::Uuid::from_u128(9));
    let (holder, _) = tokens
        .create_access_token("семья", Role::Holder, Some(family), None, now)
        .await
        .unwrap();
    let found = tokens.find_access_token(&officer).await.unwrap().unwrap();
    assert_eq!((found.id, found.role), (record.id, Role::Officer));
    assert_eq!(found.office.as_deref(), Some("УСЗН ЦАО"));
    let found = tokens.find_access_token(&holder).await.unwrap().unwrap();
    assert_eq!(found.family_id, Some(family));
    assert_eq!(found.office, None);
    assert!(tokens
        .find_access_token("rgt_nope")
        .await
        .unwrap()
        .is_none());
    let listed = tokens.list_tokens().await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(tokens.revoke_token(record.id, now).await.unwrap());
    assert!(!tokens.revoke_token(record.id, now).await.unwrap());
    assert!(tokens.find_access_token(&officer).await.unwrap().is_none());

    // By id, revoked ones too (a history names every actor); unknown ids are left out.
    let by_id = tokens
        .tokens_by_id(&[record.id, uuid::Uuid::from_u128(77)])
        .await
        .unwrap();
    assert_eq!(by_id.len(), 1);
    assert_eq!(by_id[0].name, "Петрова А. В.");
    assert_eq!(by_id[0].office.as_deref(), Some("УСЗН ЦАО"));
    assert!(by_id[0].revoked_at.is_some());
    assert!(tokens.tokens_by_id(&[]).await.unwrap().is_empty());
}

/// The access record answers by family and by actor, newest first, and keeps every entry
/// (durable, append-only: the trait has no call that changes one).
pub async fn the_access_record_lists_entries_by_family_and_by_actor_and_changes_none(
    _: Arc<dyn ReadStore>,
    _: Arc<dyn TokenStore>,
    access: Arc<dyn AccessRecord>,
) {
    use registry_access::{AccessEntry, AccessKind};
    let officer = uuid::Uuid::now_v7();
    let auditor = uuid::Uuid::now_v7();
    let (one, two) = (family(1, "А", "77-1", "Р-1"), family(2, "Б", "77-2", "Р-2"));
    let at = |minute: u32| {
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 12, 2, 10, minute, 0).unwrap()
    };
    let entry = |minute, family: &registry_domain::Family, actor, kind| AccessEntry {
        at: at(minute),
        family_id: family.family_id,
        actor_id: actor,
        actor_name: if actor == officer {
            "Петрова А. А.".into()
        } else {
            "аудитор".into()
        },
        actor_role: if actor == officer {
            Role::Officer
        } else {
            Role::Auditor
        },
        office: (actor == officer).then(|| "УСЗН ЦАО".to_string()),
        kind,
    };
    access
        .record(vec![
            entry(1, &one, officer, AccessKind::SearchResult),
            entry(1, &two, officer, AccessKind::SearchResult),
        ])
        .await
        .unwrap();
    access
        .record(vec![entry(2, &one, officer, AccessKind::FamilyView)])
        .await
        .unwrap();
    access
        .record(vec![entry(3, &one, auditor, AccessKind::History)])
        .await
        .unwrap();
    access.record(vec![]).await.unwrap();

    let of_one = access.by_family(one.family_id, 10).await.unwrap();
    assert_eq!(
        of_one
            .iter()
            .map(|e| (e.kind, e.actor_id))
            .collect::<Vec<_>>(),
        vec![
            (AccessKind::History, auditor),
            (AccessKind::FamilyView, officer),
            (AccessKind::SearchResult, officer),
        ],
        "newest first"
    );
    assert_eq!(
        of_one[1],
        entry(2, &one, officer, AccessKind::FamilyView),
        "every field kept"
    );
    assert_eq!(access.by_family(two.family_id, 10).await.unwrap().len(), 1);
    let by_officer = access.by_actor(officer, 10).await.unwrap();
    assert_eq!(by_officer.len(), 3);
    assert!(by_officer.iter().all(|e| e.actor_id == officer));
    assert_eq!(
        access.by_actor(officer, 2).await.unwrap().len(),
        2,
        "limited"
    );
}

pub async fn officials_signed_in_through_the_provider_are_remembered_by_id(
    _read: Arc<dyn ReadStore>,
    tokens: Arc<dyn TokenStore>,
    _access: Arc<dyn AccessRecord>,
) {
    use registry_access::KnownPerson;
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let first = KnownPerson {
        id: uuid::Uuid::now_v7(),
        name: "Петрова Анна Сергеевна".into(),
        role: Role::Officer,
        office: Some("УСЗН района Арбат".into()),
        seen_at: at,
    };
    tokens.remember_person(&first).await.unwrap();
    // A later sign-in with another office updates the same person.
    let moved = KnownPerson {
        office: Some("УСЗН района Хамовники".into()),
        seen_at: at + chrono::Duration::days(1),
        ..first.clone()
    };
    tokens.remember_person(&moved).await.unwrap();
    let found = tokens
        .people_by_id(&[first.id, uuid::Uuid::from_u128(5)])
        .await
        .unwrap();
    assert_eq!(found, vec![moved]);
    assert!(tokens.people_by_id(&[]).await.unwrap().is_empty());
}
