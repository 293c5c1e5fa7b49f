//! Per-client rate limits (keyed GCRA limiters from `governor`): the verifier endpoints, and
//! sign-in attempts at the console.

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
