//! Read-your-writes: a command answers only once the certificate view shows its events.

use crate::ProjectionError;
use registry_read_store::{ReadStore, CERTIFICATE_VIEW};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a command waits for its events to show in the certificate view.
pub const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the command path and the HTTP server hold: a way to wait until the projections have
/// applied a position.
#[derive(Clone, Debug)]
pub struct ProjectionHandle {
    applied: watch::Receiver<u64>,
    read: Arc<dyn ReadStore>,
}

impl ProjectionHandle {
    pub(crate) fn new(applied: watch::Receiver<u64>, read: Arc<dyn ReadStore>) -> Self {
        Self { applied, read }
    }

    /// A handle that only polls the read store (when the runner lives in another process).
    pub fn polling(read: Arc<dyn ReadStore>) -> Self {
        let (_tx, rx) = watch::channel(0);
        Self::new(rx, read)
    }

    /// The certificate view's stored checkpoint.
    pub async fn certificate_view_checkpoint(&self) -> Result<u64, ProjectionError> {
        Ok(self
            .read
            .checkpoints()
            .await?
            .into_iter()
            .find(|c| c.name == CERTIFICATE_VIEW)
            .map_or(0, |c| c.position))
    }

    /// Waits until the certificate view has applied `position`, at most `timeout`.
    pub async fn wait_applied(
        &self,
        position: u64,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut applied = self.applied.clone();
        loop {
            if *applied.borrow_and_update() >= position {
                return Ok(());
            }
            // The runner may live in another process, or this handle's runner may be gone.
            if self.certificate_view_checkpoint().await? >= position {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(ProjectionError::Timeout);
            }
            let nap = (deadline - now).min(Duration::from_millis(10));
            tokio::select! {
                changed = applied.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(nap).await;
                    }
                }
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// The last position the local runner reported applied.
    pub fn applied(&self) -> u64 {
        *self.applied.borrow()
    }

    pub fn read_store(&self) -> &Arc<dyn ReadStore> {
        &self.read
    }
}

#[async_trait::async_trait]
impl registry_app::Visibility for ProjectionHandle {
    async fn wait_visible(&self, position: u64) -> Result<(), String> {
        self.wait_applied(position, VISIBILITY_TIMEOUT)
            .await
            .map_err(|e| e.to_string())
    }
}
