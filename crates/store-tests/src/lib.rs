//! The event-store contract suite.
//!
//! Why a crate of its own: the suite is written once against the `EventStore` trait and each
//! backend crate runs it from its own tests with [`contract_tests!`], so every backend is held to
//! exactly the same behaviour.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use chrono::{DateTime, TimeZone, Utc};
use registry_store::{ExpectedRevision, IdempotencyKey, NewEvent, RecordedEvent, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Generates one `#[tokio::test]` per contract check. `$make` is an async expression giving a
/// fresh store as `Some((Arc<dyn EventStore>, guard))`; the guard (a temporary directory) lives
/// until the test ends. `None` means the backend is not available here and the check is skipped
/// (the backend's helper says so, or fails when the backend is required). It is evaluated once
/// per test.
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@tests $make;
            appends_and_reads_a_stream,
            expected_revision_is_enforced,
            several_events_append_atomically_or_not_at_all,
            racing_appends_with_exact_revisions_lose_nothing_and_duplicate_no_revision,
            readers_of_read_all_see_every_event_once_in_increasing_position_while_writers_append,
            a_resent_event_id_is_not_stored_twice,
            a_one_mebibyte_payload_and_non_latin_text_round_trip,
            an_idempotency_key_is_kept_with_its_append,
            waiting_for_events_wakes_up_on_append,
            read_all_pages_through_the_log_in_order,
            read_all_starts_at_an_exact_position_or_just_after_one,
            lag_is_counted_in_events_not_positions,
            an_idempotency_key_whose_append_failed_can_be_used_again,
        );
    };
    (@tests $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let made: Option<(std::sync::Arc<dyn $crate::EventStore>, _)> = $make.await;
                if let Some((store, _guard)) = made {
                    $crate::$name(store).await;
                }
            }
        )+
    };
}

pub use registry_store::EventStore;

/// A fixed instant with microseconds, which every backend must keep exactly.
pub fn instant(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + seconds, 123_456_000)
        .unwrap()
}

pub fn event(kind: &str, data: serde_json::Value) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: kind.to_string(),
        schema_version: 1,
        data: data.to_string(),
        metadata: serde_json::json!({"actor": {"id": "test", "role": "officer"}}).to_string(),
        recorded_at: instant(0),
    }
}

fn unique_stream(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7())
}

pub async fn appends_and_reads_a_stream(store: Arc<dyn EventStore>) {
    let stream = unique_stream("family");
    let events = vec![
        event("A", serde_json::json!({"n": 0})),
        event("B", serde_json::json!({"n": 1})),
        event("C", serde_json::json!({"n": 2})),
    ];
    let result = store
        .append(&stream, ExpectedRevision::NoStream, events.clone(), None)
        .await
        .unwrap();
    assert_eq!(result.revision, 2);
    assert!(!result.already_stored);

    let read = store.read_stream(&stream, 0).await.unwrap();
    assert_eq!(read.len(), 3);
    for (i, (stored, sent)) in read.iter().zip(&events).enumerate() {
        assert_eq!(stored.revision, i as u64);
        assert_eq!(stored.stream, stream);
        assert_eq!(stored.event_id, sent.event_id);
        assert_eq!(stored.event_type, sent.event_type);
        assert_eq!(stored.schema_version, 1);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&stored.data).unwrap(),
            serde_json::from_str::<serde_json::Value>(&sent.data).unwrap()
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&stored.metadata).unwrap(),
            serde_json::from_str::<serde_json::Value>(&sent.metadata).unwrap()
        );
        assert_eq!(stored.recorded_at, sent.recorded_at);
    }
    assert_eq!(read[2].position, result.position);
    assert!(read[0].position < read[1].position && read[1].position < read[2].position);

    let tail = store.read_stream(&stream, 1).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.revision).collect::<Vec<_>>(), [1, 2]);
    assert!(store
        .read_stream("no-such-stream", 0)
        .await
        .unwrap()
        .is_empty());
    assert!(store.head().await.unwrap() >= result.position);
}

pub async fn expected_revision_is_enforced(store: Arc<dyn EventStore>) {
    let stream = unique_stream("family");
    match store
        .append(
            &stream,
            ExpectedRevision::Exact(0),
            vec![event("A", serde_json::json!({}))],
            None,
        )
        .await
    {
        Err(StoreError::WrongExpectedRevision { actual: None, .. }) => {}
        other => panic!("exact revision on a missing stream: {other:?}"),
    }
    store
        .append(
            &stream,
            ExpectedRevision::NoStream,
            vec![event("A", serde_json::json!({}))],
            None,
        )
        .await
        .unwrap();
    match store
        .append(
            &stream,
            ExpectedRevision::NoStream,
            vec![event("A", serde_json::json!({}))],
            None,
        )
        .await
    {
        Err(StoreError::WrongExpectedRevision {
            actual: Some(0), ..
        }) => {}
        other => panic!("no-stream on an existing stream: {other:?}"),
    }
    match store
        .append(
            &stream,
            ExpectedRevision::Exact(5),
            vec![event("A", serde_json::json!({}))],
            None,
        )
        .await
    {
        Err(StoreError::WrongExpectedRevision {
            actual: Some(0), ..
        }) => {}
        other => panic!("wrong exact revision: {other:?}"),
    }
    let r = store
        .append(
            &stream,
            ExpectedRevision::Exact(0),
            vec![event("A", serde_json::json!({}))],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.revision, 1);
    let r = store
        .append(
            &stream,
            ExpectedRevision::Any,
            vec![event("A", serde_json::json!({}))],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.revision, 2);
    assert_eq!(store.read_stream(&stream, 0).await.unwrap().len(), 3);
}

pub async fn several_events_append_atomically_or_not_at_all(store: Arc<dyn EventStore>) {
    let stream = unique_stream("family");
    // An append refused for its third event stores none; the refusal comes from an id taken in
    // another stream, so a backend that does not look across streams (KurrentDB, ADR 0008)
    // skips this half, and the server's own all-or-nothing write stands for it.
    if store.event_ids_unique_across_streams() {
        refused_for_its_third_event_stores_none(&*store, &stream).await;
    }
    let r = store
        .append(
            &stream,
            ExpectedRevision::NoStream,
            vec![
                event("A", serde_json::json!({})),
                event("B", serde_json::json!({})),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.revision, 1);
    let read = store.read_stream(&stream, 0).await.unwrap();
    // One append is contiguous in the global log: nothing lands between its events.
    let global = store.read_all(read[0].position, 2).await.unwrap();
    let ids: Vec<Uuid> = global.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, [read[0].event_id, read[1].event_id]);
}

async fn refused_for_its_third_event_stores_none(store: &dyn EventStore, stream: &str) {
    let taken = event("A", serde_json::json!({}));
    store
        .append(
            &unique_stream("other"),
            ExpectedRevision::Any,
            vec![taken.clone()],
            None,
        )
        .await
        .unwrap();
    let mut reused = event("C", serde_json::json!({}));
    reused.event_id = taken.event_id;
    let result = store
        .append(
            stream,
            ExpectedRevision::NoStream,
            vec![
                event("A", serde_json::json!({})),
                event("B", serde_json::json!({})),
                reused,
            ],
            None,
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::EventIdConflict(_))),
        "{result:?}"
    );
    assert!(store.read_stream(stream, 0).await.unwrap().is_empty());
}

pub async fn racing_appends_with_exact_revisions_lose_nothing_and_duplicate_no_revision(
    store: Arc<dyn EventStore>,
) {
    const TASKS: usize = 32;
    const EACH: usize = 5;
    let stream = unique_stream("family");
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let store = store.clone();
        let stream = stream.clone();
        handles.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for n in 0..EACH {
                loop {
                    let current = store.read_stream(&stream, 0).await.unwrap();
                    let expected = match current.last() {
                        Some(e) => ExpectedRevision::Exact(e.revision),
                        None => ExpectedRevision::NoStream,
                    };
                    let e = event("Raced", serde_json::json!({"task": task, "n": n}));
                    match store.append(&stream, expected, vec![e.clone()], None).await {
                        Ok(_) => {
                            written.push(e.event_id);
                            break;
                        }
                        Err(StoreError::WrongExpectedRevision { .. }) => continue,
                        Err(other) => panic!("append failed: {other}"),
                    }
                }
            }
            written
        }));
    }
    let mut acknowledged = HashSet::new();
    for h in handles {
        acknowledged.extend(h.await.unwrap());
    }
    assert_eq!(acknowledged.len(), TASKS * EACH);
    let stored = store.read_stream(&stream, 0).await.unwrap();
    assert_eq!(
        stored.len(),
        TASKS * EACH,
        "every acknowledged append is stored once"
    );
    let revisions: Vec<u64> = stored.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, (0..(TASKS * EACH) as u64).collect::<Vec<_>>());
    let ids: HashSet<Uuid> = stored.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, acknowledged);
}

pub async fn readers_of_read_all_see_every_event_once_in_increasing_position_while_writers_append(
    store: Arc<dyn EventStore>,
) {
    const WRITERS: usize = 8;
    const EACH: usize = 150;
    const READERS: usize = 3;
    let start = store.head().await.unwrap() + 1;
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let store = store.clone();
        readers.push(tokio::spawn(async move {
            let mut seen: Vec<RecordedEvent> = Vec::new();
            let mut next = start;
            let mut tagged = 0;
            while tagged < WRITERS * EACH {
                let page = store.read_all(next, 37).await.unwrap();
                if page.is_empty() {
                    store
                        .wait_for_events(next - 1, Duration::from_millis(200))
                        .await
                        .unwrap();
                    continue;
                }
                for e in page {
                    assert!(e.position >= next, "positions only increase");
                    next = e.position + 1;
                    if e.event_type == "Tagged" {
                        tagged += 1;
                    }
                    seen.push(e);
                }
            }
            seen
        }));
    }
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let stream = unique_stream("writer");
            let mut ids = Vec::new();
            for n in 0..EACH {
                let e = event("Tagged", serde_json::json!({"writer": w, "n": n}));
                ids.push(e.event_id);
                store
                    .append(&stream, ExpectedRevision::Any, vec![e], None)
                    .await
                    .unwrap();
            }
            ids
        }));
    }
    let mut written = HashSet::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    for r in readers {
        let seen = r.await.unwrap();
        let tagged: Vec<&RecordedEvent> =
            seen.iter().filter(|e| e.event_type == "Tagged").collect();
        let ids: HashSet<Uuid> = tagged.iter().map(|e| e.event_id).collect();
        assert_eq!(ids.len(), tagged.len(), "no event seen twice");
        assert_eq!(ids, written, "every event seen");
        assert!(seen.windows(2).all(|w| w[0].position < w[1].position));
        // Within each stream, revisions arrive in order.
        let mut last: HashMap<&str, u64> = HashMap::new();
        for e in &tagged {
            if let Some(prev) = last.insert(&e.stream, e.revision) {
                assert_eq!(e.revision, prev + 1);
            }
        }
    }
}

pub async fn a_resent_event_id_is_not_stored_twice(store: Arc<dyn EventStore>) {
    let stream = unique_stream("family");
    let first = vec![
        event("A", serde_json::json!({"n": 1})),
        event("B", serde_json::json!({})),
    ];
    let original = store
        .append(&stream, ExpectedRevision::NoStream, first.clone(), None)
        .await
        .unwrap();
    // The same append again, as a client would after a lost acknowledgement.
    let again = store
        .append(&stream, ExpectedRevision::NoStream, first.clone(), None)
        .await
        .unwrap();
    assert!(again.already_stored);
    assert_eq!(
        (again.revision, again.position),
        (original.revision, original.position)
    );
    assert_eq!(store.read_stream(&stream, 0).await.unwrap().len(), 2);
    let all = store.read_all(1, 1_000_000).await.unwrap();
    let ids: Vec<Uuid> = all
        .iter()
        .map(|e| e.event_id)
        .filter(|id| *id == first[0].event_id)
        .collect();
    assert_eq!(ids.len(), 1);

    // The same id in another stream is a conflict, not a second copy, where the backend
    // keeps ids unique across streams (KurrentDB does not: ADR 0008).
    if !store.event_ids_unique_across_streams() {
        return;
    }
    let other = store
        .append(
            &unique_stream("family"),
            ExpectedRevision::Any,
            vec![first[0].clone()],
            None,
        )
        .await;
    assert!(
        matches!(other, Err(StoreError::EventIdConflict(_))),
        "{other:?}"
    );
}

pub async fn a_one_mebibyte_payload_and_non_latin_text_round_trip(store: Arc<dyn EventStore>) {
    let stream = unique_stream("семья");
    let text = "Иванова Мария Петровна — многодетная семья; 家族; 🎉; \u{0}\u{1F}\"\\"
        .repeat(1 + (1 << 20) / 80);
    assert!(text.len() >= 1 << 20);
    let mut e = event("Большое", serde_json::json!({"text": text}));
    e.metadata =
        serde_json::json!({"actor": {"id": "Сотрудник №1", "role": "officer"}}).to_string();
    store
        .append(&stream, ExpectedRevision::NoStream, vec![e.clone()], None)
        .await
        .unwrap();
    let read = store.read_stream(&stream, 0).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].stream, stream);
    assert_eq!(read[0].event_type, "Большое");
    let data: serde_json::Value = serde_json::from_str(&read[0].data).unwrap();
    assert_eq!(data["text"].as_str().unwrap(), text);
    let meta: serde_json::Value = serde_json::from_str(&read[0].metadata).unwrap();
    assert_eq!(meta["actor"]["id"], "Сотрудник №1");
}

pub async fn an_idempotency_key_is_kept_with_its_append(store: Arc<dyn EventStore>) {
    let stream = unique_stream("family");
    let key = IdempotencyKey {
        key: format!("officer-1:{}", Uuid::now_v7()),
        request_hash: "hash-1".into(),
    };
    let first = store
        .append(
            &stream,
            ExpectedRevision::NoStream,
            vec![event("A", serde_json::json!({}))],
            Some(key.clone()),
        )
        .await
        .unwrap();
    let found = store.find_idempotency(&key.key).await.unwrap().unwrap();
    assert_eq!(found.stream, stream);
    assert_eq!(found.request_hash, "hash-1");
    assert_eq!(
        (found.revision, found.position),
        (first.revision, first.position)
    );

    // A retry with new event ids, even to another stream, is refused with the original.
    let retry = store
        .append(
            &unique_stream("family"),
            ExpectedRevision::NoStream,
            vec![event("A", serde_json::json!({}))],
            Some(IdempotencyKey {
                request_hash: "hash-2".into(),
                ..key.clone()
            }),
        )
        .await;
    match retry {
        Err(StoreError::IdempotencyKeyUsed(original)) => assert_eq!(original, found),
        other => panic!("expected the original use, got {other:?}"),
    }
    assert_eq!(store.read_stream(&stream, 0).await.unwrap().len(), 1);
    assert!(store
        .find_idempotency("never-used")
        .await
        .unwrap()
        .is_none());
}

pub async fn waiting_for_events_wakes_up_on_append(store: Arc<dyn EventStore>) {
    let head = store.head().await.unwrap();
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { store.wait_for_events(head, Duration::from_secs(30)).await })
    };
    tokio::task::yield_now().await;
    let r = store
        .append(
            &unique_stream("family"),
            ExpectedRevision::Any,
            vec![event("A", serde_json::json!({}))],
            None,
        )
        .await
        .unwrap();
    let woke_at = waiter.await.unwrap().unwrap();
    assert!(woke_at > head);
    assert!(woke_at <= r.position);
    // Nothing new: the wait ends at its timeout with the same head.
    let now = store.head().await.unwrap();
    assert_eq!(
        store
            .wait_for_events(now, Duration::from_millis(10))
            .await
            .unwrap(),
        now
    );
}

pub async fn read_all_pages_through_the_log_in_order(store: Arc<dyn EventStore>) {
    let start = store.head().await.unwrap() + 1;
    let stream = unique_stream("family");
    for n in 0..25 {
        store
            .append(
                &stream,
                ExpectedRevision::Any,
                vec![event("N", serde_json::json!({"n": n}))],
                None,
            )
            .await
            .unwrap();
    }
    let mut next = start;
    let mut pages = Vec::new();
    loop {
        let page = store.read_all(next, 10).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 10);
        next = page.last().unwrap().position + 1;
        pages.push(page);
    }
    let ns: Vec<i64> = pages
        .iter()
        .flatten()
        .filter(|e| e.stream == stream)
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.data).unwrap()["n"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(ns, (0..25).collect::<Vec<_>>());
    assert_eq!(next, store.head().await.unwrap() + 1);
}

pub async fn read_all_starts_at_an_exact_position_or_just_after_one(store: Arc<dyn EventStore>) {
    let stream = unique_stream("family");
    for n in 0..3 {
        store
            .append(
                &stream,
                ExpectedRevision::Any,
                vec![event("N", serde_json::json!({"n": n}))],
                None,
            )
            .await
            .unwrap();
    }
    let read = store.read_stream(&stream, 0).await.unwrap();
    let ids = |page: Vec<RecordedEvent>| -> Vec<Uuid> {
        page.into_iter()
            .filter(|e| e.stream == stream)
            .map(|e| e.event_id)
            .collect()
    };
    // From an event's own position: that event first.
    let exact = store.read_all(read[1].position, 10).await.unwrap();
    assert_eq!(ids(exact), [read[1].event_id, read[2].event_id]);
    // From just after an event's position (where a reader resumes): the next one first.
    let after = store.read_all(read[0].position + 1, 10).await.unwrap();
    assert_eq!(ids(after), [read[1].event_id, read[2].event_id]);
    let end = store.read_all(read[2].position + 1, 10).await.unwrap();
    assert!(ids(end).is_empty());
}

pub async fn lag_is_counted_in_events_not_positions(store: Arc<dyn EventStore>) {
    let before = store.head().await.unwrap();
    let stream = unique_stream("family");
    store
        .append(
            &stream,
            ExpectedRevision::NoStream,
            vec![
                event("A", serde_json::json!({"text": "x".repeat(500)})),
                event("B", serde_json::json!({})),
                event("C", serde_json::json!({})),
            ],
            None,
        )
        .await
        .unwrap();
    store
        .append(
            &unique_stream("family"),
            ExpectedRevision::NoStream,
            vec![
                event("D", serde_json::json!({})),
                event("E", serde_json::json!({})),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(store.count_after(before, 100).await.unwrap(), 5);
    // Counted no further than asked.
    assert_eq!(store.count_after(before, 3).await.unwrap(), 3);
    let read = store.read_stream(&stream, 0).await.unwrap();
    assert_eq!(store.count_after(read[0].position, 100).await.unwrap(), 4);
    assert_eq!(store.count_after(read[2].position, 100).await.unwrap(), 2);
    let head = store.head().await.unwrap();
    assert_eq!(store.count_after(head, 100).await.unwrap(), 0);
}

pub async fn an_idempotency_key_whose_append_failed_can_be_used_again(store: Arc<dyn EventStore>) {
    let stream = unique_stream("family");
    store
        .append(
            &stream,
            ExpectedRevision::NoStream,
            vec![event("A", serde_json::json!({}))],
            None,
        )
        .await
        .unwrap();
    let key = IdempotencyKey {
        key: format!("officer-1:{}", Uuid::now_v7()),
        request_hash: "hash-1".into(),
    };
    // A request decided against a stale revision: refused, and the key stays unused.
    let stale = store
        .append(
            &stream,
            ExpectedRevision::NoStream,
            vec![event("B", serde_json::json!({}))],
            Some(key.clone()),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::WrongExpectedRevision { .. })),
        "{stale:?}"
    );
    assert!(store.find_idempotency(&key.key).await.unwrap().is_none());
    // Its retry, decided again, is stored with the key.
    let retried = store
        .append(
            &stream,
            ExpectedRevision::Exact(0),
            vec![event("B", serde_json::json!({}))],
            Some(key.clone()),
        )
        .await
        .unwrap();
    let found = store.find_idempotency(&key.key).await.unwrap().unwrap();
    assert_eq!(
        (found.stream.as_str(), found.revision, found.position),
        (stream.as_str(), retried.revision, retried.position)
    );
}
