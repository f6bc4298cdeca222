//! On moto, as Lambda runs the functions: `LTI_PREVIOUS_KMS_KEY_IDS` naming a key that
//! does not exist (a typo, a deleted key) next to a real previous key. The JWKS still
//! answers with the active and the real previous key, a full launch signs its app
//! token, and the missing key is asked for once per instance, not on every request.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lti_aws::calls::CallCounter;
use lti_aws::dynamo::DynamoStore;
use lti_aws::functions;
use lti_aws::kms::KmsSigner;
use lti_aws::lambda::to_http;
use lti_core::clock::{Clock, SystemClock};
use lti_core::login::{state_cookie_name, state_cookie_value};
use lti_core::platform::{Deployment, PlatformStore};
use lti_core::signer::{LocalRsaSigner, Signer};
use serde_json::{json, Value};

const ISS: &str = "https://lms.example.edu";
const CLIENT: &str = "tool-client-1";
const TOOL: &str = "https://abc123.execute-api.us-east-1.amazonaws.com";

fn event(name: &str) -> lambda_http::Request {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("event file");
    lambda_http::request::from_str(&text).expect("a valid API Gateway v2 event")
}

/// Serves `keys` as a JWKS on 127.0.0.1; returns its URL.
async fn serve_jwks(keys: Value) -> String {
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

fn id_token(key: &LocalRsaSigner, nonce: &str) -> String {
    let now = SystemClock.now();
    let lti = "https://purl.imsglobal.org/spec/lti/claim/";
    let claims = json!({
        "iss": ISS, "aud": CLIENT, "sub": "user-7", "iat": now, "exp": now + 300, "nonce": nonce,
        format!("{lti}message_type"): "LtiResourceLinkRequest",
        format!("{lti}version"): "1.3.0",
        format!("{lti}deployment_id"): "1",
        format!("{lti}target_link_uri"): format!("{TOOL}/lti/launch"),
        format!("{lti}resource_link"): {"id": "rl-1"},
        format!("{lti}roles"): [],
    });
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key.public_jwk().kid});
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", part(&header), part(&claims));
    let signature = key.sign_now(input.as_bytes()).expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn launch_event(token: &str, state: &str) -> lambda_http::Request {
    let path = format!(
        "{}/../../events/launch-post.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut raw: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("file")).expect("json");
    raw["body"] =
        json!(serde_urlencoded::to_string([("id_token", token), ("state", state)]).expect("form"));
    raw["isBase64Encoded"] = json!(false);
    let cookie = state_cookie_value(state, SystemClock.now() * 1000);
    raw["cookies"] = json!([format!("{}={cookie}", state_cookie_name(state))]);
    lambda_http::request::from_str(&raw.to_string()).expect("event")
}

fn get_public_key_calls(counter: &CallCounter) -> usize {
    counter
        .take()
        .iter()
        .filter(|c| c.as_str() == "kms:GetPublicKey")
        .count()
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn a_missing_previous_key_neither_breaks_the_jwks_nor_launches_nor_is_asked_for_each_time() {
    let counter = CallCounter::default();
    let clients = common::moto(Some(counter.clone())).await;
    let table = common::fresh_table(&clients).await;
    let (active, _) = common::fresh_key(&clients).await;
    let (old, _) = common::fresh_key(&clients).await;
    let missing = format!("alias/lti-test-missing-{}", common::uuid_like());
    let platform_key = LocalRsaSigner::generate().expect("key");
    let store = DynamoStore::new(clients.dynamodb.clone(), table.clone());
    let mut platform = lti_core::contract::sample_platform(ISS, CLIENT, SystemClock.now());
    platform.keyset_url = serve_jwks(json!({"keys": [platform_key.public_jwk()]})).await;
    store.save_platform(platform).await.expect("platform");
    store
        .save_deployment(Deployment {
            issuer: ISS.into(),
            client_id: CLIENT.into(),
            deployment_id: "1".into(),
            created_at: SystemClock.now(),
        })
        .await
        .expect("deployment");
    let previous = format!("{missing},{old}");
    let vars = common::lookup(&[
        ("LTI_BASE_URL", TOOL),
        ("LTI_APP_LANDING_URL", "https://app.example/landing"),
        ("LTI_TABLE_NAME", &table),
        ("LTI_KMS_KEY_ID", &active),
        ("LTI_PREVIOUS_KMS_KEY_IDS", &previous),
        // The test platform's keys are served on 127.0.0.1.
        ("LTI_INSECURE_ALLOW_LOOPBACK_URLS", "true"),
    ]);
    let kid = |key: &str| {
        let signer = KmsSigner::new(clients.kms.clone(), key.to_string(), vec![]);
        async move { signer.key_id().await.expect("kid") }
    };
    let (active_kid, old_kid) = (kid(&active).await, kid(&old).await);
    counter.take();

    // The jwks function: five requests, the active and the real previous key each time.
    let jwks = functions::jwks(&clients, &vars);
    for _ in 0..5 {
        let response = jwks
            .serve(to_http(event("jwks-get.json")), |h, r| h.handle(r))
            .await;
        assert_eq!(
            response.status(),
            200,
            "{}",
            String::from_utf8_lossy(response.body())
        );
        let body: Value = serde_json::from_slice(response.body()).expect("json");
        let kids: Vec<&str> = body["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid"))
            .collect();
        assert_eq!(kids, [active_kid.as_str(), old_kid.as_str()]);
    }
    let jwks_calls = get_public_key_calls(&counter);

    // The login and launch functions: a full launch signs its app token.
    let functions::Function::Ready(login_fn) = functions::login(&clients, &vars) else {
        panic!("login configured")
    };
    let functions::Function::Ready(launch_fn) = functions::launch(&clients, &vars) else {
        panic!("launch configured")
    };
    let mut launch_calls = 0;
    for _ in 0..3 {
        let response = login_fn.handle(to_http(event("login-get.json"))).await;
        assert_eq!(response.status(), 302);
        let location =
            url::Url::parse(response.headers()["location"].to_str().expect("ascii")).expect("url");
        let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
        counter.take();
        let response = launch_fn
            .handle(to_http(launch_event(
                &id_token(&platform_key, &q["nonce"]),
                &q["state"],
            )))
            .await;
        assert_eq!(
            response.status(),
            200,
            "{}",
            String::from_utf8_lossy(response.body())
        );
        launch_calls += get_public_key_calls(&counter);
        let page = String::from_utf8_lossy(response.body()).to_string();
        let token = page
            .split("name=\"app_token\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the app token in the hand-off form");
        let header = jsonwebtoken::decode_header(token).expect("header");
        assert_eq!(header.kid.as_deref(), Some(active_kid.as_str()));
    }

    println!(
        "GetPublicKey calls: jwks function {jwks_calls} for 5 requests; launch function \
         {launch_calls} for 3 launches"
    );
    assert_eq!(
        jwks_calls, 3,
        "active, missing and old key, once each for five requests"
    );
    assert_eq!(
        launch_calls, 0,
        "the jwks function kept the active key's public half in the table: the launch \
         reads it with its registration, and never the previous keys"
    );
}
