//! The transparency log's tree in the read store's database (not projected: a rebuild never
//! touches it; `registry audit verify` recomputes it from the log).

use crate::PostgresReadStore;
use async_trait::async_trait;
use registry_read_store::codec::to_i64;
use registry_tlog::{
    Cosignature, Hash, Leaf, StoredCheckpoint, TreeResult, TreeSize, TreeStore, TreeStoreError,
};
use sqlx::Row;
use std::collections::HashMap;
use uuid::Uuid;

fn error(e: sqlx::Error) -> TreeStoreError {
    TreeStoreError::Backend(e.to_string())
}

fn leaf_of(r: &sqlx::postgres::PgRow) -> TreeResult<Leaf> {
    Ok(Leaf {
        index: r.try_get::<i64, _>(0).map_err(error)? as u64,
        position: r.try_get::<i64, _>(1).map_err(error)? as u64,
        event_id: Uuid::parse_str(&r.try_get::<String, _>(2).map_err(error)?)
            .map_err(|e| TreeStoreError::Backend(e.to_string()))?,
    })
}

fn checkpoint_of(r: &sqlx::postgres::PgRow) -> TreeResult<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        size: r.try_get::<i64, _>(0).map_err(error)? as u64,
        note: r.try_get(1).map_err(error)?,
    })
}

async fn size_in<'e>(conn: impl sqlx::PgExecutor<'e>) -> TreeResult<TreeSize> {
    let row = sqlx::query("SELECT leaf, position FROM tlog_leaves ORDER BY leaf DESC LIMIT 1")
        .fetch_optional(conn)
        .await
        .map_err(error)?;
    Ok(match row {
        None => TreeSize::default(),
        Some(r) => TreeSize {
            size: r.try_get::<i64, _>(0).map_err(error)? as u64 + 1,
            last_position: r.try_get::<i64, _>(1).map_err(error)? as u64,
        },
    })
}

/// The key of the tree's append lock (`pg_advisory_xact_lock`): "regtlog" in ASCII.
const APPEND_LOCK: i64 = 0x0072_6567_746c_6f67;

#[async_trait]
impl TreeStore for PostgresReadStore {
    async fn tree_size(&self) -> TreeResult<TreeSize> {
        size_in(&self.pool).await
    }

    async fn append(
        &self,
        from: u64,
        leaves: Vec<Leaf>,
        hashes: Vec<(u64, Hash)>,
    ) -> TreeResult<()> {
        let mut tx = self.pool.begin().await.map_err(error)?;
        // Two servers' builders take turns; the loser sees the new size and gives way.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(error)?;
        let at = size_in(&mut *tx).await?;
        if at.size != from {
            return Err(TreeStoreError::Conflict {
                expected: from,
                actual: at.size,
            });
        }
        let (index, position, event_id): (Vec<i64>, Vec<i64>, Vec<String>) = leaves
            .iter()
            .map(|l| (to_i64(l.index), to_i64(l.position), l.event_id.to_string()))
            .fold(
                (vec![], vec![], vec![]),
                |(mut a, mut b, mut c), (x, y, z)| {
                    a.push(x);
                    b.push(y);
                    c.push(z);
                    (a, b, c)
                },
            );
        sqlx::query(
            "INSERT INTO tlog_leaves (leaf, position, event_id) \
             SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[])",
        )
        .bind(index)
        .bind(position)
        .bind(event_id)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
        let (idx, bytes): (Vec<i64>, Vec<Vec<u8>>) = hashes
            .iter()
            .map(|(i, h)| (to_i64(*i), h.0.to_vec()))
            .unzip();
        sqlx::query(
            "INSERT INTO tlog_hashes (idx, hash) SELECT * FROM UNNEST($1::bigint[], $2::bytea[])",
        )
        .bind(idx)
        .bind(bytes)
        .execute(&mut *tx)
        .await
        .map_err(error)?;
        tx.commit().await.map_err(error)
    }

    async fn hashes(&self, indexes: Vec<u64>) -> TreeResult<Vec<Hash>> {
        let wanted: Vec<i64> = indexes.iter().map(|i| to_i64(*i)).collect();
        let rows = sqlx::query("SELECT idx, hash FROM tlog_hashes WHERE idx = ANY($1)")
            .bind(&wanted)
            .fetch_all(&self.pool)
            .await
            .map_err(error)?;
        let mut found = HashMap::with_capacity(rows.len());
        for r in rows {
            let idx = r.try_get::<i64, _>(0).map_err(error)? as u64;
            let bytes: Vec<u8> = r.try_get(1).map_err(error)?;
            let hash = bytes.try_into().map(Hash).map_err(|_| {
                TreeStoreError::Backend(format!("stored hash {idx} is not 32 bytes"))
            })?;
            found.insert(idx, hash);
        }
        indexes
            .into_iter()
            .map(|i| found.get(&i).copied().ok_or(TreeStoreError::MissingHash(i)))
            .collect()
    }

    async fn leaves(&self, from: u64, limit: usize) -> TreeResult<Vec<Leaf>> {
        sqlx::query(
            "SELECT leaf, position, event_id FROM tlog_leaves WHERE leaf >= $1 ORDER BY leaf LIMIT $2",
        )
        .bind(to_i64(from))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(error)?
        .iter()
        .map(leaf_of)
        .collect()
    }

    async fn leaf_of_event(&self, event_id: Uuid) -> TreeResult<Option<Leaf>> {
        sqlx::query("SELECT leaf, position, event_id FROM tlog_leaves WHERE event_id = $1")
            .bind(event_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
            .as_ref()
            .map(leaf_of)
            .transpose()
    }

    async fn save_checkpoint(&self, checkpoint: StoredCheckpoint) -> TreeResult<()> {
        sqlx::query(
            "INSERT INTO tlog_checkpoints (size, note) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(to_i64(checkpoint.size))
        .bind(checkpoint.note)
        .execute(&self.pool)
        .await
        .map_err(error)?;
        Ok(())
    }

    async fn latest_checkpoint(&self) -> TreeResult<Option<StoredCheckpoint>> {
        sqlx::query("SELECT size, note FROM tlog_checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
            .as_ref()
            .map(checkpoint_of)
            .transpose()
    }

    async fn checkpoint(&self, size: u64) -> TreeResult<Option<StoredCheckpoint>> {
        sqlx::query("SELECT size, note FROM tlog_checkpoints WHERE size = $1")
            .bind(to_i64(size))
            .fetch_optional(&self.pool)
            .await
            .map_err(error)?
            .as_ref()
            .map(checkpoint_of)
            .transpose()
    }

    async fn checkpoints(&self, from: u64, limit: usize) -> TreeResult<Vec<StoredCheckpoint>> {
        sqlx::query(
            "SELECT size, note FROM tlog_checkpoints WHERE size >= $1 ORDER BY size LIMIT $2",
        )
        .bind(to_i64(from))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(error)?
        .iter()
        .map(checkpoint_of)
        .collect()
    }

    async fn add_cosignature(&self, cosignature: Cosignature) -> TreeResult<()> {
        sqlx::query(
            "INSERT INTO tlog_cosignatures (size, witness, line) VALUES ($1, $2, $3) \
             ON CONFLICT (size, witness) DO UPDATE SET line = excluded.line",
        )
        .bind(to_i64(cosignature.size))
        .bind(cosignature.witness)
        .bind(cosignature.line)
        .execute(&self.pool)
        .await
        .map_err(error)?;
        Ok(())
    }

    async fn cosignatures(&self, size: u64) -> TreeResult<Vec<Cosignature>> {
        let rows = sqlx::query(
            "SELECT witness, line FROM tlog_cosignatures WHERE size = $1 ORDER BY witness",
        )
        .bind(to_i64(size))
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        rows.iter()
            .map(|r| {
                Ok(Cosignature {
                    size,
                    witness: r.try_get(0).map_err(error)?,
                    line: r.try_get(1).map_err(error)?,
                })
            })
            .collect()
    }
}
