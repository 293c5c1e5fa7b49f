//! One batch: read the log from the lowest checkpoint, turn the events each projection has not
//! applied into row changes, and apply them with the checkpoints in one transaction.

use super::ProjectionRunner;
use crate::{Families, ProjectionError};
use registry_read_store::{Applied, Batch, Move};
use registry_store::RecordedEvent;

impl ProjectionRunner {
    /// Applies at most one batch. Returns how many events were read (0: caught up).
    pub async fn step(&self) -> Result<usize, ProjectionError> {
        let stored = self.stored().await?;
        let done = |name: &str| stored.get(name).map_or(0, |(position, _)| *position);
        let lowest = self
            .projections
            .iter()
            .map(|p| done(p.name()))
            .min()
            .unwrap_or(0);
        let events = self.store.read_all(lowest + 1, self.batch).await?;
        let Some(last) = events.last().map(|e| e.position) else {
            self.report_applied(lowest);
            return Ok(0);
        };
        let mut batch = Batch::default();
        for p in &self.projections {
            let from = done(p.name());
            let fresh: &[RecordedEvent] = &events[events.partition_point(|e| e.position <= from)..];
            let mut families = Families::loaded();
            if p.folds_families() {
                let missing = families.missing(fresh);
                families.hold(self.read.current_families(&missing).await?);
            }
            p.project(&mut families, fresh, &mut batch.changes)?;
            p.flush(&mut families, &mut batch.changes);
            batch.moves.push(Move {
                projection: p.name(),
                from,
                to: last.max(from),
                version: p.version(),
            });
        }
        let lowest_after = batch.moves.iter().map(|m| m.to).min().unwrap_or(last);
        match self.read.apply(batch).await? {
            Applied::Done => self.report_applied(lowest_after),
            // A rebuild or another process moved a checkpoint since: the next step starts
            // from the stored ones.
            Applied::Moved => tracing::debug!("checkpoints moved meanwhile; starting over"),
        }
        Ok(events.len())
    }

    /// Applies batches until the projections have reached the log's head as it was at the call.
    pub async fn catch_up(&self) -> Result<(), ProjectionError> {
        let head = self.store.head().await?;
        loop {
            let read = self.step().await?;
            if read == 0 || *self.applied.borrow() >= head {
                return Ok(());
            }
        }
    }
}
