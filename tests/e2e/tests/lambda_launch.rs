//! A full launch through the real Lambda binaries under `cargo lambda watch`, on
//! DynamoDB and KMS served by moto: demo platform → login function → platform auth →
//! launch function → demo app, which verifies the app token with the key the jwks
//! function serves; deep linking; grades and rosters through the services function
//! against the demo platform's gradebook and roster, and a second, cold services
//! instance that takes the platform's tokens from the shared cache. tests/run.sh
//! (`start_lambda_stack` of tests/lib.sh) provisions the table and key, writes the
//! functions' environment, starts moto and `cargo lambda watch` (and a second one for
//! the cold instance), and sets:
//!
//! - `LTI_E2E_LAMBDA_URL`: where `cargo lambda watch` listens
//! - `LTI_E2E_SECOND_LAMBDA_URL`: a second `cargo lambda watch` of the same functions,
//!   with the same environment, that nothing has called yet
//! - `LTI_E2E_GATEWAY_PORT`: the port the functions' `LTI_BASE_URL` names
//! - `LTI_E2E_TABLE`, `LTI_E2E_ADMIN_TOKEN`: as given to the functions
//! - `AWS_ENDPOINT_URL` etc.: the moto server
//!
//! The gateway listens on that one port for every test of this file: it runs on a
//! thread of its own, started by the first test that needs it.

use lti_aws::dynamo::DynamoStore;
use lti_aws::functions::Clients;
use lti_core::clock::{Clock, SystemClock};
use lti_core::signer::LocalRsaSigner;
use lti_core::user::UserStore;
use lti_dev::app::DemoApp;
use lti_dev::browser::{first_form, Browser, Next};
use lti_dev::platform::{DemoPlatform, CLIENT_ID, DEPLOYMENT_ID};
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set (tests/run.sh sets it)"))
}

/// The functions behind the gateway, with the demo platform registered and the demo
/// app's backend holding a service key made by the admin API.
struct Stack {
    base: String,
    table: String,
    platform: Arc<DemoPlatform>,
    service_key: String,
}

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let (ready, started) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let (stack, gateway) = start_stack().await;
                ready.send(stack).expect("the test waits");
                let _ = gateway.await;
            });
        });
        started
            .recv()
            .expect("the gateway started (see the panic above)")
    })
}

async fn start_stack() -> (Stack, tokio::task::JoinHandle<()>) {
    let lambda_url = var("LTI_E2E_LAMBDA_URL");
    let port: u16 = var("LTI_E2E_GATEWAY_PORT").parse().expect("port");
    let table = var("LTI_E2E_TABLE");
    let admin = var("LTI_E2E_ADMIN_TOKEN");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    // A service key for the demo app's backend, straight from the services function.
    let created = client
        .post(format!(
            "{lambda_url}/lambda-url/services/admin/service-keys"
        ))
        .bearer_auth(&admin)
        .json(&json!({"name": "e2e demo app"}))
        .send()
        .await
        .expect("admin call");
    assert_eq!(created.status(), 201, "service key");
    let created: Value = created.json().await.expect("json");
    let service_key = created["key"].as_str().expect("key").to_string();

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
    )
    .with_service_key(service_key.clone());
    let gateway = lti_e2e::serve(listener, lambda_url, platform.clone(), app);

    // Register the demo platform through the services function's admin API.
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
    (
        Stack {
            base,
            table,
            platform,
            service_key,
        },
        gateway,
    )
}

/// The key the jwks function publishes under `kid` (the KMS key's public half).
async fn published_key(base: &str, kid: &str) -> jsonwebtoken::DecodingKey {
    let jwks: Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the jwks function publishes the signing key");
    jsonwebtoken::DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("key")
}

/// The claims of the app token the last launch of `browser` handed off.
fn app_token_claims(browser: &Browser) -> Value {
    let launch = browser
        .hops
        .iter()
        .rev()
        .find(|p| p.url.ends_with("/lti/launch"))
        .expect("launch hop");
    let token = first_form(&launch.body)
        .and_then(|f| f.field("app_token").map(str::to_string))
        .expect("app token");
    lti_core::jwt::decode_part(token.split('.').nth(1).expect("payload")).expect("claims")
}

#[tokio::test]
#[ignore = "needs moto and cargo lambda watch: tests/run.sh starts them"]
async fn a_launch_through_the_lambda_binaries_lands_in_the_app_and_consumes_the_state() {
    let Stack {
        base,
        table,
        platform,
        ..
    } = stack();
    let port: u16 = var("LTI_E2E_GATEWAY_PORT").parse().expect("port");
    let client = reqwest::Client::new();

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
    let store = DynamoStore::new(clients.dynamodb.clone(), table.clone());
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
    validation.set_audience(&[base]);
    validation.set_issuer(&[base]);
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

#[tokio::test]
#[ignore = "needs moto and cargo lambda watch: tests/run.sh starts them"]
async fn deep_linking_through_the_lambda_binaries_is_signed_by_kms_and_verified_by_the_platform() {
    let Stack {
        base,
        platform,
        service_key,
        ..
    } = stack();
    let lti = "https://purl.imsglobal.org/spec/lti/claim/";
    let dl = "https://purl.imsglobal.org/spec/lti-dl/claim/";

    // The instructor presses Add content: the launch function hands off to the picker.
    let mut browser = Browser::new();
    let page = browser
        .run(Next::Get(format!(
            "{base}/platform/launch?user=instructor&message=deep"
        )))
        .await
        .expect("the flow completes");
    assert_eq!(page.url, format!("{base}/app"), "{}", page.body);
    assert!(page.body.contains(r#"id="picker""#), "{}", page.body);
    let picker = first_form(&page.body)
        .and_then(|f| f.field("picker").map(str::to_string))
        .expect("the picker form");
    let lti_context = app_token_claims(&browser)["lti"].clone();
    let data = lti_context["services"]["deepLinking"]["data"].clone();
    let launch_id = lti_context["launchId"]
        .as_str()
        .expect("launch id")
        .to_string();

    // Two items picked; the app's backend answers through the services function and the
    // browser carries the signed response to the demo platform, which verifies it.
    let added = browser
        .run(Next::Post(
            format!("{base}/app/deep-link"),
            vec![
                ("picker".into(), picker),
                ("item".into(), "resource".into()),
                ("item".into(), "html".into()),
                ("action".into(), "add".into()),
            ],
        ))
        .await
        .expect("the answer reaches the platform");
    assert_eq!(
        added.url,
        format!("{base}/platform/deep-link-return"),
        "{}",
        added.body
    );
    assert_eq!(added.status, 200, "{}", added.body);
    assert!(
        added.body.contains("2 items were added from lti-lambda."),
        "{}",
        added.body
    );

    // The response, verified here with the KMS key's public half the jwks function serves.
    let handoff = browser
        .hops
        .iter()
        .find(|p| p.url.ends_with("/app/deep-link"))
        .expect("the app's answer");
    let jwt = first_form(&handoff.body)
        .and_then(|f| f.field("JWT").map(str::to_string))
        .expect("JWT");
    let (signing_input, _) = jwt.rsplit_once('.').expect("a JWT");
    assert!(
        signing_input.len() <= 4096,
        "under the 4 KB KMS signs as RAW (moto signs digests wrongly)"
    );
    let kid = jsonwebtoken::decode_header(&jwt)
        .expect("header")
        .kid
        .expect("kid");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[CLIENT_ID]);
    validation.set_audience(&[platform.issuer.as_str()]);
    let claims = jsonwebtoken::decode::<Value>(&jwt, &published_key(base, &kid).await, &validation)
        .expect("signed with the KMS key")
        .claims;
    assert_eq!(
        claims[format!("{lti}message_type")],
        "LtiDeepLinkingResponse"
    );
    assert_eq!(claims[format!("{lti}version")], "1.3.0");
    assert_eq!(claims[format!("{lti}deployment_id")], DEPLOYMENT_ID);
    assert_eq!(claims[format!("{dl}data")], data);
    assert!(claims["nonce"].as_str().is_some_and(|n| n.len() >= 16));
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert!((1..=300).contains(&lifetime), "{lifetime}");
    let items = claims[format!("{dl}content_items")]
        .as_array()
        .expect("items")
        .clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["custom"]["scenario"], "sales-7");
    assert_eq!(items[1]["type"], "html");
    let course: Vec<Value> = platform
        .course_items()
        .into_iter()
        .filter(|i| i.item["title"] == "Sales scenario 7" || i.item["type"] == "html")
        .map(|i| i.item)
        .collect();
    assert_eq!(
        course, items,
        "the platform took the items exactly as signed"
    );

    // Answered once: the services function recorded it in DynamoDB.
    let again = reqwest::Client::new()
        .post(format!("{base}/lti/deep-link"))
        .header("x-api-key", service_key.as_str())
        .bearer_auth(&launch_id)
        .json(&json!({"contentItems": []}))
        .send()
        .await
        .expect("call");
    assert_eq!(again.status(), 409);
    let again: Value = again.json().await.expect("json");
    assert_eq!(again["error"]["code"], "LTI_ALREADY_ANSWERED");

    // A learner launches the added resource link: its custom parameters arrive.
    let item = platform
        .course_items()
        .into_iter()
        .find(|i| i.item["title"] == "Sales scenario 7")
        .expect("added");
    let mut learner = Browser::new();
    let landed = learner
        .run(Next::Get(format!(
            "{base}/platform/launch?user=learner&item={}",
            item.id
        )))
        .await
        .expect("launch");
    assert_eq!(landed.url, format!("{base}/app"), "{}", landed.body);
    assert!(landed.body.contains("scenario=sales-7"), "{}", landed.body);
    let lti_context = app_token_claims(&learner)["lti"].clone();
    assert_eq!(lti_context["resourceLink"]["title"], "Sales scenario 7");
    assert_eq!(lti_context["custom"]["scenario"], "sales-7");
}

#[tokio::test]
#[ignore = "needs moto and cargo lambda watch: tests/run.sh starts them"]
async fn dynamic_registration_through_the_services_binary_then_a_launch_through_login_and_launch() {
    let Stack {
        base,
        table,
        platform,
        ..
    } = stack();

    // The demo platform's "Add a tool by URL" frames the tool's registration URL.
    let mut admin = Browser::new();
    let add = admin
        .run(Next::Get(format!(
            "{base}/platform/add-tool?url={base}/lti/register"
        )))
        .await
        .expect("page");
    assert_eq!(add.status, 200, "{}", add.body);
    let src = add
        .body
        .split("id=\"registration\" src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page frames the registration")
        .replace("&amp;", "&");

    // The services function fetches the configuration, posts the registration and
    // stores it in DynamoDB.
    let done = admin.run(Next::Get(src)).await.expect("registration page");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("lti-lambda is registered"),
        "{}",
        done.body
    );
    assert!(done.body.contains("org.imsglobal.lti.close"));
    let tool = platform
        .tools()
        .into_iter()
        .filter(|t| t.client_id.starts_with("lti-dev-dynreg-"))
        .find(|t| done.body.contains(&t.client_id))
        .expect("the platform lists the registered tool");
    let clients = Clients::from_env(None).await;
    let store = DynamoStore::new(clients.dynamodb.clone(), table.clone());
    use lti_core::platform::PlatformStore;
    let stored = store
        .platform(&platform.issuer, &tool.client_id)
        .await
        .expect("read")
        .expect("stored in DynamoDB");
    assert_eq!(stored.keyset_url, platform.jwks_url());
    assert_eq!(stored.auth_login_url, platform.auth_url());
    assert!(!stored.accept_new_deployments);
    assert!(store
        .deployment(&platform.issuer, &tool.client_id, &tool.deployment_id)
        .await
        .expect("read")
        .is_some());

    // A learner launches into it through the login and launch functions.
    let mut learner = Browser::new();
    let page = learner
        .run(Next::Get(format!(
            "{base}/platform/launch?user=learner&tool={}",
            tool.id
        )))
        .await
        .expect("the flow completes");
    assert_eq!(page.url, format!("{base}/app"), "{}", page.body);
    assert!(page.body.contains("Welcome, Lea Learner"), "{}", page.body);
    let claims = app_token_claims(&learner);
    let launched_from = &claims["lti"]["platform"];
    assert_eq!(
        launched_from["clientId"],
        tool.client_id.as_str(),
        "{claims}"
    );
    assert_eq!(
        launched_from["deploymentId"],
        tool.deployment_id.as_str(),
        "{claims}"
    );

    // A registration token works once.
    let again = admin
        .run(Next::Get(format!(
            "{base}/lti/register?openid_configuration={}&registration_token=spent",
            platform.openid_configuration_url()
        )))
        .await
        .expect("page");
    assert_eq!(again.status, 502, "{}", again.body);
    assert!(again.body.contains("LTI_DYNREG_REFUSED"));
}

/// The `data-*` attribute `name` of the element with id `id` in `html`, unescaped.
fn data_attribute(html: &str, id: &str, name: &str) -> String {
    let start = html.find(&format!("id=\"{id}\"")).expect("element");
    let end = start + html[start..].find('>').expect("tag end");
    let tag = &html[start..end];
    let marker = format!(" data-{name}=\"");
    let from = tag.find(&marker).expect("attribute") + marker.len();
    let value = &tag[from..from + tag[from..].find('"').expect("quote")];
    value
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn error_code_of(body: &str) -> String {
    let marker = "Error <code>";
    body.find(marker)
        .map(|i| {
            body[i + marker.len()..]
                .split('<')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs moto and cargo lambda watch: tests/run.sh starts them"]
async fn an_iframe_launch_without_the_cookie_is_bound_by_the_platform_storage_on_the_lambda_binaries(
) {
    let Stack { base, table, .. } = stack();
    // A browser that drops every cookie of the tool (third-party cookies blocked);
    // the test plays the login and launch pages' script and the storage frame.
    let mut browser = Browser::new();
    let to_login = browser
        .send(&Next::Get(format!(
            "{base}/platform/launch?user=learner&storage=1"
        )))
        .await
        .expect("platform");
    let login = browser
        .send(&Next::Get(to_login.location.clone().expect("login")))
        .await
        .expect("login function");
    assert_eq!(login.status, 200, "the storage login page: {}", login.body);
    assert!(
        login
            .set_cookies
            .iter()
            .any(|c| c.starts_with("__Host-lti-state-") && c.contains("Partitioned")),
        "the cookie is still set"
    );
    browser.clear_cookies();
    let next = data_attribute(&login.body, "lti-storage-login", "next");
    let value = data_attribute(&login.body, "lti-storage-login", "state-value");
    let (state, proof) = value.split_once('.').expect("<state>.<proof>");
    assert!(next.contains(&format!("state={state}")));

    // The state item in DynamoDB keeps the storage binding (the proof's hash only) and
    // the restart hints.
    let clients = Clients::from_env(None).await;
    let store = DynamoStore::new(clients.dynamodb.clone(), table.clone());
    let stored = store
        .stored_state(state, SystemClock.now())
        .await
        .expect("read")
        .expect("stored");
    let binding = stored.login.storage.clone().expect("storage binding");
    assert_eq!(binding.target, lti_dev::platform::STORAGE_FRAME);
    assert_eq!(binding.origin, base.as_str());
    assert_eq!(binding.proof_hash, lti_core::storage::proof_hash(proof));
    assert!(
        !format!("{stored:?}").contains(proof),
        "the proof itself is not stored"
    );
    assert_eq!(
        stored.login.restart.as_ref().map(|r| r.login_hint.as_str()),
        Some("learner")
    );

    let auth = browser.send(&Next::Get(next)).await.expect("auth");
    let launch = Browser::next_after(&auth).expect("launch form");
    let Next::Post(action, fields) = launch.clone() else {
        panic!("a POST")
    };
    // No cookie: the launch function answers the page that reads the storage.
    let page = browser.send(&launch).await.expect("launch function");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        data_attribute(&page.body, "lti-storage-launch", "key"),
        format!("state_{state}")
    );
    // Another context with a guessed proof: refused, nothing consumed.
    let mut forged = fields.clone();
    forged.push(("lti_storage_proof".into(), "A".repeat(43)));
    let refused = Browser::new()
        .send(&Next::Post(action.clone(), forged))
        .await
        .expect("post");
    assert_eq!(
        (refused.status, error_code_of(&refused.body).as_str()),
        (401, "LTI_STORAGE_PROOF_INVALID"),
        "{}",
        refused.body
    );
    // The storage did not answer: a new window is offered (restart of the same login).
    let mut failed = fields.clone();
    failed.push(("lti_storage_failed".into(), "1".into()));
    let offered = Browser::new()
        .send(&Next::Post(action.clone(), failed))
        .await
        .expect("post");
    assert_eq!(offered.status, 401);
    assert!(
        offered.body.contains("Open in a new window"),
        "{}",
        offered.body
    );
    assert!(
        offered.body.contains("login_hint=learner"),
        "{}",
        offered.body
    );

    // The page's second POST, with the proof read back: lands, and consumes the state.
    let mut proven = fields.clone();
    proven.push(("lti_storage_proof".into(), proof.to_string()));
    let landed = browser
        .run(Next::Post(action.clone(), proven.clone()))
        .await
        .expect("flow");
    assert_eq!(landed.url, format!("{base}/app"), "{}", landed.body);
    assert!(
        landed.body.contains("Welcome, Lea Learner"),
        "{}",
        landed.body
    );
    let consumed = store
        .stored_state(state, SystemClock.now())
        .await
        .expect("read")
        .expect("kept until expiry");
    assert!(consumed.consumed_at.is_some());
    let again = Browser::new()
        .send(&Next::Post(action, proven))
        .await
        .expect("replay");
    assert_eq!(
        (again.status, error_code_of(&again.body).as_str()),
        (409, "LTI_NONCE_REPLAYED")
    );
}

/// A call of the app's backend to the services function at `url` (the gateway, or a
/// second `cargo lambda watch` straight): the service key, a launch id, JSON.
async fn service_call(
    url: &str,
    key: &str,
    launch_id: &str,
    method: reqwest::Method,
    body: Option<Value>,
) -> (u16, Value) {
    let is_get = method == reqwest::Method::GET;
    let mut request = reqwest::Client::new()
        .request(method, url)
        .header("x-api-key", key)
        .bearer_auth(launch_id)
        .header("accept", "application/json")
        // A cold function is built and started on its first request.
        .timeout(std::time::Duration::from_secs(900));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let again = request.try_clone();
    let send = |request: reqwest::RequestBuilder| async move {
        let response = request.send().await.expect("the services function answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    };
    let (mut status, mut text) = send(request).await;
    if let Some(again) =
        again.filter(|_| is_get && lti_e2e::is_emulator_error(status, text.as_bytes()))
    {
        // cargo lambda's own 500, not the function's (see `is_emulator_error`).
        eprintln!("cargo lambda's emulator answered its own 500 to GET {url}; asking once more");
        (status, text) = send(again).await;
    }
    // Not JSON (a gateway's own error): the text, for the failure message.
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
#[ignore = "needs moto and cargo lambda watch: tests/run.sh starts them"]
async fn grades_and_rosters_through_the_lambda_binaries_with_the_token_shared_by_a_cold_instance() {
    let Stack {
        base,
        platform,
        service_key,
        ..
    } = stack();
    let tokens_at_start = platform.token_requests();

    // An instructor launches; the demo app (its backend, through the services
    // function) offers the course's learners, read from the demo platform's roster.
    let mut browser = Browser::new();
    let page = browser
        .run(Next::Get(format!("{base}/platform/launch?user=instructor")))
        .await
        .expect("the flow completes");
    assert_eq!(page.url, format!("{base}/app"), "{}", page.body);
    assert!(
        page.body
            .contains(r#"<option value="demo-learner-1">Lea Learner</option>"#),
        "{}",
        page.body
    );
    let launch_id = app_token_claims(&browser)["lti"]["launchId"]
        .as_str()
        .expect("launch id")
        .to_string();
    let at = |path: &str| format!("{base}{path}");
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;

    // A line item, a score, results, the roster: instance 1 of the services function.
    let (status, made) = service_call(
        &at("/lti/ags/lineitems"),
        service_key,
        &launch_id,
        post.clone(),
        Some(json!({"label": "Lambda quiz", "scoreMaximum": 10, "resourceLinkId": "demo-link-1", "tag": "lambda"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let quiz = made["lineItem"]["id"].as_str().expect("id").to_string();
    assert_eq!(
        platform.line_item(&quiz).expect("in the gradebook").label,
        "Lambda quiz"
    );
    let score = |user: &str, given: u32| {
        json!({
            "userId": user,
            "scoreGiven": given,
            "scoreMaximum": 10,
            "lineItemUrl": quiz,
        })
    };
    let (status, posted) = service_call(
        &at("/lti/ags/scores"),
        service_key,
        &launch_id,
        post.clone(),
        Some(score("demo-learner-1", 9)),
    )
    .await;
    assert_eq!(status, 200, "{posted}");
    let landed = platform.line_item(&quiz).expect("kept").scores;
    assert_eq!(landed.len(), 1);
    assert_eq!(
        (landed[0].user_id.as_str(), landed[0].score_given),
        ("demo-learner-1", Some(9.0))
    );
    assert_eq!(
        landed[0].timestamp,
        posted["score"]["timestamp"].as_str().expect("ts")
    );
    let (tokens, calls) = (platform.token_requests(), platform.service_requests());
    let (status, _) = service_call(
        &at("/lti/ags/scores"),
        service_key,
        &launch_id,
        post.clone(),
        Some(score("demo-student-01", 6)),
    )
    .await;
    assert_eq!(status, 200);
    let warm_post = (
        platform.token_requests() - tokens,
        platform.service_requests() - calls,
    );
    let (status, results) = service_call(
        &format!(
            "{}?{}",
            at("/lti/ags/results"),
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("lineItemUrl", &quiz)
                .finish()
        ),
        service_key,
        &launch_id,
        get.clone(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(results["results"][0]["userId"], "demo-learner-1");
    assert_eq!(results["results"][0]["resultScore"], 9);
    let (tokens, calls) = (platform.token_requests(), platform.service_requests());
    let (status, roster) = service_call(
        &at("/lti/nrps/members"),
        service_key,
        &launch_id,
        get.clone(),
        None,
    )
    .await;
    assert_eq!(status, 200, "{roster}");
    let roster_read = (
        platform.token_requests() - tokens,
        platform.service_requests() - calls,
    );
    let members = roster["members"].as_array().expect("members");
    assert_eq!(members.len(), lti_dev::platform::roster::members().len());
    assert_eq!(roster["pages"], 4);
    assert!(members
        .iter()
        .any(|m| m["userId"] == "demo-student-04" && m["roles"]["mapped"] == json!(["learner"])));
    let first_instance = platform.token_requests() - tokens_at_start;
    println!(
        "services function, instance 1: {first_instance} platform token request(s) (one per scope: roster, lineitem, score, result.readonly); \
         a warm score post: {} token request(s), {} platform call(s); a roster read of {} pages: {} token request(s), {} platform call(s)",
        warm_post.0, warm_post.1, roster["pages"], roster_read.0, roster_read.1
    );
    assert_eq!(first_instance, 4);
    assert_eq!(warm_post, (0, 1));
    assert_eq!(roster_read, (0, 4));

    // The demo app's Submit a score, as a person presses it: through its backend.
    let start = page
        .body
        .find(r#"<form id="score-form""#)
        .expect("Submit a score");
    let mut fields = first_form(&page.body[start..]).expect("form").fields;
    fields.retain(|(k, _)| k != "user");
    fields.push(("user".into(), "demo-learner-1".into()));
    let shown = browser
        .send(&Next::Post(format!("{base}/app/services"), fields))
        .await
        .expect("answer");
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(shown.body.contains("Score posted"), "{}", shown.body);
    let activity = platform
        .line_item_url_for(CLIENT_ID, "demo-link-1")
        .expect("the demo activity is graded");
    assert!(platform
        .line_item(&activity)
        .expect("kept")
        .scores
        .iter()
        .any(|s| s.user_id == "demo-learner-1" && s.score_given == Some(80.0)));

    // Instance 2, cold (a second `cargo lambda watch`): the platform's tokens come
    // from the shared cache in DynamoDB, not from the platform.
    let second = var("LTI_E2E_SECOND_LAMBDA_URL");
    let direct = |path: &str| format!("{second}/lambda-url/services{path}");
    let tokens = platform.token_requests();
    for i in 0..20 {
        let (status, answer) = service_call(
            &direct("/lti/ags/scores"),
            service_key,
            &launch_id,
            post.clone(),
            Some(score(&format!("demo-student-{:02}", i + 1), i % 10)),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }
    let (status, roster) = service_call(
        &direct("/lti/nrps/members"),
        service_key,
        &launch_id,
        get,
        None,
    )
    .await;
    assert_eq!(status, 200, "{roster}");
    assert_eq!(roster["members"], json!(members));
    let second_instance = platform.token_requests() - tokens;
    println!(
        "services function, instance 2 (cold): {second_instance} platform token request(s) for 20 score posts and a roster read"
    );
    assert_eq!(
        second_instance, 0,
        "the cold instance reuses the shared tokens"
    );
    assert_eq!(
        platform
            .line_item(&quiz)
            .expect("kept")
            .latest_scores()
            .len(),
        21
    );
}
