//! What a browser meets at the tool, through the HTTP layer of a real dev server: the
//! state cookies (bounded, `__Host-`).

use lti_core::clock::SystemClock;
use lti_core::login::{
    state_cookie_name, MAX_STATE_COOKIES, STATE_COOKIES_BUDGET, STATE_COOKIE_PREFIX,
};
use lti_dev::browser::{Browser, Next, Page};
use lti_dev::{DevOptions, DevServer};
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
