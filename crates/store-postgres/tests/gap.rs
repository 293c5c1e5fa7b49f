//! The sequence-gap hammer: 16 writers (each with its own connection, as separate processes
//! would have) append while 4 readers follow `read_all`; every reader must see every committed
//! event exactly once, in increasing position.

use registry_store::{EventStore, ExpectedRevision, NewEvent};
use registry_store_postgres::PostgresEventStore;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const WRITERS: usize = 16;
const EACH: usize = 100;
const READERS: usize = 4;

fn event(writer: usize, n: usize) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "Hammered".into(),
        schema_version: 1,
        data: serde_json::json!({"writer": writer, "n": n}).to_string(),
        metadata: "{}".into(),
        recorded_at: chrono::Utc::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_skip_a_late_commit_while_sixteen_writers_append() {
    let Some(url) = registry_test_support::fresh_database().await else {
        return;
    };
    // Create the schema once before the crowd arrives.
    PostgresEventStore::open(&url).await.expect("open");
    let total = WRITERS * EACH;

    let mut readers = Vec::new();
    for _ in 0..READERS {
        let store: Arc<dyn EventStore> =
            Arc::new(PostgresEventStore::open(&url).await.expect("open"));
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(total);
            let mut next = 1;
            while seen.len() < total {
                let page = store.read_all(next, 97).await.expect("read_all");
                if page.is_empty() {
                    store
                        .wait_for_events(next - 1, Duration::from_millis(100))
                        .await
                        .expect("wait");
                    continue;
                }
                for e in page {
                    assert!(e.position >= next, "positions only increase");
                    assert_eq!(e.position, next, "no position is skipped");
                    next = e.position + 1;
                    seen.push(e.event_id);
                }
            }
            seen
        }));
    }
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = PostgresEventStore::open(&url).await.expect("open");
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(EACH);
            for n in 0..EACH {
                let e = event(w, n);
                ids.push(e.event_id);
                // Half of them to shared streams, half to the writer's own.
                let stream = if n % 2 == 0 {
                    format!("family-{}", n % 7)
                } else {
                    format!("writer-{w}")
                };
                store
                    .append(&stream, ExpectedRevision::Any, vec![e], None)
                    .await
                    .expect("append");
            }
            ids
        }));
    }
    let mut written = HashSet::new();
    for w in writers {
        written.extend(w.await.expect("writer"));
    }
    assert_eq!(written.len(), total);
    for r in readers {
        let seen = r.await.expect("reader");
        let distinct: HashSet<Uuid> = seen.iter().copied().collect();
        assert_eq!(distinct.len(), seen.len(), "no event seen twice");
        assert_eq!(distinct, written, "every committed event seen");
    }
}
