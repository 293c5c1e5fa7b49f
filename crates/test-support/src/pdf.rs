//! Reading a PDF back the way a person would: `pdftoppm` renders it, `zbarimg` reads the QR off
//! the page, `pdftotext` extracts the text. The tools come from Debian's poppler-utils and
//! zbar-tools; without them the PDF checks say they were skipped, or fail when
//! `REGISTRY_REQUIRE_PDF_TOOLS` is set (as `.ci/run` does).
#![allow(clippy::missing_panics_doc)]

use std::io::Write;
use std::process::Command;

/// Whether the tools are installed.
pub fn tools_present() -> bool {
    let present = ["pdftoppm", "pdftotext", "zbarimg"]
        .iter()
        .all(|t| Command::new(t).arg("-v").output().is_ok());
    if !present {
        assert!(
            std::env::var_os("REGISTRY_REQUIRE_PDF_TOOLS").is_none(),
            "pdftoppm, pdftotext and zbarimg are required (REGISTRY_REQUIRE_PDF_TOOLS)"
        );
        let _ = writeln!(
            std::io::stderr(),
            "skipped: the PDF checks need pdftoppm, pdftotext and zbarimg (apt-get install poppler-utils zbar-tools)"
        );
    }
    present
}

/// The QR text on the rendered first page (150 dpi), and the document's text.
pub fn read_pdf(pdf: &[u8]) -> (String, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("doc.pdf");
    std::fs::write(&file, pdf).expect("write the PDF");
    let out = Command::new("pdftoppm")
        .args(["-r", "150", "-png", "-singlefile"])
        .arg(&file)
        .arg(dir.path().join("page"))
        .output()
        .expect("run pdftoppm");
    assert!(
        out.status.success(),
        "pdftoppm: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let qr = Command::new("zbarimg")
        .args(["--quiet", "--raw", "-Sdisable", "-Sqrcode.enable"])
        .arg(dir.path().join("page.png"))
        .output()
        .expect("run zbarimg");
    assert!(qr.status.success(), "zbarimg found no QR on the page");
    let text = Command::new("pdftotext")
        .arg(&file)
        .arg("-")
        .output()
        .expect("run pdftotext");
    (
        String::from_utf8_lossy(&qr.stdout).trim_end().to_string(),
        String::from_utf8_lossy(&text.stdout).to_string(),
    )
}
