use crate::keys::{KeyId, KeyRing, PublicKeys};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, Verifier};
use registry_domain::CertificateId;
use uuid::Uuid;

/// The token of a printed QR (PDF, app card): valid as long as its certificate.
const STATIC_VERSION: u8 = 1;
/// The token of the app's rotating QR: carries its own expiry.
const LIVE_VERSION: u8 = 2;
const SIGNATURE_LEN: usize = 64;
const STATIC_BODY: usize = 1 + 4 + 16;
const LIVE_BODY: usize = STATIC_BODY + 8;

/// Longer strings are refused before decoding anything.
pub const MAX_TOKEN_CHARS: usize = 160;

/// Which QR a token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// The QR of the PDF and of the app card.
    Static,
    /// The app's rotating QR, valid until `expires_at` (Unix seconds).
    Live { expires_at: i64 },
}

/// A token whose signature checked out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    pub certificate_id: CertificateId,
    pub kid: KeyId,
    pub kind: TokenKind,
}

/// Why a token is not genuine. Callers answer all of these the same way (404), so that nothing
/// distinguishes a forged token from an unknown one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a token")]
    Malformed,
    #[error("unknown token version")]
    UnknownVersion,
    #[error("signed by a key that is not the registry's")]
    UnknownKey,
    #[error("the signature does not match")]
    BadSignature,
}

fn sign(ring: &KeyRing, mut body: Vec<u8>) -> String {
    let (_, key) = ring.signing_key();
    let signature = key.sign(&body);
    body.extend_from_slice(&signature.to_bytes());
    URL_SAFE_NO_PAD.encode(body)
}

fn body(version: u8, kid: KeyId, certificate: CertificateId) -> Vec<u8> {
    let mut body = Vec::with_capacity(LIVE_BODY + SIGNATURE_LEN);
    body.push(version);
    body.extend_from_slice(&kid.0);
    body.extend_from_slice(certificate.0.as_bytes());
    body
}

/// The token of a certificate's printed QR, signed with the current key. Ed25519 signatures are
/// deterministic, so the same certificate and key always give the same token.
pub fn issue_token(ring: &KeyRing, certificate: CertificateId) -> String {
    let (kid, _) = ring.signing_key();
    sign(ring, body(STATIC_VERSION, kid, certificate))
}

/// A live token valid until `expires_at` (Unix seconds).
pub fn issue_live_token(ring: &KeyRing, certificate: CertificateId, expires_at: i64) -> String {
    let (kid, _) = ring.signing_key();
    let mut body = body(LIVE_VERSION, kid, certificate);
    body.extend_from_slice(&expires_at.to_be_bytes());
    sign(ring, body)
}

/// Decodes a token without checking its signature: the parts and the signed bytes.
pub fn parse_token(token: &str) -> Result<(VerifiedToken, Vec<u8>, Signature), TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::Malformed);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .map_err(|_| TokenError::Malformed)?;
    let body_len = match bytes.first() {
        Some(&STATIC_VERSION) => STATIC_BODY,
        Some(&LIVE_VERSION) => LIVE_BODY,
        Some(_) => return Err(TokenError::UnknownVersion),
        None => return Err(TokenError::Malformed),
    };
    if bytes.len() != body_len + SIGNATURE_LEN {
        return Err(TokenError::Malformed);
    }
    let (body, signature) = bytes.split_at(body_len);
    let signature = Signature::from_slice(signature).map_err(|_| TokenError::Malformed)?;
    let kid = KeyId([body[1], body[2], body[3], body[4]]);
    let id: [u8; 16] = body[5..21].try_into().map_err(|_| TokenError::Malformed)?;
    let kind = if body_len == LIVE_BODY {
        let expiry: [u8; 8] = body[21..29].try_into().map_err(|_| TokenError::Malformed)?;
        TokenKind::Live {
            expires_at: i64::from_be_bytes(expiry),
        }
    } else {
        TokenKind::Static
    };
    Ok((
        VerifiedToken {
            certificate_id: CertificateId(Uuid::from_bytes(id)),
            kid,
            kind,
        },
        body.to_vec(),
        signature,
    ))
}

/// Parses a token and checks its signature against the published keys. No database is involved.
pub fn verify_token(keys: &PublicKeys, token: &str) -> Result<VerifiedToken, TokenError> {
    let (parsed, body, signature) = parse_token(token)?;
    let key = keys.get(parsed.kid).ok_or(TokenError::UnknownKey)?;
    key.verify(&body, &signature)
        .map_err(|_| TokenError::BadSignature)?;
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cert() -> CertificateId {
        CertificateId(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef))
    }

    #[test]
    fn an_issued_token_verifies_and_names_its_certificate_and_key() {
        let ring = KeyRing::generate();
        let token = issue_token(&ring, cert());
        assert!(token.len() <= MAX_TOKEN_CHARS);
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let verified = verify_token(ring.public(), &token).unwrap();
        assert_eq!(verified.certificate_id, cert());
        assert_eq!(verified.kid, ring.signing_key().0);
        assert_eq!(verified.kind, TokenKind::Static);
        assert_eq!(issue_token(&ring, cert()), token, "deterministic");
    }

    #[test]
    fn a_token_signed_by_another_key_is_refused() {
        let ours = KeyRing::generate();
        let theirs = KeyRing::generate();
        let token = issue_token(&theirs, cert());
        assert_eq!(
            verify_token(ours.public(), &token),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn a_token_claiming_our_key_id_with_another_keys_signature_is_refused() {
        let ours = KeyRing::generate();
        let theirs = KeyRing::generate();
        let (kid, _) = ours.signing_key();
        let mut forged = body(STATIC_VERSION, kid, cert());
        let sig = theirs.signing_key().1.sign(&forged);
        forged.extend_from_slice(&sig.to_bytes());
        let forged = URL_SAFE_NO_PAD.encode(forged);
        assert_eq!(
            verify_token(ours.public(), &forged),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_live_token_carries_its_expiry() {
        let ring = KeyRing::generate();
        let token = issue_live_token(&ring, cert(), 1_800_000_000);
        let verified = verify_token(ring.public(), &token).unwrap();
        assert_eq!(
            verified.kind,
            TokenKind::Live {
                expires_at: 1_800_000_000
            }
        );
    }

    proptest! {
        #[test]
        fn every_single_bit_flip_is_refused(bit in 0usize..(85 * 8)) {
            let ring = KeyRing::generate();
            let token = issue_token(&ring, cert());
            let mut bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
            bytes[bit / 8] ^= 1 << (bit % 8);
            let flipped = URL_SAFE_NO_PAD.encode(bytes);
            prop_assert!(verify_token(ring.public(), &flipped).is_err());
        }

        #[test]
        fn random_strings_never_verify_and_never_panic(s in "\\PC{0,200}") {
            let ring = KeyRing::generate();
            prop_assert!(verify_token(ring.public(), &s).is_err());
        }
    }
}
