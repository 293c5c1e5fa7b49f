//! The KurrentDB node killed and restarted under a follower and a writer. Runs only from
//! `scripts/check-kurrentdb.sh` (it needs a node it may kill: `REGISTRY_TEST_KURRENTDB_URL`, and
//! `REGISTRY_TEST_KURRENTDB_RESTART`, a shell command that kills and restarts it).
//!
//! A writer appends one event at a time and retries an append that failed with the same event
//! (as the registry's command path would, its ids being the request's); a follower waits for
//! new events and reads `$all` from where it stopped, as the projection runner does. The node is
//! killed twice: once while the follower waits with nothing new, once while the writer appends.
//! Then every acknowledged event must be in its stream once, and the follower must have seen
//! every one of them, in order, each once.
#![allow(clippy::unwrap_used)]

use registry_store::{EventStore, ExpectedRevision, StoreError};
use registry_store_kurrentdb::KurrentEventStore;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

fn restart(command: &str) {
    eprintln!("restarting the node: {command}");
    let status = std::process::Command::new("sh")
        .args(["-c", command])
        .status()
        .unwrap();
    assert!(status.success(), "{command} failed");
}

/// Appends `event` until the store acknowledges it (or says it already has it).
async fn append_until_stored(
    store: &KurrentEventStore,
    stream: &str,
    expected: ExpectedRevision,
    event: registry_store::NewEvent,
) -> u64 {
    let mut failures = 0;
    loop {
        match store
            .append(stream, expected, vec![event.clone()], None)
            .await
        {
            Ok(r) => return r.revision,
            Err(StoreError::Backend(e)) if failures < 600 => {
                failures += 1;
                if failures % 20 == 1 {
                    eprintln!("append failed ({failures}): {e}; retrying");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("append refused: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_node_loses_no_acknowledged_event_and_the_follower_sees_each_once() {
    let (Ok(url), Ok(command)) = (
        std::env::var("REGISTRY_TEST_KURRENTDB_URL"),
        std::env::var("REGISTRY_TEST_KURRENTDB_RESTART"),
    ) else {
        eprintln!(
            "skipped: needs REGISTRY_TEST_KURRENTDB_URL and REGISTRY_TEST_KURRENTDB_RESTART \
             (run scripts/check-kurrentdb.sh)"
        );
        return;
    };
    let store = KurrentEventStore::open(&url).await.unwrap();
    let start = store.head().await.unwrap();
    let stream = format!("family-{}", Uuid::now_v7());
    let seen = Arc::new(Mutex::new(Vec::<Uuid>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let (store, seen, stop, stream) =
            (store.clone(), seen.clone(), stop.clone(), stream.clone());
        tokio::spawn(async move {
            let mut last = start;
            let mut errors = 0u32;
            while !stop.load(Ordering::SeqCst) {
                if let Err(e) = store.wait_for_events(last, Duration::from_secs(1)).await {
                    errors += 1;
                    eprintln!("follower: wait failed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                match store.read_all(last + 1, 100).await {
                    Ok(page) => {
                        for e in &page {
                            if e.stream == stream {
                                seen.lock().unwrap().push(e.event_id);
                            }
                            last = e.position;
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        eprintln!("follower: read failed: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            errors
        })
    };

    let mut acknowledged = Vec::new();
    let mut next = ExpectedRevision::NoStream;
    let write = |n: usize| registry_store_tests::event("N", serde_json::json!({ "n": n }));
    for n in 0..50 {
        let e = write(n);
        let id = e.event_id;
        let r = append_until_stored(&store, &stream, next, e).await;
        acknowledged.push(id);
        next = ExpectedRevision::Exact(r);
    }
    // The follower is waiting with nothing new: kill the node under it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    restart(&command);
    // Now under the writer: the restart runs while appends go on.
    let restarting = {
        let command = command.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            restart(&command);
        })
    };
    for n in 50..400 {
        let e = write(n);
        let id = e.event_id;
        let r = append_until_stored(&store, &stream, next, e).await;
        acknowledged.push(id);
        next = ExpectedRevision::Exact(r);
    }
    restarting.join().unwrap();

    let stored: Vec<Uuid> = store
        .read_stream(&stream, 0)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_id)
        .collect();
    assert_eq!(
        stored, acknowledged,
        "the stream is not the acknowledged appends, once each"
    );
    // The follower catches up on its own.
    for _ in 0..300 {
        if seen.lock().unwrap().len() >= acknowledged.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let errors = follower.await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let distinct: HashSet<&Uuid> = seen.iter().collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "the follower saw an event twice"
    );
    assert_eq!(
        seen, acknowledged,
        "the follower did not see every event in order"
    );
    eprintln!(
        "passed: {} events acknowledged across two restarts, each stored once and seen once in \
         order by the follower ({errors} failed reads on the way)",
        acknowledged.len()
    );
}
