//! The measured workloads. Each returns its figures; `main` decides how to print them.

use crate::payload::{self, date, grant_append, new_event};
use crate::report::{millis, proc_status_kib, quantile, thousands, Outcome};
use anyhow::{ensure, Context, Result};
use chrono::{TimeZone, Utc};
use registry_app::{
    certificate_number, new_certificate_id, new_family_id, Actor, CommandRequest, ManualClock,
    Registry, Role,
};
use registry_domain::{
    evolve, Command, Decision, FamilyEvent, FamilyId, Member, MemberChanges, Policy,
};
use registry_store::{EventStore, ExpectedRevision, NewEvent};
use registry_store_sqlite::SqliteEventStore;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("not a UTF-8 path: {}", path.display()))
}

/// A plain rusqlite connection to `db` with the event store's durability: WAL,
/// `synchronous=FULL`.
fn plain_connection(db: &Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(db)?;
    registry_sqlite_pool::configure(&conn, "FULL")?;
    Ok(conn)
}

/// A fresh temporary directory for one workload's SQLite file.
pub fn scratch_dir() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("registry-bench-")
        .tempdir()
        .context("creating a temporary directory")
}

/// Bytes of the database file with its WAL and shared-memory files.
pub fn db_size(db: &Path) -> u64 {
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(PathBuf::from(p)).ok()
        })
        .map(|m| m.len())
        .sum()
}

/// `warmup` appends to new streams, before any clock starts.
pub async fn warm_up(store: &dyn EventStore, warmup: usize) -> Result<()> {
    for i in 0..warmup {
        let (stream, event) = grant_append(i);
        store
            .append(&stream, ExpectedRevision::NoStream, vec![event], None)
            .await?;
    }
    Ok(())
}

/// `count` one-event appends to new streams (numbered from `first`), dealt to `writers`: every
/// event is built before the clock starts, so only the store is measured.
pub fn append_work(writers: usize, count: usize, first: usize) -> Vec<Vec<(String, NewEvent)>> {
    let mut work: Vec<Vec<_>> = (0..writers)
        .map(|_| Vec::with_capacity(count / writers + 1))
        .collect();
    for i in 0..count {
        work[i % writers].push(grant_append(first + i));
    }
    work
}

/// Runs each writer's appends in a task of its own, all released together: the latencies
/// (sorted) and the time from the release to the last append.
pub async fn timed_appends(
    store: Arc<dyn EventStore>,
    work: Vec<Vec<(String, NewEvent)>>,
) -> Result<(Vec<Duration>, Duration)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(work.len() + 1));
    let mut tasks = Vec::with_capacity(work.len());
    for items in work {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut latencies = Vec::with_capacity(items.len());
            for (stream, event) in items {
                let t = Instant::now();
                store
                    .append(&stream, ExpectedRevision::NoStream, vec![event], None)
                    .await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.context("writer task panicked")??);
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    Ok((latencies, elapsed))
}

/// Durable one-event appends, each to a new stream, from `writers` concurrent tasks.
pub async fn append(writers: usize, count: usize, warmup: usize, probe: bool) -> Result<Outcome> {
    ensure!(
        writers > 0 && count > 0,
        "writers and count must be positive"
    );
    let dir = scratch_dir()?;
    let db = dir.path().join("append.db");
    let store = SqliteEventStore::open(path_str(&db)?).await?;
    warm_up(&store, warmup).await?;
    let work = append_work(writers, count, warmup);
    let payload_bytes = work[0][0].1.data.len();
    let metadata_bytes = work[0][0].1.metadata.len();

    let stop = Arc::new(AtomicBool::new(false));
    let monitor = probe.then(|| tokio::spawn(count_head_advances(store.clone(), stop.clone())));
    let (latencies, elapsed) = timed_appends(Arc::new(store.clone()), work).await?;
    stop.store(true, Ordering::Relaxed);
    let advances = match monitor {
        Some(m) => Some(m.await.context("monitor task panicked")??),
        None => None,
    };
    let head = store.head().await?;
    ensure!(
        head == (warmup + count) as u64,
        "head {head} after {} appends",
        warmup + count
    );

    let rate = count as f64 / elapsed.as_secs_f64();
    let mut out = Outcome::default();
    let label = if writers == 1 {
        "Durable one-event appends, 1 writer".to_string()
    } else {
        format!("Durable one-event appends, {writers} concurrent writers")
    };
    let value = format!(
        "{} commands/s ({} appends in {:.2} s; latency p50 {}, p99 {})",
        thousands(rate),
        thousands(count as f64),
        elapsed.as_secs_f64(),
        millis(quantile(&latencies, 0.5)),
        millis(quantile(&latencies, 0.99)),
    );
    if probe {
        let label = format!("{label}, with group probe");
        match advances {
            Some(advances) if advances > 0 => {
                let per_group = count as f64 / advances as f64;
                let value = format!(
                    "{} commands/s; {} head advances seen → ≤ {:.1} appends per group commit, \
                     ≥ {} commits/s, {} per commit",
                    thousands(rate),
                    thousands(advances as f64),
                    per_group,
                    thousands(advances as f64 / elapsed.as_secs_f64()),
                    millis(elapsed / u32::try_from(advances).unwrap_or(u32::MAX)),
                );
                out.figure(label, value, per_group);
            }
            _ => out.figure(label, "no head advance seen", 0.0),
        }
    } else if writers > 1 {
        out.target(label, value, rate, "≥ 5,000 commands/s", rate >= 5000.0);
    } else {
        out.figure(label, value, rate);
    }
    out.note(format!(
        "Append payload: {payload_bytes} bytes of `StatusGranted` JSON (one parent, Cyrillic \
         names) + {metadata_bytes} bytes of metadata; stream `family-<uuid>`, `NoStream`, \
         {warmup} warm-up appends not counted."
    ));
    Ok(out)
}

/// Counts how often the head moves: every group commit moves it once, so this is a lower bound of
/// the number of commits (two commits between two looks count once).
async fn count_head_advances(store: SqliteEventStore, stop: Arc<AtomicBool>) -> Result<u64> {
    let mut seen = store.head().await?;
    let mut advances = 0;
    while !stop.load(Ordering::Relaxed) {
        let head = store
            .wait_for_events(seen, Duration::from_millis(20))
            .await?;
        if head > seen {
            advances += 1;
            seen = head;
        }
    }
    Ok(advances)
}

/// The baseline: plain SQLite inserts with the store's durability settings, `batch` rows per
/// transaction (1 = autocommit, one fsync per row).
pub async fn plain(batch: usize, count: usize) -> Result<Outcome> {
    ensure!(batch > 0 && count > 0, "batch and count must be positive");
    let dir = scratch_dir()?;
    let db = dir.path().join("plain.db");
    let mut conn = plain_connection(&db)?;
    conn.execute_batch(
        "CREATE TABLE plain_events (
             id INTEGER PRIMARY KEY, stream TEXT NOT NULL, data TEXT NOT NULL,
             metadata TEXT NOT NULL)",
    )?;
    let rows: Vec<(String, NewEvent)> = (0..count).map(grant_append).collect();
    const INSERT: &str = "INSERT INTO plain_events (stream, data, metadata) VALUES (?1, ?2, ?3)";

    let start = Instant::now();
    if batch == 1 {
        // Autocommit: each lone INSERT is its own durable transaction.
        let mut insert = conn.prepare_cached(INSERT)?;
        for (stream, e) in &rows {
            insert.execute(rusqlite::params![stream, e.data, e.metadata])?;
        }
    } else {
        for chunk in rows.chunks(batch) {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached(INSERT)?;
                for (stream, e) in chunk {
                    insert.execute(rusqlite::params![stream, e.data, e.metadata])?;
                }
            }
            tx.commit()?;
        }
    }
    let elapsed = start.elapsed();
    let stored: i64 = conn.query_row("SELECT COUNT(*) FROM plain_events", [], |r| r.get(0))?;
    ensure!(stored == count as i64, "{stored} rows stored of {count}");

    let rate = count as f64 / elapsed.as_secs_f64();
    let commits = count.div_ceil(batch) as f64;
    let per_commit = elapsed.as_secs_f64() / commits;
    let label = if batch == 1 {
        "Plain SQLite insert, 1 row per transaction (autocommit), WAL + synchronous=FULL".into()
    } else {
        format!("Plain SQLite insert, {batch} rows per transaction, WAL + synchronous=FULL")
    };
    let mut out = Outcome::default();
    out.figure(
        label,
        format!(
            "{} rows/s ({} commits/s, {:.3} ms per commit)",
            thousands(rate),
            thousands(commits / elapsed.as_secs_f64()),
            per_commit * 1e3
        ),
        rate,
    );
    Ok(out)
}

/// Fills `db` with `streams` × `per_append` events by multi-event appends from `writers` tasks.
pub async fn populate(
    db: &Path,
    streams: usize,
    per_append: usize,
    writers: usize,
) -> Result<Outcome> {
    ensure!(
        streams > 0 && per_append > 0 && writers > 0,
        "all sizes must be positive"
    );
    let store = SqliteEventStore::open(path_str(db)?).await?;
    let before = store.head().await?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let store = store.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= streams {
                    return anyhow::Ok(());
                }
                let (stream, first) = grant_append(i);
                let mut events = Vec::with_capacity(per_append);
                events.push(first);
                events.extend(
                    (1..per_append).map(|k| new_event("MemberAdded", payload::member_added(k))),
                );
                store
                    .append(&stream, ExpectedRevision::NoStream, events, None)
                    .await?;
            }
        }));
    }
    for task in tasks {
        task.await.context("populate task panicked")??;
    }
    let elapsed = start.elapsed();
    let added = store.head().await? - before;
    ensure!(
        added == (streams * per_append) as u64,
        "{added} events added of {}",
        streams * per_append
    );
    let mut out = Outcome::default();
    out.figure(
        "Populate (not a target figure)",
        format!(
            "{} events in {} appends of {per_append} in {:.1} s ({} events/s, {} appends/s); \
             file {:.0} MiB",
            thousands(added as f64),
            thousands(streams as f64),
            elapsed.as_secs_f64(),
            thousands(added as f64 / elapsed.as_secs_f64()),
            thousands(streams as f64 / elapsed.as_secs_f64()),
            db_size(db) as f64 / (1024.0 * 1024.0),
        ),
        added as f64 / elapsed.as_secs_f64(),
    );
    Ok(out)
}

/// Pages through the whole log with `read_all(from, page)`; reports the rate and the process's peak
/// resident memory (this process does nothing else).
pub async fn scan(db: &Path, page: usize) -> Result<Outcome> {
    ensure!(db.exists(), "no database at {}", db.display());
    ensure!(page > 0, "page must be positive");
    let size = db_size(db);
    let store = SqliteEventStore::open(path_str(db)?).await?;
    let head = store.head().await?;
    let rss_before = proc_status_kib("VmRSS").unwrap_or(0);

    let start = Instant::now();
    let (mut from, mut events, mut bytes, mut pages) = (0u64, 0u64, 0u64, 0u64);
    loop {
        let batch = store.read_all(from, page).await?;
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        events += batch.len() as u64;
        bytes += batch
            .iter()
            .map(|e| (e.data.len() + e.metadata.len()) as u64)
            .sum::<u64>();
        pages += 1;
        black_box(&batch);
    }
    let elapsed = start.elapsed();
    ensure!(events == head, "scanned {events} events, head is {head}");
    let hwm = proc_status_kib("VmHWM").context("VmHWM not in /proc/self/status")?;

    let rate = events as f64 / elapsed.as_secs_f64();
    let mut out = Outcome::default();
    out.target(
        format!("`read_all` scan, pages of {page}"),
        format!(
            "{} events/s ({} events, {} pages, {:.2} s; {:.0} MiB/s of payload, {} bytes/event)",
            thousands(rate),
            thousands(events as f64),
            thousands(pages as f64),
            elapsed.as_secs_f64(),
            bytes as f64 / elapsed.as_secs_f64() / (1024.0 * 1024.0),
            bytes / events.max(1),
        ),
        rate,
        "≥ 500,000 events/s",
        rate >= 500_000.0,
    );
    // File-backed pages (a memory-mapped database file) count in the resident set too.
    let anon = proc_status_kib("RssAnon").unwrap_or(0);
    let file = proc_status_kib("RssFile").unwrap_or(0);
    out.figure(
        "Peak resident memory of the scan process (VmHWM)",
        format!(
            "{:.1} MiB (at the end: {:.1} MiB anonymous + {:.1} MiB file-backed; VmRSS {:.1} MiB \
             after opening, before the scan)",
            hwm as f64 / 1024.0,
            anon as f64 / 1024.0,
            file as f64 / 1024.0,
            rss_before as f64 / 1024.0
        ),
        hwm as f64 / 1024.0,
    );
    out.figure(
        "Database size (file + WAL + shm)",
        format!(
            "{:.0} MiB for {} events ({} bytes/event)",
            size as f64 / (1024.0 * 1024.0),
            thousands(events as f64),
            size / events.max(1)
        ),
        size as f64,
    );
    out.note("The scan reads a file just written by `populate`, so it runs on a warm page cache.");
    Ok(out)
}

fn request(family_id: FamilyId, command: Command) -> CommandRequest {
    CommandRequest {
        family_id,
        command,
        actor: Actor {
            id: "token-officer-1".into(),
            role: Role::Officer,
        },
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        idempotency_key: None,
        request_hash: "bench".into(),
        expected_revision: None,
    }
}

fn parent() -> Member {
    Member {
        relation: registry_domain::Relation::Parent,
        birth_date: date(1988, 4, 4),
        first_name: "Елена".into(),
        middle_name: Some("Сергеевна".into()),
        ..payload::child(0)
    }
}

/// Builds one family of `events` events through the command path: a grant, then added children
/// (up to 30), then corrections of middle names.
async fn build_family(registry: &Registry, events: usize) -> Result<FamilyId> {
    ensure!(events >= 1, "a family has at least its grant");
    let family_id = new_family_id();
    let mut members = vec![parent()];
    members.extend((1..4).map(payload::child));
    let grant = Command::Grant {
        decision: Decision {
            number: "Р-100/2026".into(),
            date: date(2026, 11, 24),
            office: Some("УСЗН района Марьино".into()),
            term_until: None,
        },
        members: members.clone(),
        valid_from: None,
        certificate_number: certificate_number(family_id),
        certificate_id: new_certificate_id(),
    };
    registry.execute(request(family_id, grant)).await?;
    let adds = (events - 1).min(30);
    for i in 0..adds {
        let member = payload::child(4 + i);
        members.push(member.clone());
        let command = Command::AddMember {
            member,
            decision: None,
        };
        registry.execute(request(family_id, command)).await?;
    }
    const PATRONYMICS: [&str; 4] = ["Андреевич", "Андреевна", "Олегович", "Олеговна"];
    for i in 0..events - 1 - adds {
        let member = &members[1 + i % (members.len() - 1)];
        let command = Command::CorrectMember {
            member_id: member.member_id,
            changes: MemberChanges {
                middle_name: Some(Some(PATRONYMICS[i % PATRONYMICS.len()].into())),
                ..MemberChanges::default()
            },
        };
        registry.execute(request(family_id, command)).await?;
    }
    Ok(family_id)
}

/// Loads and folds one family of `events` events `loads` times with `Registry::load`.
pub async fn load(db: Option<&Path>, events: usize, loads: usize) -> Result<Outcome> {
    ensure!(loads > 0, "loads must be positive");
    let dir = scratch_dir()?;
    let db = db.map_or_else(|| dir.path().join("load.db"), Path::to_path_buf);
    let store: Arc<dyn EventStore> = Arc::new(SqliteEventStore::open(path_str(&db)?).await?);
    let others = store.head().await?;
    let at = Utc
        .with_ymd_and_hms(2026, 11, 25, 9, 0, 0)
        .single()
        .context("clock date")?;
    let registry = Registry::new(
        store.clone(),
        Arc::new(ManualClock::new(at)),
        Policy::federal_2024(),
    );
    let family_id = build_family(&registry, events).await?;
    let stream = family_id.stream_name();

    for _ in 0..loads.min(50) {
        black_box(registry.load(family_id).await?);
    }
    // Each round: one whole load, then the store's read alone, then the decode + fold alone (of
    // what was read), so that a disturbance of the machine hits all three alike.
    let (mut times, mut reads, mut folds) = (Vec::new(), Vec::new(), Vec::new());
    let mut recorded = Vec::new();
    for _ in 0..loads {
        let t = Instant::now();
        let loaded = registry
            .load(family_id)
            .await?
            .context("family not found")?;
        times.push(t.elapsed());
        ensure!(
            loaded.revision + 1 == events as u64,
            "revision {}",
            loaded.revision
        );
        black_box(loaded);

        let t = Instant::now();
        recorded = store.read_stream(&stream, 0).await?;
        reads.push(t.elapsed());

        let t = Instant::now();
        let mut state = None;
        for r in &recorded {
            let event = FamilyEvent::decode(&r.event_type, r.schema_version, &r.data)?;
            state = evolve(state, &event);
        }
        folds.push(t.elapsed());
        black_box(state);
    }
    for v in [&mut times, &mut reads, &mut folds] {
        v.sort_unstable();
    }
    let p50 = quantile(&times, 0.5);
    let p99 = quantile(&times, 0.99);
    let bytes: usize = recorded.iter().map(|r| r.data.len()).sum();
    let mut out = Outcome::default();
    out.target(
        format!("`Registry::load` of a {events}-event family (read + decode + fold)"),
        format!(
            "p50 {}, p99 {} over {} loads",
            millis(p50),
            millis(p99),
            thousands(loads as f64)
        ),
        p50.as_secs_f64() * 1e3,
        "< 1 ms at p50 and p99",
        p99 < Duration::from_millis(1),
    );
    out.figure(
        "… of which `read_stream` alone",
        format!(
            "p50 {}, p99 {}",
            millis(quantile(&reads, 0.5)),
            millis(quantile(&reads, 0.99))
        ),
        quantile(&reads, 0.5).as_secs_f64() * 1e3,
    );
    out.figure(
        "… of which decode + fold alone",
        format!(
            "p50 {}, p99 {}",
            millis(quantile(&folds, 0.5)),
            millis(quantile(&folds, 0.99))
        ),
        quantile(&folds, 0.5).as_secs_f64() * 1e3,
    );
    out.note(format!(
        "The loaded family: 1 `StatusGranted` (4 members), {} `MemberAdded`, {} \
         `MemberDetailsCorrected`, {} bytes of event data, written through `Registry::execute`; \
         the file held {} other events.",
        events.saturating_sub(1).min(30),
        events.saturating_sub(31),
        thousands(bytes as f64),
        thousands(others as f64),
    ));
    Ok(out)
}
