//! `all --suite projections`.

use super::{first, path_str, Section, Suite};
use crate::children::Runs;
use crate::report::{self, Outcome};
use crate::AllArgs;
use anyhow::Result;

/// rebuild of both projections from a million events beside the raw scan; lag under a
/// steady write load.
pub fn run(a: &AllArgs) -> Result<()> {
    let section = Section::begin(
        Suite::Projections,
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
    if r < crate::projection::REBUILD_TARGET {
        notes.push(format!(
            "**The rebuild rate ({} events/s) is below the target of 100,000 events/s.** See the \
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
