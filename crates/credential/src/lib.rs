//! The signed QR credential (DESIGN.md §5).
//!
//! Why a crate of its own: the token format and the keys are what an offline checker needs too;
//! this crate has no database and no HTTP, so the CLI's offline `verify` and the server share one
//! implementation.
//!
//! A QR holds `{public_base_url}/v/{token}`. The token is base64url of
//! `version (1 byte) ‖ key id (4 bytes) ‖ certificate token id (16 random bytes) ‖ Ed25519
//! signature (64 bytes) over everything before it`: no personal data, no certificate number.

mod keys;
mod pdf;
mod qr;
mod token;

pub use keys::{KeyError, KeyId, KeyRing, KeyStatus, PublicKey, PublicKeys};
pub use pdf::{certificate_pdf, CertificatePdf, PdfMember, QR_SIDE_MM};
pub use qr::{qr_modules, qr_png, qr_svg, QR_ERROR_CORRECTION};
pub use token::{
    issue_live_token, issue_token, parse_token, verify_token, TokenError, TokenKind, VerifiedToken,
    MAX_TOKEN_CHARS,
};
