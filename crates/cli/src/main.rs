//! `registry`: the large-family certificate registry.

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use registry_access::TokenStoreExt;
use registry_app::{Role, SystemClock};
use registry_cli::{offline, start, ServeOptions, Stores};
use registry_credential::KeyRing;
use registry_domain::{FamilyId, Policy, PolicyBook};
use registry_http::server::ConnectionLimits;
use registry_http::{Disclosure, HttpConfig};
use registry_projections::{default_projections, ProjectionRunner};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// mimalloc instead of the system allocator: projections and the JSON API allocate many small
/// strings, and glibc's malloc spent a fifth of a rebuild's time on them (docs/adr/0010).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "registry",
    version,
    about = "The large-family certificate registry (реестр многодетных семей)"
)]
struct Cli {
    #[command(flatten)]
    stores: StoreArgs,
    #[command(subcommand)]
    command: Commands,
}

#[derive(Args, Debug)]
struct StoreArgs {
    /// Directory of the embedded databases and the signing keys.
    #[arg(
        long,
        global = true,
        env = "REGISTRY_DATA_DIR",
        default_value = "./data"
    )]
    data_dir: PathBuf,
    /// Event store URL: sqlite:PATH, postgres://... or kurrentdb://... (default:
    /// DATA_DIR/registry.db).
    #[arg(long, global = true, env = "REGISTRY_EVENT_STORE")]
    event_store: Option<String>,
    /// Read store URL: sqlite:PATH or postgres://... (default: DATA_DIR/views.db).
    #[arg(long, global = true, env = "REGISTRY_READ_STORE")]
    read_store: Option<String>,
}

impl StoreArgs {
    fn stores(&self) -> Stores {
        Stores {
            data_dir: self.data_dir.clone(),
            event_store: self.event_store.clone(),
            read_store: self.read_store.clone(),
        }
    }
}

#[derive(Subcommand, Debug)]
enum Commands {
    /// Run the HTTP server (creates the stores and keys on first start).
    Serve(Box<ServeArgs>),
    /// Create the stores and the signing keys in the data directory, without serving.
    Init,
    /// Manage API access tokens.
    #[command(subcommand)]
    Tokens(TokenCommand),
    /// Manage the QR signing keys.
    #[command(subcommand)]
    Keys(KeyCommand),
    /// Inspect and rebuild the projections.
    #[command(subcommand)]
    Projections(ProjectionCommand),
    /// Check offline that a QR was issued by this registry.
    Verify(VerifyArgs),
    /// Certificate documents.
    #[command(subcommand)]
    Certificate(CertificateCommand),
    /// Check the transparency log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Recompute the log's tree from the stored events and check the tree store, every signed
    /// checkpoint and, given one, the checkpoint kept from an earlier audit; exits non-zero
    /// naming the first position that differs.
    Verify {
        /// A checkpoint kept from an earlier audit: checked when the file exists, and replaced
        /// by the newest checkpoint when the audit passes.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The log's public key (as served at /log/key); default: derived from the data
        /// directory's log key.
        #[arg(long, env = "REGISTRY_LOG_KEY")]
        log_key: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum CertificateCommand {
    /// Write a family's certificate PDF (the same document holders download).
    Pdf {
        family_id: uuid::Uuid,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        /// Base of the verify URL printed in the QR (as given to `serve`).
        #[arg(
            long,
            env = "REGISTRY_PUBLIC_BASE_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        public_base_url: String,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "REGISTRY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Base of the verify URLs printed in QR codes (default: http://LISTEN).
    #[arg(long, env = "REGISTRY_PUBLIC_BASE_URL")]
    public_base_url: Option<String>,
    /// On an empty registry, create a sample family; always print new demo tokens.
    #[arg(long, env = "REGISTRY_DEMO")]
    demo: bool,
    /// Eligibility rules: `moscow` (Moscow's presets by decision date; today law No. 60 in its
    /// 2008 wording), `federal` (Decree No. 63), or one preset for every date.
    #[arg(long, env = "REGISTRY_POLICY", default_value = "moscow",
        value_parser = clap::builder::PossibleValuesParser::new(Policy::PRESET_NAMES))]
    policy: String,
    /// How much a verifier sees.
    #[arg(long, env = "REGISTRY_DISCLOSURE", default_value = "standard",
        value_parser = clap::builder::PossibleValuesParser::new(["standard", "full", "minimal"]))]
    disclosure: String,
    /// Verifier requests per second per client address (0: no limit).
    #[arg(long, env = "REGISTRY_VERIFY_RATE_LIMIT", default_value_t = 20)]
    verify_rate_limit: u32,
    /// Verifier burst per client address.
    #[arg(long, env = "REGISTRY_VERIFY_BURST", default_value_t = 60)]
    verify_burst: u32,
    /// Console sign-in attempts per minute per client address (0: no limit).
    #[arg(long, env = "REGISTRY_SIGN_IN_RATE_LIMIT", default_value_t = 10)]
    sign_in_rate_limit: u32,
    /// Console sign-in attempts at once per client address.
    #[arg(long, env = "REGISTRY_SIGN_IN_BURST", default_value_t = 30)]
    sign_in_burst: u32,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "REGISTRY_BODY_LIMIT", default_value_t = 64 * 1024)]
    body_limit: usize,
    /// Lifetime of the app's rotating QR, in seconds.
    #[arg(long, env = "REGISTRY_LIVE_QR_SECONDS", default_value_t = 60)]
    live_qr_seconds: i64,
    /// Most open HTTP connections (default: 4096, or fewer to stay under the open-file limit).
    #[arg(long, env = "REGISTRY_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "REGISTRY_HEADER_READ_TIMEOUT", default_value_t = 10)]
    header_read_timeout: u64,
    /// Seconds a connection may stay open with no request before it is closed.
    #[arg(long, env = "REGISTRY_IDLE_TIMEOUT", default_value_t = 5)]
    idle_timeout: u64,
    /// Minutes a console session may stay unused before it ends.
    #[arg(long, env = "REGISTRY_SESSION_IDLE_MINUTES", default_value_t = 30)]
    session_idle_minutes: i64,
    /// Days after a family's status ended before its personal data may be erased (default: five
    /// years).
    #[arg(long, env = "REGISTRY_ERASURE_RETENTION_DAYS", default_value_t = 5 * 365 + 1)]
    erasure_retention_days: u32,
    /// QR tokens whose signature checked out kept in memory, about 100 bytes each (0: none).
    #[arg(long, env = "REGISTRY_VERIFY_CACHE_SIZE", default_value_t = registry_http::VERIFY_CACHE_DEFAULT)]
    verify_cache_size: usize,
    /// Verify answers kept encoded for codes scanned again, about 2 KB each (0: none; none
    /// either without the certificate cache).
    #[arg(long, env = "REGISTRY_VERIFY_ANSWER_CACHE_SIZE", default_value_t = registry_http::VERIFY_ANSWER_CACHE_DEFAULT)]
    verify_answer_cache_size: usize,
    /// Certificate rows kept in memory for QR scans, about 3 KB each (0: none; not on a
    /// shared PostgreSQL read store).
    #[arg(long, env = "REGISTRY_CERTIFICATE_CACHE_SIZE", default_value_t = registry_read_store::CERTIFICATE_CACHE_DEFAULT)]
    certificate_cache_size: usize,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "REGISTRY_LOG_JSON")]
    log_json: bool,
    /// The transparency log's origin line, used when its key is first created.
    #[arg(long, env = "REGISTRY_LOG_ORIGIN", default_value = registry_tlog::note::DEFAULT_ORIGIN)]
    log_origin: String,
    /// A witness whose cosignatures the server keeps and serves with the checkpoint: its
    /// C2SP tlog-cosignature verifier key (`name+keyid+base64`); repeat, or separate by commas.
    #[arg(
        long = "log-witness-key",
        env = "REGISTRY_LOG_WITNESS_KEYS",
        value_delimiter = ','
    )]
    log_witness_keys: Vec<String>,
    #[command(flatten)]
    oidc: OidcArgs,
}

/// Sign-in through the city's identity provider (OpenID Connect); off unless the issuer is set.
#[derive(Args, Debug)]
struct OidcArgs {
    /// The provider's issuer URL (discovery at ISSUER/.well-known/openid-configuration).
    #[arg(long, env = "REGISTRY_OIDC_ISSUER")]
    oidc_issuer: Option<String>,
    #[arg(long, env = "REGISTRY_OIDC_CLIENT_ID")]
    oidc_client_id: Option<String>,
    #[arg(long, env = "REGISTRY_OIDC_CLIENT_SECRET", hide_env_values = true)]
    oidc_client_secret: Option<String>,
    /// The callback registered with the provider (default: PUBLIC_BASE_URL/console/oidc/callback).
    #[arg(long, env = "REGISTRY_OIDC_REDIRECT_URL")]
    oidc_redirect_url: Option<String>,
    /// The claim naming the person's roles or groups (a string or an array).
    #[arg(long, env = "REGISTRY_OIDC_ROLES_CLAIM", default_value = "roles")]
    oidc_roles_claim: String,
    /// The role value that makes an officer.
    #[arg(long, env = "REGISTRY_OIDC_OFFICER_ROLE", default_value = "officer")]
    oidc_officer_role: String,
    /// The role value that makes an auditor.
    #[arg(long, env = "REGISTRY_OIDC_AUDITOR_ROLE", default_value = "auditor")]
    oidc_auditor_role: String,
    #[arg(long, env = "REGISTRY_OIDC_NAME_CLAIM", default_value = "name")]
    oidc_name_claim: String,
    #[arg(long, env = "REGISTRY_OIDC_OFFICE_CLAIM", default_value = "office")]
    oidc_office_claim: String,
    #[arg(long, env = "REGISTRY_OIDC_SNILS_CLAIM", default_value = "snils")]
    oidc_snils_claim: String,
    /// A claim that must be `true` before the СНИЛС claim is trusted (for providers whose users
    /// can edit it); unset trusts the provider's СНИЛС.
    #[arg(long, env = "REGISTRY_OIDC_SNILS_VERIFIED_CLAIM")]
    oidc_snils_verified_claim: Option<String>,
    /// Scopes asked for beside `openid`.
    #[arg(long, env = "REGISTRY_OIDC_SCOPES", default_value = "profile registry")]
    oidc_scopes: String,
}

impl OidcArgs {
    fn config(&self, public_base_url: &str) -> anyhow::Result<Option<registry_oidc::OidcConfig>> {
        let Some(issuer) = self.oidc_issuer.clone() else {
            return Ok(None);
        };
        let (Some(client_id), Some(client_secret)) =
            (self.oidc_client_id.clone(), self.oidc_client_secret.clone())
        else {
            bail!(
                "--oidc-issuer needs --oidc-client-id and --oidc-client-secret (or \
                 REGISTRY_OIDC_CLIENT_ID and REGISTRY_OIDC_CLIENT_SECRET)"
            );
        };
        let base = public_base_url.trim_end_matches('/');
        Ok(Some(registry_oidc::OidcConfig {
            issuer,
            client_id,
            client_secret,
            redirect_url: self
                .oidc_redirect_url
                .clone()
                .unwrap_or_else(|| format!("{base}/console/oidc/callback")),
            post_logout_url: format!("{base}/console/login"),
            claims: registry_oidc::ClaimNames {
                roles: self.oidc_roles_claim.clone(),
                officer: self.oidc_officer_role.clone(),
                auditor: self.oidc_auditor_role.clone(),
                name: self.oidc_name_claim.clone(),
                office: self.oidc_office_claim.clone(),
                snils: self.oidc_snils_claim.clone(),
                snils_verified: self.oidc_snils_verified_claim.clone(),
                scopes: self.oidc_scopes.clone(),
            },
        }))
    }
}

async fn audit_verify(
    stores: &Stores,
    kept: Option<&std::path::Path>,
    log_key: Option<&str>,
) -> anyhow::Result<()> {
    stores.require_existing()?;
    let key = registry_cli::audit::log_verifier_key(stores, log_key)?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("auditing [{bar:40}] {pos} events ({per_sec}, {elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let outcome = registry_cli::audit::audit(stores, &key, kept, &|n| {
        bar.set_length(n);
        bar.set_position(n);
    })
    .await?;
    bar.finish_and_clear();
    let report = match outcome {
        Ok(report) => report,
        Err(registry_tlog::audit::AuditError::Found(finding)) => {
            bail!("the log was altered: {finding}")
        }
        Err(e) => return Err(e.into()),
    };
    println!(
        "ok: {} events hash to root {}; {} signed checkpoints verify and match ({:.1?})",
        report.events,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, report.root.0),
        report.checkpoints,
        started.elapsed()
    );
    if let Some(size) = report.kept {
        println!("ok: consistent with the kept checkpoint of size {size}");
    }
    match (&report.latest, kept) {
        (Some((_, latest)), Some(path)) => println!(
            "saved the checkpoint of size {} to {}",
            latest.size,
            path.display()
        ),
        (None, _) => println!("the log has signed no checkpoint yet"),
        _ => {}
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
    Officer,
    Auditor,
    Holder,
}

#[derive(Subcommand, Debug)]
enum TokenCommand {
    /// Create a token; it is printed once, alone on the last line.
    Create {
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Who or what uses it (shown in `tokens list`).
        #[arg(long)]
        name: String,
        /// The family a holder token is bound to.
        #[arg(long)]
        family: Option<uuid::Uuid>,
        /// The office an officer or auditor works in (the access record shows it).
        #[arg(long)]
        office: Option<String>,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token by id.
    Revoke { id: uuid::Uuid },
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Add a new signing key; QRs signed by older keys keep verifying.
    Rotate,
    /// Print the public key set (what `/.well-known/registry-keys.json` serves).
    Export {
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum ProjectionCommand {
    /// Each projection's checkpoint, the log head and the lag.
    Status,
    /// Rebuild projections from the log aside, then swap (all when no name is given).
    Rebuild {
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(PROJECTION_NAMES))]
        name: Option<String>,
    },
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// A verify URL or a token.
    input: Option<String>,
    /// An image (PNG or JPEG) of the QR instead.
    #[arg(long, conflicts_with = "input")]
    image: Option<PathBuf>,
    /// The registry's published key set (registry-keys.json).
    #[arg(long)]
    keys: PathBuf,
}

/// The projections' names, as `projections rebuild NAME` takes them (a test keeps this list equal
/// to `default_projections()`).
const PROJECTION_NAMES: [&str; 2] = ["certificate_view", "family_history"];

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REGISTRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // One line with every cause, never a backtrace (whatever RUST_BACKTRACE says): these
        // are a user's errors (a wrong path, a store that does not answer), not a program's.
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let stores = cli.stores.stores();
    if !matches!(cli.command, Commands::Verify(_)) {
        eprintln!("registry: {}", stores.describe());
    }
    if !matches!(
        cli.command,
        Commands::Serve(_) | Commands::Init | Commands::Verify(_)
    ) {
        stores.require_existing()?;
    }
    match cli.command {
        Commands::Serve(args) => serve(stores, *args).await,
        Commands::Init => init(&stores).await,
        Commands::Tokens(command) => tokens(stores, command).await,
        Commands::Keys(command) => keys(stores, command),
        Commands::Projections(command) => projections(stores, command).await,
        Commands::Verify(args) => verify(args),
        Commands::Certificate(command) => certificate(stores, command).await,
        Commands::Audit(AuditCommand::Verify {
            checkpoint,
            log_key,
        }) => audit_verify(&stores, checkpoint.as_deref(), log_key.as_deref()).await,
    }
}

async fn init(stores: &Stores) -> anyhow::Result<()> {
    let existed = stores.require_existing().is_ok();
    stores.open_event_store().await?;
    stores.open_read_store().await?;
    KeyRing::load_or_create(&stores.keys_dir()).context("creating the signing keys")?;
    registry_cli::load_log_key(stores, registry_tlog::note::DEFAULT_ORIGIN)?;
    if existed {
        println!(
            "{} already holds a registry; nothing changed",
            stores.data_dir.display()
        );
    } else {
        println!("created a registry in {}", stores.data_dir.display());
    }
    Ok(())
}

async fn serve(stores: Stores, args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_json);
    // Before the stores open, so that what they count from the start reaches `/metrics`.
    registry_http::metrics_handle();
    let policy = PolicyBook::by_name(&args.policy)?;
    let disclosure: Disclosure = args.disclosure.parse().map_err(anyhow::Error::msg)?;
    tracing::info!(stores = %stores.describe(), "opening the stores");
    let public_base_url = args
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", args.listen));
    let oidc = args.oidc.config(&public_base_url)?;
    let options = ServeOptions {
        http: HttpConfig {
            public_base_url,
            disclosure,
            verify_rate_per_second: args.verify_rate_limit,
            verify_burst: args.verify_burst,
            sign_in_per_minute: args.sign_in_rate_limit,
            sign_in_burst: args.sign_in_burst,
            body_limit: args.body_limit,
            live_qr_seconds: args.live_qr_seconds,
            session_idle: chrono::Duration::minutes(args.session_idle_minutes.max(1)),
            erasure_retention_days: args.erasure_retention_days,
            verify_cache_size: args.verify_cache_size,
            verify_answer_cache_size: args.verify_answer_cache_size,
            connections: ConnectionLimits {
                max_connections: args
                    .max_connections
                    .unwrap_or_else(registry_http::server::default_max_connections)
                    .max(1),
                header_read_timeout: Duration::from_secs(args.header_read_timeout.max(1)),
                idle_timeout: Duration::from_secs(args.idle_timeout.max(1)),
            },
            ..HttpConfig::default()
        },
        policy,
        demo: args.demo,
        log: registry_cli::LogOptions {
            origin: args.log_origin.clone(),
            witness_keys: args.log_witness_keys.clone(),
        },
        oidc,
        certificate_cache_size: args.certificate_cache_size,
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let running = start(&stores, options, Arc::new(SystemClock), listener).await?;
    if let Some(demo) = &running.demo {
        println!("Registry running at http://{}", running.addr);
        if demo.reused {
            println!("Demo family already present: {}", demo.family_id);
        } else {
            println!("Demo family created: {}", demo.family_id);
        }
        println!("Officer token:  {}", demo.officer_token);
        println!("Auditor token:  {}", demo.auditor_token);
        println!("Holder token:   {}", demo.holder_token);
        println!("Open the certificate check: {}", demo.verify_url);
    } else {
        println!("Registry running at http://{}", running.addr);
    }
    let shutdown = running.shutdown_sender();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = shutdown.send(true);
    });
    running.wait().await
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn tokens(stores: Stores, command: TokenCommand) -> anyhow::Result<()> {
    let tokens_store = stores.open_read_store().await?.tokens;
    let now = chrono::Utc::now();
    match command {
        TokenCommand::Create {
            role,
            name,
            family,
            office,
        } => {
            let role = match role {
                RoleArg::Officer => Role::Officer,
                RoleArg::Auditor => Role::Auditor,
                RoleArg::Holder => Role::Holder,
            };
            match (role, family) {
                (Role::Holder, None) => bail!("a holder token needs --family FAMILY_ID"),
                (Role::Holder, Some(_)) | (_, None) => {}
                (_, Some(_)) => bail!("only holder tokens are bound to a family"),
            }
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let office = office.map(|o| o.trim().to_string());
            match (role, &office) {
                (Role::Holder, Some(_)) => bail!("a holder token names no office"),
                (_, Some(o)) if o.is_empty() => bail!("--office must not be empty"),
                _ => {}
            }
            let family = family.map(FamilyId);
            if let Some(family) = family {
                let store = stores.open_event_store().await?;
                if store
                    .read_stream(&family.stream_name(), 0)
                    .await?
                    .is_empty()
                {
                    bail!("no family {family} in the registry");
                }
            }
            let (token, record) = tokens_store
                .create_access_token(&name, role, family, office.as_deref(), now)
                .await?;
            eprintln!(
                "Created {} token {} ({}). It is shown only once:",
                role.as_str(),
                record.id,
                name
            );
            println!("{token}");
        }
        TokenCommand::List => {
            println!(
                "{:<36}  {:<8}  {:<36}  {:<25}  name",
                "id", "role", "family", "revoked"
            );
            for t in tokens_store.list_tokens().await? {
                println!(
                    "{:<36}  {:<8}  {:<36}  {:<25}  {}",
                    t.id,
                    t.role.as_str(),
                    t.family_id
                        .map(|f| f.to_string())
                        .unwrap_or_else(|| "-".into()),
                    t.revoked_at
                        .map(|r| r.to_rfc3339())
                        .unwrap_or_else(|| "-".into()),
                    t.name
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if tokens_store.revoke_token(id, now).await? {
                println!("revoked {id}");
            } else {
                bail!("no live token {id}");
            }
        }
    }
    Ok(())
}

fn keys(stores: Stores, command: KeyCommand) -> anyhow::Result<()> {
    let dir = stores.keys_dir();
    match command {
        KeyCommand::Rotate => {
            KeyRing::load_or_create(&dir)?;
            let kid = KeyRing::rotate(&dir)?;
            println!("new signing key {kid}; older keys keep verifying (a running server picks it up within seconds)");
        }
        KeyCommand::Export { output } => {
            let ring = KeyRing::load_or_create(&dir)?;
            let json = serde_json::to_string_pretty(&ring.public().to_jwks())? + "\n";
            match output {
                Some(path) => std::fs::write(&path, json)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => print!("{json}"),
            }
        }
    }
    Ok(())
}

/// `projections status` counts a lag this far (on KurrentDB counting reads the events).
const STATUS_LAG_COUNTED_TO: u64 = 100_000;

async fn projections(stores: Stores, command: ProjectionCommand) -> anyhow::Result<()> {
    let store = stores.open_event_store().await?;
    let read = stores.open_read_store().await?.read;
    let runner = ProjectionRunner::new(store.clone(), read.clone(), default_projections());
    runner.prepare().await?;
    match command {
        ProjectionCommand::Status => {
            let head = store.head().await?;
            println!("log head: {head} ({})", store.backend_name());
            println!(
                "{:<20}  {:>12}  {:>10}  {:>7}",
                "projection", "checkpoint", "lag", "version"
            );
            for c in read.checkpoints().await? {
                // In events, not positions (KurrentDB's are byte offsets).
                let lag = store.count_after(c.position, STATUS_LAG_COUNTED_TO).await?;
                let lag = if lag >= STATUS_LAG_COUNTED_TO {
                    format!(">={lag}")
                } else {
                    lag.to_string()
                };
                println!(
                    "{:<20}  {:>12}  {:>10}  {:>7}",
                    c.name, c.position, lag, c.version
                );
            }
        }
        ProjectionCommand::Rebuild { name } => {
            let names: Vec<&'static str> = match &name {
                Some(n) => vec![runner
                    .projections()
                    .iter()
                    .find(|p| p.name() == n)
                    .map(|p| p.name())
                    .with_context(|| {
                        format!(
                            "no projection named {n:?}; known: {}",
                            PROJECTION_NAMES.join(", ")
                        )
                    })?],
                None => runner.projections().iter().map(|p| p.name()).collect(),
            };
            let head = store.head().await?;
            let bar = ProgressBar::new(head);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} events ({per_sec}, {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(format!("rebuilding {}", names.join(", ")));
            let started = std::time::Instant::now();
            let count = runner
                .rebuild(&names, |p| {
                    bar.set_length(p.head);
                    bar.set_position(p.position);
                })
                .await?;
            bar.finish_and_clear();
            println!(
                "rebuilt {} from {count} events in {:.1?}",
                names.join(", "),
                started.elapsed()
            );
        }
    }
    Ok(())
}

async fn certificate(stores: Stores, command: CertificateCommand) -> anyhow::Result<()> {
    let CertificateCommand::Pdf {
        family_id,
        output,
        public_base_url,
    } = command;
    let store = stores.open_event_store().await?;
    let registry = registry_app::Registry::new(store, Arc::new(SystemClock), Policy::default());
    let family = registry
        .load(FamilyId(family_id))
        .await?
        .with_context(|| format!("no family {family_id} in the registry"))?
        .family;
    let keys = KeyRing::load_or_create(&stores.keys_dir())?;
    let token = registry_credential::issue_token(&keys, family.certificate_id);
    let url = format!("{}/v/{token}", public_base_url.trim_end_matches('/'));
    let policy = Policy::by_name(&family.policy).unwrap_or_default();
    let document =
        registry_http::document::certificate_document(&family, &policy, url, chrono::Utc::now());
    let pdf = registry_credential::certificate_pdf(&document).context("rendering the PDF")?;
    std::fs::write(&output, pdf).with_context(|| format!("writing {}", output.display()))?;
    println!("wrote {}", output.display());
    Ok(())
}

fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let input = match (&args.input, &args.image) {
        (_, Some(image)) => offline::decode_qr_image(image)?,
        (Some(input), None) => input.clone(),
        (None, None) => bail!("give a verify URL, a token, or --image FILE"),
    };
    match offline::check(&input, &args.keys) {
        Ok(check) => {
            println!("AUTHENTIC: this QR was issued by the registry.");
            println!("signed by key {} ({:?})", check.kid, check.key_status);
            if let registry_credential::TokenKind::Live { expires_at } = check.kind {
                println!("a live (app) code, valid until Unix time {expires_at}");
            }
            println!("Current status (valid, revoked, replaced) needs the online check at the verify address.");
            Ok(())
        }
        Err(e) => {
            eprintln!("{e:#}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_listed_projection_names_are_the_projections() {
        let names: Vec<&str> = registry_projections::default_projections()
            .iter()
            .map(|p| p.name())
            .collect();
        assert_eq!(names, super::PROJECTION_NAMES);
    }
}
