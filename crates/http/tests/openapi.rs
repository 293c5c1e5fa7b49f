//! `schemas/openapi.json` is the document generated from the code; this test fails when it is
//! stale (regenerate with `UPDATE_SCHEMAS=1 cargo test -p registry-http --test openapi`).

use std::path::PathBuf;

#[test]
fn the_checked_in_openapi_document_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/openapi.json");
    let generated = registry_http::openapi::openapi_json();
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &generated).expect("write schemas/openapi.json");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "schemas/openapi.json is stale: run UPDATE_SCHEMAS=1 cargo test -p registry-http --test openapi"
    );
}

#[test]
fn the_document_covers_every_path_of_the_contract() {
    let doc: serde_json::Value =
        serde_json::from_str(&registry_http::openapi::openapi_json()).expect("valid JSON");
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/families",
        "/api/v1/families/{family_id}",
        "/api/v1/families/{family_id}/renewals",
        "/api/v1/families/{family_id}/members",
        "/api/v1/families/{family_id}/members/{member_id}",
        "/api/v1/families/{family_id}/members/{member_id}/removal",
        "/api/v1/families/{family_id}/revocation",
        "/api/v1/families/{family_id}/certificate/reissue",
        "/api/v1/families/{family_id}/history",
        "/api/v1/me/certificate",
        "/api/v1/me/certificate/qr.svg",
        "/api/v1/me/certificate/qr.png",
        "/api/v1/verify/{token}",
        "/.well-known/registry-keys.json",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} is missing from the OpenAPI document"
        );
    }
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
}
