//! The small-server figures of issue 17, on one data directory: resident memory idle after the
//! first start, a restart over the already projected views (time to `/readyz`), a `/metrics`
//! scrape, and resident memory after a mixed load of random verifies and grants.

use super::{http_get, wrk, Drive, Server};
use crate::report::{thousands, Outcome};
use anyhow::Result;
use std::path::Path;
use std::time::{Duration, Instant};

/// What the phase needs from the benchmark around it.
pub struct Setting<'a> {
    pub registry: &'a Path,
    pub dir: &'a Path,
    pub tokens: usize,
    pub threads: usize,
    pub connections: usize,
    pub grant_connections: usize,
    pub seconds: u64,
    pub random_lua: &'a Path,
    pub post_lua: &'a Path,
    pub paths: &'a str,
    pub body: &'a str,
    pub officer: &'a str,
}

/// Resident memory under this, with a million certificates, after the mixed load.
const MEMORY_TARGET_MIB: f64 = 250.0;
/// A restart over projected views answers `/readyz` within this.
const RESTART_TARGET: Duration = Duration::from_secs(3);
/// A `/metrics` scrape takes less than this.
const SCRAPE_TARGET: Duration = Duration::from_millis(50);
/// Scrapes timed (the median is reported).
const SCRAPES: usize = 5;

pub fn phase(server: &mut Server, s: &Setting<'_>, out: &mut Outcome) -> Result<()> {
    let n = thousands(s.tokens as f64);
    std::thread::sleep(Duration::from_secs(5));
    let idle = server.memory();
    out.figure(
        format!("Server resident memory with {n} certificates in the view: idle, 5 s after ready"),
        idle.describe(),
        idle.rss,
    );

    server.terminate()?;
    *server = Server::start(s.registry, s.dir)?;
    let restart = server.ready_after;
    out.target(
        format!(
            "A restart over the {n} already projected certificates: start to `/readyz` answering \
             200"
        ),
        format!(
            "{:.2} s; then {}",
            restart.as_secs_f64(),
            server.memory().describe()
        ),
        restart.as_secs_f64(),
        format!("< {} s", RESTART_TARGET.as_secs()),
        restart < RESTART_TARGET,
    );

    let mut scrapes = (0..SCRAPES)
        .map(|_| time_get(server.port, "/metrics"))
        .collect::<Result<Vec<_>>>()?;
    scrapes.sort();
    let (median, bytes) = scrapes[SCRAPES / 2];
    out.target(
        format!("`GET /metrics` with {n} certificates (median of {SCRAPES} scrapes)"),
        format!(
            "{:.1} ms ({} bytes; slowest {:.1} ms)",
            median.as_secs_f64() * 1e3,
            thousands(bytes as f64),
            scrapes[SCRAPES - 1].0.as_secs_f64() * 1e3
        ),
        median.as_secs_f64() * 1e3,
        format!("< {} ms", SCRAPE_TARGET.as_millis()),
        median < SCRAPE_TARGET,
    );

    let (verifies, grants) = std::thread::scope(|scope| {
        let grants = scope.spawn(|| {
            wrk(
                server,
                1,
                &Drive {
                    connections: s.grant_connections,
                    seconds: s.seconds,
                    script: s.post_lua,
                    path: "/api/v1/families",
                    args: &[s.body, s.officer],
                    stop_markers: None,
                },
            )
        });
        let verifies = wrk(
            server,
            s.threads,
            &Drive {
                connections: s.connections,
                seconds: s.seconds,
                script: s.random_lua,
                path: "/",
                args: &[s.paths],
                stop_markers: None,
            },
        );
        (verifies, grants.join())
    });
    let verifies = verifies?;
    let grants = grants.map_err(|_| anyhow::anyhow!("the grants' wrk thread panicked"))??;
    let loaded = server.memory();
    out.target(
        format!(
            "… after {} s of a mixed load on the restarted server: verifies of random tokens \
             among all {n} beside grants from {} clients",
            s.seconds, s.grant_connections
        ),
        format!(
            "{}; verifies: {}; grants: {} (server CPU per request counts both loads)",
            loaded.describe(),
            verifies.describe("verifies"),
            grants.describe("commands")
        ),
        loaded.rss,
        format!("VmRSS < {MEMORY_TARGET_MIB:.0} MiB"),
        loaded.rss < MEMORY_TARGET_MIB,
    );
    if let Some(caches) = cache_lines(server.port) {
        out.note(format!(
            "The server's caches after the mixed load, from `/metrics`: {caches}."
        ));
    }
    Ok(())
}

/// How long a whole `GET` took (headers and body read to the end), and the bytes read.
fn time_get(port: u16, path: &str) -> Result<(Duration, usize)> {
    let started = Instant::now();
    let body = get(port, path)?;
    Ok((started.elapsed(), body.len()))
}

fn get(port: u16, path: &str) -> Result<String> {
    let (status, text) = http_get(port, path, Duration::from_secs(30))?;
    anyhow::ensure!(status == 200, "{path} answered {status}");
    Ok(text)
}

/// The cache lines of `/metrics` (sizes, entries, hits and misses), joined.
fn cache_lines(port: u16) -> Option<String> {
    let text = get(port, "/metrics").ok()?;
    let lines = text
        .lines()
        .filter(|l| l.starts_with("cache_"))
        .map(|l| format!("`{l}`"))
        .collect::<Vec<_>>();
    (!lines.is_empty()).then(|| lines.join(", "))
}
