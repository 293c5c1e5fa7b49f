//! Projections of the event log (DESIGN.md §4) and the runner that keeps them in a read store.
//!
//! Why a crate of its own: the read models are derived data with their own lifecycle (catch-up,
//! following the log, rebuilds); the command path and the HTTP server only see the queries (the
//! `registry-read-store` trait) and the read-your-writes wait ([`ProjectionHandle`]).
//!
//! A projection is pure: recorded events in, row changes out ([`Projection::project`]); it
//! knows no SQL and no driver. The runner applies each batch's changes with the projections'
//! checkpoints in one read-store transaction, so a crash or a re-delivery never applies an
//! event twice and never skips one.

mod certificate_view;
mod families;
mod family_history;
mod runner;

pub use certificate_view::{search_keys, CertificateView, REBUILD_FAMILIES_IN_MEMORY};
pub use families::Families;
pub use family_history::{history_row, reason_and_decision, FamilyHistory};
pub use runner::{
    ProjectionHandle, ProjectionRunner, RebuildProgress, SwapHook, BATCH, LEASE_CHECK,
    VISIBILITY_TIMEOUT,
};

use registry_read_store::{Changes, ReadStoreError};
use registry_store::RecordedEvent;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    ReadStore(#[from] ReadStoreError),
    #[error("event store: {0}")]
    EventStore(#[from] registry_store::StoreError),
    #[error("event at position {position} cannot be projected: {reason}")]
    BadEvent { position: u64, reason: String },
    #[error("no projection named {0:?}")]
    UnknownProjection(String),
    #[error("timed out waiting for the projections")]
    Timeout,
    #[error("the rebuild stopped: another part of it failed, or it was cancelled")]
    Stopped,
    #[error("{0}")]
    Injected(String),
}

/// A projection: a stable name and version, and a pure turn of events into row changes.
pub trait Projection: Send + Sync + std::fmt::Debug + 'static {
    /// Stable name, the key of its checkpoint: one of the read store's projections.
    fn name(&self) -> &'static str;

    /// Version of the projection's code; a stored checkpoint of another version makes the
    /// runner rebuild the projection.
    fn version(&self) -> i64;

    /// It folds events onto families: the runner loads the current rows of the families a
    /// batch touches into [`Families`] first (a rebuild holds them in memory).
    fn folds_families(&self) -> bool {
        false
    }

    /// How many families a rebuild may hold before it writes them out.
    fn rebuild_memory(&self) -> usize {
        usize::MAX
    }

    /// Turns events (in global order, all after the projection's checkpoint) into row changes,
    /// or folds them into `families` for [`Projection::flush`].
    fn project(
        &self,
        families: &mut Families,
        events: &[RecordedEvent],
        out: &mut Changes,
    ) -> Result<(), ProjectionError>;

    /// Turns what changed in `families` since the last flush into rows.
    fn flush(&self, _families: &mut Families, _out: &mut Changes) {}
}

/// The default projections, in the order they are applied.
pub fn default_projections() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(CertificateView::default()),
        Arc::new(FamilyHistory),
    ]
}
