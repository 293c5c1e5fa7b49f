//! Helpers for the end-to-end tests: a registry started through `registry_cli::start` (the code
//! path of `registry serve`) on 127.0.0.1:0 with a fresh data directory and a manual clock, and a
//! small HTTP client over a real socket.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod browser;
pub mod oidc;

use chrono::{TimeZone, Utc};
use registry_access::TokenStoreExt;
use registry_app::{Clock, ManualClock, Role};
use registry_cli::{start, Running, ServeOptions, Stores};
use registry_domain::{FamilyId, Policy, PolicyBook};
use registry_http::{Disclosure, HttpConfig};
use reqwest::{header::HeaderMap, Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Debug)]
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub officer: String,
    pub auditor: String,
    pub clock: Arc<ManualClock>,
    pub running: Running,
    /// The data directory, when the test registry owns it.
    pub dir: Option<tempfile::TempDir>,
    pub data_dir: std::path::PathBuf,
}

/// An answer: status, headers and the body as JSON (or `Value::Null`).
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// Asserts a problem+json answer with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{}",
            self.text
        );
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert_eq!(self.body["status"], status);
        assert!(self.body["title"].is_string() && self.body["detail"].is_string());
        assert!(self.body["type"].is_string());
    }
}

#[derive(Debug)]
pub struct Config {
    pub disclosure: Disclosure,
    /// The eligibility rules (the tests' default: `federal-2024`, the preset of the earlier
    /// acceptance scenarios; `registry serve` defaults to Moscow's).
    pub policy: PolicyBook,
    pub verify_rate: u32,
    pub verify_burst: u32,
    /// Console sign-in attempts a minute per address, and at once (the tests' default: no
    /// limit, since they sign in many times from one address).
    pub sign_in_rate: u32,
    pub sign_in_burst: u32,
    pub body_limit: usize,
    /// How long a console session may stay unused.
    pub session_idle: chrono::Duration,
    /// Witnesses whose cosignatures the server keeps (cosignature verifier keys).
    pub witness_keys: Vec<String>,
    /// Sign-in through an identity provider.
    pub oidc: Option<registry_oidc::OidcConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            disclosure: Disclosure::Standard,
            policy: Policy::federal_2024().into(),
            verify_rate: 0,
            verify_burst: 0,
            sign_in_rate: 0,
            sign_in_burst: 0,
            body_limit: 64 * 1024,
            session_idle: chrono::Duration::minutes(30),
            witness_keys: Vec::new(),
            oidc: None,
        }
    }
}

pub use registry_test_support::{on_both_backends, Db};

/// The office the test officer's token names.
pub const OFFICER_OFFICE: &str = "УСЗН района Арбат";

/// A registry on `db` with the default configuration; `None` when `db` is not available here.
pub async fn spawn_app(db: Db) -> Option<TestApp> {
    spawn_app_with(db, Config::default()).await
}

/// An embedded registry whose sign-in limit (console sign-ins and unknown bearer tokens alike)
/// allows `burst` attempts from an address, then one a minute: the limit's tests run out of it at
/// once and stay out for the test's length.
pub async fn spawn_app_with_sign_in_burst(burst: u32) -> TestApp {
    spawn_app_with(
        Db::Sqlite,
        Config {
            sign_in_rate: 1,
            sign_in_burst: burst,
            ..Config::default()
        },
    )
    .await
    .expect("the embedded stores are always available")
}

pub async fn spawn_app_with(db: Db, config: Config) -> Option<TestApp> {
    let (stores, dir) = fresh_stores(db).await?;
    let mut app = spawn_on_with(&stores, config).await;
    app.dir = Some(dir);
    Some(app)
}

/// New, empty stores on `db` in a new data directory (the caller keeps both, to start a server
/// on them or to reach into their files); `None` when `db` is not available here.
pub async fn fresh_stores(db: Db) -> Option<(Stores, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let (event_store, read_store) = match db {
        Db::Sqlite => (None, None),
        Db::Postgres => (
            Some(registry_test_support::fresh_database().await?),
            Some(registry_test_support::fresh_database().await?),
        ),
    };
    let stores = Stores {
        data_dir: dir.path().to_path_buf(),
        event_store,
        read_store,
    };
    Some((stores, dir))
}

/// A registry on the given stores (the caller keeps the data directory), default configuration.
pub async fn spawn_on(stores: &Stores) -> TestApp {
    spawn_on_with(stores, Config::default()).await
}

pub async fn spawn_on_with(stores: &Stores, config: Config) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    spawn_on_listener(stores, config, listener).await
}

/// A registry on the given stores, serving on `listener` (bound by the caller, who needs its
/// address first: an identity provider must know the registry's callback before it starts).
pub async fn spawn_on_listener(
    stores: &Stores,
    config: Config,
    listener: tokio::net::TcpListener,
) -> TestApp {
    let base = format!("http://{}", listener.local_addr().unwrap());
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
    ));
    let options = ServeOptions {
        http: HttpConfig {
            public_base_url: base.clone(),
            disclosure: config.disclosure,
            verify_rate_per_second: config.verify_rate,
            verify_burst: config.verify_burst,
            sign_in_per_minute: config.sign_in_rate,
            sign_in_burst: config.sign_in_burst,
            body_limit: config.body_limit,
            session_idle: config.session_idle,
            ..HttpConfig::default()
        },
        policy: config.policy,
        demo: false,
        log: registry_cli::LogOptions {
            witness_keys: config.witness_keys.clone(),
            ..registry_cli::LogOptions::default()
        },
        oidc: config.oidc.clone(),
        certificate_cache_size: registry_cli::CERTIFICATE_CACHE_DEFAULT,
    };
    let running = start(stores, options, clock.clone(), listener)
        .await
        .unwrap();
    let read = running.state.tokens().clone();
    let now = clock.now();
    let (officer, _) = read
        .create_access_token("officer", Role::Officer, None, Some(OFFICER_OFFICE), now)
        .await
        .unwrap();
    let (auditor, _) = read
        .create_access_token(
            "auditor",
            Role::Auditor,
            None,
            Some("Контрольно-ревизионное управление"),
            now,
        )
        .await
        .unwrap();
    TestApp {
        base,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap(),
        officer,
        auditor,
        clock,
        running,
        dir: None,
        data_dir: stores.data_dir.clone(),
    }
}

impl TestApp {
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.unwrap()).await
    }

    pub async fn raw(&self, request: reqwest::RequestBuilder) -> Answer {
        answer(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }

    /// Number of events in the log.
    pub async fn event_count(&self) -> u64 {
        self.running.state.registry().store().head().await.unwrap()
    }

    /// Grants a family of two parents and three children; returns the command result.
    pub async fn grant_family(&self) -> Value {
        let answer = self
            .post("/api/v1/families", &self.officer, family_body())
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text);
        answer.body
    }

    pub async fn holder_token(&self, family: FamilyId) -> String {
        let read = self.running.state.tokens();
        read.create_access_token("holder", Role::Holder, Some(family), None, self.clock.now())
            .await
            .unwrap()
            .0
    }

    /// The path part of a verify URL.
    pub fn path_of(&self, url: &str) -> String {
        url.strip_prefix(&self.base).unwrap().to_string()
    }

    pub fn advance_days(&self, days: i64) {
        self.clock.advance(chrono::Duration::days(days));
    }

    pub fn now(&self) -> chrono::DateTime<Utc> {
        self.clock.now()
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        text,
    }
}

/// A grant body: two parents and three children (2010, 2014, 2019) on 2026-11-20.
pub fn family_body() -> Value {
    json!({
        "decision": {"number": "Р-2026/117", "date": "2026-11-20", "office": "УСЗН района Хамовники"},
        "members": [
            {"last_name": "Смирнова", "first_name": "Ольга", "middle_name": "Игоревна", "birth_date": "1986-04-12", "relation": "parent"},
            {"last_name": "Смирнов", "first_name": "Дмитрий", "middle_name": "Олегович", "birth_date": "1984-09-30", "relation": "parent"},
            {"last_name": "Смирнов", "first_name": "Кирилл", "middle_name": "Дмитриевич", "birth_date": "2010-05-01", "relation": "child"},
            {"last_name": "Смирнова", "first_name": "Алиса", "middle_name": "Дмитриевна", "birth_date": "2014-09-15", "relation": "child"},
            {"last_name": "Смирнов", "first_name": "Марк", "middle_name": "Дмитриевич", "birth_date": "2019-03-10", "relation": "child"}
        ]
    })
}

pub fn family_id_of(result: &Value) -> FamilyId {
    FamilyId(result["family_id"].as_str().unwrap().parse().unwrap())
}

pub use registry_test_support::pdf::{read_pdf, tools_present as pdf_tools_present};

// The console as a browser without JavaScript sees it (tests/console.rs, tests/access_record.rs).

/// A browser without JavaScript: cookies kept, redirects followed.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// The value of the hidden field `name` in a page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_string()
}

pub async fn sign_in(app: &TestApp, client: &reqwest::Client, token: &str) -> reqwest::Response {
    let login = client
        .get(format!("{}/console/login", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    client
        .post(format!("{}/console/login", app.base))
        .form(&[("token", token), ("csrf", &hidden(&login, "csrf"))])
        .send()
        .await
        .unwrap()
}

/// A page as that browser gets it: its status, the path it ended at (after redirects), its HTML.
pub async fn page(client: &reqwest::Client, url: String) -> (StatusCode, String, String) {
    let r = client.get(url).send().await.unwrap();
    let (status, at) = (r.status(), r.url().path().to_string());
    (status, at, r.text().await.unwrap())
}

/// The event types of a `GET …/history` answer, in order.
pub fn event_types(history: &Value) -> Vec<String> {
    history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

/// The value of the series `name` (with its labels) in a Prometheus text scrape.
pub fn metric_series(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
