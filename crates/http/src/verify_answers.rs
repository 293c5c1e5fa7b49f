//! The JSON answers of `GET /api/v1/verify/{token}`, kept encoded per certificate, so a code
//! scanned again is answered by copying bytes and writing the clock: building the members'
//! names and encoding the answer were about a sixth of a warm scan's CPU.
//!
//! An answer is kept with the address of the certificate row it was made from (the row cache's
//! shared copy), the Moscow day it was made on and the kind of QR, and is used only while all
//! three are the same: a changed row (a new event, a rebuild's swap, an eviction) or a new day
//! (an expiry, a `valid_from` reached) makes a new answer. Only `checked_at` changes between
//! scans of one answer; it is written at each scan, exactly as the encoder writes it.
//!
//! Bounded (`--verify-answer-cache-size` entries, about 2 KB each resident; 0 keeps none), with
//! its size, entries, hits and misses in `/metrics` under `cache="verify_answers"`. It keeps
//! nothing when the read store keeps no rows (a shared PostgreSQL read store): every row would
//! be new.

use crate::dto::VerifyResult;
use axum::body::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use registry_domain::CertificateId;
use registry_read_store::CertificateRow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// The default number of answers kept: as many as the certificate rows the row cache keeps.
pub const DEFAULT_CAPACITY: usize = registry_read_store::CERTIFICATE_CACHE_DEFAULT;

/// An answer encoded around its `checked_at`.
#[derive(Debug)]
pub struct EncodedAnswer {
    /// The row it was made from, by address only: a `Weak` keeps the allocation (so no other
    /// row can take the address) but not the row, which the row cache alone keeps alive.
    row: Weak<CertificateRow>,
    day: NaiveDate,
    /// The answer's `state`, for the scan counter.
    pub state: &'static str,
    /// The JSON up to and including `"checked_at":`.
    head: Bytes,
    /// The JSON after the `checked_at` value.
    tail: Bytes,
}

const KEY: &[u8] = br#""checked_at":"#;

impl EncodedAnswer {
    /// Encodes `result` (whose state is `state`), made from `row` on `day`, once: the whole
    /// answer for this scan, and the answer kept for the next ones. `None` if it cannot be split
    /// at its clock (the caller then answers without keeping it).
    pub fn encode(
        row: &Arc<CertificateRow>,
        day: NaiveDate,
        state: &'static str,
        result: &VerifyResult,
    ) -> Option<(Self, Bytes)> {
        let mut json = serde_json::to_vec(result).ok()?;
        let mut clock = KEY.to_vec();
        serde_json::to_writer(&mut clock, &result.checked_at).ok()?;
        // Names and numbers are JSON strings, whose quotes are escaped: the key appears once.
        let at = json.windows(clock.len()).position(|w| w == clock)?;
        // Kept for hours: exactly its length, not the encoder's doubled capacity.
        json.shrink_to_fit();
        let json = Bytes::from(json);
        let kept = Self {
            row: Arc::downgrade(row),
            day,
            state,
            head: json.slice(..at + KEY.len()),
            tail: json.slice(at + clock.len()..),
        };
        Some((kept, json))
    }

    /// The answer as scanned at `now`.
    pub fn body(&self, now: DateTime<Utc>) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.head.len() + self.tail.len() + 40);
        body.extend_from_slice(&self.head);
        // The clock exactly as the encoder writes it (the answer without this cache).
        if !write_instant(&mut body, now) && serde_json::to_writer(&mut body, &now).is_err() {
            body.extend_from_slice(b"null");
        }
        body.extend_from_slice(&self.tail);
        body
    }
}

/// Writes `at` as a JSON string exactly as chrono's serde encoder does (RFC 3339 in UTC with
/// `Z`, the fraction of a second in 3, 6 or 9 digits as needed, none when whole), for years
/// 0–9999 without a leap second; `false` (nothing written) otherwise. The encoder goes through
/// `fmt` and serde_json's escaping: about 2,500 of a warm scan's 55,000 instructions.
fn write_instant(out: &mut Vec<u8>, at: DateTime<Utc>) -> bool {
    use chrono::{Datelike, Timelike};
    let (year, nanos) = (at.year(), at.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return false;
    }
    fn digits(out: &mut Vec<u8>, mut value: u32, width: usize) {
        let start = out.len();
        out.resize(start + width, b'0');
        for place in out[start..].iter_mut().rev() {
            *place = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    out.push(b'"');
    digits(out, year as u32, 4);
    for (separator, value) in [
        (b'-', at.month()),
        (b'-', at.day()),
        (b'T', at.hour()),
        (b':', at.minute()),
        (b':', at.second()),
    ] {
        out.push(separator);
        digits(out, value, 2);
    }
    if nanos != 0 {
        out.push(b'.');
        match (nanos % 1_000_000, nanos % 1_000) {
            (0, _) => digits(out, nanos / 1_000_000, 3),
            (_, 0) => digits(out, nanos / 1_000, 6),
            _ => digits(out, nanos, 9),
        }
    }
    out.extend_from_slice(b"Z\"");
    true
}

type Key = (CertificateId, &'static str);

fn key(row: &CertificateRow, kind: &'static str) -> Key {
    (row.token_id, kind)
}

#[derive(Debug)]
pub struct VerifyAnswers {
    /// `None` when the configured size is 0.
    cache: Option<quick_cache::sync::Cache<Key, Arc<EncodedAnswer>>>,
    /// Counted here, not by the cache: an answer kept for an older row is a miss.
    hits: AtomicU64,
    misses: AtomicU64,
}

impl VerifyAnswers {
    pub fn new(capacity: usize) -> Self {
        Self {
            cache: (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Whether answers are kept at all (a size above 0).
    pub fn keeps(&self) -> bool {
        self.cache.is_some()
    }

    /// The answer kept for this certificate and kind of QR, if it was made from this very row
    /// on this day.
    pub fn get(
        &self,
        row: &Arc<CertificateRow>,
        day: NaiveDate,
        kind: &'static str,
    ) -> Option<Arc<EncodedAnswer>> {
        let kept =
            self.cache.as_ref()?.get(&key(row, kind)).filter(|kept| {
                std::ptr::eq(kept.row.as_ptr(), Arc::as_ptr(row)) && kept.day == day
            });
        let counter = if kept.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        kept
    }

    /// Keeps `answer`, made from `row`.
    pub fn keep(&self, row: &CertificateRow, kind: &'static str, answer: Arc<EncodedAnswer>) {
        if let Some(cache) = &self.cache {
            cache.insert(key(row, kind), answer);
        }
    }

    /// The cache's figures for `/metrics`.
    pub fn figures(&self) -> registry_read_store::CacheFigures {
        let (capacity, entries) = self
            .cache
            .as_ref()
            .map_or((0, 0), |c| (c.capacity(), c.len()));
        registry_read_store::CacheFigures {
            name: "verify_answers",
            capacity,
            entries,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests;
