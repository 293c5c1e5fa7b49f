//! The certificate PDF: A4, Russian, with the same QR as the app and the verify address written
//! out under it. Font: DejaVu Sans and DejaVu Sans Bold (Bitstream Vera licence, kept in
//! `fonts/LICENSE-DejaVu.txt`), reduced to Latin, Cyrillic and punctuation by
//! `fonts/make-subsets.sh` so that every PDF stays small.

use crate::qr::qr_modules;
use chrono::{DateTime, NaiveDate, Utc};
use printpdf::{
    Color, FontId, Mm, Op, PaintMode, ParsedFont, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, Rect, Rgb, TextItem,
};
use std::sync::OnceLock;

const REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans-subset.ttf");
const BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold-subset.ttf");

/// Side of the printed QR, quiet zone included. The issue asks for at least 35 mm.
pub const QR_SIDE_MM: f32 = 55.0;

/// One member line of the certificate.
#[derive(Clone, Debug)]
pub struct PdfMember {
    pub full_name: String,
    /// `родитель` or `ребёнок`.
    pub relation: String,
    pub birth_date: NaiveDate,
}

/// What the certificate shows.
#[derive(Clone, Debug)]
pub struct CertificatePdf {
    pub certificate_number: String,
    pub serial: u32,
    pub members: Vec<PdfMember>,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    /// Why the certificate ends on `valid_until` («до 30.04.2032 — в этот день младший ребёнок,
    /// Олег, достигает возраста 16 лет»).
    pub valid_until_reason: Option<String>,
    pub issued_on: NaiveDate,
    /// The decision the status rests on: its number and date.
    pub decision_number: String,
    pub decision_date: NaiveDate,
    /// The office that took it («УСЗН района Хамовники»), when recorded.
    pub office: Option<String>,
    pub verify_url: String,
    /// When this PDF was made (shown on the page, and the document's creation date).
    pub created_at: DateTime<Utc>,
}

fn fonts() -> Option<&'static (ParsedFont, ParsedFont)> {
    static FONTS: OnceLock<Option<(ParsedFont, ParsedFont)>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let regular = ParsedFont::from_bytes(REGULAR, 0, &mut Vec::new())?;
            let bold = ParsedFont::from_bytes(BOLD, 0, &mut Vec::new())?;
            Some((regular, bold))
        })
        .as_ref()
}

fn ru(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

fn text(ops: &mut Vec<Op>, font: &FontId, size: f32, x_mm: f32, y_mm: f32, line: &str) {
    ops.extend([
        Op::StartTextSection,
        Op::SetFont {
            font: PdfFontHandle::External(font.clone()),
            size: Pt(size),
        },
        Op::SetTextCursor {
            pos: Point::new(Mm(x_mm), Mm(y_mm)),
        },
        Op::ShowText {
            items: vec![TextItem::Text(line.to_string())],
        },
        Op::EndTextSection,
    ]);
}

fn fill(ops: &mut Vec<Op>, grey: f32) {
    ops.push(Op::SetFillColor {
        col: Color::Rgb(Rgb {
            r: grey,
            g: grey,
            b: grey,
            icc_profile: None,
        }),
    });
}

/// Draws the QR of `url` with its lower left corner at (`x`, `y`) mm, `side` mm wide (quiet zone
/// included). Dark modules of a row are merged into one rectangle.
fn draw_qr(ops: &mut Vec<Op>, url: &str, x: f32, y: f32, side: f32) {
    let (width, modules) = qr_modules(url);
    let units = width + 8; // four modules of quiet zone on each side
    #[allow(clippy::cast_precision_loss)]
    let module = side / units as f32;
    fill(ops, 0.0);
    for row in 0..width {
        let mut col = 0;
        while col < width {
            if !modules[row * width + col] {
                col += 1;
                continue;
            }
            let start = col;
            while col < width && modules[row * width + col] {
                col += 1;
            }
            #[allow(clippy::cast_precision_loss)]
            let (left, top, run) = (
                x + (start + 4) as f32 * module,
                y + side - (row + 4) as f32 * module,
                (col - start) as f32 * module,
            );
            ops.push(Op::DrawRectangle {
                rectangle: Rect {
                    x: Mm(left).into(),
                    y: Mm(top - module).into(),
                    width: Mm(run).into(),
                    height: Mm(module).into(),
                    mode: Some(PaintMode::Fill),
                    winding_order: None,
                },
            });
        }
    }
}

/// Breaks `s` into lines of at most `n` characters at spaces (a longer word gets a line of its
/// own).
fn wrap(s: &str, n: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in s.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= n => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// Splits `s` into lines of at most `n` characters.
fn chunks(s: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

/// Renders the certificate. `None` only if the embedded fonts cannot be read (never, in a
/// correct build).
pub fn certificate_pdf(c: &CertificatePdf) -> Option<Vec<u8>> {
    let (regular, bold) = fonts()?;
    let mut doc = PdfDocument::new(&format!(
        "Удостоверение многодетной семьи № {}",
        c.certificate_number
    ));
    if let Ok(created) = printpdf::OffsetDateTime::from_unix_timestamp(c.created_at.timestamp()) {
        doc.metadata.info.creation_date = created;
        doc.metadata.info.modification_date = created;
        doc.metadata.info.metadata_date = created;
    }
    let regular = doc.add_font(regular);
    let bold = doc.add_font(bold);

    let mut ops = Vec::new();
    fill(&mut ops, 0.1);
    text(
        &mut ops,
        &regular,
        11.0,
        20.0,
        280.0,
        "Правительство Москвы · Реестр многодетных семей",
    );
    text(
        &mut ops,
        &bold,
        20.0,
        20.0,
        266.0,
        "Удостоверение многодетной семьи",
    );
    text(
        &mut ops,
        &bold,
        14.0,
        20.0,
        255.0,
        &format!("№ {}", c.certificate_number),
    );
    if c.serial > 1 {
        text(
            &mut ops,
            &regular,
            10.0,
            120.0,
            255.5,
            &format!("(выдано взамен предыдущего, выпуск {})", c.serial),
        );
    }
    text(
        &mut ops,
        &regular,
        12.0,
        20.0,
        244.0,
        &format!(
            "Действительно с {} по {} включительно",
            ru(c.valid_from),
            ru(c.valid_until)
        ),
    );
    let mut y = 238.0;
    if let Some(reason) = &c.valid_until_reason {
        for line in wrap(&format!("Основание срока: {reason}"), 85) {
            text(&mut ops, &regular, 10.0, 20.0, y, &line);
            y -= 5.0;
        }
    }
    text(
        &mut ops,
        &regular,
        12.0,
        20.0,
        y - 2.0,
        &format!("Дата выдачи: {}", ru(c.issued_on)),
    );
    let mut y = y - 9.0;
    text(
        &mut ops,
        &regular,
        11.0,
        20.0,
        y,
        &format!("Решение № {} от {}", c.decision_number, ru(c.decision_date)),
    );
    if let Some(office) = &c.office {
        for line in wrap(&format!("Выдал: {office}"), 85) {
            y -= 5.5;
            text(&mut ops, &regular, 11.0, 20.0, y, &line);
        }
    }

    text(&mut ops, &bold, 13.0, 20.0, y - 12.0, "Члены семьи");
    let mut y = y - 20.0;
    for m in &c.members {
        text(&mut ops, &regular, 11.5, 20.0, y, &m.full_name);
        text(
            &mut ops,
            &regular,
            10.0,
            130.0,
            y,
            &format!("{}, {}", m.relation, ru(m.birth_date)),
        );
        y -= 7.0;
        if y < 125.0 {
            break;
        }
    }

    // The QR right under the members, and the address it holds.
    let qr_y = (y - 4.0 - QR_SIDE_MM).clamp(58.0, 150.0);
    draw_qr(&mut ops, &c.verify_url, 20.0, qr_y, QR_SIDE_MM);
    fill(&mut ops, 0.1);
    let mut line_y = qr_y - 4.0;
    for part in chunks(&c.verify_url, 58) {
        text(&mut ops, &regular, 8.0, 20.0, line_y, &part);
        line_y -= 4.0;
    }
    let notes = [
        "Для проверки наведите камеру телефона на QR-код",
        "и откройте ссылку: реестр покажет текущий статус",
        "удостоверения и состав семьи на момент проверки.",
        "",
        "Цифровое удостоверение имеет такую же юридическую",
        "силу, что и удостоверение на бумажном носителе.",
    ];
    let mut note_y = qr_y + QR_SIDE_MM - 8.0;
    for line in notes {
        text(&mut ops, &regular, 10.0, 85.0, note_y, line);
        note_y -= 6.0;
    }

    // The lower part of the page: what a verifier sees, and what to do when something changes.
    let mut y = (line_y - 8.0).min(62.0);
    text(&mut ops, &bold, 11.0, 20.0, y, "Что видит проверяющий");
    for line in [
        "«ДЕЙСТВИТЕЛЬНО» — статус многодетной семьи действует сегодня; «НЕДЕЙСТВИТЕЛЬНО»",
        "— отозван, прекращён, истёк или удостоверение заменено новым (с датой изменения).",
        "Этот документ не нужно заменять при изменениях: QR-код всегда показывает",
        "текущее состояние записи в реестре.",
    ] {
        y -= 5.0;
        text(&mut ops, &regular, 9.5, 20.0, y, line);
    }
    y -= 9.0;
    text(&mut ops, &bold, 11.0, 20.0, y, "Если сведения изменились");
    for line in [
        "Родился или усыновлён ребёнок, сменилась фамилия, семья переехала — сообщите",
        "в управление социальной защиты населения по месту жительства.",
    ] {
        y -= 5.0;
        text(&mut ops, &regular, 9.5, 20.0, y, line);
    }
    text(
        &mut ops,
        &regular,
        8.0,
        20.0,
        12.0,
        &format!(
            "Документ сформирован {} · выпуск {} · № {}",
            c.created_at
                .with_timezone(&chrono_tz::Europe::Moscow)
                .format("%d.%m.%Y %H:%M (МСК)"),
            c.serial,
            c.certificate_number
        ),
    );

    let page = PdfPage::new(Mm(210.0), Mm(297.0), ops);
    let mut warnings = Vec::new();
    Some(
        doc.with_pages(vec![page])
            .save(&PdfSaveOptions::default(), &mut warnings),
    )
}
