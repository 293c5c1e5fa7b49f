//! A registry on real SQLite files (event store and read store) with a manual clock.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{NaiveDate, TimeZone, Utc};
use registry_app::*;
use registry_domain::*;
use registry_projections::*;
use registry_store::EventStore;
use registry_store_sqlite::SqliteEventStore;
use std::sync::Arc;
use uuid::Uuid;

pub struct World {
    pub registry: Registry,
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn EventStore>,
    pub read: ReadStore,
    pub runner: Arc<ProjectionRunner>,
    pub dir: tempfile::TempDir,
}

pub async fn world() -> World {
    world_with(|r| r).await
}

pub async fn world_with(configure: impl FnOnce(ProjectionRunner) -> ProjectionRunner) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn EventStore> = Arc::new(
        SqliteEventStore::open(dir.path().join("events.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let read = ReadStore::connect(dir.path().join("views.db").to_str().unwrap())
        .await
        .unwrap();
    let runner = configure(ProjectionRunner::new(
        store.clone(),
        read.clone(),
        default_projections(),
    ));
    runner.prepare().await.unwrap();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
    ));
    let registry = Registry::new(store.clone(), clock.clone(), Policy::federal_2024());
    World {
        registry,
        clock,
        store,
        read,
        runner: Arc::new(runner),
        dir,
    }
}

impl World {
    /// A fresh read store next to this world's, for rebuilding from scratch.
    pub async fn second_read_store(&self, name: &str) -> ReadStore {
        ReadStore::connect(self.dir.path().join(name).to_str().unwrap())
            .await
            .unwrap()
    }

    /// Runs the projection runner in the background and makes commands wait for it.
    pub fn follow(&mut self) -> tokio::task::JoinHandle<()> {
        self.registry = self
            .registry
            .clone()
            .with_visibility(Arc::new(self.runner.handle()));
        let runner = self.runner.clone();
        tokio::spawn(runner.run(std::future::pending()))
    }

    pub async fn run(
        &self,
        family_id: FamilyId,
        command: Command,
    ) -> Result<CommandOutcome, AppError> {
        self.registry
            .execute(CommandRequest {
                family_id,
                command,
                actor: Actor {
                    id: "officer-token-1".into(),
                    role: Role::Officer,
                },
                correlation_id: Uuid::now_v7(),
                causation_id: None,
                idempotency_key: None,
                request_hash: String::new(),
                expected_revision: None,
            })
            .await
    }
}

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

pub fn person(first: &str, born: &str, relation: Relation) -> Member {
    Member {
        member_id: new_member_id(),
        last_name: "Соколова".into(),
        first_name: first.into(),
        middle_name: Some("Андреевна".into()),
        birth_date: date(born),
        relation,
        student_until: None,
        care: Care::Family,
    }
}

pub fn decision(number: &str, on: &str) -> Decision {
    Decision {
        number: number.into(),
        date: date(on),
        office: None,
        term_until: None,
    }
}

pub fn grant(family_id: FamilyId) -> Command {
    Command::Grant {
        decision: decision("Р-1", "2026-11-24"),
        members: vec![
            person("Ирина", "1987-03-03", Relation::Parent),
            person("Максим", "2009-02-10", Relation::Child),
            person("Дарья", "2013-06-20", Relation::Child),
            person("Тимур", "2018-10-01", Relation::Child),
        ],
        valid_from: None,
        certificate_number: certificate_number(family_id),
        certificate_id: new_certificate_id(),
    }
}
