//! The projection runner: prepare the projections, apply batches from their checkpoints on
//! (`step`), follow the log under a lease (`follow`), rebuild aside and swap (`rebuild`), and
//! let commands wait for their events to show (`handle`). Everything here talks to the event
//! store and the read store through their traits.

mod follow;
mod handle;
mod rebuild;
mod step;

pub use follow::LEASE_CHECK;
pub use handle::{ProjectionHandle, VISIBILITY_TIMEOUT};
pub use rebuild::{RebuildProgress, SwapHook};

use crate::{Projection, ProjectionError};
use registry_read_store::ReadStore;
use registry_store::EventStore;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// Events per batch while catching up and following.
pub const BATCH: usize = 2000;

/// Applies a set of projections to a read store, one batch per transaction.
pub struct ProjectionRunner {
    store: Arc<dyn EventStore>,
    read: Arc<dyn ReadStore>,
    projections: Vec<Arc<dyn Projection>>,
    /// The lowest checkpoint this runner has seen applied.
    applied: watch::Sender<u64>,
    batch: usize,
    /// Runs in every rebuild once the shadow tables are complete, before the swaps.
    before_swap: Option<SwapHook>,
}

impl std::fmt::Debug for ProjectionRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("store", &self.store)
            .field("read", &self.read)
            .field("projections", &self.projections)
            .field("batch", &self.batch)
            .field("before_swap", &self.before_swap.is_some())
            .finish_non_exhaustive()
    }
}

impl ProjectionRunner {
    pub fn new(
        store: Arc<dyn EventStore>,
        read: Arc<dyn ReadStore>,
        projections: Vec<Arc<dyn Projection>>,
    ) -> Self {
        let (applied, _) = watch::channel(0);
        Self {
            store,
            read,
            projections,
            applied,
            batch: BATCH,
            before_swap: None,
        }
    }

    /// Events per batch (tests use small batches).
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Runs `hook` in every rebuild after the shadow tables are complete and before the swap
    /// (for tests that make the live runner apply events in that gap).
    #[doc(hidden)]
    pub fn before_swap(mut self, hook: SwapHook) -> Self {
        self.before_swap = Some(hook);
        self
    }

    pub fn handle(&self) -> ProjectionHandle {
        ProjectionHandle::new(self.applied.subscribe(), self.read.clone())
    }

    pub fn projections(&self) -> &[Arc<dyn Projection>] {
        &self.projections
    }

    pub fn read_store(&self) -> &Arc<dyn ReadStore> {
        &self.read
    }

    /// Each projection's stored checkpoint (0 when it never ran) and version.
    async fn stored(&self) -> Result<HashMap<String, (u64, i64)>, ProjectionError> {
        Ok(self
            .read
            .checkpoints()
            .await?
            .into_iter()
            .map(|c| (c.name, (c.position, c.version)))
            .collect())
    }

    /// Creates missing tables and checkpoints; rebuilds a projection whose stored version
    /// differs from its code. A new projection over a log that already holds events is built by
    /// a rebuild (it folds in memory and writes each row once) on a store of its own; on a shared
    /// store several servers may start at once, so there it catches up through the leased runner.
    pub async fn prepare(&self) -> Result<(), ProjectionError> {
        let stored = self.stored().await?;
        let log_has_events = !self.read.shared() && self.store.head().await? > 0;
        let mut stale = Vec::new();
        for p in &self.projections {
            match stored.get(p.name()) {
                Some((_, version)) if *version == p.version() => {
                    self.read.create_projection(p.name(), p.version()).await?;
                }
                Some((_, version)) => {
                    tracing::warn!(
                        projection = p.name(),
                        stored = version,
                        code = p.version(),
                        "projection version changed; rebuilding"
                    );
                    stale.push(p.name());
                }
                None if log_has_events => {
                    tracing::info!(projection = p.name(), "new projection; building it");
                    stale.push(p.name());
                }
                None => self.read.create_projection(p.name(), p.version()).await?,
            }
        }
        if !stale.is_empty() {
            self.rebuild(&stale, |_| {}).await?;
        }
        Ok(())
    }

    /// Tells commands waiting on this runner's handle that `position` is applied.
    fn report_applied(&self, position: u64) {
        self.applied.send_if_modified(|a| {
            let moved = *a != position;
            *a = position;
            moved
        });
    }
}
