//! Where the PostgreSQL tests get their server.
//!
//! 1. `REGISTRY_TEST_POSTGRES_URL` (a superuser URL) is used when set; `.ci/run` sets it after
//!    starting a cluster.
//! 2. Otherwise, when PostgreSQL's server binaries are installed, one throwaway cluster is started
//!    for the test process (in a temporary directory, on a free local port, `fsync=off`); a
//!    watchdog stops it and removes its files when the test process ends.
//! 3. Otherwise the PostgreSQL tests say they were skipped, or fail when
//!    `REGISTRY_REQUIRE_POSTGRES` is set (as in CI): they must not silently pass there.
#![allow(clippy::missing_panics_doc)]

use sqlx::{Connection, PgConnection};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static SERVER: OnceLock<Option<String>> = OnceLock::new();

/// A PostgreSQL program: on `PATH`, or the newest `/usr/lib/postgresql/N/bin/NAME`.
pub fn find_bin(name: &str) -> Option<PathBuf> {
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    from_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin").join(name)))
            .filter(|p| p.is_file())
            .collect();
        versions.sort();
        versions.pop()
    })
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL program, as the `postgres` user when we are root (initdb refuses root).
pub fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> Option<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()
        .map(|a| a.port())
}

/// A throwaway PostgreSQL cluster of the test process: its superuser URL and its directory (the
/// data directory is `dir/data`, the server log `dir/log`). A watchdog stops it and removes the
/// directory when the test process ends.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub url: String,
    pub dir: PathBuf,
}

fn start_cluster() -> Result<String, String> {
    Cluster::start(&["fsync=off", "full_page_writes=off"]).map(|c| c.url)
}

impl Cluster {
    /// Starts a cluster of its own with the given `name=value` settings on top of
    /// `synchronous_commit=off`, for a test that must see or control the server's files.
    pub fn start(settings: &[&str]) -> Result<Self, String> {
        let initdb = find_bin("initdb").ok_or("initdb not found")?;
        let postgres = find_bin("postgres").ok_or("postgres not found")?;
        let dir = tempfile::Builder::new()
            .prefix("registry-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
        let data = dir.join("data");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err("chown of the cluster directory failed".into());
            }
        }
        let out = as_postgres(&initdb)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = free_port().ok_or("no free port")?;
        // The watchdog: the server runs until this test process is gone, then stops and its files go.
        let settings: String = settings.iter().map(|s| format!(" -c {s}")).collect();
        let script = format!(
            "'{postgres}' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 \
         -c synchronous_commit=off -c max_connections=300 -c shared_buffers=128MB{settings} \
         >'{dir}/log' 2>&1 & pg=$!; \
         while [ -d /proc/{parent} ]; do sleep 1; done; kill -INT $pg; wait $pg; rm -rf '{dir}'",
            postgres = postgres.display(),
            data = data.display(),
            dir = dir.display(),
            parent = std::process::id(),
        );
        let sh = PathBuf::from("/bin/sh");
        as_postgres(&sh)
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(Cluster { url, dir });
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the throwaway PostgreSQL did not start: {}",
                    std::fs::read_to_string(dir.join("log")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The superuser URL of the test server, or `None` (after saying so) when there is none.
pub fn server_url() -> Option<String> {
    SERVER
        .get_or_init(|| {
            if let Ok(url) = std::env::var("REGISTRY_TEST_POSTGRES_URL") {
                return Some(url);
            }
            match start_cluster() {
                Ok(url) => Some(url),
                Err(why) => {
                    if std::env::var_os("REGISTRY_REQUIRE_POSTGRES").is_some() {
                        panic!("PostgreSQL is required (REGISTRY_REQUIRE_POSTGRES) but unavailable: {why}");
                    }
                    // Straight to the terminal: the test harness captures eprintln!.
                    let _ = writeln!(
                        std::io::stderr(),
                        "skipped: PostgreSQL tests need a server ({why}); set REGISTRY_TEST_POSTGRES_URL or install PostgreSQL"
                    );
                    None
                }
            }
        })
        .clone()
}

/// A new, empty database on the test server; its URL. `None` when PostgreSQL tests are skipped.
pub async fn fresh_database() -> Option<String> {
    Some(fresh_database_on(&server_url()?).await)
}

/// A new, empty database on the server at the superuser URL `server`; its URL.
pub async fn fresh_database_on(server: &str) -> String {
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = connect_with_retry(server).await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    let _ = admin.close().await;
    let base = server.rsplit_once('/').map_or(server, |(b, _)| b);
    format!("{base}/{name}")
}

async fn connect_with_retry(url: &str) -> PgConnection {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match PgConnection::connect(url).await {
            Ok(c) => return c,
            Err(e) if Instant::now() > deadline => {
                panic!("cannot connect to the test PostgreSQL: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
