//! `AWS_IAM` mode of the admin API, from the API Gateway event in `events/`: the
//! function trusts the caller identity API Gateway put in `requestContext` (and
//! only that), and its audit line names the caller's ARN.

use lti_aws::lambda::to_http;
use lti_core::clock::{Clock, SystemClock};
use lti_core::config::ToolConfig;
use lti_core::memory::MemoryStore;
use lti_core::random::SystemRandom;
use lti_core::registration::audit::MemoryAudit;
use lti_core::signer::LocalRsaSigner;
use lti_http::handlers::{ServicesDeps, ServicesHandler};
use serde_json::Value;
use std::sync::Arc;

const ADMIN: &str = "local-admin-token-0123456789abcdef0123456789abcdef";

fn event(name: &str) -> lambda_http::Request {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("event file");
    lambda_http::request::from_str(&text).expect("a valid API Gateway v2 event")
}

fn handler(mode: &str) -> (ServicesHandler, Arc<MemoryAudit>) {
    let config = Arc::new(
        ToolConfig::from_lookup(|name| match name {
            "LTI_BASE_URL" => Some("https://abc123.execute-api.us-east-1.amazonaws.com".into()),
            "LTI_APP_LANDING_URL" => Some("https://app.example/landing".into()),
            "LTI_ADMIN_AUTH" => Some(mode.into()),
            "LTI_ADMIN_TOKEN" => (mode == "token").then(|| ADMIN.to_string()),
            _ => None,
        })
        .expect("config"),
    );
    let store = Arc::new(MemoryStore::new());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut handler = ServicesHandler::new(ServicesDeps {
        platforms: store.clone(),
        service_key_store: store.clone(),
        records: store.clone(),
        signer: Arc::new(LocalRsaSigner::generate().expect("key")),
        clock,
        random: Arc::new(SystemRandom),
        http: Arc::new(
            lti_outbound::ReqwestPlatformHttp::new(config.url_policy()).expect("client"),
        ),
        token_cache: store.clone(),
        users: store,
        config,
    });
    let audit = Arc::new(MemoryAudit::default());
    handler.audit = audit.clone();
    (handler, audit)
}

fn json_of(response: &lti_http::HttpResponse) -> Value {
    serde_json::from_slice(response.body()).unwrap_or(Value::Null)
}

#[tokio::test]
async fn in_iam_mode_the_gateways_caller_identity_is_trusted_and_audited() {
    let (handler, audit) = handler("iam");
    let response = handler
        .handle(to_http(event("admin-platforms-post-iam.json")))
        .await;
    assert_eq!(response.status(), 201, "{}", json_of(&response));
    let lines = audit.lines();
    assert_eq!(lines.len(), 1);
    let line: Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(line["action"], "platform.create");
    assert_eq!(
        line["who"],
        serde_json::json!({"kind": "iam", "arn": "arn:aws:iam::123456789012:user/lti-admin", "accountId": "123456789012"})
    );
    assert!(
        !lines[0].contains("Signature="),
        "no part of the request's signature"
    );
}

#[tokio::test]
async fn in_iam_mode_a_bearer_token_alone_is_refused() {
    // An event with the admin token but no IAM identity (a route left without
    // AWS_IAM, or a request that did not come through it).
    let (handler, audit) = handler("iam");
    let response = handler
        .handle(to_http(event("admin-platforms-get.json")))
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(json_of(&response)["error"]["code"], "ADMIN_UNAUTHORIZED");
    assert!(json_of(&response)["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("SigV4")));
    assert!(audit.lines().is_empty());
}

#[tokio::test]
async fn in_token_mode_the_gateway_identity_is_not_enough() {
    let (handler, _) = handler("token");
    let response = handler
        .handle(to_http(event("admin-platforms-post-iam.json")))
        .await;
    assert_eq!(response.status(), 401);
    let response = handler
        .handle(to_http(event("admin-platforms-get.json")))
        .await;
    assert_eq!(response.status(), 200);
}

#[test]
fn the_identity_is_read_from_the_request_context_only() {
    let identity = lti_aws::lambda::gateway_identity(&event("admin-platforms-post-iam.json"))
        .expect("identity");
    assert_eq!(identity.arn, "arn:aws:iam::123456789012:user/lti-admin");
    assert!(lti_aws::lambda::gateway_identity(&event("admin-platforms-post.json")).is_none());
}
