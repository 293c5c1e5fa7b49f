//! What sealing personal data costs (ADR 19): the same realistic families appended, and the log
//! rebuilt, through the plain SQLite store and through the sealing store the binary runs,
//! alternated round by round in one process, so the ratio holds on a noisy machine.

use crate::projection::{populate_families, rebuild};
use crate::report::{thousands, Outcome};
use crate::workloads::scratch_dir;
use anyhow::Result;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

pub async fn sealing(families: usize, rounds: usize) -> Result<Outcome> {
    let dir = scratch_dir()?;
    let (mut appends, mut rebuilds) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for round in 0..rounds.max(1) {
        for (i, sealed) in [false, true].into_iter().enumerate() {
            let file = dir.path().join(format!("log-{round}-{i}.db"));
            let url = format!("{}{}", if sealed { "sealed:" } else { "" }, file.display());
            let populated = populate_families(&url, families, 4, 32).await?;
            appends[i].push(populated.figures.first().map_or(0.0, |f| f.raw));
            let rebuilt = rebuild(&url, None, None).await?;
            rebuilds[i].push(rebuilt.figures.first().map_or(0.0, |f| f.raw));
        }
    }
    let [plain_a, sealed_a] = appends.clone().map(median);
    let [plain_r, sealed_r] = rebuilds.clone().map(median);
    let mut out = Outcome::default();
    let runs = |v: &[f64]| {
        v.iter()
            .map(|r| thousands(*r))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    out.figure(
        "Appends with personal data sealed (32 writers, each command decided by the domain)",
        format!(
            "{} events/s sealed against {} plain: {:.2} of plain (median of {rounds}; runs sealed \
             {}, plain {}; {} families, 5 events each)",
            thousands(sealed_a),
            thousands(plain_a),
            sealed_a / plain_a.max(1e-9),
            runs(&appends[1]),
            runs(&appends[0]),
            thousands(families as f64),
        ),
        sealed_a / plain_a.max(1e-9),
    );
    out.figure(
        "Rebuild of both projections from a sealed log (every personal field opened)",
        format!(
            "{} events/s sealed against {} plain: {:.2} of plain (median of {rounds}; runs sealed \
             {}, plain {})",
            thousands(sealed_r),
            thousands(plain_r),
            sealed_r / plain_r.max(1e-9),
            runs(&rebuilds[1]),
            runs(&rebuilds[0]),
        ),
        sealed_r / plain_r.max(1e-9),
    );
    Ok(out)
}
