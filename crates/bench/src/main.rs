//! `registry-bench`: the figures of BENCHMARKS.md, one section per issue. Run in release mode:
//!
//! ```text
//! cargo run --release -p registry-bench -- all --issue 2 --write BENCHMARKS.md
//! ```
//!
//! Issue 2: the core event store on SQLite files in a temporary directory. Issue 3: the
//! projections (rebuild, lag). Issue 4: the HTTP server (`registry serve` driven by `wrk`). Issue
//! 5: PostgreSQL (a throwaway cluster). Issue 6: the certificate PDF.
//!
//! Each workload is also a subcommand of its own; `all` runs every one as a child process (so each
//! gets a fresh process, a fresh file, and its own peak-memory figure) and prints one Markdown
//! section, which `--write` puts into BENCHMARKS.md.

mod families;
mod http;
mod payload;
mod pdf;
mod pg;
mod projection;
mod report;
mod suites;
mod workloads;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use report::{CpuSample, Figure, Load, Machine, Outcome};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// mimalloc instead of the system allocator: projections and the JSON API allocate many small
/// strings, and glibc's malloc spent a fifth of a rebuild's time on them (docs/adr/0010).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Set for child processes of `all`: print the outcome as one JSON line instead of a table.
const CHILD_ENV: &str = "REGISTRY_BENCH_CHILD";
const RESULT_PREFIX: &str = "RESULT\t";

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
    /// Every workload of one issue, each in a child process; prints the Markdown section.
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
    /// Diagnostic: the round trip of `SELECT 1` through sqlx.
    Roundtrip {
        #[arg(long, default_value_t = 5_000)]
        count: usize,
    },
    /// Diagnostic: the `read_all` query through sqlx directly, with a chosen row buffer.
    ScanRaw {
        #[arg(long)]
        db: PathBuf,
        #[arg(long, default_value_t = 1_000)]
        page: usize,
        #[arg(long, default_value_t = 50)]
        row_buffer: usize,
    },
    /// Issue 3/5: fills an event store with realistic families (grants, then rounds of added
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
    /// Issue 3/5: rebuilds the projections from the whole log into a fresh read store, between two
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
    /// Issue 3: lag from an acknowledged append to the certificate view under a steady load.
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
    /// Issue 4: a data directory for `registry serve` with granted families, and a file of
    /// their verify paths.
    HttpPopulate {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 100_000)]
        families: usize,
        #[arg(long, default_value_t = 32)]
        writers: usize,
    },
    /// Issue 4: starts `registry serve` on a populated data directory and drives it with `wrk`.
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
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "cold,warm,healthz,grants"
        )]
        phases: Vec<http::Phase>,
    },
    /// Issue 5: durable appends to the PostgreSQL event store in a fresh database.
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
    /// Issue 5: the same payload rows into a plain PostgreSQL table: `INSERT`s or `COPY`.
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
    /// Issue 6: certificate PDFs rendered per second.
    Pdf {
        #[arg(long, default_value_t = 1)]
        threads: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

#[derive(Debug, Args)]
struct AllArgs {
    /// Which issue's figures to measure: 2 (core event store), 3 (projections), 4 (HTTP), 5
    /// (PostgreSQL) or 6 (PDF).
    #[arg(long, default_value_t = 2)]
    issue: u8,
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
    /// Issues 3 and 5: families in the log to rebuild from (five events each).
    #[arg(long, default_value_t = 200_000)]
    families: usize,
    /// Issue 3: runs of the full rebuild (each takes minutes on this machine).
    #[arg(long, default_value_t = 1)]
    rebuild_runs: usize,
    /// Issue 3: families of the smaller log each projection is rebuilt alone from.
    #[arg(long, default_value_t = 20_000)]
    split_families: usize,
    /// Issue 5: families in the PostgreSQL log (five events each).
    #[arg(long, default_value_t = 100_000)]
    pg_families: usize,
    /// Issue 5: events in the log before the timed appends of the steady-state figures.
    #[arg(long, default_value_t = 100_000)]
    pg_prefilled: usize,
    /// Issue 3: the steady command rates of the lag workload.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    lag_rates: Vec<u64>,
    /// Issue 3: seconds of each lag workload.
    #[arg(long, default_value_t = 20)]
    lag_seconds: u64,
    /// Issue 4: certificates whose tokens the verify workloads ask for.
    #[arg(long, default_value_t = 100_000)]
    verify_certificates: usize,
    /// Issue 4: certificates in the view for the memory figure.
    #[arg(long, default_value_t = 1_000_000)]
    memory_certificates: usize,
    /// Issue 4: seconds of each timed HTTP phase.
    #[arg(long, default_value_t = 20)]
    http_seconds: u64,
    /// Issue 4: `wrk` threads and connections.
    #[arg(long, default_value_t = 1)]
    wrk_threads: usize,
    #[arg(long, default_value_t = 64)]
    wrk_connections: usize,
    /// Issue 6: seconds of each PDF run.
    #[arg(long, default_value_t = 10)]
    pdf_seconds: u64,
    /// Rewrite the issue's own section (`## ... (issue N)`) of this Markdown file.
    #[arg(long)]
    write: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Cmd::All(args) => {
            return match args.issue {
                2 => all(&args),
                3 => suites::issue3(&args),
                4 => suites::issue4(&args),
                5 => suites::issue5(&args),
                6 => suites::issue6(&args),
                n => bail!("no benchmarks for issue {n}: use 2, 3, 4, 5 or 6"),
            }
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
        Cmd::Roundtrip { count } => runtime()?.block_on(workloads::roundtrip(count))?,
        Cmd::ScanRaw {
            db,
            page,
            row_buffer,
        } => runtime()?.block_on(workloads::scan_raw(&db, page, row_buffer))?,
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
            phases,
        } => http::serve_bench(&http::HttpArgs {
            dir,
            registry,
            threads,
            connections,
            grant_connections,
            seconds,
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

/// Runs this binary with `args` as a child process; returns its outcome and the machine's other
/// load meanwhile.
fn child(args: &[String]) -> Result<(Outcome, Load)> {
    eprintln!("== registry-bench {}", args.join(" "));
    let exe = std::env::current_exe().context("locating registry-bench")?;
    let before = CpuSample::now();
    let output = Command::new(exe)
        .args(args)
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running registry-bench {}", args.join(" ")))?;
    let load = CpuSample::now().load_since(&before);
    if !output.status.success() {
        bail!(
            "registry-bench {} failed: {}",
            args.join(" "),
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(RESULT_PREFIX))
        .with_context(|| format!("no result from registry-bench {}", args.join(" ")))?;
    let outcome: Outcome = serde_json::from_str(line).context("reading a child's result")?;
    for f in &outcome.figures {
        eprintln!("   {}: {}", f.figure, f.value);
    }
    eprintln!(
        "   (CPU stolen {:.0}%, other processes {:.2} cores)",
        load.steal * 100.0,
        load.other_cores
    );
    Ok((outcome, load))
}

/// The runs of one workload, and what else used the machine meanwhile.
#[derive(Debug, Default)]
struct Runs {
    loads: Vec<(String, Load)>,
}

impl Runs {
    /// Runs `args` `times` times and keeps the run whose first figure is the median; its value
    /// lists every run's figure.
    fn run(&mut self, list: &[&str], times: usize) -> Result<Outcome> {
        let args: Vec<String> = list.iter().map(|s| (*s).to_string()).collect();
        let mut runs = Vec::new();
        for _ in 0..times.max(1) {
            let (outcome, load) = child(&args)?;
            self.loads.push((list.join(" "), load));
            runs.push(outcome);
        }
        let first = |o: &Outcome| o.figures.first().map_or(0.0, |f| f.raw);
        let all: Vec<String> = runs
            .iter()
            .map(|o| match first(o) {
                v if v >= 100.0 => report::thousands(v),
                v => format!("{v:.3}"),
            })
            .collect();
        runs.sort_by(|a, b| first(a).total_cmp(&first(b)));
        let mut median = runs.swap_remove(runs.len() / 2);
        if all.len() > 1 {
            if let Some(f) = median.figures.first_mut() {
                f.value = format!(
                    "{} — median of {} runs (each: {})",
                    f.value,
                    all.len(),
                    all.join(" / ")
                );
            }
        }
        Ok(median)
    }
}

fn all(a: &AllArgs) -> Result<()> {
    let machine = Machine::now();
    let started = chrono::Utc::now();
    let cpu_start = CpuSample::now();
    let scratch = workloads::scratch_dir()?;
    let fs = report::filesystem_of(scratch.path());
    let db = scratch.path().join("scan.db");
    let db = db.to_str().context("temporary path is not UTF-8")?;
    let (n1, n32) = (a.appends_1.to_string(), a.appends_32.to_string());
    let (p1, pb) = (a.plain_1.to_string(), a.plain_batched.to_string());
    let (streams, per_append) = (a.scan_streams.to_string(), a.events_per_append.to_string());
    let loads = a.loads.to_string();
    let r = a.repeat;

    // The file for the scan first: populating takes minutes and is not measured, so the measured
    // workloads then follow one another closely.
    let mut runs = Runs::default();
    let populate = runs.run(
        &[
            "populate",
            "--db",
            db,
            "--streams",
            &streams,
            "--events-per-append",
            &per_append,
            "--writers",
            "32",
        ],
        1,
    )?;
    let append_1 = runs.run(&["append", "--writers", "1", "--count", &n1], r)?;
    let plain_1 = runs.run(&["plain", "--batch", "1", "--count", &p1], r)?;
    let append_32 = runs.run(&["append", "--writers", "32", "--count", &n32], r)?;
    let plain_32 = runs.run(&["plain", "--batch", "32", "--count", &pb], r)?;
    let probe = if a.no_probe {
        None
    } else {
        let list = [
            "append",
            "--writers",
            "32",
            "--count",
            &n32,
            "--group-probe",
        ];
        Some(runs.run(&list, 1)?)
    };
    let roundtrip = runs.run(&["roundtrip"], 1)?;
    let scan = runs.run(&["scan", "--db", db], r)?;
    let scan_raw_50 = runs.run(&["scan-raw", "--db", db, "--row-buffer", "50"], 1)?;
    let scan_raw_1000 = runs.run(&["scan-raw", "--db", db, "--row-buffer", "1000"], 1)?;
    let load = runs.run(&["load", "--db", db, "--loads", &loads], r)?;
    let finished = chrono::Utc::now();
    let whole = CpuSample::now().load_since(&cpu_start);

    let mut figures: Vec<Figure> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let ordered = [
        Some(&append_1),
        Some(&append_32),
        probe.as_ref(),
        Some(&plain_1),
        Some(&plain_32),
        Some(&scan),
        Some(&load),
        Some(&populate),
        Some(&roundtrip),
        Some(&scan_raw_50),
        Some(&scan_raw_1000),
    ];
    for o in ordered.into_iter().flatten() {
        figures.extend(o.figures.iter().cloned());
        for n in &o.notes {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
    }
    notes.extend(comparisons(
        &append_1,
        &append_32,
        &plain_1,
        &plain_32,
        probe.as_ref(),
    ));
    notes.push(load_note(&runs.loads, whole));

    let mut section = format!(
        "{}\n\nMeasured {} by `cargo run --release -p registry-bench -- all{}` ({} s). `all` ran \
         each command of the table as a child process (a fresh process, and a fresh SQLite file \
         in a temporary directory on {fs}, except where `--db` names the file made by \
         `populate`); WAL with `synchronous=FULL` throughout.\n\n\
         Code measured: {}.\n\n\
         Machine: `nproc` {}, CPU {}, Linux {}. Load average (1/5/15 min) {} at the start, {} at \
         the end.\n\n",
        report::SECTION,
        started.format("%Y-%m-%d %H:%M UTC"),
        std::env::args()
            .skip(2)
            .map(|a| format!(" {a}"))
            .collect::<String>(),
        (finished - started).num_seconds(),
        code_version(),
        machine.nproc,
        machine.cpu,
        machine.kernel,
        machine.loadavg,
        report::loadavg(),
    );
    section.push_str(&report::table(&figures));
    section.push('\n');
    for n in &notes {
        section.push_str(&format!("- {n}\n"));
    }
    println!("{section}");
    if let Some(path) = &a.write {
        report::update_file(path, &section)?;
        eprintln!("wrote the section to {}", display(path));
    }
    Ok(())
}

/// What else used the machine, per workload (worst of its runs) and over the whole run.
fn load_note(loads: &[(String, Load)], whole: Load) -> String {
    let mut worst: Vec<(String, Load)> = Vec::new();
    for (what, l) in loads {
        let name = workload_name(what);
        let name = name.as_str();
        match worst.iter_mut().find(|(w, _)| *w == name) {
            Some((_, w)) => {
                w.steal = w.steal.max(l.steal);
                w.other_cores = w.other_cores.max(l.other_cores);
            }
            None => worst.push((name.to_string(), *l)),
        }
    }
    let each: Vec<String> = worst
        .iter()
        .map(|(what, l)| format!("`{what}` {:.0}% / {:.2}", l.steal * 100.0, l.other_cores))
        .collect();
    let verdict = if whole.is_significant() || worst.iter().any(|(_, l)| l.is_significant()) {
        "**The machine was not quiet: figures may be depressed by concurrent load** (another \
         guest of the host, or another build on this machine)."
    } else {
        "The machine was quiet during the run."
    };
    format!(
        "{verdict} CPU stolen by the hypervisor / cores kept busy by other processes (from \
         /proc/stat, this run's own CPU time excluded): {:.0}% / {:.2} over the whole run; the \
         worst run of each workload: {}.",
        whole.steal * 100.0,
        whole.other_cores,
        each.join("; ")
    )
}

/// A workload's command line without the arguments that name files, directories or servers.
fn workload_name(what: &str) -> String {
    const PLACES: [&str; 6] = [
        "--db",
        "--store",
        "--dir",
        "--server",
        "--read-server",
        "--registry",
    ];
    let mut out: Vec<&str> = Vec::new();
    let mut skip = false;
    for word in what.split(' ') {
        if skip {
            skip = false;
        } else if PLACES.contains(&word) {
            skip = true;
        } else {
            out.push(word);
        }
    }
    out.join(" ")
}

/// The commit measured, and whether the crates on the measured path had uncommitted changes.
fn code_version() -> String {
    code_version_of(&[
        "crates/store",
        "crates/store-sqlite",
        "crates/app",
        "crates/domain",
    ])
}

/// The commit measured, and which of `paths` had uncommitted changes.
fn code_version_of(paths: &[&str]) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (not a git checkout)".into();
    };
    let mut args = vec!["status", "--porcelain", "--"];
    args.extend(paths);
    match git(&args) {
        Some(s) if s.is_empty() => format!("commit `{head}`"),
        Some(s) => format!(
            "commit `{head}` with uncommitted changes in {}",
            paths
                .iter()
                .filter(|p| s.contains(&format!("{p}/")))
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!("commit `{head}`"),
    }
}

fn display(path: &Path) -> String {
    path.canonicalize()
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Notes that compare figures across workloads.
fn comparisons(
    append_1: &Outcome,
    append_32: &Outcome,
    plain_1: &Outcome,
    plain_32: &Outcome,
    probe: Option<&Outcome>,
) -> Vec<String> {
    let mut notes = Vec::new();
    let get = |o: &Outcome| o.figures.first().map_or(0.0, |f| f.raw);
    let (a1, a32, p1, p32) = (get(append_1), get(append_32), get(plain_1), get(plain_32));
    if p1 > 0.0 {
        notes.push(format!(
            "Against the one-fsync-per-command baseline ({} rows/s, i.e. {:.3} ms per durable \
             commit): 1 writer reaches {:.2}×, 32 writers {:.2}×; plain inserts batched 32 per \
             transaction reach {:.1}× ({} rows/s).",
            report::thousands(p1),
            1e3 / p1,
            a1 / p1,
            a32 / p1,
            p32 / p1,
            report::thousands(p32),
        ));
    }
    if a32 < 5000.0 {
        notes.push(format!(
            "**The 32-writer figure ({} commands/s) is below 5,000 commands/s.**",
            report::thousands(a32)
        ));
    }
    if let Some(group) = probe.and_then(|p| p.figures.first()).map(|f| f.raw) {
        if group > 0.0 {
            notes.push(format!(
                "Group commit at 32 writers: at most {group:.1} appends per transaction on \
                 average (the probe counts head advances; two commits between two looks count \
                 as one)."
            ));
        }
    }
    let rtt_us = append_32.metric("select_one_us").unwrap_or(0.0);
    if a32 > 0.0 && p1 > 0.0 {
        let per_append_us = 1e6 / a32;
        let group = probe
            .and_then(|p| p.figures.first())
            .map_or(1.0, |f| f.raw.max(1.0));
        let fsync_share_us = 1e6 / p1 / group;
        notes.push(format!(
            "Where the 32-writer time goes: 32 writers keep the one writer's queue full almost \
             always, so each append costs it at most 1/rate = {per_append_us:.0} µs. A durable \
             commit (≈ {:.0} µs, the plain autocommit figure) is shared by a group of ≤ \
             {group:.0}, so at least ≈ {fsync_share_us:.0} µs of that is the fsync's share; the \
             rest, ≈ {:.0} µs, is the writer's own work (its statements and the hand-offs \
             between threads). A sqlx `SELECT 1` round trip measured just after took \
             {rtt_us:.0} µs (a gauge of how slowly threads wake up on this VM at that moment).",
            1e6 / p1,
            per_append_us - fsync_share_us,
        ));
    }
    notes
}
