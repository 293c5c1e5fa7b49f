//! Writing and reading the projections' rows on PostgreSQL, live or shadow (`suffix`).

use registry_domain::FamilyId;
use registry_read_store::codec::{
    to_i64, StoredCertificate, StoredHistory, CERTIFICATE_COLUMNS, HISTORY_COLUMNS,
};
use registry_read_store::{
    CertificateRow, Changes, FoldedFamily, HistoryRow, KeyChange, ReadStoreError, StoredKey,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, QueryBuilder, Row};

/// Rows per multi-row statement (PostgreSQL takes at most 65,535 bound values).
const CHUNK: usize = 500;

pub fn backend(e: sqlx::Error) -> ReadStoreError {
    ReadStoreError::Backend(e.to_string())
}

/// Writes `changes` inside the caller's transaction (see the SQLite store for the rules).
pub async fn write(
    conn: &mut PgConnection,
    suffix: &str,
    changes: &Changes,
) -> Result<(), ReadStoreError> {
    write_certificates(conn, suffix, &changes.certificates).await?;
    write_search(conn, suffix, &changes.search).await?;
    write_history(conn, suffix, &changes.history).await
}

/// Certificate rows; a stored row is replaced only by a newer one.
pub async fn write_certificates(
    conn: &mut PgConnection,
    suffix: &str,
    certificates: &[CertificateRow],
) -> Result<(), ReadStoreError> {
    for chunk in certificates.chunks(CHUNK) {
        let stored = chunk
            .iter()
            .map(StoredCertificate::encode)
            .collect::<Result<Vec<_>, _>>()?;
        let mut q = QueryBuilder::new(format!(
            "INSERT INTO certificate_view{suffix} ({CERTIFICATE_COLUMNS}) "
        ));
        q.push_values(stored, |mut b, c| {
            b.push_bind(c.token_id)
                .push_bind(c.family_id)
                .push_bind(c.is_current)
                .push_bind(c.certificate_number)
                .push_bind(c.serial)
                .push_bind(c.status)
                .push_bind(c.valid_from)
                .push_bind(c.valid_until)
                .push_bind(c.family)
                .push_bind(c.revision)
                .push_bind(c.position);
        });
        q.push(format!(
            " ON CONFLICT (token_id) DO UPDATE SET family_id = excluded.family_id, \
             is_current = excluded.is_current, certificate_number = excluded.certificate_number, \
             serial = excluded.serial, status = excluded.status, \
             valid_from = excluded.valid_from, valid_until = excluded.valid_until, \
             family = excluded.family, revision = excluded.revision, position = excluded.position \
             WHERE certificate_view{suffix}.position < excluded.position"
        ));
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

/// Each family's search keys: those of `before` it no longer has are deleted (by primary key),
/// those of `after` not stored yet are added.
pub async fn write_search(
    conn: &mut PgConnection,
    suffix: &str,
    search: &[KeyChange],
) -> Result<(), ReadStoreError> {
    let (mut gone, mut new): (Vec<KeyRow>, Vec<KeyRow>) = (Vec::new(), Vec::new());
    for change in search {
        let family = change.family.to_string();
        let row = |(kind, value): StoredKey| (kind.to_string(), value, family.clone());
        let (went, came) = change.diff();
        gone.extend(went.into_iter().map(row));
        new.extend(came.into_iter().map(row));
    }
    for keys in gone.chunks(CHUNK) {
        let (kinds, values, families) = columns(keys);
        sqlx::query(&format!(
            "DELETE FROM family_search{suffix} WHERE (kind, value, family_id) IN \
             (SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]))"
        ))
        .bind(kinds)
        .bind(values)
        .bind(families)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    for keys in new.chunks(CHUNK) {
        let mut q = QueryBuilder::new(format!(
            "INSERT INTO family_search{suffix} (kind, value, family_id) "
        ));
        q.push_values(keys, |mut b, (kind, value, family)| {
            b.push_bind(kind).push_bind(value).push_bind(family);
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

/// A search key as stored: kind, normalized value, family id.
type KeyRow = (String, String, String);

fn columns(keys: &[KeyRow]) -> (Vec<&str>, Vec<&str>, Vec<&str>) {
    let kinds = keys.iter().map(|k| k.0.as_str()).collect();
    let values = keys.iter().map(|k| k.1.as_str()).collect();
    let families = keys.iter().map(|k| k.2.as_str()).collect();
    (kinds, values, families)
}

/// History rows; a row already there (a re-delivered event) stays.
async fn write_history(
    conn: &mut PgConnection,
    suffix: &str,
    history: &[HistoryRow],
) -> Result<(), ReadStoreError> {
    for chunk in history.chunks(CHUNK) {
        let mut q = QueryBuilder::new(format!(
            "INSERT INTO family_history{suffix} ({HISTORY_COLUMNS}) "
        ));
        q.push_values(chunk.iter().map(StoredHistory::encode), |mut b, h| {
            b.push_bind(h.position)
                .push_bind(h.family_id)
                .push_bind(h.revision)
                .push_bind(h.event_id)
                .push_bind(h.event_type)
                .push_bind(h.schema_version)
                .push_bind(h.recorded_at)
                .push_bind(h.actor_id)
                .push_bind(h.actor_role)
                .push_bind(h.correlation_id)
                .push_bind(h.causation_id)
                .push_bind(h.reason)
                .push_bind(h.decision);
        });
        q.push(" ON CONFLICT (position) DO NOTHING");
        q.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

pub fn certificate(row: &PgRow) -> Result<StoredCertificate, sqlx::Error> {
    Ok(StoredCertificate {
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

pub fn history(row: &PgRow) -> Result<StoredHistory, sqlx::Error> {
    Ok(StoredHistory {
        position: row.try_get(0)?,
        family_id: row.try_get(1)?,
        revision: row.try_get(2)?,
        event_id: row.try_get(3)?,
        event_type: row.try_get(4)?,
        schema_version: row.try_get(5)?,
        recorded_at: row.try_get(6)?,
        actor_id: row.try_get(7)?,
        actor_role: row.try_get(8)?,
        correlation_id: row.try_get(9)?,
        causation_id: row.try_get(10)?,
        reason: row.try_get(11)?,
        decision: row.try_get(12)?,
    })
}

pub fn certificates(rows: &[PgRow]) -> Result<Vec<CertificateRow>, ReadStoreError> {
    rows.iter()
        .map(|r| certificate(r).map_err(backend)?.parse())
        .collect()
}

pub fn histories(rows: &[PgRow]) -> Result<Vec<HistoryRow>, ReadStoreError> {
    rows.iter()
        .map(|r| history(r).map_err(backend)?.parse())
        .collect()
}

/// The current rows of `ids`, to fold onto.
pub async fn current_families(
    conn: &mut PgConnection,
    suffix: &str,
    ids: &[FamilyId],
) -> Result<Vec<FoldedFamily>, ReadStoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
        let rows = sqlx::query(&format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificate_view{suffix} \
             WHERE family_id = ANY($1) AND is_current = 1"
        ))
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        for c in certificates(&rows)? {
            out.push(FoldedFamily {
                family: c.family,
                revision: c.revision,
                position: c.position,
            });
        }
    }
    Ok(out)
}

pub async fn set_checkpoint(
    conn: &mut PgConnection,
    name: &str,
    position: u64,
    version: i64,
) -> Result<(), ReadStoreError> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position, version, updated_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET \
         position = excluded.position, version = excluded.version, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(to_i64(position))
    .bind(i32::try_from(version).unwrap_or(i32::MAX))
    .bind(chrono::Utc::now().to_rfc3339())
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}
