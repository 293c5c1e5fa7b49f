//! Certificate PDFs rendered per second, and their size.

use crate::families;
use crate::report::{millis, quantile, thousands, Outcome};
use anyhow::{ensure, Context, Result};
use registry_credential::{certificate_pdf, issue_token, CertificatePdf, KeyRing};
use registry_domain::{FamilyId, Policy};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The base of the verify URL printed in the QR: as long as a production host name.
pub const PUBLIC_BASE_URL: &str = "https://mnogodet.mos.ru";

/// The document of a realistic family: two parents and three children with patronymics, granted
/// by the domain, with its signed verify URL — what `GET /api/v1/me/certificate.pdf` renders.
pub fn document() -> Result<CertificatePdf> {
    let family_id = FamilyId(uuid::Uuid::now_v7());
    let command = families::grant(17, family_id);
    let (_, family) = families::decide_events(&Policy::federal_2024(), family_id, None, &command)?;
    let family = family.context("no family after the grant")?;
    let ring = KeyRing::generate();
    let url = format!(
        "{PUBLIC_BASE_URL}/v/{}",
        issue_token(&ring, family.certificate_id)
    );
    Ok(registry_http::document::certificate_document(
        &family,
        &Policy::federal_2024(),
        url,
        chrono::Utc::now(),
    ))
}

/// Renders the certificate on `threads` threads for `seconds` (after a warm-up render).
pub fn pdf(threads: usize, seconds: u64) -> Result<Outcome> {
    ensure!(
        threads > 0 && seconds > 0,
        "threads and seconds must be positive"
    );
    let doc = document()?;
    let first = certificate_pdf(&doc).context("rendering the PDF")?;
    ensure!(first.starts_with(b"%PDF-"), "not a PDF");
    let size = first.len();
    let budget = Duration::from_secs(seconds);
    let start = Instant::now();
    let per_thread: Vec<Vec<Duration>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let doc = &doc;
                s.spawn(move || {
                    let mut times = Vec::new();
                    while start.elapsed() < budget {
                        let t = Instant::now();
                        black_box(certificate_pdf(black_box(doc)));
                        times.push(t.elapsed());
                    }
                    times
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let elapsed = start.elapsed();
    let mut times: Vec<Duration> = per_thread.into_iter().flatten().collect();
    ensure!(!times.is_empty(), "no render finished");
    times.sort_unstable();
    let renders = times.len() as f64;
    let rate = renders / elapsed.as_secs_f64();
    let mut out = Outcome::default();
    let label = if threads == 1 {
        "`certificate_pdf` renders, 1 thread".to_string()
    } else {
        format!("`certificate_pdf` renders, {threads} threads")
    };
    out.figure(
        label,
        format!(
            "{} PDFs/s ({} renders in {:.1} s; per render p50 {}, p99 {})",
            thousands(rate),
            thousands(renders),
            elapsed.as_secs_f64(),
            millis(quantile(&times, 0.5)),
            millis(quantile(&times, 0.99)),
        ),
        rate,
    );
    if threads == 1 {
        out.figure(
            "Size of the certificate PDF",
            format!(
                "{} bytes ({:.1} KiB)",
                thousands(size as f64),
                size as f64 / 1024.0
            ),
            size as f64,
        );
    }
    out.note(format!(
        "The PDF: A4, a family of 2 parents and 3 children with full names and patronymics, the \
         QR of a {}-character verify URL (`{PUBLIC_BASE_URL}/v/<token>`), DejaVu Sans subsets \
         embedded; built by `registry_http::document::certificate_document` from the family \
         the domain granted, as the holder's download is.",
        doc.verify_url.chars().count()
    ));
    Ok(out)
}
