//! A flood of clients that open sockets and send nothing (or half a request) against a real
//! `registry serve` limited to 512 open files: the server keeps answering `/healthz` and grants,
//! closes the idle sockets itself, and logs the connection cap instead of failing `accept` with
//! "Too many open files" (issue 10, defect 4).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Kills the server when the test ends, passed or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn officer_token(data: &Path) -> String {
    let init = Command::new(env!("CARGO_BIN_EXE_registry"))
        .arg("--data-dir")
        .arg(data)
        .arg("init")
        .env_remove("REGISTRY_EVENT_STORE")
        .env_remove("REGISTRY_READ_STORE")
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_registry"))
        .arg("--data-dir")
        .arg(data)
        .args(["tokens", "create", "--role", "officer", "--name", "load"])
        .env_remove("REGISTRY_EVENT_STORE")
        .env_remove("REGISTRY_READ_STORE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string()
}

/// Lets this test process open more sockets than the server may (its own soft limit up to its
/// hard limit).
fn raise_own_file_limit() {
    let _ = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg("--nofile=4096:")
        .status();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_sockets_do_not_lock_out_real_clients_under_512_files() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("prlimit is not installed: skipped");
        return;
    }
    raise_own_file_limit();
    let dir = tempfile::tempdir().unwrap();
    let token = officer_token(dir.path());
    let port = free_port();
    let log = dir.path().join("server.log");
    let server = Command::new("prlimit")
        .arg("--nofile=512:512")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_registry"))
        .arg("--data-dir")
        .arg(dir.path())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--verify-rate-limit",
            "0",
            "--header-read-timeout",
            "2",
            "--idle-timeout",
            "2",
        ])
        .env_remove("REGISTRY_EVENT_STORE")
        .env_remove("REGISTRY_READ_STORE")
        .env("REGISTRY_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let server = KillOnDrop(server);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 700 sockets: more than the server's 512 files. Most send nothing; some half a request.
    // (A server that stops accepting leaves connects hanging once the kernel's backlog is full:
    // give up on a socket after 3 s, and on the flood after 5 such in a row.)
    let mut flood = Vec::new();
    let mut stuck = 0;
    for i in 0..700 {
        let connect = tokio::net::TcpStream::connect(("127.0.0.1", port));
        let Ok(Ok(mut socket)) = tokio::time::timeout(Duration::from_secs(3), connect).await else {
            stuck += 1;
            if stuck == 5 {
                break;
            }
            continue;
        };
        stuck = 0;
        if i % 10 == 0 {
            let _ = socket
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                .await;
        }
        flood.push(socket);
    }
    assert!(flood.len() > 512, "only {} sockets opened", flood.len());

    // A real client gets through while they are open, for a read and for a command.
    let health = match client.get(format!("{base}/healthz")).send().await {
        Ok(r) => r,
        Err(e) => panic!(
            "/healthz failed under the flood: {e}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        ),
    };
    assert_eq!(health.status(), 200);
    let grant = client
        .post(format!("{base}/api/v1/families"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "decision": {"number": "Р-1", "date": "2026-01-15"},
            "members": [
                {"last_name": "Орлова", "first_name": "Нина", "birth_date": "1985-01-01", "relation": "parent"},
                {"last_name": "Орлов", "first_name": "Иван", "birth_date": "2012-01-01", "relation": "child"},
                {"last_name": "Орлова", "first_name": "Яна", "birth_date": "2015-01-01", "relation": "child"},
                {"last_name": "Орлов", "first_name": "Лев", "birth_date": "2019-01-01", "relation": "child"}
            ]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(grant.status(), 201);

    // The server closes every one of them itself (the 30 s bound only keeps a broken server
    // from hanging the test).
    let closed = tokio::time::timeout(
        Duration::from_secs(30),
        futures::future::join_all(flood.into_iter().map(|mut socket| async move {
            let mut buf = [0u8; 256];
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {} // a 408 or a response to the half request, then the close
                }
            }
        })),
    )
    .await
    .expect("idle sockets were left open");
    assert!(closed.into_iter().all(|c| c));

    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("Too many open files"),
        "the server ran out of files:\n{text}"
    );
    assert!(
        text.contains("connection cap reached"),
        "the cap was not logged:\n{text}"
    );
}
