//! The accept loop: hyper's HTTP/1 and HTTP/2 connections with a header-read timeout, an idle
//! timeout and a cap on open connections.
//!
//! `axum::serve` has none of the three: 2,000 sockets that never sent a byte were held open for
//! as long as their clients liked, and under a 512-file limit 621 of them stopped `/healthz` and
//! every grant (`accept error: Too many open files`). Here:
//! - a client must finish a request's headers within `header_read_timeout` of the server
//!   starting to wait for them (hyper's own timer, HTTP/1);
//! - a connection with no request in flight for `idle_timeout` is closed (a sweeper, once a
//!   second; it also covers a socket that never sent its first byte, before hyper knows whether
//!   it speaks HTTP/1 or HTTP/2);
//! - at `max_connections` open, a new connection closes the longest-idle one instead of waiting
//!   in the backlog, so a flood of slow clients cannot keep out a real one; when every connection
//!   has a request in flight, the new one is refused. Either is logged (at most every 10 s).

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// Limits of the accept loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// A request's headers must arrive within this long.
    pub header_read_timeout: Duration,
    /// A connection without a request in flight for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: default_max_connections(),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
        }
    }
}

/// Files the process keeps for itself beyond connections: the databases with their WAL and
/// shared-memory files for every pooled connection (24 at rest, more under a burst of reads),
/// keys, logs.
const RESERVED_FILES: usize = 128;

/// 4,096 connections, or fewer when the process may open fewer files (its soft
/// `RLIMIT_NOFILE`, read from `/proc/self/limits`), leaving [`RESERVED_FILES`] for the rest.
pub fn default_max_connections() -> usize {
    let limit = open_file_limit().unwrap_or(1024);
    4096.min(limit.saturating_sub(RESERVED_FILES)).max(16)
}

fn open_file_limit() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// One open connection, as the sweeper and the cap see it.
#[derive(Debug)]
struct Tracked {
    opened: Instant,
    /// Milliseconds after `opened` of the last request's start or end.
    last_active_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// Asked to close already (by the cap or the sweeper).
    closing: AtomicBool,
    close: Notify,
}

impl Tracked {
    /// How long it has been idle; `None` while a request is in flight or once it is closing.
    fn idle_for(&self, now: Instant) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 || self.closing.load(Ordering::Acquire) {
            return None;
        }
        let since_open = now.saturating_duration_since(self.opened);
        let last = Duration::from_millis(self.last_active_ms.load(Ordering::Acquire));
        Some(since_open.saturating_sub(last))
    }

    fn ask_to_close(&self) {
        self.closing.store(true, Ordering::Release);
        self.close.notify_one();
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active_ms.store(ms, Ordering::Release);
    }
}

/// Every open connection.
#[derive(Debug, Default)]
struct Connections {
    open: Mutex<HashMap<u64, Arc<Tracked>>>,
    next_id: AtomicU64,
    /// Woken whenever a connection closes.
    closed: Notify,
}

impl Connections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Tracked>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add(&self) -> (u64, Arc<Tracked>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked {
            opened: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        self.lock().insert(id, tracked.clone());
        (id, tracked)
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
        self.closed.notify_waiters();
    }

    /// Returns once fewer than `max` connections are open.
    async fn wait_below(&self, max: usize) {
        loop {
            let closed = self.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.count() < max {
                return;
            }
            closed.await;
        }
    }

    fn count(&self) -> usize {
        self.lock().len()
    }

    /// Asks the longest-idle connection to close; `false` if every one has a request in flight.
    fn evict_longest_idle(&self) -> bool {
        let now = Instant::now();
        let open = self.lock();
        let victim = open
            .values()
            .filter_map(|t| t.idle_for(now).map(|idle| (idle, t)))
            .max_by_key(|(idle, _)| *idle);
        match victim {
            Some((_, t)) => {
                t.ask_to_close();
                true
            }
            None => false,
        }
    }

    /// Asks every connection idle for at least `limit` to close.
    fn close_idle(&self, limit: Duration) {
        let now = Instant::now();
        for t in self.lock().values() {
            if t.idle_for(now).is_some_and(|idle| idle >= limit) {
                t.ask_to_close();
            }
        }
    }
}

/// Logs a repeated event at most every 10 s, with how often it happened meanwhile.
#[derive(Debug)]
struct Throttled {
    last: Mutex<Option<Instant>>,
    count: AtomicU64,
}

impl Throttled {
    const fn new() -> Self {
        Self {
            last: Mutex::new(None),
            count: AtomicU64::new(0),
        }
    }

    /// The number of events since the last report, when it is time for one.
    fn due(&self) -> Option<u64> {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < Duration::from_secs(10)) {
            return None;
        }
        *last = Some(Instant::now());
        self.count.store(0, Ordering::Relaxed);
        Some(n)
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests finish (at
/// most 10 s) and closes idle connections at once.
pub async fn serve_with_limits(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let connections = Arc::new(Connections::default());
    let (stopping, stop_rx) = watch::channel(false);
    let sweeper = tokio::spawn(sweep(
        connections.clone(),
        limits.idle_timeout,
        stop_rx.clone(),
    ));
    let capped = Throttled::new();
    let refused = Throttled::new();
    let accept_failed = Throttled::new();
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of files or a client that went away: pause instead of spinning.
                    if let Some(n) = accept_failed.due() {
                        tracing::error!(error = %e, times = n, "accept failed");
                    }
                    metrics::counter!("http_accept_errors_total").increment(1);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if connections.count() >= limits.max_connections {
            if connections.evict_longest_idle() {
                // Serve this one once the evicted one has closed (at most 1 s), so open sockets
                // never exceed the cap by more than the one in hand.
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    connections.wait_below(limits.max_connections),
                )
                .await;
                metrics::counter!("http_connections_evicted_total").increment(1);
                if let Some(n) = capped.due() {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        times = n,
                        "connection cap reached: closing the longest-idle connections"
                    );
                }
            } else {
                metrics::counter!("http_connections_refused_total").increment(1);
                if let Some(n) = refused.due() {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        times = n,
                        "connection cap reached and every connection is busy: refusing new ones"
                    );
                }
                drop(stream);
                continue;
            }
        }
        let _ = stream.set_nodelay(true);
        let (id, tracked) = connections.add();
        metrics::gauge!("http_connections_open").increment(1.0);
        let service = PerConnection {
            router: router.clone(),
            peer,
            tracked: tracked.clone(),
        };
        let builder = builder.clone();
        let connections = connections.clone();
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            tokio::pin!(conn);
            let drain = tokio::select! {
                _ = conn.as_mut() => None,
                () = tracked.close.notified() => Some(Duration::from_secs(1)),
                _ = stop.wait_for(|s| *s) => Some(Duration::from_secs(10)),
            };
            if let Some(limit) = drain {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(limit, conn).await;
            }
            connections.remove(id);
            metrics::gauge!("http_connections_open").decrement(1.0);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    while tasks.join_next().await.is_some() {}
    sweeper.abort();
    Ok(())
}

/// Once a second, closes the connections idle for `limit`.
async fn sweep(connections: Arc<Connections>, limit: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(limit));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => connections.close_idle(limit),
        }
    }
}

/// The router for one connection: gives handlers the peer address and counts requests in
/// flight for the idle sweeper and the cap.
#[derive(Clone, Debug)]
struct PerConnection {
    router: Router,
    peer: SocketAddr,
    tracked: Arc<Tracked>,
}

/// Counts one request in flight while alive.
struct InFlight(Arc<Tracked>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl hyper::service::Service<axum::http::Request<Incoming>> for PerConnection {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;

    fn call(&self, mut request: axum::http::Request<Incoming>) -> Self::Future {
        self.tracked.in_flight.fetch_add(1, Ordering::AcqRel);
        self.tracked.touch();
        let guard = InFlight(self.tracked.clone());
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let call = tower::ServiceExt::oneshot(self.router.clone(), request);
        Box::pin(async move {
            let response = call.await;
            drop(guard);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_files_the_process_needs() {
        let max = default_max_connections();
        let limit = open_file_limit().expect("a Linux /proc");
        assert!(max <= limit.saturating_sub(RESERVED_FILES).max(16));
        assert!(max <= 4096);
    }

    #[test]
    fn the_longest_idle_connection_is_the_one_evicted_and_busy_ones_never_are() {
        let connections = Connections::default();
        let (_, busy) = connections.add();
        busy.in_flight.fetch_add(1, Ordering::AcqRel);
        assert!(!connections.evict_longest_idle(), "only busy connections");
        let (_, idle) = connections.add();
        idle.touch();
        assert!(connections.evict_longest_idle());
        assert!(
            !connections.evict_longest_idle(),
            "the idle one is closing already"
        );
        // The idle one was told to close (a permit is stored), the busy one was not.
        let told = futures::FutureExt::now_or_never(idle.close.notified());
        assert!(told.is_some());
        let not_told = futures::FutureExt::now_or_never(busy.close.notified());
        assert!(not_told.is_none());
    }
}
