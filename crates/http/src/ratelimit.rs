//! Per-client rate limits (keyed GCRA limiters from `governor`): the verifier endpoints, sign-in
//! attempts at the console, and unknown bearer tokens at the JSON API.

use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;

#[derive(Debug)]
pub struct RateLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl RateLimiter {
    /// `None` when `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
        Some(Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        })
    }

    /// `None` when `per_minute` is 0 (no limit): `burst` attempts at once, then one every
    /// `60 / per_minute` seconds.
    pub fn per_minute(per_minute: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_minute)?;
        let burst = NonZeroU32::new(burst.max(per_minute)).unwrap_or(rate);
        Some(Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst)),
        })
    }

    pub fn allow(&self, client: IpAddr) -> bool {
        let allowed = self.limiter.check_key(&client).is_ok();
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        allowed
    }
}

/// How long an address that used up its attempts with unknown bearer tokens is refused.
pub const FAILED_TOKENS_PAUSE: std::time::Duration = std::time::Duration::from_secs(60);

/// Most addresses kept as refused at once; past it, the lapsed ones are forgotten first.
const MOST_REFUSED: usize = 100_000;

/// Unknown bearer tokens, per client address: each one presented takes an attempt from the
/// address's sign-in limit; an address with none left is refused for [`FAILED_TOKENS_PAUSE`],
/// and meanwhile no token it sends is looked up. Known tokens take nothing, so a busy client
/// with a good token is never slowed.
#[derive(Debug)]
pub struct FailedTokens {
    attempts: RateLimiter,
    /// How long an address out of attempts is refused ([`FAILED_TOKENS_PAUSE`] in the server).
    pause: std::time::Duration,
    refused: std::sync::Mutex<std::collections::HashMap<IpAddr, std::time::Instant>>,
    /// Entries of `refused`: while it is 0, as it nearly always is, a request with a token takes
    /// no lock here.
    refusing: std::sync::atomic::AtomicUsize,
}

impl FailedTokens {
    pub fn new(attempts: RateLimiter, pause: std::time::Duration) -> Self {
        Self {
            attempts,
            pause,
            refused: Default::default(),
            refusing: Default::default(),
        }
    }

    /// Whether `client` is being refused now.
    pub fn refuses(&self, client: IpAddr) -> bool {
        use std::sync::atomic::Ordering;
        if self.refusing.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        let Some(until) = refused.get(&client) else {
            return false;
        };
        if *until > std::time::Instant::now() {
            return true;
        }
        // The pause is over: forgotten, so that the map empties and the check is free again.
        refused.remove(&client);
        self.refusing.store(refused.len(), Ordering::Relaxed);
        false
    }

    /// Counts an unknown token from `client`; `true` when that used up its last attempt (it is
    /// refused from now on, for a while).
    pub fn failed(&self, client: IpAddr) -> bool {
        if self.attempts.allow(client) {
            return false;
        }
        let now = std::time::Instant::now();
        let mut refused = self.refused.lock().unwrap_or_else(|p| p.into_inner());
        if refused.len() >= MOST_REFUSED {
            refused.retain(|_, until| *until > now);
        }
        if refused.len() < MOST_REFUSED {
            refused.insert(client, now + self.pause);
        }
        self.refusing
            .store(refused.len(), std::sync::atomic::Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_address_out_of_attempts_when_it_sends_tokens_then_it_alone_is_refused() {
        let failed = FailedTokens::new(RateLimiter::per_minute(1, 3).unwrap(), FAILED_TOKENS_PAUSE);
        let guesser: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(!failed.refuses(guesser));
        assert!((0..3).all(|_| !failed.failed(guesser)));
        assert!(!failed.refuses(guesser));
        assert!(failed.failed(guesser));
        assert!(failed.refuses(guesser));
        assert!(!failed.refuses(other));
        assert!(!failed.failed(other));
    }

    #[test]
    fn given_a_pause_that_is_over_when_the_address_sends_a_token_then_it_is_forgotten() {
        let failed = FailedTokens::new(
            RateLimiter::per_minute(1, 1).unwrap(),
            std::time::Duration::ZERO,
        );
        let guesser: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(!failed.failed(guesser));
        assert!(failed.failed(guesser));
        assert_eq!(
            failed.refusing.load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert!(!failed.refuses(guesser));
        assert_eq!(
            failed.refusing.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }
}
