//! The DynamoDB key cache behind the platform keys, on moto, with the real HTTP
//! fetcher against a JWKS served on 127.0.0.1: a `no-store` document never lands in
//! the shared cache (and a copy kept from before is removed), a cacheable one does,
//! with its stale window, and items of the earlier format are not read.

mod common;

use aws_sdk_dynamodb::types::AttributeValue;
use lti_aws::dynamo::{key_part, DynamoStore};
use lti_core::clock::{Clock, SystemClock};
use lti_core::keys::{KeySetCache, PlatformKeys, SharedKeySet, STALE_WINDOW};
use lti_core::signer::LocalRsaSigner;
use lti_core::url_policy::UrlPolicy;
use lti_outbound::jwks::HttpKeySetFetcher;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A JWKS endpoint whose Cache-Control a test sets; counts its requests.
struct Jwks {
    url: String,
    cache_control: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

async fn serve(body: String, cache_control: &str) -> Jwks {
    let header = Arc::new(Mutex::new(cache_control.to_string()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (h, n) = (header.clone(), hits.clone());
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        let cache_control = h.lock().expect("lock").clone();
        n.fetch_add(1, Ordering::SeqCst);
        async move {
            (
                [
                    ("content-type", "application/json".to_string()),
                    ("cache-control", cache_control),
                ],
                body,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Jwks {
        url,
        cache_control: header,
        hits,
    }
}

fn instance(store: &Arc<DynamoStore>) -> PlatformKeys {
    let fetcher = HttpKeySetFetcher::new(UrlPolicy::ALLOW_LOOPBACK).expect("client");
    PlatformKeys::new(Arc::new(fetcher)).with_shared_cache(store.clone())
}

fn jwks_body(key: &LocalRsaSigner) -> String {
    json!({ "keys": [key.public_jwk()] }).to_string()
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn the_shared_key_cache_never_holds_a_no_store_document() {
    let clients = common::moto(None).await;
    let table = common::fresh_table(&clients).await;
    let store = Arc::new(DynamoStore::new(clients.dynamodb.clone(), table.clone()));
    let key = LocalRsaSigner::generate().expect("key");
    let kid = key.public_jwk().kid.clone();
    let now = SystemClock.now();

    // Cacheable: one instance fetches and shares it, with its stale window.
    let jwks = serve(jwks_body(&key), "max-age=600").await;
    instance(&store)
        .keys(&jwks.url, &kid, now)
        .await
        .expect("fetched");
    let shared = store.get(&jwks.url, now).await.expect("shared");
    assert_eq!(shared.fresh_until, now + 600);
    assert_eq!(shared.stale_until, now + 600 + STALE_WINDOW);
    // A cold instance uses it without fetching.
    instance(&store)
        .keys(&jwks.url, &kid, now + 1)
        .await
        .expect("from the shared cache");
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 1);

    // The platform now says no-store: the next fetch removes the shared copy.
    *jwks.cache_control.lock().expect("lock") = "no-cache, no-store".into();
    instance(&store)
        .keys(&jwks.url, &kid, now + 601)
        .await
        .expect("fetched");
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 2);
    assert!(
        store.get(&jwks.url, now + 601).await.is_none(),
        "no copy of a no-store document in DynamoDB"
    );

    // A platform that always says no-store never gets an item at all.
    let other = serve(jwks_body(&key), "no-store").await;
    let warm = instance(&store);
    for t in 0..3 {
        warm.keys(&other.url, &kid, now + t * 10)
            .await
            .expect("fetched");
    }
    assert_eq!(other.hits.load(Ordering::SeqCst), 3, "fetched each time");
    let item = clients
        .dynamodb
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            AttributeValue::S(format!("JWKS#{}", key_part(&other.url))),
        )
        .key("sk", AttributeValue::S("JWKS#v2".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item");
    assert!(item.item.is_none(), "no item for a no-store document");
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn a_cold_instance_serves_shared_keys_past_their_lifetime_only_while_the_platform_is_down() {
    let clients = common::moto(None).await;
    let table = common::fresh_table(&clients).await;
    let store = Arc::new(DynamoStore::new(clients.dynamodb.clone(), table));
    let key = LocalRsaSigner::generate().expect("key");
    let kid = key.public_jwk().kid.clone();
    let now = SystemClock.now();
    // Another instance fetched it an hour ago (max-age 60).
    let url = "http://127.0.0.1:9/jwks"; // nothing listens: the platform is down
    store
        .put(
            url,
            SharedKeySet {
                body: jwks_body(&key).into_bytes(),
                fresh_until: now - 3000,
                stale_until: now - 3000 + STALE_WINDOW,
            },
        )
        .await;
    instance(&store)
        .keys(url, &kid, now)
        .await
        .expect("stale keys while the platform is down");
    let err = instance(&store)
        .keys(url, &kid, now + STALE_WINDOW)
        .await
        .expect_err("past the stale window");
    assert!(matches!(err, lti_core::keys::KeyError::Fetch(_)));
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn items_of_the_earlier_format_are_not_read() {
    let clients = common::moto(None).await;
    let table = common::fresh_table(&clients).await;
    let store = DynamoStore::new(clients.dynamodb.clone(), table.clone());
    let url = "https://lms.example.edu/jwks";
    let now = SystemClock.now();
    // What earlier versions wrote: expires_at was the lifetime, sort key JWKS.
    clients
        .dynamodb
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S(format!("JWKS#{}", key_part(url))))
        .item("sk", AttributeValue::S("JWKS".into()))
        .item("entity", AttributeValue::S("jwks".into()))
        .item(
            "body",
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(
                br#"{"keys":[]}"#.to_vec(),
            )),
        )
        .item("expires_at", AttributeValue::N((now + 300).to_string()))
        .send()
        .await
        .expect("put");
    assert!(store.get(url, now).await.is_none());
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn the_services_function_refuses_loopback_platform_urls_unless_opted_in() {
    let clients = common::moto(None).await;
    let table = common::fresh_table(&clients).await;
    let admin = "moto-admin-token-0123456789abcdef0123456789";
    let register = |opt_in: Option<&'static str>| {
        let var = common::lookup(&[
            (
                "LTI_BASE_URL",
                "https://abc123.execute-api.us-east-1.amazonaws.com",
            ),
            ("LTI_APP_LANDING_URL", "https://app.example/landing"),
            ("LTI_TABLE_NAME", table.as_str()),
            // The services function signs with the tool key; registering makes no KMS call.
            ("LTI_KMS_KEY_ID", "alias/unused-here"),
            ("LTI_ADMIN_TOKEN", admin),
            ("LTI_INSECURE_ALLOW_LOOPBACK_URLS", opt_in.unwrap_or("")),
        ]);
        let function = lti_aws::functions::services(&clients, &var);
        async move {
            let request = http::Request::builder()
                .method("POST")
                .uri("https://abc123.execute-api.us-east-1.amazonaws.com/admin/platforms")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {admin}"))
                .body(bytes::Bytes::from(
                    json!({
                        "issuer": "https://lms.example.edu", "clientId": "c1", "name": "LMS",
                        "authLoginUrl": "https://lms.example.edu/auth",
                        "authTokenUrl": "https://lms.example.edu/token",
                        "keysetUrl": "http://127.0.0.1:8080/jwks"
                    })
                    .to_string(),
                ))
                .expect("request");
            let response = function.serve(request, |h, r| h.handle(r)).await;
            let body: serde_json::Value =
                serde_json::from_slice(response.body()).unwrap_or_default();
            (response.status().as_u16(), body)
        }
    };
    let (status, body) = register(None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "ADMIN_INVALID_PLATFORM");
    assert_eq!(body["error"]["fields"][0]["field"], "keysetUrl");
    assert!(body["error"]["fields"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("LTI_INSECURE_ALLOW_LOOPBACK_URLS"));
    let (status, body) = register(Some("true")).await;
    assert_eq!(status, 201, "{body}");
}
