//! The demo platform launches into other tools too (`POST /platform/tools`), each with
//! its own client_id and only its own redirect URI; what it always refused it still
//! refuses.

use jsonwebtoken::{Algorithm, Validation};
use lti_core::clock::{Clock, SystemClock};
use lti_dev::browser::{first_form, Browser, Next, Page};
use lti_dev::{DevOptions, DevServer};
use serde_json::{json, Value};
use std::sync::Arc;

mod common;
use common::TempDir;

/// Where the other tool would be; nothing needs to listen there.
const OTHER: &str = "http://127.0.0.1:9";

struct Harness {
    server: DevServer,
    client: reqwest::Client,
    _dir: TempDir,
}

async fn start() -> Harness {
    let dir = TempDir::new("lti-dev-tools");
    let server = DevServer::start(DevOptions {
        port: 0,
        data_dir: dir.0.clone(),
        admin_token: Some("t".repeat(40)),
        clock: Arc::new(SystemClock),
        settings: vec![],
    })
    .await
    .expect("dev server");
    Harness {
        server,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url)
    }

    async fn register(&self, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url("/platform/tools"))
            .json(&body)
            .send()
            .await
            .expect("post");
        let status = response.status().as_u16();
        (status, response.json().await.expect("json"))
    }

    /// The platform's answer to an authentication request, as a browser gets it.
    async fn authorize(&self, client_id: &str, redirect_uri: &str, nonce: &str) -> Page {
        let query = serde_urlencoded::to_string([
            ("scope", "openid"),
            ("response_type", "id_token"),
            ("response_mode", "form_post"),
            ("prompt", "none"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("login_hint", "learner"),
            ("lti_message_hint", "demo-link-1"),
            ("state", "state-1"),
            ("nonce", nonce),
        ])
        .expect("query");
        Browser::new()
            .send(&Next::Get(self.url(&format!("/platform/auth?{query}"))))
            .await
            .expect("auth")
    }

    /// Verifies an id_token of the demo platform with its JWKS, for `audience`.
    async fn verify(&self, id_token: &str, audience: &str) -> Value {
        let jwks = self
            .client
            .get(self.url("/platform/jwks"))
            .send()
            .await
            .expect("jwks")
            .bytes()
            .await
            .expect("body");
        let keys = lti_core::keys::parse_jwks(&jwks).expect("jwks");
        let kid = jsonwebtoken::decode_header(id_token)
            .expect("header")
            .kid
            .expect("kid");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[audience]);
        validation.set_issuer(&[self.url("/platform")]);
        jsonwebtoken::decode::<Value>(id_token, &keys[&kid][0], &validation)
            .expect("a valid id_token")
            .claims
    }
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

#[tokio::test]
async fn a_registered_tool_gets_its_own_client_id_and_its_launches() {
    let h = start().await;
    let (status, tool) = h
        .register(json!({"url": format!("{OTHER}/"), "name": "pylti1p3"}))
        .await;
    assert_eq!(status, 201, "{tool}");
    assert_eq!(tool["id"], "tool-1");
    assert_eq!(tool["clientId"], "lti-dev-tool-1");
    assert_eq!(tool["deploymentId"], "1");
    assert_eq!(tool["loginUrl"], format!("{OTHER}/lti/login"));
    assert_eq!(tool["redirectUri"], format!("{OTHER}/lti/launch"));
    assert_eq!(tool["platform"]["issuer"], h.url("/platform"));
    assert_eq!(tool["platform"]["authUrl"], h.url("/platform/auth"));
    assert_eq!(tool["platform"]["jwksUrl"], h.url("/platform/jwks"));
    assert_eq!(
        tool["launchUrls"]["learner"],
        h.url("/platform/launch?user=learner&tool=tool-1")
    );

    // The same tool again: the same registration.
    let (status, again) = h.register(json!({"url": OTHER})).await;
    assert_eq!((status, &again["clientId"]), (200, &tool["clientId"]));
    let listed: Value = h
        .client
        .get(h.url("/platform/tools"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = listed["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, ["lti-lambda", "tool-1"]);
    // The demo platform's page offers it.
    let home = Browser::new()
        .send(&Next::Get(h.url("/platform")))
        .await
        .expect("home");
    assert!(
        home.body.contains(r#"<option value="tool-1">pylti1p3"#),
        "{}",
        home.body
    );

    // Its launch link starts the login at that tool, with its client_id.
    let mut browser = Browser::new();
    let start = browser
        .send(&Next::Get(
            h.url("/platform/launch?user=learner&tool=tool-1"),
        ))
        .await
        .expect("start");
    let login = start.location.expect("redirect");
    assert!(login.starts_with(&format!("{OTHER}/lti/login?")), "{login}");
    let params = query_of(&login);
    assert_eq!(params["iss"], h.url("/platform"));
    assert_eq!(params["client_id"], "lti-dev-tool-1");
    assert_eq!(params["lti_deployment_id"], "1");
    assert_eq!(params["target_link_uri"], format!("{OTHER}/lti/launch"));

    // Its authentication request is answered with an id_token for it, posted to it.
    let page = h
        .authorize("lti-dev-tool-1", &format!("{OTHER}/lti/launch"), "nonce-1")
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let form = first_form(&page.body).expect("form");
    assert_eq!(form.action, format!("{OTHER}/lti/launch"));
    assert_eq!(form.field("state"), Some("state-1"));
    let claims = h
        .verify(form.field("id_token").expect("id_token"), "lti-dev-tool-1")
        .await;
    let lti = "https://purl.imsglobal.org/spec/lti/claim/";
    assert_eq!(claims["sub"], "demo-learner-1");
    assert_eq!(claims["nonce"], "nonce-1");
    assert_eq!(claims[format!("{lti}deployment_id")], "1");
    assert_eq!(
        claims[format!("{lti}target_link_uri")],
        format!("{OTHER}/lti/launch")
    );
    assert!(claims["exp"].as_i64().expect("exp") > SystemClock.now());

    // The built-in tool still launches end to end.
    let page = Browser::new()
        .run(Next::Get(h.url("/platform/launch?user=learner")))
        .await
        .expect("flow");
    assert!(page.body.contains("Welcome, Lea Learner"), "{}", page.body);
    h.server.stop().await;
}

#[tokio::test]
async fn the_platform_posts_nothing_to_an_unregistered_redirect_uri() {
    let h = start().await;
    let other_launch = format!("{OTHER}/lti/launch");
    let ours = h.url("/lti/launch");

    // Before the other tool is registered, its redirect URI is refused whatever the
    // client_id.
    for client_id in ["lti-dev-demo", "lti-dev-tool-1"] {
        let page = h.authorize(client_id, &other_launch, "n").await;
        assert_eq!(page.status, 400, "{client_id}: {}", page.body);
    }

    let (status, _) = h.register(json!({"url": OTHER})).await;
    assert_eq!(status, 201);
    for (client_id, redirect_uri) in [
        ("lti-dev-tool-1", ours.as_str()), // another tool's redirect URI
        ("lti-dev-demo", other_launch.as_str()), // and the other way round
        ("lti-dev-tool-1", &format!("{other_launch}?next=/x")),
        ("lti-dev-tool-1", &format!("{OTHER}/elsewhere")),
        ("lti-dev-tool-2", other_launch.as_str()), // never registered
        ("", other_launch.as_str()),
    ] {
        let page = h.authorize(client_id, redirect_uri, "n").await;
        assert_eq!(
            page.status, 400,
            "{client_id} {redirect_uri}: {}",
            page.body
        );
        assert!(
            first_form(&page.body).is_none() && !page.body.contains("id_token"),
            "{client_id} {redirect_uri}: {}",
            page.body
        );
    }
    // The registered pairs work.
    assert_eq!(h.authorize("lti-dev-demo", &ours, "n").await.status, 200);
    assert_eq!(
        h.authorize("lti-dev-tool-1", &other_launch, "n")
            .await
            .status,
        200
    );
    h.server.stop().await;
}

#[tokio::test]
async fn an_id_token_the_platform_made_for_another_tool_is_refused_by_ours() {
    let h = start().await;
    let (status, _) = h.register(json!({"url": OTHER})).await;
    assert_eq!(status, 201);
    // Our own login: state, nonce and the browser's state cookie.
    let mut browser = Browser::new();
    let auth = browser
        .run_until(
            Next::Get(h.url("/platform/launch?user=learner")),
            |next| matches!(next, Next::Get(url) if url.contains("/platform/auth")),
        )
        .await
        .expect("login");
    let Next::Get(auth_url) = auth else {
        unreachable!()
    };
    let params = query_of(&auth_url);
    // An id_token the platform signed for the other tool, with our nonce.
    let page = h
        .authorize(
            "lti-dev-tool-1",
            &format!("{OTHER}/lti/launch"),
            &params["nonce"],
        )
        .await;
    let id_token = first_form(&page.body)
        .and_then(|f| f.field("id_token").map(str::to_string))
        .expect("id_token");
    let page = browser
        .send(&Next::Post(
            h.url("/lti/launch"),
            vec![
                ("id_token".into(), id_token),
                ("state".into(), params["state"].clone()),
            ],
        ))
        .await
        .expect("post");
    assert_eq!(page.status, 401, "{}", page.body);
    assert!(page.body.contains("LTI_AUD_INVALID"), "{}", page.body);
    h.server.stop().await;
}

#[tokio::test]
async fn tool_registrations_are_checked() {
    let h = start().await;
    let post = |body: &'static str, content_type: &'static str| {
        h.client
            .post(h.url("/platform/tools"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    // JSON only, so a cross-site form cannot register a tool.
    let response = post(
        "url=http%3A%2F%2F127.0.0.1%3A9",
        "application/x-www-form-urlencoded",
    )
    .await
    .expect("post");
    assert_eq!(response.status(), 415);
    for body in [
        r#"{}"#,
        r#"{"url": "not a url"}"#,
        r#"{"url": "ftp://127.0.0.1:9"}"#,
        r#"{"url": "http://user:pw@127.0.0.1:9"}"#,
        r#"{"url": "http://127.0.0.1:9/?a=1"}"#,
        r#"{"url": "http://127.0.0.1:9", "loginUrl": "javascript:alert(1)"}"#,
        r#"{"url": "http://127.0.0.1:9", "surprise": true}"#,
        r#"{"url": 9}"#,
    ] {
        let response = post(body, "application/json").await.expect("post");
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.expect("json");
        assert!(error["error"]["code"].is_string(), "{body}: {error}");
    }
    // lti-lambda's own redirect URI is taken.
    let (status, error) = h.register(json!({"url": h.server.base_url})).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("PLATFORM_TOOL_INVALID"))
    );
    // A launch into a tool that does not exist.
    let page = Browser::new()
        .send(&Next::Get(
            h.url("/platform/launch?user=learner&tool=tool-9"),
        ))
        .await
        .expect("launch");
    assert_eq!(page.status, 400);
    h.server.stop().await;
}
