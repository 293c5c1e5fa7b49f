//! Two `registry serve` processes on one PostgreSQL: both serve commands and QR lookups, one
//! applies the projections; killing it with SIGKILL mid-load loses no acknowledged command, the
//! survivor takes over the projections, and no event is applied twice.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn registry(data: &Path, events: &str, read: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_registry"));
    c.arg("--data-dir")
        .arg(data)
        .args(["--event-store", events, "--read-store", read]);
    c
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(data: &Path, events: &str, read: &str, port: u16) -> Child {
    registry(data, events, read)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--verify-rate-limit",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} did not become ready");
}

fn family() -> Value {
    json!({
        "decision": {"number": "Р-1", "date": "2026-01-15"},
        "members": [
            {"last_name": "Орлова", "first_name": "Нина", "birth_date": "1985-01-01", "relation": "parent"},
            {"last_name": "Орлов", "first_name": "Иван", "birth_date": "2012-01-01", "relation": "child"},
            {"last_name": "Орлова", "first_name": "Яна", "birth_date": "2015-01-01", "relation": "child"},
            {"last_name": "Орлов", "first_name": "Лев", "birth_date": "2019-01-01", "relation": "child"}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_one_of_two_servers_mid_load_loses_nothing_acknowledged() {
    let (Some(events), Some(read)) = (
        registry_test_support::fresh_database().await,
        registry_test_support::fresh_database().await,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = registry(dir.path(), &events, &read)
        .args(["tokens", "create", "--role", "officer", "--name", "load"])
        .output()
        .unwrap();
    assert!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let token = String::from_utf8(token.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();

    let (port_a, port_b) = (free_port(), free_port());
    let mut a = serve(dir.path(), &events, &read, port_a);
    let base_a = format!("http://127.0.0.1:{port_a}");
    let base_b = format!("http://127.0.0.1:{port_b}");
    let client = reqwest::Client::new();
    // A starts first, so A holds the projection lease.
    wait_ready(&client, &base_a).await;
    let mut b = serve(dir.path(), &events, &read, port_b);
    wait_ready(&client, &base_b).await;

    let acknowledged = Arc::new(Mutex::new(Vec::<Value>::new()));
    let a_dead = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for worker in 0..8 {
        let (client, token, acknowledged, a_dead) = (
            client.clone(),
            token.clone(),
            acknowledged.clone(),
            a_dead.clone(),
        );
        let (base_a, base_b) = (base_a.clone(), base_b.clone());
        clients.push(tokio::spawn(async move {
            for n in 0..40 {
                let base = if (worker + n) % 2 == 0 && !a_dead.load(Ordering::SeqCst) {
                    &base_a
                } else {
                    &base_b
                };
                let sent = client
                    .post(format!("{base}/api/v1/families"))
                    .bearer_auth(&token)
                    .json(&family())
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await;
                // Only a 201 is an acknowledgement; a refused connection to the killed server is not.
                if let Ok(r) = sent {
                    if r.status() == reqwest::StatusCode::CREATED {
                        let body: Value = r.json().await.unwrap();
                        acknowledged.lock().unwrap().push(body);
                    }
                }
            }
        }));
    }
    // Kill A once the load is well under way.
    while acknowledged.lock().unwrap().len() < 60 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    a_dead.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 200,
        "{} acknowledged",
        acknowledged.len()
    );

    // Every acknowledged grant is in the log and, through B, in the certificate view.
    for ack in &acknowledged {
        let family = ack["family_id"].as_str().unwrap();
        let view = client
            .get(format!("{base_b}/api/v1/families/{family}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(view.status(), 200);
        let url = ack["verify_url"].as_str().unwrap();
        let token_part = url.rsplit("/v/").next().unwrap();
        let scan: Value = client
            .get(format!("{base_b}/api/v1/verify/{token_part}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(scan["state"], "active", "{scan}");
    }
    // The survivor caught up: no lag, and every event applied exactly once.
    let status = |what: &str| {
        let out = registry(dir.path(), &events, &read)
            .args(["projections", "status"])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        text.lines()
            .find(|l| l.starts_with(what))
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = status("certificate_view");
        if view.get(2).map(String::as_str) == Some("0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the survivor did not catch up: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let head = status("log head");
    let log_head: u64 = head[2].parse().unwrap();
    let history = status("family_history");
    assert_eq!(history[1], log_head.to_string());
    // One grant = one event = one history row per acknowledged family (and at most the
    // unacknowledged in-flight ones besides).
    assert!(log_head >= acknowledged.len() as u64);
    let auditor = registry(dir.path(), &events, &read)
        .args(["tokens", "create", "--role", "auditor", "--name", "audit"])
        .output()
        .unwrap();
    let auditor = String::from_utf8(auditor.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    for ack in acknowledged.iter().take(50) {
        let family = ack["family_id"].as_str().unwrap();
        let history: Value = client
            .get(format!("{base_b}/api/v1/families/{family}/history"))
            .bearer_auth(&auditor)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            history["events"].as_array().unwrap().len(),
            1,
            "applied once: {history}"
        );
    }
    let _ = b.kill();
    let _ = b.wait();
}
