//! `certificate_view`: one row per certificate token, what a QR lookup resolves against. Expiry is
//! not stored: it is computed at read time from `valid_until` and today's date.

use crate::read_store::{Backend, ReadStore};
use crate::runner::Target;
use crate::{placeholders, to_i64, to_u64, Projection, ProjectionError};
use async_trait::async_trait;
use chrono::NaiveDate;
use registry_domain::{
    evolve, CertificateId, CertificateState, Family, FamilyEvent, FamilyId, Status,
};
use registry_store::RecordedEvent;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

pub const NAME: &str = "certificate_view";
const COLUMNS: &str = "token_id, family_id, is_current, certificate_number, serial, status, \
                       valid_from, valid_until, family, revision, position";
const COLUMN_COUNT: usize = 11;
/// Rows per multi-row upsert statement.
const CHUNK: usize = 200;

/// The certificate view projection.
#[derive(Clone, Copy, Debug, Default)]
pub struct CertificateView;

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
        // Index names must be unique per database and survive a rename of their table, so
        // they carry a random suffix.
        let suffix = Uuid::new_v4().simple().to_string();
        vec![
            format!(
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
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS certificate_view_family_{suffix} ON {t} (family_id, is_current)"
            ),
        ]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        _backend: Backend,
        target: Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let t = table(target);
        // The current rows of every family the batch touches, in one query.
        let mut families: Vec<FamilyId> = events
            .iter()
            .filter_map(|e| FamilyId::from_stream_name(&e.stream))
            .collect();
        families.sort_unstable();
        families.dedup();
        let mut current: HashMap<FamilyId, (Option<Family>, Option<u64>)> = HashMap::new();
        for chunk in families.chunks(500) {
            let sql = format!(
                "SELECT family_id, family, revision FROM {t} WHERE is_current = 1 AND family_id IN {}",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for f in chunk {
                q = q.bind(f.to_string());
            }
            for row in q.fetch_all(&mut *conn).await? {
                let id: String = row.try_get(0)?;
                let json: String = row.try_get(1)?;
                let revision: i64 = row.try_get(2)?;
                let family: Family = serde_json::from_str(&json).map_err(|e| {
                    ProjectionError::Store(format!("certificate_view row of {id}: {e}"))
                })?;
                current.insert(family.family_id, (Some(family), Some(to_u64(revision))));
            }
        }

        // Fold the batch in memory; remember every row to write, keyed by token.
        let mut rows: BTreeMap<CertificateId, CertificateRow> = BTreeMap::new();
        for e in events {
            let Some(family_id) = FamilyId::from_stream_name(&e.stream) else {
                continue;
            };
            let entry = current.entry(family_id).or_insert((None, None));
            if entry.1.is_some_and(|r| r >= e.revision) {
                continue; // applied before: a re-delivery changes nothing
            }
            let event =
                FamilyEvent::decode(&e.event_type, e.schema_version, &e.data).map_err(|err| {
                    ProjectionError::BadEvent {
                        position: e.position,
                        reason: err.to_string(),
                    }
                })?;
            if let (FamilyEvent::CertificateReissued(_), Some(before)) = (&event, &entry.0) {
                let mut old = before.clone();
                old.members.clear();
                rows.insert(
                    before.certificate_id,
                    row_of(old, false, e.revision, e.position),
                );
            }
            entry.0 = evolve(entry.0.take(), &event);
            entry.1 = Some(e.revision);
            if let Some(family) = &entry.0 {
                rows.insert(
                    family.certificate_id,
                    row_of(family.clone(), true, e.revision, e.position),
                );
            }
        }

        let rows: Vec<CertificateRow> = rows.into_values().collect();
        for chunk in rows.chunks(CHUNK) {
            let sql = format!(
                "INSERT INTO {t} ({COLUMNS}) VALUES {} ON CONFLICT (token_id) DO UPDATE SET \
                 family_id = excluded.family_id, is_current = excluded.is_current, \
                 certificate_number = excluded.certificate_number, serial = excluded.serial, \
                 status = excluded.status, valid_from = excluded.valid_from, \
                 valid_until = excluded.valid_until, family = excluded.family, \
                 revision = excluded.revision, position = excluded.position \
                 WHERE {t}.position < excluded.position",
                placeholders(chunk.len(), COLUMN_COUNT)
            );
            let mut q = sqlx::query(&sql);
            for r in chunk {
                let json = serde_json::to_string(&r.family)
                    .map_err(|e| ProjectionError::Store(e.to_string()))?;
                q = q
                    .bind(r.token_id.to_string())
                    .bind(r.family_id.to_string())
                    .bind(i64::from(r.is_current))
                    .bind(r.certificate_number.clone())
                    .bind(i64::from(r.serial))
                    .bind(r.status.clone())
                    .bind(r.valid_from.to_string())
                    .bind(r.valid_until.to_string())
                    .bind(json)
                    .bind(to_i64(r.revision))
                    .bind(to_i64(r.position));
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

fn row_of(family: Family, is_current: bool, revision: u64, position: u64) -> CertificateRow {
    CertificateRow {
        token_id: family.certificate_id,
        family_id: family.family_id,
        is_current,
        certificate_number: family.certificate_number.clone(),
        serial: family.certificate_serial,
        status: if is_current {
            status_str(family.status).to_string()
        } else {
            "replaced".to_string()
        },
        valid_from: family.valid_from,
        valid_until: family.valid_until,
        family,
        revision,
        position,
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
        self.one_row(
            format!("SELECT {COLUMNS} FROM certificate_view WHERE token_id = $1"),
            token.to_string(),
        )
        .await
    }

    /// The current certificate of a family.
    pub async fn certificate_of_family(
        &self,
        family: FamilyId,
    ) -> Result<Option<CertificateRow>, ProjectionError> {
        self.one_row(
            format!(
                "SELECT {COLUMNS} FROM certificate_view WHERE family_id = $1 AND is_current = 1"
            ),
            family.to_string(),
        )
        .await
    }

    /// One row by one key, through the direct SQLite connections when there are some.
    async fn one_row(
        &self,
        sql: String,
        key: String,
    ) -> Result<Option<CertificateRow>, ProjectionError> {
        let raw = match self.fast() {
            Some(pool) => {
                pool.read(move |conn| {
                    use rusqlite::OptionalExtension;
                    conn.prepare_cached(&sql)?
                        .query_row([key], RawRow::from_sqlite)
                        .optional()
                })
                .await?
            }
            None => match sqlx::query(&sql)
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
