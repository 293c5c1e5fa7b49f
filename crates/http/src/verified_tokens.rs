//! QR tokens whose signature already checked out, kept so a second scan of a code skips the
//! Ed25519 check (about 27 µs of a core, more than the rest of a scan together). A signature
//! never stops being valid while its key is published; a key rotation clears the cache.
//!
//! Bounded (`--verify-cache-size` entries, about 100 bytes each; 0 keeps none), with its size,
//! entries, hits and misses in `/metrics` under `cache="verified_tokens"`. A token is kept by its
//! SHA-256 (32 bytes instead of a 110-character string): finding another token with the same
//! digest, which would pass unchecked, is as hard as breaking SHA-256.

use registry_credential::VerifiedToken;
use sha2::{Digest, Sha256};

type Key = [u8; 32];

fn key(token: &str) -> Key {
    Sha256::digest(token.as_bytes()).into()
}

/// The default number of tokens kept: about 5 MB, a little over three times the rows the row
/// cache keeps. A token beyond them costs its Ed25519 check (27 µs) on top of a read of its row
/// from the store anyway; the 250 MiB memory target at 1,000,000 certificates has the room for
/// the encoded answers instead (ADR 25). 200,000 (about 20 MB) until 2026-12-04.
pub const DEFAULT_CAPACITY: usize = 50_000;

#[derive(Debug)]
pub struct VerifiedTokens {
    /// `None` when the configured size is 0.
    cache: Option<quick_cache::sync::Cache<Key, VerifiedToken>>,
}

impl VerifiedTokens {
    pub fn new(capacity: usize) -> Self {
        Self {
            cache: (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)),
        }
    }

    /// The token as verified before, or as `verify` finds it now (kept if it checks out); the
    /// token's digest is taken once either way.
    pub fn get_or_verify<E>(
        &self,
        token: &str,
        verify: impl FnOnce(&str) -> Result<VerifiedToken, E>,
    ) -> Result<VerifiedToken, E> {
        let Some(cache) = &self.cache else {
            return verify(token);
        };
        let key = key(token);
        if let Some(known) = cache.get(&key) {
            return Ok(known);
        }
        let verified = verify(token)?;
        cache.insert(key, verified);
        Ok(verified)
    }

    pub fn clear(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
    }

    /// The cache's figures for `/metrics` (taken at each scrape: nothing is counted per scan).
    pub fn figures(&self) -> registry_read_store::CacheFigures {
        let (capacity, entries, hits, misses) = self.cache.as_ref().map_or((0, 0, 0, 0), |c| {
            (c.capacity(), c.len(), c.hits(), c.misses())
        });
        registry_read_store::CacheFigures {
            name: "verified_tokens",
            capacity,
            entries,
            hits,
            misses,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry_credential::{KeyId, TokenKind};
    use registry_domain::CertificateId;

    fn token() -> VerifiedToken {
        VerifiedToken {
            certificate_id: CertificateId(uuid::Uuid::new_v4()),
            kid: KeyId([1, 2, 3, 4]),
            kind: TokenKind::Static,
        }
    }

    /// Looks `name` up, counting in `checks` each time the signature had to be checked.
    fn scan(kept: &VerifiedTokens, name: &str, checks: &std::cell::Cell<u32>) -> VerifiedToken {
        kept.get_or_verify(name, |_| {
            checks.set(checks.get() + 1);
            Ok::<_, ()>(token())
        })
        .unwrap()
    }

    #[test]
    fn a_token_once_verified_is_not_checked_again_and_a_size_of_zero_keeps_none() {
        let checks = std::cell::Cell::new(0);
        let kept = VerifiedTokens::new(10);
        let first = scan(&kept, "a", &checks);
        assert_eq!(
            scan(&kept, "a", &checks).certificate_id,
            first.certificate_id
        );
        assert_eq!(checks.get(), 1);
        scan(&kept, "b", &checks);
        assert_eq!(checks.get(), 2);

        let none = VerifiedTokens::new(0);
        scan(&none, "a", &checks);
        scan(&none, "a", &checks);
        assert_eq!(checks.get(), 4);
    }

    #[test]
    fn a_token_that_fails_its_check_is_not_kept() {
        let kept = VerifiedTokens::new(10);
        assert!(kept.get_or_verify("bad", |_| Err(())).is_err());
        let checks = std::cell::Cell::new(0);
        scan(&kept, "bad", &checks);
        assert_eq!(checks.get(), 1);
    }

    #[test]
    fn the_cache_never_holds_more_than_its_size() {
        let checks = std::cell::Cell::new(0);
        let kept = VerifiedTokens::new(100);
        for i in 0..10_000 {
            scan(&kept, &format!("token-{i}"), &checks);
        }
        let before = checks.get();
        for i in 0..10_000 {
            scan(&kept, &format!("token-{i}"), &checks);
        }
        let held = 10_000 - (checks.get() - before);
        assert!(held <= 100, "{held} tokens held by a cache of 100");
        assert!(held > 0);
    }
}
