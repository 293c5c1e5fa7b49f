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
//!   the claim is older than [`CLAIM_LEASE`]; a request sends its append only while its claim
//!   is younger than [`SEND_BEFORE`], and the append's deadline ([`crate::APPEND_DEADLINE`])
//!   ends within the lease. A request refused for certain says so with `Released`, which names
//!   the same append, so that even a wrong release cannot hide an append that landed.
//!
//! The claim's age is told by the clocks of the registry's servers (the claiming and the
//! resolving one): they must agree to within seconds, as NTP keeps them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use uuid::Uuid;

/// A claim with nothing at its revision is taken to be abandoned after this long.
pub const CLAIM_LEASE: Duration = Duration::from_secs(30);

/// A request whose claim is older than this (its reads were slow) does not send its append:
/// the lease minus the append's deadline, minus a margin for the servers' clocks.
pub const SEND_BEFORE: Duration = Duration::from_secs(15);

/// The append a claim is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Append {
    pub request_hash: String,
    pub stream: String,
    /// The revision its first event gets (`None`: the append expects any revision, so its
    /// events are looked for in the whole stream).
    #[serde(default)]
    pub first_revision: Option<u64>,
    #[serde(default)]
    pub event_ids: Vec<Uuid>,
}

/// The events of a key's claim stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Claim {
    /// A request is about to make this append. (A claim of the first version of this adapter
    /// has no revision, ids or time: it reads as long abandoned.)
    Claimed {
        #[serde(flatten)]
        append: Append,
        #[serde(default)]
        claimed_at: DateTime<Utc>,
    },
    /// The claimed append was refused for certain; the key is free unless it landed after all.
    Released {
        #[serde(flatten)]
        append: Append,
    },
    /// The first version of this adapter wrote the result after the append.
    Completed {
        request_hash: String,
        stream: String,
        revision: u64,
        position: u64,
    },
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
    let (append, claimed_at) = match claim {
        Claim::Claimed { append, claimed_at } => (append, Some(claimed_at)),
        Claim::Released { append } => (append, None),
        Claim::Completed {
            request_hash,
            stream,
            revision,
            position,
        } => {
            return Resolution::Used {
                stream: stream.clone(),
                request_hash: request_hash.clone(),
                last: Landed {
                    id: Uuid::nil(),
                    revision: *revision,
                    position: *position,
                },
            }
        }
    };
    let Append {
        request_hash,
        stream,
        first_revision,
        event_ids,
    } = append;
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
    let Some(claimed_at) = claimed_at else {
        return free; // released, and not there
    };
    if age(*claimed_at, now) >= CLAIM_LEASE {
        free
    } else {
        Resolution::InProgress
    }
}

/// How long ago `then` was (zero if it is ahead of `now`).
#[must_use]
pub fn age(then: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    now.signed_duration_since(then).to_std().unwrap_or_default()
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

    fn append(first_revision: Option<u64>, ids: &[u128]) -> Append {
        Append {
            request_hash: "h".into(),
            stream: "family-1".into(),
            first_revision,
            event_ids: ids.iter().copied().map(id).collect(),
        }
    }

    fn claimed(first_revision: Option<u64>, ids: &[u128], when: i64) -> Found {
        Some((
            Claim::Claimed {
                append: append(first_revision, ids),
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
    fn given_a_released_claim_the_key_is_free_at_once() {
        let released = Some((
            Claim::Released {
                append: append(Some(3), &[7]),
            },
            2,
        ));
        assert_eq!(
            resolve(&released, &[], at(0)),
            Resolution::Free { over: Some(2) }
        );
    }

    #[test]
    fn given_a_released_claim_whose_append_landed_after_all_the_key_was_used() {
        let released = Some((
            Claim::Released {
                append: append(Some(3), &[7]),
            },
            2,
        ));
        assert!(matches!(
            resolve(&released, &landed(&[(7, 3)]), at(0)),
            Resolution::Used { last, .. } if last.revision == 3
        ));
    }

    #[test]
    fn given_the_first_versions_claims_a_completed_one_was_used_and_a_bare_one_lapsed() {
        let completed: Claim = serde_json::from_str(
            r#"{"state":"completed","request_hash":"h","stream":"family-1","revision":4,"position":900}"#,
        )
        .unwrap();
        assert!(matches!(
            resolve(&Some((completed, 1)), &[], at(0)),
            Resolution::Used { last, .. } if last.revision == 4 && last.position == 900
        ));
        let bare: Claim =
            serde_json::from_str(r#"{"state":"claimed","request_hash":"h","stream":"family-1"}"#)
                .unwrap();
        assert_eq!(
            resolve(&Some((bare, 0)), &[], at(0)),
            Resolution::Free { over: Some(0) }
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
