//! Property: after any sequence of commands, the live views (followed event by event while the
//! commands ran) equal the views rebuilt from scratch, compared as full dumps. The store seals
//! personal data as the binary's does, and erasures are among the commands: the live views
//! redact what they hold, the rebuild reads the sealed fields with the key gone, and the two
//! must agree.

#![allow(clippy::unwrap_used)]
mod support;

use chrono::Duration;
use proptest::prelude::*;
use registry_app::*;
use registry_domain::*;
use registry_projections::*;
use std::sync::Arc;
use support::*;

#[derive(Clone, Debug)]
enum Op {
    Grant,
    Newborn,
    RemoveChild(usize, RemovalReason),
    Rename(usize),
    Renew(usize),
    Revoke,
    Reissue,
    Erase,
    Wait(i64),
}

fn op() -> impl Strategy<Value = (usize, Op)> {
    (
        0usize..3,
        prop_oneof![
            3 => Just(Op::Grant),
            2 => Just(Op::Newborn),
            2 => (0usize..6, prop_oneof![Just(RemovalReason::MovedOut), Just(RemovalReason::StateCare)])
                .prop_map(|(i, r)| Op::RemoveChild(i, r)),
            1 => (0usize..6).prop_map(Op::Rename),
            1 => (0usize..6).prop_map(Op::Renew),
            1 => Just(Op::Revoke),
            1 => Just(Op::Reissue),
            1 => Just(Op::Erase),
            2 => (1i64..400).prop_map(Op::Wait),
        ],
    )
}

async fn apply(w: &World, families: &[FamilyId], (which, op): &(usize, Op)) {
    let family = families[*which];
    let state = w.registry.load(family).await.unwrap().map(|l| l.family);
    let member = |i: usize| {
        state
            .as_ref()
            .and_then(|f| f.members.get(i % f.members.len().max(1)))
            .map(|m| m.member_id)
    };
    let command = match op {
        Op::Grant => grant(family),
        Op::Newborn => Command::AddMember {
            member: person(
                "Новорождённый",
                &w.registry.today().to_string(),
                Relation::Child,
            ),
            decision: None,
        },
        Op::RemoveChild(i, reason) => match member(*i) {
            Some(member_id) => Command::RemoveMember {
                member_id,
                reason: *reason,
            },
            None => return,
        },
        Op::Rename(i) => match member(*i) {
            Some(member_id) => Command::CorrectMember {
                member_id,
                changes: MemberChanges {
                    last_name: Some("Исправленная".into()),
                    ..MemberChanges::default()
                },
            },
            None => return,
        },
        Op::Renew(i) => Command::Renew {
            decision: decision("Р-9", &w.registry.today().to_string()),
            student_confirmations: member(*i)
                .map(|member_id| StudentConfirmation {
                    member_id,
                    student_until: w.registry.today() + Duration::days(900),
                })
                .into_iter()
                .collect(),
        },
        Op::Revoke => Command::Revoke {
            reason: "проверка".into(),
            decision: None,
        },
        Op::Reissue => Command::ReissueCertificate {
            reason: "утерян".into(),
            certificate_id: new_certificate_id(),
        },
        // No retention: allowed as soon as the status ended (revoked, or run out).
        Op::Erase => Command::ErasePersonalData {
            reason: "истёк срок хранения".into(),
            decision: decision("Р-10", &w.registry.today().to_string()),
            retention_days: 0,
        },
        Op::Wait(days) => {
            w.clock.advance(Duration::days(*days));
            return;
        }
    };
    // Refusals are part of the property: they must leave no trace in either view.
    let _ = w.run(family, command).await;
}

/// Runs `ops`, then compares the live views with views rebuilt from scratch.
fn check(db: Db, ops: &[(usize, Op)]) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let Some(mut w) = world_with(db, |r| r.with_batch(3)).await else {
            return;
        };
        let runner = w.follow();
        let families: Vec<FamilyId> = (0..3).map(|_| new_family_id()).collect();
        for op in ops {
            apply(&w, &families, op).await;
        }
        w.runner.catch_up().await.unwrap();
        runner.abort();
        let live = (
            w.read.dump_certificates().await.unwrap(),
            w.read.dump_history().await.unwrap(),
        );

        // From scratch, in a read store that never saw the live runner.
        let fresh = w.second_read_store("rebuilt.db").await;
        let rebuilder =
            ProjectionRunner::new(w.store.clone(), fresh.clone(), default_projections());
        rebuilder.prepare().await.unwrap();
        rebuilder
            .rebuild(&["certificate_view", "family_history"], |_| {})
            .await
            .unwrap();
        let rebuilt = (
            fresh.dump_certificates().await.unwrap(),
            fresh.dump_history().await.unwrap(),
        );
        assert_eq!(live, rebuilt);

        // Again with room for one family in memory: the rebuild writes out, then goes on batch
        // by batch against the shadow table.
        let small = w.second_read_store("rebuilt-small.db").await;
        let projections: Vec<Arc<dyn Projection>> = vec![
            Arc::new(CertificateView::with_rebuild_memory(1)),
            Arc::new(FamilyHistory),
        ];
        let tight =
            ProjectionRunner::new(w.store.clone(), small.clone(), projections).with_batch(1);
        tight
            .rebuild(&["certificate_view", "family_history"], |_| {})
            .await
            .unwrap();
        let rebuilt_tight = (
            small.dump_certificates().await.unwrap(),
            small.dump_history().await.unwrap(),
        );
        assert_eq!(live, rebuilt_tight);
        // The live runner replaced each family's keys by the keys it was stored with: none is
        // left behind that a rebuild would not write.
        let live_keys = w.read.dump_search_keys().await.unwrap();
        assert_eq!(live_keys, fresh.dump_search_keys().await.unwrap());
        assert_eq!(live_keys, small.dump_search_keys().await.unwrap());
        // Search answers the same from each: every key of every current family (and so every
        // key a family had before a member change left it, as long as another family has it).
        let mut keys: Vec<registry_read_store::SearchKey> = live
            .0
            .iter()
            .filter(|r| r.is_current)
            .flat_map(|r| search_keys(&r.family))
            .collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let search = registry_read_store::Search {
                key,
                after: None,
                limit: 50,
            };
            let found = w.read.search(&search).await.unwrap();
            assert!(!found.hits.is_empty(), "{search:?} finds its own family");
            assert_eq!(found, fresh.search(&search).await.unwrap(), "{search:?}");
            assert_eq!(found, small.search(&search).await.unwrap(), "{search:?}");
        }
        // The timeline's reason and decision, read cheaply from the stored JSON, are what the
        // fully decoded event says (the decision as the same JSON value).
        let json =
            |d: Option<String>| d.map(|d| serde_json::from_str::<serde_json::Value>(&d).unwrap());
        for row in &live.1 {
            let stored = &w.store.read_all(row.position, 1).await.unwrap()[0];
            let event =
                FamilyEvent::decode(&row.event_type, row.schema_version, &stored.data).unwrap();
            let (reason, decision) = reason_and_decision(&event);
            assert_eq!(
                (row.reason.clone(), json(row.decision.clone())),
                (reason, json(decision)),
                "{}",
                row.event_type
            );
        }

        // Every current row matches the family folded from its stream.
        for family in &families {
            let loaded = w.registry.load(*family).await.unwrap();
            let row = w.read.certificate_of_family(*family).await.unwrap();
            assert_eq!(
                loaded.as_ref().map(|l| (&l.family, l.revision)),
                row.as_ref().map(|r| (&r.family, r.revision))
            );
        }
        let events = w.store.head().await.unwrap();
        assert_eq!(live.1.len() as u64, events);
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn live_views_equal_views_rebuilt_from_scratch_on_sqlite(ops in prop::collection::vec(op(), 1..40)) {
        check(Db::Sqlite, &ops);
    }
}

proptest! {
    // Each case creates three PostgreSQL databases: fewer cases, same property.
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    #[test]
    fn live_views_equal_views_rebuilt_from_scratch_on_postgres(ops in prop::collection::vec(op(), 1..40)) {
        check(Db::Postgres, &ops);
    }
}
