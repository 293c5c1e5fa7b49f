//! Following the log: batches as events arrive, under the read store's lease, retrying errors.

use super::ProjectionRunner;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How often a standby tries to take the lease (a dead holder is replaced within about this).
pub const LEASE_CHECK: Duration = Duration::from_secs(1);

impl ProjectionRunner {
    /// Catches up, then follows new events until `shutdown` resolves. Errors are logged and
    /// retried with a growing pause; they never stop the runner. On a shared read store only the
    /// lease holder applies; the others stand by.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut pause = Duration::from_millis(50);
        let mut standing_by = false;
        loop {
            if !self.read.lead().await {
                if !standing_by {
                    tracing::info!("another process holds the projection lease; standing by");
                    standing_by = true;
                }
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(LEASE_CHECK) => {}
                }
                continue;
            }
            if standing_by {
                tracing::info!("took the projection lease; applying events");
                standing_by = false;
            }
            let step = tokio::select! {
                () = &mut shutdown => return,
                step = self.step() => step,
            };
            match step {
                Ok(0) => {
                    pause = Duration::from_millis(50);
                    let at = *self.applied.borrow();
                    tokio::select! {
                        () = &mut shutdown => return,
                        _ = self.store.wait_for_events(at, Duration::from_secs(1)) => {}
                    }
                }
                Ok(_) => pause = Duration::from_millis(50),
                Err(e) => {
                    tracing::error!(error = %e, "projection batch failed; retrying");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
