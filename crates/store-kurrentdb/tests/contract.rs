//! The event-store contract against KurrentDB, and the idempotency claims a crash leaves
//! behind. No KurrentDB server can run on the CI machines, so these run only when
//! `REGISTRY_TEST_KURRENTDB_URL` is set: `scripts/check-kurrentdb.sh` starts the compose node
//! and runs them. All tests share one server, and some count the events after a position, so
//! they run on one test thread:
//!
//! ```sh
//! REGISTRY_TEST_KURRENTDB_URL='kurrentdb://localhost:2113?tls=false' \
//!     cargo test -p registry-store-kurrentdb --test contract -- --test-threads=1
//! ```

#![allow(clippy::unwrap_used)]

use registry_store_kurrentdb::KurrentEventStore;
use std::io::Write;
use std::sync::{Arc, Once};

static SKIPPED: Once = Once::new();

async fn fresh() -> Option<(Arc<dyn registry_store_tests::EventStore>, ())> {
    let Ok(url) = std::env::var("REGISTRY_TEST_KURRENTDB_URL") else {
        SKIPPED.call_once(|| {
            // Straight to the terminal: the test harness captures eprintln!.
            let _ = writeln!(
                std::io::stderr(),
                "skipped: the KurrentDB contract tests need REGISTRY_TEST_KURRENTDB_URL \
                 (start one with `docker compose up -d kurrentdb`; see README)"
            );
        });
        return None;
    };
    // Streams are unique per test (the suite names them with fresh ids), so one server serves all.
    let store = KurrentEventStore::open(&url)
        .await
        .expect("connect to KurrentDB");
    Some((Arc::new(store), ()))
}

registry_store_tests::contract_tests!(fresh());

/// The claims of idempotency keys after a crash, written straight to the server the way a
/// process that died half-way would have left them.
mod claims_after_a_crash {
    use super::*;
    use chrono::Utc;
    use kurrentdb::{AppendToStreamOptions, Client, EventData, StreamState};
    use registry_store::{EventStore, ExpectedRevision, IdempotencyKey, StoreError};
    use registry_store_kurrentdb::claim::{stream_of, Append, Claim, CLAIM_LEASE};
    use uuid::Uuid;

    fn client() -> Option<(Client, String)> {
        let url = std::env::var("REGISTRY_TEST_KURRENTDB_URL").ok()?;
        let client = Client::new(url.parse().expect("URL")).expect("client");
        Some((client, url))
    }

    async fn leave_claim(client: &Client, key: &str, claim: &Claim) {
        client
            .append_to_stream(
                stream_of(key),
                &AppendToStreamOptions::default().stream_state(StreamState::Any),
                EventData::json("IdempotencyClaim", claim).unwrap(),
            )
            .await
            .unwrap();
    }

    fn claimed(stream: &str, ids: Vec<Uuid>, age: std::time::Duration) -> Claim {
        Claim::Claimed {
            append: Append {
                request_hash: "hash-1".into(),
                stream: stream.into(),
                first_revision: Some(0),
                event_ids: ids,
            },
            claimed_at: Utc::now() - chrono::Duration::from_std(age).unwrap(),
        }
    }

    fn key() -> IdempotencyKey {
        IdempotencyKey {
            key: format!("officer-1:{}", Uuid::now_v7()),
            request_hash: "hash-1".into(),
        }
    }

    fn event() -> registry_store::NewEvent {
        registry_store_tests::event("A", serde_json::json!({}))
    }

    #[tokio::test]
    async fn a_claim_left_by_a_crash_before_its_append_frees_the_key_after_the_lease() {
        let Some((client, url)) = client() else {
            return;
        };
        let store = KurrentEventStore::open(&url).await.unwrap();
        let stream = format!("family-{}", Uuid::now_v7());
        let key = key();
        leave_claim(
            &client,
            &key.key,
            &claimed(&stream, vec![Uuid::now_v7()], CLAIM_LEASE * 2),
        )
        .await;
        assert!(store.find_idempotency(&key.key).await.unwrap().is_none());
        let done = store
            .append(
                &stream,
                ExpectedRevision::NoStream,
                vec![event()],
                Some(key.clone()),
            )
            .await
            .unwrap();
        let found = store.find_idempotency(&key.key).await.unwrap().unwrap();
        assert_eq!(
            (found.revision, found.position),
            (done.revision, done.position)
        );
    }

    #[tokio::test]
    async fn a_claim_left_within_its_lease_says_in_progress() {
        let Some((client, url)) = client() else {
            return;
        };
        let store = KurrentEventStore::open(&url).await.unwrap();
        let stream = format!("family-{}", Uuid::now_v7());
        let key = key();
        leave_claim(
            &client,
            &key.key,
            &claimed(&stream, vec![Uuid::now_v7()], std::time::Duration::ZERO),
        )
        .await;
        let r = store
            .append(
                &stream,
                ExpectedRevision::NoStream,
                vec![event()],
                Some(key),
            )
            .await;
        assert!(
            matches!(&r, Err(StoreError::Backend(m)) if m.to_string().contains("in progress")),
            "{r:?}"
        );
        assert!(store.read_stream(&stream, 0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_claim_whose_append_landed_before_the_crash_answers_with_that_append() {
        let Some((client, url)) = client() else {
            return;
        };
        let store = KurrentEventStore::open(&url).await.unwrap();
        let stream = format!("family-{}", Uuid::now_v7());
        let key = key();
        let first = event();
        leave_claim(
            &client,
            &key.key,
            &claimed(&stream, vec![first.event_id], std::time::Duration::ZERO),
        )
        .await;
        // The append landed; the process died before it could say so.
        let landed = store
            .append(&stream, ExpectedRevision::NoStream, vec![first], None)
            .await
            .unwrap();
        let found = store.find_idempotency(&key.key).await.unwrap().unwrap();
        assert_eq!(
            (found.revision, found.position),
            (landed.revision, landed.position)
        );
        let retry = store
            .append(
                &format!("family-{}", Uuid::now_v7()),
                ExpectedRevision::NoStream,
                vec![event()],
                Some(key),
            )
            .await;
        assert!(
            matches!(&retry, Err(StoreError::IdempotencyKeyUsed(o)) if *o == found),
            "{retry:?}"
        );
    }
}
