//! Erasure of a family's personal data (crypto-shredding), over HTTP on a real socket: refused
//! while the status is in force and before the retention period ends; afterwards the QR is not
//! in the registry, the views read «сведения удалены», and no file of the data directory holds
//! an erased name or birth date, while another family stays readable.

#![allow(clippy::unwrap_used)]

use registry_cli::Stores;
use registry_e2e::*;
use registry_test_support::postgres::{fresh_database_on, Cluster};
use reqwest::StatusCode;
use serde_json::{json, Value};

const SURNAME: &str = "Шрёдингерова";
const FIRST: &str = "Евлампия";
const BORN: &str = "1979-03-17";
const CHILD_BORN: &str = "2013-07-29";
const SNILS: &str = "137-294-551 80";

fn erased_family_body() -> Value {
    json!({
        "decision": {"number": "Р-2026/501", "date": "2026-11-20", "office": "УСЗН района Арбат"},
        "members": [
            {"last_name": SURNAME, "first_name": FIRST, "middle_name": "Аристарховна", "birth_date": BORN, "relation": "parent", "snils": SNILS},
            {"last_name": "Шрёдингеров", "first_name": "Вениамин", "birth_date": CHILD_BORN, "relation": "child"},
            {"last_name": "Шрёдингеров", "first_name": "Савватий", "birth_date": "2016-02-11", "relation": "child"},
            {"last_name": "Шрёдингерова", "first_name": "Пелагея", "birth_date": "2020-10-05", "relation": "child"}
        ]
    })
}

fn erasure() -> Value {
    json!({"reason": "истёк срок хранения", "decision": {"number": "Р-2032/9", "date": "2026-11-25"}})
}

/// Every personal value of the erased family, in the forms the code could write it.
fn secrets() -> Vec<String> {
    let mut out = Vec::new();
    for text in [
        SURNAME,
        "Шрёдингеров",
        FIRST,
        "Аристарховна",
        "Вениамин",
        "Савватий",
        "Пелагея",
    ] {
        out.push(text.to_string());
        // JSON with non-ASCII escaped, should anything write it that way.
        out.push(
            text.encode_utf16()
                .map(|u| format!("\\u{u:04x}"))
                .collect::<String>(),
        );
        out.push(text.to_lowercase());
    }
    // The СНИЛС as printed and as bare digits.
    out.push(SNILS.to_string());
    out.push(SNILS.replace(['-', ' '], ""));
    for date in [BORN, CHILD_BORN, "2016-02-11", "2020-10-05"] {
        out.push(date.to_string());
        let (y, rest) = date.split_at(4);
        out.push(format!("{}.{}.{y}", &rest[4..6], &rest[1..3]));
    }
    out
}

fn files_holding(dir: &std::path::Path, needles: &[String]) -> Vec<String> {
    let finder = aho_corasick::AhoCorasick::new(needles).unwrap();
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if !path.is_file() {
                continue; // the server's socket
            }
            let bytes = std::fs::read(&path).unwrap();
            for m in finder.find_overlapping_iter(&bytes) {
                found.push(format!(
                    "{} holds {}",
                    path.display(),
                    needles[m.pattern().as_usize()]
                ));
            }
        }
    }
    found
}

fn verify_path(app: &TestApp, granted: &Value) -> String {
    let page = app.path_of(granted["verify_url"].as_str().unwrap());
    page.replacen("/v/", "/api/v1/verify/", 1)
}

#[tokio::test]
async fn an_erased_family_is_gone_from_every_file_and_reads_as_erased_while_another_stays() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let dir = app.data_dir.clone();
    erase_and_find_nothing(app, &[dir]).await;
}

/// The same on PostgreSQL, in a cluster of the test's own so that every byte of its data
/// directory can be read: after the erasure (whose scrub is the maintenance docs/DESIGN.md §9
/// describes, on a server with `wal_recycle = off`) neither the registry's data directory nor
/// the cluster's files (tables, WAL, the server log) hold the erased family.
#[tokio::test]
async fn on_postgresql_an_erased_family_is_gone_from_the_cluster_files_too() {
    let cluster = match Cluster::start(&["fsync=off", "wal_recycle=off"]) {
        Ok(c) => c,
        Err(why) if std::env::var_os("REGISTRY_REQUIRE_POSTGRES").is_none() => {
            eprintln!("skipped: needs PostgreSQL's server programs ({why})");
            return;
        }
        Err(why) => panic!("PostgreSQL is required but could not start: {why}"),
    };
    let data = tempfile::tempdir().unwrap();
    let stores = Stores {
        data_dir: data.path().to_path_buf(),
        event_store: Some(fresh_database_on(&cluster.url).await),
        read_store: Some(fresh_database_on(&cluster.url).await),
    };
    let app = spawn_on(&stores).await;
    erase_and_find_nothing(app, &[data.path().to_path_buf(), cluster.dir.clone()]).await;
}

async fn erase_and_find_nothing(app: TestApp, dirs: &[std::path::PathBuf]) {
    let granted = app
        .post("/api/v1/families", &app.officer, erased_family_body())
        .await;
    assert_eq!(granted.status, StatusCode::CREATED, "{}", granted.text);
    let family = family_id_of(&granted.body);
    let other = app.grant_family().await;
    let path = format!("/api/v1/families/{}", family.0);

    // In force: refused, and nothing appended.
    let before = app.event_count().await;
    let refused = app
        .post(&format!("{path}/erasure"), &app.officer, erasure())
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert_eq!(app.event_count().await, before);

    let revoked = app
        .post(
            &format!("{path}/revocation"),
            &app.officer,
            json!({"reason": "переезд в другой регион"}),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);

    // Ended, but the retention period has not passed: refused, saying from when.
    let early = app
        .post(&format!("{path}/erasure"), &app.officer, erasure())
        .await;
    assert_eq!(early.status, StatusCode::CONFLICT, "{}", early.text);
    assert!(early.text.contains("2031-11-25"), "{}", early.text);
    // An auditor may not erase.
    let auditor = app
        .post(&format!("{path}/erasure"), &app.auditor, erasure())
        .await;
    assert_eq!(auditor.status, StatusCode::FORBIDDEN, "{}", auditor.text);

    app.advance_days(5 * 365 + 1);
    let erased = app
        .post(&format!("{path}/erasure"), &app.officer, erasure())
        .await;
    assert_eq!(erased.status, StatusCode::OK, "{}", erased.text);

    // The QR is not in the registry: the same answer as a token never issued.
    let scan = app.get(&verify_path(&app, &granted.body), None).await;
    assert_eq!(scan.status, StatusCode::NOT_FOUND, "{}", scan.text);
    assert!(!scan.text.contains(SURNAME));

    // The family view and the history keep the facts and erase the person.
    let view = app.get(&path, Some(&app.officer)).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.text);
    for m in view.body["members"].as_array().unwrap() {
        assert_eq!(m["last_name"], "сведения удалены");
        assert_eq!(m["first_name"], "сведения удалены");
        assert_eq!(m["birth_date"], "сведения удалены");
    }
    let history = app
        .get(&format!("{path}/history"), Some(&app.auditor))
        .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    assert_eq!(
        event_types(&history.body),
        ["StatusGranted", "StatusRevoked", "PersonalDataErased"]
    );
    assert!(
        history.text.contains("переезд в другой регион"),
        "reasons stay"
    );
    // What the grant recorded is still shown, its members erased (read from the event store,
    // where the destroyed key leaves each sealed field erased).
    let granted = &history.body["events"][0]["data"];
    assert!(
        !granted["members"].as_array().unwrap().is_empty(),
        "{granted}"
    );
    for m in granted["members"].as_array().unwrap() {
        assert_eq!(m["last_name"], "сведения удалены", "{granted}");
    }
    for secret in secrets() {
        assert!(!history.text.contains(&secret), "{secret} in the history");
        assert!(!view.text.contains(&secret), "{secret} in the view");
    }
    // No more commands for it.
    let again = app
        .post(
            &format!("{path}/certificate/reissue"),
            &app.officer,
            json!({"reason": "утерян"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);

    // Another family is still readable.
    let other_view = app
        .get(
            &format!("/api/v1/families/{}", other["family_id"].as_str().unwrap()),
            Some(&app.officer),
        )
        .await;
    assert!(other_view.text.contains("Смирнова"), "{}", other_view.text);

    // Gone from disk: no file of the data directories (databases, WAL, shared memory) holds any
    // of it in any form, while the server runs and after it stopped.
    let found: Vec<String> = dirs
        .iter()
        .flat_map(|d| files_holding(d, &secrets()))
        .collect();
    assert!(found.is_empty(), "{found:#?}");
    app.running.stop().await.unwrap();
    let found: Vec<String> = dirs
        .iter()
        .flat_map(|d| files_holding(d, &secrets()))
        .collect();
    assert!(found.is_empty(), "{found:#?}");
    // The same search finds the other family, whose views still hold its names: the grep is not
    // blind.
    let other: Vec<String> = dirs
        .iter()
        .flat_map(|d| files_holding(d, &["Смирнова".to_string()]))
        .collect();
    assert!(!other.is_empty());
}

#[tokio::test]
async fn a_key_encryption_key_that_does_not_match_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let stores = registry_cli::Stores {
        data_dir: dir.path().to_path_buf(),
        event_store: None,
        read_store: None,
    };
    let app = spawn_on(&stores).await;
    app.grant_family().await;
    app.running.stop().await.unwrap();
    std::fs::write(dir.path().join("keys/personal-data.kek"), [7u8; 32]).unwrap();
    let err = stores.open_event_store().await.unwrap_err();
    assert!(
        format!("{err:#}").contains("key-encryption key does not open the family keys"),
        "{err:#}"
    );
}

#[tokio::test]
async fn a_family_recorded_before_sealing_is_refused_erasure_rather_than_half_erased() {
    use registry_store::{ExpectedRevision, NewEvent};
    let app = spawn_app(Db::Sqlite).await.unwrap();
    // A grant as the registry wrote it before sealing: schema version 1, names in the clear.
    let family = registry_domain::FamilyId(uuid::Uuid::now_v7());
    let granted = json!({
        "family_id": family.0, "certificate_id": uuid::Uuid::now_v7(),
        "certificate_number": "77-0000-0000-0001", "certificate_serial": 1,
        "decision": {"number": "Р-2019/1", "date": "2019-01-10"}, "policy": "moscow-2008",
        "members": [
            {"member_id": uuid::Uuid::now_v7(), "last_name": "Давняя", "first_name": "Анна",
             "birth_date": "1980-01-01", "relation": "parent"}
        ],
        "valid_from": "2019-01-10", "valid_until": "2020-01-10"
    });
    let metadata = json!({"actor": {"id": "legacy", "role": "system"},
        "correlation_id": uuid::Uuid::now_v7()});
    app.running
        .state
        .registry()
        .store()
        .append(
            &family.stream_name(),
            ExpectedRevision::NoStream,
            vec![NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: "StatusGranted".into(),
                schema_version: 1,
                data: granted.to_string(),
                metadata: metadata.to_string(),
                recorded_at: app.now(),
            }],
            None,
        )
        .await
        .unwrap();
    // Long expired, and the retention period long over: only its recording stands in the way.
    app.advance_days(5 * 365 + 1);
    let before = app.event_count().await;
    let refused = app
        .post(
            &format!("/api/v1/families/{}/erasure", family.0),
            &app.officer,
            erasure(),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.text);
    assert!(
        refused.text.contains("before personal data was sealed"),
        "{}",
        refused.text
    );
    assert_eq!(app.event_count().await, before);
}
