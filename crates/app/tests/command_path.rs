//! The command path against a real SQLite event store.

#![allow(clippy::unwrap_used)]
use chrono::{Duration, TimeZone, Utc};
use registry_app::*;
use registry_domain::*;
use registry_store::EventStore;
use registry_store_sqlite::SqliteEventStore;
use registry_test_support::builders::{date, decision, grant_of, person};
use std::sync::Arc;
use uuid::Uuid;

struct Fixture {
    registry: Registry,
    clock: Arc<ManualClock>,
    store: Arc<dyn EventStore>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(
        SqliteEventStore::open(dir.path().join("events.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
    ));
    let registry = Registry::new(store.clone(), clock.clone(), Policy::federal_2024());
    Fixture {
        registry,
        clock,
        store,
        _dir: dir,
    }
}

fn grant(family_id: FamilyId) -> Command {
    grant_of(
        family_id,
        decision("Р-100", "2026-11-24"),
        vec![
            person("Елена", "1988-04-04", Relation::Parent),
            person("Артём", "2012-01-15", Relation::Child),
            person("Софья", "2016-07-01", Relation::Child),
            person("Лев", "2020-12-12", Relation::Child),
        ],
    )
}

fn request(family_id: FamilyId, command: Command) -> CommandRequest {
    CommandRequest {
        family_id,
        command,
        actor: Actor {
            id: "token-officer-1".into(),
            role: Role::Officer,
        },
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        idempotency_key: None,
        request_hash: "h".into(),
        expected_revision: None,
    }
}

fn newborn(name: &str) -> Command {
    Command::AddMember {
        member: person(name, "2026-11-01", Relation::Child),
        decision: None,
    }
}

#[tokio::test]
async fn a_grant_is_stored_with_its_envelope_and_loads_back() {
    let f = fixture().await;
    let family_id = new_family_id();
    let mut req = request(family_id, grant(family_id));
    req.causation_id = Some(Uuid::now_v7());
    let outcome = f.registry.execute(req.clone()).await.unwrap();
    assert_eq!(outcome.revision, 0);
    assert_eq!(outcome.event_types(), vec!["StatusGranted"]);
    assert_eq!(outcome.family.valid_until, date("2030-01-14"));

    let events = f.registry.events(family_id).await.unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.envelope.stream, family_id.stream_name());
    assert_eq!(e.envelope.event_id.get_version_num(), 7);
    assert_eq!(e.envelope.recorded_at, f.clock.now());
    assert_eq!(e.metadata.actor, req.actor);
    assert_eq!(e.metadata.correlation_id, req.correlation_id);
    assert_eq!(e.metadata.causation_id, req.causation_id);

    let loaded = f.registry.load(family_id).await.unwrap().unwrap();
    assert_eq!(loaded.family, outcome.family);
    assert_eq!(loaded.position, outcome.position);
}

#[tokio::test]
async fn a_refused_command_appends_nothing() {
    let f = fixture().await;
    let family_id = new_family_id();
    let Command::Grant {
        decision,
        mut members,
        valid_from,
        certificate_number,
        certificate_id,
    } = grant(family_id)
    else {
        unreachable!()
    };
    members.pop();
    let result = f
        .registry
        .execute(request(
            family_id,
            Command::Grant {
                decision,
                members,
                valid_from,
                certificate_number,
                certificate_id,
            },
        ))
        .await;
    assert!(matches!(
        result,
        Err(AppError::Domain(DomainError::NotEligible { .. }))
    ));
    assert_eq!(f.store.head().await.unwrap(), 0);
}

#[tokio::test]
async fn concurrent_unpinned_commands_are_decided_again_and_all_land() {
    let f = fixture().await;
    let family_id = new_family_id();
    f.registry
        .execute(request(family_id, grant(family_id)))
        .await
        .unwrap();
    let names = [
        "Вера",
        "Надежда",
        "Любовь",
        "Мирон",
        "Глеб",
        "Ян",
        "Ева",
        "Ада",
    ];
    let mut tasks = Vec::new();
    for name in names {
        let registry = f.registry.clone();
        tasks.push(tokio::spawn(async move {
            registry.execute(request(family_id, newborn(name))).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let loaded = f.registry.load(family_id).await.unwrap().unwrap();
    assert_eq!(loaded.revision, names.len() as u64);
    assert_eq!(loaded.family.members.len(), 4 + names.len());
}

#[tokio::test]
async fn a_pinned_revision_that_moved_is_refused_and_appends_nothing() {
    let f = fixture().await;
    let family_id = new_family_id();
    f.registry
        .execute(request(family_id, grant(family_id)))
        .await
        .unwrap();
    f.registry
        .execute(request(family_id, newborn("Вера")))
        .await
        .unwrap();
    let mut stale = request(family_id, newborn("Ева"));
    stale.expected_revision = Some(0);
    match f.registry.execute(stale).await {
        Err(AppError::RevisionMismatch {
            expected: 0,
            actual: Some(1),
        }) => {}
        other => panic!("expected a revision mismatch, got {other:?}"),
    }
    let mut fresh = request(family_id, newborn("Ева"));
    fresh.expected_revision = Some(1);
    assert_eq!(f.registry.execute(fresh).await.unwrap().revision, 2);
}

#[tokio::test]
async fn the_same_idempotency_key_twice_gives_one_event_and_the_same_answer() {
    let f = fixture().await;
    let family_id = new_family_id();
    let mut first = request(family_id, grant(family_id));
    first.idempotency_key = Some("key-1".into());
    first.request_hash = "body-1".into();
    let a = f.registry.execute(first.clone()).await.unwrap();

    // A retry from the client builds a new command (new ids) from the same body.
    let other_family = new_family_id();
    let mut retry = request(other_family, grant(other_family));
    retry.idempotency_key = Some("key-1".into());
    retry.request_hash = "body-1".into();
    let b = f.registry.execute(retry.clone()).await.unwrap();
    assert!(b.replayed);
    assert_eq!((a.revision, a.position), (b.revision, b.position));
    assert_eq!(a.family, b.family);
    assert_eq!(b.event_types(), vec!["StatusGranted"]);
    assert_eq!(f.store.head().await.unwrap(), 1);

    retry.request_hash = "body-2".into();
    assert!(matches!(
        f.registry.execute(retry).await,
        Err(AppError::IdempotencyMismatch)
    ));
    // Keys are per actor: another officer may use the same key.
    let mut other_actor = request(other_family, grant(other_family));
    other_actor.idempotency_key = Some("key-1".into());
    other_actor.actor.id = "token-officer-2".into();
    assert!(!f.registry.execute(other_actor).await.unwrap().replayed);
    assert_eq!(f.store.head().await.unwrap(), 2);
}

#[tokio::test]
async fn concurrent_requests_with_one_idempotency_key_append_once() {
    let f = fixture().await;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let registry = f.registry.clone();
        tasks.push(tokio::spawn(async move {
            let family_id = new_family_id();
            let mut req = request(family_id, grant(family_id));
            req.idempotency_key = Some("same".into());
            registry.execute(req).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(f.store.head().await.unwrap(), 1);
    assert!(outcomes.iter().all(|o| o.family == outcomes[0].family));
    assert_eq!(outcomes.iter().filter(|o| !o.replayed).count(), 1);
}

#[tokio::test]
async fn as_of_folds_the_stream_up_to_the_instant() {
    let f = fixture().await;
    let family_id = new_family_id();
    let before = f.clock.now() - Duration::seconds(1);
    f.registry
        .execute(request(family_id, grant(family_id)))
        .await
        .unwrap();
    let granted_at = f.clock.now();
    f.clock.advance(Duration::days(3));
    f.registry
        .execute(request(family_id, newborn("Вера")))
        .await
        .unwrap();

    assert!(f.registry.as_of(family_id, before).await.unwrap().is_none());
    let then = f
        .registry
        .as_of(family_id, granted_at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(then.family.members.len(), 4);
    assert_eq!(then.revision, 0);
    let now = f
        .registry
        .as_of(family_id, f.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.family.members.len(), 5);
}
