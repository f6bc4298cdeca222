//! Service keys of the app's backend through the admin API of a running dev server:
//! created and shown once, listed without secrets, revoked (SERVICES-API.md).

mod common;

use common::dev::{Dev, ADMIN};
use serde_json::{json, Value};

async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("call");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_key_is_shown_once_listed_without_secrets_and_revoked() {
    let dev = Dev::start().await;
    let url = format!("{}/admin/service-keys", dev.tool);

    let (status, created) = call(
        reqwest::Method::POST,
        &url,
        Some(ADMIN),
        Some(json!({"name": "grade sync"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("the key, once");
    let id = created["id"].as_str().expect("id").to_string();
    assert!(
        key.starts_with(&format!("lsk_{id}_")) && key.len() > 40,
        "{key}"
    );

    let (status, listed) = call(reqwest::Method::GET, &url, Some(ADMIN), None).await;
    assert_eq!(status, 200);
    let text = listed.to_string();
    assert!(
        !text.contains(key.rsplit('_').next().expect("secret")),
        "{text}"
    );
    assert!(!text.contains("hash"), "{text}");
    let entry = listed["serviceKeys"]
        .as_array()
        .expect("list")
        .iter()
        .find(|k| k["id"] == id.as_str())
        .expect("listed")
        .clone();
    assert_eq!(entry["name"], "grade sync");
    assert!(entry["createdAt"].as_i64().is_some());
    // The dev server's own key is there too (created or from LTI_SERVICE_KEY).
    assert!(listed["serviceKeys"]
        .as_array()
        .expect("list")
        .iter()
        .any(|k| k["name"] == "dev server"));
    // And the dev server's key was never written in plain text.
    let store = std::fs::read_to_string(dev.data_dir().join("store.json")).expect("store");
    assert!(!store.contains(&dev.server.service_key));

    let (status, revoked) = call(
        reqwest::Method::DELETE,
        &format!("{url}/{id}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        (status, revoked["revoked"].clone()),
        (200, json!(true)),
        "{revoked}"
    );
    let (status, again) = call(
        reqwest::Method::DELETE,
        &format!("{url}/{id}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(
        (status, again["error"]["code"].clone()),
        (404, json!("HTTP_NOT_FOUND"))
    );
    dev.server.stop().await;
}

#[tokio::test]
async fn the_service_keys_api_needs_the_admin_token_and_a_name() {
    let dev = Dev::start().await;
    let url = format!("{}/admin/service-keys", dev.tool);
    let (status, body) = call(reqwest::Method::GET, &url, None, None).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("ADMIN_UNAUTHORIZED"))
    );
    let (status, body) = call(
        reqwest::Method::POST,
        &url,
        Some("not-the-admin-token-0123456789abcdef"),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (401, json!("ADMIN_UNAUTHORIZED"))
    );
    let (status, body) = call(reqwest::Method::POST, &url, Some(ADMIN), Some(json!({}))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "LTI_SERVICE_REQUEST_INVALID");
    assert_eq!(body["error"]["fields"][0]["field"], "name");
    let (status, body) = call(
        reqwest::Method::POST,
        &url,
        Some(ADMIN),
        Some(json!({"name": "x", "secret": "mine"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("HTTP_INVALID_JSON"))
    );
    dev.server.stop().await;
}
