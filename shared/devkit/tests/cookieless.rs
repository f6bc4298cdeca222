//! Launches whose browser withholds the state cookie (third-party cookies blocked),
//! through a real dev server: the platform's storage binds them (LTI Client Side
//! postMessages + postMessage Storage), a launch from another browser context is
//! refused, and without storage the user is offered a new window. The scripted
//! browser plays the part of the pages' script and of the platform's storage frame:
//! it reads the values the login page hands to `lti.put_data` and posts what the
//! launch page posts after `lti.get_data`. (The script itself runs in Chromium in
//! tests/browser.)

use lti_core::clock::SystemClock;
use lti_dev::browser::{first_form, Browser, Next, Page};
use lti_dev::{platform, DevOptions, DevServer};
use std::collections::HashMap;
use std::sync::Arc;

mod common;
use common::TempDir;

struct Harness {
    server: DevServer,
    _dir: TempDir,
}

async fn start(settings: Vec<(String, String)>) -> Harness {
    let dir = TempDir::new("lti-dev-cookieless");
    let server = DevServer::start(DevOptions {
        port: 0,
        data_dir: dir.0.clone(),
        admin_token: Some("c".repeat(40)),
        clock: Arc::new(SystemClock),
        settings,
    })
    .await
    .expect("dev server");
    Harness { server, _dir: dir }
}

impl Harness {
    fn tool(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url)
    }
    /// The demo platform on localhost: another site than the tool (127.0.0.1).
    fn platform_origin(&self) -> String {
        format!("http://localhost:{}", self.server.addr.port())
    }
    fn platform(&self, path: &str) -> String {
        format!("{}{path}", self.platform_origin())
    }
}

fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `data-*` attributes of the element with `id`.
fn data_of(html: &str, id: &str) -> HashMap<String, String> {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let open = html[..start].rfind('<').expect("tag start");
    let end = start + html[start..].find('>').expect("tag end");
    let tag = &html[open..end];
    let mut data = HashMap::new();
    let mut rest = tag;
    while let Some(i) = rest.find(" data-") {
        let after = &rest[i + 6..];
        let Some(eq) = after.find("=\"") else { break };
        let name = after[..eq].to_string();
        let value_start = eq + 2;
        let value_end = value_start + after[value_start..].find('"').expect("quote");
        data.insert(name, unescape(&after[value_start..value_end]));
        rest = &after[value_end..];
    }
    data
}

fn error_code(page: &Page) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&page.body) {
        if let Some(code) = v.pointer("/error/code").and_then(|c| c.as_str()) {
            return code.to_string();
        }
    }
    let marker = "Error <code>";
    match page.body.find(marker) {
        Some(i) => page.body[i + marker.len()..]
            .split('<')
            .next()
            .unwrap_or_default()
            .to_string(),
        None => String::new(),
    }
}

/// What a cookie-blocking browser has after the platform's auth endpoint answered:
/// the launch form (id_token, state), the login page's storage parameters, and the
/// login page itself.
struct Started {
    launch: Next,
    storage: HashMap<String, String>,
    login: Page,
}

/// Starts an iframe launch of `user` on the localhost platform with its storage frame,
/// in a browser that keeps no cookie for the tool (third-party cookies blocked).
async fn start_storage_launch(h: &Harness, browser: &mut Browser, user: &str) -> Started {
    let to_login = browser
        .send(&Next::Get(
            h.platform(&format!("/platform/launch?user={user}&storage=1")),
        ))
        .await
        .expect("platform");
    let login_url = to_login
        .location
        .clone()
        .expect("redirect to the tool's login");
    assert!(login_url.starts_with(&h.tool("/lti/login")), "{login_url}");
    assert!(
        login_url.contains(&format!("lti_storage_target={}", platform::STORAGE_FRAME)),
        "{login_url}"
    );
    let login = browser.send(&Next::Get(login_url)).await.expect("login");
    browser.clear_cookies(); // blocked as third-party
    assert_eq!(login.status, 200, "{}", login.body);
    let storage = data_of(&login.body, "lti-storage-login");
    let auth = browser
        .send(&Next::Get(storage["next"].clone()))
        .await
        .expect("auth");
    let launch = Browser::next_after(&auth).expect("the platform posts the launch");
    Started {
        launch,
        storage,
        login,
    }
}

fn fields_of(next: &Next) -> Vec<(String, String)> {
    match next {
        Next::Post(_, fields) => fields.clone(),
        Next::Get(url) => panic!("expected a POST, got GET {url}"),
    }
}

fn with(fields: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = fields.to_vec();
    all.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    all
}

#[tokio::test]
async fn an_iframe_launch_without_cookies_lands_through_the_platforms_storage() {
    let h = start(vec![]).await;
    let mut browser = Browser::new();
    let started = start_storage_launch(&h, &mut browser, "learner").await;

    // The login page: stores `state_<state>` → `<state>.<proof>` and the nonce in the
    // storage frame of the platform's origin, then goes to its auth endpoint.
    let s = &started.storage;
    let state = url::Url::parse(&s["next"])
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    assert_eq!(s["target"], platform::STORAGE_FRAME);
    assert_eq!(
        s["origin"],
        h.platform_origin(),
        "the auth endpoint's origin"
    );
    assert_eq!(s["state-key"], format!("state_{state}"));
    let proof = s["state-value"]
        .strip_prefix(&format!("{state}."))
        .expect("value is <state>.<proof>")
        .to_string();
    assert_eq!(proof.len(), 43);
    assert!(s["nonce-key"].starts_with("nonce_"));
    assert!(s["next"].starts_with(&h.platform("/platform/auth?")));
    // The cookie is still set, as without storage.
    let cookie = started
        .login
        .set_cookies
        .iter()
        .find(|c| c.starts_with("__Host-lti-state-"))
        .expect("state cookie");
    for attribute in ["Secure", "HttpOnly", "SameSite=None", "Partitioned"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }

    // The launch arrives without the cookie: the tool answers the page that reads the
    // state back from the storage frame; nothing is consumed yet.
    let fields = fields_of(&started.launch);
    let page = browser.send(&started.launch).await.expect("launch");
    assert_eq!(page.status, 200, "{}", page.body);
    let reading = data_of(&page.body, "lti-storage-launch");
    assert_eq!(reading["key"], format!("state_{state}"));
    assert_eq!(reading["origin"], h.platform_origin());
    assert_eq!(reading["target"], platform::STORAGE_FRAME);
    assert_eq!(reading["state"], state);
    let form = first_form(&page.body).expect("form");
    assert_eq!(form.action, h.tool("/lti/launch"));
    assert_eq!(form.field("state"), Some(state.as_str()));
    assert_eq!(
        form.field("id_token"),
        fields
            .iter()
            .find(|(k, _)| k == "id_token")
            .map(|(_, v)| v.as_str())
    );
    assert!(
        !page.body.contains(&proof),
        "the proof is never in the tool's launch page"
    );

    // The page posts again with the proof read back: the normal pipeline lands.
    let second = Next::Post(
        h.tool("/lti/launch"),
        with(&fields, &[("lti_storage_proof", &proof)]),
    );
    let landed = browser.run(second.clone()).await.expect("flow");
    assert_eq!(landed.status, 200, "{}", landed.body);
    assert!(
        landed.body.contains("Welcome, Lea Learner"),
        "{}",
        landed.body
    );
    assert!(
        landed.body.contains("http://localhost:"),
        "the localhost platform's issuer"
    );

    // Single use: the same proof again is a replay.
    let again = browser.send(&second).await.expect("replay");
    assert_eq!(
        (again.status, error_code(&again).as_str()),
        (409, "LTI_NONCE_REPLAYED")
    );
    // And the first POST again (no cookie, no proof): the state is used up.
    let again = browser.send(&started.launch).await.expect("replay");
    assert_eq!(
        (again.status, error_code(&again).as_str()),
        (401, "LTI_STATE_COOKIE_MISSING")
    );
    h.server.stop().await;
}

#[tokio::test]
async fn a_launch_posted_from_another_browser_context_is_refused_and_consumes_nothing() {
    let h = start(vec![]).await;
    let mut victim = Browser::new();
    let started = start_storage_launch(&h, &mut victim, "instructor").await;
    let fields = fields_of(&started.launch);
    let proof = started.storage["state-value"]
        .split_once('.')
        .map(|(_, p)| p.to_string())
        .expect("proof");

    // Another browser (or a script) with the victim's id_token and state: without a
    // proof it only gets the page that asks its own storage (which has nothing) …
    let mut other = Browser::new();
    let page = other.send(&started.launch).await.expect("post");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"lti-storage-launch\""));
    // … which then reports failure: a new-window page, not a launch.
    let page = other
        .send(&Next::Post(
            h.tool("/lti/launch"),
            with(&fields, &[("lti_storage_failed", "1")]),
        ))
        .await
        .expect("post");
    assert_eq!(
        (page.status, error_code(&page).as_str()),
        (401, "LTI_STATE_COOKIE_MISSING")
    );
    assert!(!page.body.contains("Welcome"));
    // A forged or guessed proof is refused with its own code.
    for forged in [
        "x".repeat(43),
        proof.chars().rev().collect::<String>(),
        "y".repeat(500),
    ] {
        let page = other
            .send(&Next::Post(
                h.tool("/lti/launch"),
                with(&fields, &[("lti_storage_proof", &forged)]),
            ))
            .await
            .expect("post");
        assert_eq!(
            (page.status, error_code(&page).as_str()),
            (401, "LTI_STORAGE_PROOF_INVALID"),
            "{}",
            page.body
        );
        assert!(
            page.body.contains("did not start this login"),
            "{}",
            page.body
        );
    }
    // A state made without storage accepts no proof either.
    let mut plain = Browser::new();
    let to_login = plain
        .send(&Next::Get(h.platform("/platform/launch?user=learner")))
        .await
        .expect("platform");
    let launch = plain
        .run_until(
            Next::Get(to_login.location.expect("login")),
            |n| matches!(n, Next::Post(url, _) if url.ends_with("/lti/launch")),
        )
        .await
        .expect("launch form");
    let page = Browser::new()
        .send(&Next::Post(
            h.tool("/lti/launch"),
            with(&fields_of(&launch), &[("lti_storage_proof", &proof)]),
        ))
        .await
        .expect("post");
    assert_eq!(error_code(&page), "LTI_STORAGE_PROOF_INVALID");

    // None of it used up the victim's login: its own storage proof still lands.
    let landed = victim
        .run(Next::Post(
            h.tool("/lti/launch"),
            with(&fields, &[("lti_storage_proof", &proof)]),
        ))
        .await
        .expect("flow");
    assert!(
        landed.body.contains("Welcome, Ian Instructor"),
        "{}",
        landed.body
    );
    h.server.stop().await;
}

#[tokio::test]
async fn with_the_cookie_a_storage_login_launches_as_before() {
    let h = start(vec![]).await;
    let mut browser = Browser::new();
    let page = browser
        .send(&Next::Get(
            h.platform("/platform/launch?user=learner&storage=1"),
        ))
        .await
        .expect("platform");
    let login = browser
        .send(&Next::Get(page.location.expect("login")))
        .await
        .expect("login");
    let storage = data_of(&login.body, "lti-storage-login");
    // Cookies allowed: the launch is bound by the cookie; no storage page.
    let landed = browser
        .run(Next::Get(storage["next"].clone()))
        .await
        .expect("flow");
    assert!(
        landed.body.contains("Welcome, Lea Learner"),
        "{}",
        landed.body
    );
    assert!(!browser
        .hops
        .iter()
        .any(|p| p.body.contains("id=\"lti-storage-launch\"")));
    h.server.stop().await;
}

#[tokio::test]
async fn without_cookie_or_storage_the_user_is_offered_a_new_window_that_lands() {
    let h = start(vec![]).await;
    let mut browser = Browser::new();
    // An iframe launch on a platform that offers no storage, cookies blocked.
    let page = browser
        .send(&Next::Get(h.platform("/platform/launch?user=learner")))
        .await
        .expect("platform");
    let login = browser
        .send(&Next::Get(page.location.expect("login")))
        .await
        .expect("login");
    assert_eq!(login.status, 302, "no storage target: the plain redirect");
    browser.clear_cookies();
    let launch = browser
        .run_until(
            Next::Get(login.location.expect("auth")),
            |n| matches!(n, Next::Post(url, _) if url.ends_with("/lti/launch")),
        )
        .await
        .expect("launch form");
    let page = browser.send(&launch).await.expect("launch");
    assert_eq!(
        (page.status, error_code(&page).as_str()),
        (401, "LTI_STATE_COOKIE_MISSING")
    );
    assert!(page.body.contains("Open in a new window"), "{}", page.body);
    let link = data_link(&page.body);
    let restart = url::Url::parse(&link).expect("restart url");
    assert!(link.starts_with(&h.tool("/lti/login?")), "{link}");
    let query: HashMap<String, String> = restart.query_pairs().into_owned().collect();
    assert_eq!(query["iss"], h.platform("/platform"));
    assert_eq!(query["login_hint"], "learner");
    assert_eq!(query["target_link_uri"], h.tool("/lti/launch"));
    assert_eq!(query["lti_message_hint"], platform::RESOURCE_LINK_ID);
    assert_eq!(query["client_id"], platform::CLIENT_ID);
    assert!(!query.contains_key("lti_storage_target"));

    // The new window is a top-level context: the cookie works and the launch lands.
    let mut window = Browser::new();
    let landed = window.run(Next::Get(link)).await.expect("flow");
    assert!(
        landed.body.contains("Welcome, Lea Learner"),
        "{}",
        landed.body
    );

    // An API client asking for JSON gets the plain error.
    let response = reqwest::Client::new()
        .post(h.tool("/lti/launch"))
        .header("accept", "application/json")
        .form(&fields_of(&launch))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "LTI_STATE_COOKIE_MISSING");
    h.server.stop().await;
}

/// The href of the "Open in a new window" link.
fn data_link(html: &str) -> String {
    let start = html.find("id=\"open-new-window\"").expect("link");
    let open = html[..start].rfind('<').expect("tag");
    let tag = &html[open..start + html[start..].find('>').expect("end")];
    let href = tag.split("href=\"").nth(1).expect("href");
    unescape(&href[..href.find('"').expect("quote")])
}

#[tokio::test]
async fn pages_may_be_framed_by_the_launching_platform_only() {
    let h = start(vec![(
        "LTI_FRAME_ANCESTORS".into(),
        "https://*.instructure.com".into(),
    )])
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let frame_ancestors = |response: &reqwest::Response| {
        let csp = response
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        csp.split("; ")
            .find(|d| d.starts_with("frame-ancestors"))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no frame-ancestors in {csp}"))
    };
    let platform = h.platform("/platform");
    let login = |storage: &str| {
        format!(
            "{}?iss={}&login_hint=learner&target_link_uri={}&client_id={}{storage}",
            h.tool("/lti/login"),
            platform,
            h.tool("/lti/launch"),
            platform::CLIENT_ID
        )
    };
    // The storage login page: the platform's origin and the configured wildcard.
    let response = client
        .get(login("&lti_storage_target=post_message_forwarding"))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200);
    assert_eq!(
        frame_ancestors(&response),
        format!(
            "frame-ancestors 'self' {} https://*.instructure.com",
            h.platform_origin()
        )
    );
    let csp = csp_of(&response);
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(!csp.contains("unsafe-inline'; script") && !csp.contains("script-src *"));
    // A refused login of an unknown platform: only the configured sources.
    let response = client
        .get(login("").replace(&platform, "https://unknown.example"))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 404);
    assert_eq!(
        frame_ancestors(&response),
        "frame-ancestors 'self' https://*.instructure.com"
    );
    // A bad lti_storage_target is refused with its own code.
    let response = client
        .get(login("&lti_storage_target=a%20b"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "LTI_STORAGE_TARGET_INVALID");
    // A launch refused for a registered issuer (bad token): framable by that platform.
    let token = format!(
        "eyJhbGciOiJSUzI1NiJ9.{}.c2ln",
        base64_url(&serde_json::json!({ "iss": platform, "aud": platform::CLIENT_ID }).to_string())
    );
    let response = client
        .post(h.tool("/lti/launch"))
        .form(&[("id_token", token.as_str())])
        .send()
        .await
        .expect("launch");
    assert_eq!(response.status(), 401);
    assert_eq!(
        frame_ancestors(&response),
        format!(
            "frame-ancestors 'self' {} https://*.instructure.com",
            h.platform_origin()
        )
    );
    h.server.stop().await;
}

fn csp_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
