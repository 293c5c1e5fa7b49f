//! The event-store contract against KurrentDB. No KurrentDB server can run on the CI machines,
//! so these run only when `REGISTRY_TEST_KURRENTDB_URL` is set, for example after
//! `docker compose up -d kurrentdb`:
//!
//! ```sh
//! REGISTRY_TEST_KURRENTDB_URL='kurrentdb://localhost:2113?tls=false' \
//!     cargo test -p registry-store-kurrentdb
//! ```

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
