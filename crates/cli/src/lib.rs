//! The composition root of the registry: the only code that chooses backends (from URLs), builds
//! the server's state, and runs it. The `registry` binary is a thin clap front end over this
//! library; the end-to-end tests start servers through [`start`] exactly as `registry serve`
//! does, on port 0 and with an injected clock.

pub mod audit;
mod demo;
pub mod offline;

use anyhow::{bail, Context};
use registry_access::{AccessRecord, TokenStore};
use registry_app::{Clock, Registry};
use registry_credential::KeyRing;
use registry_domain::PolicyBook;
use registry_http::{AppState, HttpConfig, ReadSide};
use registry_personal_data::{FileKek, SealingStore, SqliteFamilyKeys};
use registry_projections::{default_projections, ProjectionRunner};
use registry_read_store::ReadStore;
pub use registry_read_store::CERTIFICATE_CACHE_DEFAULT;
use registry_read_store_postgres::PostgresReadStore;
use registry_read_store_sqlite::SqliteReadStore;
use registry_store::EventStore;
use registry_store_kurrentdb::KurrentEventStore;
use registry_store_postgres::PostgresEventStore;
use registry_store_sqlite::SqliteEventStore;
use registry_tlog::cosign::CosignatureVerifier;
use registry_tlog::{LogBuilder, LogKey, TransparencyLog, TreeStore};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub use demo::{seed_demo, DemoData};

/// Where the registry keeps its data.
#[derive(Clone, Debug)]
pub struct Stores {
    pub data_dir: PathBuf,
    /// Event store URL; defaults to `sqlite://{data_dir}/registry.db`.
    pub event_store: Option<String>,
    /// Read store URL; defaults to `sqlite://{data_dir}/views.db`.
    pub read_store: Option<String>,
}

impl Stores {
    pub fn event_store_url(&self) -> String {
        self.event_store
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("registry.db").display()))
    }

    pub fn read_store_url(&self) -> String {
        self.read_store
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("views.db").display()))
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.data_dir.join("keys")
    }

    /// One line naming the data directory and both stores (passwords redacted), for commands
    /// to print before they use them.
    pub fn describe(&self) -> String {
        format!(
            "data directory {}; event store {}; read store {}",
            self.data_dir.display(),
            redact(&self.event_store_url()),
            redact(&self.read_store_url())
        )
    }

    /// The SQLite file of the event store, when the event store is one.
    fn sqlite_event_store_file(&self) -> Option<PathBuf> {
        let url = self.event_store_url();
        if url.contains("://") && !url.starts_with("sqlite:") {
            return None;
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(&url);
        Some(PathBuf::from(path.split('?').next().unwrap_or(path)))
    }

    /// Refuses to go on where a command would create a new, empty registry although the user
    /// surely meant an existing one: the SQLite event store is missing and so are the keys
    /// (a wrong `--data-dir`, or a command run before the first `registry serve`).
    pub fn require_existing(&self) -> anyhow::Result<()> {
        let Some(file) = self.sqlite_event_store_file() else {
            return Ok(());
        };
        if !file.exists() && !self.keys_dir().exists() {
            bail!(
                "{} holds no registry (no {} and no keys/): pass the --data-dir of an existing \
                 registry, or create one here with `registry init --data-dir {}` (or `registry \
                 serve`)",
                self.data_dir.display(),
                file.file_name().map_or_else(
                    || file.display().to_string(),
                    |n| n.to_string_lossy().into()
                ),
                self.data_dir.display()
            );
        }
        Ok(())
    }

    /// Opens the event store the URL names.
    /// Opens the event store the URL names, behind the seal of personal data (ADR 19): every
    /// family event's personal fields are sealed with the family's key on append and opened on
    /// read. The keys are in `DATA_DIR/keys` (`family-keys.db`, wrapped by `personal-data.kek`);
    /// a key-encryption key that does not match them is refused here.
    pub async fn open_event_store(&self) -> anyhow::Result<Arc<dyn EventStore>> {
        Ok(self.open_event_stores().await?.0)
    }

    /// The event store behind the seal, and the same store as stored (one connection for both).
    pub async fn open_event_stores(
        &self,
    ) -> anyhow::Result<(Arc<dyn EventStore>, Arc<dyn EventStore>)> {
        let inner = self.open_plain_event_store().await?;
        let dir = self.keys_dir();
        let keys = tokio::task::spawn_blocking(move || -> anyhow::Result<SqliteFamilyKeys> {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating the key directory {}", dir.display()))?;
            let kek = FileKek::load_or_create(&dir)?;
            Ok(SqliteFamilyKeys::open(
                &dir.join(SqliteFamilyKeys::FILE),
                Arc::new(kek),
            )?)
        })
        .await??;
        Ok((
            Arc::new(SealingStore::new(inner.clone(), Arc::new(keys))),
            inner,
        ))
    }

    /// The event store as stored: sealed personal fields stay sealed.
    pub async fn open_plain_event_store(&self) -> anyhow::Result<Arc<dyn EventStore>> {
        let url = self.event_store_url();
        let context = || format!("opening the event store {}", redact(&url));
        if url.starts_with("sqlite:") || !url.contains("://") {
            let store = SqliteEventStore::open(&url).await.with_context(context)?;
            return Ok(Arc::new(store));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let store = PostgresEventStore::open(&url).await.with_context(context)?;
            return Ok(Arc::new(store));
        }
        if registry_store_kurrentdb::accepts(&url) {
            let store = KurrentEventStore::open(&url).await.with_context(context)?;
            return Ok(Arc::new(store));
        }
        bail!(
            "unsupported event store URL {}: use sqlite:PATH, postgres://... or kurrentdb://...",
            redact(&url)
        )
    }

    /// Opens the read store the URL names, as the projections' store and as the tokens' store
    /// (one database).
    pub async fn open_read_store(&self) -> anyhow::Result<ReadStores> {
        let url = self.read_store_url();
        let context = || format!("opening the read store {}", redact(&url));
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let store = PostgresReadStore::open(&url).await.with_context(context)?;
            return Ok(ReadStores {
                read: Arc::new(store.clone()),
                tokens: Arc::new(store.clone()),
                tree: Arc::new(store.clone()),
                access: Arc::new(store),
            });
        }
        if url.starts_with("sqlite:") || !url.contains("://") {
            let store = SqliteReadStore::open(&url).await.with_context(context)?;
            return Ok(ReadStores {
                read: Arc::new(store.clone()),
                tokens: Arc::new(store.clone()),
                tree: Arc::new(store.clone()),
                access: Arc::new(store),
            });
        }
        bail!(
            "unsupported read store URL {}: use sqlite:PATH or postgres://...",
            redact(&url)
        )
    }
}

/// The read store, seen as the projections' store and as the access tokens' store.
#[derive(Clone, Debug)]
pub struct ReadStores {
    pub read: Arc<dyn ReadStore>,
    pub tokens: Arc<dyn TokenStore>,
    /// The access record (in the read store's database, beside the tokens).
    pub access: Arc<dyn AccessRecord>,
    /// The transparency log's tree (in the same database).
    pub tree: Arc<dyn TreeStore>,
}

/// A URL with its password, if any, replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Settings of `registry serve` beyond the stores.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub http: HttpConfig,
    /// The eligibility rules (a book of presets over time, or one preset).
    pub policy: PolicyBook,
    pub demo: bool,
    pub log: LogOptions,
    /// Sign-in through the city's identity provider, when configured.
    pub oidc: Option<registry_oidc::OidcConfig>,
    /// Certificate rows kept in memory for QR scans (0: none; on a read store of this process
    /// alone: see [`registry_read_store::CachedCertificates`]).
    pub certificate_cache_size: usize,
}

/// The transparency log's settings.
#[derive(Clone, Debug)]
pub struct LogOptions {
    /// The checkpoints' origin line, used when the log key is first created.
    pub origin: String,
    /// Witnesses whose cosignatures the server keeps and serves (cosignature verifier keys).
    pub witness_keys: Vec<String>,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            origin: registry_tlog::note::DEFAULT_ORIGIN.into(),
            witness_keys: Vec::new(),
        }
    }
}

/// The log key in the key directory, created on first use.
pub fn load_log_key(stores: &Stores, origin: &str) -> anyhow::Result<LogKey> {
    LogKey::load_or_create(&stores.keys_dir(), origin).context("loading the log key")
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    pub demo: Option<DemoData>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, drains open requests, stops the projection runner.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.server.await??;
        for task in self.background {
            let _ = task.await;
        }
        Ok(())
    }

    /// Resolves when the server stops on its own (it only stops when told to).
    pub async fn wait(self) -> anyhow::Result<()> {
        let Running {
            server,
            background,
            shutdown,
            ..
        } = self;
        server.await??;
        let _ = shutdown.send(true);
        for task in background {
            let _ = task.await;
        }
        Ok(())
    }

    pub fn shutdown_sender(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

async fn signal(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The read store with certificate rows cached in front of it, where this process alone applies
/// batches to it; a shared store (PostgreSQL with several servers) is read as it is, since the
/// other servers' batches would not evict the rows they change.
fn cache_certificates(read: Arc<dyn ReadStore>, capacity: usize) -> Arc<dyn ReadStore> {
    if read.shared() {
        return read;
    }
    Arc::new(registry_read_store::CachedCertificates::new(read, capacity))
}

/// Opens the stores, catches the projections up, and serves on `listener`.
pub async fn start(
    stores: &Stores,
    options: ServeOptions,
    clock: Arc<dyn Clock>,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let (store, plain) = stores.open_event_stores().await?;
    let ReadStores {
        read,
        tokens,
        access,
        tree,
    } = stores.open_read_store().await?;
    let read = cache_certificates(read, options.certificate_cache_size);
    let keys = KeyRing::load_or_create(&stores.keys_dir()).context("loading the signing keys")?;
    let witnesses = options
        .log
        .witness_keys
        .iter()
        .map(|k| CosignatureVerifier::new(k).with_context(|| format!("the witness key {k:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let log_key = Arc::new(load_log_key(stores, &options.log.origin)?);
    let oidc = match &options.oidc {
        Some(config) => Some(
            registry_oidc::Oidc::discover(config.clone())
                .await
                .with_context(|| format!("reaching the identity provider {}", config.issuer))?,
        ),
        None => None,
    };
    let log = TransparencyLog::new(
        plain.clone(),
        tree.clone(),
        log_key.verifier_key().to_owned(),
        witnesses,
    );
    if log_key.origin() != options.log.origin {
        tracing::warn!(
            key_origin = log_key.origin(),
            configured = %options.log.origin,
            "the log key was made for another origin; checkpoints keep the key's (a new origin \
             needs a new key: move keys/log-signing aside)"
        );
    }
    let builder = Arc::new(LogBuilder::new(plain, tree, log_key));
    // Before serving, so /log/checkpoint answers at once; a failure here does not keep the
    // registry from serving (the builder retries in the background).
    if let Err(e) = builder.catch_up().await {
        tracing::error!(error = %e, "the transparency log could not catch up; retrying in the background");
    }

    let runner = Arc::new(ProjectionRunner::new(
        store.clone(),
        read.clone(),
        default_projections(),
    ));
    runner
        .prepare()
        .await
        .context("preparing the projections")?;
    runner
        .catch_up()
        .await
        .context("catching the projections up")?;
    let registry = Registry::new(store.clone(), clock, options.policy.clone())
        .with_visibility(Arc::new(runner.handle()));
    let state = AppState::new(
        registry,
        ReadSide {
            read,
            tokens,
            access,
        },
        runner.handle(),
        keys,
        log,
        options.http.clone(),
    )
    .with_oidc(oidc);

    let (shutdown, rx) = watch::channel(false);
    let mut background = vec![
        tokio::spawn(runner.clone().run(signal(rx.clone()))),
        tokio::spawn(builder.run(signal(rx.clone()))),
    ];
    background.push(tokio::spawn(reload_keys(
        stores.keys_dir(),
        state.clone(),
        signal(rx.clone()),
    )));

    let demo = if options.demo {
        Some(seed_demo(&state).await.context("creating the demo data")?)
    } else {
        None
    };

    let router = registry_http::router(state.clone());
    let server = tokio::spawn(registry_http::serve_with_limits(
        listener,
        router,
        options.http.connections,
        signal(rx),
    ));
    tracing::info!(
        %addr,
        event_store = store.backend_name(),
        read_store = state.read().backend_name(),
        "registry listening"
    );
    Ok(Running {
        addr,
        state,
        demo,
        shutdown,
        server,
        background,
    })
}

/// Picks up a key rotation made by `registry keys rotate` while the server runs.
async fn reload_keys(
    dir: PathBuf,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let current = |dir: &Path| std::fs::read_to_string(dir.join("signing")).unwrap_or_default();
    let mut seen = current(&dir);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
        let now = current(&dir);
        if now != seen {
            match KeyRing::load(&dir) {
                Ok(keys) => {
                    tracing::info!(signing_key = %keys.signing_key().0, "signing keys reloaded");
                    state.set_keys(keys);
                    seen = now;
                }
                Err(e) => tracing::error!(error = %e, "could not reload the signing keys"),
            }
        }
    }
}
