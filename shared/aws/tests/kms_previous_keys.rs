//! A previous key (`LTI_PREVIOUS_KMS_KEY_IDS`) whose public half cannot be read must
//! not take signing down: the JWKS answers with the active key (and the readable
//! previous ones), tokens are signed and verify, and the unreadable key is asked for
//! again only after its retry time, not on every request. A fake KMS endpoint behind
//! the real SDK client plays every way GetPublicKey can fail.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use lti_aws::kms::KmsSigner;
use lti_core::signer::{PublicJwk, Signer};
use lti_http::handlers::JwksHandler;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The keys the fake KMS holds, by key id, and what it answers for the others.
struct FakeKms {
    keys: HashMap<&'static str, KeyPair>,
    /// GetPublicKey calls per key id.
    calls: Mutex<HashMap<String, usize>>,
}

/// How GetPublicKey fails for each unreadable key id (the SDK's own error types).
const FAILING: [(&str, u16, &str); 4] = [
    ("alias/typo", 400, "NotFoundException"),
    ("alias/disabled", 400, "DisabledException"),
    ("alias/denied", 400, "AccessDeniedException"),
    ("alias/throttled", 400, "ThrottlingException"),
];

fn public_der(key: &KeyPair) -> Vec<u8> {
    key.public_key().as_der().expect("der").as_ref().to_vec()
}

async fn fake_kms() -> (String, Arc<FakeKms>) {
    let kms = Arc::new(FakeKms {
        keys: [
            (
                "alias/active",
                KeyPair::generate(KeySize::Rsa2048).expect("key"),
            ),
            (
                "alias/old",
                KeyPair::generate(KeySize::Rsa2048).expect("key"),
            ),
        ]
        .into_iter()
        .collect(),
        calls: Mutex::new(HashMap::new()),
    });
    let state = kms.clone();
    let app = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let kms = state.clone();
            async move {
                let target = headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let request: Value = serde_json::from_slice(&body).unwrap_or_default();
                let key_id = request["KeyId"].as_str().unwrap_or("").to_string();
                let reply = |status: u16, body: Value| {
                    (
                        axum::http::StatusCode::from_u16(status).expect("status"),
                        [("content-type", "application/x-amz-json-1.1")],
                        body.to_string(),
                    )
                };
                if target.ends_with(".GetPublicKey") {
                    *kms.calls
                        .lock()
                        .expect("lock")
                        .entry(key_id.clone())
                        .or_default() += 1;
                }
                if let Some((_, status, kind)) = FAILING.iter().find(|(id, _, _)| *id == key_id) {
                    return reply(*status, json!({"__type": kind, "message": "fake"}));
                }
                let Some(key) = kms.keys.get(key_id.as_str()) else {
                    return reply(
                        400,
                        json!({"__type": "NotFoundException", "message": "fake"}),
                    );
                };
                if target.ends_with(".GetPublicKey") {
                    reply(
                        200,
                        json!({
                            "KeyId": key_id, "KeyUsage": "SIGN_VERIFY", "KeySpec": "RSA_2048",
                            "PublicKey": STANDARD.encode(public_der(key)),
                            "SigningAlgorithms": ["RSASSA_PKCS1_V1_5_SHA_256"],
                        }),
                    )
                } else if target.ends_with(".Sign") && request["MessageType"] == "RAW" {
                    let message = STANDARD
                        .decode(request["Message"].as_str().unwrap_or(""))
                        .expect("base64");
                    let mut signature = vec![0; key.public_modulus_len()];
                    key.sign(
                        &RSA_PKCS1_SHA256,
                        &aws_lc_rs::rand::SystemRandom::new(),
                        &message,
                        &mut signature,
                    )
                    .expect("sign");
                    reply(
                        200,
                        json!({"KeyId": key_id, "Signature": STANDARD.encode(signature),
                               "SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256"}),
                    )
                } else {
                    reply(400, json!({"__type": "UnsupportedOperationException"}))
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, kms)
}

fn client(endpoint: &str) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "fake"))
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

fn kid_of(der: &[u8]) -> String {
    PublicJwk::from_spki_der(der).expect("jwk").kid
}

async fn jwks(handler: &JwksHandler) -> Value {
    let request = http::Request::get("https://tool.example/.well-known/jwks.json")
        .body(bytes::Bytes::new())
        .expect("request");
    let response = handler.handle(request).await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        String::from_utf8_lossy(response.body())
    );
    serde_json::from_slice(response.body()).expect("json")
}

#[tokio::test]
async fn unreadable_previous_keys_are_left_out_and_asked_for_again_only_after_their_retry_time() {
    let (url, kms) = fake_kms().await;
    let mut previous: Vec<String> = FAILING.iter().map(|(id, _, _)| id.to_string()).collect();
    previous.insert(2, "alias/old".into());
    let signer = Arc::new(
        KmsSigner::new(client(&url), "alias/active", previous)
            .with_previous_key_retry(Duration::from_millis(400)),
    );
    let handler = JwksHandler {
        signer: signer.clone(),
    };
    let active_kid = kid_of(&public_der(&kms.keys["alias/active"]));
    let old_kid = kid_of(&public_der(&kms.keys["alias/old"]));

    // Ten JWKS requests: each answers the active key first and the readable previous
    // one; the unreadable ones are asked for once (the throttled one with the SDK's
    // three attempts).
    for _ in 0..10 {
        let keys = jwks(&handler).await;
        let kids: Vec<&str> = keys["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid"))
            .collect();
        assert_eq!(kids, [active_kid.as_str(), old_kid.as_str()]);
    }
    // And a token signs with the active key and verifies with the published one.
    let claims = json!({"sub": "u", "aud": "app", "exp": 4_000_000_000u64});
    let token = lti_core::jwt::sign_jwt(signer.as_ref(), &claims)
        .await
        .expect("signed although previous keys are unreadable");
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.kid.as_deref(), Some(active_kid.as_str()));
    let jwk = &jwks(&handler).await["keys"][0];
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["app"]);
    jsonwebtoken::decode::<Value>(&token, &key, &validation).expect("verifies");

    let calls = kms.calls.lock().expect("lock").clone();
    println!("GetPublicKey calls after 11 JWKS requests and a signature: {calls:?}");
    let expected: HashMap<String, usize> = [
        ("alias/active", 1),
        ("alias/old", 1),
        ("alias/typo", 1),
        ("alias/disabled", 1),
        ("alias/denied", 1),
        ("alias/throttled", 3),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(calls, expected);

    // After the retry time, one more try each, then quiet again.
    tokio::time::sleep(Duration::from_millis(450)).await;
    for _ in 0..5 {
        jwks(&handler).await;
    }
    let calls = kms.calls.lock().expect("lock").clone();
    for (id, _, _) in FAILING {
        let once_per_sdk_call = if id == "alias/throttled" { 3 } else { 1 };
        assert_eq!(calls[id], 2 * once_per_sdk_call, "{id}: retried once");
    }
    assert_eq!((calls["alias/active"], calls["alias/old"]), (1, 1));
}

#[tokio::test]
async fn signing_never_reads_the_previous_keys() {
    let (url, kms) = fake_kms().await;
    let signer = KmsSigner::new(
        client(&url),
        "alias/active",
        vec!["alias/typo".into(), "alias/old".into()],
    );
    for _ in 0..3 {
        let token = lti_core::jwt::sign_jwt(&signer, &json!({"sub": "u"}))
            .await
            .expect("signed");
        assert_eq!(token.split('.').count(), 3);
    }
    let calls = kms.calls.lock().expect("lock").clone();
    assert_eq!(calls, HashMap::from([("alias/active".to_string(), 1)]));
}

#[tokio::test]
async fn an_unreadable_active_key_still_fails_with_its_code() {
    let (url, _) = fake_kms().await;
    let signer = KmsSigner::new(client(&url), "alias/disabled", vec!["alias/old".into()]);
    let err = signer.public_keys().await.expect_err("no active key");
    assert_eq!(
        lti_core::error::Problem::code(&err),
        "LTI_SIGNING_KEY_UNUSABLE"
    );
    let err = signer.key_id().await.expect_err("no active key");
    assert_eq!(
        lti_core::error::Problem::code(&err),
        "LTI_SIGNING_KEY_UNUSABLE"
    );
}
