//! `family_history`: one row per event with who, when and why: the auditor's timeline.

use crate::read_store::{Backend, ReadStore};
use crate::runner::Target;
use crate::{placeholders, to_i64, to_u64, Projection, ProjectionError, SqliteRebuilder};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use registry_app::EventMetadata;
use registry_domain::{FamilyEvent, FamilyId};
use registry_store::RecordedEvent;
use sqlx::{AnyConnection, Row};

pub const NAME: &str = "family_history";
const COLUMNS: &str = "position, family_id, revision, event_id, event_type, schema_version, \
                       recorded_at, actor_id, actor_role, correlation_id, causation_id, reason, \
                       decision, data";
const COLUMN_COUNT: usize = 14;
const CHUNK: usize = 200;

/// The family history projection.
#[derive(Clone, Copy, Debug, Default)]
pub struct FamilyHistory;

/// One event in a family's timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    pub position: u64,
    pub family_id: FamilyId,
    pub revision: u64,
    pub event_id: String,
    pub event_type: String,
    pub schema_version: u16,
    pub recorded_at: DateTime<Utc>,
    pub actor_id: String,
    pub actor_role: String,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    /// The reason code or text, for removals, terminations, revocations and reissues.
    pub reason: Option<String>,
    /// The decision (JSON), for events made by a decision.
    pub decision: Option<String>,
    /// The event data (JSON).
    pub data: String,
}

fn table(target: Target) -> &'static str {
    match target {
        Target::Live => "family_history",
        Target::Rebuild => "family_history_rebuild",
    }
}

/// The reason and the decision an event records, for the timeline: the definition, which the
/// rebuild's cheaper [`why_stored`] must agree with (the rebuild-equivalence test checks it).
pub fn reason_and_decision(event: &FamilyEvent) -> (Option<String>, Option<String>) {
    let decision = |d: &registry_domain::Decision| serde_json::to_string(d).ok();
    match event {
        FamilyEvent::StatusGranted(e) => (None, decision(&e.decision)),
        FamilyEvent::StatusRenewed(e) => (None, decision(&e.decision)),
        FamilyEvent::MemberAdded(e) => (None, e.decision.as_ref().and_then(decision)),
        FamilyEvent::MemberRemoved(e) => (
            serde_json::to_value(e.reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string)),
            None,
        ),
        FamilyEvent::MemberDetailsCorrected(_) => (Some("correction".into()), None),
        FamilyEvent::StatusTerminated(_) => (Some("not_enough_children".into()), None),
        FamilyEvent::StatusRevoked(e) => (
            Some(e.reason.clone()),
            e.decision.as_ref().and_then(decision),
        ),
        FamilyEvent::CertificateReissued(e) => (Some(e.reason.clone()), None),
    }
}

#[async_trait]
impl Projection for FamilyHistory {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i64 {
        1
    }

    fn tables(&self) -> &'static [&'static str] {
        &["family_history"]
    }

    fn create_tables(&self, backend: Backend, target: Target) -> Vec<String> {
        let t = table(target);
        let int = match backend {
            Backend::Sqlite => "INTEGER",
            Backend::Postgres => "BIGINT",
        };
        vec![format!(
            "CREATE TABLE IF NOT EXISTS {t} (
                position       {int} PRIMARY KEY,
                family_id      TEXT NOT NULL,
                revision       {int} NOT NULL,
                event_id       TEXT NOT NULL,
                event_type     TEXT NOT NULL,
                schema_version {int} NOT NULL,
                recorded_at    TEXT NOT NULL,
                actor_id       TEXT NOT NULL,
                actor_role     TEXT NOT NULL,
                correlation_id TEXT,
                causation_id   TEXT,
                reason         TEXT,
                decision       TEXT,
                data           TEXT NOT NULL
            )"
        )]
    }

    fn create_indexes(&self, _backend: Backend, target: Target) -> Vec<String> {
        let t = table(target);
        // A random suffix: index names are unique per database and survive a table rename.
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        vec![format!(
            "CREATE INDEX family_history_family_{suffix} ON {t} (family_id, revision)"
        )]
    }

    async fn apply(
        &self,
        conn: &mut AnyConnection,
        backend: Backend,
        target: Target,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let mut rows = Vec::with_capacity(events.len());
        for e in events {
            if let Some(row) = history_row(e)? {
                rows.push(row);
            }
        }
        let t = table(target);
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<HistoryRow> = rows.by_ref().take(CHUNK).collect();
            let sql = insert_sql(backend, t, chunk.len());
            let mut q = sqlx::query(&sql);
            for r in chunk {
                q = q
                    .bind(to_i64(r.position))
                    .bind(r.family_id.to_string())
                    .bind(to_i64(r.revision))
                    .bind(r.event_id)
                    .bind(r.event_type)
                    .bind(i64::from(r.schema_version))
                    .bind(stored_time(&r.recorded_at))
                    .bind(r.actor_id)
                    .bind(r.actor_role)
                    .bind(r.correlation_id)
                    .bind(r.causation_id)
                    .bind(r.reason)
                    .bind(r.decision)
                    .bind(r.data);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    fn sqlite_rebuilder(&self) -> Option<Box<dyn SqliteRebuilder>> {
        Some(Box::new(HistoryRebuilder))
    }
}

/// The insert of `rows` rows; a row already there (a re-delivered event) stays as it is.
fn insert_sql(backend: Backend, t: &str, rows: usize) -> String {
    format!(
        "INSERT INTO {t} ({COLUMNS}) VALUES {} ON CONFLICT (position) DO NOTHING",
        placeholders(backend, rows, COLUMN_COUNT)
    )
}

/// The timeline row of a stored event (`None` for events outside family streams).
fn history_row(e: &RecordedEvent) -> Result<Option<HistoryRow>, ProjectionError> {
    let Some(family_id) = FamilyId::from_stream_name(&e.stream) else {
        return Ok(None);
    };
    let bad = |reason: String| ProjectionError::BadEvent {
        position: e.position,
        reason,
    };
    let (reason, decision) =
        why_stored(&e.event_type, e.schema_version, &e.data).map_err(|err| bad(err.to_string()))?;
    let metadata: EventMetadata =
        serde_json::from_str(&e.metadata).map_err(|err| bad(format!("metadata: {err}")))?;
    Ok(Some(HistoryRow {
        position: e.position,
        family_id,
        revision: e.revision,
        event_id: e.event_id.to_string(),
        event_type: e.event_type.clone(),
        schema_version: e.schema_version,
        recorded_at: e.recorded_at,
        actor_id: metadata.actor.id,
        actor_role: metadata.actor.role.as_str().to_string(),
        correlation_id: Some(metadata.correlation_id.to_string()),
        causation_id: metadata.causation_id.map(|c| c.to_string()),
        reason,
        decision,
        data: e.data.clone(),
    }))
}

/// A time as the history stores it.
fn stored_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The history's rebuild on SQLite: each page of the log in one transaction, a row per prepared
/// statement execution.
struct HistoryRebuilder;

impl SqliteRebuilder for HistoryRebuilder {
    fn feed(
        &mut self,
        conn: &mut rusqlite::Connection,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let tx = crate::begin_immediate_sqlite(conn)?;
        {
            let mut insert =
                tx.prepare_cached(&insert_sql(Backend::Sqlite, table(Target::Rebuild), 1))?;
            for e in events {
                let Some(r) = history_row(e)? else {
                    continue;
                };
                insert.execute(rusqlite::params![
                    to_i64(r.position),
                    r.family_id.to_string(),
                    to_i64(r.revision),
                    r.event_id,
                    r.event_type,
                    i64::from(r.schema_version),
                    stored_time(&r.recorded_at),
                    r.actor_id,
                    r.actor_role,
                    r.correlation_id,
                    r.causation_id,
                    r.reason,
                    r.decision,
                    r.data,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn finish(&mut self, _conn: &mut rusqlite::Connection) -> Result<(), ProjectionError> {
        Ok(())
    }
}

/// The two fields of an event's stored data that the timeline shows, read without decoding the
/// whole event (the rebuild reads every event of the log; the certificate view decodes them
/// fully anyway). `decision` stays the JSON text it was stored as.
#[derive(serde::Deserialize)]
struct StoredWhy<'a> {
    #[serde(borrow, default)]
    reason: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    decision: Option<&'a serde_json::value::RawValue>,
}

/// [`reason_and_decision`] from the stored event: the same answer (a test holds them together), cheaper.
fn why_stored(
    event_type: &str,
    schema_version: u16,
    data: &str,
) -> Result<(Option<String>, Option<String>), registry_domain::DecodeError> {
    if !registry_domain::EVENT_TYPES.contains(&event_type)
        || schema_version != FamilyEvent::SCHEMA_VERSION
    {
        // Unknown types and versions: let the full decoder say what is wrong.
        let event = FamilyEvent::decode(event_type, schema_version, data)?;
        return Ok(reason_and_decision(&event));
    }
    let stored: StoredWhy<'_> =
        serde_json::from_str(data).map_err(|source| registry_domain::DecodeError::Malformed {
            event_type: event_type.to_string(),
            source,
        })?;
    let reason = stored.reason.map(std::borrow::Cow::into_owned);
    let decision = stored.decision.map(|d| d.get().to_string());
    Ok(match event_type {
        "StatusGranted" | "StatusRenewed" | "MemberAdded" => (None, decision),
        "MemberRemoved" | "CertificateReissued" => (reason, None),
        "MemberDetailsCorrected" => (Some("correction".into()), None),
        "StatusTerminated" => (Some("not_enough_children".into()), None),
        // StatusRevoked
        _ => (reason, decision),
    })
}

fn parse_row(row: &sqlx::any::AnyRow) -> Result<HistoryRow, ProjectionError> {
    let bad = |what: &str| ProjectionError::Store(format!("family_history: bad {what}"));
    let family_id: String = row.try_get("family_id")?;
    let recorded_at: String = row.try_get("recorded_at")?;
    let schema_version: i64 = row.try_get("schema_version")?;
    Ok(HistoryRow {
        position: to_u64(row.try_get("position")?),
        family_id: FamilyId(uuid::Uuid::parse_str(&family_id).map_err(|_| bad("family_id"))?),
        revision: to_u64(row.try_get("revision")?),
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: u16::try_from(schema_version).map_err(|_| bad("schema_version"))?,
        recorded_at: DateTime::parse_from_rfc3339(&recorded_at)
            .map_err(|_| bad("recorded_at"))?
            .with_timezone(&Utc),
        actor_id: row.try_get("actor_id")?,
        actor_role: row.try_get("actor_role")?,
        correlation_id: row.try_get("correlation_id")?,
        causation_id: row.try_get("causation_id")?,
        reason: row.try_get("reason")?,
        decision: row.try_get("decision")?,
        data: row.try_get("data")?,
    })
}

impl ReadStore {
    /// A family's timeline in stream order.
    pub async fn history(&self, family: FamilyId) -> Result<Vec<HistoryRow>, ProjectionError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM family_history WHERE family_id = $1 ORDER BY revision"
        ))
        .bind(family.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(parse_row).collect()
    }

    /// Every history row (live or rebuilt), by position, for comparisons.
    pub async fn dump_family_history(
        &self,
        target: Target,
    ) -> Result<Vec<HistoryRow>, ProjectionError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM {} ORDER BY position",
            table(target)
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(parse_row).collect()
    }
}
