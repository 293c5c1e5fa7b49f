//! A rebuild's bulk writes through `COPY … FROM STDIN` (ADR 23): one statement streams a whole
//! page of rows, where multi-row `INSERT`s parse, plan and bind 500 rows at a time.
//!
//! Only for rows that cannot conflict: a rebuild's first write into empty shadow tables, and
//! history rows (a rebuild reads each position once, in order). Live writes and a rebuild's
//! later writes keep the `INSERT … ON CONFLICT` of `rows.rs`.

use crate::rows::backend;
use registry_read_store::codec::{
    StoredCertificate, StoredHistory, CERTIFICATE_COLUMNS, HISTORY_COLUMNS,
};
use registry_read_store::{CertificateRow, HistoryRow, KeyChange, ReadStoreError};
use sqlx::PgConnection;

/// Bytes buffered before they are sent to the server.
const SEND_AT: usize = 1 << 20;

/// A field of PostgreSQL's `COPY` text format.
trait Field {
    fn put(&self, out: &mut Vec<u8>);
}

impl Field for str {
    /// Backslash, tab, newline and carriage return are the format's only special bytes.
    fn put(&self, out: &mut Vec<u8>) {
        for b in self.bytes() {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                _ => out.push(b),
            }
        }
    }
}

impl<T: Field + ?Sized> Field for &T {
    fn put(&self, out: &mut Vec<u8>) {
        (**self).put(out);
    }
}

impl Field for String {
    fn put(&self, out: &mut Vec<u8>) {
        self.as_str().put(out);
    }
}

impl Field for i64 {
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
    }
}

impl<T: Field> Field for Option<T> {
    fn put(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.put(out),
            None => out.extend_from_slice(b"\\N"),
        }
    }
}

/// One line of the text format.
fn line(out: &mut Vec<u8>, fields: &[&dyn Field]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        f.put(out);
    }
    out.push(b'\n');
}

/// Encodes one row onto the buffer.
type Encode<T> = fn(&mut Vec<u8>, &T) -> Result<(), ReadStoreError>;

/// Streams `rows` into `table (columns)`, each row encoded by `encode`.
async fn copy<T: Sync>(
    conn: &mut PgConnection,
    table: &str,
    columns: &str,
    rows: &[T],
    encode: Encode<T>,
) -> Result<(), ReadStoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} ({columns}) FROM STDIN"))
        .await
        .map_err(backend)?;
    let mut buffer = Vec::with_capacity(SEND_AT + 4096);
    let sent = async {
        for row in rows {
            encode(&mut buffer, row)?;
            if buffer.len() >= SEND_AT {
                copy.send(std::mem::take(&mut buffer))
                    .await
                    .map_err(backend)?;
                buffer.reserve(SEND_AT + 4096);
            }
        }
        if !buffer.is_empty() {
            copy.send(buffer).await.map_err(backend)?;
        }
        Ok::<_, ReadStoreError>(())
    }
    .await;
    match sent {
        Ok(()) => copy.finish().await.map(drop).map_err(backend),
        Err(e) => {
            let _ = copy.abort("the rebuild's rows could not be encoded").await;
            Err(e)
        }
    }
}

pub async fn certificates(
    conn: &mut PgConnection,
    suffix: &str,
    rows: &[CertificateRow],
) -> Result<(), ReadStoreError> {
    copy(
        conn,
        &format!("certificate_view{suffix}"),
        CERTIFICATE_COLUMNS,
        rows,
        |out, row| {
            let c = StoredCertificate::encode(row)?;
            line(
                out,
                &[
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
                ],
            );
            Ok(())
        },
    )
    .await
}

/// Every family's keys, each once (a second copy would fail the primary key added after the
/// load, and with it the rebuild).
pub async fn search(
    conn: &mut PgConnection,
    suffix: &str,
    search: &[KeyChange],
) -> Result<(), ReadStoreError> {
    let mut rows: Vec<(&'static str, String, String)> = Vec::new();
    for change in search {
        let family = change.family.to_string();
        let keys = registry_read_store::stored_keys(&change.after);
        rows.extend(
            keys.into_iter()
                .map(|(kind, value)| (kind, value, family.clone())),
        );
    }
    copy(
        conn,
        &format!("family_search{suffix}"),
        "kind, value, family_id",
        &rows,
        |out, (kind, value, family)| {
            line(out, &[kind, value, family]);
            Ok(())
        },
    )
    .await
}

pub async fn history(
    conn: &mut PgConnection,
    suffix: &str,
    rows: &[HistoryRow],
) -> Result<(), ReadStoreError> {
    copy(
        conn,
        &format!("family_history{suffix}"),
        HISTORY_COLUMNS,
        rows,
        |out, row| {
            let h = StoredHistory::encode(row);
            line(
                out,
                &[
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
                ],
            );
            Ok(())
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_text_with_the_formats_special_bytes_when_encoded_then_each_is_escaped() {
        let mut out = Vec::new();
        line(
            &mut out,
            &[&"a\\b\tc\nd\re", &Some(7_i64), &None::<String>, &"Ёлкина"],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\\\b\\tc\\nd\\re\t7\t\\N\tЁлкина\n"
        );
    }
}
