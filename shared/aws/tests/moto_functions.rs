//! The four functions as Lambda runs them — built by the same code as the binaries,
//! fed the API Gateway events in `events/` — on DynamoDB and KMS served by moto.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lti_aws::calls::CallCounter;
use lti_aws::dynamo::DynamoStore;
use lti_aws::functions::{self, Clients};
use lti_aws::lambda::{from_http, to_http};
use lti_core::clock::{Clock, SystemClock};
use lti_core::platform::{Deployment, PlatformStore};
use lti_core::signer::LocalRsaSigner;
use lti_core::user::UserStore;
use lti_http::HttpResponse;
use serde_json::{json, Value};
use std::sync::Arc;

const ISS: &str = "https://lms.example.edu";
const CLIENT: &str = "tool-client-1";
use common::stack::TOOL;

struct Stack {
    clients: Clients,
    counter: CallCounter,
    store: DynamoStore,
    vars: Vec<(String, String)>,
    platform_key: Arc<LocalRsaSigner>,
}

async fn stack() -> Stack {
    let counter = CallCounter::default();
    let clients = common::moto(Some(counter.clone())).await;
    let table = common::fresh_table(&clients).await;
    let (key, _) = common::fresh_key(&clients).await;
    let platform_key = Arc::new(LocalRsaSigner::generate().expect("key"));
    let jwks_url = common::serve_jwks(json!({"keys": [platform_key.public_jwk()]})).await;
    let store = DynamoStore::new(clients.dynamodb.clone(), table.clone());
    let mut platform = lti_core::contract::sample_platform(ISS, CLIENT, SystemClock.now());
    platform.keyset_url = jwks_url;
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
    counter.take();
    // The platform's JWKS is served on 127.0.0.1 by the test.
    let vars = common::stack::function_vars(&table, &key, &[]);
    Stack {
        clients,
        counter,
        store,
        vars,
        platform_key,
    }
}

impl Stack {
    fn var(&self) -> impl Fn(&str) -> Option<String> + '_ {
        common::stack::lookup(&self.vars)
    }
}

fn event(name: &str) -> lambda_http::Request {
    let path = format!("{}/../../events/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("event file");
    lambda_http::request::from_str(&text).expect("a valid API Gateway v2 event")
}

fn json_of(response: &HttpResponse) -> Value {
    serde_json::from_slice(response.body()).unwrap_or(Value::Null)
}

fn code_of(response: &HttpResponse) -> String {
    let text = String::from_utf8_lossy(response.body()).to_string();
    if let Some(code) = json_of(response)["error"]["code"].as_str() {
        return code.to_string();
    }
    let marker = "Error <code>";
    text.find(marker)
        .map(|i| {
            text[i + marker.len()..]
                .split('<')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

/// The login function answers `event`; returns (response, state, nonce).
async fn login(
    stack: &Stack,
    handler: &lti_http::handlers::LoginHandler,
) -> (HttpResponse, String, String) {
    let response = handler.handle(to_http(event("login-get.json"))).await;
    assert_eq!(
        response.status(),
        302,
        "{}",
        String::from_utf8_lossy(response.body())
    );
    let location =
        url::Url::parse(response.headers()["location"].to_str().expect("ascii")).expect("url");
    let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    let _ = stack;
    (response, q["state"].clone(), q["nonce"].clone())
}

fn id_token(stack: &Stack, nonce: &str) -> String {
    sign_id_token(stack, &resource_link_claims(nonce))
}

fn resource_link_claims(nonce: &str) -> Value {
    let now = SystemClock.now();
    let lti = "https://purl.imsglobal.org/spec/lti/claim/";
    json!({
        "iss": ISS, "aud": CLIENT, "sub": "user-42", "iat": now, "exp": now + 300, "nonce": nonce,
        "name": "Ada Lovelace", "email": "ada@example.edu",
        format!("{lti}message_type"): "LtiResourceLinkRequest",
        format!("{lti}version"): "1.3.0",
        format!("{lti}deployment_id"): "1",
        format!("{lti}target_link_uri"): format!("{TOOL}/lti/launch"),
        format!("{lti}resource_link"): {"id": "rl-1"},
        format!("{lti}roles"): ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
    })
}

fn sign_id_token(stack: &Stack, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": stack.platform_key.public_jwk().kid});
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", part(&header), part(claims));
    let signature = stack.platform_key.sign_now(input.as_bytes()).expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The launch event of `events/launch-post.json`, with a real id_token and state.
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
    raw["cookies"] = json!([format!("__Host-lti-state-{state}={state}")]);
    lambda_http::request::from_str(&raw.to_string()).expect("event")
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn every_event_file_is_answered_by_its_function() {
    let stack = stack().await;
    let var = stack.var();
    let login = match functions::login(&stack.clients, &var) {
        functions::Function::Ready(h) => h,
        functions::Function::NotConfigured(e) => panic!("{e}"),
    };
    let jwks = functions::jwks(&stack.clients, &var);
    let services = functions::services(&stack.clients, &var);
    let launch = functions::launch(&stack.clients, &var);

    for name in ["login-get.json", "login-post.json"] {
        let response = login.handle(to_http(event(name))).await;
        assert_eq!(response.status(), 302, "{name}");
        assert!(response.headers()["location"]
            .to_str()
            .expect("ascii")
            .starts_with("https://lms.example.edu/auth?"));
    }
    for name in ["jwks-get.json", "lti-jwks-get.json"] {
        let response = jwks.serve(to_http(event(name)), |h, r| h.handle(r)).await;
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(json_of(&response)["keys"][0]["alg"], "RS256");
    }
    // The sample launch event carries a placeholder token: refused, with a code.
    let response = launch
        .serve(to_http(event("launch-post.json")), |h, r| h.handle(r))
        .await;
    assert!(
        response.status().is_client_error(),
        "{} {}",
        response.status(),
        String::from_utf8_lossy(response.body())
    );
    assert_eq!(
        code_of(&response),
        "LTI_KID_UNKNOWN",
        "the sample token's kid is not the platform's"
    );

    let response = services
        .serve(to_http(event("config-get.json")), |h, r| h.handle(r))
        .await;
    assert_eq!(json_of(&response)["loginUrl"], format!("{TOOL}/lti/login"));
    // The Canvas developer-key JSON alone, with no credentials (Canvas fetches it).
    let response = services
        .serve(to_http(event("config-canvas-get.json")), |h, r| h.handle(r))
        .await;
    assert_eq!(response.status(), 200);
    let canvas = json_of(&response);
    assert_eq!(canvas["oidc_initiation_url"], format!("{TOOL}/lti/login"));
    assert_eq!(
        canvas["extensions"][0]["platform"], "canvas.instructure.com",
        "{canvas}"
    );
    let response = services
        .serve(to_http(event("admin-platforms-post.json")), |h, r| {
            h.handle(r)
        })
        .await;
    // (After this the platform's keyset URL is the event's example URL: no launches.)
    assert_eq!(
        response.status(),
        200,
        "the platform exists already: updated"
    );
    let response = services
        .serve(to_http(event("admin-platforms-get.json")), |h, r| {
            h.handle(r)
        })
        .await;
    assert_eq!(json_of(&response)["platforms"][0]["issuer"], ISS);
    // An LMS opening the Dynamic Registration URL: the sample LMS is not reachable, so
    // the failure page with its code, and nothing stored.
    let response = services
        .serve(to_http(event("dynamic-registration-get.json")), |h, r| {
            h.handle(r)
        })
        .await;
    let page = String::from_utf8_lossy(response.body()).to_string();
    assert!(
        matches!(response.status().as_u16(), 502 | 504),
        "{} {page}",
        response.status()
    );
    assert_eq!(
        code_of(&response),
        "LTI_DYNREG_CONFIG_UNREACHABLE",
        "{page}"
    );
    assert!(page.contains("lms.example.edu"), "{page}");
    assert!(
        !page.contains("eyJzdWIiOiJzYW1wbGUi"),
        "the token is never shown"
    );
    // The services: the document, a key, and calls answered with their codes. The
    // deep-link event first: its service key is not installed yet.
    let functions::Function::Ready(services) = services else {
        panic!("services configured")
    };
    let response = services.handle(to_http(event("deep-link-post.json"))).await;
    assert_eq!(
        (response.status().as_u16(), code_of(&response)),
        (401, "LTI_SERVICE_KEY_INVALID".to_string())
    );
    let response = services
        .handle(to_http(event("services-openapi-get.json")))
        .await;
    assert_eq!(json_of(&response)["openapi"], "3.1.0");
    let response = services
        .handle(to_http(event("admin-service-keys-post.json")))
        .await;
    assert_eq!(response.status(), 201);
    assert!(json_of(&response)["key"]
        .as_str()
        .is_some_and(|k| k.starts_with("lsk_")));
    services
        .service_keys
        .install(
            &lti_core::error::Secret::new("lsk_sample_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"),
            "events",
        )
        .await
        .expect("install");
    for name in [
        "ags-lineitems-get.json",
        "ags-lineitems-post.json",
        "ags-lineitem-get.json",
        "ags-lineitem-put.json",
        "ags-lineitem-delete.json",
        "ags-scores-post.json",
        "ags-results-get.json",
        "deep-link-post.json",
    ] {
        let response = services.handle(to_http(event(name))).await;
        assert_eq!(
            (response.status().as_u16(), code_of(&response)),
            (401, "LTI_LAUNCH_TOKEN_INVALID".to_string()),
            "{name}"
        );
    }
    let response = services
        .handle(to_http(event("nrps-members-get.json")))
        .await;
    assert_eq!(
        (response.status().as_u16(), code_of(&response)),
        (404, "LTI_CONTEXT_UNKNOWN".to_string())
    );

    // The responses convert back to what lambda_http sends.
    let lambda_response = from_http(login.handle(to_http(event("login-get.json"))).await);
    assert_eq!(lambda_response.status(), 302);
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn an_unconfigured_function_answers_503_naming_the_missing_variable() {
    let clients = common::moto(None).await;
    let none = |_: &str| None;
    let login = functions::login(&clients, &none);
    let response = login
        .serve(to_http(event("login-get.json")), |h, r| h.handle(r))
        .await;
    assert_eq!(response.status(), 503);
    assert!(String::from_utf8_lossy(response.body()).contains("LTI_BASE_URL"));
    let only_base = |name: &str| match name {
        "LTI_BASE_URL" => Some(TOOL.to_string()),
        "LTI_APP_LANDING_URL" => Some("https://app.example".to_string()),
        _ => None,
    };
    let launch = functions::launch(&clients, &only_base);
    let response = launch
        .serve(to_http(event("launch-post.json")), |h, r| h.handle(r))
        .await;
    assert_eq!(response.status(), 503);
    assert!(String::from_utf8_lossy(response.body()).contains("LTI_TABLE_NAME"));
    let jwks = functions::jwks(&clients, &none);
    let response = jwks
        .serve(to_http(event("jwks-get.json")), |h, r| h.handle(r))
        .await;
    assert!(String::from_utf8_lossy(response.body()).contains("LTI_KMS_KEY_ID"));
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn a_warm_login_makes_one_write_and_a_warm_launch_two_aws_calls() {
    let stack = stack().await;
    let var = stack.var();
    let functions::Function::Ready(login_fn) = functions::login(&stack.clients, &var) else {
        panic!("login configured")
    };
    let functions::Function::Ready(launch_fn) = functions::launch(&stack.clients, &var) else {
        panic!("launch configured")
    };
    let functions::Function::Ready(jwks_fn) = functions::jwks(&stack.clients, &var) else {
        panic!("jwks configured")
    };

    // Cold: each function reads what it caches (platform, deployment, public key).
    let (_, state, nonce) = login(&stack, &login_fn).await;
    let cold_login = stack.counter.take();
    let response = launch_fn
        .handle(to_http(launch_event(&id_token(&stack, &nonce), &state)))
        .await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        String::from_utf8_lossy(response.body())
    );
    let cold_launch = stack.counter.take();
    jwks_fn.handle(to_http(event("jwks-get.json"))).await;
    let cold_jwks = stack.counter.take();

    // Warm.
    let (_, state, nonce) = login(&stack, &login_fn).await;
    let warm_login = stack.counter.take();
    let token = id_token(&stack, &nonce);
    let response = launch_fn
        .handle(to_http(launch_event(&token, &state)))
        .await;
    assert_eq!(response.status(), 200);
    let warm_calls = stack.counter.take_calls();
    let warm_critical = lti_aws::calls::critical_path(&warm_calls);
    let mut warm_launch: Vec<String> = warm_calls.into_iter().map(|c| c.name).collect();
    warm_launch.sort();
    // A replay of that launch on this instance: refused without any AWS call.
    let replay = launch_fn
        .handle(to_http(launch_event(&token, &state)))
        .await;
    assert_eq!(replay.status(), 409);
    assert!(
        stack.counter.take().is_empty(),
        "a known replay costs no call"
    );
    let response = jwks_fn.handle(to_http(event("jwks-get.json"))).await;
    assert_eq!(response.status(), 200);
    let warm_jwks = stack.counter.take();

    // A new instance of the launch function (cold), once the table holds the
    // platform's keys and the tool key: one read, then the transaction and the
    // signature side by side.
    let functions::Function::Ready(second_launch) = functions::launch(&stack.clients, &var) else {
        panic!("launch configured")
    };
    let (_, state, nonce) = login(&stack, &login_fn).await;
    stack.counter.take();
    let token = id_token(&stack, &nonce);
    let response = second_launch
        .handle(to_http(launch_event(&token, &state)))
        .await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        String::from_utf8_lossy(response.body())
    );
    let cold_calls = stack.counter.take_calls();
    let cold_critical = lti_aws::calls::critical_path(&cold_calls);
    let mut cold_instance: Vec<String> = cold_calls.into_iter().map(|c| c.name).collect();
    cold_instance.sort();
    println!(
        "AWS calls per launch on a new instance: {cold_instance:?} ({cold_critical} on the critical path)"
    );
    assert_eq!(
        cold_instance,
        vec![
            "dynamodb:BatchGetItem",
            "dynamodb:TransactWriteItems",
            "kms:Sign"
        ]
    );
    assert_eq!(cold_critical, 2);

    println!("AWS calls per login: cold {cold_login:?}, warm {warm_login:?}");
    println!(
        "AWS calls per launch: cold {cold_launch:?}, warm {warm_launch:?} ({warm_critical} on the critical path)"
    );
    println!("AWS calls per JWKS request: cold {cold_jwks:?}, warm {warm_jwks:?}");
    assert_eq!(
        warm_login,
        vec!["dynamodb:PutItem"],
        "login: one DynamoDB write"
    );
    assert_eq!(
        warm_launch,
        vec!["dynamodb:TransactWriteItems", "kms:Sign"],
        "launch: one DynamoDB transaction (state + user) and one KMS signature"
    );
    assert_eq!(warm_critical, 1, "made concurrently: one round trip");
    assert!(warm_jwks.is_empty(), "JWKS: no call when warm");

    // The state is consumed and the user exists.
    let stored = stack
        .store
        .stored_state(&state, SystemClock.now())
        .await
        .expect("read")
        .expect("kept until expiry");
    assert!(stored.consumed_at.is_some());
    let registration = stack
        .store
        .platform(ISS, CLIENT)
        .await
        .expect("read")
        .expect("registered");
    let user = stack
        .store
        .user(&registration.user_id("user-42"))
        .await
        .expect("read")
        .expect("provisioned");
    assert_eq!(user.email.as_deref(), Some("ada@example.edu"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn fifty_concurrent_replays_of_one_launch_succeed_exactly_once() {
    let stack = stack().await;
    let var = stack.var();
    let functions::Function::Ready(login_fn) = functions::login(&stack.clients, &var) else {
        panic!("login configured")
    };
    let functions::Function::Ready(launch_fn) = functions::launch(&stack.clients, &var) else {
        panic!("launch configured")
    };
    let (_, state, nonce) = login(&stack, &login_fn).await;
    let token = id_token(&stack, &nonce);
    let launch_fn = Arc::new(launch_fn);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let launch_fn = launch_fn.clone();
        let request = to_http(launch_event(&token, &state));
        tasks.push(tokio::spawn(async move { launch_fn.handle(request).await }));
    }
    let mut ok = 0;
    let mut replays = 0;
    let mut other = Vec::new();
    for task in tasks {
        let response = task.await.expect("task");
        match (response.status().as_u16(), code_of(&response).as_str()) {
            (200, _) => ok += 1,
            (409, "LTI_NONCE_REPLAYED") => replays += 1,
            (status, code) => other.push(format!("{status} {code}")),
        }
    }
    assert_eq!((ok, replays, other), (1, 49, Vec::<String>::new()));
}

/// Installs the service key of `events/deep-link-post.json` in the services function.
async fn install_event_key(services: &lti_http::handlers::ServicesHandler) {
    let key = event("deep-link-post.json").headers()["x-api-key"]
        .to_str()
        .expect("ascii")
        .to_string();
    services
        .service_keys
        .install(&lti_core::error::Secret::new(key), "the event's key")
        .await
        .expect("installed");
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn the_deep_link_event_answers_a_deep_linking_launch_signed_with_the_kms_key() {
    let stack = stack().await;
    let var = stack.var();
    let functions::Function::Ready(login_fn) = functions::login(&stack.clients, &var) else {
        panic!("login configured")
    };
    let functions::Function::Ready(launch_fn) = functions::launch(&stack.clients, &var) else {
        panic!("launch configured")
    };
    let functions::Function::Ready(jwks_fn) = functions::jwks(&stack.clients, &var) else {
        panic!("jwks configured")
    };
    let functions::Function::Ready(services) = functions::services(&stack.clients, &var) else {
        panic!("services configured")
    };
    install_event_key(&services).await;

    // An instructor's deep-linking launch through the launch function.
    let (_, state, nonce) = login(&stack, &login_fn).await;
    let lti = "https://purl.imsglobal.org/spec/lti/claim/";
    let dl = "https://purl.imsglobal.org/spec/lti-dl/claim/";
    let mut claims = resource_link_claims(&nonce);
    let object = claims.as_object_mut().expect("object");
    object.remove(&format!("{lti}resource_link"));
    claims[format!("{lti}message_type")] = json!("LtiDeepLinkingRequest");
    claims[format!("{lti}roles")] =
        json!(["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]);
    let data = json!({"session": "s-42", "opaque": [1, "two", null]});
    claims[format!("{dl}deep_linking_settings")] = json!({
        "deep_link_return_url": format!("{ISS}/dl/return"),
        "accept_types": ["ltiResourceLink", "link"],
        "accept_multiple": true,
        "accept_lineitem": true,
        "data": data
    });
    let response = launch_fn
        .handle(to_http(launch_event(
            &sign_id_token(&stack, &claims),
            &state,
        )))
        .await;
    let page = String::from_utf8_lossy(response.body()).to_string();
    assert_eq!(response.status(), 200, "{page}");
    let start = page.find("name=\"app_token\" value=\"").expect("hand-off") + 26;
    let app_token = &page[start..start + page[start..].find('"').expect("end")];
    let launch_id = lti_core::jwt::decode_part(app_token.split('.').nth(1).expect("payload"))
        .and_then(|c: Value| c["jti"].as_str().map(str::to_string))
        .expect("launch id");

    // The event, with the launch id as bearer.
    let mut request = event("deep-link-post.json");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {launch_id}").parse().expect("header"),
    );
    let sent: Value = serde_json::from_slice(request.body().as_ref()).expect("event body");
    stack.counter.take();
    let response = services.handle(to_http(request)).await;
    let calls = stack.counter.take();
    println!("AWS calls per deep-linking answer (cold services function): {calls:?}");
    let answer = json_of(&response);
    assert_eq!(response.status(), 200, "{answer}");
    assert_eq!(answer["returnUrl"], format!("{ISS}/dl/return"));
    let jwt = answer["jwt"].as_str().expect("jwt");
    assert!(
        answer["autoSubmitHtml"]
            .as_str()
            .expect("page")
            .contains(jwt),
        "the page posts the JWT"
    );
    assert!(calls.contains(&"kms:Sign".to_string()), "{calls:?}");

    // Verified with the public half of the KMS key, as the jwks function publishes it.
    let jwks = json_of(&jwks_fn.handle(to_http(event("jwks-get.json"))).await);
    let kid = jsonwebtoken::decode_header(jwt)
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
    validation.set_issuer(&[CLIENT]);
    validation.set_audience(&[ISS]);
    let verified = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .expect("a valid signature and claims")
        .claims;
    assert_eq!(
        verified[format!("{lti}message_type")],
        "LtiDeepLinkingResponse"
    );
    assert_eq!(verified[format!("{lti}version")], "1.3.0");
    assert_eq!(verified[format!("{lti}deployment_id")], "1");
    assert_eq!(verified[format!("{dl}data")], data);
    assert_eq!(verified[format!("{dl}content_items")], sent["contentItems"]);
    assert_eq!(verified[format!("{dl}msg")], "1 item added");
    let lifetime = verified["exp"].as_i64().expect("exp") - verified["iat"].as_i64().expect("iat");
    assert!((1..=300).contains(&lifetime), "{lifetime}");

    // Answered once: recorded in DynamoDB.
    let mut again = event("deep-link-post.json");
    again.headers_mut().insert(
        "authorization",
        format!("Bearer {launch_id}").parse().expect("header"),
    );
    let response = services.handle(to_http(again)).await;
    assert_eq!(
        (response.status().as_u16(), code_of(&response).as_str()),
        (409, "LTI_ALREADY_ANSWERED")
    );
}
