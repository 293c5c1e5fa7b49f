//! Writes a sample certificate PDF: `cargo run -p registry-credential --example certificate -- out.pdf`.

use chrono::NaiveDate;
use registry_credential::{certificate_pdf, CertificatePdf, PdfMember};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "certificate.pdf".into());
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d");
    let pdf = certificate_pdf(&CertificatePdf {
        certificate_number: "77-ABCD-EFGH-JKMN".into(),
        serial: 2,
        members: vec![
            PdfMember { full_name: "Гарипова Алсу Ринатовна".into(), relation: "родитель".into(), birth_date: d("1986-04-12")? },
            PdfMember { full_name: "Смирнов Кирилл Дмитриевич".into(), relation: "ребёнок".into(), birth_date: d("2010-05-01")? },
            PdfMember { full_name: "Смирнова Алиса Дмитриевна".into(), relation: "ребёнок".into(), birth_date: d("2014-09-15")? },
            PdfMember { full_name: "Смирнов Марк Дмитриевич".into(), relation: "ребёнок".into(), birth_date: d("2019-03-10")? },
        ],
        valid_from: d("2026-11-20")?,
        valid_until: d("2028-04-30")?,
        valid_until_reason: Some("до 01.05.2028 — в этот день старший из трёх младших детей, Пётр, достигает возраста 18 лет".into()),
        issued_on: d("2026-11-20")?,
        decision_number: "Р-2026/117".into(),
        decision_date: d("2026-11-20")?,
        office: Some("УСЗН района Хамовники".into()),
        verify_url: "https://registry.example.mos/v/AaT3yAAOTsb1FtFP5q-B2cvapQ0BbfkxIP-F961zPOAK2l85R44e9acJ_5a0ihG758eorEGbV013lIuRL9p-jICHUA69oZisr2Ux72MKlVS8V6I4DA".into(),
        created_at: chrono::Utc::now(),
    })
    .ok_or("the embedded fonts could not be read")?;
    std::fs::write(&out, pdf)?;
    Ok(())
}
