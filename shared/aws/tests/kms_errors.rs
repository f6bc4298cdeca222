//! KMS failures moto cannot produce (disabled keys, pending deletion, throttling,
//! access denied), from an in-process fake KMS endpoint behind the real SDK client, so
//! the real error parsing and retry behaviour are what is tested.

use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use lti_aws::kms::KmsSigner;
use lti_core::error::{ErrorKind, Problem};
use lti_core::signer::Signer;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Starts a fake KMS that answers every call with `status` and error `kind`; returns
/// its URL and a request counter.
async fn fake_kms(status: u16, kind: &'static str) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            let body = serde_json::json!({"__type": kind, "message": format!("fake {kind}")});
            (
                axum::http::StatusCode::from_u16(status).expect("status"),
                [("content-type", "application/x-amz-json-1.1")],
                body.to_string(),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, calls)
}

fn client(endpoint: &str) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "fake"))
        // The SDK's standard retry, with short backoff so the test is quick.
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

#[tokio::test]
async fn kms_failures_map_to_clear_codes_and_only_transient_ones_are_retried() {
    let cases = [
        (400, "DisabledException", "LTI_SIGNING_KEY_UNUSABLE", 1),
        (
            400,
            "KMSInvalidStateException",
            "LTI_SIGNING_KEY_UNUSABLE",
            1,
        ),
        (400, "NotFoundException", "LTI_SIGNING_KEY_UNUSABLE", 1),
        (
            400,
            "KeyUnavailableException",
            "LTI_SIGNING_KEY_UNUSABLE",
            1,
        ),
        (400, "AccessDeniedException", "LTI_SIGNER_UNAVAILABLE", 1),
        (400, "ThrottlingException", "LTI_SIGNER_UNAVAILABLE", 3),
        (500, "KMSInternalException", "LTI_SIGNER_UNAVAILABLE", 3),
    ];
    for (status, kind, code, attempts) in cases {
        let (url, calls) = fake_kms(status, kind).await;
        let signer = KmsSigner::new(client(&url), "alias/tool", vec![]);
        let err = signer.sign(b"header.payload").await.expect_err(kind);
        assert_eq!(err.code(), code, "{kind}: {err}");
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{kind} answers 503");
        assert_eq!(calls.load(Ordering::SeqCst), attempts, "{kind}: attempts");
        let err = signer.public_keys().await.expect_err(kind);
        assert_eq!(err.code(), code, "GetPublicKey {kind}");
    }
}

#[tokio::test]
async fn an_unreachable_kms_is_unavailable_not_a_panic() {
    let signer = KmsSigner::new(client("http://127.0.0.1:9"), "alias/tool", vec![]);
    let err = signer.sign(b"x").await.expect_err("unreachable");
    assert_eq!(err.code(), "LTI_SIGNER_UNAVAILABLE");
}

/// A fake KMS that records each Sign request's MessageType and Message and answers a
/// fixed signature.
async fn recording_kms() -> (String, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorded = seen.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let recorded = recorded.clone();
        async move {
            let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            recorded.lock().expect("lock").push(request);
            let body = serde_json::json!({"KeyId": "k", "Signature": "c2ln", "SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256"});
            ([("content-type", "application/x-amz-json-1.1")], body.to_string())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen)
}

#[tokio::test]
async fn inputs_up_to_4096_bytes_are_signed_raw_and_larger_ones_by_their_sha256_digest() {
    use base64::Engine;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let (url, seen) = recording_kms().await;
    let signer = KmsSigner::new(client(&url), "alias/tool", vec![]);
    let small = vec![b'a'; 4096];
    let large = vec![b'b'; 9000];
    assert_eq!(signer.sign(&small).await.expect("signed"), b"sig");
    signer.sign(&large).await.expect("signed");
    let seen = seen.lock().expect("lock");
    assert_eq!(seen[0]["MessageType"], "RAW");
    assert_eq!(seen[0]["Message"], b64(&small));
    assert_eq!(seen[0]["SigningAlgorithm"], "RSASSA_PKCS1_V1_5_SHA_256");
    assert_eq!(seen[1]["MessageType"], "DIGEST");
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &large);
    assert_eq!(seen[1]["Message"], b64(digest.as_ref()));
}
