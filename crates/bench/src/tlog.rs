//! What the transparency log costs and how fast it answers (issue 15, ADR 20): appends with the
//! tree kept up to date beside appends without it (alternated round by round in one process), the
//! tree built from a large log beside a plain scan of the same log, `audit verify` over it, and
//! inclusion and consistency proofs per second.

use crate::report::{thousands, Outcome};
use crate::workloads::{append_work, populate, scratch_dir, timed_appends, warm_up};
use anyhow::{ensure, Result};
use rand::Rng;
use registry_read_store_sqlite::SqliteReadStore;
use registry_store::EventStore;
use registry_store_sqlite::SqliteEventStore;
use registry_tlog::{audit, prove, LogBuilder, LogKey, TransparencyLog, TreeStore};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

struct Log {
    _dir: tempfile::TempDir,
    events: Arc<dyn EventStore>,
    tree: Arc<dyn TreeStore>,
    key: Arc<LogKey>,
}

async fn fresh() -> Result<Log> {
    let dir = scratch_dir()?;
    let events =
        SqliteEventStore::open(&dir.path().join("events.db").display().to_string()).await?;
    let tree = SqliteReadStore::open(&dir.path().join("views.db").display().to_string()).await?;
    let (key, _) = LogKey::generate("bench.example/log")?;
    Ok(Log {
        _dir: dir,
        events: Arc::new(events),
        tree: Arc::new(tree),
        key: Arc::new(key),
    })
}

/// One timed run of `count` appends from `writers`; with the builder following when `tree`.
/// Returns appends/s and, with the tree, how long after the last append its tree was complete.
async fn appends(writers: usize, count: usize, tree: bool) -> Result<(f64, Option<Duration>)> {
    let log = fresh().await?;
    warm_up(log.events.as_ref(), 100).await?;
    let builder = Arc::new(LogBuilder::new(
        log.events.clone(),
        log.tree.clone(),
        log.key.clone(),
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let follower = tree.then(|| {
        tokio::spawn(builder.clone().run(async {
            let _ = stopped.await;
        }))
    });
    let (_, elapsed) = timed_appends(log.events.clone(), append_work(writers, count, 100)).await?;
    let rate = count as f64 / elapsed.as_secs_f64();
    let lag = if let Some(follower) = follower {
        let after = Instant::now();
        let head = (count + 100) as u64;
        while log.tree.tree_size().await?.size < head {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let lag = after.elapsed();
        let _ = stop.send(());
        follower.await?;
        Some(lag)
    } else {
        None
    };
    Ok((rate, lag))
}

pub async fn tlog(
    writers: usize,
    count: usize,
    rounds: usize,
    streams: usize,
    proofs: usize,
) -> Result<Outcome> {
    let mut out = Outcome::default();
    let (mut with, mut without, mut lags) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        without.push(appends(writers, count, false).await?.0);
        let (rate, lag) = appends(writers, count, true).await?;
        with.push(rate);
        lags.extend(lag.map(|l| l.as_secs_f64() * 1000.0));
    }
    let runs = |v: &[f64]| {
        v.iter()
            .map(|r| thousands(*r))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let (w, wo) = (median(with.clone()), median(without.clone()));
    out.figure(
        format!(
            "Durable appends with the tree kept up to date ({writers} writers, one event each)"
        ),
        format!(
            "{} appends/s with the builder following, {} without: {:.2} of without (median of \
             {rounds}; runs with {}, without {}); the tree held every event {:.0} ms after the \
             last append (median)",
            thousands(w),
            thousands(wo),
            w / wo.max(1e-9),
            runs(&with),
            runs(&without),
            median(lags),
        ),
        w / wo.max(1e-9),
    );

    // A large log: populate, scan it (the reference), build the tree, audit it.
    let log = fresh().await?;
    let db = log._dir.path().join("big.db");
    populate(&db, streams, 10, 32).await?;
    let events: Arc<dyn EventStore> =
        Arc::new(SqliteEventStore::open(&db.display().to_string()).await?);
    let total = events.head().await?;
    let start = Instant::now();
    let (mut from, mut scanned) = (1u64, 0u64);
    loop {
        let page = events.read_all(from, 10_000).await?;
        let Some(last) = page.last() else { break };
        from = last.position + 1;
        scanned += page.len() as u64;
    }
    let scan = scanned as f64 / start.elapsed().as_secs_f64();
    let builder = LogBuilder::new(events.clone(), log.tree.clone(), log.key.clone());
    let start = Instant::now();
    let built = builder.catch_up().await?;
    let build = built.size as f64 / start.elapsed().as_secs_f64();
    ensure!(
        built.size == total,
        "tree of {} for {total} events",
        built.size
    );
    out.figure(
        format!(
            "Tree built from a log of {} events (the first start after an upgrade)",
            thousands(total as f64)
        ),
        format!(
            "{} events/s, against a plain `read_all` scan of the same log at {} events/s in the \
             same run ({:.2} of the scan)",
            thousands(build),
            thousands(scan),
            build / scan.max(1e-9)
        ),
        build,
    );
    let start = Instant::now();
    let report = audit::verify(
        events.as_ref(),
        log.tree.as_ref(),
        log.key.verifier_key(),
        None,
        &|_| {},
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let rate = report.events as f64 / start.elapsed().as_secs_f64();
    out.figure(
        format!(
            "`audit verify` over {} events",
            thousands(report.events as f64)
        ),
        format!(
            "{} events/s ({:.1} s; {} checkpoints checked), {:.2} of the plain scan",
            thousands(rate),
            start.elapsed().as_secs_f64(),
            report.checkpoints,
            rate / scan.max(1e-9)
        ),
        rate,
    );

    // Proofs at this size, for random events, one at a time.
    let service = TransparencyLog::new(
        events.clone(),
        log.tree.clone(),
        log.key.verifier_key().into(),
        vec![],
    );
    let mut rng = rand::thread_rng();
    let mut ids = Vec::with_capacity(proofs);
    for _ in 0..proofs {
        let leaf = log.tree.leaves(rng.gen_range(0..total), 1).await?;
        ids.push(leaf[0].event_id);
    }
    let start = Instant::now();
    for id in &ids {
        service.inclusion(*id, None).await?;
    }
    let inclusion = proofs as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..proofs {
        let old = rng.gen_range(1..total);
        prove::consistency(log.tree.as_ref(), total, old).await?;
    }
    let consistency = proofs as f64 / start.elapsed().as_secs_f64();
    out.figure(
        format!(
            "Proofs against a tree of {} leaves (one caller)",
            thousands(total as f64)
        ),
        format!(
            "{} inclusion proofs/s (leaf lookup, the entry read from the log, the path), {} \
             consistency proofs/s; {proofs} each",
            thousands(inclusion),
            thousands(consistency),
        ),
        inclusion,
    );
    Ok(out)
}
