//! Signed checkpoints: the log's key, signing a tree head as a C2SP `tlog-checkpoint` in a C2SP
//! `signed-note`, and opening one again. The formats are `tlog_tiles::Checkpoint` and the
//! `signed_note` crate (cloudflare/azul); this module only keeps the key.

use crate::cosign::CosignatureVerifier;
use signed_note::{Note, Signer, StandardSigner, StandardVerifier, Verifier, VerifierList};
use std::path::Path;
use tlog_tiles::{Checkpoint, Hash};

/// The origin line of this log's checkpoints unless configured otherwise.
pub const DEFAULT_ORIGIN: &str = "mos.ru/large-family-registry";

/// The file in the key directory holding the log's signer key (`PRIVATE+KEY+name+id+base64`).
pub const KEY_FILE: &str = "log-signing";

#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    #[error("the log key file {0}: {1}")]
    KeyFile(String, String),
    #[error("not a signed checkpoint: {0}")]
    Malformed(String),
    #[error("the checkpoint is not signed by the log key {0}")]
    NotSigned(String),
    #[error("the checkpoint's origin is {found:?}, not {expected:?}")]
    Origin { expected: String, found: String },
}

/// The log's signing key; its name is the checkpoints' origin.
pub struct LogKey {
    signer: StandardSigner,
    verifier_key: String,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKey")
            .field("verifier_key", &self.verifier_key)
            .finish_non_exhaustive()
    }
}

impl LogKey {
    /// Generates a new key named `origin`.
    pub fn generate(origin: &str) -> Result<(Self, String), NoteError> {
        let (skey, _) = signed_note::generate_key(&mut rand::rngs::OsRng, origin);
        Ok((Self::from_signer_key(&skey)?, skey))
    }

    pub fn from_signer_key(skey: &str) -> Result<Self, NoteError> {
        let bad = |e: &dyn std::fmt::Display| NoteError::KeyFile("(text)".into(), e.to_string());
        let signer = StandardSigner::new(skey.trim()).map_err(|e| bad(&e))?;
        // The verifier key is derived from the private half (the signer checks its id).
        let parts: Vec<&str> = skey.trim().splitn(5, '+').collect();
        let key = parts
            .get(4)
            .and_then(|k| base64_decode(k))
            .ok_or_else(|| bad(&"malformed"))?;
        let secret: [u8; 32] = key
            .get(1..33)
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| bad(&"malformed"))?;
        let public = ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key();
        let verifier_key = signed_note::new_ed25519_verifier_key(signer.name(), &public);
        Ok(Self {
            signer,
            verifier_key,
        })
    }

    /// Loads the key from `dir`, creating one named `origin` on first use (mode 0600).
    pub fn load_or_create(dir: &Path, origin: &str) -> Result<Self, NoteError> {
        let path = dir.join(KEY_FILE);
        let file_error =
            |e: std::io::Error| NoteError::KeyFile(path.display().to_string(), e.to_string());
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_signer_key(&text).map_err(|e| match e {
                NoteError::KeyFile(_, why) => NoteError::KeyFile(path.display().to_string(), why),
                other => other,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(file_error)?;
                let (key, skey) = Self::generate(origin)?;
                // Written whole under another name, then linked into place: two servers starting
                // on one key directory never see half a key, and the second uses the first's.
                let temp = dir.join(format!("{KEY_FILE}.{}", uuid::Uuid::new_v4()));
                write_private(&temp, &skey).map_err(file_error)?;
                let linked = std::fs::hard_link(&temp, &path);
                let _ = std::fs::remove_file(&temp);
                match linked {
                    Ok(()) => Ok(key),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(dir, origin)
                    }
                    Err(e) => Err(file_error(e)),
                }
            }
            Err(e) => Err(file_error(e)),
        }
    }

    /// The origin line (the key's name).
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// The public verifier key in the note format (`name+id+base64`), as Go's
    /// `golang.org/x/mod/sumdb/note` and every C2SP client read it.
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// The signed note of the tree head (`size`, `root`).
    pub fn sign(&self, size: u64, root: Hash) -> Result<String, NoteError> {
        let malformed = |e: &dyn std::fmt::Display| NoteError::Malformed(e.to_string());
        let body = Checkpoint::new(self.origin(), size, root, "").map_err(|e| malformed(&e))?;
        let mut note = Note::new(&body.to_bytes(), &[]).map_err(|e| malformed(&e))?;
        note.add_sigs(&[&self.signer as &dyn Signer])
            .map_err(|e| malformed(&e))?;
        Ok(String::from_utf8_lossy(&note.to_bytes()).into_owned())
    }
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// A checkpoint whose log signature verified.
#[derive(Debug, PartialEq)]
pub struct OpenedCheckpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// The note's text (the checkpoint body), which cosignatures sign.
    pub text: String,
    /// The cosignatures of the given witnesses that verified.
    pub witnesses: Vec<VerifiedCosignature>,
}

/// A witness's cosignature that verified, as its signature line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCosignature {
    pub name: String,
    pub key_id: u32,
    /// When the witness says it cosigned (seconds since the epoch).
    pub timestamp: u64,
    /// `— name base64(...)` and a newline, rebuilt from the verified signature.
    pub line: String,
}

/// Opens a signed checkpoint: the log key (`verifier_key`) must have signed it. Cosignatures of
/// the given witnesses are checked too (a bad one is an error); others are ignored.
pub fn open_checkpoint(
    signed: &str,
    verifier_key: &str,
    witnesses: &[CosignatureVerifier],
) -> Result<OpenedCheckpoint, NoteError> {
    let log = StandardVerifier::new(verifier_key)
        .map_err(|e| NoteError::KeyFile("(log key)".into(), e.to_string()))?;
    let (log_name, log_id) = (log.name().to_owned(), log.key_id());
    let mut list: Vec<Box<dyn Verifier>> = vec![Box::new(log)];
    list.extend(
        witnesses
            .iter()
            .map(|w| Box::new(w.clone()) as Box<dyn Verifier>),
    );
    let note =
        Note::from_bytes(signed.as_bytes()).map_err(|e| NoteError::Malformed(e.to_string()))?;
    let (verified, _unknown) = note
        .verify(&VerifierList::new(list))
        .map_err(|_| NoteError::NotSigned(verifier_key.to_owned()))?;
    let is_log = |s: &signed_note::Signature| s.name() == log_name && s.id() == log_id;
    if !verified.iter().any(is_log) {
        return Err(NoteError::NotSigned(verifier_key.to_owned()));
    }
    let checkpoint =
        Checkpoint::from_bytes(note.text()).map_err(|e| NoteError::Malformed(e.to_string()))?;
    if checkpoint.origin() != log_name {
        return Err(NoteError::Origin {
            expected: log_name,
            found: checkpoint.origin().to_owned(),
        });
    }
    Ok(OpenedCheckpoint {
        origin: checkpoint.origin().to_owned(),
        size: checkpoint.size(),
        root: *checkpoint.hash(),
        text: String::from_utf8_lossy(note.text()).into_owned(),
        witnesses: verified
            .iter()
            .filter(|s| !is_log(s))
            .map(|s| VerifiedCosignature {
                name: s.name().to_owned(),
                key_id: s.id(),
                timestamp: CosignatureVerifier::timestamp(s.signature()).unwrap_or(0),
                line: String::from_utf8_lossy(&s.to_bytes()).into_owned(),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_signed_checkpoint_when_opened_with_the_log_key_then_size_and_root_come_back() {
        let (key, _) = LogKey::generate("example.org/log").unwrap();
        let root = tlog_tiles::record_hash(b"x");
        let signed = key.sign(5, root).unwrap();
        assert!(signed.starts_with("example.org/log\n5\n"));
        let opened = open_checkpoint(&signed, key.verifier_key(), &[]).unwrap();
        assert_eq!((opened.size, opened.root), (5, root));
    }

    #[test]
    fn given_a_changed_size_or_another_key_when_opened_then_it_is_refused() {
        let (key, _) = LogKey::generate("example.org/log").unwrap();
        let (other, _) = LogKey::generate("example.org/log").unwrap();
        let signed = key.sign(5, tlog_tiles::record_hash(b"x")).unwrap();
        let forged = signed.replacen("\n5\n", "\n6\n", 1);
        assert!(matches!(
            open_checkpoint(&forged, key.verifier_key(), &[]),
            Err(NoteError::NotSigned(_))
        ));
        assert!(open_checkpoint(&signed, other.verifier_key(), &[]).is_err());
    }

    #[test]
    fn given_a_saved_signer_key_when_loaded_then_it_signs_for_the_same_verifier_key() {
        let (key, skey) = LogKey::generate("example.org/log").unwrap();
        let again = LogKey::from_signer_key(&skey).unwrap();
        assert_eq!(again.verifier_key(), key.verifier_key());
        let signed = again.sign(1, tlog_tiles::record_hash(b"y")).unwrap();
        assert!(open_checkpoint(&signed, key.verifier_key(), &[]).is_ok());
    }
}
