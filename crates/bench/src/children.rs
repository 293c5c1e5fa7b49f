//! Each workload of a suite runs as a child process of `all` (a fresh process, file and
//! peak-memory figure); this is the parent's side: run, collect the outcome, note the machine's
//! other load meanwhile.

use crate::report::{self, CpuSample, Load, Outcome};
use crate::{CHILD_ENV, RESULT_PREFIX};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs this binary with `args` as a child process; returns its outcome and the machine's other
/// load meanwhile.
pub fn child(args: &[String]) -> Result<(Outcome, Load)> {
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
pub struct Runs {
    pub loads: Vec<(String, Load)>,
}

impl Runs {
    /// Runs `args` `times` times and keeps the run whose first figure is the median; its value
    /// lists every run's figure.
    pub fn run(&mut self, list: &[&str], times: usize) -> Result<Outcome> {
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

/// What else used the machine, per workload (worst of its runs) and over the whole run.
pub fn load_note(loads: &[(String, Load)], whole: Load) -> String {
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

/// The commit measured, and which of `paths` had uncommitted changes.
pub fn code_version_of(paths: &[&str]) -> String {
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

pub fn display(path: &Path) -> String {
    path.canonicalize()
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}
