//! The launch and login of the real Lambda binaries, in AWS calls: `cargo lambda
//! watch` runs the functions with `AWS_ENDPOINT_URL` pointing at `lti-aws-proxy`, which
//! holds every call a fixed delay in front of moto and records it. Prints one line per
//! case — calls made, calls on the critical path (calls that overlap count once) and
//! the time the request took through `cargo lambda watch` — and asserts the call
//! budget (never a time). Must be the first test to log in and launch through the
//! binaries after they started (tests/run.sh and tests/latency.sh run it first), so
//! the login and launch functions are cold.
//!
//! Environment (set by those scripts): `LTI_E2E_LAMBDA_URL`, `LTI_E2E_GATEWAY_PORT`,
//! `LTI_E2E_TABLE`, `LTI_E2E_KMS_KEY`, `LTI_E2E_ADMIN_TOKEN`, `LTI_E2E_AWS_PROXY_URL`,
//! and `AWS_ENDPOINT_URL` (moto itself, for the in-process instance).

use lti_aws::functions::{self, Clients, Function};
use lti_core::clock::{Clock, SystemClock};
use lti_core::signer::LocalRsaSigner;
use lti_e2e::aws_proxy::{critical_path, take_calls};
use serde_json::{json, Value};
use std::time::Instant;

const ISS: &str = "https://latency.lms.example";
const LTI: &str = "https://purl.imsglobal.org/spec/lti/claim/";

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} must be set (tests/run.sh sets it)"))
}

/// A platform with its own key and JWKS endpoint, registered through the services
/// binary with a routing rule for course `sales`.
struct Platform {
    client_id: String,
    key: LocalRsaSigner,
    base: String,
}

impl Platform {
    async fn registered(lambda: &str, base: &str) -> Self {
        let key = LocalRsaSigner::generate().expect("key");
        let jwks = json!({"keys": [key.public_jwk()]}).to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let jwks_url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
        let app = axum::Router::new().fallback(move || {
            let jwks = jwks.clone();
            async move { ([("content-type", "application/json")], jwks) }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let client_id = format!(
            "latency-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("time")
                .as_nanos()
        );
        let admin = var("LTI_E2E_ADMIN_TOKEN");
        let client = reqwest::Client::new();
        let created = client
            .post(format!("{lambda}/lambda-url/services/admin/platforms"))
            .bearer_auth(&admin)
            .json(&json!({
                "issuer": ISS, "clientId": client_id, "name": "Latency LMS",
                "authLoginUrl": format!("{ISS}/auth"), "authTokenUrl": format!("{ISS}/token"),
                "keysetUrl": jwks_url, "deploymentId": "d-1"
            }))
            .send()
            .await
            .expect("admin call");
        assert_eq!(created.status(), 201, "registration");
        let created: Value = created.json().await.expect("json");
        let id = created["id"].as_str().expect("id");
        let rule = client
            .post(format!(
                "{lambda}/lambda-url/services/admin/platforms/{id}/routes"
            ))
            .bearer_auth(&admin)
            .json(&json!({
                "contextId": "sales",
                "landingUrl": format!("{base}/app?scenario=sales"),
                "claims": {"group": "7"}
            }))
            .send()
            .await
            .expect("admin call");
        assert_eq!(rule.status(), 201, "routing rule");
        Self {
            client_id,
            key,
            base: base.to_string(),
        }
    }

    fn login_query(&self) -> String {
        serde_urlencoded::to_string([
            ("iss", ISS),
            ("login_hint", "h"),
            ("target_link_uri", &format!("{}/lti/launch", self.base)),
            ("client_id", &self.client_id),
        ])
        .expect("query")
    }

    /// A signed id_token of a launch into course `sales` answering `nonce`.
    fn id_token(&self, sub: &str, nonce: &str) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let now = SystemClock.now();
        let claims = json!({
            "iss": ISS, "aud": self.client_id, "sub": sub, "iat": now, "exp": now + 300,
            "nonce": nonce,
            format!("{LTI}message_type"): "LtiResourceLinkRequest",
            format!("{LTI}version"): "1.3.0",
            format!("{LTI}deployment_id"): "d-1",
            format!("{LTI}target_link_uri"): format!("{}/lti/launch", self.base),
            format!("{LTI}resource_link"): {"id": "rl-1"},
            format!("{LTI}context"): {"id": "sales"},
            format!("{LTI}roles"): [],
        });
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.key.public_jwk().kid});
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", part(&header), part(&claims));
        let signature = self.key.sign_now(input.as_bytes()).expect("sign");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// (state, nonce, cookie header) from a login's redirect and cookies.
fn login_answer(status: u16, location: &str, cookies: Vec<String>) -> (String, String, String) {
    assert_eq!(status, 302, "the login redirects to the platform");
    let location = url::Url::parse(location).expect("url");
    let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    (q["state"].clone(), q["nonce"].clone(), cookies.join("; "))
}

fn form(token: &str, state: &str) -> String {
    serde_urlencoded::to_string([("id_token", token), ("state", state)]).expect("form")
}

/// One launch through in-process functions on the same table and key: another
/// instance that launched before, leaving the registration's platform keys and the
/// tool's public key in the table.
async fn launch_elsewhere(platform: &Platform) {
    let vars = [
        ("LTI_BASE_URL", platform.base.clone()),
        ("LTI_APP_LANDING_URL", format!("{}/app", platform.base)),
        ("LTI_TABLE_NAME", var("LTI_E2E_TABLE")),
        ("LTI_KMS_KEY_ID", var("LTI_E2E_KMS_KEY")),
        ("LTI_ADMIN_TOKEN", var("LTI_E2E_ADMIN_TOKEN")),
        ("LTI_INSECURE_ALLOW_LOOPBACK_URLS", "true".to_string()),
    ];
    let lookup = |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    };
    let clients = Clients::from_env(None).await;
    let (Function::Ready(login), Function::Ready(launch)) = (
        functions::login(&clients, &lookup),
        functions::launch(&clients, &lookup),
    ) else {
        panic!("the in-process functions are configured");
    };
    let request = |method: &str, uri: &str, body: String, cookie: Option<&str>| {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(cookie) = cookie {
            builder = builder.header("cookie", cookie);
        }
        builder.body(bytes::Bytes::from(body)).expect("request")
    };
    let answer = login
        .handle(request(
            "GET",
            &format!("/lti/login?{}", platform.login_query()),
            String::new(),
            None,
        ))
        .await;
    let cookies = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .collect();
    let (state, nonce, cookie) = login_answer(
        answer.status().as_u16(),
        answer.headers()["location"].to_str().expect("ascii"),
        cookies,
    );
    let token = platform.id_token("u-elsewhere", &nonce);
    let answer = launch
        .handle(request(
            "POST",
            "/lti/launch",
            form(&token, &state),
            Some(&cookie),
        ))
        .await;
    assert_eq!(answer.status(), 200, "the in-process launch succeeds");
}

struct Binaries {
    lambda: String,
    proxy: String,
    client: reqwest::Client,
}

impl Binaries {
    async fn login(&self, platform: &Platform) -> (String, String, String) {
        let answer = self
            .client
            .get(format!(
                "{}/lambda-url/login/lti/login?{}",
                self.lambda,
                platform.login_query()
            ))
            .send()
            .await
            .expect("the login function answers");
        let cookies = answer
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
            .collect();
        let location = answer.headers()["location"]
            .to_str()
            .expect("ascii")
            .to_string();
        login_answer(answer.status().as_u16(), &location, cookies)
    }

    /// (status, body) of a launch.
    async fn launch(&self, token: &str, state: &str, cookie: &str) -> (u16, String) {
        let answer = self
            .client
            .post(format!("{}/lambda-url/launch/lti/launch", self.lambda))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .body(form(token, state))
            .send()
            .await
            .expect("the launch function answers");
        (answer.status().as_u16(), answer.text().await.expect("body"))
    }

    /// Prints the case's line; (calls, calls on the critical path).
    async fn report(&self, case: &str, started: Instant) -> (usize, usize) {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let calls = take_calls(&self.proxy).await.expect("the proxy answers");
        let critical = critical_path(&calls);
        let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
        println!(
            "lambda {case}: calls={} critical_path={critical} server_ms={ms:.1} ({})",
            calls.len(),
            names.join(", ")
        );
        (calls.len(), critical)
    }
}

#[tokio::test]
#[ignore = "needs moto, lti-aws-proxy and cargo lambda watch: tests/run.sh starts them"]
async fn the_lambda_binaries_launch_in_round_trips() {
    let port: u16 = var("LTI_E2E_GATEWAY_PORT").parse().expect("port");
    let base = format!("http://127.0.0.1:{port}");
    let binaries = Binaries {
        lambda: var("LTI_E2E_LAMBDA_URL"),
        proxy: var("LTI_E2E_AWS_PROXY_URL"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
    };
    let platform = Platform::registered(&binaries.lambda, &base).await;
    launch_elsewhere(&platform).await;
    take_calls(&binaries.proxy)
        .await
        .expect("the proxy answers");

    // New login and launch instances, the table as other instances left it.
    let started = Instant::now();
    let (state, nonce, cookie) = binaries.login(&platform).await;
    let (calls, _) = binaries.report("cold login", started).await;
    assert!(calls <= 2, "a cold login makes at most 2 AWS calls");
    let token = platform.id_token("u-1", &nonce);
    let started = Instant::now();
    let (status, body) = binaries.launch(&token, &state, &cookie).await;
    assert_eq!(status, 200, "{body}");
    let budget = binaries.report("cold launch", started).await;
    assert_eq!(
        budget,
        (3, 2),
        "a cold launch: 3 calls, 2 on the critical path"
    );
    assert!(
        body.contains("scenario=sales"),
        "the course's routing rule came with the registration: {body}"
    );

    // The same instances again.
    let started = Instant::now();
    let (state, nonce, cookie) = binaries.login(&platform).await;
    let budget = binaries.report("warm login", started).await;
    assert_eq!(budget, (1, 1), "a warm login: 1 call");
    let token = platform.id_token("u-1", &nonce);
    let started = Instant::now();
    let (status, body) = binaries.launch(&token, &state, &cookie).await;
    assert_eq!(status, 200, "{body}");
    let budget = binaries.report("warm launch", started).await;
    assert_eq!(
        budget,
        (2, 1),
        "a warm launch: 2 calls, 1 on the critical path"
    );

    // The same launch again, on the instance that consumed it.
    let started = Instant::now();
    let (status, _) = binaries.launch(&token, &state, &cookie).await;
    assert_eq!(status, 409, "a replay is refused");
    let (calls, _) = binaries
        .report("replay on the instance that consumed it", started)
        .await;
    assert_eq!(calls, 0, "a replay this instance saw costs no AWS call");
}
