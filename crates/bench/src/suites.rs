//! `all --issue N` for issues 3 to 6: each issue's commands as child processes, and its section
//! of BENCHMARKS.md. (Issue 2's runner is `all` in main.rs.)

use crate::report::{self, CpuSample, Figure, Machine, Outcome};
use crate::{code_version_of, display, load_note, runtime, AllArgs, Runs};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::path::Path;
use std::process::{Command, Stdio};

/// What a section needs besides its figures: when and where it ran.
struct Section {
    issue: u8,
    started: DateTime<Utc>,
    machine: Machine,
    cpu_start: CpuSample,
    /// The crates whose code the figures measure (for the uncommitted-changes check).
    paths: &'static [&'static str],
}

impl Section {
    fn begin(issue: u8, paths: &'static [&'static str]) -> Self {
        Self {
            issue,
            started: Utc::now(),
            machine: Machine::now(),
            cpu_start: CpuSample::now(),
            paths,
        }
    }

    /// Prints the section (and writes it into the file of `--write`).
    fn finish(
        self,
        how: &str,
        extra_machine: &str,
        outcomes: &[&Outcome],
        mut notes: Vec<String>,
        runs: &Runs,
        write: Option<&Path>,
    ) -> Result<()> {
        let whole = CpuSample::now().load_since(&self.cpu_start);
        let finished = Utc::now();
        let heading = report::heading(self.issue).context("no such issue")?;
        let mut figures: Vec<Figure> = Vec::new();
        let mut all_notes: Vec<String> = Vec::new();
        for o in outcomes {
            figures.extend(o.figures.iter().cloned());
            for n in &o.notes {
                if !all_notes.contains(n) {
                    all_notes.push(n.clone());
                }
            }
        }
        all_notes.append(&mut notes);
        all_notes.push(load_note(&runs.loads, whole));
        let mut section = format!(
            "{heading}\n\nMeasured {} by `cargo run --release -p registry-bench -- all{}` ({} s). \
             {how}\n\n\
             Code measured: {}.\n\n\
             Machine: `nproc` {}, CPU {}, Linux {}{extra_machine}. Load average (1/5/15 min) {} \
             at the start, {} at the end.\n\n",
            self.started.format("%Y-%m-%d %H:%M UTC"),
            std::env::args()
                .skip(2)
                .map(|a| format!(" {a}"))
                .collect::<String>(),
            (finished - self.started).num_seconds(),
            code_version_of(self.paths),
            self.machine.nproc,
            self.machine.cpu,
            self.machine.kernel,
            self.machine.loadavg,
            report::loadavg(),
        );
        section.push_str(&report::table(&figures));
        section.push('\n');
        for n in &all_notes {
            section.push_str(&format!("- {n}\n"));
        }
        println!("{section}");
        if let Some(path) = write {
            report::update_section(path, heading, &section)?;
            eprintln!("wrote the section to {}", display(path));
        }
        Ok(())
    }
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("temporary path is not UTF-8")
}

/// The figure named by the first figure of `o`, as a number.
fn first(o: &Outcome) -> f64 {
    o.figures.first().map_or(0.0, |f| f.raw)
}

/// Issue 3: rebuild of both projections from a million events beside the raw scan; lag under a
/// steady write load.
pub fn issue3(a: &AllArgs) -> Result<()> {
    let section = Section::begin(
        3,
        &[
            "projections",
            "crates/store",
            "crates/store-sqlite",
            "crates/sqlite-pool",
            "crates/app",
            "crates/domain",
        ],
    );
    let scratch = crate::workloads::scratch_dir()?;
    let fs = report::filesystem_of(scratch.path());
    let db = scratch.path().join("events.db");
    let db = path_str(&db)?;
    let families = a.families.to_string();
    let mut runs = Runs::default();
    let populate = runs.run(
        &[
            "populate-families",
            "--store",
            db,
            "--families",
            &families,
            "--follow-ups",
            "4",
            "--writers",
            "32",
        ],
        1,
    )?;
    let rebuild = runs.run(&["rebuild", "--store", db], a.rebuild_runs)?;
    // Each projection alone, from a smaller log of the same kind (a full rebuild takes minutes).
    let small = scratch.path().join("small.db");
    let small = path_str(&small)?;
    let split_families = a.split_families.to_string();
    let populate_small = runs.run(
        &[
            "populate-families",
            "--store",
            small,
            "--families",
            &split_families,
            "--follow-ups",
            "4",
            "--writers",
            "32",
        ],
        1,
    )?;
    let both_small = runs.run(&["rebuild", "--store", small], 1)?;
    let view = runs.run(
        &["rebuild", "--store", small, "--only", "certificate_view"],
        1,
    )?;
    let history = runs.run(
        &["rebuild", "--store", small, "--only", "family_history"],
        1,
    )?;
    let seconds = a.lag_seconds.to_string();
    let mut lags = Vec::new();
    for rate in &a.lag_rates {
        let rate = rate.to_string();
        lags.push(runs.run(&["lag", "--rate", &rate, "--seconds", &seconds], 1)?);
    }

    let mut notes = Vec::new();
    let r = first(&rebuild);
    let (b, v, h) = (first(&both_small), first(&view), first(&history));
    if r > 0.0 && b > 0.0 && v > 0.0 && h > 0.0 {
        notes.push(format!(
            "Per event: the full rebuild of both took {:.1} µs; on the smaller log of {} \
             families, both {:.1} µs, `certificate_view` alone {:.1} µs and `family_history` \
             alone {:.1} µs (each alone also reads the log).",
            1e6 / r,
            report::thousands(a.split_families as f64),
            1e6 / b,
            1e6 / v,
            1e6 / h
        ));
    }
    if r < 50_000.0 {
        notes.push(format!(
            "**The rebuild rate ({} events/s) is below the target of 50,000 events/s.** See the \
             notes by hand below for where the time goes.",
            report::thousands(r)
        ));
    }
    let mut outcomes: Vec<&Outcome> = vec![&rebuild];
    outcomes.extend(lags.iter());
    outcomes.extend([&both_small, &view, &history, &populate, &populate_small]);
    section.finish(
        &format!(
            "`all` ran each command of the table as a child process: `populate-families` wrote \
             one SQLite event store (WAL, `synchronous=FULL`, in a temporary directory on {fs}); \
             each `rebuild` read it into a fresh SQLite read store (`synchronous=NORMAL`) next \
             to it; each `lag` made its own stores."
        ),
        "",
        &outcomes,
        notes,
        &runs,
        a.write.as_deref(),
    )
}

/// Builds the `registry` binary in release mode (a no-op when it is up to date).
fn build_registry() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    eprintln!("== cargo build --release -p registry-cli --bin registry");
    let status = Command::new("cargo")
        .args([
            "build",
            "--release",
            "-p",
            "registry-cli",
            "--bin",
            "registry",
        ])
        .current_dir(root)
        .stdin(Stdio::null())
        .status()
        .context("running cargo build")?;
    anyhow::ensure!(status.success(), "building the registry binary failed");
    Ok(())
}

/// Issue 4: the HTTP server.
pub fn issue4(a: &AllArgs) -> Result<()> {
    build_registry()?;
    let section = Section::begin(
        4,
        &[
            "crates/http",
            "crates/cli",
            "crates/credential",
            "projections",
            "crates/sqlite-pool",
            "crates/store-sqlite",
            "crates/app",
            "crates/domain",
        ],
    );
    let scratch = crate::workloads::scratch_dir()?;
    let fs = report::filesystem_of(scratch.path());
    let (d1, d2) = (scratch.path().join("verify"), scratch.path().join("memory"));
    let (d1, d2) = (path_str(&d1)?, path_str(&d2)?);
    let (n1, n2) = (
        a.verify_certificates.to_string(),
        a.memory_certificates.to_string(),
    );
    let seconds = a.http_seconds.to_string();
    let (threads, connections) = (a.wrk_threads.to_string(), a.wrk_connections.to_string());
    let mut runs = Runs::default();
    let populate_1 = runs.run(&["http-populate", "--dir", d1, "--families", &n1], 1)?;
    let serve = runs.run(
        &[
            "http",
            "--dir",
            d1,
            "--threads",
            &threads,
            "--connections",
            &connections,
            "--seconds",
            &seconds,
            "--phases",
            "cold,warm,healthz,grants",
        ],
        1,
    )?;
    let populate_2 = runs.run(&["http-populate", "--dir", d2, "--families", &n2], 1)?;
    let memory = runs.run(
        &[
            "http",
            "--dir",
            d2,
            "--threads",
            &threads,
            "--connections",
            &connections,
            "--seconds",
            &seconds,
            "--phases",
            "memory",
        ],
        1,
    )?;
    let mut notes = Vec::new();
    let verify = serve
        .figures
        .iter()
        .filter(|f| f.met.is_some())
        .collect::<Vec<_>>();
    if verify.iter().any(|f| f.met == Some(false)) {
        notes.push(
            "**A verify figure misses its target (≥ 10,000 verifies/s with p99 < 20 ms).** See \
             the notes by hand below for where the time goes."
                .to_string(),
        );
    }
    section.finish(
        &format!(
            "`all` built the `registry` binary (`cargo build --release -p registry-cli`), then \
             ran each command of the table as a child process: `http-populate` granted the \
             families straight into a fresh data directory (temporary, on {fs}) and signed their \
             QR tokens offline with the directory's keys; `http` started `registry serve` on it \
             and drove it with `wrk`."
        ),
        "",
        &[&serve, &memory, &populate_1, &populate_2],
        notes,
        &runs,
        a.write.as_deref(),
    )
}

/// Issue 5: PostgreSQL, on a throwaway cluster with default settings.
pub fn issue5(a: &AllArgs) -> Result<()> {
    let section = Section::begin(
        5,
        &[
            "crates/store-postgres",
            "crates/store",
            "projections",
            "crates/app",
            "crates/domain",
        ],
    );
    let mut cluster = crate::pg::Cluster::start()?;
    report::count_as_own(cluster.postmaster);
    let server = cluster.url.clone();
    let rt = runtime()?;
    let settings = rt.block_on(crate::pg::settings(&server))?;
    let events_url = rt.block_on(crate::pg::create_database(&server, "bench_events"))?;
    let families = a.pg_families.to_string();
    let prefilled = a.pg_prefilled.to_string();
    let r = a.repeat;
    let mut runs = Runs::default();
    let s = server.as_str();
    let result = (|| -> Result<Vec<Outcome>> {
        let plain_1 = runs.run(
            &[
                "pg-plain", "--server", s, "--mode", "insert", "--batch", "1", "--count", "3000",
            ],
            r,
        )?;
        let plain_32c = runs.run(
            &[
                "pg-plain",
                "--server",
                s,
                "--mode",
                "insert",
                "--batch",
                "1",
                "--connections",
                "32",
                "--count",
                "20000",
            ],
            r,
        )?;
        let plain_b = runs.run(
            &[
                "pg-plain", "--server", s, "--mode", "insert", "--batch", "32", "--count", "20000",
            ],
            r,
        )?;
        let unnest = runs.run(
            &[
                "pg-plain", "--server", s, "--mode", "unnest", "--batch", "1000", "--count",
                "200000",
            ],
            1,
        )?;
        let copy = runs.run(
            &[
                "pg-plain", "--server", s, "--mode", "copy", "--count", "200000",
            ],
            r,
        )?;
        let append_32 = runs.run(
            &[
                "pg-append",
                "--server",
                s,
                "--writers",
                "32",
                "--count",
                "20000",
                "--prefilled",
                &prefilled,
            ],
            r,
        )?;
        let append_1 = runs.run(
            &[
                "pg-append",
                "--server",
                s,
                "--writers",
                "1",
                "--count",
                "3000",
                "--prefilled",
                &prefilled,
            ],
            1,
        )?;
        let append_fresh = runs.run(
            &[
                "pg-append",
                "--server",
                s,
                "--writers",
                "32",
                "--count",
                "20000",
            ],
            r,
        )?;
        let populate = runs.run(
            &[
                "populate-families",
                "--store",
                &events_url,
                "--families",
                &families,
                "--follow-ups",
                "4",
                "--writers",
                "32",
            ],
            1,
        )?;
        let rebuild = runs.run(
            &["rebuild", "--store", &events_url, "--read-server", s],
            r.min(2),
        )?;
        Ok(vec![
            append_32,
            append_1,
            append_fresh,
            plain_1,
            plain_32c,
            plain_b,
            unnest,
            copy,
            rebuild,
            populate,
        ])
    })();
    // The last look at the machine before the cluster goes.
    let outcomes = match result {
        Ok(o) => o,
        Err(e) => {
            report::forget_own(cluster.postmaster);
            let _ = cluster.stop();
            return Err(e);
        }
    };
    let mut notes = Vec::new();
    let get = |i: usize| outcomes.get(i).map_or(0.0, first);
    let (a32, p1, p32c, pb, copy) = (get(0), get(3), get(4), get(5), get(7));
    if p1 > 0.0 {
        notes.push(format!(
            "Against one durable commit per row from one connection ({} rows/s, {:.3} ms per \
             commit): the event store with 32 writers reaches {:.1}×; 32 connections committing \
             one row each reach {:.1}× ({} rows/s: PostgreSQL's WAL flush serves several \
             backends' commits at once); 32 rows per transaction reach {:.1}×; `COPY` reaches \
             {:.0}×.",
            report::thousands(p1),
            1e3 / p1,
            a32 / p1,
            p32c / p1,
            report::thousands(p32c),
            pb / p1,
            copy / p1,
        ));
    }
    let rebuild_rate = get(8);
    if rebuild_rate < 50_000.0 {
        notes.push(format!(
            "**The PostgreSQL rebuild rate ({} events/s) is below the 50,000 events/s asked of \
             rebuilds (issue 3).** See the notes by hand below.",
            report::thousands(rebuild_rate)
        ));
    }
    let settings_text = settings
        .iter()
        .map(|(k, v)| format!("`{k}={v}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let refs: Vec<&Outcome> = outcomes.iter().collect();
    let version = cluster.version.clone();
    // Sample the load before stopping the cluster, whose CPU counts as this run's own.
    let finish = section.finish(
        &format!(
            "`all` started a throwaway cluster ({version}: `initdb --auth=trust`, then \
             `pg_ctl start` as the `postgres` user, data in a temporary directory on the same \
             disk, listening on 127.0.0.1) with the default settings — {settings_text} — and \
             stopped it at the end. Each command of the table ran as a child process against \
             it; `pg-plain` and `pg-append` each made a fresh database; `populate-families` \
             filled one event-store database and each `rebuild` read it into a fresh read-store \
             database. The cluster's CPU time counts as this run's own in the load figures."
        ),
        "",
        &refs,
        notes,
        &runs,
        a.write.as_deref(),
    );
    report::forget_own(cluster.postmaster);
    cluster.stop()?;
    finish
}

/// Issue 6: the certificate PDF.
pub fn issue6(a: &AllArgs) -> Result<()> {
    let section = Section::begin(6, &["crates/credential", "crates/http"]);
    let seconds = a.pdf_seconds.to_string();
    let mut runs = Runs::default();
    let one = runs.run(&["pdf", "--threads", "1", "--seconds", &seconds], a.repeat)?;
    let two = runs.run(&["pdf", "--threads", "2", "--seconds", &seconds], a.repeat)?;
    let mut notes = Vec::new();
    let (r1, r2) = (first(&one), first(&two));
    if r1 > 0.0 {
        notes.push(format!(
            "2 threads render {:.2}× as many PDFs as 1 thread; one render costs {:.2} ms of CPU.",
            r2 / r1,
            1e3 / r1
        ));
    }
    section.finish(
        "`all` ran each command of the table as a child process; each renders the same \
         document in a loop for the given time after one warm-up render (which also parses the \
         embedded fonts once).",
        "",
        &[&one, &two],
        notes,
        &runs,
        a.write.as_deref(),
    )
}
