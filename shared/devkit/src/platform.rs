//! The demo platform: a small LMS emulator with its own keys, JWKS and OIDC
//! authorization endpoint, so a person can launch into the tool without an LMS.
//!
//! It speaks standard LTI 1.3: it starts the OIDC login at the tool, checks the
//! authorization request like a strict platform would, and answers with a signed
//! id_token posted to the registered redirect URI.
//!
//! Besides lti-lambda itself it can launch into other tools (an independent LTI
//! implementation, for interoperability tests): `POST /platform/tools` with
//! `{"url": "<tool base URL>"}` registers one with its own client_id and the redirect
//! URI `<tool>/lti/launch`; `/platform/launch?user=learner&tool=<id>` launches into it.
//! Registrations live in memory until the server stops.
//!
//! Dynamic Registration ([`dynreg`]): "Add a tool by URL" (`/platform/add-tool`) runs
//! the platform side of LTI Dynamic Registration 1.0 against a tool's registration URL;
//! the registered tool joins the list and launches like the others.
//!
//! Deep Linking: an instructor's **Add content** starts a deep-linking request; the
//! tool's response comes back to `/platform/deep-link-return`, is verified against the
//! tool's JWKS ([`deep_link`]), and its items join the demo course shown on
//! `/platform`, where a resource link launches with its own title and custom
//! parameters (`/platform/launch?user=learner&item=<id>`).
//!
//! Grades and rosters: a token endpoint (`/platform/token`, [`services`]) that verifies
//! a tool's client assertion against the tool's JWKS and issues access tokens, a
//! gradebook ([`gradebook`]) and a roster ([`roster`]) under
//! `/platform/courses/demo-course-101/`, checked on every call against those tokens;
//! `/platform/gradebook` shows the scores as they land and the roster.

mod deep_link;
pub mod dynreg;
pub mod gradebook;
pub mod roster;
pub mod services;

pub use deep_link::{Accepted, CourseItem, Refusal, ACCEPT_TARGETS, ACCEPT_TYPES};
pub use gradebook::{GradebookLineItem, ReceivedScore};
pub use roster::Member;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lti_core::clock::Clock;
use lti_core::random::{Random, SystemRandom};
use lti_core::signer::{LocalRsaSigner, PublicJwk};
use lti_http::pages::info_page as page;
use lti_http::respond;
use lti_http::{HttpRequest, HttpResponse};
use maud::html;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The demo platform's client_id for the tool.
pub const CLIENT_ID: &str = "lti-dev-demo";
/// The demo platform's deployment id.
pub const DEPLOYMENT_ID: &str = "1";
/// The client_id of the demo platform's second registration, with the direct profile.
pub const DIRECT_CLIENT_ID: &str = "lti-dev-direct";
/// The audience the tool chose for the direct registration (checked as `aud`).
pub const DIRECT_AUDIENCE: &str = "lti-dev-direct-audience";
/// The resource link every demo launch is for.
pub const RESOURCE_LINK_ID: &str = "demo-link-1";
/// The id of lti-lambda itself among the demo platform's tools.
pub const BUILTIN_TOOL_ID: &str = "lti-lambda";
/// The client_id prefix of tools registered with `POST /platform/tools`.
pub const EXTRA_CLIENT_ID_PREFIX: &str = "lti-dev-tool-";
/// At most this many registered tools are kept (the oldest goes first).
pub const MAX_EXTRA_TOOLS: usize = 50;
/// The name of the demo platform's storage frame (LTI postMessage Storage), sent as
/// `lti_storage_target` on iframe launches; Canvas uses the same name.
pub const STORAGE_FRAME: &str = "post_message_forwarding";
/// The name of the iframe the tool is shown in.
pub const TOOL_FRAME: &str = "lti-tool";

/// The demo platform's side of LTI Client Side postMessages and postMessage Storage:
/// on the course page (`#platform-messages[data-mode=course]`) it answers
/// `lti.capabilities`; in the storage frame (`data-mode=storage`) it answers
/// `lti.put_data` and `lti.get_data`. Only messages from the tools' origins
/// (`data-tool-origins`) are answered, always to the sender's origin, and each origin
/// reads only what it stored.
pub const PLATFORM_SCRIPT: &str = include_str!("platform/storage.js");

/// A tool the demo platform launches into: lti-lambda itself, or one registered with
/// `POST /platform/tools`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoTool {
    /// `lti-lambda`, or `tool-<n>` for a registered tool.
    pub id: String,
    pub name: String,
    /// The client_id the demo platform gave the tool.
    pub client_id: String,
    pub deployment_id: String,
    /// Its OIDC login initiation URL.
    pub login_url: String,
    /// Its only registered redirect URI, also the launch's target_link_uri.
    pub redirect_uri: String,
    /// Its JWKS, to verify its deep-linking responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
}

/// The body of `POST /platform/tools`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolInput {
    /// The tool's base URL: login `<url>/lti/login`, redirect URI `<url>/lti/launch`.
    pub url: Option<String>,
    /// Overrides the login initiation URL.
    pub login_url: Option<String>,
    /// Overrides the redirect URI (and target_link_uri).
    pub redirect_uri: Option<String>,
    /// Overrides the JWKS URL (`<url>/.well-known/jwks.json`) that verifies the
    /// tool's deep-linking responses.
    pub jwks_url: Option<String>,
    pub name: Option<String>,
}

/// `POST /platform/tools` was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ToolInputError(String);

impl lti_core::error::Problem for ToolInputError {
    fn code(&self) -> &'static str {
        "PLATFORM_TOOL_INVALID"
    }
    fn kind(&self) -> lti_core::error::ErrorKind {
        lti_core::error::ErrorKind::BadRequest
    }
    fn public_message(&self) -> String {
        lti_core::error::sentence(&self.0)
    }
}

/// An absolute http(s) URL without credentials or fragment.
fn tool_url(value: &str, field: &str) -> Result<url::Url, ToolInputError> {
    let url = url::Url::parse(value.trim())
        .map_err(|_| ToolInputError(format!("{field} is not an absolute URL")))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ToolInputError(format!(
            "{field} must be an http(s) URL without credentials or fragment"
        )));
    }
    Ok(url)
}

impl ToolInput {
    /// The login, redirect and JWKS URLs, checked.
    fn urls(&self) -> Result<(String, String, Option<String>), ToolInputError> {
        let base = match self.url.as_deref() {
            Some(u) => {
                let base = tool_url(u, "url")?;
                if base.query().is_some() {
                    return Err(ToolInputError("url must have no query".into()));
                }
                Some(base)
            }
            None => None,
        };
        let from_base = |path: &str| {
            base.as_ref()
                .map(|b| format!("{}{path}", b.as_str().trim_end_matches('/')))
        };
        let login = match self.login_url.as_deref() {
            Some(u) => tool_url(u, "loginUrl")?.to_string(),
            None => from_base("/lti/login").ok_or_else(|| {
                ToolInputError("url (or loginUrl and redirectUri) is required".into())
            })?,
        };
        let redirect = match self.redirect_uri.as_deref() {
            Some(u) => tool_url(u, "redirectUri")?.to_string(),
            None => from_base("/lti/launch").ok_or_else(|| {
                ToolInputError("url (or loginUrl and redirectUri) is required".into())
            })?,
        };
        let jwks = match self.jwks_url.as_deref() {
            Some(u) => Some(tool_url(u, "jwksUrl")?.to_string()),
            None => from_base("/.well-known/jwks.json"),
        };
        Ok((login, redirect, jwks))
    }
}

/// A person the demo platform can launch as.
#[derive(Debug, Clone, Copy)]
pub struct DemoUser {
    pub key: &'static str,
    pub label: &'static str,
    pub sub: &'static str,
    pub name: Option<(&'static str, &'static str)>,
    pub email: Option<&'static str>,
    pub roles: &'static [&'static str],
}

/// The demo users: an instructor, a learner, and a privacy-restricted learner the
/// platform shares nothing about but the opaque `sub`.
pub const USERS: [DemoUser; 3] = [
    DemoUser {
        key: "instructor",
        label: "Ian Instructor (instructor)",
        sub: "demo-instructor-1",
        name: Some(("Ian", "Instructor")),
        email: Some("ian.instructor@demo.example"),
        roles: &[
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
            "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty",
        ],
    },
    DemoUser {
        key: "learner",
        label: "Lea Learner (learner)",
        sub: "demo-learner-1",
        name: Some(("Lea", "Learner")),
        email: Some("lea.learner@demo.example"),
        roles: &[
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
            "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student",
        ],
    },
    DemoUser {
        key: "private",
        label: "Privacy-restricted learner (no name or email)",
        sub: "demo-private-7f3a9c",
        name: None,
        email: None,
        roles: &["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"],
    },
];

fn user(key: &str) -> Option<&'static DemoUser> {
    USERS.iter().find(|u| u.key == key)
}

struct Keys {
    active: Arc<LocalRsaSigner>,
    previous: Vec<PublicJwk>,
}

/// The demo platform.
pub struct DemoPlatform {
    /// Its issuer: `<base>/platform`.
    pub issuer: String,
    /// Its origin (`scheme://host:port`): the course page, the storage frame and the
    /// authorization endpoint are all there.
    pub origin: String,
    /// The tool's login initiation URL.
    pub tool_login_url: String,
    /// The tool's redirect URI (the only one registered).
    pub tool_launch_url: String,
    /// The tool's JWKS (verifies its deep-linking responses).
    pub tool_jwks_url: String,
    keys: RwLock<Keys>,
    /// Tools registered with `POST /platform/tools`, oldest first.
    extra_tools: RwLock<Vec<DemoTool>>,
    registered: std::sync::atomic::AtomicU64,
    deep_links: deep_link::DeepLinks,
    /// Dynamic Registration tokens waiting for their registration.
    dynreg_tokens: dynreg::Tokens,
    tokens: services::Tokens,
    gradebook: std::sync::Mutex<gradebook::Gradebook>,
    clock: Arc<dyn Clock>,
}

/// What a launch is for, carried through the login as `lti_message_hint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// The demo activity ([`RESOURCE_LINK_ID`]).
    Resource,
    /// A deep-linking request (Add content).
    DeepLinking,
    /// A resource link a tool added to the course: its course item id.
    Item(u64),
}

impl Message {
    fn hint(self) -> String {
        match self {
            Message::Resource => RESOURCE_LINK_ID.into(),
            Message::DeepLinking => "deep".into(),
            Message::Item(id) => format!("item-{id}"),
        }
    }

    fn from_hint(hint: &str) -> Option<Self> {
        match hint {
            RESOURCE_LINK_ID => Some(Message::Resource),
            "deep" => Some(Message::DeepLinking),
            other => other
                .strip_prefix("item-")
                .and_then(|id| id.parse().ok())
                .map(Message::Item),
        }
    }
}

#[derive(Deserialize)]
struct AuthRequest {
    scope: Option<String>,
    response_type: Option<String>,
    response_mode: Option<String>,
    prompt: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    login_hint: Option<String>,
    lti_message_hint: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
}

impl DemoPlatform {
    /// A platform at `<base_url>/platform` launching into the tool at `base_url`.
    pub fn new(base_url: &str, key: LocalRsaSigner, clock: Arc<dyn Clock>) -> Self {
        Self::on_origin(base_url, base_url, key, clock)
    }

    /// A platform at `<platform_url>/platform` launching into the tool at `tool_url`:
    /// with two origins (`http://localhost:<port>` and `http://127.0.0.1:<port>`), the
    /// tool shown in the platform's iframe is on another site, as in a real LMS.
    pub fn on_origin(
        platform_url: &str,
        tool_url: &str,
        key: LocalRsaSigner,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let platform_url = platform_url.trim_end_matches('/');
        let tool_url = tool_url.trim_end_matches('/');
        let platform = Self {
            issuer: format!("{platform_url}/platform"),
            origin: url::Url::parse(platform_url)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_else(|_| platform_url.to_string()),
            tool_login_url: format!("{tool_url}/lti/login"),
            tool_launch_url: format!("{tool_url}/lti/launch"),
            tool_jwks_url: format!("{tool_url}/.well-known/jwks.json"),
            keys: RwLock::new(Keys {
                active: Arc::new(key),
                previous: Vec::new(),
            }),
            extra_tools: RwLock::new(Vec::new()),
            registered: std::sync::atomic::AtomicU64::new(0),
            deep_links: deep_link::DeepLinks::default(),
            dynreg_tokens: Default::default(),
            tokens: services::Tokens::default(),
            gradebook: std::sync::Mutex::new(gradebook::Gradebook::default()),
            clock,
        };
        // The demo activity is graded from the start.
        let mut fields = serde_json::Map::new();
        fields.insert("label".into(), json!("Demo Activity"));
        fields.insert("scoreMaximum".into(), json!(100));
        platform.add_line_item(CLIENT_ID, fields, Some(RESOURCE_LINK_ID.into()));
        platform
    }

    /// lti-lambda itself, as a tool of this platform.
    pub fn builtin_tool(&self) -> DemoTool {
        DemoTool {
            id: BUILTIN_TOOL_ID.into(),
            name: "lti-lambda".into(),
            client_id: CLIENT_ID.into(),
            deployment_id: DEPLOYMENT_ID.into(),
            login_url: self.tool_login_url.clone(),
            redirect_uri: self.tool_launch_url.clone(),
            jwks_url: Some(self.tool_jwks_url.clone()),
        }
    }

    /// Every tool this platform launches into: lti-lambda first, then the registered ones.
    pub fn tools(&self) -> Vec<DemoTool> {
        let mut all = vec![self.builtin_tool()];
        all.extend(
            self.extra_tools
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        all
    }

    /// The tool with this id.
    pub fn tool(&self, id: &str) -> Option<DemoTool> {
        self.tools().into_iter().find(|t| t.id == id)
    }

    fn tool_by_client_id(&self, client_id: &str) -> Option<DemoTool> {
        self.tools().into_iter().find(|t| t.client_id == client_id)
    }

    /// Registers another tool (or returns the one already registered with the same
    /// redirect URI, and `false`). It gets its own client_id, deployment [`DEPLOYMENT_ID`],
    /// and only its redirect URI is accepted for it by `/platform/auth`.
    pub fn register_tool(&self, input: &ToolInput) -> Result<(DemoTool, bool), ToolInputError> {
        let (login_url, redirect_uri, jwks_url) = input.urls()?;
        if redirect_uri == self.tool_launch_url {
            return Err(ToolInputError(
                "that redirect URI is lti-lambda's own; it is registered already".into(),
            ));
        }
        let mut tools = self.extra_tools.write().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = tools.iter_mut().find(|t| t.redirect_uri == redirect_uri) {
            existing.login_url = login_url;
            existing.jwks_url = jwks_url;
            if let Some(name) = input.name.as_deref().filter(|n| !n.trim().is_empty()) {
                existing.name = name.trim().chars().take(80).collect();
            }
            return Ok((existing.clone(), false));
        }
        let n = self
            .registered
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        let tool = DemoTool {
            id: format!("tool-{n}"),
            name: input
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| n.chars().take(80).collect())
                .unwrap_or_else(|| format!("Tool {n}")),
            client_id: format!("{EXTRA_CLIENT_ID_PREFIX}{n}"),
            deployment_id: DEPLOYMENT_ID.into(),
            login_url,
            redirect_uri,
            jwks_url,
        };
        if tools.len() >= MAX_EXTRA_TOOLS {
            tools.remove(0);
        }
        tools.push(tool.clone());
        Ok((tool, true))
    }

    /// What `POST /platform/tools` answers about `tool`: its registration, the
    /// platform's values to configure it with, and its launch links.
    pub fn tool_json(&self, tool: &DemoTool) -> Value {
        let launch = |user: &str| {
            let mut url = format!("{}/launch?user={user}", self.issuer);
            if tool.id != BUILTIN_TOOL_ID {
                url.push_str(&format!("&tool={}", tool.id));
            }
            url
        };
        let mut value = serde_json::to_value(tool).unwrap_or_else(|_| json!({}));
        value["targetLinkUri"] = json!(tool.redirect_uri);
        value["platform"] = json!({
            "issuer": self.issuer,
            "authUrl": self.auth_url(),
            "jwksUrl": self.jwks_url(),
            "tokenUrl": self.token_url(),
        });
        value["launchUrls"] = USERS
            .iter()
            .map(|u| (u.key.to_string(), json!(launch(u.key))))
            .collect::<serde_json::Map<_, _>>()
            .into();
        value
    }

    /// Rotates to a fresh key; the old one stays published.
    pub fn rotate_key(&self) -> Result<String, lti_core::signer::SignerError> {
        let fresh = Arc::new(LocalRsaSigner::generate()?);
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let old = keys.active.public_jwk().clone();
        keys.previous.insert(0, old);
        keys.previous.truncate(2);
        keys.active = fresh;
        Ok(keys.active.public_jwk().kid.clone())
    }

    fn active(&self) -> Arc<LocalRsaSigner> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .active
            .clone()
    }

    /// URL of its JWKS.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.issuer)
    }

    /// URL of its authorization endpoint.
    pub fn auth_url(&self) -> String {
        format!("{}/auth", self.issuer)
    }

    /// URL of its token endpoint.
    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer)
    }

    /// URL of the gradebook page.
    pub fn gradebook_url(&self) -> String {
        format!("{}/gradebook", self.issuer)
    }

    /// Handles a request under `/platform`.
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
        let path = request.uri().path().trim_end_matches('/').to_string();
        let query: HashMap<String, String> =
            serde_urlencoded::from_str(request.uri().query().unwrap_or("")).unwrap_or_default();
        match path.as_str() {
            "/platform" => self.home_page(None),
            "/platform/jwks" => self.jwks(),
            services::TOKEN_PATH => self.token_endpoint(&request).await,
            "/platform/gradebook" => self.gradebook_page(),
            "/platform/gradebook.json" => self.gradebook_json(),
            p if p == services::COURSE_PATH
                || p.starts_with(&format!("{}/", services::COURSE_PATH)) =>
            {
                self.course_service(&request, p).await
            }
            "/platform/tools" => self.tools_endpoint(&request),
            "/platform/iframe" => self.iframe_page(&query),
            "/platform/storage" => self.storage_frame(),
            "/platform/launch" => {
                let Some(u) = query.get("user").and_then(|u| user(u)) else {
                    return bad_request("Pick one of the demo users.");
                };
                // An iframe launch with the storage frame names it in the login.
                let storage = query.get("storage").map(String::as_str) == Some("1");
                if let Some(item) = query.get("item").filter(|i| !i.is_empty()) {
                    // A resource link a tool added: launched into that tool.
                    let Some(item) = item.parse().ok().and_then(|id| self.course_item(id)) else {
                        return bad_request("There is no such item in the course.");
                    };
                    if item.kind() != "ltiResourceLink" {
                        return bad_request("Only resource links are launched.");
                    }
                    return match self.tool(&item.tool_id) {
                        Some(tool) => self.start_login(&tool, u, Message::Item(item.id), storage),
                        None => bad_request("The tool that added this item is gone."),
                    };
                }
                let tool = match query.get("tool").map(String::as_str) {
                    None | Some("") => Some(self.builtin_tool()),
                    Some(id) => self.tool(id),
                };
                let message = if query.get("message").map(String::as_str) == Some("deep") {
                    Message::DeepLinking
                } else {
                    Message::Resource
                };
                match tool {
                    Some(tool) => self.start_login(&tool, u, message, storage),
                    None => bad_request("There is no such tool on this platform."),
                }
            }
            deep_link::RETURN_PATH => self.deep_link_return(&request).await,
            dynreg::CONFIGURATION_PATH => self.openid_configuration(),
            dynreg::REGISTER_PATH => self.register_endpoint(&request),
            dynreg::ADD_TOOL_PATH => self.add_tool_page(&query),
            "/platform/direct" => match query.get("user").and_then(|u| user(u)) {
                Some(u) => self.direct_launch(u),
                None => bad_request("Pick one of the demo users."),
            },
            "/platform/auth" => {
                match serde_urlencoded::from_str::<AuthRequest>(request.uri().query().unwrap_or(""))
                {
                    Ok(auth) => self.authorize(auth).await,
                    Err(_) => bad_request("The authorization request cannot be read."),
                }
            }
            _ => respond::html(
                http::StatusCode::NOT_FOUND,
                page("Not found", html! { p { "Nothing here." } }),
            ),
        }
    }

    /// `GET /platform/tools` lists the tools; `POST` registers one (JSON only, so a
    /// web page cannot do it with a cross-site form).
    fn tools_endpoint(&self, request: &HttpRequest) -> HttpResponse {
        use lti_http::request::{self as req, RequestError};
        match *request.method() {
            http::Method::GET => {
                let tools: Vec<Value> = self.tools().iter().map(|t| self.tool_json(t)).collect();
                respond::json(http::StatusCode::OK, &json!({ "tools": tools }))
            }
            http::Method::POST => {
                let input: ToolInput = match req::json(request) {
                    Ok(input) => input,
                    Err(e) => {
                        let mut response = respond::api_problem(request, &e, None);
                        if matches!(e, RequestError::UnsupportedMediaType(_)) {
                            *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
                        }
                        return response;
                    }
                };
                match self.register_tool(&input) {
                    Ok((tool, created)) => {
                        tracing::info!(tool = %tool.id, client_id = %tool.client_id, redirect_uri = %tool.redirect_uri, "demo platform: tool registered");
                        let status = if created {
                            http::StatusCode::CREATED
                        } else {
                            http::StatusCode::OK
                        };
                        respond::json(status, &self.tool_json(&tool))
                    }
                    Err(e) => respond::api_problem(request, &e, None),
                }
            }
            _ => respond::api_problem(
                request,
                &RequestError::MethodNotAllowed {
                    method: request.method().to_string(),
                    allow: "GET, POST",
                },
                None,
            ),
        }
    }

    /// The course page, with `notice` (what a deep-linking response added) on top.
    fn home_page(&self, notice: Option<maud::Markup>) -> HttpResponse {
        let tools = self.tools();
        let items = self.course_items();
        respond::html(
            http::StatusCode::OK,
            page(
                "Demo platform",
                html! {
                    @if let Some(notice) = notice { (notice) }
                    h1 { "lti-lambda demo platform" }
                    p { "A tiny LMS with its own keys. Pick who you are and launch into the tool through the full LTI 1.3 OIDC flow." }
                    p.muted { "Course " b { "Demo Course 101" } ", activity " b { "Demo Activity" } "." }
                    form method="get" action="/platform/launch" {
                        @for (i, u) in USERS.iter().enumerate() {
                            p {
                                label {
                                    input type="radio" name="user" value=(u.key) checked[i == 0];
                                    " " (u.label)
                                }
                            }
                        }
                        p {
                            label { "Message: " }
                            select name="message" {
                                option value="resource" { "Resource link launch" }
                                option value="deep" { "Deep linking request" }
                            }
                        }
                        @if tools.len() > 1 {
                            p {
                                label { "Tool: " }
                                select name="tool" {
                                    @for t in &tools {
                                        option value=(t.id) { (t.name) " — " (t.redirect_uri) " (client_id " (t.client_id) ")" }
                                    }
                                }
                            }
                        }
                        button #launch type="submit" { "Launch" }
                    }
                    p.muted { "Issuer " code { (self.issuer) } ", client_id " code { (CLIENT_ID) } ", deployment " code { (DEPLOYMENT_ID) } "." }
                    p { a #add-tool href=(dynreg::ADD_TOOL_PATH) { "Add a tool by URL" } span.muted { " (LTI Dynamic Registration)" } }
                    h2 #course-content { "Course content" }
                    form method="get" action="/platform/launch" {
                        input type="hidden" name="message" value="deep";
                        button #add-content type="submit" name="user" value="instructor" { "Add content" }
                        " "
                        span.muted { "As Ian Instructor: the tool's content picker opens (a deep-linking request) and what you pick is added here." }
                    }
                    @if items.is_empty() {
                        p.muted #course-empty { "Nothing added yet." }
                    } @else {
                        ul #course-items {
                            @for item in &items {
                                li.course-item data-item=(item.id) data-type=(item.kind()) {
                                    b.item-title { (item.title()) }
                                    " "
                                    span.muted { "(" (item.kind()) ")" }
                                    @match item.kind() {
                                        "ltiResourceLink" => {
                                            @if let Some(line_item) = item.line_item() {
                                                " "
                                                span.line-item {
                                                    "graded: line item "
                                                    (line_item.get("label").and_then(Value::as_str).unwrap_or("(no label)"))
                                                    ", out of "
                                                    (line_item.get("scoreMaximum").map(Value::to_string).unwrap_or_default())
                                                }
                                            }
                                            @let custom = item.custom();
                                            @if !custom.is_empty() {
                                                "; "
                                                span.custom { "custom: " @for (k, v) in &custom { code { (k) "=" (v.as_str().unwrap_or_default()) } " " } }
                                            }
                                            form method="get" action="/platform/launch" {
                                                input type="hidden" name="item" value=(item.id);
                                                select name="user" {
                                                    @for u in USERS.iter() {
                                                        option value=(u.key) { (u.label) }
                                                    }
                                                }
                                                " "
                                                button.launch-item #{"launch-item-" (item.id)} type="submit" { "Launch" }
                                            }
                                        }
                                        "link" => {
                                            @if let Some(url) = item.web_url() {
                                                " "
                                                a href=(url) target="_blank" rel="noopener noreferrer" { (url) }
                                            }
                                        }
                                        "html" => {
                                            // An LMS would sanitize it; the demo shows it as text.
                                            details { summary { "HTML fragment" } pre { (item.item["html"].as_str().unwrap_or_default()) } }
                                        }
                                        _ => {}
                                    }
                                }
                            }
                        }
                    }
                    h2 #iframe-launch { "Launch in an iframe" }
                    p { "As an LMS does: the tool shows inside this page. With " b { "platform storage" } ", the login names this platform's storage frame (" code { "lti_storage_target=" (STORAGE_FRAME) } ") and the launch works even when the browser blocks third-party cookies. Open this page at " code { "http://localhost:<port>/platform" } " so the tool (on 127.0.0.1) is on another site." }
                    form method="get" action="/platform/iframe" {
                        select name="user" {
                            @for u in USERS.iter() {
                                option value=(u.key) { (u.label) }
                            }
                        }
                        " "
                        label { input type="checkbox" name="storage" value="1" checked; " platform storage" }
                        " "
                        button #iframe-launch-button type="submit" { "Launch in an iframe" }
                    }
                    h2 #grades { "Gradebook and roster" }
                    p.muted {
                        "Tools post scores and read the roster through this platform's services (token endpoint "
                        code { (self.token_url()) } "). "
                        a #gradebook-link href="/platform/gradebook" { "Open the gradebook" }
                        " — it shows scores as they land, and the course's " (roster::members().len()) " members."
                    }
                    (self.gradebook_markup())
                    h2 { "Direct launch" }
                    p { "Like TimeBack's Level 1 launch: the platform signs an id_token and posts it straight to the tool, with no login step. The tool accepts it only because this platform's second registration (" code { (DIRECT_CLIENT_ID) } ") has the direct profile and audience " code { (DIRECT_AUDIENCE) } "." }
                    form method="get" action="/platform/direct" {
                        select name="user" {
                            @for u in USERS.iter() {
                                option value=(u.key) { (u.label) }
                            }
                        }
                        " "
                        button #direct-launch type="submit" { "Direct launch" }
                    }
                },
            ),
        )
    }

    /// The origins of the tools this platform launches into: the only ones its
    /// storage frame answers, and the only ones its iframe may show.
    fn tool_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = Vec::new();
        for tool in self.tools() {
            for u in [&tool.login_url, &tool.redirect_uri] {
                if let Ok(url) = url::Url::parse(u) {
                    let origin = url.origin().ascii_serialization();
                    if !origins.contains(&origin) {
                        origins.push(origin);
                    }
                }
            }
        }
        origins
    }

    /// A page of the demo platform that runs [`PLATFORM_SCRIPT`] (allowed by its hash)
    /// and may frame the tools.
    fn scripted_page(&self, title: &str, body: maud::Markup) -> HttpResponse {
        let mut response = respond::html(http::StatusCode::OK, page(title, body));
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, PLATFORM_SCRIPT.as_bytes());
        let csp = format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'unsafe-inline'; frame-src 'self' {}; base-uri 'none'",
            base64::engine::general_purpose::STANDARD.encode(digest.as_ref()),
            self.tool_origins().join(" ")
        );
        if let Ok(value) = http::HeaderValue::from_str(&csp) {
            response
                .headers_mut()
                .insert(http::header::CONTENT_SECURITY_POLICY, value);
        }
        response
    }

    /// `GET /platform/iframe?user=<key>&storage=1`: the course page with the tool in
    /// an iframe (and, with `storage=1`, the storage frame next to it).
    fn iframe_page(&self, query: &HashMap<String, String>) -> HttpResponse {
        let Some(u) = query.get("user").and_then(|u| user(u)) else {
            return bad_request("Pick one of the demo users.");
        };
        let storage = query.get("storage").map(String::as_str) == Some("1");
        let mut src = format!("/platform/launch?user={}", u.key);
        if storage {
            src.push_str("&storage=1");
        }
        self.scripted_page(
            "Demo platform: iframe launch",
            html! {
                h1 { "Demo Course 101" }
                p.muted { "Launched as " (u.label) " inside this page"
                    @if storage { ", with the platform's storage frame " code { (STORAGE_FRAME) } } @else { ", without platform storage" }
                    ". " a href="/platform" { "Back to the course" } }
                div #platform-messages data-mode="course" data-storage=(if storage { "1" } else { "0" }) data-frame=(STORAGE_FRAME) data-tool-origins=(self.tool_origins().join(" ")) {}
                // The storage frame is ready before the tool starts: the script gives
                // the tool's frame its address once the storage frame has loaded.
                @if storage {
                    iframe #storage-frame name=(STORAGE_FRAME) title="Platform storage" src="/platform/storage" style="display:none" {}
                }
                iframe #tool-frame name=(TOOL_FRAME) title="The tool" data-src=(src) style="width:100%;height:36rem;border:1px solid #ccd;border-radius:4px" {}
                script { (maud::PreEscaped(PLATFORM_SCRIPT)) }
            },
        )
    }

    /// `GET /platform/storage`: the storage frame.
    fn storage_frame(&self) -> HttpResponse {
        self.scripted_page(
            "Demo platform storage",
            html! {
                div #platform-messages data-mode="storage" data-frame=(STORAGE_FRAME) data-tool-origins=(self.tool_origins().join(" ")) {}
                script { (maud::PreEscaped(PLATFORM_SCRIPT)) }
            },
        )
    }

    fn jwks(&self) -> HttpResponse {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let mut all = vec![keys.active.public_jwk().clone()];
        all.extend(keys.previous.iter().cloned());
        let mut response = respond::json(http::StatusCode::OK, &json!({ "keys": all }));
        response.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("public, max-age=300"),
        );
        response
    }

    /// Step 1 of the launch: send the browser to the tool's login initiation.
    fn start_login(
        &self,
        tool: &DemoTool,
        user: &DemoUser,
        message: Message,
        storage: bool,
    ) -> HttpResponse {
        let target = self.target_link_uri(tool, message);
        let mut url = match url::Url::parse(&tool.login_url) {
            Ok(u) => u,
            Err(_) => return bad_request("The tool's login URL is invalid."),
        };
        url.query_pairs_mut()
            .append_pair("iss", &self.issuer)
            .append_pair("login_hint", user.key)
            .append_pair("target_link_uri", &target)
            .append_pair("lti_message_hint", &message.hint())
            .append_pair("client_id", &tool.client_id)
            .append_pair("lti_deployment_id", &tool.deployment_id);
        if storage {
            url.query_pairs_mut()
                .append_pair("lti_storage_target", STORAGE_FRAME);
        }
        respond::redirect(url.as_str())
    }

    /// Step 2: the tool's authentication request. Checked as a strict platform would;
    /// answered with a signed id_token posted to the redirect URI.
    async fn authorize(&self, auth: AuthRequest) -> HttpResponse {
        // Never post anything to an unregistered redirect URI.
        let Some(tool) = auth
            .client_id
            .as_deref()
            .and_then(|c| self.tool_by_client_id(c))
        else {
            return bad_request("Unknown client_id.");
        };
        if auth.redirect_uri.as_deref() != Some(tool.redirect_uri.as_str()) {
            return bad_request("The redirect_uri is not registered for this tool.");
        }
        let state = auth.state.clone().unwrap_or_default();
        let refuse = |error: &str, description: &str| {
            respond::html(
                http::StatusCode::OK,
                lti_http::pages::auto_submit(
                    &tool.redirect_uri,
                    &[
                        ("error", error),
                        ("error_description", description),
                        ("state", &state),
                    ],
                    "Returning to the tool",
                ),
            )
        };
        if auth.scope.as_deref() != Some("openid")
            || auth.response_type.as_deref() != Some("id_token")
            || auth.response_mode.as_deref() != Some("form_post")
            || auth.prompt.as_deref() != Some("none")
        {
            return refuse(
                "invalid_request",
                "scope, response_type, response_mode or prompt is wrong",
            );
        }
        let Some(nonce) = auth.nonce.as_deref().filter(|n| !n.is_empty()) else {
            return refuse("invalid_request", "nonce is missing");
        };
        if state.is_empty() {
            return bad_request("The state is missing.");
        }
        let Some(user) = auth.login_hint.as_deref().and_then(user) else {
            return refuse("login_required", "the login_hint is not a demo user");
        };
        let Some(message) = auth
            .lti_message_hint
            .as_deref()
            .and_then(Message::from_hint)
        else {
            return refuse("invalid_request", "the lti_message_hint did not round-trip");
        };
        if let Message::Item(id) = message {
            if self.course_item(id).map(|i| i.tool_id) != Some(tool.id.clone()) {
                return refuse("invalid_request", "the lti_message_hint did not round-trip");
            }
        }
        let claims = self.id_token_claims_for(&tool, user, nonce, message);
        match self.sign(&claims) {
            Ok(id_token) => respond::html(
                http::StatusCode::OK,
                lti_http::pages::auto_submit(
                    &tool.redirect_uri,
                    &[("id_token", &id_token), ("state", &state)],
                    "Launching the tool",
                ),
            ),
            Err(_) => bad_request("The demo platform could not sign the id_token."),
        }
    }

    /// The claims of an id_token for `user`, launching into lti-lambda.
    pub fn id_token_claims(&self, user: &DemoUser, nonce: &str, deep: bool) -> Value {
        let message = if deep {
            Message::DeepLinking
        } else {
            Message::Resource
        };
        self.id_token_claims_for(&self.builtin_tool(), user, nonce, message)
    }

    /// The target_link_uri of a launch of `message` into `tool`: a course item's own
    /// URL, else the tool's redirect URI.
    fn target_link_uri(&self, tool: &DemoTool, message: Message) -> String {
        match message {
            Message::Item(id) => self
                .course_item(id)
                .and_then(|i| i.web_url())
                .unwrap_or_else(|| tool.redirect_uri.clone()),
            _ => tool.redirect_uri.clone(),
        }
    }

    /// The claims of an id_token for `user`, launching into `tool`.
    pub fn id_token_claims_for(
        &self,
        tool: &DemoTool,
        user: &DemoUser,
        nonce: &str,
        message: Message,
    ) -> Value {
        let now = self.clock.now();
        let lti = "https://purl.imsglobal.org/spec/lti/claim/";
        let mut claims = json!({
            "iss": self.issuer,
            "aud": tool.client_id,
            "sub": user.sub,
            "iat": now,
            "exp": now + 300,
            "nonce": nonce,
            format!("{lti}version"): "1.3.0",
            format!("{lti}deployment_id"): tool.deployment_id,
            format!("{lti}target_link_uri"): self.target_link_uri(tool, message),
            format!("{lti}roles"): user.roles,
            format!("{lti}context"): {
                "id": "demo-course-101", "label": "DEMO101", "title": "Demo Course 101",
                "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]
            },
            format!("{lti}tool_platform"): {
                "guid": "lti-lambda-demo", "name": "lti-lambda demo platform",
                "product_family_code": "lti-lambda-demo", "version": env!("CARGO_PKG_VERSION")
            },
            format!("{lti}launch_presentation"): {
                "document_target": "window", "return_url": format!("{}", self.issuer), "locale": "en"
            },
            format!("{lti}custom"): { "unit": "1", "demo": "true" },
            "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
                "scope": services::AGS_SCOPES,
                "lineitems": self.lineitems_url()
            },
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": self.memberships_url(),
                "service_versions": ["2.0"]
            }
        });
        if let Some((given, family)) = user.name {
            claims["given_name"] = json!(given);
            claims["family_name"] = json!(family);
            claims["name"] = json!(format!("{given} {family}"));
        }
        if let Some(email) = user.email {
            claims["email"] = json!(email);
        }
        match message {
            Message::DeepLinking => {
                claims[format!("{lti}message_type")] = json!("LtiDeepLinkingRequest");
                claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] =
                    self.deep_linking_settings(tool);
            }
            Message::Resource => {
                claims[format!("{lti}message_type")] = json!("LtiResourceLinkRequest");
                claims[format!("{lti}resource_link")] =
                    json!({"id": RESOURCE_LINK_ID, "title": "Demo Activity"});
                // The link's line item, when it has one.
                if let Some(url) = self.line_item_url_for(&tool.client_id, RESOURCE_LINK_ID) {
                    claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]["lineitem"] =
                        json!(url);
                }
            }
            Message::Item(id) => {
                claims[format!("{lti}message_type")] = json!("LtiResourceLinkRequest");
                if let Some(item) = self.course_item(id) {
                    let mut link = json!({"id": item.resource_link_id(), "title": item.title()});
                    if let Some(text) = item.item["text"].as_str() {
                        link["description"] = json!(text);
                    }
                    claims[format!("{lti}resource_link")] = link;
                    // The link's own custom parameters over the tool's.
                    if let Some(custom) = claims[format!("{lti}custom")].as_object_mut() {
                        custom.extend(item.custom());
                    }
                    if let Some(url) =
                        self.line_item_url_for(&tool.client_id, &item.resource_link_id())
                    {
                        claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]
                            ["lineitem"] = json!(url);
                    }
                }
            }
        }
        claims
    }

    /// The claims of a direct (TimeBack-style) launch for `user`: no nonce from a
    /// login, a fresh `jti`, the direct audience, TimeBack's own claims.
    pub fn direct_claims(&self, user: &DemoUser) -> Value {
        let now = self.clock.now();
        let mut claims = json!({
            "iss": self.issuer,
            "aud": DIRECT_AUDIENCE,
            "sub": user.sub,
            "iat": now,
            "exp": now + 300,
            "jti": SystemRandom.token(16),
            "https://timeback.com/lti/claim/application_id": "demo-application-1",
            "https://timeback.com/lti/claim/tool_id": "demo-tool-1",
        });
        if let Some((given, family)) = user.name {
            // TimeBack sends the parts; the tool builds the full name.
            claims["given_name"] = json!(given);
            claims["family_name"] = json!(family);
        }
        if let Some(email) = user.email {
            claims["email"] = json!(email);
        }
        claims
    }

    /// A direct launch: the signed id_token posted straight to the tool.
    fn direct_launch(&self, user: &DemoUser) -> HttpResponse {
        match self.sign(&self.direct_claims(user)) {
            Ok(id_token) => respond::html(
                http::StatusCode::OK,
                lti_http::pages::auto_submit(
                    &self.tool_launch_url,
                    &[("id_token", &id_token)],
                    "Launching the tool directly",
                ),
            ),
            Err(_) => bad_request("The demo platform could not sign the id_token."),
        }
    }

    /// Signs `claims` as an RS256 JWT with the active key.
    pub fn sign(&self, claims: &Value) -> Result<String, lti_core::signer::SignerError> {
        let key = self.active();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": key.public_jwk().kid});
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", part(&header), part(claims));
        let signature = key.sign_now(input.as_bytes())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

fn bad_request(message: &str) -> HttpResponse {
    respond::html(
        http::StatusCode::BAD_REQUEST,
        page(
            "Demo platform: bad request",
            html! { h1 { "The demo platform refused the request" } p { (message) } },
        ),
    )
}
