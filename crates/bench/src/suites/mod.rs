//! `registry-bench all --suite NAME`: one subject's workloads as child processes, printed as its
//! section of BENCHMARKS.md (and written there with `--write`). The subjects: the event store,
//! the projections, the HTTP server, PostgreSQL and the certificate PDF.

mod event_store;
mod http;
mod pdf;
mod postgres;
mod projections;

use crate::children::{code_version_of, display, load_note, Runs};
use crate::report::{self, CpuSample, Figure, Machine, Outcome};
use crate::AllArgs;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::path::Path;
use std::process::{Command, Stdio};

/// What a suite measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// The embedded event store: appends, plain SQLite, `read_all` scan, load.
    EventStore,
    /// Projections: rebuild beside the raw scan, lag under a steady write load.
    Projections,
    /// The HTTP server: verifies (cold, warm) beside `/healthz`, grants, memory.
    Http,
    /// PostgreSQL: appends and rebuild beside raw `INSERT` and `COPY`.
    Postgres,
    /// The certificate PDF.
    Pdf,
}

impl Suite {
    /// The heading of the suite's section in BENCHMARKS.md.
    pub fn heading(self) -> &'static str {
        match self {
            Suite::EventStore => "## Event store",
            Suite::Projections => "## Projections",
            Suite::Http => "## HTTP server",
            Suite::Postgres => "## PostgreSQL",
            Suite::Pdf => "## Certificate PDF",
        }
    }
}

/// Runs the suite `a.suite` names.
pub fn run(a: &AllArgs) -> Result<()> {
    match a.suite {
        Suite::EventStore => event_store::run(a),
        Suite::Projections => projections::run(a),
        Suite::Http => http::run(a),
        Suite::Postgres => postgres::run(a),
        Suite::Pdf => pdf::run(a),
    }
}

/// What a section needs besides its figures: when and where it ran.
pub(crate) struct Section {
    suite: Suite,
    started: DateTime<Utc>,
    machine: Machine,
    cpu_start: CpuSample,
    /// The crates whose code the figures measure (for the uncommitted-changes check).
    paths: &'static [&'static str],
}

impl Section {
    pub(crate) fn begin(suite: Suite, paths: &'static [&'static str]) -> Self {
        Self {
            suite,
            started: Utc::now(),
            machine: Machine::now(),
            cpu_start: CpuSample::now(),
            paths,
        }
    }

    /// Prints the section (and writes it into the file of `--write`).
    pub(crate) fn finish(
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
        let heading = self.suite.heading();
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

pub(crate) fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("temporary path is not UTF-8")
}

/// The figure named by the first figure of `o`, as a number.
pub(crate) fn first(o: &Outcome) -> f64 {
    o.figures.first().map_or(0.0, |f| f.raw)
}

/// Builds the `registry` binary in release mode (a no-op when it is up to date).
pub(crate) fn build_registry() -> Result<()> {
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
