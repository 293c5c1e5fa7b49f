//! A throwaway PostgreSQL cluster with default durability (fsync and synchronous commit
//! on), the event store's appends on it, and the raw `INSERT` and `COPY` baselines of the same
//! server with the same payload rows.

use crate::payload::grant_append;
use crate::report::{millis, quantile, thousands, Outcome};
use crate::workloads;
use anyhow::{bail, ensure, Context, Result};
use registry_store::{EventStore, NewEvent};
use registry_store_postgres::PostgresEventStore;
use registry_test_support::postgres::{as_postgres, is_root};
use sqlx::{Connection, PgConnection};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The installed PostgreSQL's server binaries, found as the tests find them.
fn bin_dir() -> Result<PathBuf> {
    registry_test_support::postgres::find_bin("initdb")
        .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
        .context("no initdb: install PostgreSQL's server binaries")
}

fn run(mut c: Command, what: &str) -> Result<String> {
    let out = c.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// A throwaway cluster in a temporary directory, on a free local port, with PostgreSQL's default
/// settings (durable commits); stopped and removed on drop.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    pub url: String,
    pub version: String,
    pub postmaster: u32,
    stopped: bool,
}

impl Cluster {
    pub fn start() -> Result<Self> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new()
            .prefix("registry-bench-pg-")
            .tempdir()
            .context("creating the cluster directory")?
            .keep();
        let data = dir.join("data");
        if is_root() {
            let mut c = Command::new("chown");
            c.args(["-R", "postgres:postgres"]).arg(&dir);
            run(c, "chown of the cluster directory")?;
        }
        let mut initdb = as_postgres(&bin.join("initdb"));
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
        ]);
        run(initdb, "initdb")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut start = as_postgres(&bin.join("pg_ctl"));
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1",
                dir.display()
            ))
            .args(["-w", "-t", "60", "start"]);
        run(start, "pg_ctl start")?;
        let pid = std::fs::read_to_string(data.join("postmaster.pid"))
            .context("reading postmaster.pid")?;
        let postmaster = pid
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .context("no pid in postmaster.pid")?;
        let mut version = Command::new(bin.join("postgres"));
        version.arg("--version");
        let version = run(version, "postgres --version")?.trim().to_string();
        Ok(Self {
            dir,
            data,
            bin,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            version,
            postmaster,
            stopped: false,
        })
    }

    pub fn stop(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let mut stop = as_postgres(&self.bin.join("pg_ctl"));
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]);
        let result = run(stop, "pg_ctl stop").map(|_| ());
        let _ = std::fs::remove_dir_all(&self.dir);
        result
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping the PostgreSQL cluster: {e:#}");
        }
    }
}

/// The settings that decide durability and memory, as `name=value` pairs.
pub async fn settings(url: &str) -> Result<Vec<(String, String)>> {
    let mut conn = PgConnection::connect(url).await?;
    let mut out = Vec::new();
    for name in [
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_sync_method",
        "commit_delay",
        "shared_buffers",
        "max_connections",
    ] {
        let v: String = sqlx::query_scalar(&format!("SHOW {name}"))
            .fetch_one(&mut conn)
            .await?;
        out.push((name.to_string(), v));
    }
    conn.close().await?;
    Ok(out)
}

fn with_database(server: &str, name: &str) -> String {
    let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
    format!("{base}/{name}")
}

/// A new, empty database `{prefix}_{random}` on the server; its URL.
pub async fn fresh_database(server: &str, prefix: &str) -> Result<String> {
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    create_database(server, &name).await
}

/// Creates database `name` on the server; its URL.
pub async fn create_database(server: &str, name: &str) -> Result<String> {
    let mut admin = PgConnection::connect(server)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(with_database(server, name))
}

/// Drops the database of `url` on the server.
pub async fn drop_database(server: &str, url: &str) -> Result<()> {
    let name = url.rsplit('/').next().context("no database in the URL")?;
    let mut admin = PgConnection::connect(server).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(())
}

/// Round trips of `SELECT 1` on one connection: the p50.
async fn select_one_p50(url: &str, count: usize) -> Result<Duration> {
    let mut conn = PgConnection::connect(url).await?;
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await?;
        times.push(t.elapsed());
        black_box(one);
    }
    conn.close().await?;
    times.sort_unstable();
    Ok(quantile(&times, 0.5))
}

/// Durable one-event appends to new streams from `writers` tasks: sorted latencies and the time.
pub async fn timed_appends(
    store: Arc<dyn EventStore>,
    writers: usize,
    count: usize,
    warmup: usize,
) -> Result<(Vec<Duration>, Duration)> {
    workloads::warm_up(store.as_ref(), warmup).await?;
    workloads::timed_appends(store, workloads::append_work(writers, count, warmup)).await
}

/// Sequential scans of `events` and the rows they read, so far (PostgreSQL's statistics).
async fn seq_scans(url: &str) -> Result<(i64, i64)> {
    let mut conn = PgConnection::connect(url).await?;
    let row: (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(seq_scan, 0), COALESCE(seq_tup_read, 0) FROM pg_stat_user_tables \
         WHERE relname = 'events'",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;
    Ok(row)
}

async fn copy_events(conn: &mut PgConnection, body: &str) -> Result<()> {
    let mut copy = conn
        .copy_in_raw(
            "COPY events (position, event_id, stream, revision, event_type, schema_version, \
             data, metadata, recorded_at) FROM STDIN",
        )
        .await?;
    copy.send(body.as_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

/// Fills the (migrated, empty) `events` table with `n` one-event grant streams by `COPY`, as
/// the store would have written them, then `ANALYZE`s it: a log that has been in use.
async fn prefill(url: &str, n: usize) -> Result<()> {
    let mut conn = PgConnection::connect(url).await?;
    let mut text = String::with_capacity(n.min(200_000) * 800);
    for i in 0..n {
        let (stream, e) = grant_append(i);
        text.push_str(&format!("{}\t{}\t", i + 1, e.event_id));
        copy_text(&stream, &mut text);
        text.push_str(&format!("\t0\t{}\t{}\t", e.event_type, e.schema_version));
        copy_text(&e.data, &mut text);
        text.push('\t');
        copy_text(&e.metadata, &mut text);
        text.push_str(&format!("\t{}\n", e.recorded_at.to_rfc3339()));
        if (i + 1) % 100_000 == 0 || i + 1 == n {
            copy_events(&mut conn, &std::mem::take(&mut text)).await?;
        }
    }
    sqlx::query("ANALYZE events").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Durable one-event appends to the PostgreSQL event store in a fresh database, optionally
/// holding `prefilled` events (and analyzed) before the store is opened.
pub async fn append(
    server: &str,
    writers: usize,
    count: usize,
    warmup: usize,
    prefilled: usize,
) -> Result<Outcome> {
    ensure!(
        writers > 0 && count > 0,
        "writers and count must be positive"
    );
    let url = fresh_database(server, "bench_append").await?;
    if prefilled > 0 {
        // The store's migrations make the table; then the rows go in behind its back.
        drop(PostgresEventStore::open(&url).await?);
        prefill(&url, prefilled).await?;
    }
    let store = PostgresEventStore::open(&url).await?;
    let scans_before = seq_scans(&url).await?;
    let (latencies, elapsed) =
        timed_appends(Arc::new(store.clone()), writers, count, warmup).await?;
    let head = store.head().await?;
    ensure!(
        head == (prefilled + warmup + count) as u64,
        "head {head} after {} appends",
        prefilled + warmup + count
    );
    let rtt = select_one_p50(&url, 2000).await?;
    drop(store);
    // Statistics reach the shared view within a second of a backend's last transaction.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let scans_after = seq_scans(&url).await?;
    drop_database(server, &url).await?;
    let scans = scans_after.0 - scans_before.0;
    let scanned = scans_after.1 - scans_before.1;

    let rate = count as f64 / elapsed.as_secs_f64();
    let mut out = Outcome::default();
    let writers_text = if writers == 1 {
        "1 writer".to_string()
    } else {
        format!("{writers} concurrent writers")
    };
    let label = if prefilled > 0 {
        format!(
            "PostgreSQL event store: durable one-event appends, {writers_text}, to a log of {} \
             events (analyzed)",
            thousands(prefilled as f64)
        )
    } else {
        format!(
            "PostgreSQL event store: durable one-event appends, {writers_text}, to a new database"
        )
    };
    let value = format!(
        "{} commands/s ({} appends in {:.2} s; latency p50 {}, p99 {}; sequential scans of \
         `events` meanwhile: {} reading {} rows; `SELECT 1` round trip just after: {:.0} µs)",
        thousands(rate),
        thousands(count as f64),
        elapsed.as_secs_f64(),
        millis(quantile(&latencies, 0.5)),
        millis(quantile(&latencies, 0.99)),
        thousands(scans as f64),
        thousands(scanned as f64),
        rtt.as_secs_f64() * 1e6,
    );
    out.figure(label, value, rate);
    out.metrics
        .push(("select_one_us".into(), rtt.as_secs_f64() * 1e6));
    Ok(out)
}

/// How the plain baseline writes its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlainMode {
    /// One single-row `INSERT` per statement, `batch` statements per transaction.
    Insert,
    /// One `INSERT ... SELECT * FROM UNNEST(...)` of `batch` rows per transaction (how the event
    /// store inserts a group).
    Unnest,
    /// One `COPY ... FROM STDIN` per connection, `batch` ignored (one transaction).
    Copy,
}

const PLAIN_TABLE: &str = "CREATE TABLE plain_events (
    id BIGSERIAL PRIMARY KEY, stream TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL)";

/// Escapes a value for `COPY ... FROM STDIN` text format.
fn copy_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

async fn write_rows(
    conn: &mut PgConnection,
    rows: &[(String, NewEvent)],
    mode: PlainMode,
    batch: usize,
) -> Result<()> {
    const INSERT: &str = "INSERT INTO plain_events (stream, data, metadata) VALUES ($1, $2, $3)";
    match mode {
        PlainMode::Insert if batch == 1 => {
            for (stream, e) in rows {
                sqlx::query(INSERT)
                    .bind(stream)
                    .bind(&e.data)
                    .bind(&e.metadata)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        PlainMode::Insert => {
            for chunk in rows.chunks(batch) {
                let mut tx = conn.begin().await?;
                for (stream, e) in chunk {
                    sqlx::query(INSERT)
                        .bind(stream)
                        .bind(&e.data)
                        .bind(&e.metadata)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
        }
        PlainMode::Unnest => {
            for chunk in rows.chunks(batch) {
                let streams: Vec<&str> = chunk.iter().map(|(s, _)| s.as_str()).collect();
                let data: Vec<&str> = chunk.iter().map(|(_, e)| e.data.as_str()).collect();
                let meta: Vec<&str> = chunk.iter().map(|(_, e)| e.metadata.as_str()).collect();
                sqlx::query(
                    "INSERT INTO plain_events (stream, data, metadata) \
                     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[])",
                )
                .bind(&streams)
                .bind(&data)
                .bind(&meta)
                .execute(&mut *conn)
                .await?;
            }
        }
        PlainMode::Copy => {
            let mut text = String::with_capacity(rows.len() * 700);
            for (stream, e) in rows {
                copy_text(stream, &mut text);
                text.push('\t');
                copy_text(&e.data, &mut text);
                text.push('\t');
                copy_text(&e.metadata, &mut text);
                text.push('\n');
            }
            let mut copy = conn
                .copy_in_raw("COPY plain_events (stream, data, metadata) FROM STDIN")
                .await?;
            copy.send(text.as_bytes()).await?;
            copy.finish().await?;
        }
    }
    Ok(())
}

/// The baseline: the same payload rows as the append workload into a plain table of a fresh
/// database, from `connections` connections.
pub async fn plain(
    server: &str,
    mode: PlainMode,
    batch: usize,
    connections: usize,
    count: usize,
) -> Result<Outcome> {
    ensure!(
        batch > 0 && connections > 0 && count > 0,
        "batch, connections and count must be positive"
    );
    let url = fresh_database(server, "bench_plain").await?;
    let mut admin = PgConnection::connect(&url).await?;
    sqlx::query(PLAIN_TABLE).execute(&mut admin).await?;
    let rows: Vec<(String, NewEvent)> = (0..count).map(grant_append).collect();
    let per = count.div_ceil(connections);
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(PgConnection::connect(&url).await?);
    }
    let rows = Arc::new(rows);
    let barrier = Arc::new(tokio::sync::Barrier::new(connections + 1));
    let mut tasks = Vec::new();
    for (k, mut conn) in conns.into_iter().enumerate() {
        let (rows, barrier) = (rows.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let part = &rows[(k * per).min(rows.len())..((k + 1) * per).min(rows.len())];
            barrier.wait().await;
            write_rows(&mut conn, part, mode, batch).await?;
            conn.close().await?;
            anyhow::Ok(())
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    for t in tasks {
        t.await.context("a plain insert task panicked")??;
    }
    let elapsed = start.elapsed();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plain_events")
        .fetch_one(&mut admin)
        .await?;
    admin.close().await?;
    drop_database(server, &url).await?;
    ensure!(stored == count as i64, "{stored} rows stored of {count}");

    let rate = count as f64 / elapsed.as_secs_f64();
    let commits = match mode {
        PlainMode::Copy => connections,
        _ => count.div_ceil(batch),
    } as f64;
    let conns = if connections == 1 {
        "1 connection".to_string()
    } else {
        format!("{connections} concurrent connections")
    };
    let label = match mode {
        PlainMode::Insert if batch == 1 => {
            format!("Plain PostgreSQL `INSERT`, 1 row per transaction (autocommit), {conns}")
        }
        PlainMode::Insert => format!(
            "Plain PostgreSQL `INSERT`, {batch} single-row statements per transaction, {conns}"
        ),
        PlainMode::Unnest => format!(
            "Plain PostgreSQL `INSERT ... SELECT FROM UNNEST`, {batch} rows per statement and \
             transaction, {conns}"
        ),
        PlainMode::Copy => format!(
            "Plain PostgreSQL `COPY ... FROM STDIN`, all {} rows in one `COPY`, {conns}",
            thousands(count as f64)
        ),
    };
    let mut out = Outcome::default();
    out.figure(
        label,
        format!(
            "{} rows/s ({} rows in {:.2} s; {} commits/s)",
            thousands(rate),
            thousands(count as f64),
            elapsed.as_secs_f64(),
            thousands(commits / elapsed.as_secs_f64()),
        ),
        rate,
    );
    Ok(out)
}
