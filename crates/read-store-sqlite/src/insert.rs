//! Multi-row `INSERT`s: one statement's overhead (binding, a VDBE program run) shared by many
//! rows, where rows are small enough for that to pay (the callers say how many per statement).

use crate::rows::backend;
use registry_read_store::ReadStoreError;
use rusqlite::{params_from_iter, Connection, ToSql};

/// Inserts `rows` by `INSERT {into} VALUES (…), (…) {then}`, `per_statement` rows per
/// statement where there are that many, each row of `W` values; `into`
/// names the table and its columns, `then` is the conflict clause (applied row by row, in
/// order, as with one statement per row).
pub fn insert_rows<T, const W: usize>(
    conn: &Connection,
    into: &str,
    then: &str,
    rows: &[T],
    per_statement: usize,
    values: impl for<'a> Fn(&'a T) -> [&'a dyn ToSql; W],
) -> Result<(), ReadStoreError> {
    let mut chunks = rows.chunks_exact(per_statement.max(1));
    if chunks.len() > 0 {
        let mut insert = conn
            .prepare_cached(&statement(into, then, W, per_statement))
            .map_err(backend)?;
        for chunk in &mut chunks {
            insert
                .execute(params_from_iter(chunk.iter().flat_map(&values)))
                .map_err(backend)?;
        }
    }
    if !chunks.remainder().is_empty() {
        let mut insert = conn
            .prepare_cached(&statement(into, then, W, 1))
            .map_err(backend)?;
        for row in chunks.remainder() {
            insert
                .execute(params_from_iter(values(row)))
                .map_err(backend)?;
        }
    }
    Ok(())
}

fn statement(into: &str, then: &str, width: usize, rows: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    format!("INSERT {into} VALUES {} {then}", vec![row; rows].join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(conn: &Connection) -> Vec<(i64, String)> {
        let mut q = conn.prepare("SELECT k, v FROM t ORDER BY k").unwrap();
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn given_more_rows_than_one_statement_takes_when_inserted_then_every_row_is_there_once() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .unwrap();
        let rows: Vec<(i64, String)> = (0..69).map(|k| (k, format!("v{k}"))).collect();
        insert_rows(&conn, "INTO t (k, v)", "", &rows, 32, |(k, v)| [k, v]).unwrap();
        assert_eq!(table(&conn), rows);
    }

    #[test]
    fn given_a_key_twice_in_one_statement_when_the_clause_keeps_the_first_then_the_first_stays() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .unwrap();
        let mut rows: Vec<(i64, String)> = (0..32).map(|k| (k, format!("first{k}"))).collect();
        rows[31] = (0, "second".to_string());
        insert_rows(
            &conn,
            "INTO t (k, v)",
            "ON CONFLICT (k) DO NOTHING",
            &rows,
            32,
            |(k, v)| [k, v],
        )
        .unwrap();
        let stored = table(&conn);
        assert_eq!(stored.len(), 31);
        assert_eq!(stored[0], (0, "first0".to_string()));
    }
}
