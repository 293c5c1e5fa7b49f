//! `certificate_view`: one row per certificate token, what a QR lookup resolves against. Expiry is
//! not stored: it is computed at read time from `valid_until` and today's date.

use crate::read_store::{Backend, ReadStore};
use crate::runner::{begin_immediate, create_rebuild_indexes, Target};
use crate::{
    placeholders, to_i64, to_u64, Projection, ProjectionError, Rebuilder, SqliteRebuilder,
};
use async_trait::async_trait;
use chrono::NaiveDate;
use registry_domain::{
    evolve, CertificateId, CertificateState, Family, FamilyEvent, FamilyId, Status,
};
use registry_store::RecordedEvent;
use sqlx::{AnyConnection, Row};
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;
use uuid::Uuid;

pub const NAME: &str = "certificate_view";
const COLUMNS: &str = "token_id, family_id, is_current, certificate_number, serial, status, \
                       valid_from, valid_until, family, revision, position";
const COLUMN_COUNT: usize = 11;
/// Rows per multi-row upsert statement.
const CHUNK: usize = 200;
/// Families per query when a batch loads the rows it folds onto.
const LOAD_CHUNK: usize = 500;

/// The certificate view projection.
#[derive(Clone, Copy, Debug)]
pub struct CertificateView {
    rebuild_families_in_memory: usize,
}

impl Default for CertificateView {
    fn default() -> Self {
        Self {
            rebuild_families_in_memory: REBUILD_FAMILIES_IN_MEMORY,
        }
    }
}

impl CertificateView {
    /// How many families a rebuild folds in memory before it writes them out and continues
    /// batch by batch (tests make it small to cover that path).
    pub fn with_rebuild_memory(families: usize) -> Self {
        Self {
            rebuild_families_in_memory: families.max(1),
        }
    }
}

/// One row of the certificate view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRow {
    pub token_id: CertificateId,
    pub family_id: FamilyId,
    /// This token is the family's current certificate (not replaced).
    pub is_current: bool,
    pub certificate_number: String,
    pub serial: u32,
    /// `active`, `terminated`, `revoked` (as recorded) or `replaced`.
    pub status: String,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    /// The folded family (members emptied on replaced rows: an old QR discloses no one).
    pub family: Family,
    pub revision: u64,
    pub position: u64,
}

impl CertificateRow {
    /// What the QR of this row shows on `today`.
    pub fn state_on(&self, today: NaiveDate) -> CertificateState {
        if self.is_current {
            self.family.state_on(today)
        } else {
            CertificateState::Replaced
        }
    }
}

fn table(target: Target) -> &'static str {
    match target {
        Target::Live => "certificate_view",
        Target::Rebuild => "certificate_view_rebuild",
    }
}

fn status_str(status: Status) -> &'static str {
    match status {
        Status::Active => "active",
        Status::Terminated => "terminated",
        Status::Revoked => "revoked",
    }
}

#[async_trait]
impl Projection for CertificateView {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["certificate_view"]
    }

    fn create_tables(&self, backend: Backend, target: Target) -> Vec<String> {
        let t = table(target);
        let int = match backend {
            Backend::Sqlite => "INTEGER",
            Backend::Postgres => "BIGINT",
        };
        vec![format!(
            "CREATE TABLE IF NOT EXISTS {t} (
                token_id           TEXT PRIMARY KEY,
                family_id          TEXT NOT NULL,
                is_current         {int} NOT NULL,
                certificate_number TEXT NOT NULL,
                serial             {int} NOT NULL,
                status             TEXT NOT NULL,
                valid_from         TEXT NOT NULL,
                valid_until        TEXT NOT NULL,
                family             TEXT NOT NULL,
                revision           {int} NOT NULL,
                position           {int} NOT NULL
            )"
        )]
    }

    fn create_indexes(&self, _backend: Backend, target: Target) -> Vec<String> {
        let t = table(target);
        // Index names must be unique per database and survive a rename of their table, so
        // they carry a random suffix; they are created once, with the table or after a
        // rebuild's rows.
        let suffix = Uuid::new_v4().simple().to_string();
        vec![format!(
            "CREATE INDEX certificate_view_family_{suffix} ON {t} (family_id, is_current)"
        )]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        backend: Backend,
        target: Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut folder = Folder::default();
        folder.load(conn, backend, table(target), events).await?;
        folder.fold(events)?;
        folder.write(conn, backend, table(target)).await
    }

    fn rebuilder(&self) -> Option<Box<dyn Rebuilder>> {
        Some(Box::new(self.rebuild_folder()))
    }

    fn sqlite_rebuilder(&self) -> Option<Box<dyn SqliteRebuilder>> {
        Some(Box::new(self.rebuild_folder()))
    }
}

impl CertificateView {
    /// A rebuild's folder: it starts with an empty shadow table, so it holds every family.
    fn rebuild_folder(&self) -> Folder {
        Folder {
            complete: true,
            limit: self.rebuild_families_in_memory,
            ..Folder::default()
        }
    }
}

/// How many families a rebuild keeps folded in memory before it writes them out and forgets
/// them (about 2 KiB each): more than Moscow's large families today.
const REBUILD_FAMILIES_IN_MEMORY: usize = 300_000;

/// A family as folded so far, with the revision and position of its last event.
#[derive(Debug)]
struct Folded {
    family: Option<Family>,
    revision: u64,
    position: u64,
}

/// Folds events into families and writes the rows that changed. A live batch loads the families
/// it touches from the table, folds, and writes each changed row once. A rebuild keeps one
/// folder for the whole log: it starts `complete` (the shadow table is empty, so a family it
/// has not seen is new), folds page after page in memory, and writes every row once at the end,
/// in token order.
#[derive(Debug, Default)]
struct Folder {
    families: HashMap<FamilyId, Folded>,
    /// Every family of the log is in `families` (nothing to load from the table).
    complete: bool,
    /// Families whose current row changed since the last write.
    dirty: HashSet<FamilyId>,
    /// Rows of replaced certificates, written with the next write.
    replaced: Vec<Replaced>,
    /// A rebuild that outgrew its memory created the shadow table's indexes early.
    indexed: bool,
    /// How many families a rebuild holds before it writes them out and forgets them.
    limit: usize,
}

impl Folder {
    /// Loads the current rows of the families `events` touch that this folder does not hold.
    async fn load(
        &mut self,
        conn: &mut AnyConnection,
        backend: Backend,
        t: &str,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        if self.complete {
            return Ok(());
        }
        for chunk in self.missing(events).chunks(LOAD_CHUNK) {
            let sql = load_sql(backend, t, chunk.len());
            let mut q = sqlx::query(&sql);
            for f in chunk {
                q = q.bind(f.to_string());
            }
            for row in q.fetch_all(&mut *conn).await? {
                self.hold(
                    &row.try_get::<String, _>(0)?,
                    &row.try_get::<String, _>(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                )?;
            }
        }
        Ok(())
    }

    /// [`Folder::load`] through a direct SQLite connection.
    fn load_sqlite(
        &mut self,
        conn: &rusqlite::Connection,
        t: &str,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        if self.complete {
            return Ok(());
        }
        for chunk in self.missing(events).chunks(LOAD_CHUNK) {
            let mut q = conn.prepare_cached(&load_sql(Backend::Sqlite, t, chunk.len()))?;
            let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
            let mut rows = q.query(rusqlite::params_from_iter(ids))?;
            while let Some(row) = rows.next()? {
                let (id, json): (String, String) = (row.get(0)?, row.get(1)?);
                self.hold(&id, &json, row.get(2)?, row.get(3)?)?;
            }
        }
        Ok(())
    }

    /// The families `events` touch that this folder does not hold, sorted.
    fn missing(&self, events: &[RecordedEvent]) -> Vec<FamilyId> {
        let mut missing: Vec<FamilyId> = events
            .iter()
            .filter_map(|e| FamilyId::from_stream_name(&e.stream))
            .filter(|f| !self.families.contains_key(f))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    /// Holds a family loaded from a stored current row.
    fn hold(
        &mut self,
        id: &str,
        json: &str,
        revision: i64,
        position: i64,
    ) -> Result<(), ProjectionError> {
        let family: Family = serde_json::from_str(json)
            .map_err(|e| ProjectionError::Store(format!("certificate_view row of {id}: {e}")))?;
        self.families.insert(
            family.family_id,
            Folded {
                family: Some(family),
                revision: to_u64(revision),
                position: to_u64(position),
            },
        );
        Ok(())
    }

    /// Folds `events` (global order) into the families held.
    fn fold(&mut self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        for e in events {
            let Some(family_id) = FamilyId::from_stream_name(&e.stream) else {
                continue;
            };
            if self
                .families
                .get(&family_id)
                .is_some_and(|f| f.revision >= e.revision)
            {
                continue; // applied before: a re-delivery changes nothing
            }
            let event =
                FamilyEvent::decode(&e.event_type, e.schema_version, &e.data).map_err(|err| {
                    ProjectionError::BadEvent {
                        position: e.position,
                        reason: err.to_string(),
                    }
                })?;
            let entry = self.families.entry(family_id).or_insert(Folded {
                family: None,
                revision: 0,
                position: 0,
            });
            if let (FamilyEvent::CertificateReissued(_), Some(before)) = (&event, &entry.family) {
                let mut old = before.clone();
                old.members.clear();
                self.replaced.push(Replaced {
                    family: old,
                    revision: e.revision,
                    position: e.position,
                });
            }
            entry.family = evolve(entry.family.take(), &event);
            entry.revision = e.revision;
            entry.position = e.position;
            if entry.family.is_some() {
                self.dirty.insert(family_id);
            }
        }
        Ok(())
    }

    /// Forgets what changed since the last write, returning it: the families whose current
    /// row changed, and the replaced rows.
    fn take_changed(&mut self) -> (Vec<FamilyId>, Vec<Replaced>) {
        (
            self.dirty.drain().collect(),
            std::mem::take(&mut self.replaced),
        )
    }

    /// The rows that changed since the last write, in token order, borrowed from the folder.
    fn changed<'a>(&'a self, dirty: &[FamilyId], replaced: &'a [Replaced]) -> Vec<Out<'a>> {
        let mut out: Vec<Out<'a>> = replaced
            .iter()
            .map(|r| Out {
                family: &r.family,
                is_current: false,
                revision: r.revision,
                position: r.position,
            })
            .collect();
        out.extend(dirty.iter().filter_map(|id| match self.families.get(id) {
            Some(Folded {
                family: Some(family),
                revision,
                position,
            }) => Some(Out {
                family,
                is_current: true,
                revision: *revision,
                position: *position,
            }),
            _ => None,
        }));
        out.sort_unstable_by_key(|o| o.family.certificate_id);
        out
    }

    /// Writes the rows that changed, in token order, inside `conn`'s transaction.
    async fn write(
        &mut self,
        conn: &mut AnyConnection,
        backend: Backend,
        t: &str,
    ) -> Result<(), ProjectionError> {
        let (dirty, replaced) = self.take_changed();
        write_rows(conn, backend, t, &self.changed(&dirty, &replaced)).await
    }
}

/// The row a reissue leaves for the replaced certificate: the family as it was, members emptied.
#[derive(Debug)]
struct Replaced {
    family: Family,
    revision: u64,
    position: u64,
}

/// A row to write, borrowed from a folder.
struct Out<'a> {
    family: &'a Family,
    is_current: bool,
    revision: u64,
    position: u64,
}

/// A row's column values as stored, in [`COLUMNS`] order.
struct Columns<'a> {
    token_id: String,
    family_id: String,
    is_current: i64,
    certificate_number: &'a str,
    serial: i64,
    status: &'static str,
    valid_from: String,
    valid_until: String,
    family: String,
    revision: i64,
    position: i64,
}

impl<'a> Columns<'a> {
    fn of(r: &Out<'a>) -> Result<Self, ProjectionError> {
        let f = r.family;
        Ok(Self {
            token_id: f.certificate_id.to_string(),
            family_id: f.family_id.to_string(),
            is_current: i64::from(r.is_current),
            certificate_number: &f.certificate_number,
            serial: i64::from(f.certificate_serial),
            status: if r.is_current {
                status_str(f.status)
            } else {
                "replaced"
            },
            valid_from: f.valid_from.to_string(),
            valid_until: f.valid_until.to_string(),
            family: serde_json::to_string(f).map_err(|e| ProjectionError::Store(e.to_string()))?,
            revision: to_i64(r.revision),
            position: to_i64(r.position),
        })
    }
}

/// The upsert of `rows` rows: a row replaces the stored one only if it is newer.
fn upsert_sql(backend: Backend, t: &str, rows: usize) -> String {
    format!(
        "INSERT INTO {t} ({COLUMNS}) VALUES {} ON CONFLICT (token_id) DO UPDATE SET \
         family_id = excluded.family_id, is_current = excluded.is_current, \
         certificate_number = excluded.certificate_number, serial = excluded.serial, \
         status = excluded.status, valid_from = excluded.valid_from, \
         valid_until = excluded.valid_until, family = excluded.family, \
         revision = excluded.revision, position = excluded.position \
         WHERE {t}.position < excluded.position",
        placeholders(backend, rows, COLUMN_COUNT)
    )
}

/// The query loading the current rows of `families` families.
fn load_sql(backend: Backend, t: &str, families: usize) -> String {
    format!(
        "SELECT family_id, family, revision, position FROM {t} \
         WHERE is_current = 1 AND family_id IN {}",
        placeholders(backend, 1, families)
    )
}

async fn write_rows(
    conn: &mut AnyConnection,
    backend: Backend,
    t: &str,
    rows: &[Out<'_>],
) -> Result<(), ProjectionError> {
    for chunk in rows.chunks(CHUNK) {
        let sql = upsert_sql(backend, t, chunk.len());
        let mut q = sqlx::query(&sql);
        for r in chunk {
            let c = Columns::of(r)?;
            q = q
                .bind(c.token_id)
                .bind(c.family_id)
                .bind(c.is_current)
                .bind(c.certificate_number.to_string())
                .bind(c.serial)
                .bind(c.status)
                .bind(c.valid_from)
                .bind(c.valid_until)
                .bind(c.family)
                .bind(c.revision)
                .bind(c.position);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// [`write_rows`] through a direct SQLite connection.
fn write_rows_sqlite(
    conn: &rusqlite::Connection,
    t: &str,
    rows: &[Out<'_>],
) -> Result<(), ProjectionError> {
    let columns: Vec<Columns<'_>> = rows.iter().map(Columns::of).collect::<Result<_, _>>()?;
    insert_columns(conn, t, &columns)
}

/// Upserts rows' column values, a row per prepared statement execution.
fn insert_columns(
    conn: &rusqlite::Connection,
    t: &str,
    rows: &[Columns<'_>],
) -> Result<(), ProjectionError> {
    let mut upsert = conn.prepare_cached(&upsert_sql(Backend::Sqlite, t, 1))?;
    for c in rows {
        upsert.execute(rusqlite::params![
            c.token_id,
            c.family_id,
            c.is_current,
            c.certificate_number,
            c.serial,
            c.status,
            c.valid_from,
            c.valid_until,
            c.family,
            c.revision,
            c.position,
        ])?;
    }
    Ok(())
}

/// How many rows' column values a rebuild's write-out prepares ahead of its inserts (about
/// 2.5 KiB each).
const COLUMNS_AHEAD: usize = 40_000;

/// Rows per transaction when a rebuild writes out what it folded (bounds the WAL's growth).
const ROWS_PER_REBUILD_COMMIT: usize = 20_000;

impl Folder {
    /// Writes every changed row into the rebuild's shadow table, a transaction per
    /// [`ROWS_PER_REBUILD_COMMIT`] rows.
    async fn write_out(
        &mut self,
        conn: &mut AnyConnection,
        backend: Backend,
    ) -> Result<(), ProjectionError> {
        let (dirty, replaced) = self.take_changed();
        let rows = self.changed(&dirty, &replaced);
        for part in rows.chunks(ROWS_PER_REBUILD_COMMIT) {
            let mut tx = begin_immediate(conn, backend).await?;
            write_rows(&mut tx, backend, table(Target::Rebuild), part).await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Rebuilder for Folder {
    async fn feed(
        &mut self,
        conn: &mut AnyConnection,
        backend: Backend,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        if self.complete {
            self.fold(events)?;
            if self.families.len() > self.limit {
                // Bound the memory: write everything out, and from now on fetch families back
                // from the shadow table when they recur, which needs its index now.
                self.write_out(conn, backend).await?;
                self.families.clear();
                self.complete = false;
                create_rebuild_indexes(conn, backend, &CertificateView::default()).await?;
                self.indexed = true;
            }
        } else {
            let t = table(Target::Rebuild);
            let mut tx = begin_immediate(conn, backend).await?;
            self.load(&mut tx, backend, t, events).await?;
            self.fold(events)?;
            self.write(&mut tx, backend, t).await?;
            tx.commit().await?;
            if self.families.len() > self.limit {
                self.families.clear();
            }
        }
        Ok(())
    }

    async fn finish(
        &mut self,
        conn: &mut AnyConnection,
        backend: Backend,
    ) -> Result<(), ProjectionError> {
        self.write_out(conn, backend).await?;
        self.families.clear();
        Ok(())
    }

    fn indexes_created(&self) -> bool {
        self.indexed
    }
}

impl Folder {
    /// [`Folder::write_out`] through a direct SQLite connection. Turning rows into column
    /// values (mostly the family's JSON) costs as much as inserting them, so a second thread
    /// does it while this one inserts.
    fn write_out_sqlite(&mut self, conn: &mut rusqlite::Connection) -> Result<(), ProjectionError> {
        let (dirty, replaced) = self.take_changed();
        let rows = self.changed(&dirty, &replaced);
        std::thread::scope(|scope| {
            // The second thread may run ahead while this one waits for the write lock.
            let (send, columns) = std::sync::mpsc::sync_channel(COLUMNS_AHEAD / CHUNK);
            scope.spawn(move || {
                for part in rows.chunks(CHUNK) {
                    let part: Result<Vec<Columns<'_>>, _> = part.iter().map(Columns::of).collect();
                    let failed = part.is_err();
                    if send.send(part).is_err() || failed {
                        return;
                    }
                }
            });
            let mut tx = crate::begin_immediate_sqlite(conn)?;
            let mut in_tx = 0;
            for part in columns {
                if in_tx >= ROWS_PER_REBUILD_COMMIT {
                    tx.commit()?;
                    tx = crate::begin_immediate_sqlite(conn)?;
                    in_tx = 0;
                }
                let part = part?;
                in_tx += part.len();
                insert_columns(&tx, table(Target::Rebuild), &part)?;
            }
            tx.commit()?;
            Ok(())
        })
    }
}

/// The same steps as the [`Rebuilder`] above, through a direct SQLite connection.
impl SqliteRebuilder for Folder {
    fn feed(
        &mut self,
        conn: &mut rusqlite::Connection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        if self.complete {
            self.fold(events)?;
            if self.families.len() > self.limit {
                self.write_out_sqlite(conn)?;
                self.families.clear();
                self.complete = false;
                crate::create_indexes_sqlite(conn, &CertificateView::default())?;
                self.indexed = true;
            }
        } else {
            let t = table(Target::Rebuild);
            let tx = crate::begin_immediate_sqlite(conn)?;
            self.load_sqlite(&tx, t, events)?;
            self.fold(events)?;
            let (dirty, replaced) = self.take_changed();
            write_rows_sqlite(&tx, t, &self.changed(&dirty, &replaced))?;
            tx.commit()?;
            if self.families.len() > self.limit {
                self.families.clear();
            }
        }
        Ok(())
    }

    fn finish(&mut self, conn: &mut rusqlite::Connection) -> Result<(), ProjectionError> {
        self.write_out_sqlite(conn)?;
        self.families.clear();
        Ok(())
    }

    fn indexes_created(&self) -> bool {
        self.indexed
    }
}

/// A row's columns as stored, before parsing; read the same way from sqlx and from rusqlite.
struct RawRow {
    token_id: String,
    family_id: String,
    is_current: i64,
    certificate_number: String,
    serial: i64,
    status: String,
    valid_from: String,
    valid_until: String,
    family: String,
    revision: i64,
    position: i64,
}

impl RawRow {
    fn from_any(row: &sqlx::any::AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            token_id: row.try_get(0)?,
            family_id: row.try_get(1)?,
            is_current: row.try_get(2)?,
            certificate_number: row.try_get(3)?,
            serial: row.try_get(4)?,
            status: row.try_get(5)?,
            valid_from: row.try_get(6)?,
            valid_until: row.try_get(7)?,
            family: row.try_get(8)?,
            revision: row.try_get(9)?,
            position: row.try_get(10)?,
        })
    }

    fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            token_id: row.get(0)?,
            family_id: row.get(1)?,
            is_current: row.get(2)?,
            certificate_number: row.get(3)?,
            serial: row.get(4)?,
            status: row.get(5)?,
            valid_from: row.get(6)?,
            valid_until: row.get(7)?,
            family: row.get(8)?,
            revision: row.get(9)?,
            position: row.get(10)?,
        })
    }

    fn parse(self) -> Result<CertificateRow, ProjectionError> {
        let bad = |what: &str| ProjectionError::Store(format!("certificate_view: bad {what}"));
        Ok(CertificateRow {
            token_id: CertificateId(Uuid::parse_str(&self.token_id).map_err(|_| bad("token_id"))?),
            family_id: FamilyId(Uuid::parse_str(&self.family_id).map_err(|_| bad("family_id"))?),
            is_current: self.is_current != 0,
            certificate_number: self.certificate_number,
            serial: u32::try_from(self.serial).map_err(|_| bad("serial"))?,
            status: self.status,
            valid_from: self.valid_from.parse().map_err(|_| bad("valid_from"))?,
            valid_until: self.valid_until.parse().map_err(|_| bad("valid_until"))?,
            family: serde_json::from_str(&self.family).map_err(|_| bad("family"))?,
            revision: to_u64(self.revision),
            position: to_u64(self.position),
        })
    }
}

fn parse_row(row: &sqlx::any::AnyRow) -> Result<CertificateRow, ProjectionError> {
    RawRow::from_any(row)?.parse()
}

impl ReadStore {
    /// The row of a certificate token: the QR lookup. One indexed read.
    pub async fn certificate_by_token(
        &self,
        token: CertificateId,
    ) -> Result<Option<CertificateRow>, ProjectionError> {
        static SQL: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {COLUMNS} FROM certificate_view WHERE token_id = $1"));
        self.one_row(&SQL, token.to_string()).await
    }

    /// The current certificate of a family.
    pub async fn certificate_of_family(
        &self,
        family: FamilyId,
    ) -> Result<Option<CertificateRow>, ProjectionError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {COLUMNS} FROM certificate_view WHERE family_id = $1 AND is_current = 1"
            )
        });
        self.one_row(&SQL, family.to_string()).await
    }

    /// One row by one key, through the direct SQLite connections when there are some.
    async fn one_row(
        &self,
        sql: &str,
        key: String,
    ) -> Result<Option<CertificateRow>, ProjectionError> {
        let raw = match self.fast() {
            // A point lookup by an indexed key: on this thread (see `ReadPool::read_now`).
            Some(pool) => pool.read_now(|conn| {
                use rusqlite::OptionalExtension;
                conn.prepare_cached(sql)?
                    .query_row([key], RawRow::from_sqlite)
                    .optional()
            })?,
            None => match sqlx::query(sql)
                .bind(key)
                .fetch_optional(self.pool())
                .await?
            {
                Some(row) => Some(RawRow::from_any(&row)?),
                None => None,
            },
        };
        raw.map(RawRow::parse).transpose()
    }

    /// Every row of the certificate view (live or rebuilt), ordered by token, for comparisons.
    pub async fn dump_certificate_view(
        &self,
        target: Target,
    ) -> Result<Vec<CertificateRow>, ProjectionError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM {} ORDER BY token_id",
            table(target)
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(parse_row).collect()
    }

    /// How many certificates are in the view (current tokens only).
    pub async fn certificate_count(&self) -> Result<u64, ProjectionError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM certificate_view WHERE is_current = 1")
                .fetch_one(self.pool())
                .await?;
        Ok(to_u64(n))
    }
}
