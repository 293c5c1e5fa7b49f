//! Signing in through the city's identity provider: an OpenID Connect relying party.
//!
//! Why a crate of its own: the protocol (discovery, the authorization request with PKCE S256,
//! `state` and `nonce`, the code exchange, the ID token's signature, `iss`, `aud`, `exp` and
//! `nonce`, the provider's key rotation, RP-initiated logout) is the `openidconnect` crate's; this
//! crate only configures it and turns a verified ID token into who the person is, by claim names
//! the deployment chooses. The console decides what a person may do (crates/http).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, LogoutRequest, Nonce,
    PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout,
    RedirectUrl, Scope, TokenResponse,
};
use std::sync::RwLock;

/// Where the provider is and how the registry is registered with it.
#[derive(Clone)]
pub struct OidcConfig {
    /// The issuer URL (discovery at `{issuer}/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// The registry's callback, as registered: `{public_base_url}/console/oidc/callback`.
    pub redirect_url: String,
    /// Where the provider sends the browser after logout, as registered.
    pub post_logout_url: String,
    pub claims: ClaimNames,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

/// Which claims say what (configurable: providers name them differently).
#[derive(Clone, Debug)]
pub struct ClaimNames {
    /// A string or an array of strings naming the person's roles or groups.
    pub roles: String,
    /// The value of `roles` that makes an officer, and the one that makes an auditor.
    pub officer: String,
    pub auditor: String,
    pub name: String,
    pub office: String,
    pub snils: String,
    /// A claim that must be `true` for the СНИЛС claim to be trusted (the provider checked it
    /// against the Pension Fund), when the provider lets people edit their profile; `None` trusts
    /// the provider's СНИЛС as it comes (mos.ru's accounts carry a confirmed one).
    pub snils_verified: Option<String>,
    /// Scopes asked for beside `openid` (space-separated).
    pub scopes: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            roles: "roles".into(),
            officer: "officer".into(),
            auditor: "auditor".into(),
            name: "name".into(),
            office: "office".into(),
            snils: "snils".into(),
            snils_verified: None,
            scopes: "profile registry".into(),
        }
    }
}

/// What the registry keeps between sending the browser to the provider and its return.
#[derive(Debug)]
pub struct Pending {
    /// The `state` sent; the callback must bring back the same.
    pub state: String,
    nonce: String,
    pkce_verifier: String,
}

/// A staff role the ID token gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaffRole {
    Officer,
    Auditor,
}

/// Who signed in, from an ID token whose signature, issuer, audience, expiry and nonce held.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub issuer: String,
    pub subject: String,
    pub name: String,
    pub staff: Option<StaffRole>,
    pub office: Option<String>,
    pub snils: Option<String>,
    /// The ID token itself: the logout request names it (`id_token_hint`).
    pub id_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the identity provider could not be reached or described itself wrongly: {0}")]
    Discovery(String),
    #[error("the identity provider refused the code: {0}")]
    Exchange(String),
    #[error("the identity provider sent no ID token")]
    NoIdToken,
    #[error("the ID token does not hold: {0}")]
    Rejected(String),
    #[error("misconfigured: {0}")]
    Config(String),
}

#[derive(Debug)]
pub struct Oidc {
    config: OidcConfig,
    http: reqwest::Client,
    metadata: RwLock<ProviderMetadataWithLogout>,
}

fn http_client() -> Result<reqwest::Client, OidcError> {
    reqwest::Client::builder()
        // Following redirects would let a provider's answer point the server elsewhere (SSRF).
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| OidcError::Config(e.to_string()))
}

impl Oidc {
    /// Reads the provider's metadata and keys.
    pub async fn discover(config: OidcConfig) -> Result<Self, OidcError> {
        let http = http_client()?;
        let metadata = Self::fetch(&config, &http).await?;
        Ok(Self {
            config,
            http,
            metadata: RwLock::new(metadata),
        })
    }

    async fn fetch(
        config: &OidcConfig,
        http: &reqwest::Client,
    ) -> Result<ProviderMetadataWithLogout, OidcError> {
        let issuer = IssuerUrl::new(config.issuer.clone())
            .map_err(|e| OidcError::Config(format!("issuer URL: {e}")))?;
        ProviderMetadataWithLogout::discover_async(issuer, http)
            .await
            .map_err(|e| OidcError::Discovery(e.to_string()))
    }

    fn metadata(&self) -> ProviderMetadataWithLogout {
        self.metadata
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn client(&self, metadata: ProviderMetadataWithLogout) -> Result<RegistryClient, OidcError> {
        let redirect = RedirectUrl::new(self.config.redirect_url.clone())
            .map_err(|e| OidcError::Config(format!("redirect URL: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }

    /// The provider's authorization URL for a new sign-in, and what to keep until it returns.
    pub fn start(&self) -> Result<(url::Url, Pending), OidcError> {
        let client = self.client(self.metadata())?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.config.claims.scopes.split_whitespace() {
            request = request.add_scope(Scope::new(scope.to_owned()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok((
            url,
            Pending {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
            },
        ))
    }

    /// Exchanges the code and checks the ID token; on a key the registry does not know yet (the
    /// provider rotated its keys), reads the provider's keys again and checks once more.
    pub async fn finish(&self, code: &str, pending: Pending) -> Result<SignedIn, OidcError> {
        let client = self.client(self.metadata())?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Config(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Exchange(e.to_string()))?;
        let id_token = response.id_token().ok_or(OidcError::NoIdToken)?.clone();
        let nonce = Nonce::new(pending.nonce);
        let checked = id_token
            .claims(&verifier(&client), &nonce)
            .map(|c| (c.issuer().to_string(), c.subject().to_string()));
        let (issuer, subject) = match checked {
            Ok(ok) => ok,
            Err(openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            )) => {
                tracing::info!(
                    "the ID token names a key not seen yet; reading the provider's keys again"
                );
                let fresh = Self::fetch(&self.config, &self.http).await?;
                *self
                    .metadata
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh.clone();
                let client = self.client(fresh)?;
                let checker = verifier(&client);
                let again = id_token
                    .claims(&checker, &nonce)
                    .map(|c| (c.issuer().to_string(), c.subject().to_string()))
                    .map_err(|e| OidcError::Rejected(e.to_string()));
                again?
            }
            Err(e) => return Err(OidcError::Rejected(e.to_string())),
        };
        let raw = id_token.to_string();
        let claims = payload(&raw)?;
        let names = &self.config.claims;
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let roles: Vec<String> = match claims.get(&names.roles) {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        let staff = if roles.contains(&names.officer) {
            Some(StaffRole::Officer)
        } else if roles.contains(&names.auditor) {
            Some(StaffRole::Auditor)
        } else {
            None
        };
        let snils_trusted = names
            .snils_verified
            .as_deref()
            .is_none_or(|flag| claims.get(flag).and_then(serde_json::Value::as_bool) == Some(true));
        let snils = match claims.get(&names.snils) {
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => text(&names.snils),
        }
        .filter(|_| snils_trusted);
        Ok(SignedIn {
            issuer,
            name: text(&names.name).unwrap_or_else(|| subject.clone()),
            subject,
            staff,
            office: text(&names.office),
            snils,
            id_token: raw,
        })
    }

    /// The provider's logout URL, when it offers one. It names the client, not the ID token: the
    /// URL lands in the browser's history and the provider's logs, and an ID token holds the
    /// person's name and СНИЛС.
    pub fn logout_url(&self) -> Option<url::Url> {
        let metadata = self.metadata();
        let end = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut request =
            LogoutRequest::from(end).set_client_id(ClientId::new(self.config.client_id.clone()));
        if let Ok(back) = PostLogoutRedirectUrl::new(self.config.post_logout_url.clone()) {
            request = request.set_post_logout_redirect_uri(back);
        }
        Some(request.http_get_url())
    }
}

type RegistryClient = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The ID token verifier, held to asymmetric signatures: a provider's metadata may list HS256,
/// whose key would be the client secret the registry shares with it.
fn verifier(client: &RegistryClient) -> openidconnect::core::CoreIdTokenVerifier<'_> {
    use openidconnect::core::CoreJwsSigningAlgorithm as Alg;
    client.id_token_verifier().set_allowed_algs([
        Alg::RsaSsaPkcs1V15Sha256,
        Alg::RsaSsaPkcs1V15Sha384,
        Alg::RsaSsaPkcs1V15Sha512,
        Alg::RsaSsaPssSha256,
        Alg::EcdsaP256Sha256,
        Alg::EcdsaP384Sha384,
        Alg::EdDsa,
    ])
}

/// The payload of a JWT whose signature was already checked.
fn payload(jwt: &str) -> Result<serde_json::Map<String, serde_json::Value>, OidcError> {
    let part = jwt
        .split('.')
        .nth(1)
        .ok_or_else(|| OidcError::Rejected("not a JWT".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| OidcError::Rejected(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| OidcError::Rejected(e.to_string()))
}
