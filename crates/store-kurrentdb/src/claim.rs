//! Idempotency keys on KurrentDB: a claim stream per key, and what a claim found there means.
//!
//! KurrentDB has no transaction across streams, so a key cannot be stored atomically with its
//! append (as SQLite and PostgreSQL do). Instead a request first claims the key, writing to the
//! key's own stream the append it is about to make (the family stream, the revision its first
//! event will get, its event ids), then appends. Whether that append landed is read from the
//! family stream itself, never from a second write: so a crash between the claim and the append,
//! or after the append, leaves nothing that needs a clean-up to be right.
//!
//! - The claimed events are at the claimed revision: the key was used; its result is theirs.
//! - Other events are there: the claimed append lost (a concurrent change); the key is free.
//! - Nothing is there yet: the append is in flight, or its process died. The key is free once
//!   the claim is older than [`CLAIM_LEASE`], which is longer than an append may take
//!   ([`crate::APPEND_DEADLINE`]). A request that failed for certain says so with `Released`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// A claim with nothing at its revision is taken to be abandoned after this long.
pub const CLAIM_LEASE: Duration = Duration::from_secs(30);

/// The events of a key's claim stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Claim {
    /// A request is about to append `event_ids` to `stream`, the first at `first_revision`
    /// (`None`: the append expects any revision, so its events are looked for in the stream).
    Claimed {
        request_hash: String,
        stream: String,
        first_revision: Option<u64>,
        event_ids: Vec<Uuid>,
        claimed_at: DateTime<Utc>,
    },
    /// The claimed append failed for certain; the key is free.
    Released,
}

/// An event of the claimed family stream, as far as a claim needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Landed {
    pub id: Uuid,
    pub revision: u64,
    pub position: u64,
}

/// What a request with the key may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The key is free: claim it over the claim stream's `revision` (`None`: no stream yet).
    Free { over: Option<u64> },
    /// The key was used: the stream, request hash, and the last event of its append.
    Used {
        stream: String,
        request_hash: String,
        last: Landed,
    },
    /// Another request holds the key and may still append.
    InProgress,
}

/// The last state of a claim stream, and its revision there.
pub type Found = Option<(Claim, u64)>;

/// Decides what the claim means, given the events of the claimed stream from the claimed
/// revision on (or all of it for a claim without one).
#[must_use]
pub fn resolve(found: &Found, landed: &[Landed], now: DateTime<Utc>) -> Resolution {
    let Some((claim, revision)) = found else {
        return Resolution::Free { over: None };
    };
    let free = Resolution::Free {
        over: Some(*revision),
    };
    let Claim::Claimed {
        request_hash,
        stream,
        first_revision,
        event_ids,
        claimed_at,
    } = claim
    else {
        return free;
    };
    let start = match first_revision {
        Some(first) => landed.iter().position(|e| e.revision == *first),
        None => landed.iter().position(|e| Some(&e.id) == event_ids.first()),
    };
    if let Some(start) = start {
        let run = &landed[start..];
        let ours = run.len() >= event_ids.len()
            && run.iter().zip(event_ids).all(|(e, id)| e.id == *id)
            && !event_ids.is_empty();
        return if ours {
            Resolution::Used {
                stream: stream.clone(),
                request_hash: request_hash.clone(),
                last: run[event_ids.len() - 1],
            }
        } else {
            // The revision went to another append: the claimed one was refused.
            free
        };
    }
    let age = now.signed_duration_since(*claimed_at);
    if age.to_std().is_ok_and(|age| age >= CLAIM_LEASE) {
        free
    } else {
        Resolution::InProgress
    }
}

/// The claim stream of a key: its SHA-256, so a key of any length and alphabet makes a stream
/// name, and the key itself is not in the log.
#[must_use]
pub fn stream_of(key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}{hex}", crate::IDEMPOTENCY_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_780_000_000 + seconds, 0).unwrap()
    }

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn claimed(first_revision: Option<u64>, ids: &[u128], when: i64) -> Found {
        Some((
            Claim::Claimed {
                request_hash: "h".into(),
                stream: "family-1".into(),
                first_revision,
                event_ids: ids.iter().copied().map(id).collect(),
                claimed_at: at(when),
            },
            4,
        ))
    }

    fn landed(events: &[(u128, u64)]) -> Vec<Landed> {
        events
            .iter()
            .map(|&(n, revision)| Landed {
                id: id(n),
                revision,
                position: 1000 + revision * 100,
            })
            .collect()
    }

    #[test]
    fn given_no_claim_stream_the_key_is_free_to_claim_as_a_new_stream() {
        assert_eq!(resolve(&None, &[], at(0)), Resolution::Free { over: None });
    }

    #[test]
    fn given_the_claimed_events_at_their_revision_the_key_was_used_and_answers_with_the_last() {
        let found = claimed(Some(3), &[7, 8], 0);
        let r = resolve(&found, &landed(&[(7, 3), (8, 4), (9, 5)]), at(1));
        assert_eq!(
            r,
            Resolution::Used {
                stream: "family-1".into(),
                request_hash: "h".into(),
                last: landed(&[(8, 4)])[0],
            }
        );
    }

    #[test]
    fn given_other_events_at_the_claimed_revision_the_append_lost_and_the_key_is_free() {
        let found = claimed(Some(3), &[7], 0);
        assert_eq!(
            resolve(&found, &landed(&[(5, 3)]), at(1)),
            Resolution::Free { over: Some(4) }
        );
    }

    #[test]
    fn given_nothing_at_the_revision_within_the_lease_another_request_may_still_append() {
        let found = claimed(Some(3), &[7], 0);
        assert_eq!(resolve(&found, &[], at(29)), Resolution::InProgress);
    }

    #[test]
    fn given_nothing_at_the_revision_after_the_lease_a_crashed_claim_frees_the_key() {
        let found = claimed(Some(3), &[7], 0);
        assert_eq!(
            resolve(&found, &[], at(30)),
            Resolution::Free { over: Some(4) }
        );
    }

    #[test]
    fn given_a_claim_without_a_revision_its_events_are_found_anywhere_in_the_stream() {
        let found = claimed(None, &[7, 8], 0);
        let r = resolve(&found, &landed(&[(1, 0), (7, 1), (8, 2)]), at(1));
        assert!(matches!(r, Resolution::Used { last, .. } if last.revision == 2));
        assert_eq!(
            resolve(&found, &landed(&[(1, 0)]), at(1)),
            Resolution::InProgress
        );
    }

    #[test]
    fn given_only_part_of_the_claimed_events_the_key_is_not_taken_as_used() {
        let found = claimed(Some(0), &[7, 8], 0);
        assert_eq!(
            resolve(&found, &landed(&[(7, 0), (9, 1)]), at(1)),
            Resolution::Free { over: Some(4) }
        );
    }

    #[test]
    fn given_a_released_claim_the_key_is_free() {
        assert_eq!(
            resolve(&Some((Claim::Released, 2)), &[], at(0)),
            Resolution::Free { over: Some(2) }
        );
    }

    #[test]
    fn a_claim_stream_name_hides_the_key_and_fits_any_key() {
        let a = stream_of("officer-1:Ключ/с пробелом");
        assert!(a.starts_with(crate::IDEMPOTENCY_PREFIX));
        assert!(!a.contains("officer"));
        assert_eq!(a.len(), crate::IDEMPOTENCY_PREFIX.len() + 64);
        assert_ne!(a, stream_of("officer-1:other"));
    }
}
