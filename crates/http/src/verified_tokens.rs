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

/// The default number of tokens kept: about 25 MB, and more than Moscow's 240,000 families
/// show in a day.
pub const DEFAULT_CAPACITY: usize = 200_000;

#[derive(Debug)]
pub struct VerifiedTokens {
    cache: Option<quick_cache::sync::Cache<Key, VerifiedToken>>,
    capacity: usize,
}

impl VerifiedTokens {
    pub fn new(capacity: usize) -> Self {
        Self {
            cache: (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)),
            capacity,
        }
    }

    pub fn get(&self, token: &str) -> Option<VerifiedToken> {
        self.cache.as_ref()?.get(&key(token))
    }

    pub fn insert(&self, token: &str, verified: VerifiedToken) {
        if let Some(cache) = &self.cache {
            cache.insert(key(token), verified);
        }
    }

    pub fn clear(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
    }

    /// Sets the cache's figures in the metrics (at each scrape: nothing is counted per scan).
    #[allow(clippy::cast_precision_loss)]
    pub fn report(&self) {
        let (entries, hits, misses) = self
            .cache
            .as_ref()
            .map_or((0, 0, 0), |c| (c.len(), c.hits(), c.misses()));
        metrics::gauge!("cache_capacity_entries", "cache" => "verified_tokens")
            .set(self.capacity as f64);
        metrics::gauge!("cache_entries", "cache" => "verified_tokens").set(entries as f64);
        metrics::counter!("cache_hits_total", "cache" => "verified_tokens").absolute(hits);
        metrics::counter!("cache_misses_total", "cache" => "verified_tokens").absolute(misses);
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

    #[test]
    fn a_token_once_verified_is_found_again_and_a_size_of_zero_keeps_none() {
        let kept = VerifiedTokens::new(10);
        let t = token();
        kept.insert("a", t);
        assert_eq!(
            kept.get("a").map(|v| v.certificate_id),
            Some(t.certificate_id)
        );
        assert!(kept.get("b").is_none());

        let none = VerifiedTokens::new(0);
        none.insert("a", t);
        assert!(none.get("a").is_none());
    }

    #[test]
    fn the_cache_never_holds_more_than_its_size() {
        let kept = VerifiedTokens::new(100);
        for i in 0..10_000 {
            kept.insert(&format!("token-{i}"), token());
        }
        let held = (0..10_000)
            .filter(|i| kept.get(&format!("token-{i}")).is_some())
            .count();
        assert!(held <= 100, "{held} tokens held by a cache of 100");
        assert!(held > 0);
    }
}
