//! Rebuilds: the whole log into shadow tables, beside the live ones, then a swap.
//!
//! One reader reads the log once and hands each page to one job per projection (so one folds
//! while another writes, and a rebuild uses more than one core). A folding projection holds its
//! families in memory and writes each row once at the end, unless it outgrows its memory; then it
//! writes them out and folds on from the shadow tables. Each job ends with the shadow tables
//! indexed. The swaps then run one projection after another: hold off the live writers, read the
//! events the job has not seen (only now, so none the live runner applied is missed), write them,
//! swap the tables and set the checkpoint.

use super::ProjectionRunner;
use crate::{Families, Projection, ProjectionError};
use registry_read_store::{Changes, Rebuild};
use registry_store::{EventStore, RecordedEvent};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A rebuild reads and hands on this many batches at a time.
const REBUILD_PAGES: usize = 10;

/// Where a rebuild stands, for progress bars.
#[derive(Clone, Copy, Debug, Default)]
pub struct RebuildProgress {
    pub position: u64,
    pub head: u64,
    pub events: u64,
}

/// See [`ProjectionRunner::before_swap`].
pub type SwapHook = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A page of the log for a job; `None`: the log ends here. A job whose channel closes without it
/// stops with an error (the reader failed or the rebuild stopped), so it never takes a partial
/// log for the whole.
type Page = Option<Arc<Vec<RecordedEvent>>>;

/// One projection's finished shadow tables, waiting for the swap.
struct Built {
    projection: Arc<dyn Projection>,
    rebuild: Box<dyn Rebuild>,
    families: Families,
    at: RebuildProgress,
}

impl ProjectionRunner {
    /// Rebuilds the named projections from the whole log into shadow tables, then swaps them for
    /// the live ones. The live views stay readable (and keep following) all along. Returns the
    /// number of events applied.
    pub async fn rebuild(
        &self,
        names: &[&str],
        progress: impl Fn(RebuildProgress),
    ) -> Result<u64, ProjectionError> {
        let mut chosen = Vec::new();
        for name in names {
            let p = self
                .projections
                .iter()
                .find(|p| p.name() == *name)
                .ok_or_else(|| ProjectionError::UnknownProjection((*name).to_string()))?;
            chosen.push(p.clone());
        }
        let head = Arc::new(AtomicU64::new(self.store.head().await?));
        let stop = Arc::new(AtomicBool::new(false));
        let (report, mut reports) = tokio::sync::mpsc::unbounded_channel();
        let mut jobs = tokio::task::JoinSet::new();
        let mut feeds = Vec::new();
        for (i, p) in chosen.iter().enumerate() {
            let rebuild = self.read.begin_rebuild(p.name()).await?;
            let (feed, pages) = tokio::sync::mpsc::channel(2);
            feeds.push(feed);
            let job = Job {
                projection: p.clone(),
                rebuild,
                pages,
                head: head.clone(),
                stop: stop.clone(),
            };
            let report = report.clone();
            jobs.spawn(async move {
                let progress = move |at| {
                    let _ = report.send((i, at));
                };
                (Some(i), job.run(progress).await)
            });
        }
        drop(report);
        let reader = Reader {
            store: self.store.clone(),
            page: self.batch.saturating_mul(REBUILD_PAGES),
            head,
            feeds,
            stop: stop.clone(),
        };
        jobs.spawn(async move { (None, reader.run().await.map(|()| None)) });

        let mut at = vec![RebuildProgress::default(); chosen.len()];
        let mut built: Vec<Option<Built>> = (0..chosen.len()).map(|_| None).collect();
        let mut failure = None;
        loop {
            tokio::select! {
                Some((i, p)) = reports.recv() => {
                    at[i] = p;
                    progress(RebuildProgress {
                        position: at.iter().map(|a| a.position).min().unwrap_or(0),
                        head: at.iter().map(|a| a.head).max().unwrap_or(0),
                        events: at.iter().map(|a| a.events).min().unwrap_or(0),
                    });
                }
                joined = jobs.join_next() => {
                    let e = match joined {
                        None => break,
                        Some(Ok((Some(i), Ok(Some(done))))) => {
                            built[i] = Some(done);
                            continue;
                        }
                        Some(Ok((_, Ok(_)))) => continue,
                        Some(Ok((_, Err(e)))) => e,
                        Some(Err(e)) => ProjectionError::Injected(format!("rebuild task failed: {e}")),
                    };
                    // Every part stops; the first cause, not the others' "stopped", is reported.
                    stop.store(true, Ordering::SeqCst);
                    if matches!(failure, None | Some(ProjectionError::Stopped)) {
                        failure = Some(e);
                    }
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if let Some(hook) = &self.before_swap {
            hook().await;
        }
        let mut count = 0;
        let mut last = RebuildProgress::default();
        for built in built.into_iter().flatten() {
            let swapped = self.swap(built).await?;
            count = swapped.events.max(count);
            last = swapped;
        }
        progress(last);
        Ok(count)
    }

    /// Holds off the live writers, applies the events the job has not seen, swaps the tables in.
    async fn swap(&self, mut built: Built) -> Result<RebuildProgress, ProjectionError> {
        built.rebuild.lock().await?;
        let tail = self
            .store
            .read_all(built.at.position + 1, usize::MAX >> 1)
            .await?;
        let mut changes = Changes::default();
        let p = &built.projection;
        if p.folds_families() {
            let missing = built.families.missing(&tail);
            let rows = built.rebuild.current_families(&missing).await?;
            built.families.hold(rows);
        }
        p.project(&mut built.families, &tail, &mut changes)?;
        p.flush(&mut built.families, &mut changes);
        let position = tail.last().map_or(built.at.position, |e| e.position);
        let events = built.at.events + tail.len() as u64;
        built.rebuild.swap(changes, position, p.version()).await?;
        tracing::info!(
            projection = p.name(),
            events,
            position,
            "rebuilt and swapped in"
        );
        Ok(RebuildProgress {
            position,
            head: built.at.head.max(position),
            events,
        })
    }
}

/// Turns what the job folded into rows; a folding projection's families are moved into them and
/// forgotten (the swap reads the few its tail touches back from the shadow tables).
fn flush_and_forget(p: &dyn Projection, families: &mut Families, changes: &mut Changes) {
    if p.folds_families() {
        families.release();
    }
    p.flush(families, changes);
    if p.folds_families() {
        families.forget();
    }
}

/// `Err(Stopped)` once the rebuild's stop flag is set.
fn go_on(stop: &AtomicBool) -> Result<(), ProjectionError> {
    if stop.load(Ordering::SeqCst) {
        Err(ProjectionError::Stopped)
    } else {
        Ok(())
    }
}

/// A rebuild's reader: the whole log, page by page, to every projection's job.
struct Reader {
    store: Arc<dyn EventStore>,
    page: usize,
    /// The log's head when it looked last.
    head: Arc<AtomicU64>,
    feeds: Vec<tokio::sync::mpsc::Sender<Page>>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    async fn run(self) -> Result<(), ProjectionError> {
        let mut from = 1;
        loop {
            go_on(&self.stop)?;
            let events = Arc::new(self.store.read_all(from, self.page).await?);
            let Some(last) = events.last().map(|e| e.position) else {
                break;
            };
            self.head.fetch_max(last, Ordering::Relaxed);
            for feed in &self.feeds {
                if feed.send(Some(events.clone())).await.is_err() {
                    return Ok(()); // that job failed; the rebuild reports its error
                }
            }
            from = last + 1;
            if events.len() < self.page {
                let head = self.store.head().await?;
                self.head.fetch_max(head, Ordering::Relaxed);
                if head <= last {
                    break;
                }
            }
        }
        for feed in &self.feeds {
            let _ = feed.send(None).await;
        }
        Ok(())
    }
}

/// One projection's part of a rebuild: the pages of the log, into its shadow tables.
struct Job {
    projection: Arc<dyn Projection>,
    rebuild: Box<dyn Rebuild>,
    pages: tokio::sync::mpsc::Receiver<Page>,
    head: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Job {
    async fn run(
        mut self,
        progress: impl Fn(RebuildProgress),
    ) -> Result<Option<Built>, ProjectionError> {
        let p = self.projection.clone();
        let mut families = Families::complete();
        let mut at = RebuildProgress::default();
        let started = std::time::Instant::now();
        loop {
            let received = self.pages.recv().await;
            go_on(&self.stop)?;
            let Some(events) = received.ok_or(ProjectionError::Stopped)? else {
                break;
            };
            let mut changes = Changes::default();
            if p.folds_families() {
                let missing = families.missing(&events);
                families.hold(self.rebuild.current_families(&missing).await?);
            }
            p.project(&mut families, &events, &mut changes)?;
            if !p.folds_families() || families.len() > p.rebuild_memory() {
                flush_and_forget(p.as_ref(), &mut families, &mut changes);
            }
            if !changes.is_empty() {
                self.rebuild.write(changes).await?;
            }
            if let Some(last) = events.last() {
                at.position = last.position;
                at.events += events.len() as u64;
            }
            at.head = self.head.load(Ordering::Relaxed).max(at.position);
            progress(at);
        }
        let folded = started.elapsed();
        let mut changes = Changes::default();
        flush_and_forget(p.as_ref(), &mut families, &mut changes);
        let flushed = started.elapsed();
        if !changes.is_empty() {
            self.rebuild.write(changes).await?;
        }
        go_on(&self.stop)?;
        // Waits for the writes still running (a write may return before it commits), then
        // makes the indexes.
        self.rebuild.index().await?;
        tracing::info!(
            projection = p.name(),
            events = at.events,
            fed_ms = folded.as_millis(),
            flushed_ms = flushed.as_millis(),
            written_and_indexed_ms = started.elapsed().as_millis(),
            "rebuilt the shadow tables"
        );
        Ok(Some(Built {
            projection: p,
            rebuild: self.rebuild,
            families,
            at,
        }))
    }
}
