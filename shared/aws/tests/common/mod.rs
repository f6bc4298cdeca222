//! Helpers for the tests that run against a moto server (tests/run.sh starts one and
//! sets AWS_ENDPOINT_URL, AWS_REGION and test credentials).
#![allow(dead_code)]

pub mod stack;

use lti_aws::calls::CallCounter;
use lti_aws::functions::Clients;
use lti_aws::provision;
use std::collections::HashMap;

/// Clients for the moto server named by `AWS_ENDPOINT_URL`.
pub async fn moto(counter: Option<CallCounter>) -> Clients {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL must point at a moto server (tests/run.sh starts one)");
    assert!(
        endpoint.starts_with("http://127.0.0.1"),
        "tests only talk to a local moto server"
    );
    Clients::from_env(counter).await
}

/// A fresh table, named uniquely so tests can run in parallel.
pub async fn fresh_table(clients: &Clients) -> String {
    let name = format!("lti-test-{}", uuid_like());
    provision::create_table(&clients.dynamodb, &name)
        .await
        .expect("create table");
    name
}

/// A fresh signing key with an alias; returns (key id, alias).
pub async fn fresh_key(clients: &Clients) -> (String, String) {
    let alias = format!("alias/lti-test-{}", uuid_like());
    let key = provision::create_signing_key(&clients.kms, &alias)
        .await
        .expect("create key");
    (key, alias)
}

pub fn uuid_like() -> String {
    use lti_core::random::{Random, SystemRandom};
    SystemRandom
        .token(9)
        .replace(['-', '_'], "x")
        .to_lowercase()
}

/// A configuration lookup over `pairs`.
pub fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

/// Serves `keys` as a JWKS on 127.0.0.1; returns its URL.
pub async fn serve_jwks(keys: serde_json::Value) -> String {
    let app = axum::Router::new().fallback(move || {
        let body = keys.to_string();
        async move { ([("content-type", "application/json")], body) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}
