//! Group commit, shared by the SQL backends: appends queue up for one writer task, which commits
//! whatever is waiting in one transaction and answers each request after the commit.

use crate::{AppendResult, ExpectedRevision, IdempotencyKey, NewEvent, StoreError, StoreResult};
use std::collections::HashSet;
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

/// Most append requests committed in one transaction.
pub const MAX_GROUP: usize = 512;

/// One append, as queued for the writer.
#[derive(Debug)]
pub struct AppendRequest {
    pub stream: String,
    pub expected: ExpectedRevision,
    pub events: Vec<NewEvent>,
    pub idempotency: Option<IdempotencyKey>,
}

impl AppendRequest {
    /// Refuses appends that are wrong in themselves (no events, no stream, an id twice).
    pub fn check_shape(&self) -> StoreResult<()> {
        if self.events.is_empty() {
            return Err(StoreError::InvalidAppend("no events".into()));
        }
        if self.stream.is_empty() {
            return Err(StoreError::InvalidAppend("empty stream name".into()));
        }
        let distinct: HashSet<Uuid> = self.events.iter().map(|e| e.event_id).collect();
        if distinct.len() != self.events.len() {
            return Err(StoreError::InvalidAppend(
                "the same event id twice in one append".into(),
            ));
        }
        Ok(())
    }

    /// Checks the expected revision against the stream's current one (`None`: no stream).
    pub fn check_expected(&self, current: Option<u64>) -> StoreResult<()> {
        let matches = match self.expected {
            ExpectedRevision::Any => true,
            ExpectedRevision::NoStream => current.is_none(),
            ExpectedRevision::Exact(r) => current == Some(r),
        };
        if matches {
            Ok(())
        } else {
            Err(StoreError::WrongExpectedRevision {
                expected: self.expected,
                actual: current,
            })
        }
    }
}

/// A backend's side of group commit: commit a group of appends in one transaction.
#[async_trait::async_trait]
pub trait GroupWriter: Send + 'static {
    /// Returns one answer per request, in order, and the highest position written. An `Err`
    /// means nothing of the group was written.
    async fn commit_group(
        &mut self,
        group: Vec<AppendRequest>,
    ) -> StoreResult<(Vec<StoreResult<AppendResult>>, Option<u64>)>;
}

type Queued = (AppendRequest, oneshot::Sender<StoreResult<AppendResult>>);

/// The sending side of the writer task.
#[derive(Clone, Debug)]
pub struct WriterQueue {
    tx: mpsc::Sender<Queued>,
}

fn stopped() -> StoreError {
    StoreError::Backend("the event store writer has stopped".into())
}

impl WriterQueue {
    /// Starts the writer task. `head` is moved forward after each commit.
    pub fn spawn(mut writer: impl GroupWriter, head: watch::Sender<u64>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Queued>(4096);
        tokio::spawn(async move {
            let mut requests = Vec::with_capacity(MAX_GROUP);
            let mut replies = Vec::with_capacity(MAX_GROUP);
            while let Some((request, reply)) = rx.recv().await {
                requests.push(request);
                replies.push(reply);
                while requests.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok((request, reply)) => {
                            requests.push(request);
                            replies.push(reply);
                        }
                        Err(_) => break,
                    }
                }
                let count = requests.len();
                match writer.commit_group(std::mem::take(&mut requests)).await {
                    Ok((results, last)) => {
                        if let Some(p) = last {
                            head.send_if_modified(|h| {
                                let newer = p > *h;
                                if newer {
                                    *h = p;
                                }
                                newer
                            });
                        }
                        for (reply, result) in replies.drain(..).zip(results) {
                            let _ = reply.send(result);
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, requests = count, "event store group commit failed");
                        let message = e.to_string();
                        for reply in replies.drain(..) {
                            let _ = reply.send(Err(StoreError::Backend(message.clone().into())));
                        }
                    }
                }
            }
        });
        Self { tx }
    }

    /// Queues an append and waits for its answer.
    pub async fn append(&self, request: AppendRequest) -> StoreResult<AppendResult> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((request, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Waits until `head` passes `after`, looking at the store too (another process may write), at
/// most `timeout`. Shared by the SQL backends.
pub async fn wait_for_head<F, Fut>(
    head: &watch::Receiver<u64>,
    after: u64,
    timeout: std::time::Duration,
    stored_head: F,
) -> StoreResult<u64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = StoreResult<u64>>,
{
    wait_for_head_every(
        head,
        after,
        timeout,
        std::time::Duration::from_millis(200),
        stored_head,
    )
    .await
}

/// [`wait_for_head`], looking at the store every `poll`.
pub async fn wait_for_head_every<F, Fut>(
    head: &watch::Receiver<u64>,
    after: u64,
    timeout: std::time::Duration,
    poll: std::time::Duration,
    stored_head: F,
) -> StoreResult<u64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = StoreResult<u64>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut head = head.clone();
    loop {
        let known = *head.borrow_and_update();
        if known > after {
            return Ok(known);
        }
        let stored = stored_head().await?;
        if stored > after {
            return Ok(stored);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(stored.max(known));
        }
        let nap = (deadline - now).min(poll);
        tokio::select! {
            changed = head.changed() => {
                if changed.is_err() {
                    tokio::time::sleep(nap).await;
                }
            }
            () = tokio::time::sleep(nap) => {}
        }
    }
}
