//! The command line is a contract too: these run the real `registry` binary.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

fn registry(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_registry"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("REGISTRY_EVENT_STORE")
        .env_remove("REGISTRY_READ_STORE")
        .output()
        .unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A data directory holding a new, empty registry.
fn initialized() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = registry(dir.path(), &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

#[test]
fn tokens_create_prints_the_token_alone_on_the_last_line_and_stores_only_its_hash() {
    let dir = initialized();
    let out = registry(
        dir.path(),
        &[
            "tokens",
            "create",
            "--role",
            "officer",
            "--name",
            "Отдел соцзащиты ЦАО",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let token = text.lines().last().unwrap();
    assert!(
        token.starts_with("rgt_") && !token.contains(' '),
        "{text:?}"
    );
    let db = std::fs::read(dir.path().join("views.db")).unwrap();
    let wal = std::fs::read(dir.path().join("views.db-wal")).unwrap_or_default();
    let needle = token.as_bytes();
    for bytes in [&db, &wal] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "the token itself is stored"
        );
    }
    let list = registry(dir.path(), &["tokens", "list"]);
    assert!(stdout(&list).contains("Отдел соцзащиты ЦАО"));
    assert!(!stdout(&list).contains(token));

    let id = stdout(&list)
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let revoke = registry(dir.path(), &["tokens", "revoke", &id]);
    assert!(revoke.status.success(), "{}", stderr(&revoke));
    let again = registry(dir.path(), &["tokens", "revoke", &id]);
    assert!(!again.status.success());
}

#[test]
fn a_holder_token_needs_an_existing_family() {
    let dir = initialized();
    let out = registry(
        dir.path(),
        &["tokens", "create", "--role", "holder", "--name", "x"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--family"), "{}", stderr(&out));
    let out = registry(
        dir.path(),
        &[
            "tokens",
            "create",
            "--role",
            "holder",
            "--name",
            "x",
            "--family",
            "0192b4f0-0000-7000-8000-000000000000",
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no family"), "{}", stderr(&out));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `registry serve --demo` on `port`, with its stdout as lines.
fn serve_demo(
    data: &Path,
    port: u16,
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_registry"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

#[test]
fn serve_demo_prints_tokens_and_a_verify_url_that_opens_and_checks_offline() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut child, mut lines) = serve_demo(dir.path(), port);
    let mut printed = Vec::new();
    let url = loop {
        let line = lines
            .next()
            .expect("the server printed its verify URL")
            .unwrap();
        printed.push(line.clone());
        if let Some(url) = line.strip_prefix("Open the certificate check: ") {
            break url.to_string();
        }
    };
    assert!(printed
        .iter()
        .any(|l| l.starts_with("Officer token:  rgt_")));
    assert!(printed
        .iter()
        .any(|l| l.starts_with("Holder token:   rgt_")));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let page = runtime.block_on(async { reqwest::get(&url).await.unwrap().text().await.unwrap() });
    assert!(page.contains("ДЕЙСТВИТЕЛЬНО"), "{page}");
    let keys = runtime.block_on(async {
        reqwest::get(format!(
            "http://127.0.0.1:{port}/.well-known/registry-keys.json"
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
    });
    // The default rule is Moscow's (law No. 60, youngest child): the view says so and why.
    let officer = printed
        .iter()
        .find_map(|l| l.strip_prefix("Officer token:  "))
        .unwrap()
        .to_string();
    let family_id = printed
        .iter()
        .find_map(|l| l.strip_prefix("Demo family created: "))
        .unwrap()
        .to_string();
    let view: serde_json::Value = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!(
                "http://127.0.0.1:{port}/api/v1/families/{family_id}"
            ))
            .bearer_auth(&officer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(view["policy"], "moscow-2008", "{view}");
    let reason = view["valid_until_reason"].as_str().unwrap();
    assert!(
        reason.contains("младший ребёнок, Олег, достигает возраста 16 лет"),
        "{reason}"
    );
    let _ = child.kill();
    let _ = child.wait();

    // The offline check, with the published keys and no server.
    let keys_file = dir.path().join("registry-keys.json");
    std::fs::write(&keys_file, keys).unwrap();
    let keys_arg = keys_file.to_str().unwrap();
    let ok = registry(dir.path(), &["verify", &url, "--keys", keys_arg]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("AUTHENTIC"));

    // The same from a picture of the QR.
    let png = dir.path().join("qr.png");
    std::fs::write(&png, registry_credential::qr_png(&url, 6)).unwrap();
    let ok = registry(
        dir.path(),
        &[
            "verify",
            "--image",
            png.to_str().unwrap(),
            "--keys",
            keys_arg,
        ],
    );
    assert!(ok.status.success(), "{}", stderr(&ok));

    // The token altered by one bit (of the certificate id): refused.
    let (base, token) = url.rsplit_once("/v/").unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(token).unwrap();
    bytes[10] ^= 0x01;
    let altered = format!("{base}/v/{}", URL_SAFE_NO_PAD.encode(&bytes));
    let bad = registry(dir.path(), &["verify", &altered, "--keys", keys_arg]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("NOT issued"), "{}", stderr(&bad));

    // Another registry's keys: refused.
    let other = initialized();
    let export = registry(other.path(), &["keys", "export"]);
    let other_keys = other.path().join("keys.json");
    std::fs::write(&other_keys, export.stdout).unwrap();
    let bad = registry(
        dir.path(),
        &["verify", &url, "--keys", other_keys.to_str().unwrap()],
    );
    assert!(!bad.status.success());

    // The certificate PDF from the command line, with the same QR.
    let family = printed
        .iter()
        .find_map(|l| l.strip_prefix("Demo family created: "))
        .unwrap()
        .to_string();
    let pdf = dir.path().join("certificate.pdf");
    let base = url.split("/v/").next().unwrap().to_string();
    let out = registry(
        dir.path(),
        &[
            "certificate",
            "pdf",
            &family,
            "-o",
            pdf.to_str().unwrap(),
            "--public-base-url",
            &base,
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&pdf).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    if registry_test_support::pdf::tools_present() {
        let (qr, text) = registry_test_support::pdf::read_pdf(&bytes);
        assert_eq!(qr, url);
        assert!(text.contains("Иванова Мария Петровна"));
    }

    // The projections caught up and rebuild from the command line.
    let status = registry(dir.path(), &["projections", "status"]);
    assert!(
        stdout(&status).contains("certificate_view"),
        "{}",
        stdout(&status)
    );
    let rebuild = registry(dir.path(), &["projections", "rebuild"]);
    assert!(rebuild.status.success(), "{}", stderr(&rebuild));
    assert!(
        stdout(&rebuild).contains("rebuilt certificate_view, family_history from 1 events"),
        "{}",
        stdout(&rebuild)
    );
}

#[test]
fn a_command_on_a_directory_without_a_registry_says_so_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for args in [
        &["tokens", "create", "--role", "officer", "--name", "x"][..],
        &["tokens", "list"][..],
        &["projections", "status"][..],
        &["keys", "rotate"][..],
    ] {
        let out = registry(&data, args);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr(&out).contains("holds no registry") && stderr(&out).contains("registry init"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!data.exists(), "{args:?} created {}", data.display());
    }
    let init = registry(&data, &["init"]);
    assert!(init.status.success(), "{}", stderr(&init));
    assert!(stdout(&init).contains("created a registry"));
    assert!(data.join("registry.db").exists() && data.join("keys").exists());
    let again = registry(&data, &["init"]);
    assert!(stdout(&again).contains("already holds a registry"));

    // Every command that opens stores says which.
    let out = registry(
        &data,
        &["tokens", "create", "--role", "officer", "--name", "x"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains(&format!("data directory {}", data.display()))
            && said.contains(&format!(
                "event store sqlite://{}",
                data.join("registry.db").display()
            ))
            && said.contains(&format!(
                "read store sqlite://{}",
                data.join("views.db").display()
            )),
        "{said}"
    );
}

#[test]
fn a_user_error_is_one_line_without_a_backtrace() {
    let dir = initialized();
    let out = Command::new(env!("CARGO_BIN_EXE_registry"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["tokens", "create", "--role", "holder", "--name", "x"])
        .env("RUST_BACKTRACE", "full")
        .env_remove("REGISTRY_EVENT_STORE")
        .env_remove("REGISTRY_READ_STORE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = stderr(&out);
    let errors: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("registry: "))
        .collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(
        errors[0].starts_with("error: ") && errors[0].contains("--family"),
        "{text}"
    );
    assert!(!text.to_lowercase().contains("backtrace"), "{text}");
}

#[test]
fn an_unreachable_postgres_says_connection_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://postgres@127.0.0.1:{}/registry", free_port());
    let out = registry(
        dir.path(),
        &[
            "--event-store",
            &url,
            "--read-store",
            &url,
            "projections",
            "status",
        ],
    );
    assert!(!out.status.success());
    let text = stderr(&out).to_lowercase();
    assert!(text.contains("connection refused"), "{text}");
    assert!(!text.contains("timed out"), "{text}");
}

#[test]
fn unknown_values_are_refused_with_the_known_ones_listed() {
    let dir = initialized();
    for (args, known) in [
        (
            &["serve", "--policy", "bogus"][..],
            &["moscow", "federal", "moscow-2008", "federal-2024"][..],
        ),
        (
            &["serve", "--disclosure", "bogus"][..],
            &["standard", "full", "minimal"][..],
        ),
        (
            &["projections", "rebuild", "bogus"][..],
            &["certificate_view", "family_history"][..],
        ),
        (
            &["tokens", "create", "--role", "bogus", "--name", "x"][..],
            &["officer", "auditor", "holder"][..],
        ),
    ] {
        let out = registry(dir.path(), args);
        assert!(!out.status.success(), "{args:?}");
        let text = stderr(&out);
        for value in known {
            assert!(
                text.contains(value),
                "{args:?} does not list {value}: {text}"
            );
        }
    }
}

/// `registry audit verify` passes on an untouched log and saves the newest checkpoint; after an
/// administrator edits one event in the file it exits non-zero naming that event's position.
#[test]
fn audit_verify_passes_then_names_the_position_an_administrator_edited() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut child, mut lines) = serve_demo(dir.path(), port);
    while !lines
        .next()
        .expect("the server printed its verify URL")
        .unwrap()
        .starts_with("Open the certificate check: ")
    {}
    // Wait for the builder to sign a checkpoint over the demo family's events.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let signed = runtime.block_on(async {
        for _ in 0..600 {
            let text = reqwest::get(format!("http://127.0.0.1:{port}/log/checkpoint"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let size: u64 = text
                .lines()
                .nth(1)
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            if size > 0 {
                return size;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("no checkpoint was signed");
    });
    child.kill().unwrap();
    child.wait().unwrap();

    let kept = dir.path().join("audit-checkpoint.txt");
    let kept_arg = kept.to_str().unwrap();
    let out = registry(dir.path(), &["audit", "verify", "--checkpoint", kept_arg]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let events: u64 = text
        .strip_prefix("ok: ")
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(events >= signed, "{text}");
    // The kept file is the newest checkpoint the server signed.
    let saved = std::fs::read_to_string(&kept).unwrap();
    let saved_size: u64 = saved.lines().nth(1).unwrap().parse().unwrap();
    assert!((signed..=events).contains(&saved_size), "{saved}");

    let db = rusqlite::Connection::open(dir.path().join("registry.db")).unwrap();
    db.execute_batch(
        "DROP TRIGGER events_no_update; UPDATE events SET data = data || ' ' WHERE position = 1;",
    )
    .unwrap();
    drop(db);
    let out = registry(dir.path(), &["audit", "verify", "--checkpoint", kept_arg]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the log was altered: position 1 (leaf 0"),
        "{}",
        stderr(&out)
    );
}

/// A witness key that is not a cosignature key is refused at start, naming it.
#[test]
fn serve_refuses_a_witness_key_that_is_not_a_cosignature_key() {
    let dir = initialized();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_registry"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", &listen])
        .args(["--log-witness-key", "witness+0000+AAAA"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A server that accepted the key would run on: stop it rather than wait for ever.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the server started with a malformed witness key");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains("the witness key \"witness+0000+AAAA\": not a cosignature verifier key"),
        "{}",
        stderr(&out)
    );
}
