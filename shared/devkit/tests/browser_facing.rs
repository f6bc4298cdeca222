//! What a browser meets at the tool, through the HTTP layer of a real dev server: the
//! state cookies (bounded, `__Host-`), the platform-error page (no caller text), and
//! the limits of an unauthenticated login.

use lti_core::clock::SystemClock;
use lti_core::login::{
    state_cookie_name, LOGIN_PARAM_LIMITS, MAX_STATE_COOKIES, STATE_COOKIES_BUDGET,
    STATE_COOKIE_PREFIX,
};
use lti_dev::browser::{Browser, Next, Page};
use lti_dev::{platform, DevOptions, DevServer};
use std::sync::Arc;

mod common;
use common::TempDir;

struct Harness {
    server: DevServer,
    _dir: TempDir,
}

async fn start() -> Harness {
    let dir = TempDir::new("lti-dev-browser");
    let server = DevServer::start(DevOptions {
        port: 0,
        data_dir: dir.0.clone(),
        admin_token: Some("b".repeat(40)),
        clock: Arc::new(SystemClock),
        settings: vec![],
    })
    .await
    .expect("dev server");
    Harness { server, _dir: dir }
}

impl Harness {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url)
    }

    /// The demo platform's login initiation for `user` (a GET to the tool's
    /// `/lti/login`), unsent.
    async fn login_request(&self, user: &str) -> Next {
        let login_url = self.url("/lti/login");
        Browser::new()
            .run_until(
                Next::Get(self.url(&format!("/platform/launch?user={user}"))),
                |next| matches!(next, Next::Get(url) if url.starts_with(&login_url)),
            )
            .await
            .expect("the platform starts a login")
    }

    /// The login parameters the demo platform sends, as a form.
    fn login_fields(&self) -> Vec<(String, String)> {
        [
            ("iss", self.url("/platform")),
            ("login_hint", "learner".to_string()),
            ("target_link_uri", self.url("/lti/launch")),
            ("lti_message_hint", platform::RESOURCE_LINK_ID.to_string()),
            ("client_id", platform::CLIENT_ID.to_string()),
            ("lti_deployment_id", platform::DEPLOYMENT_ID.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
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

/// The state cookies `browser` holds for the tool.
fn state_cookies(browser: &Browser, tool: &str) -> Vec<String> {
    let host = url::Url::parse(tool).expect("url");
    let key = format!(
        "{}:{}",
        host.host_str().expect("host"),
        host.port().expect("port")
    );
    let mut names: Vec<String> = browser
        .cookies
        .get(&key)
        .map(|jar| {
            jar.keys()
                .filter(|k| k.starts_with(STATE_COOKIE_PREFIX))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The `state` query parameter of the redirect a login answered.
fn state_of(login: &Page) -> String {
    let location = login.location.as_deref().expect("a redirect");
    url::Url::parse(location)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state")
}

// ---- 8.9: state cookies are bounded, and logins started together all launch ----

#[tokio::test]
async fn after_a_hundred_logins_in_one_browser_the_cookie_header_stays_under_1_kib() {
    let h = start().await;
    let tool = h.url("/");
    let login = h.login_request("learner").await;
    let mut browser = Browser::new();
    let mut largest = 0;
    let mut logins = Vec::new();
    for i in 0..100 {
        let page = browser.send(&login).await.expect("login");
        assert_eq!(page.status, 302, "login {i}: {}", page.body);
        let header = browser.cookie_header(&tool).unwrap_or_default();
        largest = largest.max(header.len());
        assert!(
            header.len() <= STATE_COOKIES_BUDGET,
            "login {i}: Cookie header of {} bytes",
            header.len()
        );
        assert!(state_cookies(&browser, &tool).len() <= MAX_STATE_COOKIES);
        logins.push(page);
    }
    let header = browser.cookie_header(&tool).unwrap_or_default();
    println!(
        "Cookie header after 100 logins: {} bytes, {} state cookies (largest seen {largest} bytes)",
        header.len(),
        state_cookies(&browser, &tool).len()
    );
    assert_eq!(state_cookies(&browser, &tool).len(), MAX_STATE_COOKIES);
    assert!(
        browser.rejected_cookies.is_empty(),
        "{:?}",
        browser.rejected_cookies
    );

    // The newest login still launches; the oldest was expired by a later login and
    // is refused as a launch from another browser would be.
    let newest = logins
        .last()
        .and_then(|p| p.location.clone())
        .expect("newest");
    let page = browser.run(Next::Get(newest)).await.expect("flow");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Welcome, Lea Learner"), "{}", page.body);
    let oldest = logins[0].location.clone().expect("oldest");
    let page = browser.run(Next::Get(oldest)).await.expect("flow");
    assert_eq!(
        (page.status, error_code(&page).as_str()),
        (401, "LTI_STATE_COOKIE_MISSING")
    );
    h.server.stop().await;
}

#[tokio::test]
async fn eight_logins_started_together_in_one_browser_all_launch() {
    let h = start().await;
    let tool = h.url("/");
    let login = h.login_request("learner").await;
    // A browser that already holds as many state cookies as a login keeps.
    let mut browser = Browser::new();
    for _ in 0..20 {
        browser.send(&login).await.expect("earlier login");
    }
    assert_eq!(state_cookies(&browser, &tool).len(), MAX_STATE_COOKIES);

    // Eight embeds on one page: their logins leave together, each with the cookies
    // the browser had at that moment; the answers' cookies land in the one jar.
    let mut logins = tokio::task::JoinSet::new();
    for _ in 0..MAX_STATE_COOKIES {
        let mut tab = browser.clone();
        let login = login.clone();
        logins.spawn(async move { tab.send(&login).await });
    }
    let mut redirects = Vec::new();
    while let Some(done) = logins.join_next().await {
        let page = done.expect("task").expect("login");
        assert_eq!(page.status, 302, "{}", page.body);
        browser.accept_cookies(&page.url, &page.set_cookies);
        redirects.push(page.location.clone().expect("redirect"));
    }

    // Then each embed goes on to the platform and back to the tool, at once.
    let mut launches = tokio::task::JoinSet::new();
    for redirect in redirects {
        let mut tab = browser.clone();
        launches.spawn(async move { tab.run(Next::Get(redirect)).await });
    }
    let mut launched = 0;
    while let Some(done) = launches.join_next().await {
        let page = done.expect("task").expect("flow");
        assert_eq!(page.status, 200, "{} {}", page.url, page.body);
        assert!(page.body.contains("Welcome, Lea Learner"), "{}", page.body);
        launched += 1;
    }
    assert_eq!(launched, MAX_STATE_COOKIES);
    h.server.stop().await;
}

// ---- 16 (also): the state cookie is `__Host-` prefixed ----

#[tokio::test]
async fn the_state_cookie_is_host_prefixed_and_an_unprefixed_one_does_not_bind() {
    let h = start().await;
    let tool = h.url("/");
    let mut browser = Browser::new();
    let login = browser
        .send(&h.login_request("learner").await)
        .await
        .expect("login");
    let state = state_of(&login);
    let [line] = login.set_cookies.as_slice() else {
        panic!("one Set-Cookie: {:?}", login.set_cookies)
    };
    assert!(
        line.starts_with(&format!("{}=", state_cookie_name(&state))),
        "{line}"
    );
    assert!(line.starts_with("__Host-"), "{line}");
    for attribute in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=None",
        "Partitioned",
    ] {
        assert!(
            line.split("; ")
                .any(|a| a == attribute || a.starts_with(&format!("{attribute};"))),
            "{line} lacks {attribute}"
        );
    }
    assert!(!line.to_ascii_lowercase().contains("domain"), "{line}");
    assert!(
        browser.rejected_cookies.is_empty(),
        "{:?}",
        browser.rejected_cookies
    );
    let jar = browser.cookies.clone();
    let auth = login.location.clone().expect("redirect");

    // What a sibling subdomain could plant: the state's cookie without the prefix.
    for cookies in browser.cookies.values_mut() {
        cookies.clear();
        cookies.insert(format!("lti-state-{state}"), state.clone());
    }
    let page = browser.run(Next::Get(auth.clone())).await.expect("flow");
    assert_eq!(
        (page.status, error_code(&page).as_str()),
        (401, "LTI_STATE_COOKIE_MISSING")
    );

    // With the real cookie the launch works, and its removal is accepted too.
    browser.cookies = jar;
    let page = browser.run(Next::Get(auth)).await.expect("flow");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(state_cookies(&browser, &tool).is_empty());
    assert!(
        browser.rejected_cookies.is_empty(),
        "{:?}",
        browser.rejected_cookies
    );
    h.server.stop().await;
}

// ---- 16.8: the platform-error page shows no caller text ----

const PHISH: &str = "Your account is locked. Call +1 555 0100 or visit evil.example to unlock it";

const OAUTH_ERRORS: [&str; 16] = [
    "invalid_request",
    "unauthorized_client",
    "access_denied",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
    "invalid_request_uri",
    "invalid_request_object",
    "request_not_supported",
    "request_uri_not_supported",
    "registration_not_supported",
];

/// POSTs `fields` to `url` with `cookie` (a Cookie header), asking for JSON or a page.
async fn post_form(url: &str, fields: &[(&str, &str)], cookie: Option<&str>, json: bool) -> Page {
    let accept = if json {
        "application/json"
    } else {
        "text/html"
    };
    let mut builder = reqwest::Client::new()
        .post(url)
        .header("accept", accept)
        .form(fields);
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    let response = builder.send().await.expect("post");
    Page {
        method: "POST".into(),
        url: url.into(),
        status: response.status().as_u16(),
        location: None,
        content_type: String::new(),
        set_cookies: Vec::new(),
        body: response.text().await.unwrap_or_default(),
    }
}

#[tokio::test]
async fn a_posted_platform_error_shows_a_fixed_sentence_and_never_the_posted_text() {
    let h = start().await;
    let launch = h.url("/lti/launch");
    let mut sentences = std::collections::HashSet::new();
    for code in OAUTH_ERRORS {
        let fields = [("error", code), ("error_description", PHISH)];
        let page = post_form(&launch, &fields, None, true).await;
        assert_eq!(
            (page.status, error_code(&page).as_str()),
            (400, "LTI_PLATFORM_ERROR")
        );
        let json: serde_json::Value = serde_json::from_str(&page.body).expect("json");
        let message = json["error"]["message"]
            .as_str()
            .expect("message")
            .to_string();
        assert!(
            message.ends_with(&format!("({code})."),),
            "{code}: {message}"
        );
        assert!(!page.body.contains("locked"), "{code}: {}", page.body);
        sentences.insert(message);
        // The HTML page, for a browser, says the same and no more.
        let page = post_form(&launch, &fields, None, false).await;
        assert_eq!(page.status, 400);
        assert!(page.body.contains(code), "{}", page.body);
        assert!(!page.body.contains("locked") && !page.body.contains("evil.example"));
    }
    assert_eq!(sentences.len(), OAUTH_ERRORS.len(), "one sentence per code");

    // A code the specifications do not define is not echoed either.
    let fields = [("error", PHISH), ("error_description", PHISH)];
    let page = post_form(&launch, &fields, None, false).await;
    assert_eq!(
        (page.status, error_code(&page).as_str()),
        (400, "LTI_PLATFORM_ERROR")
    );
    assert!(
        page.body.contains("The platform refused the login."),
        "{}",
        page.body
    );
    assert!(!page.body.contains("locked") && !page.body.contains("evil.example"));

    // A state with no cookie, or with another browser's cookie, does not unlock it.
    let fields = [
        ("error", "access_denied"),
        ("error_description", PHISH),
        ("state", "s1"),
    ];
    let page = post_form(&launch, &fields, None, false).await;
    assert!(!page.body.contains("locked"), "{}", page.body);
    let cookie = format!("{}=1.someone-else", state_cookie_name("s1"));
    let page = post_form(&launch, &fields, Some(&cookie), false).await;
    assert!(!page.body.contains("locked"), "{}", page.body);
    // A forged cookie for a state without the prefix does not either.
    let page = post_form(&launch, &fields, Some("lti-state-s1=s1"), false).await;
    assert!(!page.body.contains("locked"), "{}", page.body);
    h.server.stop().await;
}

#[tokio::test]
async fn the_platforms_description_is_shown_to_the_browser_that_started_the_login() {
    let h = start().await;
    // The demo platform refuses a login_hint that is not one of its users with
    // login_required, posting its description and the state back to the tool.
    let mut fields = h.login_fields();
    for (k, v) in &mut fields {
        if k == "login_hint" {
            *v = "nobody".into();
        }
    }
    let mut browser = Browser::new();
    let page = browser
        .run(Next::Post(h.url("/lti/login"), fields))
        .await
        .expect("flow");
    assert_eq!(
        (page.status, error_code(&page).as_str()),
        (400, "LTI_PLATFORM_ERROR")
    );
    assert!(page.body.contains("(login_required)"), "{}", page.body);
    assert!(
        page.body.contains("the login_hint is not a demo user"),
        "the platform's own words, for the browser that logged in: {}",
        page.body
    );
    h.server.stop().await;
}

#[tokio::test]
async fn caller_text_is_not_echoed_by_the_other_unauthenticated_errors_either() {
    let h = start().await;
    // An unregistered issuer at login.
    let mut fields = h.login_fields();
    fields[0].1 = format!("https://{}.example", PHISH.replace(' ', "-"));
    let page = Browser::new()
        .send(&Next::Post(h.url("/lti/login"), fields))
        .await
        .expect("login");
    assert_eq!(
        (page.status, error_code(&page).as_str()),
        (404, "LTI_PLATFORM_NOT_REGISTERED")
    );
    assert!(!page.body.contains("locked"), "{}", page.body);
    // A repeated parameter with a crafted name.
    let name = "Call-555-0100-now";
    let page = Browser::new()
        .send(&Next::Post(
            h.url("/lti/launch"),
            vec![(name.into(), "1".into()), (name.into(), "2".into())],
        ))
        .await
        .expect("launch");
    assert_eq!(
        (page.status, error_code(&page).as_str()),
        (400, "HTTP_DUPLICATE_PARAMETER")
    );
    assert!(!page.body.contains("555"), "{}", page.body);
    h.server.stop().await;
}

// ---- 16.9: what an unauthenticated login may store or echo is bounded ----

#[tokio::test]
async fn login_parameters_over_their_limits_are_refused_with_a_code_naming_them() {
    let h = start().await;
    let login = h.url("/lti/login");
    // Each value padded to `len` bytes, keeping it valid where it must be.
    let padded = |param: &str, len: usize| -> String {
        match param {
            "iss" | "target_link_uri" => {
                let base = if param == "iss" {
                    h.url("/platform?")
                } else {
                    h.url("/lti/launch?pad=")
                };
                format!("{base}{}", "x".repeat(len.saturating_sub(base.len())))
            }
            _ => "x".repeat(len),
        }
    };
    for (param, max) in LOGIN_PARAM_LIMITS {
        for len in [max, max + 1] {
            let mut fields = h.login_fields();
            let value = padded(param, len);
            assert_eq!(value.len(), len);
            match fields.iter_mut().find(|(k, _)| k == param) {
                Some(field) => field.1 = value,
                None => fields.push((param.to_string(), value)),
            }
            let page = Browser::new()
                .send(&Next::Post(login.clone(), fields))
                .await
                .expect("login");
            let code = error_code(&page);
            if len > max {
                assert_eq!(
                    (page.status, code.as_str()),
                    (400, "LTI_LOGIN_PARAM_TOO_LONG"),
                    "{param}"
                );
                assert!(page.body.contains(param), "{param}: {}", page.body);
                assert!(
                    page.set_cookies.is_empty(),
                    "{param}: nothing stored, no cookie"
                );
            } else {
                assert_ne!(code, "LTI_LOGIN_PARAM_TOO_LONG", "{param} at {len} bytes");
            }
        }
    }

    // The input: a 60 KB target_link_uri (and deployment hint) is refused
    // before anything is stored.
    let mut fields = h.login_fields();
    fields[2].1 = padded("target_link_uri", 60_000);
    let page = Browser::new()
        .send(&Next::Post(login.clone(), fields))
        .await
        .expect("login");
    assert_eq!(
        (page.status, error_code(&page).as_str()),
        (400, "LTI_LOGIN_PARAM_TOO_LONG")
    );
    assert!(page.set_cookies.is_empty());

    // A login with every parameter it stores or echoes at its limit is accepted.
    let fields: Vec<(String, String)> = h
        .login_fields()
        .into_iter()
        .map(
            |(k, v)| match LOGIN_PARAM_LIMITS.iter().find(|(p, _)| *p == k) {
                Some((p, max)) if !matches!(*p, "iss" | "client_id") => {
                    let value = padded(p, *max);
                    (k, value)
                }
                _ => (k, v),
            },
        )
        .collect();
    let page = Browser::new()
        .send(&Next::Post(login, fields))
        .await
        .expect("login");
    assert_eq!(page.status, 302, "{}", page.body);
    h.server.stop().await;
}
