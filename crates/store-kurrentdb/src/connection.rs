//! The client, and the calls it needs help with: a follower's "not the leader", and a client
//! whose connection task has ended.
//!
//! The `kurrentdb` 1.2 client connects to the leader a follower names, but does not try the
//! call again; and when it cannot connect (a node restarting, a failover), its connection task
//! ends and every later call answers "connection closed" until a new client is made. So each
//! call here goes through [`Connection::call`], which tries again on the leader, and makes a new
//! client from the same settings when the old one has closed.

use kurrentdb::{Client, ClientSettings};
use registry_store::{StoreError, StoreResult};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

/// Tries of a call that a follower refused, or that found the client closed.
const TRIES: u32 = 4;

pub struct Connection {
    settings: ClientSettings,
    /// The client, and how many were made before it (so that calls that found one closed at
    /// the same time replace it once).
    client: Mutex<(u64, Client)>,
}

impl Connection {
    pub fn new(settings: ClientSettings) -> StoreResult<Self> {
        let client =
            Client::new(settings.clone()).map_err(|e| StoreError::Backend(e.to_string().into()))?;
        Ok(Self {
            settings,
            client: Mutex::new((0, client)),
        })
    }

    fn client(&self) -> (u64, Client) {
        let held = self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (held.0, held.1.clone())
    }

    /// A new client in place of the `generation`th, unless another call made one already.
    fn renew(&self, generation: u64) {
        let mut held = self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.0 != generation {
            return;
        }
        match Client::new(self.settings.clone()) {
            Ok(new) => *held = (generation + 1, new),
            Err(e) => tracing::warn!(error = %e, "could not make a new KurrentDB client"),
        }
    }

    /// Runs `call` with the client, again on the leader when a follower refused it, and with a
    /// new client when the old one has closed.
    pub async fn call<T, F, Fut>(&self, mut call: F) -> Result<T, kurrentdb::Error>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, kurrentdb::Error>>,
    {
        let mut tries = 1;
        loop {
            let (generation, client) = self.client();
            match call(client).await {
                Err(kurrentdb::Error::NotLeaderException(leader)) if tries < TRIES => {
                    tracing::info!(host = %leader.host, port = leader.port, "not the leader; trying again on the leader");
                }
                Err(kurrentdb::Error::ConnectionClosed) if tries < TRIES => {
                    tracing::warn!("the KurrentDB client closed; making a new one");
                    self.renew(generation);
                }
                other => return other,
            }
            tokio::time::sleep(Duration::from_millis(100 * u64::from(tries))).await;
            tries += 1;
        }
    }
}
