//! The demo app: what the company's web app does with the hand-off. It receives the
//! app token, verifies it against the tool's JWKS (fetched over HTTP, as a real app
//! would), and shows who arrived and the normalized launch context.
//!
//! A deep-linking launch lands at its content picker: sample items (a graded resource
//! link with custom parameters, a plain link, an HTML fragment) with **Add selected**
//! and **Cancel**. The picked items go to the app's own backend (`POST /app/deep-link`),
//! which — server side, with the service key the browser never sees — calls the tool's
//! `POST /lti/deep-link` with the launch id as bearer and answers the browser with the
//! tool's `autoSubmitHtml`, so the browser posts the signed response to the platform.
//!
//! Grades and rosters: after a resource-link launch an instructor (or teaching
//! assistant, content developer, administrator) gets **Submit a score** for a learner
//! of the course and **Show roster**; a learner gets **Submit my score**. Each form
//! posts to the app's own backend (`POST /app/services`), which calls the tool's
//! `/lti/ags/scores` or `/lti/nrps/members` server side, with the service key and the
//! launch id as bearer, and shows what came back.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lti_core::error::Secret;
use lti_core::keys::{parse_jwks, KeySetFetcher};
use lti_core::launch::roles::RoleKind;
use lti_core::launch::{DeepLinkingSettings, LaunchContext};
use lti_core::random::{Random, SystemRandom};
use lti_http::{HttpRequest, HttpResponse};
use lti_outbound::jwks::HttpKeySetFetcher;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// Where the picker posts what was picked (the app's own backend).
pub const PICKED_PATH: &str = "/app/deep-link";
/// Where the grade and roster forms post (the app's own backend).
pub const SERVICES_PATH: &str = "/app/services";
/// At most this many launch sessions are remembered (the oldest goes first).
const MAX_SESSIONS: usize = 500;
/// A launch session lasts at most this long, seconds (and never past the app token).
const SESSION_SECONDS: i64 = 3600;
/// At most this many open pickers are remembered (the oldest goes first).
const MAX_PICKERS: usize = 200;
/// A picker stays open at most this long, seconds (and never past the app token).
const PICKER_SECONDS: i64 = 3600;

/// The demo app.
pub struct DemoApp {
    /// The tool's JWKS URL.
    pub jwks_url: String,
    /// Expected `iss` of app tokens: the tool's base URL.
    pub tool_issuer: String,
    /// Expected `aud` of app tokens.
    pub audience: String,
    pub fetcher: HttpKeySetFetcher,
    /// The app backend's access to the tool's services; without it the picker cannot
    /// answer.
    pub backend: Option<AppBackend>,
    pickers: Mutex<HashMap<String, Picker>>,
    sessions: Mutex<HashMap<String, Session>>,
    http: reqwest::Client,
}

/// How the app's backend reaches the tool's services.
pub struct AppBackend {
    /// `<tool>/lti/deep-link`.
    pub deep_link_url: String,
    /// `<tool>`: the services live under `/lti/ags` and `/lti/nrps`.
    pub tool_url: String,
    /// The service key (`x-api-key`). Used server side only.
    pub service_key: Secret,
}

/// An open content picker: which deep-linking launch it answers.
#[derive(Clone)]
struct Picker {
    launch_id: String,
    settings: DeepLinkingSettings,
    claims: Value,
    expires_at: i64,
}

/// A launch the grade and roster forms act for: the launch id stays here, server side.
#[derive(Clone)]
struct Session {
    launch_id: String,
    claims: Value,
    expires_at: i64,
    /// The course's learners (platform user id, name), once the roster was read.
    learners: Option<Vec<(String, String)>>,
}

/// A sample item the picker offers.
struct Sample {
    key: &'static str,
    label: &'static str,
    description: &'static str,
    item: Value,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct Landing {
    app_token: Option<String>,
}

/// What the tool answered `POST /lti/deep-link`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ToolAnswer {
    auto_submit_html: String,
}

/// Reads the token from the fragment (fragment hand-off) and posts it here.
const FRAGMENT_SCRIPT: &str = "var p=new URLSearchParams(location.hash.slice(1));var t=p.get('app_token');\
if(t){history.replaceState(null,'',location.pathname);var f=document.forms[0];f.app_token.value=t;f.submit();}";

fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) }
                style { (PreEscaped("body{font-family:system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}pre{background:#f4f5f8;padding:1rem;overflow:auto;font-size:.8rem}td{padding:.2rem .8rem .2rem 0;vertical-align:top}.ok{color:#0a7a33}.bad{color:#b3261e}")) }
            }
            body { (body) }
        }
    }
    .into_string()
}

fn respond(status: u16, body: String) -> HttpResponse {
    let mut response = http::Response::new(bytes::Bytes::from(body));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

impl DemoApp {
    /// The demo app of the tool at `tool_base_url` (its issuer), expecting app tokens
    /// for `audience`; without a backend (see [`DemoApp::with_service_key`]).
    pub fn new(tool_base_url: &str, audience: &str, fetcher: HttpKeySetFetcher) -> Self {
        let tool = tool_base_url.trim_end_matches('/').to_string();
        Self {
            jwks_url: format!("{tool}/.well-known/jwks.json"),
            tool_issuer: tool,
            audience: audience.to_string(),
            fetcher,
            backend: None,
            pickers: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(3))
                .timeout(std::time::Duration::from_secs(15))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }

    /// The app's backend answers deep-linking requests with this service key.
    pub fn with_service_key(mut self, key: impl Into<String>) -> Self {
        self.backend = Some(AppBackend {
            deep_link_url: format!("{}/lti/deep-link", self.tool_issuer),
            tool_url: self.tool_issuer.clone(),
            service_key: Secret::new(key.into()),
        });
        self
    }

    /// Handles `/app`, the picker's `/app/deep-link` and the forms' `/app/services`.
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
        if request.uri().path() == PICKED_PATH {
            return self.picked(&request).await;
        }
        if request.uri().path() == SERVICES_PATH {
            return self.services_action(&request).await;
        }
        let token = if request.method() == http::Method::POST {
            serde_urlencoded::from_bytes::<Landing>(request.body())
                .ok()
                .and_then(|l| l.app_token)
        } else {
            None
        };
        let Some(token) = token else {
            return respond(
                200,
                page(
                    "Demo app",
                    html! {
                        h1 { "Demo app" }
                        p { "Nobody has arrived yet. Launch from the " a href="/platform" { "demo platform" } "." }
                        form method="post" action="/app" { input type="hidden" name="app_token"; }
                        script { (PreEscaped(FRAGMENT_SCRIPT)) }
                    },
                ),
            );
        };
        match self.verify(&token).await {
            Ok(claims) if claims["lti"]["messageType"] == "LtiDeepLinkingRequest" => {
                self.open_picker(claims)
            }
            Ok(claims) => {
                let panel = self.services_panel(&claims).await;
                respond(200, welcome(&claims, panel))
            }
            Err(reason) => respond(
                401,
                page(
                    "Demo app: token refused",
                    html! { h1.bad { "The app token was refused" } p { (reason) } },
                ),
            ),
        }
    }

    /// Verifies an app token like the company's app should: RS256 with a key from the
    /// tool's JWKS, issuer, audience and expiry.
    pub async fn verify(&self, token: &str) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        let kid = header.kid.ok_or("the token has no kid")?;
        let fetched = self
            .fetcher
            .fetch(&self.jwks_url)
            .await
            .map_err(|e| e.to_string())?;
        let keys = parse_jwks(&fetched.body)?;
        let key: &DecodingKey = keys
            .get(&kid)
            .and_then(|candidates| candidates.first())
            .ok_or("the tool does not publish this kid")?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[&self.tool_issuer]);
        validation.leeway = 30;
        jsonwebtoken::decode::<Value>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| format!("invalid token: {e}"))
    }
}

/// Who arrived, and `picker` (a deep-linking launch's content picker) under the title.
fn welcome(claims: &Value, picker: Option<Markup>) -> String {
    let context: Option<LaunchContext> = serde_json::from_value(claims["lti"].clone()).ok();
    let pretty = serde_json::to_string_pretty(claims).unwrap_or_default();
    let Some(ctx) = context else {
        return page(
            "Demo app",
            html! { h1.bad { "The token has no launch context" } pre { (pretty) } },
        );
    };
    let who = ctx
        .user
        .name
        .clone()
        .or_else(|| ctx.user.email.clone())
        .unwrap_or_else(|| format!("Anonymous user {}", ctx.user.sub));
    let roles: Vec<String> = ctx
        .roles
        .mapped
        .iter()
        .map(|r| {
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    let mut custom: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &ctx.custom {
        custom.insert(
            k.clone(),
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string()),
        );
    }
    page(
        "Demo app: welcome",
        html! {
            h1.ok #welcome { "Welcome, " (who) }
            @if let Some(picker) = picker { (picker) }
            p { "The tool verified the launch and signed an app token; this page verified it with the tool's JWKS." }
            table {
                tr { td { "User id" } td #user-id { code { (ctx.user.id) } } }
                tr { td { "Platform user (sub)" } td #sub { code { (ctx.user.sub) } } }
                tr { td { "Email" } td #email { (ctx.user.email.clone().unwrap_or_else(|| "(not shared)".into())) } }
                tr { td { "Roles" } td #roles { (if roles.is_empty() { "(none)".to_string() } else { roles.join(", ") }) } }
                tr { td { "Message" } td #message-type { (ctx.message_type) } }
                tr { td { "Course" } td #course { (ctx.context.as_ref().and_then(|c| c.title.clone()).unwrap_or_else(|| "(none)".into())) } }
                tr { td { "Activity" } td #activity { (ctx.resource_link.as_ref().and_then(|r| r.title.clone()).unwrap_or_else(|| "(none)".into())) } }
                tr { td { "Platform" } td #platform { (ctx.platform.name) " — " code { (ctx.platform.issuer) } } }
                tr { td { "Launch id" } td #launch-id { code { (ctx.launch_id) } } }
                tr { td { "Custom" } td #custom { @for (k, v) in &custom { code { (k) "=" (v) } " " } } }
            }
            h2 { "App token claims" }
            pre #claims { (pretty) }
        },
    )
}

impl DemoApp {
    /// The sample content the picker offers.
    fn samples(&self) -> Vec<Sample> {
        vec![
            Sample {
                key: "resource",
                label: "Sales scenario 7",
                description: "a graded activity in this app (a resource link with custom parameters and a line item)",
                item: json!({
                    "type": "ltiResourceLink",
                    "title": "Sales scenario 7",
                    "text": "A graded role-play",
                    "url": format!("{}/lti/launch", self.tool_issuer),
                    "custom": {"scenario": "sales-7", "difficulty": "2"},
                    "lineItem": {"scoreMaximum": 100, "label": "Sales scenario 7", "resourceId": "sales-7", "tag": "scenario"},
                    "window": {"targetName": "_blank"}
                }),
            },
            Sample {
                key: "link",
                label: "LTI 1.3 Core specification",
                description: "a plain link",
                item: json!({
                    "type": "link",
                    "title": "LTI 1.3 Core specification",
                    "url": "https://www.imsglobal.org/spec/lti/v1p3/",
                    "window": {"targetName": "_blank"}
                }),
            },
            Sample {
                key: "html",
                label: "Welcome note",
                description: "an HTML fragment",
                item: json!({
                    "type": "html",
                    "title": "Welcome note",
                    "html": "<p>Welcome to <strong>Unit 1</strong>.</p>"
                }),
            },
        ]
    }

    /// `sample` shaped to what the platform accepts, or why it cannot be offered.
    fn offer(settings: &DeepLinkingSettings, sample: &Sample) -> Result<Value, &'static str> {
        let mut item = sample.item.clone();
        let kind = item["type"].as_str().unwrap_or_default().to_string();
        if !settings.accept_types.is_empty() && !settings.accept_types.contains(&kind) {
            return Err("not accepted by this course");
        }
        if let Some(map) = item.as_object_mut() {
            if settings.accept_lineitem == Some(false) {
                map.remove("lineItem");
            }
            let targets = &settings.accept_presentation_document_targets;
            if !targets.is_empty() {
                map.retain(|k, _| {
                    !matches!(k.as_str(), "window" | "iframe" | "embed") || targets.contains(k)
                });
            }
        }
        Ok(item)
    }

    /// A deep-linking launch: remember which launch the picker answers, show it.
    fn open_picker(&self, claims: Value) -> HttpResponse {
        let context: Option<LaunchContext> = serde_json::from_value(claims["lti"].clone()).ok();
        let Some((launch_id, settings)) = context.and_then(|c| {
            let settings = c.services.deep_linking?;
            Some((c.launch_id, settings))
        }) else {
            return respond(
                400,
                page(
                    "Demo app: no deep-linking settings",
                    html! { h1.bad { "This deep-linking launch carries no settings" } },
                ),
            );
        };
        let now = now();
        let expires_at = claims["exp"]
            .as_i64()
            .unwrap_or(now)
            .min(now + PICKER_SECONDS);
        let id = SystemRandom.token(16);
        let picker = Picker {
            launch_id,
            settings,
            claims: claims.clone(),
            expires_at,
        };
        {
            let mut pickers = self.pickers.lock().unwrap_or_else(|e| e.into_inner());
            pickers.retain(|_, p| p.expires_at > now);
            if pickers.len() >= MAX_PICKERS {
                if let Some(oldest) = pickers
                    .iter()
                    .min_by_key(|(_, p)| p.expires_at)
                    .map(|(k, _)| k.clone())
                {
                    pickers.remove(&oldest);
                }
            }
            pickers.insert(id.clone(), picker.clone());
        }
        let form = self.picker_form(&id, &picker, None);
        respond(200, welcome(&claims, Some(form)))
    }

    /// The open picker `id`.
    fn open_picker_of(&self, id: &str) -> Option<Picker> {
        let pickers = self.pickers.lock().unwrap_or_else(|e| e.into_inner());
        pickers.get(id).filter(|p| p.expires_at > now()).cloned()
    }

    /// The picker's form: the samples the platform accepts (checkboxes, or radio
    /// buttons when it takes one item), Add selected and Cancel.
    fn picker_form(&self, id: &str, picker: &Picker, problem: Option<&str>) -> Markup {
        let settings = &picker.settings;
        let multiple = settings.accept_multiple == Some(true);
        let samples = self.samples();
        html! {
            section #picker {
                h2 { "Add content to the course" }
                @if let Some(title) = &settings.title { p.muted { "The platform asks for: " (title) } }
                @if let Some(problem) = problem { p.bad #picker-problem { (problem) } }
                form method="post" action=(PICKED_PATH) {
                    input type="hidden" name="picker" value=(id);
                    @for sample in &samples {
                        @let offer = Self::offer(settings, sample);
                        p {
                            label {
                                input type=(if multiple { "checkbox" } else { "radio" }) name="item" value=(sample.key) disabled[offer.is_err()];
                                " " b { (sample.label) } " "
                                span.muted { "— " (sample.description) }
                                @if let Err(why) = offer { " " span.bad { "(" (why) ")" } }
                            }
                        }
                    }
                    button #add-selected type="submit" name="action" value="add" { "Add selected" }
                    " "
                    button #cancel type="submit" name="action" value="cancel" { "Cancel" }
                }
            }
        }
    }

    /// `POST /app/deep-link`: the app's backend answers the deep-linking request with
    /// what was picked (nothing, on Cancel) and hands the browser the tool's page that
    /// posts the signed response to the platform.
    async fn picked(&self, request: &HttpRequest) -> HttpResponse {
        if request.method() != http::Method::POST {
            return respond(
                405,
                page(
                    "Demo app",
                    html! { h1.bad { "Pick content from the picker" } },
                ),
            );
        }
        let fields = form_fields(request);
        let field = |name: &str| form_field(&fields, name);
        let id = field("picker").unwrap_or_default().to_string();
        let Some(picker) = self.open_picker_of(&id) else {
            return respond(
                410,
                page(
                    "Demo app: picker closed",
                    html! {
                        h1.bad #picker-closed { "This content picker is closed" }
                        p { "It was answered already or has expired. Start again from the course (Add content)." }
                    },
                ),
            );
        };
        let cancel = field("action") == Some("cancel");
        let picked: Vec<&str> = fields
            .iter()
            .filter(|(k, _)| k == "item")
            .map(|(_, v)| v.as_str())
            .collect();
        let mut items = Vec::new();
        if !cancel {
            for sample in self.samples() {
                if picked.contains(&sample.key) {
                    if let Ok(item) = Self::offer(&picker.settings, &sample) {
                        items.push(item);
                    }
                }
            }
            if items.is_empty() {
                let form = self.picker_form(
                    &id,
                    &picker,
                    Some("Pick at least one item, or press Cancel."),
                );
                return respond(200, welcome(&picker.claims, Some(form)));
            }
        }
        let Some(backend) = &self.backend else {
            return respond(
                503,
                page(
                    "Demo app: no service key",
                    html! {
                        h1.bad { "This demo app cannot answer the platform" }
                        p { "Its backend has no service key for the tool's services (the dev server gives it one; set LTI_SERVICE_KEY)." }
                    },
                ),
            );
        };
        let mut body = json!({ "contentItems": items });
        if !cancel {
            body["msg"] = json!(match items.len() {
                1 => "1 item picked in the demo app".to_string(),
                n => format!("{n} items picked in the demo app"),
            });
        }
        // Server side: the service key and the launch id never reach the browser.
        let sent = self
            .http
            .post(&backend.deep_link_url)
            .header("x-api-key", backend.service_key.expose())
            .bearer_auth(&picker.launch_id)
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(error = %e, "demo app: the tool's deep-link service did not answer");
                return tool_refused(
                    502,
                    "TOOL_UNREACHABLE",
                    "The tool's deep-link service did not answer.",
                );
            }
        };
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status == 200 {
            if let Ok(answer) = serde_json::from_value::<ToolAnswer>(answer) {
                self.pickers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                // The tool's page posts the signed response to the platform.
                return lti_http::respond::html(http::StatusCode::OK, answer.auto_submit_html);
            }
            return tool_refused(
                502,
                "TOOL_ANSWER_UNREADABLE",
                "The tool's answer cannot be read.",
            );
        }
        let code = answer["error"]["code"]
            .as_str()
            .unwrap_or("UNKNOWN")
            .to_string();
        if code == "LTI_ALREADY_ANSWERED" {
            self.pickers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
        let message = answer["error"]["message"]
            .as_str()
            .unwrap_or("The tool refused the answer.")
            .to_string();
        tool_refused(if status >= 500 { 502 } else { status }, &code, &message)
    }
}

/// The page the browser gets when the tool refused the app's answer.
fn tool_refused(status: u16, code: &str, message: &str) -> HttpResponse {
    respond(
        status,
        page(
            "Demo app: the tool refused the answer",
            html! {
                h1.bad #tool-refused { "The tool refused the answer" }
                p #refusal-message { (message) }
                p { "Error " code #refusal-code { (code) } "." }
            },
        ),
    )
}

/// True if the launch's roles are staff's in the course: they grade and read rosters.
fn is_staff(ctx: &LaunchContext) -> bool {
    ctx.roles.mapped.iter().any(|r| {
        matches!(
            r,
            RoleKind::Instructor
                | RoleKind::TeachingAssistant
                | RoleKind::ContentDeveloper
                | RoleKind::Admin
        )
    })
}

/// What the tool answered one of the backend's calls.
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    /// The refusal shown to the person: the tool's code and sentence.
    fn refusal(&self) -> Markup {
        let code = self.body["error"]["code"].as_str().unwrap_or("UNKNOWN");
        let message = self.body["error"]["message"]
            .as_str()
            .unwrap_or("The tool's services refused the call.");
        html! {
            section #service-error {
                h2.bad { "The tool refused" }
                p #service-error-message { (message) }
                p { "Error " code #service-error-code { (code) } " (HTTP " (self.status) ")." }
            }
        }
    }
}

/// A number from a form field: finite, at least 0.
fn form_number(value: Option<&str>) -> Option<f64> {
    value
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// A number as people read it (`8`, not `8.0`).
fn plain(value: &Value) -> String {
    match value.as_f64() {
        Some(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => format!("{}", v as i64),
        Some(v) => v.to_string(),
        None => "—".into(),
    }
}

impl DemoApp {
    /// Remembers the launch the forms act for; returns the session's id (what the
    /// forms carry instead of the launch id).
    fn open_session(&self, launch_id: &str, claims: &Value) -> String {
        let now = now();
        let expires_at = claims["exp"]
            .as_i64()
            .unwrap_or(now)
            .min(now + SESSION_SECONDS);
        let id = SystemRandom.token(16);
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.expires_at > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(k, _)| k.clone())
            {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(
            id.clone(),
            Session {
                launch_id: launch_id.to_string(),
                claims: claims.clone(),
                expires_at,
                learners: None,
            },
        );
        id
    }

    fn session(&self, id: &str) -> Option<Session> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(id).filter(|s| s.expires_at > now()).cloned()
    }

    fn remember_learners(&self, id: &str, learners: Vec<(String, String)>) {
        if let Some(session) = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id)
        {
            session.learners = Some(learners);
        }
    }

    /// A call from the app's backend to the tool's services: the service key and the
    /// launch id as bearer, JSON in and out. `Err` when the tool did not answer.
    async fn call_tool(
        &self,
        method: reqwest::Method,
        path: &str,
        launch_id: &str,
        body: Option<Value>,
        timeout_seconds: u64,
    ) -> Result<Answer, String> {
        let backend = self.backend.as_ref().ok_or("the app has no service key")?;
        let mut call = self
            .http
            .request(method, format!("{}{path}", backend.tool_url))
            .header("x-api-key", backend.service_key.expose())
            .bearer_auth(launch_id)
            .header("accept", "application/json")
            .timeout(std::time::Duration::from_secs(timeout_seconds));
        if let Some(body) = body {
            call = call.json(&body);
        }
        let response = call.send().await.map_err(|e| {
            tracing::warn!(error = %e, "demo app: the tool's services did not answer");
            "The tool's services did not answer.".to_string()
        })?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok(Answer { status, body })
    }

    /// The course's learners from a roster answer: (platform user id, name).
    fn learners_of(roster: &Value) -> Vec<(String, String)> {
        roster["members"]
            .as_array()
            .map(|members| {
                members
                    .iter()
                    .filter(|m| {
                        m["roles"]["mapped"]
                            .as_array()
                            .is_some_and(|r| r.iter().any(|k| k == "learner"))
                    })
                    .filter_map(|m| {
                        let id = m["userId"].as_str()?.to_string();
                        let name = m["name"]
                            .as_str()
                            .or_else(|| m["email"].as_str())
                            .map(str::to_string)
                            .unwrap_or_else(|| id.clone());
                        Some((id, name))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The grade and roster forms for a resource-link launch, or nothing when the
    /// launch offers neither service, its roles use neither, or the app has no key.
    async fn services_panel(&self, claims: &Value) -> Option<Markup> {
        let ctx: LaunchContext = serde_json::from_value(claims["lti"].clone()).ok()?;
        let staff = is_staff(&ctx);
        let learner = ctx.roles.mapped.contains(&RoleKind::Learner);
        let (ags, nrps) = (ctx.services.ags.is_some(), ctx.services.nrps.is_some());
        if !(staff || learner) || !(ags || nrps) {
            return None;
        }
        if self.backend.is_none() {
            return Some(html! {
                section #grades-and-roster {
                    h2 { "Grades and roster" }
                    p.muted { "This demo app has no service key for the tool's services (the dev server gives it one; set LTI_SERVICE_KEY)." }
                }
            });
        }
        let id = self.open_session(&ctx.launch_id, claims);
        let mut note = None;
        if staff && ags && nrps {
            // The learners to choose from: the roster, read by the backend.
            match self
                .call_tool(
                    reqwest::Method::GET,
                    "/lti/nrps/members",
                    &ctx.launch_id,
                    None,
                    10,
                )
                .await
            {
                Ok(answer) if answer.status == 200 => {
                    self.remember_learners(&id, Self::learners_of(&answer.body));
                }
                Ok(answer) => {
                    // The tool's error code, or the HTTP status when the answer has
                    // none (a gateway's own error page).
                    let why = answer.body["error"]["code"]
                        .as_str()
                        .map_or_else(|| format!("HTTP {}", answer.status), str::to_string);
                    note = Some(format!(
                        "The roster could not be read ({why}): type the learner's platform user id."
                    ));
                }
                Err(why) => note = Some(format!("{why} Type the learner's platform user id.")),
            }
        }
        let session = self.session(&id)?;
        Some(self.panel(&id, &ctx, session.learners.as_deref(), note.as_deref()))
    }

    /// The forms: Submit a score and Show roster for staff, Submit my score for a
    /// learner.
    fn panel(
        &self,
        id: &str,
        ctx: &LaunchContext,
        learners: Option<&[(String, String)]>,
        note: Option<&str>,
    ) -> Markup {
        let staff = is_staff(ctx);
        let (ags, nrps) = (ctx.services.ags.is_some(), ctx.services.nrps.is_some());
        html! {
            section #grades-and-roster {
                h2 { "Grades and roster" }
                p.muted { "These buttons go to this app's backend, which calls the tool's services with its service key and this launch's id; neither reaches the browser." }
                @if let Some(note) = note { p.bad #roster-note { (note) } }
                @if staff && ags {
                    form #score-form method="post" action=(SERVICES_PATH) {
                        input type="hidden" name="session" value=(id);
                        input type="hidden" name="action" value="score";
                        label {
                            "Learner "
                            @match learners {
                                Some(learners) if !learners.is_empty() => {
                                    select #learner name="user" {
                                        @for (user_id, name) in learners {
                                            option value=(user_id) { (name) }
                                        }
                                    }
                                }
                                _ => { input #learner type="text" name="user" placeholder="platform user id" required; }
                            }
                        }
                        " "
                        label { "score " input #score type="number" name="score" value="80" min="0" step="any" required; }
                        " "
                        label { "out of " input #max type="number" name="max" value="100" min="0" step="any" required; }
                        " "
                        button #submit-score type="submit" { "Submit a score" }
                    }
                }
                @if staff && nrps {
                    form #roster-form method="post" action=(SERVICES_PATH) {
                        input type="hidden" name="session" value=(id);
                        input type="hidden" name="action" value="roster";
                        button #show-roster type="submit" { "Show roster" }
                    }
                }
                @if !staff && ags {
                    form #my-score-form method="post" action=(SERVICES_PATH) {
                        input type="hidden" name="session" value=(id);
                        input type="hidden" name="action" value="my-score";
                        label { "My score " input #score type="number" name="score" value="80" min="0" step="any" required; }
                        " "
                        label { "out of " input #max type="number" name="max" value="100" min="0" step="any" required; }
                        " "
                        button #submit-my-score type="submit" { "Submit my score" }
                    }
                }
            }
        }
    }

    /// `POST /app/services`: the app's backend does what a form asked — posts a score,
    /// or reads the roster — through the tool's services, and shows the answer above
    /// the forms.
    async fn services_action(&self, request: &HttpRequest) -> HttpResponse {
        if request.method() != http::Method::POST {
            return respond(
                405,
                page(
                    "Demo app",
                    html! { h1.bad { "Use the buttons of the app's page" } },
                ),
            );
        }
        let fields = form_fields(request);
        let field = |name: &str| form_field(&fields, name);
        let id = field("session").unwrap_or_default().to_string();
        let Some(session) = self.session(&id) else {
            return respond(
                410,
                page(
                    "Demo app: session ended",
                    html! {
                        h1.bad #session-ended { "This launch's session has ended" }
                        p { "Launch again from the course." }
                    },
                ),
            );
        };
        let Ok(ctx) = serde_json::from_value::<LaunchContext>(session.claims["lti"].clone()) else {
            return respond(
                400,
                page("Demo app", html! { h1.bad { "No launch context" } }),
            );
        };
        let invalid = |why: &str| {
            let result = html! { section #service-error { h2.bad { "Not sent" } p #service-error-message { (why) } } };
            (400, result)
        };
        let action = field("action").unwrap_or_default();
        let (status, result) = match action {
            "roster" => self.show_roster(&id, &session).await,
            "score" | "my-score" => {
                let (Some(score), Some(max)) =
                    (form_number(field("score")), form_number(field("max")))
                else {
                    let (status, result) =
                        invalid("The score and its maximum must be numbers, at least 0.");
                    return self.services_page(status, &id, &session, &ctx, result);
                };
                if max <= 0.0 {
                    let (status, result) = invalid("The maximum must be greater than 0.");
                    return self.services_page(status, &id, &session, &ctx, result);
                }
                let mut body = json!({"scoreGiven": score, "scoreMaximum": max});
                if action == "score" {
                    let Some(user) = field("user").map(str::trim).filter(|u| !u.is_empty()) else {
                        let (status, result) = invalid("Choose a learner.");
                        return self.services_page(status, &id, &session, &ctx, result);
                    };
                    body["userId"] = json!(user);
                }
                self.submit_score(&session, &ctx, body).await
            }
            _ => invalid("Unknown action."),
        };
        // The roster may have just been read: the forms offer its learners.
        let session = self.session(&id).unwrap_or(session);
        self.services_page(status, &id, &session, &ctx, result)
    }

    /// The app's page again: who arrived, `result` on top of the forms.
    fn services_page(
        &self,
        status: u16,
        id: &str,
        session: &Session,
        ctx: &LaunchContext,
        result: Markup,
    ) -> HttpResponse {
        let panel = self.panel(id, ctx, session.learners.as_deref(), None);
        respond(
            status,
            welcome(&session.claims, Some(html! { (result) (panel) })),
        )
    }

    /// Show roster: every member, read through `/lti/nrps/members`.
    async fn show_roster(&self, id: &str, session: &Session) -> (u16, Markup) {
        let answer = match self
            .call_tool(
                reqwest::Method::GET,
                "/lti/nrps/members",
                &session.launch_id,
                None,
                30,
            )
            .await
        {
            Ok(answer) => answer,
            Err(why) => {
                return (
                    502,
                    html! { section #service-error { h2.bad { "No answer" } p #service-error-message { (why) } } },
                )
            }
        };
        if answer.status != 200 {
            return (answer.status.clamp(400, 502), answer.refusal());
        }
        self.remember_learners(id, Self::learners_of(&answer.body));
        let members = answer.body["members"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let text = |m: &Value, k: &str| m[k].as_str().unwrap_or_default().to_string();
        let result = html! {
            section #roster-result {
                h2 { "Course roster" }
                p #roster-count {
                    (members.len()) " members, read from " (answer.body["pages"]) " page(s) of "
                    (answer.body["context"]["title"].as_str().unwrap_or("the course")) "."
                }
                table #roster {
                    tr { th { "Name" } th { "Email" } th { "Roles" } th { "Status" } th { "Platform user id" } th { "App user id" } }
                    @for m in &members {
                        tr.member data-user=(text(m, "userId")) {
                            td.name { (m["name"].as_str().unwrap_or("(not shared)")) }
                            td { (text(m, "email")) }
                            td.roles title=(m["roles"]["raw"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" ")).unwrap_or_default()) {
                                (m["roles"]["mapped"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default())
                            }
                            td { (text(m, "status")) }
                            td { code { (text(m, "userId")) } }
                            td { code.app-user-id { (text(m, "appUserId")) } }
                        }
                    }
                }
            }
        };
        (200, result)
    }

    /// Submit a score (staff: anyone's; a learner: its own) through
    /// `/lti/ags/scores`, then, for staff, the line item it went to.
    async fn submit_score(
        &self,
        session: &Session,
        ctx: &LaunchContext,
        body: Value,
    ) -> (u16, Markup) {
        let answer = match self
            .call_tool(
                reqwest::Method::POST,
                "/lti/ags/scores",
                &session.launch_id,
                Some(body),
                30,
            )
            .await
        {
            Ok(answer) => answer,
            Err(why) => {
                return (
                    502,
                    html! { section #service-error { h2.bad { "No answer" } p #service-error-message { (why) } } },
                )
            }
        };
        if answer.status != 200 {
            return (answer.status.clamp(400, 502), answer.refusal());
        }
        let posted = &answer.body;
        let line_item_url = posted["lineItem"].as_str().unwrap_or_default().to_string();
        // Staff may read the line item: its label.
        let mut label = None;
        if is_staff(ctx) {
            let path = format!(
                "/lti/ags/lineitem?{}",
                serde_urlencoded::to_string([("url", line_item_url.as_str())]).unwrap_or_default()
            );
            if let Ok(item) = self
                .call_tool(reqwest::Method::GET, &path, &session.launch_id, None, 10)
                .await
            {
                if item.status == 200 {
                    label = item.body["lineItem"]["label"].as_str().map(str::to_string);
                }
            }
        }
        let user_id = posted["score"]["userId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let who = if user_id == ctx.user.sub {
            ctx.user.name.clone().unwrap_or_else(|| user_id.clone())
        } else {
            session
                .learners
                .as_ref()
                .and_then(|l| {
                    l.iter()
                        .find(|(id, _)| *id == user_id)
                        .map(|(_, n)| n.clone())
                })
                .unwrap_or_else(|| user_id.clone())
        };
        let demo_gradebook = (ctx.platform.issuer == format!("{}/platform", self.tool_issuer))
            .then(|| format!("{}/gradebook", ctx.platform.issuer));
        let score = &posted["score"];
        let result = html! {
            section #score-result {
                h2.ok { "Score posted" }
                p {
                    "Posted " b #posted-score { (plain(&score["scoreGiven"])) " / " (plain(&score["scoreMaximum"])) }
                    " for " b #posted-user { (who) }
                    " to line item " b #posted-line-item { (label.clone().unwrap_or_else(|| line_item_url.clone())) } "."
                }
                table {
                    tr { td { "Platform user id" } td { code { (user_id) } } }
                    tr { td { "Line item" } td { code #posted-line-item-url { (line_item_url) } } }
                    tr { td { "Timestamp" } td { code #posted-timestamp { (score["timestamp"].as_str().unwrap_or_default()) } } }
                    tr { td { "Progress" } td { (score["activityProgress"].as_str().unwrap_or_default()) ", " (score["gradingProgress"].as_str().unwrap_or_default()) } }
                    tr { td { "Platform answered" } td { "HTTP " (posted["status"]) } }
                }
                @if let Some(url) = demo_gradebook {
                    p { a #see-gradebook href=(url) { "See it in the demo gradebook" } }
                }
            }
        };
        (200, result)
    }
}

/// The fields of a form POSTed to the demo app (none when the body is not a form).
fn form_fields(request: &HttpRequest) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(request.body()).unwrap_or_default()
}

/// The first value of `name` among `fields`.
fn form_field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
