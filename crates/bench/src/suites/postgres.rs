//! `all --suite postgres`.

use super::{first, Section, Suite};
use crate::children::Runs;
use crate::report::{self, Outcome};
use crate::{runtime, AllArgs};
use anyhow::Result;

/// PostgreSQL, on a throwaway cluster with default settings.
pub fn run(a: &AllArgs) -> Result<()> {
    let section = Section::begin(
        Suite::Postgres,
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
    if rebuild_rate < crate::projection::REBUILD_TARGET {
        notes.push(format!(
            "**The PostgreSQL rebuild rate ({} events/s) is below the 100,000 events/s asked of \
             rebuilds (issue 17).** See the notes by hand below.",
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
