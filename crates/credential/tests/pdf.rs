//! The certificate PDF read back with the tools a person would use: `pdftoppm` renders it,
//! `zbarimg` reads the QR off the rendered page, `pdftotext` finds the text (see
//! `registry_test_support::pdf`).

use chrono::NaiveDate;
use registry_credential::{certificate_pdf, CertificatePdf, PdfMember};
use registry_test_support::pdf::{read_pdf, tools_present};

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn sample() -> CertificatePdf {
    CertificatePdf {
        certificate_number: "77-ABCD-EFGH-JKMN".into(),
        serial: 1,
        members: vec![
            PdfMember { full_name: "Смирнова Ольга Игоревна".into(), relation: "родитель".into(), birth_date: date("1986-04-12") },
            PdfMember { full_name: "Смирнов Дмитрий Олегович".into(), relation: "родитель".into(), birth_date: date("1984-09-30") },
            PdfMember { full_name: "Смирнов Кирилл Дмитриевич".into(), relation: "ребёнок".into(), birth_date: date("2010-05-01") },
            PdfMember { full_name: "Смирнова Алиса Дмитриевна".into(), relation: "ребёнок".into(), birth_date: date("2014-09-15") },
            PdfMember { full_name: "Смирнов Марк Дмитриевич".into(), relation: "ребёнок".into(), birth_date: date("2019-03-10") },
        ],
        valid_from: date("2026-11-20"),
        valid_until: date("2028-04-30"),
        valid_until_reason: Some("до 01.05.2028 — в этот день старший из трёх младших детей, Пётр, достигает возраста 18 лет".into()),
        issued_on: date("2026-11-20"),
        decision_number: "Р-2026/117".into(),
        decision_date: date("2026-11-20"),
        office: Some("УСЗН района Хамовники".into()),
        verify_url: "https://registry.example.mos/v/AaT3yAAOTsb1FtFP5q-B2cvapQ0BbfkxIP-F961zPOAK2l85R44e9acJ_5a0ihG758eorEGbV013lIuRL9p-jICHUA69oZisr2Ux72MKlVS8V6I4DA".into(),
        created_at: chrono::DateTime::from_timestamp(1_795_000_000, 0).expect("a time"),
    }
}

#[test]
fn the_qr_on_the_rendered_pdf_reads_back_as_the_verify_url_and_the_text_is_searchable() {
    if !tools_present() {
        return;
    }
    let certificate = sample();
    let pdf = certificate_pdf(&certificate).expect("a PDF");
    assert!(pdf.starts_with(b"%PDF-"));
    let (qr, text) = read_pdf(&pdf);
    assert_eq!(qr, certificate.verify_url);

    assert!(text.contains("Удостоверение многодетной семьи"), "{text}");
    assert!(text.contains(&certificate.certificate_number), "{text}");
    for m in &certificate.members {
        assert!(
            text.contains(&m.full_name),
            "{} missing from {text}",
            m.full_name
        );
    }
    assert!(text.contains("30.04.2028"));
    // The reason of the date, wrapped onto as many lines as it needs.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("Основание срока: до 01.05.2028 — в этот день старший из трёх младших детей, Пётр, достигает возраста 18 лет"),
        "{text}"
    );
    // The decision and its office, and when this PDF was made (Moscow time).
    assert!(
        flat.contains("Решение № Р-2026/117 от 20.11.2026"),
        "{text}"
    );
    assert!(flat.contains("Выдал: УСЗН района Хамовники"), "{text}");
    let made = certificate
        .created_at
        .with_timezone(&chrono_tz::Europe::Moscow)
        .format("%d.%m.%Y %H:%M")
        .to_string();
    assert!(
        flat.contains(&format!("Документ сформирован {made} (МСК)")),
        "{text}"
    );
    assert!(flat.contains("Что видит проверяющий"), "{text}");
}

#[test]
fn the_pdf_carries_its_real_creation_date() {
    let certificate = sample();
    let pdf = certificate_pdf(&certificate).expect("a PDF");
    let raw = String::from_utf8_lossy(&pdf);
    let stamp = certificate.created_at.format("D:%Y%m%d").to_string();
    assert!(raw.contains(&stamp), "no {stamp} in the document info");
    assert!(!raw.contains("D:1970"), "the epoch is not a creation date");
}

#[test]
fn the_pdf_is_a4_and_embeds_only_a_subset_of_the_font() {
    let pdf = certificate_pdf(&sample()).expect("a PDF");
    let text = String::from_utf8_lossy(&pdf);
    assert!(
        text.contains("/MediaBox [0 0 595.") || text.contains("/MediaBox[0 0 595."),
        "A4 is 595 x 842 pt"
    );
    // The whole DejaVu Sans is 760 KB (709 KB bold); the embedded subsets keep a PDF small.
    assert!(pdf.len() < 200_000, "{} bytes", pdf.len());
}
