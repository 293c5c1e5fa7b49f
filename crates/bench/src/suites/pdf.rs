//! `all --suite pdf`.

use super::{first, Section, Suite};
use crate::children::Runs;
use crate::AllArgs;
use anyhow::Result;

/// the certificate PDF.
pub fn run(a: &AllArgs) -> Result<()> {
    let section = Section::begin(Suite::Pdf, &["crates/credential", "crates/http"]);
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
