//! A scripted LMS for HTTP-level tests against a running dev server: its own RSA keys,
//! a JWKS endpoint on 127.0.0.1 whose body and headers a test controls (and which
//! counts the requests it gets), a `/moved` endpoint that redirects wherever a test
//! says, registration through the admin API, and launches with any claims — through
//! the real login (state, nonce, cookies) or posted directly.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lti_core::signer::LocalRsaSigner;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What the JWKS endpoint answers.
#[derive(Clone)]
pub struct JwksReply {
    pub status: u16,
    pub body: Vec<u8>,
    /// Extra headers, e.g. `("cache-control", "no-store")`; a name may repeat.
    pub headers: Vec<(String, String)>,
}

#[derive(Default)]
struct Served {
    reply: Mutex<Option<JwksReply>>,
    hits: AtomicUsize,
    /// Where `/moved` redirects to (302), if set.
    redirect: Mutex<Option<String>>,
    redirect_hits: AtomicUsize,
}

/// `/moved`: a 302 to the location the test set, or 404.
async fn moved(served: Arc<Served>) -> axum::response::Response {
    served.redirect_hits.fetch_add(1, Ordering::SeqCst);
    let target = served.redirect.lock().expect("lock").clone();
    let mut response = axum::response::Response::new(axum::body::Body::empty());
    match target {
        Some(location) => {
            *response.status_mut() = http::StatusCode::FOUND;
            response.headers_mut().insert(
                http::header::LOCATION,
                http::HeaderValue::from_str(&location).expect("location"),
            );
        }
        None => *response.status_mut() = http::StatusCode::NOT_FOUND,
    }
    response
}

/// A fake LMS: keys, a JWKS endpoint and a way to launch.
pub struct Lms {
    /// `http://127.0.0.1:<port>`: also its issuer unless set otherwise.
    pub url: String,
    pub issuer: String,
    pub client_id: String,
    pub deployment_id: String,
    /// The key it signs with.
    pub key: Arc<LocalRsaSigner>,
    served: Arc<Served>,
    http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Lms {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The tool's answer to a request, with its error code when it is an error.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The error code of a JSON error body or an HTML error page, or "".
    pub fn code(&self) -> String {
        if let Ok(v) = serde_json::from_str::<Value>(&self.body) {
            if let Some(code) = v.pointer("/error/code").and_then(Value::as_str) {
                return code.to_string();
            }
        }
        let marker = "Error <code>";
        match self.body.find(marker) {
            Some(i) => self.body[i + marker.len()..]
                .split('<')
                .next()
                .unwrap_or_default()
                .to_string(),
            None => String::new(),
        }
    }

    /// The JSON body.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// The claims of the app token handed off (form field or fragment), if any.
    pub fn app_token_claims(&self) -> Option<Value> {
        let token = self.app_token()?;
        lti_core::jwt::decode_part(token.split('.').nth(1)?)
    }

    /// The app token handed off, if any.
    pub fn app_token(&self) -> Option<String> {
        if let Some(form) = lti_dev::browser::first_form(&self.body) {
            if let Some(t) = form.field("app_token") {
                return Some(t.to_string());
            }
        }
        let location = self.headers.get("location")?.to_str().ok()?;
        let fragment = location.split_once('#')?.1;
        fragment
            .split('&')
            .find_map(|p| p.strip_prefix("app_token="))
            .map(str::to_string)
    }
}

/// A JWKS document of `keys`.
pub fn jwks_of(keys: &[&LocalRsaSigner]) -> Vec<u8> {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| serde_json::to_value(k.public_jwk()).expect("jwk"))
        .collect();
    serde_json::to_vec(&json!({ "keys": keys })).expect("json")
}

/// Signs `claims` RS256 with `key` under `kid`.
pub fn sign_with(key: &LocalRsaSigner, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", part(&header), part(claims));
    let signature = key.sign_now(input.as_bytes()).expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// A reqwest client that does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Answer {
        status,
        body,
        headers,
    }
}

pub const LTI: &str = "https://purl.imsglobal.org/spec/lti/claim/";

impl Lms {
    /// Starts an LMS on 127.0.0.1 with a fresh key, serving that key at `/jwks`.
    pub async fn start(client_id: &str) -> Self {
        Self::start_with_key(
            client_id,
            Arc::new(LocalRsaSigner::generate().expect("key")),
        )
        .await
    }

    /// Starts an LMS that signs with `key`.
    pub async fn start_with_key(client_id: &str, key: Arc<LocalRsaSigner>) -> Self {
        let served = Arc::new(Served::default());
        *served.reply.lock().expect("lock") = Some(JwksReply {
            status: 200,
            body: jwks_of(&[&key]),
            headers: vec![],
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = served.clone();
        let router = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let state = state.clone();
                async move {
                    state.hits.fetch_add(1, Ordering::SeqCst);
                    let reply = state.reply.lock().expect("lock").clone().expect("reply");
                    let mut response =
                        axum::response::Response::new(axum::body::Body::from(reply.body.clone()));
                    *response.status_mut() =
                        http::StatusCode::from_u16(reply.status).expect("status");
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    );
                    // Repeated names are all sent (several Cache-Control headers);
                    // a Content-Type replaces the default one.
                    for (name, value) in reply.headers {
                        let name = http::HeaderName::from_bytes(name.as_bytes()).expect("name");
                        let value = http::HeaderValue::from_str(&value).expect("value");
                        if name == http::header::CONTENT_TYPE {
                            response.headers_mut().insert(name, value);
                        } else {
                            response.headers_mut().append(name, value);
                        }
                    }
                    response
                }
            }),
        );
        let redirects = served.clone();
        let router = router.route(
            "/moved",
            axum::routing::get(move || moved(redirects.clone())),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            issuer: url.clone(),
            url,
            client_id: client_id.to_string(),
            deployment_id: "1".into(),
            key,
            served,
            http: client(),
            task,
        }
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.url)
    }

    /// How many times the JWKS was requested.
    pub fn jwks_hits(&self) -> usize {
        self.served.hits.load(Ordering::SeqCst)
    }

    /// The URL of the endpoint that redirects to [`Lms::redirect_to`]'s location.
    pub fn moved_url(&self) -> String {
        format!("{}/moved", self.url)
    }

    /// Makes `/moved` answer 302 to `location`.
    pub fn redirect_to(&self, location: &str) {
        *self.served.redirect.lock().expect("lock") = Some(location.to_string());
    }

    /// How many times `/moved` was requested.
    pub fn redirect_hits(&self) -> usize {
        self.served.redirect_hits.load(Ordering::SeqCst)
    }

    /// Changes what the JWKS endpoint answers.
    pub fn serve_jwks(&self, reply: JwksReply) {
        *self.served.reply.lock().expect("lock") = Some(reply);
    }

    /// The `kid` of the LMS key.
    pub fn kid(&self) -> String {
        self.key.public_jwk().kid.clone()
    }

    /// The registration JSON for the admin API (overridable by the test).
    pub fn registration(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "clientId": self.client_id,
            "name": format!("Test LMS {}", self.client_id),
            "authLoginUrl": format!("{}/auth", self.url),
            "authTokenUrl": format!("{}/token", self.url),
            "keysetUrl": self.jwks_url(),
            "deploymentId": self.deployment_id,
        })
    }

    /// Registers `body` with the tool's admin API; returns the answer.
    pub async fn admin_post(&self, tool: &str, admin_token: &str, body: &Value) -> Answer {
        let response = self
            .http
            .post(format!("{tool}/admin/platforms"))
            .bearer_auth(admin_token)
            .json(body)
            .send()
            .await
            .expect("admin post");
        answer(response).await
    }

    /// Registers this LMS with the tool (201 or 200 expected).
    pub async fn register(&self, tool: &str, admin_token: &str) -> Answer {
        let reply = self
            .admin_post(tool, admin_token, &self.registration())
            .await;
        assert!(
            reply.status == 201 || reply.status == 200,
            "registration refused: {} {}",
            reply.status,
            reply.body
        );
        reply
    }

    /// A complete resource-link launch of `sub` as a learner, valid for 5 minutes
    /// from `now`, for the tool at `tool` (nonce filled in by [`Lms::launch`]).
    pub fn claims(&self, tool: &str, sub: &str, now: i64) -> Value {
        json!({
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": sub,
            "iat": now,
            "exp": now + 300,
            "nonce": "",
            "name": "Test User",
            "email": "test.user@example.edu",
            format!("{LTI}message_type"): "LtiResourceLinkRequest",
            format!("{LTI}version"): "1.3.0",
            format!("{LTI}deployment_id"): self.deployment_id,
            format!("{LTI}target_link_uri"): format!("{tool}/lti/launch"),
            format!("{LTI}resource_link"): {"id": "rl-1", "title": "Activity 1"},
            format!("{LTI}roles"): ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
            format!("{LTI}context"): {"id": "course-1", "label": "C1", "title": "Course 1"},
        })
    }

    /// Starts a login at the tool: the state, the nonce and the cookies to send back.
    pub async fn login(&self, tool: &str) -> Login {
        let response = self
            .http
            .post(format!("{tool}/lti/login"))
            .form(&[
                ("iss", self.issuer.as_str()),
                ("login_hint", "hint"),
                ("target_link_uri", &format!("{tool}/lti/launch")),
                ("client_id", self.client_id.as_str()),
                ("lti_deployment_id", self.deployment_id.as_str()),
            ])
            .send()
            .await
            .expect("login");
        let reply = answer(response).await;
        assert_eq!(reply.status, 302, "login refused: {}", reply.body);
        let location = reply
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("location")
            .to_string();
        let query: Vec<(String, String)> = url::Url::parse(&location)
            .expect("url")
            .query_pairs()
            .into_owned()
            .collect();
        let get = |name: &str| {
            query
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .expect(name)
        };
        let cookies: Vec<String> = reply
            .headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(str::to_string)
            .collect();
        Login {
            state: get("state"),
            nonce: get("nonce"),
            cookies,
        }
    }

    /// Posts `form` to the tool's launch URL with `cookie` (a Cookie header value).
    pub async fn post_launch(&self, tool: &str, form: &[(&str, &str)], cookie: &str) -> Answer {
        let mut request = self
            .http
            .post(format!("{tool}/lti/launch"))
            .header("accept", "application/json")
            .form(form);
        if !cookie.is_empty() {
            request = request.header("cookie", cookie);
        }
        answer(request.send().await.expect("launch")).await
    }

    /// A full launch through the login: `claims` get the login's nonce (unless they
    /// carry a non-empty one) and are signed with the LMS key.
    pub async fn launch(&self, tool: &str, mut claims: Value) -> Answer {
        let login = self.login(tool).await;
        if claims.get("nonce").and_then(Value::as_str) == Some("") {
            claims["nonce"] = json!(login.nonce);
        }
        let token = sign_with(&self.key, &self.kid(), &claims);
        self.post_launch(
            tool,
            &[("id_token", &token), ("state", &login.state)],
            &login.cookie_header(),
        )
        .await
    }
}

/// A login the tool started.
#[derive(Debug, Clone)]
pub struct Login {
    pub state: String,
    pub nonce: String,
    /// `name=value` of every cookie the login set.
    pub cookies: Vec<String>,
}

impl Login {
    /// The Cookie header a browser would send back.
    pub fn cookie_header(&self) -> String {
        self.cookies.join("; ")
    }
}
