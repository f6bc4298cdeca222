//! A full launch through the real Lambda binaries under `cargo lambda watch`, on
//! DynamoDB and KMS served by moto: demo platform → login function → platform auth →
//! launch function → demo app, which verifies the app token with the key the jwks
//! function serves. tests/run.sh provisions the table and key, writes the functions'
//! environment, starts moto and `cargo lambda watch`, and sets:
//!
//! - `LTI_E2E_LAMBDA_URL`: where `cargo lambda watch` listens
//! - `LTI_E2E_GATEWAY_PORT`: the port the functions' `LTI_BASE_URL` names
//! - `LTI_E2E_TABLE`, `LTI_E2E_ADMIN_TOKEN`: as given to the functions
//! - `AWS_ENDPOINT_URL` etc.: the moto server

use lti_aws::dynamo::DynamoStore;
use lti_aws::functions::Clients;
use lti_core::clock::{Clock, SystemClock};
use lti_core::signer::LocalRsaSigner;
use lti_core::user::UserStore;
use lti_dev::app::DemoApp;
use lti_dev::browser::{first_form, Browser, Next};
use lti_dev::platform::{DemoPlatform, CLIENT_ID, DEPLOYMENT_ID};
use serde_json::{json, Value};
use std::sync::Arc;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set (tests/run.sh sets it)"))
}

#[tokio::test]
#[ignore = "needs moto and cargo lambda watch: tests/run.sh starts them"]
async fn a_launch_through_the_lambda_binaries_lands_in_the_app_and_consumes_the_state() {
    let lambda_url = var("LTI_E2E_LAMBDA_URL");
    let port: u16 = var("LTI_E2E_GATEWAY_PORT").parse().expect("port");
    let table = var("LTI_E2E_TABLE");
    let admin = var("LTI_E2E_ADMIN_TOKEN");
    let base = format!("http://127.0.0.1:{port}");

    // The stand-in for API Gateway, with the demo platform and app beside it.
    let platform = Arc::new(DemoPlatform::new(
        &base,
        LocalRsaSigner::generate().expect("key"),
        Arc::new(SystemClock),
    ));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind gateway");
    let app = DemoApp::new(
        &base,
        &base,
        lti_outbound::jwks::HttpKeySetFetcher::new(lti_core::url_policy::UrlPolicy::ALLOW_LOOPBACK)
            .expect("client"),
    );
    let _gateway = lti_e2e::serve(listener, lambda_url, platform.clone(), app);

    // Register the demo platform through the services function's admin API.
    let client = reqwest::Client::new();
    let registered = client
        .post(format!("{base}/admin/platforms"))
        .bearer_auth(&admin)
        .json(&json!({
            "issuer": platform.issuer, "clientId": CLIENT_ID, "name": "Demo platform",
            "authLoginUrl": platform.auth_url(), "authTokenUrl": platform.token_url(),
            "keysetUrl": platform.jwks_url(), "deploymentId": DEPLOYMENT_ID
        }))
        .send()
        .await
        .expect("admin call");
    assert!(
        registered.status().is_success(),
        "{:?}",
        registered.text().await
    );

    // A learner launches.
    let mut browser = Browser::new();
    let page = browser
        .run(Next::Get(format!("{base}/platform/launch?user=learner")))
        .await
        .expect("the flow completes");
    assert_eq!(page.url, format!("{base}/app"), "{}", page.body);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Welcome, Lea Learner"), "{}", page.body);

    // The state the login function stored is consumed.
    let login = browser
        .hops
        .iter()
        .find(|p| p.url.contains("/lti/login"))
        .expect("login hop");
    let location = url::Url::parse(login.location.as_deref().expect("redirect")).expect("url");
    let state = location
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.to_string())
        .expect("state");
    let clients = Clients::from_env(None).await;
    let store = DynamoStore::new(clients.dynamodb.clone(), table);
    let stored = store
        .stored_state(&state, SystemClock.now())
        .await
        .expect("read")
        .expect("the state item is kept until it expires");
    assert!(stored.consumed_at.is_some(), "the state is consumed");

    // The user exists.
    let user = store
        .user(&lti_core::user::stable_user_id(
            &platform.issuer,
            &platform.jwks_url(),
            "demo-learner-1",
        ))
        .await
        .expect("read")
        .expect("provisioned");
    assert_eq!(user.email.as_deref(), Some("lea.learner@demo.example"));

    // The app token verifies with the key the jwks function serves.
    let launch = browser
        .hops
        .iter()
        .find(|p| p.url.ends_with("/lti/launch"))
        .expect("launch hop");
    let token = first_form(&launch.body)
        .and_then(|f| f.field("app_token").map(str::to_string))
        .expect("app token");
    let jwks: Value = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let kid = jsonwebtoken::decode_header(&token)
        .expect("header")
        .kid
        .expect("kid");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the jwks function publishes the signing key");
    let key = jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[&base]);
    validation.set_issuer(&[&base]);
    let claims = jsonwebtoken::decode::<Value>(&token, &key, &validation)
        .expect("verifies")
        .claims;
    assert_eq!(claims["sub"], user.id);

    // Replaying the launch POST is refused.
    let post = Browser::next_after(
        browser
            .hops
            .iter()
            .find(|p| p.url.contains("/platform/auth"))
            .expect("auth hop"),
    )
    .expect("the platform's form");
    let jar_host = format!("127.0.0.1:{port}");
    browser
        .cookies
        .entry(jar_host)
        .or_default()
        .insert(format!("__Host-lti-state-{state}"), state.clone());
    let replay = browser.send(&post).await.expect("replay");
    assert_eq!(replay.status, 409, "{}", replay.body);
    assert!(replay.body.contains("LTI_NONCE_REPLAYED"));
}
