//! The projections against real SQLite event and read stores.

#![allow(clippy::unwrap_used)]
mod support;

use chrono::Duration;
use registry_app::*;
use registry_domain::*;
use registry_projections::*;
use registry_store::RecordedEvent;
use std::sync::Arc;
use support::*;

async fn after_a_revocation_returns_the_certificate_view_already_says_revoked(db: Db) {
    let Some(mut w) = world(db).await else {
        return;
    };
    let _runner = w.follow();
    let family = new_family_id();
    let granted = w.run(family, grant(family)).await.unwrap();
    let token = granted.family.certificate_id;
    let row = w.read.certificate_by_token(token).await.unwrap().unwrap();
    assert_eq!(row.state_on(w.registry.today()), CertificateState::Active);

    w.run(
        family,
        Command::Revoke {
            reason: "недостоверные сведения".into(),
            decision: None,
        },
    )
    .await
    .unwrap();
    // No waiting: the command's answer implies the view shows it.
    let row = w.read.certificate_by_token(token).await.unwrap().unwrap();
    assert_eq!(row.state_on(w.registry.today()), CertificateState::Revoked);
    assert_eq!(row.status, "revoked");
}

async fn a_reissued_certificate_leaves_a_replaced_row_that_discloses_no_one(db: Db) {
    let Some(mut w) = world(db).await else {
        return;
    };
    let _runner = w.follow();
    let family = new_family_id();
    let old = w
        .run(family, grant(family))
        .await
        .unwrap()
        .family
        .certificate_id;
    let reissued = w
        .run(
            family,
            Command::ReissueCertificate {
                reason: "утерян телефон".into(),
                certificate_id: new_certificate_id(),
            },
        )
        .await
        .unwrap();
    let today = w.registry.today();
    let old_row = w.read.certificate_by_token(old).await.unwrap().unwrap();
    assert_eq!(old_row.state_on(today), CertificateState::Replaced);
    assert!(old_row.family.members.is_empty());
    let new_row = w
        .read
        .certificate_by_token(reissued.family.certificate_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(new_row.state_on(today), CertificateState::Active);
    assert_eq!(new_row.serial, 2);
    assert_eq!(new_row.family.members.len(), 4);
    let current = w.read.certificate_of_family(family).await.unwrap().unwrap();
    assert_eq!(current.token_id, reissued.family.certificate_id);
}

/// Wraps a projection and fails when a batch reaches one chosen position (after turning the
/// events before it into rows, which must then be dropped with the whole batch).
#[derive(Debug)]
struct FailAt {
    inner: Arc<dyn Projection>,
    position: u64,
}

impl Projection for FailAt {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn version(&self) -> i64 {
        self.inner.version()
    }
    fn folds_families(&self) -> bool {
        self.inner.folds_families()
    }
    fn project(
        &self,
        families: &mut Families,
        events: &[RecordedEvent],
        out: &mut registry_read_store::Changes,
    ) -> Result<(), ProjectionError> {
        match events.iter().position(|e| e.position == self.position) {
            Some(i) => {
                self.inner.project(families, &events[..i], out)?;
                Err(ProjectionError::Injected(format!(
                    "injected failure at {}",
                    self.position
                )))
            }
            None => self.inner.project(families, events, out),
        }
    }
    fn flush(&self, families: &mut Families, out: &mut registry_read_store::Changes) {
        self.inner.flush(families, out);
    }
}

async fn some_history(w: &World, families: usize) -> Vec<FamilyId> {
    let mut ids = Vec::new();
    for _ in 0..families {
        let family = new_family_id();
        w.run(family, grant(family)).await.unwrap();
        w.run(
            family,
            Command::AddMember {
                member: person("Вера", "2026-11-01", Relation::Child),
                decision: None,
            },
        )
        .await
        .unwrap();
        w.run(
            family,
            Command::ReissueCertificate {
                // A backslash, which PostgreSQL's COPY text format escapes, in the column and
                // (with the quotes) in the event's JSON: a rebuild must store both as the live
                // runner did.
                reason: r#"утерян \ "телефон""#.into(),
                certificate_id: new_certificate_id(),
            },
        )
        .await
        .unwrap();
        ids.push(family);
    }
    ids
}

async fn a_failure_between_events_of_a_batch_then_a_restart_applies_every_event_exactly_once(
    db: Db,
) {
    let Some(w) = world(db).await else {
        return;
    };
    let families = some_history(&w, 6).await; // 18 events
    let failing = ProjectionRunner::new(
        w.store.clone(),
        w.read.clone(),
        vec![
            Arc::new(FailAt {
                inner: Arc::new(CertificateView::default()),
                position: 13,
            }),
            Arc::new(FamilyHistory),
        ],
    )
    .with_batch(5);
    assert_eq!(failing.step().await.unwrap(), 5);
    assert_eq!(failing.step().await.unwrap(), 5);
    let err = failing.step().await.unwrap_err();
    assert!(matches!(err, ProjectionError::Injected(_)), "{err}");
    // The failed batch left nothing behind: checkpoints and rows stop at position 10.
    assert_eq!(w.checkpoint("certificate_view").await, 10);
    assert_eq!(w.checkpoint("family_history").await, 10);
    assert_eq!(w.read.dump_history().await.unwrap().len(), 10);
    drop(failing);

    // Restart: a new runner picks up from the checkpoints.
    let restarted =
        ProjectionRunner::new(w.store.clone(), w.read.clone(), default_projections()).with_batch(5);
    restarted.catch_up().await.unwrap();
    let history = w.read.dump_history().await.unwrap();
    let positions: Vec<u64> = history.iter().map(|h| h.position).collect();
    assert_eq!(
        positions,
        (1..=18).collect::<Vec<_>>(),
        "each event once, none skipped"
    );
    for family in families {
        let loaded = w.registry.load(family).await.unwrap().unwrap();
        let row = w.read.certificate_of_family(family).await.unwrap().unwrap();
        assert_eq!(row.revision, loaded.revision);
        assert_eq!(row.family, loaded.family);
    }
}

async fn a_redelivered_batch_changes_nothing(db: Db) {
    let Some(w) = world(db).await else {
        return;
    };
    some_history(&w, 3).await;
    w.runner.catch_up().await.unwrap();
    let before = (
        w.read.dump_certificates().await.unwrap(),
        w.read.dump_history().await.unwrap(),
    );
    // Deliver the whole log again, as a runner that lost its state would: the rows of every
    // event, folded afresh from nothing, applied from the stored checkpoints.
    let events = w.store.read_all(1, 1000).await.unwrap();
    let mut batch = registry_read_store::Batch::default();
    for p in default_projections() {
        let mut families = Families::complete();
        p.project(&mut families, &events, &mut batch.changes)
            .unwrap();
        p.flush(&mut families, &mut batch.changes);
        let at = w.checkpoint(p.name()).await;
        batch.moves.push(registry_read_store::Move {
            projection: p.name(),
            from: at,
            to: at,
            version: p.version(),
        });
    }
    assert!(!batch.changes.certificates.is_empty());
    assert_eq!(
        w.read.apply(batch).await.unwrap(),
        registry_read_store::Applied::Done
    );
    let after = (
        w.read.dump_certificates().await.unwrap(),
        w.read.dump_history().await.unwrap(),
    );
    assert_eq!(before, after);
}

async fn as_of_before_the_grant_is_not_found_and_between_renewal_and_revocation_shows_the_renewed_dates(
    db: Db,
) {
    let Some(w) = world(db).await else {
        return;
    };
    let family = new_family_id();
    let before_grant = w.clock.now() - Duration::minutes(1);
    let granted = w.run(family, grant(family)).await.unwrap();
    assert_eq!(granted.family.valid_until, date("2027-02-09"));

    w.clock.advance(Duration::days(30));
    let renewed = w
        .run(
            family,
            Command::Renew {
                decision: decision("Р-2", "2026-12-25"),
                student_confirmations: vec![StudentConfirmation {
                    member_id: granted.family.members[1].member_id,
                    student_until: date("2031-06-30"),
                }],
            },
        )
        .await
        .unwrap();
    let between = w.clock.now() + Duration::days(1);
    w.clock.advance(Duration::days(2));
    w.run(
        family,
        Command::Revoke {
            reason: "переезд".into(),
            decision: None,
        },
    )
    .await
    .unwrap();

    assert!(w
        .registry
        .as_of(family, before_grant)
        .await
        .unwrap()
        .is_none());
    let then = w.registry.as_of(family, between).await.unwrap().unwrap();
    assert_eq!(then.family.valid_until, date("2031-06-19"));
    assert_eq!(then.family.valid_until, renewed.family.valid_until);
    assert_eq!(then.family.status, Status::Active);
    assert_eq!(then.revision, 1);
    let now = w
        .registry
        .as_of(family, w.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.family.status, Status::Revoked);
}

async fn a_rebuild_in_place_keeps_the_live_view_readable_and_ends_equal(db: Db) {
    let Some(w) = world_with(db, |r| r.with_batch(4)).await else {
        return;
    };
    let families = some_history(&w, 8).await;
    w.runner.catch_up().await.unwrap();
    let before = w.read.dump_certificates().await.unwrap();
    let history_before = w.read.dump_history().await.unwrap();

    let probe = {
        let read = w.read.clone();
        let family = families[0];
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = done.clone();
        let task = tokio::spawn(async move {
            let mut reads = 0;
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                let row = read.certificate_of_family(family).await.unwrap();
                assert!(row.is_some(), "the live view went empty during the rebuild");
                reads += 1;
                tokio::task::yield_now().await;
            }
            reads
        });
        (done, task)
    };
    let rebuilt = w
        .runner
        .rebuild(&["certificate_view", "family_history"], |_| {})
        .await
        .unwrap();
    probe.0.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(probe.1.await.unwrap() > 0);
    assert_eq!(rebuilt, 24);
    assert_eq!(w.read.dump_certificates().await.unwrap(), before);
    assert_eq!(w.read.dump_history().await.unwrap(), history_before);
    // The runner goes on from the swapped checkpoints.
    let family = new_family_id();
    w.run(family, grant(family)).await.unwrap();
    w.runner.catch_up().await.unwrap();
    assert!(w
        .read
        .certificate_of_family(family)
        .await
        .unwrap()
        .is_some());
    assert_eq!(w.read.dump_history().await.unwrap().len(), 25);
}

async fn an_unknown_projection_name_is_refused(db: Db) {
    let Some(w) = world(db).await else {
        return;
    };
    let err = w
        .runner
        .rebuild(&["no_such_view"], |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, ProjectionError::UnknownProjection(_)));
}

async fn a_rebuild_over_an_undecodable_event_fails_and_leaves_the_live_views_as_they_were(db: Db) {
    let Some(w) = world_with(db, |r| r.with_batch(2)).await else {
        return;
    };
    let families = some_history(&w, 4).await; // 12 events
    w.runner.catch_up().await.unwrap();
    let before = (
        w.read.dump_certificates().await.unwrap(),
        w.read.dump_history().await.unwrap(),
        w.read.checkpoints().await.unwrap(),
    );
    // A family stream gets an event no code of this version can read (written past the
    // command path, as a damaged or foreign log would hold it). Its metadata is sound, so the
    // history could take it: only the certificate view fails, and the rebuild must report that
    // cause, not the history's being stopped.
    let stored = w
        .store
        .append(
            &families[1].stream_name(),
            registry_store::ExpectedRevision::Any,
            vec![registry_store::NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: "StatusGranted".into(),
                schema_version: 1,
                data: "{\"family_id\": 7}".into(),
                metadata: serde_json::json!({
                    "actor": {"id": "token-officer-1", "role": "officer"},
                    "correlation_id": uuid::Uuid::now_v7(),
                })
                .to_string(),
                recorded_at: w.clock.now(),
            }],
            None,
        )
        .await
        .unwrap();
    let err = w
        .runner
        .rebuild(&["certificate_view", "family_history"], |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProjectionError::BadEvent { position, .. } if position == stored.position),
        "{err}"
    );
    let after = (
        w.read.dump_certificates().await.unwrap(),
        w.read.dump_history().await.unwrap(),
        w.read.checkpoints().await.unwrap(),
    );
    assert_eq!(before, after);
}

/// Secondary indexes of the projections' tables (primary keys not counted).
async fn secondary_indexes(w: &World) -> i64 {
    match w.db {
        Db::Sqlite => {
            let conn = rusqlite::Connection::open(&w.read_url).unwrap();
            conn.query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
                 AND tbl_name IN ('certificate_view', 'family_history', 'family_search')",
                [],
                |r| r.get(0),
            )
            .unwrap()
        }
        Db::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&w.read_url).await.unwrap();
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_indexes WHERE indexname NOT LIKE '%pkey' \
                 AND tablename IN ('certificate_view', 'family_history', 'family_search')",
            )
            .fetch_one(&mut conn)
            .await
            .unwrap()
        }
    }
}

async fn restarts_and_rebuilds_keep_one_copy_of_each_index(db: Db) {
    let Some(w) = world(db).await else {
        return;
    };
    some_history(&w, 2).await;
    w.runner.catch_up().await.unwrap();
    // The certificates and the history by family; the search keys need none beside their key.
    assert_eq!(secondary_indexes(&w).await, 2);
    for _ in 0..2 {
        // What a restart of the server does.
        ProjectionRunner::new(w.store.clone(), w.read.clone(), default_projections())
            .prepare()
            .await
            .unwrap();
    }
    assert_eq!(secondary_indexes(&w).await, 2);
    w.runner
        .rebuild(&["certificate_view", "family_history"], |_| {})
        .await
        .unwrap();
    assert_eq!(secondary_indexes(&w).await, 2);
}

/// Runs `sql` on the read store's database.
async fn execute(w: &World, sql: &str) {
    match w.db {
        Db::Sqlite => {
            let conn = rusqlite::Connection::open(&w.read_url).unwrap();
            conn.execute_batch(sql).unwrap();
        }
        Db::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&w.read_url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
    }
}

/// The columns of the live `family_history` table.
async fn history_columns(w: &World) -> Vec<String> {
    match w.db {
        Db::Sqlite => {
            let conn = rusqlite::Connection::open(&w.read_url).unwrap();
            let mut q = conn
                .prepare("SELECT name FROM pragma_table_info('family_history') ORDER BY cid")
                .unwrap();
            let names = q.query_map([], |r| r.get(0)).unwrap();
            names.collect::<Result<_, _>>().unwrap()
        }
        Db::Postgres => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&w.read_url).await.unwrap();
            sqlx::query_scalar(
                "SELECT column_name::TEXT FROM information_schema.columns \
                 WHERE table_name = 'family_history' AND table_schema = current_schema() \
                 ORDER BY ordinal_position",
            )
            .fetch_all(&mut conn)
            .await
            .unwrap()
        }
    }
}

/// A read store written by version 1 of the history (which kept a copy of each event's data,
/// personal fields included, in a `data NOT NULL` column): the next start rebuilds it into
/// rows without that copy, and new events then apply to the new table.
async fn a_history_of_version_1_is_rebuilt_without_its_copy_of_the_data_on_start(db: Db) {
    let Some(w) = world(db).await else {
        return;
    };
    some_history(&w, 2).await;
    w.runner.catch_up().await.unwrap();
    let before = w.read.dump_history().await.unwrap();
    execute(
        &w,
        "ALTER TABLE family_history ADD COLUMN data TEXT NOT NULL DEFAULT '{\"family_id\":\"x\"}';
         UPDATE projection_checkpoints SET version = 1 WHERE name = 'family_history';",
    )
    .await;
    assert!(history_columns(&w).await.contains(&"data".to_string()));

    // What the next start of the server does.
    let restarted = ProjectionRunner::new(w.store.clone(), w.read.clone(), default_projections());
    restarted.prepare().await.unwrap();

    assert!(
        !history_columns(&w).await.contains(&"data".to_string()),
        "{:?}",
        history_columns(&w).await
    );
    let versions: Vec<(String, i64)> = w
        .read
        .checkpoints()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.version))
        .collect();
    assert!(
        versions.contains(&("family_history".to_string(), 2)),
        "{versions:?}"
    );
    assert_eq!(w.read.dump_history().await.unwrap(), before);
    some_history(&w, 1).await;
    restarted.catch_up().await.unwrap();
    assert_eq!(w.read.dump_history().await.unwrap().len(), before.len() + 3);
}

registry_test_support::on_both_backends!(
    a_history_of_version_1_is_rebuilt_without_its_copy_of_the_data_on_start,
    after_a_revocation_returns_the_certificate_view_already_says_revoked,
    a_reissued_certificate_leaves_a_replaced_row_that_discloses_no_one,
    a_failure_between_events_of_a_batch_then_a_restart_applies_every_event_exactly_once,
    a_redelivered_batch_changes_nothing,
    a_rebuild_in_place_keeps_the_live_view_readable_and_ends_equal,
    an_unknown_projection_name_is_refused,
    a_rebuild_over_an_undecodable_event_fails_and_leaves_the_live_views_as_they_were,
    restarts_and_rebuilds_keep_one_copy_of_each_index,
    as_of_before_the_grant_is_not_found_and_between_renewal_and_revocation_shows_the_renewed_dates,
    an_event_applied_live_just_before_the_swap_is_in_the_swapped_views,
);

/// A rebuild (here from another process, as `registry projections rebuild` beside a server)
/// that the live runner overtakes between the end of the shadow tables and the swap: the event
/// the live runner applied in that gap must be in the swapped-in views at once, not only after
/// the next event arrives.
async fn an_event_applied_live_just_before_the_swap_is_in_the_swapped_views(db: Db) {
    let Some(w) = world(db).await else {
        return;
    };
    let families = some_history(&w, 3).await;
    w.runner.catch_up().await.unwrap();
    let target = families[0];
    let hook: SwapHook = {
        let registry = w.registry.clone();
        let live = w.runner.clone();
        Arc::new(move || {
            let registry = registry.clone();
            let live = live.clone();
            Box::pin(async move {
                registry
                    .execute(CommandRequest {
                        family_id: target,
                        command: Command::Revoke {
                            reason: "недостоверные сведения".into(),
                            decision: None,
                        },
                        actor: Actor {
                            id: "officer-token-1".into(),
                            role: Role::Officer,
                        },
                        correlation_id: uuid::Uuid::now_v7(),
                        causation_id: None,
                        idempotency_key: None,
                        request_hash: String::new(),
                        expected_revision: None,
                    })
                    .await
                    .unwrap();
                live.catch_up().await.unwrap();
                let row = live
                    .handle()
                    .read_store()
                    .certificate_of_family(target)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(row.status, "revoked", "the live runner applied it");
            })
        })
    };
    let rebuilder = ProjectionRunner::new(w.store.clone(), w.read.clone(), default_projections())
        .before_swap(hook);
    rebuilder
        .rebuild(&["certificate_view", "family_history"], |_| {})
        .await
        .unwrap();
    // No new event since: the views must already show the revocation.
    let row = w.read.certificate_of_family(target).await.unwrap().unwrap();
    assert_eq!(row.status, "revoked", "the swap lost an applied event");
    let history = w.read.history(target).await.unwrap();
    assert_eq!(history.last().unwrap().event_type, "StatusRevoked");
    let head = w.store.head().await.unwrap();
    assert_eq!(w.checkpoint("certificate_view").await, head);
}
