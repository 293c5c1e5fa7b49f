//! `kill -9` of a real `registry serve` on the embedded default (SQLite) at random moments while
//! eight clients grant families, six times over, restarting it each time: every grant the server
//! acknowledged (201) is in the registry afterwards and its QR verifies as valid. Every grant
//! carries an `Idempotency-Key`; each one that was not acknowledged is sent again with its key
//! after the last restart, as a client would, and is answered (never "in progress", whatever
//! moment the kill hit), and no decision was granted twice. The counts are printed and written
//! to `target/crash-test.txt` for CI's log.
#![allow(clippy::unwrap_used)]

use rand::Rng;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KILLS: usize = 6;
const CLIENTS: usize = 8;

fn registry(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_registry"));
    c.arg("--data-dir")
        .arg(data)
        .env_remove("REGISTRY_EVENT_STORE")
        .env_remove("REGISTRY_READ_STORE");
    c
}

fn token(data: &Path, role: &str) -> String {
    let out = registry(data)
        .args(["tokens", "create", "--role", role, "--name", role])
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

fn serve(data: &Path, port: u16) -> Child {
    registry(data)
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
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{base} did not become ready");
}

fn family(n: usize) -> Value {
    json!({
        "decision": {"number": format!("Р-{n}"), "date": "2026-01-15"},
        "members": [
            {"last_name": "Орлова", "first_name": "Нина", "birth_date": "1985-01-01", "relation": "parent"},
            {"last_name": "Орлов", "first_name": "Иван", "birth_date": "2012-01-01", "relation": "child"},
            {"last_name": "Орлова", "first_name": "Яна", "birth_date": "2015-01-01", "relation": "child"},
            {"last_name": "Орлов", "first_name": "Лев", "birth_date": "2019-01-01", "relation": "child"}
        ]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_grant_survives_repeated_kill_nine() {
    let dir = tempfile::tempdir().unwrap();
    let init = registry(dir.path()).arg("init").output().unwrap();
    assert!(init.status.success());
    let officer = token(dir.path(), "officer");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let acknowledged = Arc::new(Mutex::new(Vec::<Value>::new()));
    // Sent and not acknowledged: the number of the family and its idempotency key.
    let unanswered = Arc::new(Mutex::new(Vec::<(usize, String)>::new()));
    let mut sent = 0usize;
    for round in 0..KILLS {
        let mut server = serve(dir.path(), port);
        wait_ready(&client, &base).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for worker in 0..CLIENTS {
            let (client, officer, base) = (client.clone(), officer.clone(), base.clone());
            let (acknowledged, unanswered, stop) =
                (acknowledged.clone(), unanswered.clone(), stop.clone());
            workers.push(tokio::spawn(async move {
                let mut sent = 0;
                while !stop.load(Ordering::SeqCst) {
                    sent += 1;
                    let n = round * 100_000 + worker * 10_000 + sent;
                    let key = format!("crash-{n}");
                    let answer = client
                        .post(format!("{base}/api/v1/families"))
                        .bearer_auth(&officer)
                        .header("Idempotency-Key", &key)
                        .json(&family(n))
                        .send()
                        .await;
                    // Only a 201 read in full is an acknowledgement.
                    let mut body = None;
                    if let Ok(r) = answer {
                        if r.status() == reqwest::StatusCode::CREATED {
                            body = r.json::<Value>().await.ok();
                        }
                    }
                    match body {
                        Some(body) => acknowledged.lock().unwrap().push(body),
                        None => unanswered.lock().unwrap().push((n, key)),
                    }
                }
                sent
            }));
        }
        // A random moment, once the load is under way.
        let wait = rand::thread_rng().gen_range(150..900);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        for w in workers {
            sent += w.await.unwrap();
        }
    }

    // Restart once more and look every acknowledged grant up.
    let mut server = serve(dir.path(), port);
    wait_ready(&client, &base).await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    let mut found = 0;
    let mut missing = Vec::new();
    for ack in &acknowledged {
        let family = ack["family_id"].as_str().unwrap();
        let view = client
            .get(format!("{base}/api/v1/families/{family}"))
            .bearer_auth(&officer)
            .send()
            .await
            .unwrap();
        let url = ack["verify_url"].as_str().unwrap();
        let qr = url.rsplit("/v/").next().unwrap();
        let scan: Value = client
            .get(format!("{base}/api/v1/verify/{qr}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        if view.status() == 200 && scan["valid"] == true {
            found += 1;
        } else {
            missing.push(family.to_string());
        }
    }
    // The unanswered grants again, with their keys: each is answered now, once.
    let unanswered = unanswered.lock().unwrap().clone();
    let mut refused = Vec::new();
    for (n, key) in &unanswered {
        let r = client
            .post(format!("{base}/api/v1/families"))
            .bearer_auth(&officer)
            .header("Idempotency-Key", key)
            .json(&family(*n))
            .send()
            .await
            .unwrap();
        if r.status() != reqwest::StatusCode::CREATED {
            refused.push(format!("{key}: {} {}", r.status(), r.text().await.unwrap()));
        }
    }
    let mut granted_twice = Vec::new();
    for (n, _) in &unanswered {
        let found: Value = client
            .get(format!("{base}/api/v1/families?decision_number=Р-{n}"))
            .bearer_auth(&officer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let families = found["families"].as_array().map_or(0, Vec::len);
        if families != 1 {
            granted_twice.push(format!("Р-{n}: {families} families"));
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    let summary = format!(
        "crash test: {KILLS} kill -9 of `registry serve` under {CLIENTS} clients; {sent} grants \
         sent, {} acknowledged, {found} found and verifying after restart; {} unanswered sent \
         again with their keys, {} answered once\n",
        acknowledged.len(),
        unanswered.len(),
        unanswered.len() - refused.len() - granted_twice.len()
    );

    eprint!("{summary}");
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/crash-test.txt");
    let _ = std::fs::write(target, &summary);
    assert!(
        acknowledged.len() >= KILLS,
        "too few grants acknowledged: {summary}"
    );
    assert!(
        missing.is_empty(),
        "acknowledged but lost: {missing:?}\n{summary}"
    );
    assert!(
        refused.is_empty(),
        "a retry with its key was refused: {refused:?}\n{summary}"
    );
    assert!(
        granted_twice.is_empty(),
        "a retried grant is not there exactly once: {granted_twice:?}\n{summary}"
    );
}
