use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use zeroize::Zeroizing;

/// A key id: the first four bytes of the SHA-256 of the public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 4]);

impl KeyId {
    pub fn of(key: &VerifyingKey) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        Self([digest[0], digest[1], digest[2], digest[3]])
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 8 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 4];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.to_hex())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Whether a key signs new QRs or only verifies old ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// The current signing key.
    Active,
    /// A former signing key: QRs it signed still verify.
    Retired,
}

/// One published key, as in `/.well-known/registry-keys.json` (JWK, RFC 8037).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub kid: String,
    pub kty: String,
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    pub status: KeyStatus,
}

/// The verification side: every published key by id. What an offline checker holds.
#[derive(Clone, Debug, Default)]
pub struct PublicKeys {
    keys: BTreeMap<KeyId, (VerifyingKey, KeyStatus)>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("key file {0} is not a valid Ed25519 key")]
    Invalid(String),
    #[error("the key set is not valid JSON of the form {{\"keys\": [...]}}: {0}")]
    BadKeySet(String),
}

impl PublicKeys {
    pub fn get(&self, kid: KeyId) -> Option<&VerifyingKey> {
        self.keys.get(&kid).map(|(k, _)| k)
    }

    pub fn insert(&mut self, key: VerifyingKey, status: KeyStatus) -> KeyId {
        let kid = KeyId::of(&key);
        self.keys.insert(kid, (key, status));
        kid
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The published form: `{"keys": [...]}`.
    pub fn to_jwks(&self) -> serde_json::Value {
        let keys: Vec<PublicKey> = self
            .keys
            .iter()
            .map(|(kid, (key, status))| PublicKey {
                kid: kid.to_hex(),
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: URL_SAFE_NO_PAD.encode(key.as_bytes()),
                status: *status,
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Reads a published key set (the offline checker's `--keys` file). A key whose `kid` does
    /// not match its bytes is refused: a key id is not something to trust on its word.
    pub fn from_jwks(json: &str) -> Result<Self, KeyError> {
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<PublicKey>,
        }
        let set: Set =
            serde_json::from_str(json).map_err(|e| KeyError::BadKeySet(e.to_string()))?;
        let mut out = Self::default();
        for k in set.keys {
            if k.kty != "OKP" || k.crv != "Ed25519" {
                return Err(KeyError::BadKeySet(format!("key {} is not Ed25519", k.kid)));
            }
            let bytes: [u8; 32] = URL_SAFE_NO_PAD
                .decode(&k.x)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| KeyError::BadKeySet(format!("key {} has a bad x", k.kid)))?;
            let key = VerifyingKey::from_bytes(&bytes)
                .map_err(|_| KeyError::BadKeySet(format!("key {} is not a curve point", k.kid)))?;
            if KeyId::of(&key).to_hex() != k.kid {
                return Err(KeyError::BadKeySet(format!(
                    "key {} does not match its id",
                    k.kid
                )));
            }
            out.insert(key, k.status);
        }
        Ok(out)
    }
}

/// The signing key and every verification key.
#[derive(Clone)]
pub struct KeyRing {
    signing: SigningKey,
    signing_id: KeyId,
    public: PublicKeys,
}

impl fmt::Debug for KeyRing {
    // Never print the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("signing_id", &self.signing_id)
            .field("keys", &self.public.len())
            .finish_non_exhaustive()
    }
}

const SIGNING_FILE: &str = "signing";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A new key from 32 bytes of the operating system's generator (ed25519-dalek 3's `generate`
/// wants `rand_core` 0.9; ADR 26). The seed is wiped once the key holds it.
fn new_signing_key() -> SigningKey {
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut());
    SigningKey::from_bytes(&seed)
}

/// Writes `contents` to `path` through a temporary file and a rename, owner-only.
fn write_private(path: &Path, contents: &str) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(io(&tmp))?;
        file.write_all(contents.as_bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))
}

fn key_file(dir: &Path, kid: KeyId) -> std::path::PathBuf {
    dir.join(format!("ed25519-{}.key", kid.to_hex()))
}

impl KeyRing {
    /// A key ring with one fresh key, kept in memory only (tests).
    pub fn generate() -> Self {
        let signing = new_signing_key();
        let mut public = PublicKeys::default();
        let signing_id = public.insert(signing.verifying_key(), KeyStatus::Active);
        Self {
            signing,
            signing_id,
            public,
        }
    }

    pub fn signing_key(&self) -> (KeyId, &SigningKey) {
        (self.signing_id, &self.signing)
    }

    pub fn public(&self) -> &PublicKeys {
        &self.public
    }

    /// Loads the keys of `dir`, creating the directory (owner-only) and a first signing key when
    /// there is none.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        if !dir.join(SIGNING_FILE).exists() {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io(dir))?;
            }
            Self::rotate(dir)?;
        }
        Self::load(dir)
    }

    /// Loads every `ed25519-*.key` of `dir`; the one named in `dir/signing` signs.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let signing_path = dir.join(SIGNING_FILE);
        let signing_hex = std::fs::read_to_string(&signing_path).map_err(io(&signing_path))?;
        let signing_id = KeyId::from_hex(signing_hex.trim())
            .ok_or_else(|| KeyError::Invalid(signing_path.display().to_string()))?;
        let mut public = PublicKeys::default();
        let mut signing = None;
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !(name.starts_with("ed25519-") && name.ends_with(".key")) {
                continue;
            }
            // The secret's copies (the file's text, its bytes) are wiped when dropped.
            let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(io(&path))?);
            let bytes = Zeroizing::new(decode_hex(text.trim()).unwrap_or_default());
            let seed = Zeroizing::new(
                <[u8; 32]>::try_from(bytes.as_slice())
                    .map_err(|_| KeyError::Invalid(path.display().to_string()))?,
            );
            let key = SigningKey::from_bytes(&seed);
            let kid = KeyId::of(&key.verifying_key());
            let status = if kid == signing_id {
                signing = Some(key.clone());
                KeyStatus::Active
            } else {
                KeyStatus::Retired
            };
            public.insert(key.verifying_key(), status);
        }
        let signing =
            signing.ok_or_else(|| KeyError::Invalid(signing_path.display().to_string()))?;
        Ok(Self {
            signing,
            signing_id,
            public,
        })
    }

    /// Adds a new signing key to `dir`; former keys stay for verification. Returns the new id.
    pub fn rotate(dir: &Path) -> Result<KeyId, KeyError> {
        let key = new_signing_key();
        let kid = KeyId::of(&key.verifying_key());
        let mut hex = Zeroizing::new(String::with_capacity(65));
        for b in Zeroizing::new(key.to_bytes()).iter() {
            // Into the wiped string itself (its capacity never grows), not a temporary.
            let _ = std::fmt::Write::write_fmt(&mut *hex, format_args!("{b:02x}"));
        }
        hex.push('\n');
        write_private(&key_file(dir, kid), &hex)?;
        write_private(&dir.join(SIGNING_FILE), &format!("{}\n", kid.to_hex()))?;
        Ok(kid)
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_owner_only_and_rotation_keeps_old_keys_for_verification() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let first = KeyRing::load_or_create(&keys).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
            let file = key_file(&keys, first.signing_id);
            let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Loading again gives the same key.
        assert_eq!(
            KeyRing::load_or_create(&keys).unwrap().signing_id,
            first.signing_id
        );

        let second = KeyRing::rotate(&keys).unwrap();
        let ring = KeyRing::load(&keys).unwrap();
        assert_eq!(ring.signing_id, second);
        assert_eq!(ring.public.len(), 2);
        let jwks = ring.public.to_jwks();
        let statuses: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses.iter().filter(|s| **s == "active").count(), 1);
        assert_eq!(statuses.iter().filter(|s| **s == "retired").count(), 1);
        let reread = PublicKeys::from_jwks(&jwks.to_string()).unwrap();
        assert!(reread.get(first.signing_id).is_some());
        assert!(format!("{ring:?}").len() < 100, "no secret in Debug");
    }

    #[test]
    fn a_key_set_whose_kid_does_not_match_its_key_is_refused() {
        let ring = KeyRing::generate();
        let mut jwks = ring.public.to_jwks();
        jwks["keys"][0]["kid"] = "00000000".into();
        assert!(PublicKeys::from_jwks(&jwks.to_string()).is_err());
    }
}
