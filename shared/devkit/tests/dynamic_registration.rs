//! LTI Dynamic Registration on a running dev server, over real HTTP: the demo
//! platform's "Add a tool by URL" end to end (register, then launch); LMS doubles on
//! 127.0.0.1 behaving like Moodle (the token in the query, its configuration and
//! answer shapes, plain-text refusals), Brightspace (no token) and Canvas (no
//! deployment in the answer); a platform answering with an error; addresses the tool
//! must not fetch; and the registration stored equal to what the admin API stores for
//! the same values.

mod common;

use common::dev::{Dev, ADMIN};
use lti_dev::browser::{Browser, Next};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const TOOL_CONFIGURATION: &str = "https://purl.imsglobal.org/spec/lti-tool-configuration";

/// What the LMS double's registration endpoint does with a request: the bearer it got
/// (if any) and the body; answers status and body.
type Registrar = dyn Fn(Option<&str>, &Value) -> (u16, String) + Send + Sync;

/// An LMS double on 127.0.0.1: `/openid-configuration` (built from its own URL by
/// `configuration`), `/register` (answered by `registrar`), `/moved` (a 302 to
/// `moved_to`).
/// The registration requests received: the bearer (if any) and the body.
type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

struct TestLms {
    url: String,
    received: Received,
}

struct Behaviour {
    configuration: Box<dyn Fn(&str) -> Value + Send + Sync>,
    registrar: Box<Registrar>,
    moved_to: Option<String>,
}

impl TestLms {
    async fn start(behaviour: Behaviour) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let received: Received = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(behaviour);
        let (base, seen) = (url.clone(), received.clone());
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (behaviour, base, seen) = (behaviour.clone(), base.clone(), seen.clone());
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .unwrap_or_default();
                let (status, content_type, text, location) = match parts.uri.path() {
                    "/openid-configuration" => (
                        200,
                        "application/json",
                        (behaviour.configuration)(&base).to_string(),
                        None,
                    ),
                    "/register" if parts.method == http::Method::POST => {
                        let bearer = parts
                            .headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer "))
                            .map(str::to_string);
                        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        seen.lock()
                            .expect("lock")
                            .push((bearer.clone(), json.clone()));
                        let (status, text) = (behaviour.registrar)(bearer.as_deref(), &json);
                        (status, "application/json", text, None)
                    }
                    "/moved" => (302, "text/plain", String::new(), behaviour.moved_to.clone()),
                    _ => (404, "text/plain", "not found".into(), None),
                };
                let mut response = axum::response::Response::new(axum::body::Body::from(text));
                *response.status_mut() = http::StatusCode::from_u16(status).expect("status");
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(content_type),
                );
                if let Some(location) = location {
                    response.headers_mut().insert(
                        http::header::LOCATION,
                        http::HeaderValue::from_str(&location).expect("location"),
                    );
                }
                response
            }
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, received }
    }

    fn configuration_url(&self) -> String {
        format!("{}/openid-configuration", self.url)
    }

    fn received(&self) -> Vec<(Option<String>, Value)> {
        self.received.lock().expect("lock").clone()
    }
}

/// Moodle 4.x's configuration shape (plain message names, no authorization_server).
fn moodle_configuration(base: &str) -> Value {
    json!({
        "issuer": base,
        "token_endpoint": format!("{base}/mod/lti/token.php"),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "jwks_uri": format!("{base}/mod/lti/certs.php"),
        "authorization_endpoint": format!("{base}/mod/lti/auth.php"),
        "registration_endpoint": format!("{base}/register"),
        "scopes_supported": [
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
            "openid"
        ],
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
            "product_family_code": "moodle",
            "version": "4.5",
            "messages_supported": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"],
            "placements": ["AddContentMenu"]
        }
    })
}

/// Moodle's answer for client `client_id`, deployment (its type id) `deployment`.
fn moodle_answer(client_id: &str, deployment: Option<&str>) -> String {
    let mut tool = json!({"target_link_uri": "x", "domain": "x", "claims": ["sub", "iss"]});
    if let Some(d) = deployment {
        tool["deployment_id"] = json!(d);
    }
    json!({
        "client_id": client_id,
        "application_type": ["web"],
        "response_types": ["id_token"],
        "token_endpoint_auth_method": "private_key_jwt",
        TOOL_CONFIGURATION: tool,
    })
    .to_string()
}

const MOODLE_TOKEN: &str =
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJYcTNuSDJrIiwic2NvcGUiOiJyZWcifQ.c2ln";

/// A Moodle double that wants `MOODLE_TOKEN` as bearer.
async fn moodle() -> TestLms {
    TestLms::start(Behaviour {
        configuration: Box::new(moodle_configuration),
        registrar: Box::new(|bearer, _| match bearer {
            Some(MOODLE_TOKEN) => (200, moodle_answer("Xq3nH2kVbR9tLw1", Some("4"))),
            // Moodle answers its registration_exception as text.
            _ => (401, "\"invalid_token\"".into()),
        }),
        moved_to: None,
    })
    .await
}

/// `GET /lti/register` with `query`, as a page (`json`: with Accept: application/json).
async fn register(dev: &Dev, query: &[(&str, &str)], json: bool) -> (u16, String) {
    let mut request = reqwest::Client::new().get(
        url::Url::parse_with_params(&format!("{}/lti/register", dev.tool), query).expect("url"),
    );
    if json {
        request = request.header("accept", "application/json");
    }
    let response = request.send().await.expect("call");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

async fn admin_get(dev: &Dev, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{}{path}", dev.tool))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("call")
        .json()
        .await
        .expect("json")
}

/// Every registration of `issuer` as the admin API lists it.
async fn platforms_of(dev: &Dev, issuer: &str) -> Vec<Value> {
    let page = reqwest::Client::new()
        .get(
            url::Url::parse_with_params(
                &format!("{}/admin/platforms", dev.tool),
                [("issuer", issuer)],
            )
            .expect("url"),
        )
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("call")
        .json::<Value>()
        .await
        .expect("json");
    page["platforms"].as_array().cloned().unwrap_or_default()
}

fn error_code(body: &str) -> String {
    serde_json::from_str::<Value>(body).expect("json")["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn the_demo_platform_registers_the_tool_by_url_and_launches_it_right_after() {
    let dev = Dev::start().await;
    let mut browser = Browser::new();
    let add = browser
        .run(Next::Get(format!(
            "{}/platform/add-tool?url={}/lti/register",
            dev.tool, dev.tool
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
    assert!(
        src.starts_with(&format!("{}/lti/register?", dev.tool)),
        "{src}"
    );

    // The frame: the tool registers itself with the demo platform.
    let done = browser
        .run(Next::Get(src))
        .await
        .expect("registration page");
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("lti-lambda is registered"),
        "{}",
        done.body
    );
    assert!(done.body.contains("lti-dev-dynreg-1"));
    assert!(done.body.contains("dynreg-1"));
    assert!(done.body.contains("org.imsglobal.lti.close"));
    let issuer = format!("{}/platform", dev.tool);
    let stored: Vec<Value> = platforms_of(&dev, &issuer)
        .await
        .into_iter()
        .filter(|p| p["clientId"] == "lti-dev-dynreg-1")
        .collect();
    assert_eq!(stored.len(), 1, "stored once");
    let id = stored[0]["id"].as_str().expect("id");
    let deployments = admin_get(&dev, &format!("/admin/platforms/{id}/deployments")).await;
    assert_eq!(deployments["deployments"][0]["deploymentId"], "dynreg-1");
    // Audited, with the platform as the actor and no token.
    let audit = dev.server.audit.lines();
    let line = audit
        .iter()
        .find(|l| l.contains("lti-dev-dynreg-1"))
        .expect("audit line");
    let line: Value = serde_json::from_str(line).expect("json");
    assert_eq!(line["who"]["kind"], "dynamicRegistration");
    assert_eq!(line["who"]["productFamilyCode"], "lti-lambda-demo");

    // The tool is on the platform's list, and a learner launches into it.
    let home = browser
        .run(Next::Get(format!("{}/platform", dev.tool)))
        .await
        .expect("home");
    assert!(home.body.contains("value=\"tool-1\""), "{}", home.body);
    let mut learner = Browser::new();
    let page = learner
        .run(Next::Get(format!(
            "{}/platform/launch?user=learner&tool=tool-1",
            dev.tool
        )))
        .await
        .expect("the launch completes");
    assert_eq!(page.url, format!("{}/app", dev.tool), "{}", page.body);
    assert!(page.body.contains("Welcome, Lea Learner"), "{}", page.body);
    let login = learner
        .hops
        .iter()
        .find(|p| p.url.contains("/lti/login"))
        .expect("login hop");
    assert!(
        login.url.contains("client_id=lti-dev-dynreg-1"),
        "{}",
        login.url
    );

    // The token was used once: opening the same frame again is refused by the platform.
    let again = browser
        .run(Next::Get(format!(
            "{}/lti/register?openid_configuration={}/platform/.well-known/openid-configuration&registration_token=used",
            dev.tool, dev.tool
        )))
        .await
        .expect("page");
    assert_eq!(again.status, 502);
    assert!(again.body.contains("LTI_DYNREG_REFUSED"));
    assert!(again.body.contains("invalid_token"));
}

#[tokio::test]
async fn moodle_with_the_token_in_the_query_registers_and_equals_what_the_admin_api_stores() {
    let lms = moodle().await;
    let dev = Dev::start().await;
    let (status, body) = register(
        &dev,
        &[
            ("openid_configuration", &lms.configuration_url()),
            ("registration_token", MOODLE_TOKEN),
        ],
        true,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(answer["deploymentId"], "4");
    assert_eq!(answer["created"], true);
    // The request Moodle got: its token as bearer, only the scopes it offers.
    let received = lms.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0.as_deref(), Some(MOODLE_TOKEN));
    let request = &received[0].1;
    assert_eq!(
        request["initiate_login_uri"],
        format!("{}/lti/login", dev.tool)
    );
    assert_eq!(
        request[TOOL_CONFIGURATION]["domain"],
        dev.tool.trim_start_matches("http://")
    );
    assert!(!request["scope"]
        .as_str()
        .unwrap_or_default()
        .contains("result.readonly"));
    // The token never reaches the audit trail.
    assert!(dev
        .server
        .audit
        .lines()
        .iter()
        .all(|l| !l.contains(MOODLE_TOKEN)));

    // The same values through the admin API of another dev server.
    let other = Dev::start().await;
    let stored_by_dynreg = &platforms_of(&dev, &lms.url).await[0];
    let admin_post: Value = reqwest::Client::new()
        .post(format!("{}/admin/platforms", other.tool))
        .bearer_auth(ADMIN)
        .json(&json!({
            "issuer": lms.url,
            "clientId": "Xq3nH2kVbR9tLw1",
            "name": stored_by_dynreg["name"],
            "authLoginUrl": format!("{}/mod/lti/auth.php", lms.url),
            "authTokenUrl": format!("{}/mod/lti/token.php", lms.url),
            "keysetUrl": format!("{}/mod/lti/certs.php", lms.url),
            "deploymentId": "4",
        }))
        .send()
        .await
        .expect("call")
        .json()
        .await
        .expect("json");
    let stored_by_admin = &platforms_of(&other, &lms.url).await[0];
    let without_ids = |p: &Value| {
        let mut p = p.clone();
        for volatile in ["id", "createdAt", "updatedAt"] {
            p.as_object_mut().map(|o| o.remove(volatile));
        }
        p
    };
    assert_eq!(without_ids(stored_by_dynreg), without_ids(stored_by_admin));
    assert_eq!(admin_post["deploymentId"], "4");
    let deployments = |dev: &Dev, p: &Value| {
        let path = format!(
            "/admin/platforms/{}/deployments",
            p["id"].as_str().unwrap_or_default()
        );
        let dev_url = dev.tool.clone();
        async move {
            let d = reqwest::Client::new()
                .get(format!("{dev_url}{path}"))
                .bearer_auth(ADMIN)
                .send()
                .await
                .expect("call")
                .json::<Value>()
                .await
                .expect("json");
            d["deployments"].as_array().map(|a| {
                a.iter()
                    .map(|d| d["deploymentId"].clone())
                    .collect::<Vec<_>>()
            })
        }
    };
    assert_eq!(
        deployments(&dev, stored_by_dynreg).await,
        deployments(&other, stored_by_admin).await
    );
}

#[tokio::test]
async fn brightspace_without_a_token_registers_and_sends_no_bearer() {
    let lms = TestLms::start(Behaviour {
        configuration: Box::new(|base| {
            let mut c = moodle_configuration(base);
            c["authorization_server"] = json!(format!("{base}/core/connect/token"));
            c["https://purl.imsglobal.org/spec/lti-platform-configuration"] = json!({
                "product_family_code": "desire2learn",
                "messages_supported": [{"type": "LtiResourceLinkRequest"}, {"type": "LtiDeepLinkingRequest"}]
            });
            c
        }),
        registrar: Box::new(|bearer, _| match bearer {
            None => (
                200,
                json!({"client_id": "b7c2e8f0-1111-4a2b-9c3d-123456789abc",
                       TOOL_CONFIGURATION: {"deployment_id": "d9f4a2c1-2222-4b3c-8d4e-abcdef012345"}})
                .to_string(),
            ),
            Some(_) => (400, "unexpected bearer".into()),
        }),
        moved_to: None,
    })
    .await;
    let dev = Dev::start().await;
    let (status, page) = register(
        &dev,
        &[("openid_configuration", &lms.configuration_url())],
        false,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Brightspace 127.0.0.1"), "{page}");
    assert!(page.contains("d9f4a2c1-2222-4b3c-8d4e-abcdef012345"));
    assert_eq!(lms.received()[0].0, None);
    let stored = &platforms_of(&dev, &lms.url).await[0];
    assert_eq!(
        stored["tokenAudience"],
        format!("{}/core/connect/token", lms.url)
    );
}

#[tokio::test]
async fn a_platform_that_answers_with_an_error_is_shown_with_its_words_and_nothing_is_stored() {
    let lms = TestLms::start(Behaviour {
        configuration: Box::new(moodle_configuration),
        registrar: Box::new(|_, _| {
            (
                400,
                json!({"error": "invalid_redirect_uri", "error_description": "redirect_uris must use https"})
                    .to_string(),
            )
        }),
        moved_to: None,
    })
    .await;
    let dev = Dev::start().await;
    let (status, page) = register(
        &dev,
        &[
            ("openid_configuration", &lms.configuration_url()),
            ("registration_token", "tok-123456"),
        ],
        false,
    )
    .await;
    assert_eq!(status, 502, "{page}");
    assert!(page.contains("LTI_DYNREG_REFUSED"));
    assert!(
        page.contains("invalid_redirect_uri: redirect_uris must use https"),
        "{page}"
    );
    assert!(
        page.contains("registration token is valid once"),
        "advice: {page}"
    );
    assert!(!page.contains("tok-123456"));
    assert!(
        !page.contains("org.imsglobal.lti.close"),
        "a failure does not close the window"
    );
    assert!(platforms_of(&dev, &lms.url).await.is_empty());

    let (status, body) = register(
        &dev,
        &[("openid_configuration", &lms.configuration_url())],
        true,
    )
    .await;
    assert_eq!(status, 502);
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["error"]["code"], "LTI_DYNREG_REFUSED");
    assert_eq!(
        body["error"]["platformError"],
        "invalid_redirect_uri: redirect_uris must use https"
    );
    assert!(body["error"]["advice"].is_string());
}

#[tokio::test]
async fn a_missing_deployment_is_refused_unless_the_tool_accepts_new_deployments() {
    let canvas_like = || Behaviour {
        configuration: Box::new(moodle_configuration),
        registrar: Box::new(|_, _| (200, moodle_answer("10000000000077", None))),
        moved_to: None,
    };
    let lms = TestLms::start(canvas_like()).await;
    let dev = Dev::start().await;
    let query = [("openid_configuration", lms.configuration_url())];
    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, page) = register(&dev, &query, false).await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("LTI_DYNREG_DEPLOYMENT_MISSING"));
    assert!(page.contains("10000000000077"));
    assert!(page.contains("LTI_DYNAMIC_REGISTRATION_ACCEPT_NEW_DEPLOYMENTS=true"));
    assert!(platforms_of(&dev, &lms.url).await.is_empty());

    let accepting =
        Dev::with_settings(&[("LTI_DYNAMIC_REGISTRATION_ACCEPT_NEW_DEPLOYMENTS", "true")]).await;
    let (status, body) = register(&accepting, &query, true).await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["deploymentId"], Value::Null);
    assert_eq!(body["platform"]["acceptNewDeployments"], true);
}

#[tokio::test]
async fn addresses_the_tool_must_not_fetch_are_refused_and_each_failure_has_its_code() {
    let dev = Dev::start().await;
    for (url, code) in [
        (
            "https://169.254.169.254/latest/meta-data/",
            "LTI_DYNREG_URL_REFUSED",
        ),
        (
            "https://10.1.2.3/openid-configuration",
            "LTI_DYNREG_URL_REFUSED",
        ),
        (
            "https://[fd00::1]/openid-configuration",
            "LTI_DYNREG_URL_REFUSED",
        ),
        (
            "http://lms.example.edu/openid-configuration",
            "LTI_DYNREG_URL_REFUSED",
        ),
        ("ftp://lms.example.edu/x", "LTI_DYNREG_URL_REFUSED"),
        ("not a url", "LTI_DYNREG_URL_REFUSED"),
    ] {
        let (status, body) = register(&dev, &[("openid_configuration", url)], true).await;
        assert_eq!(
            (status, error_code(&body)),
            (400, code.to_string()),
            "{url}: {body}"
        );
    }
    let (status, body) = register(&dev, &[], true).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, "LTI_DYNREG_PARAM_MISSING")
    );

    // An issuer on another site than the configuration.
    let elsewhere = TestLms::start(Behaviour {
        configuration: Box::new(|base| {
            let mut c = moodle_configuration(base);
            c["issuer"] = json!("https://moodle.example.edu");
            c
        }),
        registrar: Box::new(|_, _| (500, String::new())),
        moved_to: None,
    })
    .await;
    let (status, body) = register(
        &dev,
        &[("openid_configuration", &elsewhere.configuration_url())],
        true,
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "LTI_DYNREG_ISSUER_MISMATCH"),
        "{body}"
    );
    assert!(elsewhere.received().is_empty(), "nothing was posted");

    // A redirect to another site (localhost is another origin than 127.0.0.1).
    let port = elsewhere
        .url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let moving = TestLms::start(Behaviour {
        configuration: Box::new(moodle_configuration),
        registrar: Box::new(|_, _| (500, String::new())),
        moved_to: Some(format!("http://localhost:{port}/openid-configuration")),
    })
    .await;
    let (status, body) = register(
        &dev,
        &[("openid_configuration", &format!("{}/moved", moving.url))],
        true,
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "LTI_DYNREG_REDIRECT_REFUSED"),
        "{body}"
    );

    // Not JSON, and nobody listening.
    let (status, body) = register(
        &dev,
        &[("openid_configuration", &format!("{}/moved", elsewhere.url))],
        true,
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "LTI_DYNREG_CONFIG_UNREACHABLE"),
        "{body}"
    );
    let (status, body) = register(
        &dev,
        &[(
            "openid_configuration",
            "http://127.0.0.1:9/openid-configuration",
        )],
        true,
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "LTI_DYNREG_CONFIG_UNREACHABLE"),
        "{body}"
    );
    let (status, body) = register(
        &dev,
        &[("openid_configuration", &format!("{}/platform", dev.tool))],
        true,
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (502, "LTI_DYNREG_CONFIG_NOT_JSON"),
        "{body}"
    );
}
