//! `all --suite event-store`: durable appends (1 and 32 writers) beside plain SQLite inserts
//! with the same durability, the `read_all` scan and a family load.

use super::{first, Section, Suite};
use crate::children::Runs;
use crate::report::{self, Outcome};
use crate::{workloads, AllArgs};
use anyhow::{Context, Result};

pub fn run(a: &AllArgs) -> Result<()> {
    let section = Section::begin(
        Suite::EventStore,
        &[
            "crates/store",
            "crates/store-sqlite",
            "crates/sqlite-pool",
            "crates/app",
            "crates/domain",
        ],
    );
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
    let scan = runs.run(&["scan", "--db", db], r)?;
    let load = runs.run(&["load", "--db", db, "--loads", &loads], r)?;

    let notes = comparisons(&append_1, &append_32, &plain_1, &plain_32, probe.as_ref());
    let mut outcomes: Vec<&Outcome> = vec![&append_1, &append_32];
    outcomes.extend(probe.as_ref());
    outcomes.extend([&plain_1, &plain_32, &scan, &load, &populate]);
    section.finish(
        &format!(
            "`all` ran each command of the table as a child process (a fresh process, and a \
             fresh SQLite file in a temporary directory on {fs}, except where `--db` names the \
             file made by `populate`); WAL with `synchronous=FULL` throughout."
        ),
        "",
        &outcomes,
        notes,
        &runs,
        a.write.as_deref(),
    )
}

/// Ratios between the workloads of the run.
fn comparisons(
    append_1: &Outcome,
    append_32: &Outcome,
    plain_1: &Outcome,
    plain_32: &Outcome,
    probe: Option<&Outcome>,
) -> Vec<String> {
    let mut notes = Vec::new();
    let (a1, a32, p1, p32) = (
        first(append_1),
        first(append_32),
        first(plain_1),
        first(plain_32),
    );
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
    if let Some(group) = probe.map(first).filter(|g| *g > 0.0) {
        notes.push(format!(
            "Group commit at 32 writers: at most {group:.1} appends per transaction on average \
             (the probe counts head advances; two commits between two looks count as one)."
        ));
    }
    notes
}
