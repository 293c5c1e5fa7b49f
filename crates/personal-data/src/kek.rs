//! Data keys, and the key-encryption key that wraps them.

use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{AeadCore, XChaCha20Poly1305, XNonce};
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, ZeroizeOnDrop};

const NONCE: usize = 24;

/// A 256-bit key: a family's data key, or the key-encryption key. Zeroed when dropped, never
/// printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(…)")
    }
}

impl DataKey {
    pub fn generate() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        Self(key.into())
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `nonce ‖ ciphertext` of `plain`, bound to `aad`. The nonce is random (192 bits).
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        // Encryption of a message in memory cannot fail for this AEAD.
        out.extend(
            cipher
                .encrypt(&nonce, Payload { msg: plain, aad })
                .unwrap_or_default(),
        );
        out
    }

    /// The plaintext of [`DataKey::seal`]'s output, if this key sealed it with this `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE);
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {0} does not hold a 32-byte key")]
    BadKeyFile(PathBuf),
    #[error(
        "the key-encryption key does not open the family keys in {0}: the key file was replaced \
         or belongs to another data directory (restore the matching key file)"
    )]
    WrongKek(PathBuf),
    #[error("a wrapped family key could not be opened: {0}")]
    Unwrap(String),
    #[error("family key store: {0}")]
    Backend(String),
}

/// Wraps and unwraps data keys. A file today ([`FileKek`]); a KMS or an HSM implements the
/// same two calls.
pub trait KeyEncryptionKey: Send + Sync + fmt::Debug + 'static {
    fn wrap(&self, key: &DataKey, aad: &[u8]) -> Vec<u8>;
    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Option<DataKey>;
}

/// A key-encryption key in an owner-only file (`data/keys/personal-data.kek`), like the
/// signing keys.
#[derive(Debug)]
pub struct FileKek {
    key: DataKey,
}

impl FileKek {
    pub const FILE: &'static str = "personal-data.kek";

    /// Loads `dir/personal-data.kek`, or creates it (mode 0600) when the directory has none.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(Self::FILE);
        let io = |source| KeyError::File {
            path: path.clone(),
            source,
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key = DataKey::from_bytes(&bytes).ok_or(KeyError::BadKeyFile(path.clone()))?;
                Ok(Self { key })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(dir).map_err(io)?;
                let key = DataKey::generate();
                write_private(&path, key.as_bytes()).map_err(io)?;
                Ok(Self { key })
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn from_key(key: DataKey) -> Self {
        Self { key }
    }
}

impl KeyEncryptionKey for FileKek {
    fn wrap(&self, key: &DataKey, aad: &[u8]) -> Vec<u8> {
        self.key.seal(key.as_bytes(), aad)
    }

    fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Option<DataKey> {
        let mut plain = self.key.open(wrapped, aad)?;
        let key = DataKey::from_bytes(&plain);
        plain.zeroize();
        key
    }
}

/// Writes a new file readable by its owner only, durably.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_sealed_message_when_opened_with_another_key_or_context_then_nothing_comes_out() {
        let key = DataKey::generate();
        let sealed = key.seal("Иванова".as_bytes(), b"event/0");
        assert_eq!(
            key.open(&sealed, b"event/0").as_deref(),
            Some("Иванова".as_bytes())
        );
        assert!(
            key.open(&sealed, b"event/1").is_none(),
            "bound to its context"
        );
        assert!(DataKey::generate().open(&sealed, b"event/0").is_none());
        assert!(!sealed
            .windows("Иванова".len())
            .any(|w| w == "Иванова".as_bytes()));
    }

    #[test]
    fn given_no_key_file_when_loaded_twice_then_the_same_owner_only_key_wraps_and_unwraps() {
        let dir = tempfile::tempdir().unwrap();
        let first = FileKek::load_or_create(dir.path()).unwrap();
        let again = FileKek::load_or_create(dir.path()).unwrap();
        let family = DataKey::generate();
        let wrapped = first.wrap(&family, b"f");
        assert_eq!(
            again.unwrap(&wrapped, b"f").unwrap().as_bytes(),
            family.as_bytes()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(FileKek::FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
