//! A registry on real SQLite files (event store and read store) with a manual clock.
#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use registry_app::*;
use registry_domain::*;
use registry_projections::*;
use registry_read_store::ReadStore;
use registry_read_store_postgres::PostgresReadStore;
use registry_read_store_sqlite::SqliteReadStore;
use registry_store::EventStore;
use registry_store_postgres::PostgresEventStore;
use registry_store_sqlite::SqliteEventStore;
pub use registry_test_support::builders::{date, decision, grant, person};
pub use registry_test_support::Db;
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
    let plain: Arc<dyn EventStore> = match db {
        Db::Sqlite => Arc::new(SqliteEventStore::open(&events_url).await.unwrap()),
        Db::Postgres => Arc::new(PostgresEventStore::open(&events_url).await.unwrap()),
    };
    // As the binary runs it: personal fields sealed per family (ADR 19).
    let kek = registry_personal_data::FileKek::load_or_create(&dir.path().join("keys")).unwrap();
    let keys = registry_personal_data::SqliteFamilyKeys::open(
        &dir.path().join("keys/family-keys.db"),
        Arc::new(kek),
    )
    .unwrap();
    let store: Arc<dyn EventStore> = Arc::new(registry_personal_data::SealingStore::new(
        plain,
        Arc::new(keys),
    ));
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

/// A projection's stored checkpoint in `read` (0 when it never ran).
pub async fn checkpoint(read: &Arc<dyn ReadStore>, name: &str) -> u64 {
    read.checkpoints()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
        .map_or(0, |c| c.position)
}
