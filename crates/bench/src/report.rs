//! Figures, machine facts, the Markdown section and its place in BENCHMARKS.md.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

pub const HEADER: &str = "# Benchmarks

Figures come from `cargo run --release -p registry-bench -- ...` on the project's 2-core machine
(the same kind as every developer's and CI's). Each figure lists the exact command that produced
it. `registry-bench all --suite NAME` runs the figures of one subject, each command as a child
process, and `--write BENCHMARKS.md` rewrites that subject's own section of this file (sections
written by hand are kept). Sections list the machine facts, the date of their run and whether the
machine was quiet.

| Suite | What | Command (about how long) |
|---|---|---|
| event store | appends, plain SQLite, `read_all` scan, load | `cargo run --release -p registry-bench -- all --suite event-store --write BENCHMARKS.md` (1 min) |
| projections | rebuild rate beside the raw scan, lag under a steady write load | `cargo run --release -p registry-bench -- all --suite projections --write BENCHMARKS.md` (7 min) |
| HTTP | verifies/s (cold and warm) beside `/healthz`, grants/s with the server's CPU, server memory | `cargo run --release -p registry-bench -- all --suite http --write BENCHMARKS.md` (6 min; needs `wrk`) |
| PostgreSQL | appends, rebuild, beside raw `INSERT` and `COPY` | `cargo run --release -p registry-bench -- all --suite postgres --write BENCHMARKS.md` (8 min; needs PostgreSQL's server binaries) |
| PDF | certificate PDF renders per second, PDF size | `cargo run --release -p registry-bench -- all --suite pdf --write BENCHMARKS.md` (1 min) |
";

/// One measured figure, as a row of the table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Figure {
    pub figure: String,
    pub value: String,
    /// The target, or empty when there is none.
    pub target: String,
    /// Whether the target was met; `None` without a target.
    pub met: Option<bool>,
    pub command: String,
    /// The value as a number, for notes computed across figures.
    pub raw: f64,
}

/// What one subcommand measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
    /// Numbers for notes computed across workloads, by name.
    #[serde(default)]
    pub metrics: Vec<(String, f64)>,
}

impl Outcome {
    pub fn figure(&mut self, figure: impl Into<String>, value: impl Into<String>, raw: f64) {
        self.figures.push(Figure {
            figure: figure.into(),
            value: value.into(),
            target: String::new(),
            met: None,
            command: invocation(),
            raw,
        });
    }

    pub fn target(
        &mut self,
        figure: impl Into<String>,
        value: impl Into<String>,
        raw: f64,
        target: impl Into<String>,
        met: bool,
    ) {
        self.figure(figure, value, raw);
        if let Some(f) = self.figures.last_mut() {
            f.target = target.into();
            f.met = Some(met);
        }
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

/// The command line of this process, as a developer would type it.
pub fn invocation() -> String {
    let args: Vec<String> = std::env::args().skip(1).map(|a| quote(&a)).collect();
    format!(
        "cargo run --release -p registry-bench -- {}",
        args.join(" ")
    )
}

fn quote(arg: &str) -> String {
    if arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(v: f64) -> String {
    let digits = (v.round().max(0.0) as u64).to_string();
    let mut groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .map(|g| std::str::from_utf8(g).unwrap_or_default())
        .collect();
    groups.reverse();
    groups.join(",")
}

pub fn millis(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// The `q` quantile (0..=1) of sorted durations, nearest rank.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A field of `/proc/self/status` in KiB (e.g. `VmHWM`).
pub fn proc_status_kib(field: &str) -> Option<u64> {
    proc_status_kib_of("self", field)
}

/// A field of `/proc/{pid}/status` in KiB (`pid` may be `self`).
pub fn proc_status_kib_of(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Facts about the machine and what else runs on it.
#[derive(Clone, Debug)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub kernel: String,
    pub loadavg: String,
}

impl Machine {
    pub fn now() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, v)| v.trim().to_string());
        Self {
            nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu,
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            loadavg: loadavg(),
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The 1-, 5- and 15-minute load averages.
pub fn loadavg() -> String {
    read_trimmed("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" / ")
}

/// CPU time of the whole machine and of this process with its waited-for children, in clock ticks.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSample {
    busy: u64,
    steal: u64,
    total: u64,
    own: u64,
}

/// Processes this run started that are not its children (a daemonized PostgreSQL): their CPU time,
/// and their children's, counts as this run's own.
static OWN_DAEMONS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

/// Counts the CPU time of `pid` and of its descendants as this run's own from now on.
pub fn count_as_own(pid: u32) {
    OWN_DAEMONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(pid);
}

/// Stops counting the process tree of `pid` (before it is stopped).
pub fn forget_own(pid: u32) {
    OWN_DAEMONS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|p| *p != pid);
}

/// `(ppid, utime + stime + cutime + cstime)` of a process, from `/proc/{pid}/stat`.
fn stat_of(pid: &str) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based from state.
    let ppid = fields.get(1)?.parse().ok()?;
    let ticks = fields
        .get(11..15)?
        .iter()
        .map(|v| v.parse::<u64>().unwrap_or(0))
        .sum();
    Some((ppid, ticks))
}

/// CPU ticks of the process tree under `root`: every live process's own and reaped children's
/// time, so each finished process counts once (in its parent's `cutime`).
pub fn tree_ticks(root: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let procs: Vec<(u32, u32, u64)> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let pid: u32 = name.parse().ok()?;
            let (ppid, ticks) = stat_of(&name)?;
            Some((pid, ppid, ticks))
        })
        .collect();
    let mut inside = vec![root];
    let mut total = 0;
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, ppid, _) in &procs {
            if inside.contains(ppid) && !inside.contains(pid) {
                inside.push(*pid);
                grew = true;
            }
        }
    }
    for (pid, _, ticks) in &procs {
        if inside.contains(pid) {
            total += ticks;
        }
    }
    total
}

/// CPU ticks (utime + stime) of one process.
pub fn process_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
    Some(
        fields
            .get(11..13)?
            .iter()
            .map(|v| v.parse::<u64>().unwrap_or(0))
            .sum(),
    )
}

/// Clock ticks per second of /proc (USER_HZ, 100 on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;

impl CpuSample {
    pub fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let cpu: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        let at = |i: usize| cpu.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal
        let own = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let fields: Vec<u64> = s
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .map(|v| v.parse().unwrap_or(0))
                    .collect();
                // utime stime cutime cstime are fields 14-17 of the line, 12-15 after the name.
                Some(fields.get(11..15)?.iter().sum())
            })
            .unwrap_or(0)
            + OWN_DAEMONS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|pid| tree_ticks(*pid))
                .sum::<u64>();
        Self {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            steal: at(7),
            total: (0..8).map(at).sum(),
            own,
        }
    }

    /// Between two samples: the share of the machine's CPU time stolen by the hypervisor, and
    /// the cores kept busy by processes other than this run.
    pub fn load_since(&self, before: &CpuSample) -> Load {
        let total = self.total.saturating_sub(before.total).max(1) as f64;
        let others = self
            .busy
            .saturating_sub(before.busy)
            .saturating_sub(self.own.saturating_sub(before.own)) as f64;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        Load {
            steal: self.steal.saturating_sub(before.steal) as f64 / total,
            other_cores: others / total * cores,
        }
    }
}

/// What else used the machine during a workload.
#[derive(Clone, Copy, Debug, Default)]
pub struct Load {
    /// Share (0..1) of all CPU time that the hypervisor gave to other guests.
    pub steal: f64,
    /// Cores kept busy, on average, by other processes of this machine.
    pub other_cores: f64,
}

impl Load {
    pub fn is_significant(&self) -> bool {
        self.steal > 0.05 || self.other_cores > 0.2
    }
}

/// The filesystem type holding `path` (longest mount-point prefix in /proc/mounts).
pub fn filesystem_of(path: &Path) -> String {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (_, mount, fs) = (parts.next()?, parts.next()?, parts.next()?);
            path.starts_with(mount)
                .then(|| (mount.len(), fs.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "unknown".into(), |(_, fs)| fs)
}

/// The Markdown table of figures.
pub fn table(figures: &[Figure]) -> String {
    let mut out = String::from("| Figure | Value | Target | Command |\n|---|---|---|---|\n");
    for f in figures {
        let target = match f.met {
            None => "—".to_string(),
            Some(true) => format!("{} — met", f.target),
            Some(false) => format!("{} — **not met**", f.target),
        };
        out.push_str(&format!(
            "| {} | {} | {} | `{}` |\n",
            f.figure, f.value, target, f.command
        ));
    }
    out
}

/// Replaces (or appends) the section under `heading` in the Markdown file at `path`; `section`
/// starts with that heading. Everything else of the file is kept.
pub fn update_section(path: &Path, heading: &str, section: &str) -> Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HEADER.to_string(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let lines: Vec<&str> = existing.lines().collect();
    let start = lines.iter().position(|l| l.trim_end() == heading);
    let mut out = String::new();
    match start {
        Some(start) => {
            let end = lines[start + 1..]
                .iter()
                .position(|l| l.starts_with("## "))
                .map_or(lines.len(), |i| start + 1 + i);
            for l in &lines[..start] {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str(section.trim_end());
            out.push('\n');
            if end < lines.len() {
                out.push('\n');
                for l in &lines[end..] {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        None => {
            out.push_str(existing.trim_end());
            out.push_str("\n\n");
            out.push_str(section.trim_end());
            out.push('\n');
        }
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.8), "1,234,568");
    }

    #[test]
    fn quantile_is_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn the_section_is_replaced_in_place_and_other_sections_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("B.md");
        const SECTION: &str = "## Event store";
        update_section(&path, SECTION, &format!("{SECTION}\n\nfirst\n")).unwrap();
        let created = std::fs::read_to_string(&path).unwrap();
        assert!(created.starts_with("# Benchmarks"));
        assert!(created.ends_with(&format!("{SECTION}\n\nfirst\n")));

        std::fs::write(&path, format!("{created}\n## Other\n\nkept\n")).unwrap();
        update_section(&path, SECTION, &format!("{SECTION}\n\nsecond\n")).unwrap();
        let updated = std::fs::read_to_string(&path).unwrap();
        assert!(!updated.contains("first"));
        assert!(updated.contains("second\n\n## Other\n\nkept\n"));
        assert_eq!(updated.matches(SECTION).count(), 1);
    }
}
