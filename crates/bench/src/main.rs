//! `registry-bench`: the figures of BENCHMARKS.md, one section per subject. Run in release mode:
//!
//! ```text
//! cargo run --release -p registry-bench -- all --suite event-store --write BENCHMARKS.md
//! ```
//!
//! The suites: `event-store` (SQLite files in a temporary directory), `projections` (rebuild,
//! lag), `http` (`registry serve` driven by `wrk`), `postgres` (a throwaway cluster) and `pdf`.
//!
//! Each workload is also a subcommand of its own; `all` runs every one as a child process (so each
//! gets a fresh process, a fresh file, and its own peak-memory figure) and prints one Markdown
//! section, which `--write` puts into BENCHMARKS.md.

mod children;
mod families;
mod http;
mod payload;
mod pdf;
mod pg;
mod projection;
mod report;
mod sealing;
mod suites;
mod tlog;
mod workloads;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// mimalloc instead of the system allocator: projections and the JSON API allocate many small
/// strings, and glibc's malloc spent a fifth of a rebuild's time on them (docs/adr/0010).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Set for child processes of `all`: print the outcome as one JSON line instead of a table.
pub(crate) const CHILD_ENV: &str = "REGISTRY_BENCH_CHILD";
pub(crate) const RESULT_PREFIX: &str = "RESULT\t";

#[derive(Debug, Parser)]
#[command(
    name = "registry-bench",
    about = "Benchmarks of the registry (BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Every workload of one suite, each in a child process; prints the Markdown section.
    All(AllArgs),
    /// Durable one-event appends to new streams from concurrent writers.
    Append {
        #[arg(long, default_value_t = 32)]
        writers: usize,
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        /// Appends before the clock starts (not counted).
        #[arg(long, default_value_t = 100)]
        warmup: usize,
        /// Also count head advances (group commits) while appending; costs a little throughput.
        #[arg(long)]
        group_probe: bool,
    },
    /// Plain SQLite inserts with the store's durability: the one-fsync-per-command baseline.
    Plain {
        /// Rows per transaction (1 = autocommit).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long, default_value_t = 3_000)]
        count: usize,
    },
    /// Fills a store file for `scan` (multi-event appends from concurrent writers).
    Populate {
        #[arg(long)]
        db: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        streams: usize,
        #[arg(long, default_value_t = 10)]
        events_per_append: usize,
        #[arg(long, default_value_t = 32)]
        writers: usize,
    },
    /// Pages through a store file with `read_all`; reports the rate and the peak memory.
    Scan {
        #[arg(long)]
        db: PathBuf,
        #[arg(long, default_value_t = 1_000)]
        page: usize,
    },
    /// Loads and folds one family stream built through the command path.
    Load {
        /// An existing store file to add the family to (default: a fresh one).
        #[arg(long)]
        db: Option<PathBuf>,
        #[arg(long, default_value_t = 100)]
        events: usize,
        #[arg(long, default_value_t = 1_000)]
        loads: usize,
    },
    /// Fills an event store with realistic families (grants, then rounds of added
    /// children, corrections and renewals), each command decided by the domain.
    PopulateFamilies {
        /// A SQLite file, or a `postgres://` URL of an existing database.
        #[arg(long)]
        store: String,
        #[arg(long, default_value_t = 200_000)]
        families: usize,
        /// Commands per family after its grant.
        #[arg(long, default_value_t = 4)]
        follow_ups: usize,
        #[arg(long, default_value_t = 32)]
        writers: usize,
    },
    /// Rebuilds the projections from the whole log into a fresh read store, between two
    /// raw `read_all` scans of the same store.
    Rebuild {
        /// A SQLite file, or a `postgres://` URL.
        #[arg(long)]
        store: String,
        /// A PostgreSQL server URL: the read store is a fresh database there (default: a fresh
        /// SQLite file).
        #[arg(long)]
        read_server: Option<String>,
        /// Rebuild this projection only.
        #[arg(long)]
        only: Option<String>,
    },
    /// Lag from an acknowledged append to the certificate view under a steady load.
    Lag {
        /// Commands per second.
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Families granted before the load (half of the load's commands go to them).
        #[arg(long, default_value_t = 20_000)]
        seed: usize,
    },
    /// A data directory for `registry serve` with granted families, and a file of
    /// their verify paths.
    HttpPopulate {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        families: usize,
        #[arg(long, default_value_t = 32)]
        writers: usize,
    },
    /// A bare axum `GET /healthz` on `--listen`, until killed (the `bare` phase's reference).
    BareHealthz {
        #[arg(long)]
        listen: String,
    },
    /// Starts `registry serve` on a populated data directory and drives it with `wrk`.
    Http {
        #[arg(long)]
        dir: PathBuf,
        /// The `registry` binary (default: next to this one).
        #[arg(long)]
        registry: Option<PathBuf>,
        /// `wrk` threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// `wrk` connections for the GETs.
        #[arg(long, default_value_t = 64)]
        connections: usize,
        /// `wrk` connections (concurrent clients) for the grants.
        #[arg(long, default_value_t = 32)]
        grant_connections: usize,
        /// Length of each timed phase (the cold pass runs until every token was asked once).
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Length of the memory phase's mixed load of verifies and grants.
        #[arg(long, default_value_t = 60)]
        mixed_seconds: u64,
        /// `wrk` connections for the grants of the mixed load.
        #[arg(long, default_value_t = 4)]
        memory_grant_connections: usize,
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "cold,warm,healthz,bare,grants"
        )]
        phases: Vec<http::Phase>,
    },
    /// Durable appends to the PostgreSQL event store in a fresh database.
    PgAppend {
        /// A PostgreSQL server URL (a superuser's, to create the database).
        #[arg(long)]
        server: String,
        #[arg(long, default_value_t = 32)]
        writers: usize,
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        #[arg(long, default_value_t = 100)]
        warmup: usize,
        /// Events `COPY`ed into the log (and analyzed) before the store opens.
        #[arg(long, default_value_t = 0)]
        prefilled: usize,
    },
    /// The same payload rows into a plain PostgreSQL table: `INSERT`s or `COPY`.
    PgPlain {
        #[arg(long)]
        server: String,
        #[arg(long, value_enum, default_value = "insert")]
        mode: pg::PlainMode,
        /// Rows per transaction.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        #[arg(long, default_value_t = 1)]
        connections: usize,
        #[arg(long, default_value_t = 3_000)]
        count: usize,
    },
    /// What sealing personal data costs: appends and rebuilds, plain and sealed, alternated
    Sealing {
        #[arg(long, default_value_t = 20_000)]
        families: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// The transparency log: appends with the tree beside without, tree build and audit over a
    /// large log, proofs per second.
    Tlog {
        #[arg(long, default_value_t = 32)]
        writers: usize,
        #[arg(long, default_value_t = 20_000)]
        count: usize,
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Streams of ten events in the large log (100,000: 1,000,000 events).
        #[arg(long, default_value_t = 100_000)]
        streams: usize,
        #[arg(long, default_value_t = 2_000)]
        proofs: usize,
    },
    /// Certificate PDFs rendered per second.
    Pdf {
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

#[derive(Debug, Args)]
struct AllArgs {
    /// What to measure.
    #[arg(long, value_enum)]
    suite: suites::Suite,
    #[arg(long, default_value_t = 3_000)]
    appends_1: usize,
    #[arg(long, default_value_t = 20_000)]
    appends_32: usize,
    #[arg(long, default_value_t = 3_000)]
    plain_1: usize,
    #[arg(long, default_value_t = 20_000)]
    plain_batched: usize,
    #[arg(long, default_value_t = 100_000)]
    scan_streams: usize,
    #[arg(long, default_value_t = 10)]
    events_per_append: usize,
    #[arg(long, default_value_t = 1_000)]
    loads: usize,
    /// Runs of each measured workload but the diagnostics; the median run is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Skip the second 32-writer run that counts group commits.
    #[arg(long)]
    no_probe: bool,
    /// projections, postgres: families in the log to rebuild from (five events each).
    #[arg(long, default_value_t = 200_000)]
    families: usize,
    /// projections: runs of the full rebuild (each takes minutes on this machine).
    #[arg(long, default_value_t = 1)]
    rebuild_runs: usize,
    /// projections: families of the smaller log each projection is rebuilt alone from.
    #[arg(long, default_value_t = 20_000)]
    split_families: usize,
    /// postgres: families in the PostgreSQL log (five events each: 1,000,000 events, as issue 17
    /// measures rebuilds).
    #[arg(long, default_value_t = 200_000)]
    pg_families: usize,
    /// postgres: events in the log before the timed appends of the steady-state figures.
    #[arg(long, default_value_t = 100_000)]
    pg_prefilled: usize,
    /// projections: the steady command rates of the lag workload.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    lag_rates: Vec<u64>,
    /// projections: seconds of each lag workload.
    #[arg(long, default_value_t = 20)]
    lag_seconds: u64,
    /// http: certificates whose tokens the verify workloads ask for.
    #[arg(long, default_value_t = 100_000)]
    verify_certificates: usize,
    /// http: certificates in the view for the memory figure.
    #[arg(long, default_value_t = 1_000_000)]
    memory_certificates: usize,
    /// http: seconds of each timed HTTP phase.
    #[arg(long, default_value_t = 20)]
    http_seconds: u64,
    /// http: `wrk` threads and connections.
    #[arg(long, default_value_t = 1)]
    wrk_threads: usize,
    #[arg(long, default_value_t = 64)]
    wrk_connections: usize,
    /// pdf: seconds of each PDF run.
    #[arg(long, default_value_t = 10)]
    pdf_seconds: u64,
    /// Rewrite the suite's own section (`## Event store`, ...) of this Markdown file.
    #[arg(long)]
    write: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // The registry's own log lines (phase timings of a rebuild, for one) when RUST_LOG asks.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let outcome = match cli.command {
        Cmd::All(args) => {
            return suites::run(&args);
        }
        Cmd::Append {
            writers,
            count,
            warmup,
            group_probe,
        } => runtime()?.block_on(workloads::append(writers, count, warmup, group_probe))?,
        Cmd::Plain { batch, count } => runtime()?.block_on(workloads::plain(batch, count))?,
        Cmd::Populate {
            db,
            streams,
            events_per_append,
            writers,
        } => runtime()?.block_on(workloads::populate(
            &db,
            streams,
            events_per_append,
            writers,
        ))?,
        Cmd::Scan { db, page } => runtime()?.block_on(workloads::scan(&db, page))?,
        Cmd::Load { db, events, loads } => {
            runtime()?.block_on(workloads::load(db.as_deref(), events, loads))?
        }
        Cmd::PopulateFamilies {
            store,
            families,
            follow_ups,
            writers,
        } => runtime()?.block_on(projection::populate_families(
            &store, families, follow_ups, writers,
        ))?,
        Cmd::Rebuild {
            store,
            read_server,
            only,
        } => runtime()?.block_on(projection::rebuild(
            &store,
            read_server.as_deref(),
            only.as_deref(),
        ))?,
        Cmd::Lag {
            rate,
            seconds,
            seed,
        } => runtime()?.block_on(projection::lag(rate, seconds, seed))?,
        Cmd::BareHealthz { listen } => {
            runtime()?.block_on(http::bare_healthz(&listen))?;
            return Ok(());
        }
        Cmd::HttpPopulate {
            dir,
            families,
            writers,
        } => runtime()?.block_on(http::populate(&dir, families, writers))?,
        Cmd::Http {
            dir,
            registry,
            threads,
            connections,
            grant_connections,
            seconds,
            mixed_seconds,
            memory_grant_connections,
            phases,
        } => http::serve_bench(&http::HttpArgs {
            dir,
            registry,
            threads,
            connections,
            grant_connections,
            seconds,
            mixed_seconds,
            memory_grant_connections,
            phases,
        })?,
        Cmd::PgAppend {
            server,
            writers,
            count,
            warmup,
            prefilled,
        } => runtime()?.block_on(pg::append(&server, writers, count, warmup, prefilled))?,
        Cmd::PgPlain {
            server,
            mode,
            batch,
            connections,
            count,
        } => runtime()?.block_on(pg::plain(&server, mode, batch, connections, count))?,
        Cmd::Pdf { threads, seconds } => pdf::pdf(threads, seconds)?,
        Cmd::Tlog {
            writers,
            count,
            rounds,
            streams,
            proofs,
        } => runtime()?.block_on(tlog::tlog(writers, count, rounds, streams, proofs))?,
        Cmd::Sealing { families, rounds } => {
            runtime()?.block_on(sealing::sealing(families, rounds))?
        }
    };
    if std::env::var_os(CHILD_ENV).is_some() {
        println!("{RESULT_PREFIX}{}", serde_json::to_string(&outcome)?);
    } else {
        print!("{}", report::table(&outcome.figures));
        for note in &outcome.notes {
            println!("\n{note}");
        }
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}
