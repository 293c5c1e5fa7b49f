//! Writing and reading the projections' rows on one connection, live or shadow (`suffix`).

use crate::family_text::FamilyText;
use crate::insert::insert_rows;
use registry_domain::FamilyId;
use registry_read_store::codec::{
    to_u64, StoredCertificate, StoredHistory, CERTIFICATE_COLUMNS, HISTORY_COLUMNS,
};
use registry_read_store::{
    stored_keys, CertificateRow, Changes, FoldedFamily, HistoryRow, KeyChange, ReadStoreError,
};
use rusqlite::{params, Connection, Row};

/// Certificate rows from which a write encodes them on a second thread.
const ENCODE_AHEAD_FROM: usize = 2_000;
/// Rows per encoded chunk, and chunks the encoder may run ahead (40,000 rows).
const ENCODE_CHUNK: usize = 1_000;
const ENCODE_AHEAD: usize = 40;

pub fn backend(e: rusqlite::Error) -> ReadStoreError {
    ReadStoreError::Backend(e.to_string())
}

/// Writes `changes` (inside the caller's transaction). A certificate row replaces the stored one
/// only if it is newer; a family's search keys change as its [`KeyChange`] says; a history row
/// already there (a re-delivered event) stays.
pub fn write(conn: &Connection, suffix: &str, changes: &Changes) -> Result<(), ReadStoreError> {
    let bulk = changes.search.len() >= ENCODE_AHEAD_FROM
        && changes.search.iter().all(|c| c.before.is_empty());
    if bulk {
        // A bulk load (a rebuild's), with nothing to delete: the keys are made and sorted on a
        // second thread while this one writes the certificates.
        std::thread::scope(|scope| -> Result<(), ReadStoreError> {
            let keys = scope.spawn(|| sorted(all_keys(&changes.search)));
            write_certificates(conn, suffix, &changes.certificates)?;
            let keys = keys
                .join()
                .map_err(|_| ReadStoreError::Backend("making the search keys failed".into()))?;
            insert_search(conn, suffix, &keys)
        })?;
    } else {
        if !changes.certificates.is_empty() {
            write_certificates(conn, suffix, &changes.certificates)?;
        }
        if !changes.search.is_empty() {
            let keys = changed_keys(conn, suffix, &changes.search)?;
            insert_search(conn, suffix, &sorted(keys))?;
        }
    }
    if !changes.history.is_empty() {
        write_history(conn, suffix, &changes.history)?;
    }
    Ok(())
}

fn write_certificates(
    conn: &Connection,
    suffix: &str,
    rows: &[CertificateRow],
) -> Result<(), ReadStoreError> {
    let into = format!("INTO certificate_view{suffix} ({CERTIFICATE_COLUMNS})");
    let then = format!(
        "ON CONFLICT (token_id) DO UPDATE SET \
         is_current = excluded.is_current, certificate_number = excluded.certificate_number, \
         serial = excluded.serial, status = excluded.status, \
         valid_from = excluded.valid_from, valid_until = excluded.valid_until, \
         family = excluded.family, revision = excluded.revision, \
         position = excluded.position \
         WHERE certificate_view{suffix}.position < excluded.position"
    );
    let put = |rows: &[StoredCertificate]| {
        insert_rows(conn, &into, &then, rows, CERTIFICATES_PER_INSERT, |c| {
            [
                &c.token_id,
                &c.family_id,
                &c.is_current,
                &c.certificate_number,
                &c.serial,
                &c.status,
                &c.valid_from,
                &c.valid_until,
                &c.family,
                &c.revision,
                &c.position,
            ]
        })
    };
    if rows.len() < ENCODE_AHEAD_FROM {
        let encoded: Result<Vec<_>, _> = rows.iter().map(StoredCertificate::encode).collect();
        put(&encoded?)?;
    } else {
        // A bulk write (a rebuild's): the family JSON is encoded on a second thread while
        // this one inserts, up to `ENCODE_AHEAD` chunks ahead (ADR 11).
        std::thread::scope(|scope| -> Result<(), ReadStoreError> {
            let (send, receive) = std::sync::mpsc::sync_channel(ENCODE_AHEAD);
            scope.spawn(move || {
                for chunk in rows.chunks(ENCODE_CHUNK) {
                    let encoded: Result<Vec<_>, _> =
                        chunk.iter().map(StoredCertificate::encode).collect();
                    let failed = encoded.is_err();
                    if send.send(encoded).is_err() || failed {
                        return;
                    }
                }
            });
            for encoded in receive {
                put(&encoded?)?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// A search key as stored: kind, normalized value, family id.
type KeyRow = (&'static str, String, FamilyText);

/// Every key every family is found by now: for tables that hold none of them yet.
fn all_keys(search: &[KeyChange]) -> Vec<KeyRow> {
    let mut rows = Vec::new();
    for change in search {
        let family = FamilyText::from(change.family);
        rows.extend(
            stored_keys(&change.after)
                .into_iter()
                .map(|(k, v)| (k, v, family)),
        );
    }
    rows
}

/// Deletes the keys each family is stored with and no longer has; returns the keys it has that
/// are not stored yet ([`KeyChange::diff`]).
fn changed_keys(
    conn: &Connection,
    suffix: &str,
    search: &[KeyChange],
) -> Result<Vec<KeyRow>, ReadStoreError> {
    let mut forget = conn
        .prepare_cached(&format!(
            "DELETE FROM family_search{suffix} WHERE kind = ?1 AND value = ?2 AND family_id = ?3"
        ))
        .map_err(backend)?;
    let mut rows = Vec::new();
    for change in search {
        let family = FamilyText::from(change.family);
        let (gone, added) = change.diff();
        for (kind, value) in gone {
            forget
                .execute(params![kind, value, family])
                .map_err(backend)?;
        }
        rows.extend(added.into_iter().map(|(k, v)| (k, v, family)));
    }
    Ok(rows)
}

/// In key order: each insert lands next to the last one in the index (a bulk load of a
/// rebuild appends instead of splitting pages all over the tree).
fn sorted(mut rows: Vec<KeyRow>) -> Vec<KeyRow> {
    rows.sort_unstable();
    rows
}

/// Rows per `INSERT`. A search key is about 100 bytes, so one statement's own overhead
/// (binding, a VDBE run) is a large part of its cost: 64 to a statement made a rebuild's keys
/// about 15% cheaper. History rows went about 30% slower in statements of 16 when they held the
/// event's data (about 700 bytes); without it (about 250) statements of 16 were within the noise
/// (BENCHMARKS.md, 2026-12-06). Certificate rows (about 2 KiB) were no faster in statements of 8
/// (2026-12-02).
const SEARCH_KEYS_PER_INSERT: usize = 64;
const CERTIFICATES_PER_INSERT: usize = 1;
const HISTORY_ROWS_PER_INSERT: usize = 1;

fn insert_search(conn: &Connection, suffix: &str, keys: &[KeyRow]) -> Result<(), ReadStoreError> {
    insert_rows(
        conn,
        &format!("OR IGNORE INTO family_search{suffix} (kind, value, family_id)"),
        "",
        keys,
        SEARCH_KEYS_PER_INSERT,
        |(k, v, f)| [k, v, f],
    )
}

fn write_history(
    conn: &Connection,
    suffix: &str,
    rows: &[HistoryRow],
) -> Result<(), ReadStoreError> {
    let encoded: Vec<StoredHistory> = rows.iter().map(StoredHistory::encode).collect();
    insert_rows(
        conn,
        &format!("INTO family_history{suffix} ({HISTORY_COLUMNS})"),
        "ON CONFLICT (position) DO NOTHING",
        &encoded,
        HISTORY_ROWS_PER_INSERT,
        |h| {
            [
                &h.position,
                &h.family_id,
                &h.revision,
                &h.event_id,
                &h.event_type,
                &h.schema_version,
                &h.recorded_at,
                &h.actor_id,
                &h.actor_role,
                &h.correlation_id,
                &h.causation_id,
                &h.reason,
                &h.decision,
            ]
        },
    )
}

/// The current rows of `ids`, to fold onto.
pub fn current_families(
    conn: &Connection,
    suffix: &str,
    ids: &[FamilyId],
) -> Result<Vec<FoldedFamily>, ReadStoreError> {
    let mut out = Vec::with_capacity(ids.len());
    let mut q = conn
        .prepare_cached(&format!(
            "SELECT {CERTIFICATE_COLUMNS} FROM certificate_view{suffix} \
             WHERE family_id = ?1 AND is_current = 1"
        ))
        .map_err(backend)?;
    for id in ids {
        let mut rows = q.query([id.to_string()]).map_err(backend)?;
        if let Some(row) = rows.next().map_err(backend)? {
            let c = certificate(row).map_err(backend)?.parse()?;
            out.push(FoldedFamily {
                family: c.family,
                revision: c.revision,
                position: c.position,
            });
        }
    }
    Ok(out)
}

pub fn certificate(row: &Row<'_>) -> rusqlite::Result<StoredCertificate> {
    Ok(StoredCertificate {
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

pub fn history(row: &Row<'_>) -> rusqlite::Result<StoredHistory> {
    Ok(StoredHistory {
        position: row.get(0)?,
        family_id: row.get(1)?,
        revision: row.get(2)?,
        event_id: row.get(3)?,
        event_type: row.get(4)?,
        schema_version: row.get(5)?,
        recorded_at: row.get(6)?,
        actor_id: row.get(7)?,
        actor_role: row.get(8)?,
        correlation_id: row.get(9)?,
        causation_id: row.get(10)?,
        reason: row.get(11)?,
        decision: row.get(12)?,
    })
}

/// Every row a query returns, parsed.
pub fn certificates(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<CertificateRow>, ReadStoreError> {
    let mut q = conn.prepare_cached(sql).map_err(backend)?;
    let stored = q
        .query_map(params, certificate)
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)?;
    stored.into_iter().map(StoredCertificate::parse).collect()
}

pub fn histories(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<HistoryRow>, ReadStoreError> {
    let mut q = conn.prepare_cached(sql).map_err(backend)?;
    let stored = q
        .query_map(params, history)
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)?;
    stored.into_iter().map(StoredHistory::parse).collect()
}

/// Sets a checkpoint (inside the caller's transaction).
pub fn set_checkpoint(
    conn: &Connection,
    name: &str,
    position: u64,
    version: i64,
) -> Result<(), ReadStoreError> {
    conn.prepare_cached(
        "INSERT INTO projection_checkpoints (name, position, version, updated_at) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET \
         position = excluded.position, version = excluded.version, \
         updated_at = excluded.updated_at",
    )
    .map_err(backend)?
    .execute(params![
        name,
        registry_read_store::codec::to_i64(position),
        version,
        chrono::Utc::now().to_rfc3339()
    ])
    .map_err(backend)?;
    Ok(())
}

/// A checkpoint's stored position (0 when it never ran).
pub fn checkpoint(conn: &Connection, name: &str) -> Result<u64, ReadStoreError> {
    let mut q = conn
        .prepare_cached("SELECT position FROM projection_checkpoints WHERE name = ?1")
        .map_err(backend)?;
    let mut rows = q.query([name]).map_err(backend)?;
    Ok(match rows.next().map_err(backend)? {
        Some(row) => to_u64(row.get(0).map_err(backend)?),
        None => 0,
    })
}
