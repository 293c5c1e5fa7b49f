//! The transparency log end to end, over a real socket: the public checkpoint verifies with the
//! published key, every event of a family is proved included, a later checkpoint is proved
//! consistent with an earlier one, witnesses' cosignatures are kept and served, and an audit
//! catches every kind of tampering done directly in the database (SQLite and PostgreSQL),
//! naming the position.

#![allow(clippy::unwrap_used)]

use registry_cli::Stores;
use registry_e2e::*;
use registry_tlog::audit::{AuditError, Finding};
use registry_tlog::cosign::{cosign, CosignatureSigner};
use registry_tlog::{open_checkpoint, Hash, OpenedCheckpoint};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

fn unbase64(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn hash(s: &Value) -> Hash {
    Hash(unbase64(s.as_str().unwrap()).try_into().unwrap())
}

async fn log_key(app: &TestApp) -> String {
    let answer = app.get("/log/key", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    answer.text.trim().to_owned()
}

/// The public checkpoint once it covers every event in the log (the builder signs within a
/// second of new events; this waits for it without asserting how long it took).
async fn checkpoint_covering_all(app: &TestApp) -> (String, OpenedCheckpoint) {
    let key = log_key(app).await;
    let events = app.event_count_in_log().await;
    for _ in 0..600 {
        let answer = app.get("/log/checkpoint", None).await;
        if answer.status == StatusCode::OK {
            assert!(answer.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain"));
            let opened = open_checkpoint(&answer.text, &key, &[]).unwrap();
            if opened.size == events {
                return (answer.text, opened);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no checkpoint ever covered the {events} events of the log");
}

async fn renew(app: &TestApp, family: registry_domain::FamilyId) {
    let renewal = serde_json::json!({"decision": {"number": "Р-2026/77", "date": "2026-11-25"}});
    let renewed = app
        .post(
            &format!("/api/v1/families/{}/renewals", family.0),
            &app.officer,
            renewal,
        )
        .await;
    assert!(renewed.status.is_success(), "{}", renewed.text);
}

trait LogCount {
    async fn event_count_in_log(&self) -> u64;
}

impl LogCount for TestApp {
    /// Events in the log (positions may have gaps on PostgreSQL: count them).
    async fn event_count_in_log(&self) -> u64 {
        let store = self.running.state.registry().store();
        store.read_all(1, 100_000).await.unwrap().len() as u64
    }
}

async fn every_event_of_a_family_is_proved_included_in_the_signed_log(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let first = family_id_of(&app.grant_family().await);
    let (_, old) = checkpoint_covering_all(&app).await;
    for _ in 0..4 {
        app.grant_family().await;
    }
    renew(&app, first).await;
    let (_, new) = checkpoint_covering_all(&app).await;
    assert!(new.size > old.size);

    let history = app
        .get(
            &format!("/api/v1/families/{}/history", first.0),
            Some(&app.auditor),
        )
        .await;
    let events = history.body["events"].as_array().unwrap().clone();
    assert!(events.len() >= 2);
    for event in &events {
        let id = event["event_id"].as_str().unwrap();
        let answer = app
            .get(
                &format!("/api/v1/log/inclusion?event_id={id}"),
                Some(&app.auditor),
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        let proof: Vec<Hash> = answer.body["proof"]
            .as_array()
            .unwrap()
            .iter()
            .map(hash)
            .collect();
        let entry = unbase64(answer.body["entry"].as_str().unwrap());
        let index = answer.body["leaf_index"].as_u64().unwrap();
        assert_eq!(answer.body["tree_size"].as_u64().unwrap(), new.size);
        tlog_tiles::check_record(
            &proof,
            new.size,
            new.root,
            index,
            tlog_tiles::record_hash(&entry),
        )
        .unwrap();
        // The entry is the event as stored: its id, and sealed personal data (no names).
        let text = String::from_utf8(entry).unwrap();
        assert!(text.contains(id));
        assert!(
            !text.contains("Иванов"),
            "an entry holds a name in the clear"
        );
        // And the proof fails for any other entry.
        assert!(tlog_tiles::check_record(
            &proof,
            new.size,
            new.root,
            index,
            tlog_tiles::record_hash(b"x")
        )
        .is_err());
    }

    let answer = app
        .get(
            &format!("/api/v1/log/consistency?from={}&to={}", old.size, new.size),
            Some(&app.auditor),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    let proof: Vec<Hash> = answer.body["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    tlog_tiles::check_tree(&proof, new.size, new.root, old.size, old.root).unwrap();
    assert!(tlog_tiles::check_tree(&proof, new.size, new.root, old.size, new.root).is_err());

    // An entry is a read of the family's data as stored: the access record shows it.
    let record = app
        .get(
            &format!("/api/v1/families/{}/access-log", first.0),
            Some(&app.auditor),
        )
        .await;
    let proofs_recorded = record.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"]["role"] == "auditor" && e["what"] == "history")
        .count();
    // One for the history read above, one per inclusion proof.
    assert!(proofs_recorded > events.len(), "{}", record.text);

    // Proofs are for auditors; bad queries are clear problems.
    let id = events[0]["event_id"].as_str().unwrap();
    let path = format!("/api/v1/log/inclusion?event_id={id}");
    app.get(&path, Some(&app.officer))
        .await
        .assert_problem(403, "forbidden");
    app.get(&path, None)
        .await
        .assert_problem(401, "unauthenticated");
    app.get("/api/v1/log/inclusion?event_id=nope", Some(&app.auditor))
        .await
        .assert_problem(422, "validation_failed");
    let unknown = format!("/api/v1/log/inclusion?event_id={}", uuid::Uuid::now_v7());
    app.get(&unknown, Some(&app.auditor))
        .await
        .assert_problem(404, "not_found");
    let too_big = format!("/api/v1/log/consistency?from=1&to={}", new.size + 1);
    app.get(&too_big, Some(&app.auditor))
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/v1/log/consistency?from=3&to=2", Some(&app.auditor))
        .await
        .assert_problem(422, "validation_failed");

    // The log key is published with the QR keys too.
    let keys = app.get("/.well-known/registry-keys.json", None).await;
    assert_eq!(keys.body["log_key"].as_str().unwrap(), log_key(&app).await);
}

fn witness() -> CosignatureSigner {
    CosignatureSigner::new(
        "witness.example.org/auditor",
        ed25519_dalek_key(11),
        1_795_000_000,
    )
}

fn ed25519_dalek_key(seed: u8) -> registry_tlog::cosign::SigningKey {
    registry_tlog::cosign::SigningKey::from_bytes(&[seed; 32])
}

/// The text a witness cosigns: the checkpoint body, without signature lines.
fn body_of(note: &str) -> String {
    format!("{}\n", note.split_once("\n\n").unwrap().0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_witness_cosignature_is_kept_and_served_and_others_are_refused() {
    let config = Config {
        witness_keys: vec![witness().verifier_key()],
        ..Config::default()
    };
    let app = spawn_app_with(Db::Sqlite, config).await.unwrap();
    app.grant_family().await;
    let (note, opened) = checkpoint_covering_all(&app).await;
    let cosigned = format!("{note}{}", cosign(&witness(), &body_of(&note)));
    let post = |body: String| {
        let app = &app;
        async move {
            app.raw(
                app.client
                    .post(format!("{}/log/cosignatures", app.base))
                    .body(body),
            )
            .await
        }
    };
    let answer = post(cosigned.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["accepted"][0], "witness.example.org/auditor");

    let served = app.get("/log/checkpoint", None).await.text;
    assert!(
        served.starts_with(&note) && served.len() > note.len(),
        "{served}"
    );
    let verifier =
        registry_tlog::cosign::CosignatureVerifier::new(&witness().verifier_key()).unwrap();
    let both = open_checkpoint(&served, &log_key(&app).await, &[verifier]).unwrap();
    assert_eq!(both.witnesses.len(), 1);
    assert_eq!(both.witnesses[0].name, "witness.example.org/auditor");
    assert_eq!(both.size, opened.size);

    // A witness that is not configured, a cosignature over another tree head, and garbage.
    let stranger = CosignatureSigner::new("stranger.example", ed25519_dalek_key(12), 1);
    post(format!("{note}{}", cosign(&stranger, &body_of(&note))))
        .await
        .assert_problem(422, "validation_failed");
    let other_head = body_of(&note).replacen(&format!("\n{}\n", opened.size), "\n999\n", 1);
    post(format!("{note}{}", cosign(&witness(), &other_head)))
        .await
        .assert_problem(422, "validation_failed");
    post("not a note".into())
        .await
        .assert_problem(422, "validation_failed");

    // A forged line under the witness's name (another key id) put before the real one, and an
    // older cosignature replayed: neither replaces the kept cosignature.
    let forged = {
        use base64::Engine;
        let blob: Vec<u8> = (0u8..76).collect();
        format!(
            "— witness.example.org/auditor {}\n",
            base64::engine::general_purpose::STANDARD.encode(blob)
        )
    };
    let served_before = app.get("/log/checkpoint", None).await.text;
    let (head, sigs) = served_before.split_once("\n\n").unwrap();
    let _ = post(format!("{head}\n\n{forged}{sigs}")).await;
    let older = CosignatureSigner::new("witness.example.org/auditor", ed25519_dalek_key(11), 5);
    let replayed = post(format!("{note}{}", cosign(&older, &body_of(&note)))).await;
    assert_eq!(replayed.status, StatusCode::OK, "{}", replayed.text);
    let served_after = app.get("/log/checkpoint", None).await.text;
    assert_eq!(
        served_after, served_before,
        "a kept cosignature was replaced"
    );

    // Once newer checkpoints follow, the cosigned one is still served by its size.
    app.grant_family().await;
    checkpoint_covering_all(&app).await;
    let by_size = app
        .get(&format!("/log/checkpoints/{}", opened.size), None)
        .await;
    assert_eq!(by_size.status, StatusCode::OK);
    assert_eq!(by_size.text, served_before);
    app.get("/log/checkpoints/999999", None)
        .await
        .assert_problem(404, "not_found");
}

/// An administrator who edits the server's stored tree (not the events) breaks proofs; the
/// audit names the leaves under the altered hash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_tree_hash_is_named_by_the_leaves_it_covers() {
    let (stores, _dir) = fresh_stores(Db::Sqlite).await.unwrap();
    let app = spawn_on(&stores).await;
    for _ in 0..4 {
        app.grant_family().await;
    }
    checkpoint_covering_all(&app).await;
    let key = log_key(&app).await;
    app.running.stop().await.unwrap();
    // Stored hash 2 is the level-1 node over leaves 0 and 1 (Go's stored-hash numbering).
    let views = rusqlite::Connection::open(stores.data_dir.join("views.db")).unwrap();
    views
        .execute(
            "UPDATE tlog_hashes SET hash = zeroblob(32) WHERE idx = 2",
            [],
        )
        .unwrap();
    drop(views);
    match audit(&stores, &key).await {
        Err(AuditError::Found(Finding::TreeHash {
            level: 1,
            first_leaf: 0,
            last_leaf: 1,
        })) => {}
        other => panic!("the altered tree hash was not named: {other:?}"),
    }
}

/// Runs SQL on the event store's database as an administrator would, triggers dropped first.
async fn tamper(stores: &Stores, sql: &str) {
    match &stores.event_store {
        None => {
            let conn = rusqlite::Connection::open(stores.data_dir.join("registry.db")).unwrap();
            conn.execute_batch(
                "DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete;",
            )
            .unwrap();
            conn.execute_batch(sql).unwrap();
        }
        Some(url) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(
                "DROP TRIGGER IF EXISTS events_no_update_or_delete ON events; \
                 DROP TRIGGER IF EXISTS events_no_truncate ON events;",
            )
            .execute(&mut conn)
            .await
            .unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
    }
}

async fn audit(
    stores: &Stores,
    key: &str,
) -> Result<registry_tlog::audit::AuditReport, AuditError> {
    registry_cli::audit::audit(stores, key, None, &|_| {})
        .await
        .unwrap()
}

fn position_of(finding: &Finding) -> Option<(u64, u64)> {
    match finding {
        Finding::Changed {
            index, position, ..
        }
        | Finding::Removed { index, position }
        | Finding::Unexpected {
            index, position, ..
        } => Some((*index, *position)),
        _ => None,
    }
}

/// Five grants, signed; then `alter` (given the positions) tampers; the audit must name the
/// leaf and position `expected` returns.
async fn audit_catches(db: Db, alter: impl Fn(&[u64]) -> (String, usize), regrow: usize) {
    let Some((stores, _dir)) = fresh_stores(db).await else {
        return;
    };
    let app = spawn_on(&stores).await;
    for _ in 0..5 {
        app.grant_family().await;
    }
    checkpoint_covering_all(&app).await;
    let key = log_key(&app).await;
    let untouched = audit(&stores, &key).await.unwrap();
    assert_eq!(untouched.events, 5);
    assert!(untouched.checkpoints >= 1);

    let positions: Vec<u64> = app
        .running
        .state
        .registry()
        .store()
        .read_all(1, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.position)
        .collect();
    let (sql, bad) = alter(&positions);
    tamper(&stores, &sql).await;
    for _ in 0..regrow {
        app.grant_family().await;
    }
    let finding = match audit(&stores, &key).await {
        Err(AuditError::Found(f)) => f,
        other => panic!("the audit missed `{sql}`: {other:?}"),
    };
    assert_eq!(
        position_of(&finding),
        Some((bad as u64, positions[bad])),
        "`{sql}` gave: {finding}"
    );
    assert!(finding
        .to_string()
        .contains(&format!("position {}", positions[bad])));
    app.running.stop().await.unwrap();
}

async fn an_edited_event_is_named_by_its_position(db: Db) {
    audit_catches(
        db,
        |p| {
            (
                format!(
                    "UPDATE events SET data = data || ' ' WHERE position = {}",
                    p[2]
                ),
                2,
            )
        },
        0,
    )
    .await;
}

async fn a_deleted_event_is_named_by_its_position(db: Db) {
    audit_catches(
        db,
        |p| (format!("DELETE FROM events WHERE position = {}", p[1]), 1),
        0,
    )
    .await;
}

async fn two_swapped_events_are_named_by_the_first_position(db: Db) {
    audit_catches(
        db,
        |p| {
            (
                format!(
                    "UPDATE events SET position = -1 WHERE position = {a}; \
                     UPDATE events SET position = {a} WHERE position = {b}; \
                     UPDATE events SET position = {b} WHERE position = -1;",
                    a = p[1],
                    b = p[3]
                ),
                1,
            )
        },
        0,
    )
    .await;
}

async fn a_truncated_and_regrown_log_is_named_at_the_first_lost_position(db: Db) {
    audit_catches(
        db,
        |p| (format!("DELETE FROM events WHERE position >= {}", p[2]), 2),
        3,
    )
    .await;
}

registry_e2e::on_both_backends!(
    every_event_of_a_family_is_proved_included_in_the_signed_log,
    an_edited_event_is_named_by_its_position,
    a_deleted_event_is_named_by_its_position,
    two_swapped_events_are_named_by_the_first_position,
    a_truncated_and_regrown_log_is_named_at_the_first_lost_position,
);

/// The builder takes a burst of commands in a few rounds, not one round (two write transactions
/// and a signature) per command: the checkpoints kept over 24 renewals in a row are far fewer
/// than the renewals, and the last one still covers every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_commands_is_signed_in_a_few_checkpoints_that_cover_it_all() {
    let Some(app) = spawn_app(Db::Sqlite).await else {
        return;
    };
    let family = family_id_of(&app.grant_family().await);
    let (_, before) = checkpoint_covering_all(&app).await;
    const RENEWALS: u64 = 24;
    for _ in 0..RENEWALS {
        renew(&app, family).await;
    }
    let (_, after) = checkpoint_covering_all(&app).await;
    assert_eq!(after.size, before.size + RENEWALS);
    let mut kept = 0;
    for size in before.size + 1..=after.size {
        if app
            .get(&format!("/log/checkpoints/{size}"), None)
            .await
            .status
            == StatusCode::OK
        {
            kept += 1;
        }
    }
    assert!(
        (1..=RENEWALS / 2).contains(&kept),
        "{kept} checkpoints kept over {RENEWALS} renewals"
    );
}

/// An administrator who rewrites the tree store too (so the server's own tree agrees with the
/// altered log) is still caught by the checkpoint an auditor kept from an earlier audit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_checkpoint_catches_a_log_rebuilt_with_its_tree() {
    let (stores, _dir) = fresh_stores(Db::Sqlite).await.unwrap();
    let app = spawn_on(&stores).await;
    for _ in 0..4 {
        app.grant_family().await;
    }
    checkpoint_covering_all(&app).await;
    let key = log_key(&app).await;
    let kept = stores.data_dir.join("kept-checkpoint.txt");
    let first = registry_cli::audit::audit(&stores, &key, Some(&kept), &|_| {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.kept, None);
    assert!(std::fs::read_to_string(&kept)
        .unwrap()
        .contains(&format!("\n{}\n", first.events)));
    app.running.stop().await.unwrap();

    // Rewrite: drop the last two events and the whole tree, then serve again (it rebuilds).
    let positions: Vec<u64> = {
        let conn = rusqlite::Connection::open(stores.data_dir.join("registry.db")).unwrap();
        let mut q = conn
            .prepare("SELECT position FROM events ORDER BY position")
            .unwrap();
        q.query_map([], |r| r.get::<_, i64>(0))
            .unwrap()
            .map(|p| p.unwrap() as u64)
            .collect()
    };
    tamper(
        &stores,
        &format!("DELETE FROM events WHERE position >= {}", positions[2]),
    )
    .await;
    let views = rusqlite::Connection::open(stores.data_dir.join("views.db")).unwrap();
    views
        .execute_batch(
            "DELETE FROM tlog_leaves; DELETE FROM tlog_hashes; DELETE FROM tlog_checkpoints;",
        )
        .unwrap();
    drop(views);
    let app = spawn_on(&stores).await;
    for _ in 0..3 {
        app.grant_family().await;
    }
    checkpoint_covering_all(&app).await;
    // The server's own tree and checkpoints agree with the rewritten log...
    assert!(audit(&stores, &key).await.is_ok());
    // ...but not with what the auditor kept.
    let outcome = registry_cli::audit::audit(&stores, &key, Some(&kept), &|_| {})
        .await
        .unwrap();
    match outcome {
        Err(AuditError::Found(Finding::Root {
            size: 4,
            kept: true,
        })) => {}
        other => panic!("the kept checkpoint did not catch the rewrite: {other:?}"),
    }
    app.running.stop().await.unwrap();
}

/// Builds the Go verifier (`tests/go-verifier`, on golang.org/x/mod's `sumdb/note` and
/// `sumdb/tlog`): Debian's packaged x/mod when installed (`golang-golang-x-mod-dev`, as in
/// `.ci/run`), else the pinned module through the Go proxy. `None` (skip) where Go is missing,
/// unless `REGISTRY_REQUIRE_GO` is set.
fn go_verifier(out: &std::path::Path) -> Option<std::path::PathBuf> {
    let required = std::env::var_os("REGISTRY_REQUIRE_GO").is_some();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("go-verifier");
    let binary = out.join("go-verifier");
    let debian = std::path::Path::new("/usr/share/gocode/src/golang.org/x/mod").exists();
    let mut build = std::process::Command::new("go");
    build.current_dir(&source).arg("build");
    if debian {
        build
            .args(["-modfile=go.debian.mod"])
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod");
    }
    build.arg("-o").arg(&binary).arg(".");
    match build.output() {
        Ok(done) if done.status.success() => Some(binary),
        Ok(done) if required => panic!(
            "building the Go verifier failed: {}",
            String::from_utf8_lossy(&done.stderr)
        ),
        Err(e) if required => panic!("no Go toolchain (apt-get install golang-go): {e}"),
        _ => {
            eprintln!("skipped: the Go verifier could not be built here");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_independent_go_verifier_accepts_the_checkpoint_proofs_and_cosignature() {
    let dir = tempfile::tempdir().unwrap();
    let Some(verifier) = go_verifier(dir.path()) else {
        return;
    };
    let config = Config {
        witness_keys: vec![witness().verifier_key()],
        ..Config::default()
    };
    let app = spawn_app_with(Db::Sqlite, config).await.unwrap();
    for _ in 0..3 {
        app.grant_family().await;
    }
    let (old, _) = checkpoint_covering_all(&app).await;
    let old_file = dir.path().join("old-checkpoint");
    std::fs::write(&old_file, &old).unwrap();
    for _ in 0..4 {
        app.grant_family().await;
    }
    let (note, new) = checkpoint_covering_all(&app).await;
    let cosigned = format!("{note}{}", cosign(&witness(), &body_of(&note)));
    let posted = app
        .raw(
            app.client
                .post(format!("{}/log/cosignatures", app.base))
                .body(cosigned),
        )
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.text);

    let events: Vec<String> = app
        .running
        .state
        .registry()
        .store()
        .read_all(1, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event_id.to_string())
        .collect();
    let run = |key: String| {
        tokio::process::Command::new(&verifier)
            .args(["-url", &app.base, "-token", &app.auditor, "-log-key", &key])
            .args(["-events", &events.join(",")])
            .arg("-old")
            .arg(&old_file)
            .args(["-witness-key", &witness().verifier_key()])
            .output()
    };
    let done = run(log_key(&app).await).await.unwrap();
    let stdout = String::from_utf8_lossy(&done.stdout).to_string();
    assert!(
        done.status.success(),
        "the Go verifier refused the log: {stdout}{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(stdout.contains(&format!("size {}", new.size)), "{stdout}");
    assert_eq!(
        stdout.matches("ok inclusion").count(),
        events.len(),
        "{stdout}"
    );
    assert!(stdout.contains("ok consistency"), "{stdout}");
    assert!(
        stdout.contains("ok cosignature witness.example.org/auditor"),
        "{stdout}"
    );

    // The same verifier refuses the log under another key.
    let (other, _) = registry_tlog::LogKey::generate(registry_tlog::note::DEFAULT_ORIGIN).unwrap();
    let other = other.verifier_key().to_owned();
    let refused = run(other).await.unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("FAIL"));
}

/// The auditor's family page proves each event included and says against which checkpoint; an
/// event altered in the database is shown as not confirmed. Officers see no such check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auditors_family_page_shows_every_event_proved_in_the_signed_log() {
    let (stores, _dir) = fresh_stores(Db::Sqlite).await.unwrap();
    let app = spawn_on(&stores).await;
    let family = family_id_of(&app.grant_family().await);
    renew(&app, family).await;
    let (_, checkpoint) = checkpoint_covering_all(&app).await;

    let auditor = browser();
    sign_in(&app, &auditor, &app.auditor).await;
    let url = format!("{}/console/families/{}", app.base, family.0);
    let (status, _, html) = page(&auditor, url.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!(
            "Все события семьи (2) включены в подписанный журнал: доказательство включения \
             каждого проверено по контрольной точке на {} записей",
            checkpoint.size
        )),
        "{html}"
    );
    assert_eq!(html.matches("в журнале, запись №").count(), 2, "{html}");
    // The QR is for officers who hand it out: an auditor's page shows no image it may not load.
    assert!(!html.contains("/qr.png"), "{html}");

    let officer = browser();
    sign_in(&app, &officer, &app.officer).await;
    let (_, _, html) = page(&officer, url.clone()).await;
    assert!(
        !html.contains("подписанный журнал"),
        "officers get no log check"
    );

    // Someone edits the first event in the database: the page says so.
    let first = app
        .running
        .state
        .registry()
        .store()
        .read_all(1, 1)
        .await
        .unwrap()[0]
        .position;
    tamper(
        &stores,
        &format!("UPDATE events SET data = data || ' ' WHERE position = {first}"),
    )
    .await;
    let (_, _, html) = page(&auditor, url).await;
    assert!(html.contains("не подтверждается журналом"), "{html}");
    assert!(
        html.contains(&format!("события на позициях {first} не подтверждаются")),
        "{html}"
    );
}
