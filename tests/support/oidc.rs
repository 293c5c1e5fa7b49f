//! A real OpenID provider for the sign-in tests (tests/oidc-provider: node's `oidc-provider`),
//! and a registry configured to sign people in through it.

use crate::*;
use reqwest::StatusCode;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncBufReadExt;

pub const CLIENT_ID: &str = "registry-console";
pub const CLIENT_SECRET: &str = "console-secret-for-tests";
pub const PARENT_SNILS: &str = "112-233-445 95";

pub fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc-provider")
}

/// Whether the provider can run here (Node.js and `npm ci` done in tests/oidc-provider); with
/// `REGISTRY_REQUIRE_OIDC` set (CI), a missing one fails the test instead of skipping it.
pub fn provider_available() -> bool {
    let ok = harness().join("node_modules/oidc-provider").exists()
        && std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok();
    if !ok && std::env::var_os("REGISTRY_REQUIRE_OIDC").is_some() {
        panic!("the OpenID provider cannot run: install nodejs and npm, then `npm ci` in tests/oidc-provider");
    }
    if !ok {
        eprintln!("skipped: no OpenID provider here (npm ci in tests/oidc-provider)");
    }
    ok
}

#[derive(Debug)]
pub struct Provider {
    pub url: String,
    port: u16,
    config: PathBuf,
    child: tokio::process::Child,
}

impl Provider {
    pub async fn start(port: u16, config: &Path, keys: &Path) -> Provider {
        let mut child = tokio::process::Command::new("node")
            .arg(harness().join("server.js"))
            .args(["--port", &port.to_string()])
            .arg("--config")
            .arg(config)
            .arg("--keys")
            .arg(keys)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
            .await
            .expect("the provider started")
            .unwrap()
            .unwrap_or_default();
        let url = line
            .strip_prefix("ready ")
            .expect("the provider's ready line")
            .to_string();
        Provider {
            url,
            port,
            config: config.to_path_buf(),
            child,
        }
    }

    pub async fn restart_with(mut self, keys: &Path) -> Provider {
        self.child.kill().await.unwrap();
        Provider::start(self.port, &self.config.clone(), keys).await
    }

    pub async fn tamper(&self, mode: &str) {
        let r = reqwest::Client::new()
            .post(format!("{}/__test/tamper", self.url))
            .json(&serde_json::json!({ "mode": mode }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "tamper {mode}: {}", r.status());
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `action` of the first form of a page.
pub fn form_action(page: &str) -> String {
    let start = page
        .find("action=\"")
        .unwrap_or_else(|| panic!("no form in {page}"))
        + 8;
    page[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

/// A registry that signs people in through a provider of its own, and the provider.
#[derive(Debug)]
pub struct World {
    pub app: TestApp,
    pub provider: Provider,
    pub dir: tempfile::TempDir,
}

pub async fn world() -> Option<World> {
    if !provider_available() {
        return None;
    }
    let (stores, dir) = fresh_stores(Db::Sqlite).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = dir.path().join("provider.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "clients": [{
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "redirect_uris": [format!("{base}/console/oidc/callback")],
                "post_logout_redirect_uris": [format!("{base}/console/login")]
            }],
            "accounts": {
                "officer1": {"name": "Петрова Анна Сергеевна", "roles": ["officer"], "office": "УСЗН района Арбат"},
                "auditor1": {"name": "Сидоров Пётр Ильич", "roles": ["auditor"], "office": "Контрольно-ревизионное управление"},
                "parent1": {"name": "Кузнецова Мария Ивановна", "snils": PARENT_SNILS},
                "parent2": {"name": "Кузнецова Мария Ивановна", "snils": PARENT_SNILS.replace(['-', ' '], "")},
                "plain": {"name": "Прохожий Иван"}
            }
        })
        .to_string(),
    )
    .unwrap();
    let provider = Provider::start(free_port(), &config, &dir.path().join("keys-1.json")).await;
    let oidc = registry_oidc::OidcConfig {
        issuer: provider.url.clone(),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_url: format!("{base}/console/oidc/callback"),
        post_logout_url: format!("{base}/console/login"),
        claims: registry_oidc::ClaimNames::default(),
    };
    let config = Config {
        oidc: Some(oidc),
        ..Config::default()
    };
    let mut app = spawn_on_listener(&stores, config, listener).await;
    app.dir = None;
    Some(World { app, provider, dir })
}

/// Signs `login` in through the provider's login form; the registry's answer to the callback
/// (status, final URL, page).
pub async fn through_provider(
    app: &TestApp,
    client: &reqwest::Client,
    login: &str,
) -> (StatusCode, reqwest::Url, String) {
    let login_page = client
        .get(format!("{}/console/oidc/login", app.base))
        .send()
        .await
        .unwrap();
    let at = login_page.url().clone();
    let html = login_page.text().await.unwrap();
    assert!(
        html.contains("name=\"login\""),
        "not the provider's login form: {html}"
    );
    let action = at.join(&form_action(&html)).unwrap();
    let back = client
        .post(action)
        .form(&[("login", login), ("password", "secret")])
        .send()
        .await
        .unwrap();
    let (status, url) = (back.status(), back.url().clone());
    (status, url, back.text().await.unwrap())
}
