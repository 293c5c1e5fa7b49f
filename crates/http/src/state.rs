use crate::ratelimit::{FailedTokens, RateLimiter, FAILED_TOKENS_PAUSE};
use crate::verified_tokens::VerifiedTokens;
use crate::verify_answers::VerifyAnswers;
use registry_access::{
    AccessEntry, AccessKind, AccessRecord, MemorySessions, Role, SessionStore, TokenStore,
};
use registry_app::Registry;
use registry_credential::{issue_token, KeyRing, TokenError, VerifiedToken};
use registry_domain::{CertificateId, FamilyId};
use registry_projections::ProjectionHandle;
use registry_read_store::ReadStore;
use registry_tlog::TransparencyLog;
use std::str::FromStr;
use std::sync::{Arc, RwLock};

/// How much of the family a verifier sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Disclosure {
    /// Surname, first name and the initial of the patronymic; birth dates of children only.
    #[default]
    Standard,
    /// Full names and all birth dates.
    Full,
    /// First name and surname initial, relation, and the birth year of children.
    Minimal,
}

impl FromStr for Disclosure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "standard" => Ok(Self::Standard),
            "full" => Ok(Self::Full),
            "minimal" => Ok(Self::Minimal),
            other => Err(format!(
                "unknown disclosure level {other:?}; use standard, full or minimal"
            )),
        }
    }
}

/// Settings of the HTTP server.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Printed in QR codes: `{public_base_url}/v/{token}`, without a trailing slash.
    pub public_base_url: String,
    pub disclosure: Disclosure,
    /// Verifier requests per second per client address (0 turns the limit off), and the burst.
    pub verify_rate_per_second: u32,
    pub verify_burst: u32,
    /// Console sign-in attempts per minute per client address (a token typed in, a start at the
    /// identity provider; 0 turns the limit off), and how many may come at once.
    pub sign_in_per_minute: u32,
    pub sign_in_burst: u32,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// `/readyz` fails when the projections are further behind the log than this many events.
    pub ready_max_lag: u64,
    /// Lifetime of the app's rotating QR tokens, in seconds.
    pub live_qr_seconds: i64,
    /// Header-read and idle timeouts, and the cap on open connections.
    pub connections: crate::server::ConnectionLimits,
    /// A console session unused for this long is ended.
    pub session_idle: chrono::Duration,
    /// Days after a status ends before its family's personal data may be erased.
    pub erasure_retention_days: u32,
    /// QR tokens whose signature checked out kept in memory (0: none).
    pub verify_cache_size: usize,
    /// Encoded verify answers kept in memory (0: none; none either when the read store keeps
    /// no certificate rows).
    pub verify_answer_cache_size: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            public_base_url: "http://127.0.0.1:8080".into(),
            disclosure: Disclosure::Standard,
            verify_rate_per_second: 20,
            verify_burst: 60,
            sign_in_per_minute: 10,
            sign_in_burst: 30,
            body_limit: 64 * 1024,
            ready_max_lag: 1000,
            live_qr_seconds: 60,
            connections: crate::server::ConnectionLimits::default(),
            session_idle: chrono::Duration::minutes(30),
            // Five years after the status ended.
            erasure_retention_days: 5 * 365 + 1,
            verify_cache_size: crate::verified_tokens::DEFAULT_CAPACITY,
            verify_answer_cache_size: crate::verify_answers::DEFAULT_CAPACITY,
        }
    }
}

/// Everything a handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    read: Arc<dyn ReadStore>,
    tokens: Arc<dyn TokenStore>,
    access: Arc<dyn AccessRecord>,
    sessions: Arc<dyn SessionStore>,
    projections: ProjectionHandle,
    keys: RwLock<Arc<KeyRing>>,
    log: TransparencyLog,
    /// Sign-in through the identity provider, when configured.
    oidc: Option<Arc<registry_oidc::Oidc>>,
    pending_sign_ins: crate::console::oidc::PendingSignIns,
    /// Tokens whose signature already checked out.
    verified: VerifiedTokens,
    /// Verify answers encoded before.
    answers: VerifyAnswers,
    config: HttpConfig,
    limiter: Option<RateLimiter>,
    sign_in_limiter: Option<RateLimiter>,
    /// Unknown bearer tokens at the JSON API, counted against the sign-in limit's settings.
    failed_tokens: Option<FailedTokens>,
}

/// The read side a handler reads from: the projections' store, the access tokens, the access
/// record.
#[derive(Clone, Debug)]
pub struct ReadSide {
    pub read: Arc<dyn ReadStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub access: Arc<dyn AccessRecord>,
}

impl AppState {
    pub fn new(
        registry: Registry,
        ReadSide {
            read,
            tokens,
            access,
        }: ReadSide,
        projections: ProjectionHandle,
        keys: KeyRing,
        log: TransparencyLog,
        mut config: HttpConfig,
    ) -> Self {
        config.public_base_url = config.public_base_url.trim_end_matches('/').to_string();
        let limiter = RateLimiter::new(config.verify_rate_per_second, config.verify_burst);
        let sign_in_limiter =
            RateLimiter::per_minute(config.sign_in_per_minute, config.sign_in_burst);
        let failed_tokens =
            RateLimiter::per_minute(config.sign_in_per_minute, config.sign_in_burst)
                .map(|attempts| FailedTokens::new(attempts, FAILED_TOKENS_PAUSE));
        // An answer is kept with its row: without a row cache every row is new.
        let keeps_rows = read.cache().is_some_and(|c| c.capacity > 0);
        let answers = VerifyAnswers::new(if keeps_rows {
            config.verify_answer_cache_size
        } else {
            0
        });
        Self {
            inner: Arc::new(Inner {
                registry,
                read,
                tokens,
                access,
                sessions: Arc::new(MemorySessions::default()),
                projections,
                keys: RwLock::new(Arc::new(keys)),
                log,
                oidc: None,
                pending_sign_ins: Default::default(),
                verified: VerifiedTokens::new(config.verify_cache_size),
                answers,
                config,
                limiter,
                sign_in_limiter,
                failed_tokens,
            }),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    pub fn access(&self) -> &Arc<dyn AccessRecord> {
        &self.inner.access
    }

    /// Records that `caller` read these families' personal data, durably, before the answer is
    /// given (an official's read only: a family reading its own card is not recorded). A read
    /// that cannot be recorded is not answered.
    pub async fn record_access(
        &self,
        caller: &crate::extract::Caller,
        families: impl IntoIterator<Item = FamilyId>,
        kind: AccessKind,
    ) -> Result<(), crate::error::ApiError> {
        if !matches!(caller.role, Role::Officer | Role::Auditor) {
            return Ok(());
        }
        let at = self.registry().now();
        let entries: Vec<AccessEntry> = families
            .into_iter()
            .map(|family_id| AccessEntry {
                at,
                family_id,
                actor_id: caller.token_id,
                actor_name: caller.name.clone(),
                actor_role: caller.role,
                office: caller.office.clone(),
                kind,
            })
            .collect();
        self.inner.access.record(entries).await.map_err(|e| {
            tracing::error!(error = %e, "the access record could not be written");
            crate::error::ApiError::Unavailable(
                "the read could not be recorded in the access record; try again".into(),
            )
        })
    }

    pub fn read(&self) -> &Arc<dyn ReadStore> {
        &self.inner.read
    }

    pub fn tokens(&self) -> &Arc<dyn TokenStore> {
        &self.inner.tokens
    }

    /// The console's sessions.
    pub fn sessions(&self) -> &Arc<dyn SessionStore> {
        &self.inner.sessions
    }

    pub fn projections(&self) -> &ProjectionHandle {
        &self.inner.projections
    }

    /// Turns on sign-in through the identity provider (before the state is first cloned).
    ///
    /// # Panics
    /// When the state was cloned already: sign-in would silently stay off.
    pub fn with_oidc(mut self, oidc: Option<registry_oidc::Oidc>) -> Self {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => inner.oidc = oidc.map(Arc::new),
            None => panic!("with_oidc is called on a fresh state, before it is shared"),
        }
        self
    }

    pub fn oidc(&self) -> Option<&registry_oidc::Oidc> {
        self.inner.oidc.as_deref()
    }

    pub(crate) fn pending_sign_ins(&self) -> &crate::console::oidc::PendingSignIns {
        &self.inner.pending_sign_ins
    }

    /// The transparency log: checkpoints, proofs, cosignatures.
    pub fn log(&self) -> &TransparencyLog {
        &self.inner.log
    }

    pub fn config(&self) -> &HttpConfig {
        &self.inner.config
    }

    pub fn limiter(&self) -> Option<&RateLimiter> {
        self.inner.limiter.as_ref()
    }

    /// Whether `client` may try to sign in now.
    pub fn may_sign_in(&self, client: std::net::IpAddr) -> bool {
        self.inner
            .sign_in_limiter
            .as_ref()
            .is_none_or(|limiter| limiter.allow(client))
    }

    /// The count of unknown bearer tokens per client address (`None`: no limit).
    pub fn failed_tokens(&self) -> Option<&FailedTokens> {
        self.inner.failed_tokens.as_ref()
    }

    pub fn keys(&self) -> Arc<KeyRing> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the key ring (after a rotation on disk). Forgets verified tokens, in case a key
    /// was withdrawn.
    pub fn set_keys(&self, keys: KeyRing) {
        *self
            .inner
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(keys);
        self.inner.verified.clear();
    }

    /// Parses a QR token and checks its signature, remembering tokens that checked out.
    pub fn verify_token(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        self.inner.verified.get_or_verify(token, |token| {
            registry_credential::verify_token(self.keys().public(), token)
        })
    }

    /// The verify answers kept encoded (their figures go to `/metrics`).
    pub fn verify_answers(&self) -> &VerifyAnswers {
        &self.inner.answers
    }

    /// The verified-token cache (its figures go to `/metrics`).
    pub fn verified_tokens(&self) -> &VerifiedTokens {
        &self.inner.verified
    }

    /// The verify address printed in a certificate's QR.
    pub fn verify_url(&self, certificate: CertificateId) -> String {
        self.url_for_token(&issue_token(&self.keys(), certificate))
    }

    pub fn url_for_token(&self, token: &str) -> String {
        format!("{}/v/{token}", self.inner.config.public_base_url)
    }
}
