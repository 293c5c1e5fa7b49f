//! The HTTP server. The release `registry serve` binary on 127.0.0.1, driven by `wrk`:
//! QR verifies (a cold pass that checks every signature once, then a warm random steady state)
//! beside the trivial `/healthz` on the same server, grants over HTTP, and the server's resident
//! memory with a million certificates in its view.

use crate::families;
use crate::projection::open_store;
use crate::report::{proc_status_kib_of, process_ticks, thousands, Outcome, TICKS_PER_SECOND};
use anyhow::{bail, ensure, Context, Result};
use registry_credential::{issue_token, KeyRing};
use registry_domain::{CertificateId, Command, Policy};
use registry_store::ExpectedRevision;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod memory;

/// The verify paths, one per line, written next to the databases by `http-populate`.
pub const PATHS_FILE: &str = "verify-paths.txt";

/// Grants `families` families straight into `dir/registry.db` (decided by the domain, appended by
/// `writers` tasks), then signs each certificate's QR token with the keys of `dir/keys` and writes
/// the verify paths to `dir/verify-paths.txt`.
pub async fn populate(dir: &Path, families_n: usize, writers: usize) -> Result<Outcome> {
    ensure!(families_n > 0 && writers > 0, "sizes must be positive");
    std::fs::create_dir_all(dir)?;
    let db = dir.join("registry.db");
    let store = open_store(db.to_str().context("path is not UTF-8")?).await?;
    ensure!(
        store.head().await? == 0,
        "{} is not empty: use a fresh directory",
        db.display()
    );
    let policy = Arc::new(Policy::federal_2024());
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (store, policy, next) = (store.clone(), policy.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= families_n {
                    return anyhow::Ok(ids);
                }
                let family_id = registry_app::new_family_id();
                let command = families::grant(i, family_id);
                let Command::Grant { certificate_id, .. } = &command else {
                    bail!("not a grant");
                };
                ids.push((i, *certificate_id));
                let (events, _) = families::decide_events(&policy, family_id, None, &command)?;
                store
                    .append(
                        &family_id.stream_name(),
                        ExpectedRevision::NoStream,
                        events,
                        None,
                    )
                    .await?;
            }
        }));
    }
    let mut ids: Vec<(usize, CertificateId)> = Vec::with_capacity(families_n);
    for t in tasks {
        ids.extend(t.await.context("a populate task panicked")??);
    }
    let appended = start.elapsed();
    ids.sort_by_key(|(i, _)| *i);

    // The QR tokens, signed offline with the keys the server will load.
    let ring = KeyRing::load_or_create(&dir.join("keys")).context("creating the signing keys")?;
    let signing = Instant::now();
    let half = ids.len().div_ceil(2);
    let paths: Vec<String> = std::thread::scope(|s| {
        let parts: Vec<_> = ids
            .chunks(half.max(1))
            .map(|part| {
                let ring = &ring;
                s.spawn(move || {
                    part.iter()
                        .map(|(_, c)| format!("/api/v1/verify/{}", issue_token(ring, *c)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    ensure!(paths.len() == families_n, "signing threads failed");
    let signed = signing.elapsed();
    let mut text = paths.join("\n");
    text.push('\n');
    std::fs::write(dir.join(PATHS_FILE), text)?;
    let mut out = Outcome::default();
    out.figure(
        "Populate (not a target figure)",
        format!(
            "{} grants (2 parents, 3 children each) appended in {:.1} s ({} commands/s, \
             {writers} writers, one per append); {} QR tokens signed in {:.1} s on 2 threads",
            thousands(families_n as f64),
            appended.as_secs_f64(),
            thousands(families_n as f64 / appended.as_secs_f64()),
            thousands(families_n as f64),
            signed.as_secs_f64(),
        ),
        families_n as f64 / appended.as_secs_f64(),
    );
    Ok(out)
}

/// The `registry` binary next to this one (`target/release/registry`).
pub fn default_registry() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .context("no directory of registry-bench")?
        .join("registry");
    ensure!(
        path.is_file(),
        "{} is missing: run `cargo build --release -p registry-cli` first",
        path.display()
    );
    Ok(path)
}

/// A `registry serve` process.
#[derive(Debug)]
struct Server {
    child: Child,
    pid: u32,
    port: u16,
    ready_after: Duration,
}

/// A whole `GET` over a new connection: the status and the response as read to the end.
fn http_get(port: u16, path: &str, timeout: Duration) -> Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .with_context(|| format!("reading {path}"))?;
    let status = text.get(9..12).and_then(|c| c.parse().ok());
    Ok((
        status.with_context(|| format!("{path}: no status line"))?,
        text,
    ))
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    http_get(port, path, Duration::from_secs(5))
        .ok()
        .map(|(status, _)| status)
}

impl Server {
    fn start(registry: &Path, dir: &Path) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(dir.join("server.log"))?;
        let started = Instant::now();
        let mut child = Process::new(registry)
            .arg("--data-dir")
            .arg(dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--verify-rate-limit", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", registry.display()))?;
        let pid = child.id();
        // The server catches the projections up before it listens.
        loop {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the server exited ({status}) before listening; see {}",
                    dir.join("server.log").display()
                );
            }
            if http_status(port, "/readyz") == Some(200) {
                break;
            }
            if started.elapsed() > Duration::from_secs(600) {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the server was not ready within 600 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self {
            child,
            pid,
            port,
            ready_after: started.elapsed(),
        })
    }

    /// The harness's reference: `registry-bench bare-healthz`, a bare axum handler on the same
    /// runtime and hyper as the server, without its middleware.
    fn start_bare() -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let started = Instant::now();
        let mut child = Process::new(std::env::current_exe()?)
            .args(["bare-healthz", "--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the bare handler")?;
        let pid = child.id();
        while http_status(port, "/healthz") != Some(200) {
            if let Some(status) = child.try_wait()? {
                bail!("the bare handler exited ({status})");
            }
            ensure!(
                started.elapsed() < Duration::from_secs(30),
                "the bare handler did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            child,
            pid,
            port,
            ready_after: started.elapsed(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn ticks(&self) -> u64 {
        process_ticks(self.pid).unwrap_or(0)
    }

    fn memory(&self) -> Memory {
        let pid = self.pid.to_string();
        let mib = |f: &str| proc_status_kib_of(&pid, f).unwrap_or(0) as f64 / 1024.0;
        Memory {
            rss: mib("VmRSS"),
            hwm: mib("VmHWM"),
            anon: mib("RssAnon"),
            file: mib("RssFile"),
        }
    }

    /// SIGTERM (graceful), then wait; SIGKILL after 30 s.
    fn stop(mut self) -> Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> Result<()> {
        let _ = Process::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                self.child.wait()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug)]
struct Memory {
    rss: f64,
    hwm: f64,
    anon: f64,
    file: f64,
}

impl Memory {
    fn describe(&self) -> String {
        format!(
            "VmRSS {:.0} MiB ({:.0} MiB anonymous + {:.0} MiB file-backed), VmHWM {:.0} MiB",
            self.rss, self.anon, self.file, self.hwm
        )
    }
}

/// The `done` function every script shares: one machine-readable line of results.
const DONE_LUA: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"#;

/// Each thread walks its share of the paths (line k of N threads: lines k, k+N, ...) once, in
/// order, then stops.
const COLD_LUA: &str = r#"
local counter = 0
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local reqs = {}
local n = 0
init = function(args)
  local threads = tonumber(args[2])
  marker = args[3]
  local i = 0
  for line in io.lines(args[1]) do
    if i % threads == id then reqs[#reqs + 1] = wrk.format("GET", line) end
    i = i + 1
  end
end
request = function()
  n = n + 1
  if n > #reqs then
    if n == #reqs + 1 then
      -- wrk's main thread sleeps for the whole -d: tell the harness, which interrupts it.
      local f = io.open(marker .. id, "w")
      f:close()
      wrk.thread:stop()
    end
    return reqs[#reqs]
  end
  return reqs[n]
end
"#;

/// A random path of the file per request; given a count, only among the file's last that many
/// paths (the ones a cold pass scanned last).
const RANDOM_LUA: &str = r#"
local counter = 0
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
end
local reqs = {}
init = function(args)
  for line in io.lines(args[1]) do reqs[#reqs + 1] = wrk.format("GET", line) end
  local keep = tonumber(args[2] or "0")
  if keep > 0 and keep < #reqs then
    local last = {}
    for i = #reqs - keep + 1, #reqs do last[#last + 1] = reqs[i] end
    reqs = last
  end
  math.randomseed(os.time() * 7 + id * 7919)
end
request = function()
  return reqs[math.random(#reqs)]
end
"#;

/// The same POST (body from a file, bearer token) on every request.
const POST_LUA: &str = r#"
local req
init = function(args)
  local f = assert(io.open(args[1], "rb"))
  local body = f:read("*a")
  f:close()
  req = wrk.format("POST", "/api/v1/families", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. args[2],
  }, body)
end
request = function()
  return req
end
"#;

/// A grant body like the end-to-end tests' `family_body()`.
const GRANT_BODY: &str = r#"{"decision": {"number": "Р-2026/117", "date": "2026-11-20", "office": "УСЗН района Хамовники"},
 "members": [
  {"last_name": "Смирнова", "first_name": "Ольга", "middle_name": "Игоревна", "birth_date": "1986-04-12", "relation": "parent"},
  {"last_name": "Смирнов", "first_name": "Дмитрий", "middle_name": "Олегович", "birth_date": "1984-09-30", "relation": "parent"},
  {"last_name": "Смирнов", "first_name": "Кирилл", "middle_name": "Дмитриевич", "birth_date": "2010-05-01", "relation": "child"},
  {"last_name": "Смирнова", "first_name": "Алиса", "middle_name": "Дмитриевна", "birth_date": "2014-09-15", "relation": "child"},
  {"last_name": "Смирнов", "first_name": "Марк", "middle_name": "Дмитриевич", "birth_date": "2019-03-10", "relation": "child"}
 ]}"#;

/// What one `wrk` run measured (latencies in µs).
#[derive(Clone, Debug, Default)]
struct Wrk {
    requests: f64,
    seconds: f64,
    errors: Vec<(String, f64)>,
    p50: f64,
    p90: f64,
    p99: f64,
    p999: f64,
    max: f64,
    /// CPU time of the server during the run, in seconds.
    server_cpu: f64,
    command: String,
}

impl Wrk {
    fn rate(&self) -> f64 {
        self.requests / self.seconds.max(1e-9)
    }

    fn errors(&self) -> f64 {
        self.errors.iter().map(|(_, n)| n).sum()
    }

    /// The server's CPU time per request, µs.
    fn cpu_per_request(&self) -> f64 {
        self.server_cpu * 1e6 / self.requests.max(1.0)
    }

    fn describe(&self, unit: &str) -> String {
        let errors = if self.errors() > 0.0 {
            format!(
                "; **errors: {}**",
                self.errors
                    .iter()
                    .filter(|(_, n)| *n > 0.0)
                    .map(|(k, n)| format!("{k} {n:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            "; no errors".to_string()
        };
        format!(
            "{} {unit}/s ({} requests in {:.1} s; latency p50 {:.2} ms, p90 {:.2} ms, p99 \
             {:.2} ms, p99.9 {:.2} ms, max {:.1} ms; server CPU {:.0} µs per request{errors}; \
             `{}`)",
            thousands(self.rate()),
            thousands(self.requests),
            self.seconds,
            self.p50 / 1e3,
            self.p90 / 1e3,
            self.p99 / 1e3,
            self.p999 / 1e3,
            self.max / 1e3,
            self.server_cpu * 1e6 / self.requests.max(1.0),
            self.command,
        )
    }
}

/// One `wrk` run: its connections, length, script, path and script arguments.
struct Drive<'a> {
    connections: usize,
    seconds: u64,
    script: &'a Path,
    path: &'a str,
    args: &'a [&'a str],
    /// For the cold script: the prefix of its per-thread "done" files, and the thread count.
    stop_markers: Option<(&'a str, usize)>,
}

/// Runs `wrk` against the server and reads the line of the shared `done`.
fn wrk(server: &Server, threads: usize, d: &Drive<'_>) -> Result<Wrk> {
    let Drive {
        connections,
        seconds,
        script,
        path,
        args,
        stop_markers,
    } = *d;
    let url = server.url(path);
    let mut argv: Vec<String> = vec![
        format!("-t{threads}"),
        format!("-c{connections}"),
        format!("-d{seconds}s"),
        "--timeout".into(),
        "10s".into(),
        "-s".into(),
        script.display().to_string(),
        url,
    ];
    if !args.is_empty() {
        argv.push("--".into());
        argv.extend(args.iter().map(|a| (*a).to_string()));
    }
    let ticks = server.ticks();
    let child = Process::new("wrk")
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running wrk (install it: apt-get install wrk)")?;
    if let Some((prefix, threads)) = stop_markers {
        // The cold script leaves one file per thread when its list is done; wrk's main thread
        // sleeps for all of `-d` unless interrupted, and reports the time until then.
        let pid = child.id().to_string();
        loop {
            let done = (0..threads)
                .filter(|k| Path::new(&format!("{prefix}{k}")).exists())
                .count();
            if done == threads {
                let _ = Process::new("kill").args(["-INT", &pid]).status();
                break;
            }
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let output = child.wait_with_output().context("waiting for wrk")?;
    let server_cpu = (server.ticks().saturating_sub(ticks)) as f64 / TICKS_PER_SECOND;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "wrk failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("WRK\t"))
        .with_context(|| format!("no result line from wrk: {stdout}"))?;
    let v: Vec<f64> = line
        .split('\t')
        .map(|x| x.trim().parse().unwrap_or(0.0))
        .collect();
    ensure!(v.len() == 13, "unexpected wrk result: {line}");
    let names = ["connect", "read", "write", "HTTP ≥ 400", "timeout"];
    let shown: Vec<String> = argv
        .iter()
        .map(|a| {
            if a.starts_with('/') {
                Path::new(a)
                    .file_name()
                    .map_or(a.clone(), |n| n.to_string_lossy().into_owned())
            } else if a.len() > 40 && !a.contains('/') {
                "$TOKEN".into()
            } else {
                a.clone()
            }
        })
        .collect();
    Ok(Wrk {
        requests: v[0],
        seconds: v[1] / 1e6,
        errors: names
            .iter()
            .zip(&v[3..8])
            .map(|(n, e)| ((*n).to_string(), *e))
            .collect(),
        p50: v[8],
        p90: v[9],
        p99: v[10],
        p999: v[11],
        max: v[12],
        server_cpu,
        command: format!("wrk {}", shown.join(" ")),
    })
}

/// Which parts of the HTTP benchmark to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// Every token once, in order, on a fresh server: each signature is checked.
    Cold,
    /// Random tokens among the last [`WARM_SET`] for `--seconds`: each scanned before (by the
    /// cold pass, or earlier in this phase), so the server's caches answer.
    Warm,
    /// Random tokens among all of them for `--seconds`: over many certificates, mostly first
    /// sights for the caches.
    Scattered,
    /// `GET /healthz` for `--seconds`.
    Healthz,
    /// `GET /healthz` of a bare axum handler (`bare-healthz`, no middleware) for `--seconds`:
    /// the reference the server's `/healthz` is held to.
    Bare,
    /// `POST /api/v1/families` from `--grant-connections` clients for `--seconds`.
    Grants,
    /// The small-server figures: resident memory idle, a restart over the projected views,
    /// a `/metrics` scrape, and memory after a mixed load of verifies and grants.
    Memory,
}

#[derive(Clone, Debug)]
pub struct HttpArgs {
    pub dir: PathBuf,
    pub registry: Option<PathBuf>,
    pub threads: usize,
    pub connections: usize,
    pub grant_connections: usize,
    pub seconds: u64,
    /// Length of the memory phase's mixed load, and its grant clients.
    pub mixed_seconds: u64,
    pub memory_grant_connections: usize,
    pub phases: Vec<Phase>,
}

/// Issue 17's targets: cold verifies (every signature checked) at least 15,000/s, warm ones at
/// least 25,000/s (and 0.8 of `/healthz`), p99 under 10 ms for both, with no errors.
const COLD_TARGET: f64 = 15_000.0;
const WARM_TARGET: f64 = 25_000.0;
/// The tokens a warm phase scans again: fewer than the server's certificate cache holds by
/// default (`registry_read_store::CERTIFICATE_CACHE_DEFAULT`, 20,000).
pub const WARM_SET: usize = 10_000;
const WARM_OF_HEALTHZ_TARGET: f64 = 0.8;
const P99_TARGET_US: f64 = 10_000.0;

fn verify_target(w: &Wrk, rate: f64) -> bool {
    w.rate() >= rate && w.p99 < P99_TARGET_US && w.errors() == 0.0
}

/// Starts `registry serve` on the data directory and runs the phases in order against it.
pub fn serve_bench(a: &HttpArgs) -> Result<Outcome> {
    let registry = match &a.registry {
        Some(p) => p.clone(),
        None => default_registry()?,
    };
    let paths = a.dir.join(PATHS_FILE);
    ensure!(paths.is_file(), "no {}: run http-populate", paths.display());
    let tokens = std::fs::read_to_string(&paths)?.lines().count();
    let scripts = crate::workloads::scratch_dir()?;
    let write = |name: &str, body: &str| -> Result<PathBuf> {
        let p = scripts.path().join(name);
        std::fs::write(&p, format!("{body}\n{DONE_LUA}"))?;
        Ok(p)
    };
    let cold_lua = write("cold.lua", COLD_LUA)?;
    let random_lua = write("random.lua", RANDOM_LUA)?;
    let post_lua = write("post.lua", POST_LUA)?;
    let plain_lua = write("plain.lua", "")?;
    let body = scripts.path().join("grant.json");
    std::fs::write(&body, GRANT_BODY)?;
    let paths_arg = paths.display().to_string();
    let threads_arg = a.threads.to_string();

    let officer = if a.phases.contains(&Phase::Grants) || a.phases.contains(&Phase::Memory) {
        let out = Process::new(&registry)
            .arg("--data-dir")
            .arg(&a.dir)
            .args(["tokens", "create", "--role", "officer", "--name", "bench"])
            .stdin(Stdio::null())
            .output()
            .context("creating an officer token")?;
        ensure!(out.status.success(), "registry tokens create failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .context("no token printed")?
            .trim()
            .to_string()
    } else {
        String::new()
    };

    let mut server = Server::start(&registry, &a.dir)?;
    let at_start = server.memory();
    let mut out = Outcome::default();
    let mut result = Ok(());
    let mut warm_rate = None;
    let mut healthz_rate = None;
    let mut healthz_cpu = None;
    let mut bare_cpu = None;
    let (t, c, s) = (a.threads, a.connections, a.seconds);
    out.figure(
        format!(
            "Server start to ready (opens the stores, catches the projections up over {} \
             events)",
            thousands(tokens as f64)
        ),
        format!(
            "{:.1} s; then {}",
            server.ready_after.as_secs_f64(),
            at_start.describe()
        ),
        server.ready_after.as_secs_f64(),
    );
    // Verifies of random tokens for `s` seconds: among the last `set` of the file, or all.
    let random_verifies = |server: &Server, set: Option<usize>| {
        let keep = set.map(|n| n.to_string());
        let mut args = vec![paths_arg.as_str()];
        args.extend(keep.as_deref());
        wrk(
            server,
            t,
            &Drive {
                connections: c,
                seconds: s,
                script: &random_lua,
                path: "/",
                args: &args,
                stop_markers: None,
            },
        )
    };
    for phase in &a.phases {
        let step = (|| -> Result<()> {
            match phase {
                Phase::Cold => {
                    let marker = scripts.path().join("done-");
                    let marker = marker.to_str().context("path is not UTF-8")?;
                    let w = wrk(
                        &server,
                        t,
                        &Drive {
                            connections: c,
                            seconds: 600,
                            script: &cold_lua,
                            path: "/",
                            args: &[&paths_arg, &threads_arg, marker],
                            stop_markers: Some((marker, t)),
                        },
                    )?;
                    let met = verify_target(&w, COLD_TARGET);
                    let value = w.describe("verifies");
                    out.target(
                        format!(
                            "`GET /api/v1/verify/{{token}}`, cold: each of the {} tokens once, \
                             in order, on a fresh server (every signature checked)",
                            thousands(tokens as f64)
                        ),
                        value,
                        w.rate(),
                        "≥ 15,000 verifies/s and p99 < 10 ms",
                        met,
                    );
                }
                Phase::Warm => {
                    let set = WARM_SET.min(tokens);
                    let w = random_verifies(&server, Some(set))?;
                    warm_rate = Some(w.rate());
                    let met = verify_target(&w, WARM_TARGET);
                    out.target(
                        format!(
                            "`GET /api/v1/verify/{{token}}`, warm: a random one of the {} tokens \
                             scanned last (of {} certificates) per request, {s} s",
                            thousands(set as f64),
                            thousands(tokens as f64)
                        ),
                        w.describe("verifies"),
                        w.rate(),
                        "≥ 25,000 verifies/s and p99 < 10 ms",
                        met,
                    );
                }
                Phase::Scattered => {
                    let w = random_verifies(&server, None)?;
                    out.figure(
                        format!(
                            "`GET /api/v1/verify/{{token}}`, scattered: a random one of all {} \
                             tokens per request, {s} s",
                            thousands(tokens as f64)
                        ),
                        w.describe("verifies"),
                        w.rate(),
                    );
                }
                Phase::Healthz => {
                    let w = wrk(
                        &server,
                        t,
                        &Drive {
                            connections: c,
                            seconds: s,
                            script: &plain_lua,
                            path: "/healthz",
                            args: &[],
                            stop_markers: None,
                        },
                    )?;
                    healthz_rate = Some(w.rate());
                    healthz_cpu = Some(w.cpu_per_request());
                    out.figure(
                        format!("Trivial handler `GET /healthz`, same server, same run, {s} s"),
                        w.describe("requests"),
                        w.rate(),
                    );
                }
                Phase::Bare => {
                    let bare = Server::start_bare()?;
                    let w = wrk(
                        &bare,
                        t,
                        &Drive {
                            connections: c,
                            seconds: s,
                            script: &plain_lua,
                            path: "/healthz",
                            args: &[],
                            stop_markers: None,
                        },
                    );
                    bare.stop()?;
                    let w = w?;
                    bare_cpu = Some(w.cpu_per_request());
                    out.figure(
                        format!(
                            "Reference: a bare axum handler `GET /healthz` (`registry-bench \
                             bare-healthz`: the same tokio runtime, hyper and axum, no \
                             middleware), same run, {s} s"
                        ),
                        w.describe("requests"),
                        w.rate(),
                    );
                }
                Phase::Grants => {
                    let gc = a.grant_connections;
                    let body = body.display().to_string();
                    let w = wrk(
                        &server,
                        t,
                        &Drive {
                            connections: gc,
                            seconds: s,
                            script: &post_lua,
                            path: "/api/v1/families",
                            args: &[&body, &officer],
                            stop_markers: None,
                        },
                    )?;
                    out.figure(
                        format!(
                            "Grants over HTTP: `POST /api/v1/families` (a new family each, \
                             answered once visible in the view), {gc} concurrent clients, {s} s"
                        ),
                        w.describe("commands"),
                        w.rate(),
                    );
                }
                Phase::Memory => {
                    memory::phase(
                        &mut server,
                        &memory::Setting {
                            registry: &registry,
                            dir: &a.dir,
                            tokens,
                            threads: t,
                            connections: c,
                            grant_connections: a.memory_grant_connections,
                            seconds: a.mixed_seconds,
                            random_lua: &random_lua,
                            post_lua: &post_lua,
                            paths: &paths_arg,
                            body: &body.display().to_string(),
                            officer: &officer,
                        },
                        &mut out,
                    )?;
                }
            }
            Ok(())
        })();
        if let Err(e) = step {
            result = Err(e);
            break;
        }
    }
    let end = server.memory();
    server.stop()?;
    result?;
    if let (Some(w), Some(h)) = (warm_rate, healthz_rate) {
        let share = w / h.max(1.0);
        out.target(
            "… warm verifies against the trivial handler",
            format!("{share:.2} of the `/healthz` rate"),
            share,
            format!("≥ {WARM_OF_HEALTHZ_TARGET}"),
            share >= WARM_OF_HEALTHZ_TARGET,
        );
    }
    if let (Some(h), Some(b)) = (healthz_cpu, bare_cpu) {
        let ratio = h / b.max(1e-9);
        out.target(
            "… the server's `/healthz` CPU per request against the bare handler's",
            format!("{ratio:.2}× ({h:.1} µs against {b:.1} µs)"),
            ratio,
            "within 2×",
            ratio <= 2.0,
        );
    }
    out.figure(
        "… server memory at the end of these phases",
        end.describe(),
        end.rss,
    );
    out.note(format!(
        "HTTP workloads: the release `registry serve --verify-rate-limit 0` binary (SQLite event \
         and read stores in the data directory, the default `info` log to a file) on \
         127.0.0.1, driven by `wrk` 4.1 with {t} thread and {c} connections (grants: {} \
         connections) on the same 2 vCPUs as the server, so `wrk` takes CPU from the server; \
         the server's CPU time per request comes from /proc/PID/stat. File-backed memory is \
         the binary and its libraries: SQLite reads through the kernel's page cache \
         (`mmap_size` 0), which is not the server's resident memory.",
        a.grant_connections,
    ));
    Ok(out)
}

/// Serves a bare `GET /healthz` (the same JSON as the server's) with nothing around it, until
/// killed: the harness's reference for what a request costs without the middleware.
pub async fn bare_healthz(listen: &str) -> Result<()> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/healthz",
        get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
    );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
