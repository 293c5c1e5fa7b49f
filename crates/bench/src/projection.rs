//! The projections. The rebuild rate of both projections beside the raw `read_all` scan
//! of the same store, and the lag from an acknowledged append to the certificate view while the
//! runner follows a steady write load. Also used for PostgreSQL: every workload here
//! takes an event-store URL.

use crate::families;
use crate::pg;
use crate::report::{millis, proc_status_kib, quantile, thousands, Outcome};
use crate::workloads::{db_size, scratch_dir};
use anyhow::{ensure, Context, Result};
use registry_app::{new_family_id, CommandRequest, ManualClock, Registry};
use registry_domain::{Command, Family, FamilyId, MemberChanges, MemberId, Policy};
use registry_projections::{default_projections, ProjectionRunner};
use registry_read_store::ReadStore;
use registry_store::{EventStore, ExpectedRevision};
use registry_store_postgres::PostgresEventStore;
use registry_store_sqlite::SqliteEventStore;
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Events per second a rebuild of 1,000,000 events is held to, on SQLite and on PostgreSQL
/// (issue 17; issue 3 asked 50,000).
pub const REBUILD_TARGET: f64 = 100_000.0;

/// Events per `read_all` page: the projection runner's batch (`registry_projections` reads and
/// applies 2,000 events per transaction while catching up or rebuilding).
pub const PAGE: usize = 2000;

pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the event store a URL names: `postgres://...`, or else a SQLite file; `sealed:URL` is
/// that store behind the seal of personal data, as the binary runs it (keys in `URL.keys/`).
pub async fn open_store(url: &str) -> Result<Arc<dyn EventStore>> {
    if let Some(inner) = url.strip_prefix("sealed:") {
        let plain = Box::pin(open_store(inner)).await?;
        let dir = std::path::PathBuf::from(format!("{}.keys", inner.trim_start_matches("sqlite:")));
        let kek = registry_personal_data::FileKek::load_or_create(&dir)?;
        let keys = registry_personal_data::SqliteFamilyKeys::open(
            &dir.join(registry_personal_data::SqliteFamilyKeys::FILE),
            Arc::new(kek),
        )?;
        return Ok(Arc::new(registry_personal_data::SealingStore::new(
            plain,
            Arc::new(keys),
        )));
    }
    if is_postgres(url) {
        let store = PostgresEventStore::open(url)
            .await
            .context("opening the PostgreSQL event store")?;
        Ok(Arc::new(store))
    } else {
        let store = SqliteEventStore::open(url)
            .await
            .with_context(|| format!("opening the SQLite event store {url}"))?;
        Ok(Arc::new(store))
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// A stride that walks `0..n` in a scrambled order (`j * stride % n` is a permutation).
fn stride_for(n: usize, round: usize) -> usize {
    const PRIMES: [usize; 6] = [
        7919, 104_729, 15_485_863, 32_452_843, 49_979_687, 86_028_121,
    ];
    let mut s = PRIMES[round % PRIMES.len()] % n.max(1);
    while n > 1 && (s == 0 || gcd(s, n) != 1) {
        s += 1;
    }
    s.max(1)
}

struct Slot {
    family_id: FamilyId,
    state: Option<Family>,
    revision: Option<u64>,
}

/// Fills the store with `families` families: a round of grants, then `follow_ups` rounds of one
/// command per family (children added, names corrected, renewals), each round in a scrambled
/// family order, so a family's events spread over the whole log as in real life. Every command
/// is decided by the domain and appended by one of `writers` concurrent tasks.
pub async fn populate_families(
    store_url: &str,
    families: usize,
    follow_ups: usize,
    writers: usize,
) -> Result<Outcome> {
    ensure!(
        families > 0 && writers > 0,
        "families and writers must be positive"
    );
    let store = open_store(store_url).await?;
    let before = store.head().await?;
    let slots: Arc<Vec<Mutex<Slot>>> = Arc::new(
        (0..families)
            .map(|_| {
                Mutex::new(Slot {
                    family_id: new_family_id(),
                    state: None,
                    revision: None,
                })
            })
            .collect(),
    );
    let policy = Arc::new(Policy::federal_2024());
    let mut mix: BTreeMap<String, u64> = BTreeMap::new();
    let mut data_bytes = 0u64;
    let start = Instant::now();
    for round in 0..=follow_ups {
        let stride = stride_for(families, round);
        let next = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::with_capacity(writers);
        for _ in 0..writers {
            let (store, slots, policy, next) =
                (store.clone(), slots.clone(), policy.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                let mut mix: HashMap<String, u64> = HashMap::new();
                let mut bytes = 0u64;
                loop {
                    let j = next.fetch_add(1, Ordering::Relaxed);
                    if j >= families {
                        return anyhow::Ok((mix, bytes));
                    }
                    let i = (j * stride + round * 13) % families;
                    let (family_id, state, revision) = {
                        let mut slot = slots[i]
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        (slot.family_id, slot.state.take(), slot.revision)
                    };
                    let command = match &state {
                        None => families::grant(i, family_id),
                        Some(family) => families::follow_up(i, round, family),
                    };
                    let (events, state) =
                        families::decide_events(&policy, family_id, state, &command)?;
                    for e in &events {
                        *mix.entry(e.event_type.clone()).or_default() += 1;
                        bytes += (e.data.len() + e.metadata.len()) as u64;
                    }
                    let expected = match revision {
                        Some(r) => ExpectedRevision::Exact(r),
                        None => ExpectedRevision::NoStream,
                    };
                    let appended = store
                        .append(&family_id.stream_name(), expected, events, None)
                        .await?;
                    let mut slot = slots[i]
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    slot.state = state;
                    slot.revision = Some(appended.revision);
                }
            }));
        }
        for task in tasks {
            let (counts, bytes) = task.await.context("a populate task panicked")??;
            data_bytes += bytes;
            for (k, v) in counts {
                *mix.entry(k).or_default() += v;
            }
        }
    }
    let elapsed = start.elapsed();
    let added = store.head().await? - before;
    let written: u64 = mix.values().sum();
    ensure!(added == written, "{added} events added, {written} written");
    let size = if is_postgres(store_url) {
        String::new()
    } else {
        format!(
            "; file {:.0} MiB",
            db_size(Path::new(store_url.trim_start_matches("sealed:"))) as f64 / (1024.0 * 1024.0)
        )
    };
    let mix: Vec<String> = mix
        .iter()
        .map(|(k, v)| format!("{k} {}", thousands(*v as f64)))
        .collect();
    let mut out = Outcome::default();
    out.figure(
        "Populate (not a target figure)",
        format!(
            "{} events of {} families in {:.1} s ({} events/s, {writers} writers, one command \
             per append, each decided by the domain){size}",
            thousands(added as f64),
            thousands(families as f64),
            elapsed.as_secs_f64(),
            thousands(added as f64 / elapsed.as_secs_f64()),
        ),
        added as f64 / elapsed.as_secs_f64(),
    );
    out.note(format!(
        "The log: {} families, each granted (2 parents, 3 children) and then given {follow_ups} \
         more commands in {follow_ups} rounds, every round in a scrambled family order, so a \
         family's events lie far apart in the log. Events: {}; {} bytes of data + metadata per \
         event on average.",
        thousands(families as f64),
        mix.join(", "),
        data_bytes / written.max(1),
    ));
    Ok(out)
}

/// Pages through the whole log with `read_all`; returns the events read and the time taken.
pub async fn scan_all(store: &dyn EventStore, page: usize) -> Result<(u64, Duration)> {
    let start = Instant::now();
    let (mut from, mut events) = (1u64, 0u64);
    loop {
        let batch = store.read_all(from, page).await?;
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        events += batch.len() as u64;
        black_box(&batch);
    }
    Ok((events, start.elapsed()))
}

/// Milliseconds below a second, seconds above.
fn human(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else {
        millis(d)
    }
}

fn rate(events: u64, d: Duration) -> f64 {
    events as f64 / d.as_secs_f64().max(1e-9)
}

/// Rebuilds the projections (both, or `only` one) from the whole log into a fresh read store,
/// between two raw `read_all` scans of the same store.
pub async fn rebuild(
    store_url: &str,
    read_server: Option<&str>,
    only: Option<&str>,
) -> Result<Outcome> {
    let store = open_store(store_url).await?;
    let head = store.head().await?;
    ensure!(head > 0, "the event store is empty: run populate-families");
    let dir = scratch_dir()?;

    let (scanned, scan_before) = scan_all(store.as_ref(), PAGE).await?;
    ensure!(scanned == head, "scanned {scanned} events, head is {head}");

    let fresh = match read_server {
        Some(server) => Some(pg::fresh_database(server, "bench_read").await?),
        None => None,
    };
    let read_url = match &fresh {
        Some(url) => url.clone(),
        None => dir
            .path()
            .join("views.db")
            .to_str()
            .context("temporary path is not UTF-8")?
            .to_string(),
    };
    let read = open_read_store(&read_url).await?;
    // No `prepare()`: on a fresh SQLite read store it would build the views itself (the same
    // rebuild); the rebuild below starts from an empty read store either way.
    let runner = ProjectionRunner::new(store.clone(), read.clone(), default_projections());
    let names: Vec<&str> = match only {
        Some(name) => vec![name],
        None => vec!["certificate_view", "family_history"],
    };
    let start = Instant::now();
    let count = runner.rebuild(&names, |_| {}).await?;
    let elapsed = start.elapsed();
    ensure!(count == head, "rebuilt from {count} events, head is {head}");

    let (_, scan_after) = scan_all(store.as_ref(), PAGE).await?;
    let hwm = proc_status_kib("VmHWM").unwrap_or(0);
    let mut rows = Vec::new();
    for name in &names {
        let n = count_rows(&read_url, name).await?;
        rows.push(format!("{} rows in `{name}`", thousands(n as f64)));
    }
    let mut wal_size = None;
    let read_size = if fresh.is_some() {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&read_url).await?;
        let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&mut conn)
            .await?;
        bytes as u64
    } else {
        // The WAL not yet copied back is counted apart: its size says when the checkpointer
        // last ran, not how much the views take.
        let views = dir.path().join("views.db");
        let file = std::fs::metadata(&views).map_or(0, |m| m.len());
        wal_size = Some(db_size(&views).saturating_sub(file));
        file
    };
    drop(read);
    if let (Some(server), Some(url)) = (read_server, &fresh) {
        pg::drop_database(server, url).await?;
    }

    let backend = if fresh.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let events_backend = if is_postgres(store_url) {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let r = rate(count, elapsed);
    let (s1, s2) = (rate(scanned, scan_before), rate(scanned, scan_after));
    let mut out = Outcome::default();
    let what = match only {
        Some(name) => format!("Diagnostic: rebuild of `{name}` alone"),
        None => "Projection rebuild, `certificate_view` + `family_history`".to_string(),
    };
    let value = format!(
        "{} events/s ({} events in {:.1} s; {}; read store {:.0} MiB{})",
        thousands(r),
        thousands(count as f64),
        elapsed.as_secs_f64(),
        rows.join(", "),
        read_size as f64 / (1024.0 * 1024.0),
        wal_size.map_or(String::new(), |w| format!(
            ", and {:.0} MiB of WAL not yet checkpointed",
            w as f64 / (1024.0 * 1024.0)
        )),
    );
    let label = format!("{what} ({events_backend} event store → {backend} read store)");
    if only.is_none() {
        out.target(label, value, r, "≥ 100,000 events/s", r >= REBUILD_TARGET);
    } else {
        out.figure(label, value, r);
    }
    out.figure(
        format!(
            "… beside: raw `read_all` scan of the same {events_backend} store, same process, \
             pages of {PAGE}"
        ),
        format!(
            "{} events/s just before the rebuild, {} just after (the rebuild ran at {:.0}% of \
             the scan rate; the scan is {:.1} s of the rebuild's {:.1} s)",
            thousands(s1),
            thousands(s2),
            100.0 * r / s1.max(1.0),
            scan_before.as_secs_f64(),
            elapsed.as_secs_f64(),
        ),
        s1,
    );
    if only.is_none() {
        out.figure(
            "… peak resident memory of the rebuild process (VmHWM)",
            format!("{:.0} MiB", hwm as f64 / 1024.0),
            hwm as f64 / 1024.0,
        );
    }
    Ok(out)
}

fn request(family_id: FamilyId, command: Command) -> CommandRequest {
    CommandRequest {
        family_id,
        command,
        actor: families::officer(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        idempotency_key: None,
        request_hash: "bench".into(),
        expected_revision: None,
    }
}

/// A seeded family: its id and its mother's member id (for corrections).
#[derive(Clone, Copy)]
struct Seeded {
    family_id: FamilyId,
    mother: MemberId,
    index: usize,
}

/// The `k`-th command of the lag load: even ones grant a new family, odd ones add a child to or
/// correct the mother of one of the seeded families (in turn).
fn lag_command(k: usize, seeded: &[Seeded]) -> (FamilyId, Command) {
    if k & 1 == 0 {
        let family_id = new_family_id();
        return (family_id, families::grant(1_000_000 + k, family_id));
    }
    let n = seeded.len().max(1);
    let s = seeded[(k / 2) % n];
    let c = (k / 2) / n; // how many follow-ups this family got before
    let command = if c & 1 == 0 {
        Command::AddMember {
            member: families::newborn(s.index, c + 1),
            decision: None,
        }
    } else {
        const PATRONYMICS: [&str; 4] = ["Сергеевна", "Александровна", "Викторовна", "Игоревна"];
        Command::CorrectMember {
            member_id: s.mother,
            changes: MemberChanges {
                middle_name: Some(Some(PATRONYMICS[(s.index + c) % 4].into())),
                ..MemberChanges::default()
            },
        }
    };
    (s.family_id, command)
}

/// The lag from an acknowledged append (`Registry::execute` without visibility) to the event
/// being visible in `certificate_view`, while the runner follows live and `rate` commands per
/// second arrive for `seconds`. Fresh SQLite event and read stores with `seed` families granted
/// beforehand.
pub async fn lag(rate_per_s: u64, seconds: u64, seed: usize) -> Result<Outcome> {
    ensure!(
        rate_per_s > 0 && seconds > 0 && seed > 0,
        "rate, seconds and seed must be positive"
    );
    let dir = scratch_dir()?;
    let events = dir.path().join("events.db");
    let store: Arc<dyn EventStore> = Arc::new(
        SqliteEventStore::open(events.to_str().context("temporary path is not UTF-8")?).await?,
    );
    let read = open_read_store(
        dir.path()
            .join("views.db")
            .to_str()
            .context("temporary path is not UTF-8")?,
    )
    .await?;
    let runner = Arc::new(ProjectionRunner::new(
        store.clone(),
        read.clone(),
        default_projections(),
    ));
    runner.prepare().await?;
    let registry = Registry::new(
        store.clone(),
        Arc::new(ManualClock::new(families::now())),
        Policy::federal_2024(),
    );

    // The seeded families, granted through the command path by 32 concurrent tasks.
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (registry, next) = (registry.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= seed {
                    return anyhow::Ok(out);
                }
                let family_id = new_family_id();
                let command = families::grant(i, family_id);
                let mother = match &command {
                    Command::Grant { members, .. } => members[0].member_id,
                    _ => MemberId(Uuid::nil()),
                };
                registry.execute(request(family_id, command)).await?;
                out.push(Seeded {
                    family_id,
                    mother,
                    index: i,
                });
            }
        }));
    }
    let mut seeded = Vec::with_capacity(seed);
    for t in tasks {
        seeded.extend(t.await.context("a seed task panicked")??);
    }
    seeded.sort_by_key(|s| s.index);
    let seeded = Arc::new(seeded);
    runner.catch_up().await?;

    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let following = tokio::spawn(runner.clone().run(async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    let handle = runner.handle();

    // Acknowledged appends waiting to be seen: position → when the append was acknowledged.
    let pending: Arc<Mutex<BTreeMap<u64, Instant>>> = Arc::default();
    let arrived = Arc::new(tokio::sync::Notify::new());
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (pending, arrived, done, handle) = (
            pending.clone(),
            arrived.clone(),
            done.clone(),
            handle.clone(),
        );
        tokio::spawn(async move {
            let mut lags = Vec::new();
            let mut last_seen = Instant::now();
            loop {
                let target = pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .first_key_value()
                    .map(|(p, _)| *p);
                let Some(target) = target else {
                    if done.load(Ordering::Acquire) {
                        return anyhow::Ok((lags, last_seen));
                    }
                    let _ =
                        tokio::time::timeout(Duration::from_millis(50), arrived.notified()).await;
                    continue;
                };
                handle
                    .wait_applied(target, Duration::from_secs(60))
                    .await
                    .context("the certificate view did not catch up within 60 s")?;
                let seen = Instant::now();
                last_seen = seen;
                let applied = handle.applied().max(target);
                let ready = {
                    let mut p = pending
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let later = p.split_off(&(applied + 1));
                    std::mem::replace(&mut *p, later)
                };
                lags.extend(
                    ready
                        .values()
                        .map(|ack| seen.saturating_duration_since(*ack)),
                );
            }
        })
    };

    let head_before = store.head().await?;
    let total = usize::try_from(rate_per_s * seconds).unwrap_or(usize::MAX);
    let limit = Arc::new(tokio::sync::Semaphore::new(4096));
    let errors = Arc::new(AtomicUsize::new(0));
    let acks: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let start = Instant::now() + Duration::from_millis(20);
    let mut workers = Vec::with_capacity(total);
    for k in 0..total {
        let at = start + Duration::from_nanos((k as u64) * 1_000_000_000 / rate_per_s);
        if at > Instant::now() {
            tokio::time::sleep_until(at.into()).await;
        }
        let permit = limit.clone().acquire_owned().await?;
        let (family_id, command) = lag_command(k, &seeded);
        let (registry, pending, arrived, errors, acks) = (
            registry.clone(),
            pending.clone(),
            arrived.clone(),
            errors.clone(),
            acks.clone(),
        );
        workers.push(tokio::spawn(async move {
            let sent = Instant::now();
            match registry.execute(request(family_id, command)).await {
                Ok(outcome) => {
                    let ack = Instant::now();
                    pending
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(outcome.position, ack);
                    arrived.notify_one();
                    acks.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(ack - sent);
                }
                Err(e) => {
                    if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("   first failed command: {e}");
                    }
                }
            }
            drop(permit);
        }));
    }
    let sent_all = start.elapsed();
    for w in workers {
        w.await.context("a command task panicked")?;
    }
    let elapsed = start.elapsed();
    done.store(true, Ordering::Release);
    arrived.notify_one();
    let (mut lags, last_seen) = monitor.await.context("the monitor panicked")??;
    let applied_events = store.head().await? - head_before;
    let applying = last_seen.saturating_duration_since(start);
    let _ = stop_tx.send(true);
    following.await.context("the runner panicked")?;

    let errors = errors.load(Ordering::Relaxed);
    let mut acks = std::mem::take(
        &mut *acks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    lags.sort_unstable();
    acks.sort_unstable();
    let done_n = lags.len();
    ensure!(done_n > 0, "no command succeeded");
    let mut out = Outcome::default();
    out.figure(
        format!(
            "Lag from acknowledged append to visible in `certificate_view`, {} commands/s for \
             {seconds} s",
            thousands(rate_per_s as f64)
        ),
        format!(
            "median {}, p99 {}, max {} over {} commands (sent in {:.1} s, {} commands/s \
             achieved; `execute` acknowledged p50 {}, p99 {}; {errors} failed; the runner \
             applied the load's {} events in {:.1} s from its start, {} events/s)",
            human(quantile(&lags, 0.5)),
            human(quantile(&lags, 0.99)),
            human(lags.last().copied().unwrap_or_default()),
            thousands(done_n as f64),
            sent_all.as_secs_f64(),
            thousands(done_n as f64 / elapsed.as_secs_f64()),
            human(quantile(&acks, 0.5)),
            human(quantile(&acks, 0.99)),
            thousands(applied_events as f64),
            applying.as_secs_f64(),
            thousands(applied_events as f64 / applying.as_secs_f64().max(1e-9)),
        ),
        quantile(&lags, 0.5).as_secs_f64() * 1e3,
    );
    out.note(format!(
        "Lag workload: fresh SQLite event and read stores, {} families granted first (not \
         measured); then half of the commands grant new families and half add a child to or \
         correct a name in a granted family, sent open-loop on a fixed schedule through \
         `Registry::execute` without visibility, while `ProjectionRunner::run` follows in the \
         same process. The lag of a command runs from `execute` returning to the moment the \
         runner's `wait_applied` reports its position applied to `certificate_view` (its rows \
         and checkpoint commit together).",
        thousands(seed as f64)
    ));
    Ok(out)
}

/// The read store at a `postgres://` URL or a SQLite path.
async fn open_read_store(url: &str) -> Result<Arc<dyn ReadStore>> {
    Ok(if is_postgres(url) {
        Arc::new(registry_read_store_postgres::PostgresReadStore::open(url).await?)
    } else {
        Arc::new(registry_read_store_sqlite::SqliteReadStore::open(url).await?)
    })
}

/// Rows of a table of the read store at `url`.
async fn count_rows(url: &str, table: &str) -> Result<i64> {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    if is_postgres(url) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url).await?;
        Ok(sqlx::query_scalar(&sql).fetch_one(&mut conn).await?)
    } else {
        let conn = rusqlite::Connection::open(url)?;
        Ok(conn.query_row(&sql, [], |r| r.get(0))?)
    }
}
