//! Sessions of people signed in to the console: a random session id in an HttpOnly cookie, only
//! its SHA-256 kept; a CSRF token per session; an idle expiry.
//!
//! The store is a trait so that a shared one (in the read store's database) can replace the
//! process-local [`MemorySessions`]; an identity provider's sign-in (issue 16) starts the same
//! kind of session. A session is bound to the access token it was started with: revoking the
//! token ends the session at its next request.

use crate::{token_hash, Role};
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use registry_domain::FamilyId;
use std::collections::HashMap;
use std::sync::Mutex;
use uuid::Uuid;

/// Sessions one token (one person) may have at once; a new one ends the oldest.
pub const SESSIONS_PER_TOKEN: usize = 8;

/// What a session knows about the person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The access token (or, later, the identity) the session was started with.
    pub token_id: Uuid,
    /// The hash of that token: each request checks the token is still live.
    pub token_hash: String,
    pub role: Role,
    pub family_id: Option<FamilyId>,
    /// The name shown in the console and recorded as the actor's name.
    pub name: String,
    /// Every form of this session carries it.
    pub csrf: String,
    pub last_seen: DateTime<Utc>,
    /// Set when the person signed in through the identity provider rather than with a token:
    /// such a session is bound to no token (`token_hash` is empty) and ends with a logout at the
    /// provider too.
    pub provider: Option<ProviderSignIn>,
}

/// What a session started by the identity provider keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderSignIn {
    /// The ID token the session was started with: the logout request names it.
    pub id_token: String,
    /// The office the ID token named (officers and auditors).
    pub office: Option<String>,
    /// When the session ends however busy it is (its roles came from a token of that time).
    pub ends_at: DateTime<Utc>,
}

/// A new random secret: 256 bits, URL-safe base64.
pub fn new_secret() -> String {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    URL_SAFE_NO_PAD.encode(secret)
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where sessions are kept, by the hash of their id.
#[async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug + 'static {
    /// Starts a session for `session` and returns its id (shown once, in the cookie). Sessions
    /// idle for longer than `idle` may be dropped meanwhile, and a token keeps at most
    /// [`SESSIONS_PER_TOKEN`] sessions (its oldest goes).
    async fn start(&self, session: Session, idle: Duration) -> String;

    /// The session with this id if it was used within `idle` of `now`; marks it used at `now`.
    /// A session idle for longer is ended.
    async fn touch(&self, id: &str, now: DateTime<Utc>, idle: Duration) -> Option<Session>;

    /// Ends the session with this id (logout).
    async fn end(&self, id: &str);
}

/// Sessions in this process's memory: a restart signs everyone out.
#[derive(Debug, Default)]
pub struct MemorySessions {
    by_hash: Mutex<HashMap<String, Session>>,
}

impl MemorySessions {
    /// Sessions kept (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The hashes under which sessions are kept (a test checks no id is stored in the clear).
    pub fn stored_keys(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn start(&self, session: Session, idle: Duration) -> String {
        let id = new_secret();
        let mut sessions = self.lock();
        // Sessions ended by idleness are dropped as new ones start, so the map holds at most the
        // sessions of one idle period, and each token at most `SESSIONS_PER_TOKEN` of them.
        let now = session.last_seen;
        sessions.retain(|_, s| now - s.last_seen <= idle);
        let mut same: Vec<(String, DateTime<Utc>)> = sessions
            .iter()
            .filter(|(_, s)| s.token_id == session.token_id)
            .map(|(k, s)| (k.clone(), s.last_seen))
            .collect();
        if same.len() >= SESSIONS_PER_TOKEN {
            same.sort_by_key(|(_, seen)| *seen);
            for (key, _) in same.iter().take(same.len() + 1 - SESSIONS_PER_TOKEN) {
                sessions.remove(key);
            }
        }
        sessions.insert(token_hash(&id), session);
        id
    }

    async fn touch(&self, id: &str, now: DateTime<Utc>, idle: Duration) -> Option<Session> {
        let key = token_hash(id);
        let mut sessions = self.lock();
        let session = sessions.get_mut(&key)?;
        if now - session.last_seen > idle {
            sessions.remove(&key);
            return None;
        }
        session.last_seen = now;
        Some(session.clone())
    }

    async fn end(&self, id: &str) {
        self.lock().remove(&token_hash(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(at: DateTime<Utc>) -> Session {
        Session {
            token_id: Uuid::now_v7(),
            token_hash: token_hash("rgt_x"),
            role: Role::Officer,
            family_id: None,
            name: "Иванова А. П.".into(),
            csrf: new_secret(),
            last_seen: at,
            provider: None,
        }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default() + Duration::minutes(minutes)
    }

    #[tokio::test]
    async fn given_a_session_when_used_within_the_idle_time_then_it_goes_on() {
        let store = MemorySessions::default();
        let id = store.start(session(at(0)), Duration::minutes(30)).await;
        assert!(store
            .touch(&id, at(29), Duration::minutes(30))
            .await
            .is_some());
        // Each use moves the idle clock.
        assert!(store
            .touch(&id, at(58), Duration::minutes(30))
            .await
            .is_some());
    }

    #[tokio::test]
    async fn given_a_session_when_idle_too_long_then_it_is_ended() {
        let store = MemorySessions::default();
        let id = store.start(session(at(0)), Duration::minutes(30)).await;
        assert!(store
            .touch(&id, at(31), Duration::minutes(30))
            .await
            .is_none());
        assert!(store
            .touch(&id, at(31), Duration::minutes(30))
            .await
            .is_none());
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn given_a_session_when_logged_out_then_its_id_finds_nothing() {
        let store = MemorySessions::default();
        let id = store.start(session(at(0)), Duration::minutes(30)).await;
        store.end(&id).await;
        assert!(store
            .touch(&id, at(1), Duration::minutes(30))
            .await
            .is_none());
    }

    #[tokio::test]
    async fn the_session_id_is_stored_only_as_its_hash() {
        let store = MemorySessions::default();
        let id = store.start(session(at(0)), Duration::minutes(30)).await;
        let keys = store.stored_keys();
        assert_eq!(keys, vec![token_hash(&id)]);
        assert!(!keys.contains(&id));
    }

    #[tokio::test]
    async fn given_many_sign_ins_with_one_token_then_only_the_newest_sessions_stay() {
        let store = MemorySessions::default();
        let one = session(at(0));
        let mut ids = Vec::new();
        for i in 0..20 {
            let mut s = one.clone();
            s.last_seen = at(0) + Duration::seconds(i);
            ids.push(store.start(s, Duration::minutes(30)).await);
        }
        assert_eq!(store.len(), SESSIONS_PER_TOKEN);
        let idle = Duration::minutes(30);
        assert!(
            store.touch(&ids[0], at(1), idle).await.is_none(),
            "the oldest went"
        );
        assert!(
            store.touch(&ids[19], at(1), idle).await.is_some(),
            "the newest stays"
        );
    }

    #[tokio::test]
    async fn given_idle_sessions_when_a_new_one_starts_then_they_are_dropped() {
        let store = MemorySessions::default();
        store.start(session(at(0)), Duration::minutes(30)).await;
        store.start(session(at(31)), Duration::minutes(30)).await;
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        let a = new_secret();
        assert!(same_secret(&a, &a.clone()));
        assert!(!same_secret(&a, &new_secret()));
        assert!(!same_secret(&a, ""));
    }
}
