//! Full OIDC flows through the HTTP layer: demo platform → login → platform auth →
//! launch → demo app, driven by the scripted browser against a real dev server.

use lti_core::clock::{Clock, FixedClock, SystemClock};
use lti_core::user::UserStore;
use lti_dev::browser::{first_form, Browser, Next, Page};
use lti_dev::{DevOptions, DevServer};
use serde_json::Value;
use std::sync::Arc;

struct Harness {
    server: DevServer,
    clock: Arc<FixedClock>,
    _dir: TempDir,
}

mod common;
use common::TempDir;

async fn start() -> Harness {
    let dir = TempDir::new("lti-dev-test");
    let clock = Arc::new(FixedClock::at(SystemClock.now()));
    let server = DevServer::start(DevOptions {
        port: 0,
        data_dir: dir.0.clone(),
        admin_token: Some("a".repeat(40)),
        clock: clock.clone(),
        settings: vec![],
    })
    .await
    .expect("dev server");
    Harness {
        server,
        clock,
        _dir: dir,
    }
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url)
    }

    /// Runs a launch as `user` until the platform's form post to the tool, unsent.
    async fn until_launch_post(&self, browser: &mut Browser, user: &str) -> Next {
        let launch_url = self.url("/lti/launch");
        browser
            .run_until(
                Next::Get(self.url(&format!("/platform/launch?user={user}"))),
                |next| matches!(next, Next::Post(url, _) if *url == launch_url),
            )
            .await
            .expect("flow reaches the launch post")
    }
}

fn app_token_claims(browser: &Browser) -> Value {
    let handoff = browser
        .hops
        .iter()
        .find(|p| p.url.ends_with("/lti/launch") && p.status == 200)
        .expect("a launch response");
    let form = first_form(&handoff.body).expect("auto-submit form");
    let token = form.field("app_token").expect("app_token");
    let payload = token.split('.').nth(1).expect("payload");
    lti_core::jwt::decode_part(payload).expect("claims")
}

fn error_code(page: &Page) -> String {
    let marker = "Error <code>";
    let start = page
        .body
        .find(marker)
        .map(|i| i + marker.len())
        .unwrap_or(0);
    page.body[start..]
        .split('<')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn an_instructor_launches_from_the_demo_platform_into_the_app() {
    let h = start().await;
    let mut browser = Browser::new();
    let page = browser
        .run(Next::Get(h.url("/platform/launch?user=instructor")))
        .await
        .expect("flow");
    assert_eq!(page.url, h.url("/app"), "the user lands in the app");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Welcome, Ian Instructor"),
        "{}",
        page.body
    );
    assert!(page.body.contains("instructor"));
    assert!(page.body.contains("Demo Course 101"));

    // The hops: platform → login (302) → platform auth (form) → launch (form) → app.
    let path_of = |p: &Page| url::Url::parse(&p.url).expect("url").path().to_string();
    let paths: Vec<String> = browser.hops.iter().map(path_of).collect();
    assert_eq!(
        paths,
        vec![
            "/platform/launch",
            "/lti/login",
            "/platform/auth",
            "/lti/launch",
            "/app"
        ]
    );
    // No token or id_token in any URL.
    for hop in &browser.hops {
        assert!(
            !hop.url.contains("id_token=") && !hop.url.contains("app_token="),
            "{}",
            hop.url
        );
    }
    let claims = app_token_claims(&browser);
    assert_eq!(
        claims["lti"]["roles"]["mapped"],
        serde_json::json!(["instructor"])
    );
    assert_eq!(claims["lti"]["custom"]["unit"], "1");
    assert_eq!(claims["iss"], h.server.base_url);
    // The state cookie was cleared after use.
    assert!(browser
        .cookies
        .values()
        .all(|jar| jar.keys().all(|k| !k.starts_with("__Host-lti-state-"))));
    h.server.stop().await;
}

#[tokio::test]
async fn a_learner_launch_is_provisioned_and_shown() {
    let h = start().await;
    let mut browser = Browser::new();
    let page = browser
        .run(Next::Get(h.url("/platform/launch?user=learner")))
        .await
        .expect("flow");
    assert!(page.body.contains("Welcome, Lea Learner"), "{}", page.body);
    let issuer = h.url("/platform");
    let user = h
        .server
        .store
        .user(&lti_core::user::stable_user_id(
            &issuer,
            &h.server.platform.jwks_url(),
            "demo-learner-1",
        ))
        .await
        .expect("read")
        .expect("provisioned");
    assert_eq!(user.email.as_deref(), Some("lea.learner@demo.example"));
    assert!(
        page.body.contains(&user.id),
        "the app shows the stable user id"
    );
    h.server.stop().await;
}

#[tokio::test]
async fn a_user_with_no_name_or_email_is_accepted_with_only_the_sub() {
    let h = start().await;
    let mut browser = Browser::new();
    let page = browser
        .run(Next::Get(h.url("/platform/launch?user=private")))
        .await
        .expect("flow");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page
        .body
        .contains("Welcome, Anonymous user demo-private-7f3a9c"));
    assert!(page.body.contains("(not shared)"));
    let claims = app_token_claims(&browser);
    assert!(claims["lti"]["user"].get("name").is_none());
    assert!(claims["lti"]["user"].get("email").is_none());
    h.server.stop().await;
}

#[tokio::test]
async fn a_deep_linking_request_reaches_the_app_with_its_settings() {
    let h = start().await;
    let mut browser = Browser::new();
    let page = browser
        .run(Next::Get(
            h.url("/platform/launch?user=instructor&message=deep"),
        ))
        .await
        .expect("flow");
    assert!(page.body.contains("LtiDeepLinkingRequest"), "{}", page.body);
    let claims = app_token_claims(&browser);
    assert!(
        claims["lti"]["services"]["deepLinking"]["deepLinkReturnUrl"]
            .as_str()
            .expect("return url")
            .ends_with("/platform/deep-link-return")
    );
    h.server.stop().await;
}

#[tokio::test]
async fn a_replayed_launch_post_is_refused_the_second_time() {
    let h = start().await;
    let mut browser = Browser::new();
    let post = h.until_launch_post(&mut browser, "learner").await;
    let first = browser.send(&post).await.expect("first");
    assert_eq!(first.status, 200, "{}", first.body);
    // The attacker (or a double click) posts the same id_token and state again, with
    // the cookie the browser had.
    let state = match &post {
        Next::Post(_, fields) => fields
            .iter()
            .find(|(n, _)| n == "state")
            .expect("state")
            .1
            .clone(),
        Next::Get(_) => unreachable!(),
    };
    browser
        .cookies
        .entry(format!("127.0.0.1:{}", h.server.addr.port()))
        .or_default()
        .insert(format!("__Host-lti-state-{state}"), state.clone());
    let second = browser.send(&post).await.expect("second");
    assert_eq!(second.status, 409);
    assert_eq!(error_code(&second), "LTI_NONCE_REPLAYED");
    h.server.stop().await;
}

#[tokio::test]
async fn a_launch_without_the_state_cookie_or_with_another_one_is_refused() {
    let h = start().await;
    let mut browser = Browser::new();
    let post = h.until_launch_post(&mut browser, "learner").await;
    let jar = browser.cookies.clone();

    browser.clear_cookies();
    let page = browser.send(&post).await.expect("send");
    assert_eq!(
        (page.status, error_code(&page).as_str()),
        (401, "LTI_STATE_COOKIE_MISSING")
    );

    // Another browser's cookie under this state's name.
    browser.cookies = jar.clone();
    for cookies in browser.cookies.values_mut() {
        for value in cookies.values_mut() {
            *value = "someone-elses-state".into();
        }
    }
    let page = browser.send(&post).await.expect("send");
    assert_eq!(
        (page.status, error_code(&page).as_str()),
        (401, "LTI_STATE_NOT_BOUND")
    );

    // The right cookie still works: the refused attempts consumed nothing.
    browser.cookies = jar;
    let page = browser.send(&post).await.expect("send");
    assert_eq!(page.status, 200, "{}", page.body);
    h.server.stop().await;
}

#[tokio::test]
async fn a_state_older_than_ten_minutes_is_refused_as_expired() {
    let h = start().await;
    let mut browser = Browser::new();
    // The login happens now; the platform answers eleven minutes later.
    let auth = browser
        .run_until(
            Next::Get(h.url("/platform/launch?user=learner")),
            |next| matches!(next, Next::Get(url) if url.contains("/platform/auth")),
        )
        .await
        .expect("login redirect");
    h.clock.advance(660);
    let page = browser.run(auth).await.expect("flow");
    assert_eq!(
        (page.status, error_code(&page).as_str()),
        (401, "LTI_STATE_EXPIRED")
    );
    h.server.stop().await;
}

#[tokio::test]
async fn an_unknown_kid_is_refused_and_a_rotated_platform_key_works_after_a_refetch() {
    let h = start().await;
    // Warm the tool's key cache with the current platform key.
    let mut browser = Browser::new();
    let page = browser
        .run(Next::Get(h.url("/platform/launch?user=learner")))
        .await
        .expect("flow");
    assert_eq!(page.status, 200);

    // A token signed with a key the platform does not publish.
    let post = h.until_launch_post(&mut browser, "learner").await;
    let Next::Post(url, fields) = post else {
        unreachable!()
    };
    let original = fields
        .iter()
        .find(|(n, _)| n == "id_token")
        .expect("token")
        .1
        .clone();
    let claims: Value =
        lti_core::jwt::decode_part(original.split('.').nth(1).expect("payload")).expect("claims");
    let rogue = lti_core::signer::LocalRsaSigner::generate().expect("key");
    let header = serde_json::json!({"alg": "RS256", "kid": "not-published"});
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let signature = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(rogue.sign_now(input.as_bytes()).expect("sign"))
    };
    let forged: Vec<(String, String)> = fields
        .iter()
        .map(|(n, v)| {
            if n == "id_token" {
                (n.clone(), format!("{input}.{signature}"))
            } else {
                (n.clone(), v.clone())
            }
        })
        .collect();
    let page = browser.send(&Next::Post(url, forged)).await.expect("send");
    assert_eq!(
        (page.status, error_code(&page).as_str()),
        (401, "LTI_KID_UNKNOWN")
    );

    // The platform rotates its key; the next launch uses the new kid and succeeds.
    h.server.platform.rotate_key().expect("rotate");
    let mut browser = Browser::new();
    let page = browser
        .run(Next::Get(h.url("/platform/launch?user=learner")))
        .await
        .expect("flow");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Welcome, Lea Learner"));
    h.server.stop().await;
}

#[tokio::test]
async fn registrations_and_the_signing_key_survive_a_restart() {
    let dir = TempDir::new("lti-dev-test");
    let options = |dir: &TempDir| DevOptions {
        port: 0,
        data_dir: dir.0.clone(),
        admin_token: Some("b".repeat(40)),
        clock: Arc::new(SystemClock),
        settings: vec![],
    };
    let first = DevServer::start(options(&dir)).await.expect("start");
    let client = reqwest::Client::new();
    let registered = client
        .post(format!("{}/admin/platforms", first.base_url))
        .bearer_auth("b".repeat(40))
        .json(&serde_json::json!({
            "issuer": "https://moodle.example.edu", "clientId": "abc", "name": "Moodle",
            "authLoginUrl": "https://moodle.example.edu/mod/lti/auth.php",
            "authTokenUrl": "https://moodle.example.edu/mod/lti/token.php",
            "keysetUrl": "https://moodle.example.edu/mod/lti/certs.php",
            "deploymentId": "3"
        }))
        .send()
        .await
        .expect("post");
    assert_eq!(registered.status(), 201);
    let jwks1: Value = client
        .get(format!("{}/.well-known/jwks.json", first.base_url))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    first.stop().await;

    let second = DevServer::start(options(&dir)).await.expect("restart");
    let list: Value = client
        .get(format!("{}/admin/platforms", second.base_url))
        .bearer_auth("b".repeat(40))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let issuers: Vec<&str> = list["platforms"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["issuer"].as_str())
        .collect();
    assert!(issuers.contains(&"https://moodle.example.edu"), "{list}");
    let jwks2: Value = client
        .get(format!("{}/lti/jwks", second.base_url))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(
        jwks1["keys"][0]["kid"], jwks2["keys"][0]["kid"],
        "same signing key"
    );
    second.stop().await;
}

#[tokio::test]
async fn the_demo_platforms_direct_launch_lands_in_the_app_without_a_login_step() {
    let h = start().await;
    let mut browser = Browser::new();
    let redirect = browser
        .run_until(
            Next::Get(h.url("/platform/direct?user=learner")),
            |next| matches!(next, Next::Get(url) if url.contains("/app#")),
        )
        .await
        .expect("the tool redirects to the app");
    let Next::Get(landing) = redirect else {
        unreachable!()
    };
    // No login step: the platform posted the token straight to the launch URL.
    assert!(browser.hops.iter().all(|p| !p.url.contains("/lti/login")));
    let (url, fragment) = landing.split_once('#').expect("fragment");
    assert_eq!(url, h.url("/app"));
    assert!(
        !url.contains("app_token"),
        "the token is never in the query"
    );
    let token = fragment.strip_prefix("app_token=").expect("app_token");
    // The demo app's page posts the fragment's token to itself, as its script does.
    let page = browser
        .send(&Next::Post(
            h.url("/app"),
            vec![("app_token".into(), token.into())],
        ))
        .await
        .expect("app");
    assert!(page.body.contains("Welcome, Lea Learner"), "{}", page.body);
    let claims: Value =
        lti_core::jwt::decode_part(token.split('.').nth(1).expect("payload")).expect("claims");
    assert_eq!(claims["lti"]["messageType"], "DirectLaunch");
    assert_eq!(
        claims["lti"]["timeback"]["applicationId"],
        "demo-application-1"
    );
    assert_eq!(
        claims["lti"]["user"]["name"], "Lea Learner",
        "built from the parts"
    );
    let user = h
        .server
        .store
        .user(&lti_core::user::stable_user_id(
            &h.url("/platform"),
            &h.server.platform.jwks_url(),
            "demo-learner-1",
        ))
        .await
        .expect("read")
        .expect("provisioned with the platform's user id");
    assert_eq!(user.sub, "demo-learner-1");

    // The same token posted again is a replay.
    let post = browser
        .hops
        .iter()
        .find(|p| p.url.contains("/platform/direct"))
        .and_then(Browser::next_after)
        .expect("the platform's form");
    let replay = browser.send(&post).await.expect("replay");
    assert_eq!(
        (replay.status, error_code(&replay).as_str()),
        (409, "LTI_NONCE_REPLAYED")
    );
    h.server.stop().await;
}
