use image::{ImageEncoder, Luma};
use qrcode::{EcLevel, QrCode};

/// Every QR of the registry uses level Q (25% of the code can be damaged): the PDF, the SVG and
/// the PNG are the same QR.
pub const QR_ERROR_CORRECTION: EcLevel = EcLevel::Q;

fn code(url: &str) -> QrCode {
    // A verify URL is short; the only way to fail is data too long for any QR version.
    QrCode::with_error_correction_level(url.as_bytes(), QR_ERROR_CORRECTION)
        .or_else(|_| QrCode::with_error_correction_level(url.as_bytes(), EcLevel::L))
        .unwrap_or_else(|_| {
            QrCode::with_error_correction_level(b"invalid", EcLevel::L)
                .unwrap_or_else(|_| unreachable!())
        })
}

/// The QR of `url` as an SVG document (scales without blur; four modules of quiet zone).
pub fn qr_svg(url: &str) -> String {
    code(url)
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build()
}

/// The QR of `url` as a PNG, `module_px` pixels per module.
pub fn qr_png(url: &str, module_px: u32) -> Vec<u8> {
    let image = code(url)
        .render::<Luma<u8>>()
        .module_dimensions(module_px.max(1), module_px.max(1))
        .quiet_zone(true)
        .build();
    let mut png = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut png);
    // Encoding an in-memory grey image into a Vec cannot fail.
    let _ = encoder.write_image(
        image.as_raw(),
        image.width(),
        image.height(),
        image::ExtendedColorType::L8,
    );
    png
}

/// The QR modules of `url` (true = dark), for drawing it elsewhere (the PDF).
pub fn qr_modules(url: &str) -> (usize, Vec<bool>) {
    let code = code(url);
    let width = code.width();
    let modules = code
        .to_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
    (width, modules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_png_decodes_to_exactly_the_url() {
        let url = "https://registry.example/v/AQID-_abc";
        let png = qr_png(url, 4);
        let image = image::load_from_memory(&png).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        let (meta, content) = grids[0].decode().unwrap();
        assert_eq!(content, url);
        // The format bits of the QR standard: L = 1, M = 0, Q = 3, H = 2.
        assert_eq!(meta.ecc_level, 3, "level Q");
    }

    #[test]
    fn the_svg_is_an_svg_document() {
        let svg = qr_svg("https://registry.example/v/x");
        assert!(svg.starts_with("<?xml") && svg.contains("<svg"));
    }
}
