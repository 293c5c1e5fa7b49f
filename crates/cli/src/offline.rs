//! `registry verify`: proves a QR was issued by the registry using only the published keys file;
//! no network. Current status still needs the online check.

use anyhow::{bail, Context};
use registry_credential::{verify_token, KeyStatus, PublicKeys, TokenKind};
use std::path::Path;

/// The outcome of an offline check.
#[derive(Debug)]
pub struct OfflineCheck {
    pub token: String,
    pub kid: String,
    pub key_status: KeyStatus,
    pub kind: TokenKind,
}

/// Reads the text of the QR in an image (PNG or JPEG).
pub fn decode_qr_image(path: &Path) -> anyhow::Result<String> {
    let image = image::open(path)
        .with_context(|| format!("reading the image {}", path.display()))?
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    let grid = grids.first().context("no QR code found in the image")?;
    let (_, text) = grid.decode().context("the QR code could not be read")?;
    Ok(text)
}

/// The token of a verify URL (`.../v/{token}`), or the input itself.
pub fn token_of(input: &str) -> String {
    let input = input.trim();
    let token = match input.rfind("/v/") {
        Some(i) => &input[i + 3..],
        None => input,
    };
    token
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Checks the token against the key set file.
pub fn check(input: &str, keys_file: &Path) -> anyhow::Result<OfflineCheck> {
    let json = std::fs::read_to_string(keys_file)
        .with_context(|| format!("reading the keys file {}", keys_file.display()))?;
    let keys = PublicKeys::from_jwks(&json).context("reading the keys file")?;
    let token = token_of(input);
    let verified = match verify_token(&keys, &token) {
        Ok(v) => v,
        Err(e) => bail!("NOT issued by this registry: {e}"),
    };
    let key_status = keys.to_jwks()["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kid"] == verified.kid.to_hex()))
        .and_then(|k| serde_json::from_value(k["status"].clone()).ok())
        .unwrap_or(KeyStatus::Retired);
    Ok(OfflineCheck {
        token,
        kid: verified.kid.to_hex(),
        key_status,
        kind: verified.kind,
    })
}
