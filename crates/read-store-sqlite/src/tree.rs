//! The transparency log's tree in the read store's file (not projected: a rebuild never touches
//! it; `registry audit verify` recomputes it from the log).

use crate::rows::backend;
use crate::SqliteReadStore;
use async_trait::async_trait;
use registry_read_store::{codec::to_i64, ReadStoreError};
use registry_tlog::{
    Cosignature, Hash, Leaf, StoredCheckpoint, TreeResult, TreeSize, TreeStore, TreeStoreError,
};
use rusqlite::{params, OptionalExtension};
use uuid::Uuid;

fn error(e: ReadStoreError) -> TreeStoreError {
    TreeStoreError::Backend(e.to_string())
}

fn hash_of(bytes: Vec<u8>, index: u64) -> TreeResult<Hash> {
    bytes
        .try_into()
        .map(Hash)
        .map_err(|_| TreeStoreError::Backend(format!("stored hash {index} is not 32 bytes")))
}

fn leaf_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn leaf_of((index, position, event_id): (i64, i64, String)) -> TreeResult<Leaf> {
    Ok(Leaf {
        index: index as u64,
        position: position as u64,
        event_id: Uuid::parse_str(&event_id).map_err(|e| TreeStoreError::Backend(e.to_string()))?,
    })
}

fn size_now(conn: &rusqlite::Connection) -> Result<TreeSize, ReadStoreError> {
    conn.query_row(
        "SELECT leaf, position FROM tlog_leaves ORDER BY leaf DESC LIMIT 1",
        [],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    )
    .optional()
    .map_err(backend)
    .map(|last| {
        last.map_or_else(TreeSize::default, |(leaf, position)| TreeSize {
            size: leaf as u64 + 1,
            last_position: position as u64,
        })
    })
}

#[async_trait]
impl TreeStore for SqliteReadStore {
    async fn tree_size(&self) -> TreeResult<TreeSize> {
        self.read_now(size_now).map_err(error)
    }

    async fn append(
        &self,
        from: u64,
        leaves: Vec<Leaf>,
        hashes: Vec<(u64, Hash)>,
    ) -> TreeResult<()> {
        let outcome = self
            .write(move |conn| {
                let tx = crate::begin_now(conn)?;
                let at = size_now(&tx)?;
                if at.size != from {
                    return Ok(Err(at.size));
                }
                {
                    let mut leaf = tx
                        .prepare_cached(
                            "INSERT INTO tlog_leaves (leaf, position, event_id) VALUES (?1, ?2, ?3)",
                        )
                        .map_err(backend)?;
                    for l in &leaves {
                        leaf.execute(params![
                            to_i64(l.index),
                            to_i64(l.position),
                            l.event_id.to_string()
                        ])
                        .map_err(backend)?;
                    }
                    let mut hash = tx
                        .prepare_cached("INSERT INTO tlog_hashes (idx, hash) VALUES (?1, ?2)")
                        .map_err(backend)?;
                    for (index, h) in &hashes {
                        hash.execute(params![to_i64(*index), &h.0[..]])
                            .map_err(backend)?;
                    }
                }
                tx.commit().map_err(backend)?;
                Ok(Ok(()))
            })
            .await
            .map_err(error)?;
        outcome.map_err(|actual| TreeStoreError::Conflict {
            expected: from,
            actual,
        })
    }

    async fn hashes(&self, indexes: Vec<u64>) -> TreeResult<Vec<Hash>> {
        let found = self
            .read(move |conn| {
                let mut q = conn
                    .prepare_cached("SELECT hash FROM tlog_hashes WHERE idx = ?1")
                    .map_err(backend)?;
                let mut out = Vec::with_capacity(indexes.len());
                for index in indexes {
                    let hash: Option<Vec<u8>> = q
                        .query_row([to_i64(index)], |r| r.get(0))
                        .optional()
                        .map_err(backend)?;
                    out.push((index, hash));
                }
                Ok(out)
            })
            .await
            .map_err(error)?;
        found
            .into_iter()
            .map(|(index, hash)| hash_of(hash.ok_or(TreeStoreError::MissingHash(index))?, index))
            .collect()
    }

    async fn leaves(&self, from: u64, limit: usize) -> TreeResult<Vec<Leaf>> {
        let rows = self
            .read(move |conn| {
                let mut q = conn
                    .prepare_cached(
                        "SELECT leaf, position, event_id FROM tlog_leaves WHERE leaf >= ?1 \
                         ORDER BY leaf LIMIT ?2",
                    )
                    .map_err(backend)?;
                let rows = q
                    .query_map(params![to_i64(from), limit as i64], leaf_row)
                    .map_err(backend)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
            })
            .await
            .map_err(error)?;
        rows.into_iter().map(leaf_of).collect()
    }

    async fn leaf_of_event(&self, event_id: Uuid) -> TreeResult<Option<Leaf>> {
        let row = self
            .read_now(|conn| {
                conn.query_row(
                    "SELECT leaf, position, event_id FROM tlog_leaves WHERE event_id = ?1",
                    [event_id.to_string()],
                    leaf_row,
                )
                .optional()
                .map_err(backend)
            })
            .map_err(error)?;
        row.map(leaf_of).transpose()
    }

    async fn save_checkpoint(&self, checkpoint: StoredCheckpoint) -> TreeResult<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO tlog_checkpoints (size, note) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                params![to_i64(checkpoint.size), checkpoint.note],
            )
            .map_err(backend)
        })
        .await
        .map_err(error)?;
        Ok(())
    }

    async fn latest_checkpoint(&self) -> TreeResult<Option<StoredCheckpoint>> {
        Ok(self
            .checkpoints_where("1 = 1 ORDER BY size DESC LIMIT 1", 0)?
            .pop())
    }

    async fn checkpoint(&self, size: u64) -> TreeResult<Option<StoredCheckpoint>> {
        Ok(self.checkpoints_where("size = ?1", size)?.pop())
    }

    async fn checkpoints(&self, from: u64, limit: usize) -> TreeResult<Vec<StoredCheckpoint>> {
        let limit = limit.min(i64::MAX as usize);
        self.checkpoints_where(&format!("size >= ?1 ORDER BY size LIMIT {limit}"), from)
    }

    async fn add_cosignature(&self, cosignature: Cosignature) -> TreeResult<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO tlog_cosignatures (size, witness, line) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (size, witness) DO UPDATE SET line = excluded.line",
                params![
                    to_i64(cosignature.size),
                    cosignature.witness,
                    cosignature.line
                ],
            )
            .map_err(backend)
        })
        .await
        .map_err(error)?;
        Ok(())
    }

    async fn cosignatures(&self, size: u64) -> TreeResult<Vec<Cosignature>> {
        self.read_now(|conn| {
            let mut q = conn
                .prepare_cached(
                    "SELECT witness, line FROM tlog_cosignatures WHERE size = ?1 ORDER BY witness",
                )
                .map_err(backend)?;
            let rows = q
                .query_map([to_i64(size)], |r| {
                    Ok(Cosignature {
                        size,
                        witness: r.get(0)?,
                        line: r.get(1)?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .map_err(error)
    }
}

impl SqliteReadStore {
    /// Checkpoints by a `WHERE` clause with one parameter (`?1`), on the calling thread.
    fn checkpoints_where(&self, clause: &str, value: u64) -> TreeResult<Vec<StoredCheckpoint>> {
        let sql = format!("SELECT size, note FROM tlog_checkpoints WHERE {clause}");
        self.read_now(|conn| {
            let mut q = conn.prepare_cached(&sql).map_err(backend)?;
            let uses_value = sql.contains("?1");
            let map = |r: &rusqlite::Row<'_>| {
                Ok(StoredCheckpoint {
                    size: r.get::<_, i64>(0)? as u64,
                    note: r.get(1)?,
                })
            };
            let rows = if uses_value {
                q.query_map([to_i64(value)], map)
            } else {
                q.query_map([], map)
            }
            .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .map_err(error)
    }
}
