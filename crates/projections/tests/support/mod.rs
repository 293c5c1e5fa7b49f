//! A registry on real SQLite files (event store and read store) with a manual clock.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{NaiveDate, TimeZone, Utc};
use registry_app::*;
use registry_domain::*;
use registry_projections::*;
use registry_read_store::ReadStore;
use registry_read_store_postgres::PostgresReadStore;
use registry_read_store_sqlite::SqliteReadStore;
use registry_store::EventStore;
use registry_store_postgres::PostgresEventStore;
use registry_store_sqlite::SqliteEventStore;
use std::sync::Arc;
use uuid::Uuid;

pub struct World {
    pub db: Db,
    pub registry: Registry,
    pub clock: Arc<ManualClock>,
    pub store: Arc<dyn EventStore>,
    pub read: Arc<dyn ReadStore>,
    /// Where the read store lives: a SQLite file or a PostgreSQL URL.
    pub read_url: String,
    pub runner: Arc<ProjectionRunner>,
    pub dir: tempfile::TempDir,
}

/// Which databases a world runs on (event store and read store alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn(Db)` as two tests, one per backend. PostgreSQL tests are skipped
/// (with a message) where no PostgreSQL is available, and fail in CI.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::Db::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::support::Db::Postgres).await
                }
            )+
        }
    };
}

pub async fn world(db: Db) -> Option<World> {
    world_with(db, |r| r).await
}

/// A fresh database URL (or SQLite file) for `db`.
async fn database(db: Db, dir: &tempfile::TempDir, name: &str) -> Option<String> {
    match db {
        Db::Sqlite => Some(dir.path().join(name).to_str().unwrap().to_string()),
        Db::Postgres => registry_test_support::fresh_database().await,
    }
}

/// Opens the read store at `url` on `db`'s backend.
pub async fn open_read_store(db: Db, url: &str) -> Arc<dyn ReadStore> {
    match db {
        Db::Sqlite => Arc::new(SqliteReadStore::open(url).await.unwrap()),
        Db::Postgres => Arc::new(PostgresReadStore::open(url).await.unwrap()),
    }
}

pub async fn world_with(
    db: Db,
    configure: impl FnOnce(ProjectionRunner) -> ProjectionRunner,
) -> Option<World> {
    let dir = tempfile::tempdir().unwrap();
    let events_url = database(db, &dir, "events.db").await?;
    let store: Arc<dyn EventStore> = match db {
        Db::Sqlite => Arc::new(SqliteEventStore::open(&events_url).await.unwrap()),
        Db::Postgres => Arc::new(PostgresEventStore::open(&events_url).await.unwrap()),
    };
    let read_url = database(db, &dir, "views.db").await?;
    let read = open_read_store(db, &read_url).await;
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
    Some(World {
        db,
        registry,
        clock,
        store,
        read,
        read_url,
        runner: Arc::new(runner),
        dir,
    })
}

impl World {
    /// A fresh read store next to this world's, for rebuilding from scratch.
    pub async fn second_read_store(&self, name: &str) -> Arc<dyn ReadStore> {
        let url = database(self.db, &self.dir, name).await.unwrap();
        open_read_store(self.db, &url).await
    }

    /// A projection's stored checkpoint.
    pub async fn checkpoint(&self, name: &str) -> u64 {
        checkpoint(&self.read, name).await
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

/// A projection's stored checkpoint in `read` (0 when it never ran).
pub async fn checkpoint(read: &Arc<dyn ReadStore>, name: &str) -> u64 {
    read.checkpoints()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
        .map_or(0, |c| c.position)
}
