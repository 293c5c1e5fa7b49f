//! Witness cosignatures in the C2SP `tlog-cosignature` format (v1), as a `signed_note` verifier
//! and signer: the crate has no cosignature type, but its `Verifier`/`Signer` traits are the
//! extension point the format is meant for.
//!
//! - verifier key: `name+hexid+base64(0x04 ‖ Ed25519 public key)`, the id being the first four
//!   bytes of SHA-256(name ‖ `\n` ‖ 0x04 ‖ public key);
//! - signature line: `— name base64(id ‖ timestamp ‖ signature)`, the timestamp 8 bytes big-endian
//!   (seconds since the epoch), the signature 64 bytes;
//! - signed message: `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint text.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
pub use ed25519_dalek::SigningKey;
use ed25519_dalek::{Signature, Signer as _, VerifyingKey};
use signed_note::{key_id, Signer, Verifier};

/// The signature-type byte of a cosignature (v1) key.
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

fn message(timestamp: u64, text: &[u8]) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    m.extend_from_slice(text);
    m
}

#[derive(Debug, thiserror::Error)]
#[error("not a cosignature verifier key (name+hexid+base64 of 0x04 and an Ed25519 key)")]
pub struct BadWitnessKey;

/// A witness's public key.
#[derive(Clone, Debug)]
pub struct CosignatureVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    pub fn new(vkey: &str) -> Result<Self, BadWitnessKey> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(BadWitnessKey);
        };
        let bytes = STANDARD.decode(key).map_err(|_| BadWitnessKey)?;
        let id = u32::from_str_radix(id, 16).map_err(|_| BadWitnessKey)?;
        if !signed_note::is_key_name_valid(name)
            || bytes.len() != 33
            || bytes[0] != ALG_COSIGNATURE_V1
            || key_id(name, &bytes) != id
        {
            return Err(BadWitnessKey);
        }
        let public: [u8; 32] = bytes[1..].try_into().map_err(|_| BadWitnessKey)?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| BadWitnessKey)?;
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// `name+hexid`: how the store keys one witness's cosignatures.
    pub fn label(&self) -> String {
        format!("{}+{:08x}", self.name, self.id)
    }

    /// The timestamp of a cosignature (`sig` without its key id), if it has the right length.
    pub fn timestamp(sig: &[u8]) -> Option<u64> {
        Some(u64::from_be_bytes(sig.get(..8)?.try_into().ok()?))
    }
}

impl Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        let (Some(timestamp), Some(Ok(signature))) = (
            Self::timestamp(sig),
            sig.get(8..).map(Signature::from_slice),
        ) else {
            return false;
        };
        sig.len() == 72
            && self
                .key
                .verify_strict(&message(timestamp, msg), &signature)
                .is_ok()
    }
}

/// A witness's private key: what an auditor acting as a witness signs with (and the tests).
#[derive(Debug)]
pub struct CosignatureSigner {
    name: String,
    id: u32,
    key: SigningKey,
    timestamp: u64,
}

impl CosignatureSigner {
    /// A signer for `name` with this key, signing as of `timestamp` (seconds since the epoch).
    pub fn new(name: &str, key: SigningKey, timestamp: u64) -> Self {
        let id = key_id(name, &Self::public_bytes(&key));
        Self {
            name: name.to_owned(),
            id,
            key,
            timestamp,
        }
    }

    fn public_bytes(key: &SigningKey) -> Vec<u8> {
        let mut bytes = vec![ALG_COSIGNATURE_V1];
        bytes.extend_from_slice(key.verifying_key().as_bytes());
        bytes
    }

    /// The verifier key to configure on the server.
    pub fn verifier_key(&self) -> String {
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.id,
            STANDARD.encode(Self::public_bytes(&self.key))
        )
    }
}

impl Signer for CosignatureSigner {
    fn name(&self) -> &str {
        &self.name
    }
    fn key_id(&self) -> u32 {
        self.id
    }
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        let mut out = self.timestamp.to_be_bytes().to_vec();
        out.extend_from_slice(&self.key.sign(&message(self.timestamp, msg)).to_bytes());
        Ok(out)
    }
}

/// The timestamp of a cosignature line (`— name base64(id ‖ timestamp ‖ signature)`).
pub fn line_timestamp(line: &str) -> Option<u64> {
    let blob = STANDARD.decode(line.trim_end().rsplit(' ').next()?).ok()?;
    CosignatureVerifier::timestamp(blob.get(4..)?)
}

/// Cosigns a checkpoint text: the signature line a witness returns.
pub fn cosign(signer: &CosignatureSigner, checkpoint_text: &str) -> String {
    let sig = Signer::sign(signer, checkpoint_text.as_bytes()).unwrap_or_default();
    let mut blob = signer.id.to_be_bytes().to_vec();
    blob.extend_from_slice(&sig);
    format!("— {} {}\n", signer.name, STANDARD.encode(blob))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{open_checkpoint, LogKey};

    fn witness(timestamp: u64) -> CosignatureSigner {
        CosignatureSigner::new(
            "witness.example",
            SigningKey::from_bytes(&[7; 32]),
            timestamp,
        )
    }

    #[test]
    fn given_a_cosigned_checkpoint_when_opened_with_the_witness_key_then_the_witness_is_named() {
        let (log, _) = LogKey::generate("example.org/log").unwrap();
        let signed = log.sign(3, tlog_tiles::record_hash(b"z")).unwrap();
        let text = signed.split_once("\n\n").unwrap().0.to_owned() + "\n";
        let cosigned = signed.clone() + &cosign(&witness(1_700_000_000), &text);
        let verifier = CosignatureVerifier::new(&witness(0).verifier_key()).unwrap();
        let opened = open_checkpoint(&cosigned, log.verifier_key(), &[verifier]).unwrap();
        assert_eq!(opened.witnesses.len(), 1);
        assert_eq!(opened.witnesses[0].name, "witness.example");
        assert_eq!(opened.witnesses[0].timestamp, 1_700_000_000);
        assert_eq!(
            super::line_timestamp(&opened.witnesses[0].line),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn given_a_cosignature_over_another_checkpoint_when_opened_then_it_is_refused() {
        let (log, _) = LogKey::generate("example.org/log").unwrap();
        let signed = log.sign(3, tlog_tiles::record_hash(b"z")).unwrap();
        let other = log.sign(4, tlog_tiles::record_hash(b"z")).unwrap();
        let other_text = other.split_once("\n\n").unwrap().0.to_owned() + "\n";
        let cosigned = signed + &cosign(&witness(1), &other_text);
        let verifier = CosignatureVerifier::new(&witness(0).verifier_key()).unwrap();
        assert!(open_checkpoint(&cosigned, log.verifier_key(), &[verifier]).is_err());
    }

    #[test]
    fn given_an_ordinary_note_key_when_read_as_a_witness_key_then_it_is_refused() {
        let (log, _) = LogKey::generate("example.org/log").unwrap();
        assert!(CosignatureVerifier::new(log.verifier_key()).is_err());
    }
}
