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

    /// Waits until the certificate view has applied `position`, at most `timeout`. The local
    /// runner's reports answer at once; the store is asked at most every 20 ms, for a runner in
    /// another process (or a local one standing by).
    pub async fn wait_applied(
        &self,
        position: u64,
        timeout: Duration,
    ) -> Result<(), ProjectionError> {
        const POLL: Duration = Duration::from_millis(20);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut applied = self.applied.clone();
        let mut next_poll = tokio::time::Instant::now() + POLL;
        loop {
            if *applied.borrow_and_update() >= position {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= next_poll {
                if self.certificate_view_checkpoint().await? >= position {
                    return Ok(());
                }
                next_poll = now + POLL;
            }
            if now >= deadline {
                return Err(ProjectionError::Timeout);
            }
            let until = next_poll.min(deadline);
            tokio::select! {
                changed = applied.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep_until(until).await;
                    }
                }
                () = tokio::time::sleep_until(until) => {}
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
