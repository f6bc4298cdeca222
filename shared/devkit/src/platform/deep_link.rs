//! The demo platform's side of Deep Linking 2.0: the settings it sends with a
//! deep-linking request, the return endpoint that verifies the tool's
//! `LtiDeepLinkingResponse` like a strict LMS would (against the tool's JWKS, fetched
//! over HTTP), and the demo course the returned items are added to.
//!
//! Everything lives in memory until the server stops: the pending requests (by their
//! opaque `data`), the response nonces seen, and the course's items.

use super::{DemoPlatform, DemoTool};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lti_core::random::{Random, SystemRandom};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

/// Path of the return endpoint (`deep_link_return_url`).
pub const RETURN_PATH: &str = "/platform/deep-link-return";
/// The content item types the demo course accepts.
pub const ACCEPT_TYPES: [&str; 3] = ["ltiResourceLink", "link", "html"];
/// The presentation targets it accepts.
pub const ACCEPT_TARGETS: [&str; 2] = ["iframe", "window"];
/// A deep-linking request may be answered for this long, seconds.
const PENDING_SECONDS: i64 = 3600;
/// At most this many requests wait for an answer (the oldest goes first).
const MAX_PENDING: usize = 200;
/// At most this many items in the course (the oldest goes first).
pub const MAX_ITEMS: usize = 100;
/// Clock leeway on `iat` and `exp`, seconds.
const LEEWAY: i64 = 60;
const LTI: &str = "https://purl.imsglobal.org/spec/lti/claim/";
const DL: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/";

/// A deep-linking request waiting for the tool's answer.
#[derive(Debug, Clone)]
struct Pending {
    client_id: String,
    data: Value,
    created_at: i64,
}

/// An item a tool added to the demo course.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseItem {
    /// The platform's id for it (`item=<id>` launches a resource link).
    pub id: u64,
    /// The tool that returned it.
    pub tool_id: String,
    /// The content item exactly as the tool returned it.
    pub item: Value,
    /// Epoch seconds.
    pub added_at: i64,
}

impl CourseItem {
    /// `ltiResourceLink`, `link`, `html`…
    pub fn kind(&self) -> &str {
        self.item["type"].as_str().unwrap_or_default()
    }

    /// Its title, or a stand-in.
    pub fn title(&self) -> String {
        self.item["title"]
            .as_str()
            .filter(|t| !t.trim().is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("Untitled {}", self.kind()))
    }

    /// The resource link id the platform gives a resource link item.
    pub fn resource_link_id(&self) -> String {
        format!("dl-item-{}", self.id)
    }

    /// Its custom parameters (string values only, as LTI sends them).
    pub fn custom(&self) -> Map<String, Value> {
        self.item["custom"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(_, v)| v.is_string())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Its `url`, when it is http(s) (a link's target; a resource link's launch URL).
    pub fn web_url(&self) -> Option<String> {
        let url = url::Url::parse(self.item["url"].as_str()?).ok()?;
        matches!(url.scheme(), "http" | "https").then(|| url.to_string())
    }

    /// The line item the platform created for it, if the tool asked for one.
    pub fn line_item(&self) -> Option<&Map<String, Value>> {
        self.item["lineItem"].as_object()
    }
}

/// The demo platform's deep-linking state.
pub(super) struct DeepLinks {
    pending: Mutex<HashMap<String, Pending>>,
    nonces: Mutex<HashMap<String, i64>>,
    items: RwLock<Vec<CourseItem>>,
    next_item: AtomicU64,
    /// Fetches tools' key sets (here and at the token endpoint).
    pub(super) http: reqwest::Client,
}

impl Default for DeepLinks {
    fn default() -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            nonces: Mutex::new(HashMap::new()),
            items: RwLock::new(Vec::new()),
            next_item: AtomicU64::new(0),
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(3))
                .timeout(std::time::Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
        }
    }
}

/// Why a deep-linking response was refused: one sentence for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

fn refuse<T>(sentence: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(sentence.into()))
}

/// What an accepted response brought.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub tool: DemoTool,
    pub added: Vec<CourseItem>,
    pub msg: Option<String>,
    pub errormsg: Option<String>,
}

impl DemoPlatform {
    /// The deep-linking settings claim of a request to `tool`; its `data` is new and
    /// remembered, so the answer must echo it.
    pub(super) fn deep_linking_settings(&self, tool: &DemoTool) -> Value {
        let data = json!({"session": SystemRandom.token(16), "course": "demo-course-101"});
        let now = self.clock.now();
        let mut pending = self
            .deep_links
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, p| p.created_at + PENDING_SECONDS > now);
        if pending.len() >= MAX_PENDING {
            if let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, p)| p.created_at)
                .map(|(k, _)| k.clone())
            {
                pending.remove(&oldest);
            }
        }
        pending.insert(
            data["session"].as_str().unwrap_or_default().to_string(),
            Pending {
                client_id: tool.client_id.clone(),
                data: data.clone(),
                created_at: now,
            },
        );
        json!({
            "deep_link_return_url": self.deep_link_return_url(),
            "accept_types": ACCEPT_TYPES,
            "accept_presentation_document_targets": ACCEPT_TARGETS,
            "accept_multiple": true,
            "accept_lineitem": true,
            "auto_create": true,
            "title": "Demo Course 101",
            "text": "Pick what to add to Demo Course 101",
            "data": data,
        })
    }

    /// Where tools post deep-linking responses.
    pub fn deep_link_return_url(&self) -> String {
        format!("{}/deep-link-return", self.issuer)
    }

    /// The items of the demo course, oldest first.
    pub fn course_items(&self) -> Vec<CourseItem> {
        self.deep_links
            .items
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The course item `id`.
    pub fn course_item(&self, id: u64) -> Option<CourseItem> {
        self.course_items().into_iter().find(|i| i.id == id)
    }

    /// Verifies a deep-linking response the way a strict platform does, then adds its
    /// items to the course: signed RS256 with a key the tool publishes in its JWKS
    /// (fetched over HTTP now), `iss` = the tool's client_id, `aud` = this platform's
    /// issuer, `exp` and `iat` present and sensible, a `nonce` never seen before, the
    /// tool's `deployment_id`, message type and version, `data` equal to what a
    /// pending request sent (each request is answered once), and items of accepted
    /// types only.
    pub async fn accept_deep_link_response(&self, jwt: &str) -> Result<Accepted, Refusal> {
        let header = match jsonwebtoken::decode_header(jwt) {
            Ok(h) => h,
            Err(_) => return refuse("The JWT field is not a JWT."),
        };
        if header.alg != jsonwebtoken::Algorithm::RS256 {
            return refuse(format!(
                "The response is signed with {:?}; this platform accepts RS256 only.",
                header.alg
            ));
        }
        let Some(kid) = header.kid else {
            return refuse(
                "The response's header has no kid, so no key of the tool can be chosen.",
            );
        };
        // The issuer names the tool whose keys to fetch; nothing else is trusted yet.
        let unverified = jwt
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .unwrap_or(Value::Null);
        let Some(tool) = unverified["iss"]
            .as_str()
            .and_then(|c| self.tool_by_client_id(c))
        else {
            return refuse(
                "The response's iss is not the client_id of a tool registered on this platform.",
            );
        };
        let Some(jwks_url) = tool.jwks_url.clone() else {
            return refuse(format!(
                "This platform knows no key set URL for {}, so it cannot verify its response.",
                tool.name
            ));
        };
        let key = self.tool_key(&jwks_url, &kid).await?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&[tool.client_id.as_str()]);
        validation.set_audience(&[self.issuer.as_str()]);
        // Times are checked below against this platform's clock.
        validation.validate_exp = false;
        validation.set_required_spec_claims(&["iss", "aud"]);
        let claims = match jsonwebtoken::decode::<Value>(jwt, &key, &validation) {
            Ok(data) => data.claims,
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind;
                return refuse(match e.kind() {
                    ErrorKind::InvalidSignature => {
                        "The response's signature does not verify with the tool's published key."
                    }
                    ErrorKind::InvalidAudience => {
                        "The response's aud is not this platform's issuer."
                    }
                    ErrorKind::InvalidIssuer => "The response's iss is not the tool's client_id.",
                    _ => "The response cannot be verified.",
                });
            }
        };
        let now = self.clock.now();
        let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
            return refuse("The response must carry iat and exp as numbers.");
        };
        if exp + LEEWAY < now {
            return refuse("The response has expired.");
        }
        if iat > now + LEEWAY || exp < iat {
            return refuse("The response's iat is in the future or after its exp.");
        }
        let Some(nonce) = claims["nonce"].as_str().filter(|n| !n.is_empty()) else {
            return refuse("The response has no nonce.");
        };
        {
            let mut seen = self
                .deep_links
                .nonces
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            seen.retain(|_, until| *until + LEEWAY >= now);
            if seen.contains_key(nonce) {
                return refuse("This response was received already (its nonce was used before).");
            }
            seen.insert(nonce.to_string(), exp);
        }
        if claims[format!("{LTI}deployment_id")].as_str() != Some(tool.deployment_id.as_str()) {
            return refuse("The response's deployment_id is not the tool's deployment.");
        }
        if claims[format!("{LTI}message_type")] != "LtiDeepLinkingResponse" {
            return refuse("The message is not an LtiDeepLinkingResponse.");
        }
        if claims[format!("{LTI}version")] != "1.3.0" {
            return refuse("The response's LTI version is not 1.3.0.");
        }
        let data = claims
            .get(format!("{DL}data"))
            .cloned()
            .unwrap_or(Value::Null);
        let items = match claims.get(format!("{DL}content_items")) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return refuse("The response's content_items is not a list."),
        };
        for item in &items {
            let kind = item["type"].as_str().unwrap_or_default();
            if !ACCEPT_TYPES.contains(&kind) {
                return refuse(format!(
                    "The response has an item of type {kind:?}; this course accepts {}.",
                    ACCEPT_TYPES.join(", ")
                ));
            }
            if let Some(line_item) = item.get("lineItem").filter(|l| !l.is_null()) {
                let max = line_item["scoreMaximum"].as_f64();
                if kind != "ltiResourceLink" || !max.is_some_and(|m| m.is_finite() && m > 0.0) {
                    return refuse(
                        "A lineItem goes with a resource link and needs a scoreMaximum greater than 0.",
                    );
                }
            }
        }
        // Last: the request it answers, used up only by a response that passed.
        {
            let mut pending = self
                .deep_links
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let session = data["session"].as_str().unwrap_or_default().to_string();
            match pending.get(&session) {
                Some(p)
                    if p.data == data
                        && p.client_id == tool.client_id
                        && p.created_at + PENDING_SECONDS > now => {}
                _ => {
                    return refuse(
                        "The response's data is not what this platform sent with a deep-linking request (or that request was answered already).",
                    )
                }
            }
            pending.remove(&session);
        }
        let added = self.add_items(&tool, items, now);
        // A resource link with a lineItem gets its line item in the gradebook now.
        for entry in &added {
            if let Some(line_item) = entry.line_item() {
                let mut fields = line_item.clone();
                if !fields.get("label").is_some_and(Value::is_string) {
                    fields.insert("label".into(), json!(entry.title()));
                }
                self.add_line_item(&tool.client_id, fields, Some(entry.resource_link_id()));
            }
        }
        let text = |name: &str| {
            claims[format!("{DL}{name}")]
                .as_str()
                .map(|s| s.chars().take(500).collect::<String>())
        };
        Ok(Accepted {
            tool,
            added,
            msg: text("msg"),
            errormsg: text("errormsg"),
        })
    }

    /// The tool's key `kid`, from its JWKS fetched now.
    async fn tool_key(&self, url: &str, kid: &str) -> Result<jsonwebtoken::DecodingKey, Refusal> {
        let unavailable = || Refusal("The tool's key set could not be fetched.".into());
        let response = self
            .deep_links
            .http
            .get(url)
            .send()
            .await
            .map_err(|_| unavailable())?;
        if !response.status().is_success() {
            return Err(unavailable());
        }
        let jwks: Value = response.json().await.map_err(|_| unavailable())?;
        let Some(jwk) = jwks["keys"].as_array().and_then(|keys| {
            keys.iter()
                .find(|k| k["kid"] == kid && k["kty"] == "RSA" && k["use"] != "enc")
        }) else {
            return refuse(
                "The tool does not publish the key (kid) this response was signed with.",
            );
        };
        match (jwk["n"].as_str(), jwk["e"].as_str()) {
            (Some(n), Some(e)) => jsonwebtoken::DecodingKey::from_rsa_components(n, e)
                .map_err(|_| Refusal("The tool's published key cannot be read.".into())),
            _ => refuse("The tool's published key cannot be read."),
        }
    }

    fn add_items(&self, tool: &DemoTool, items: Vec<Value>, now: i64) -> Vec<CourseItem> {
        let mut course = self
            .deep_links
            .items
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let mut added = Vec::new();
        for item in items {
            let entry = CourseItem {
                id: self.deep_links.next_item.fetch_add(1, Ordering::Relaxed) + 1,
                tool_id: tool.id.clone(),
                item,
                added_at: now,
            };
            course.push(entry.clone());
            added.push(entry);
        }
        let excess = course.len().saturating_sub(MAX_ITEMS);
        course.drain(..excess);
        added
    }
}

impl DemoPlatform {
    /// `POST /platform/deep-link-return`: the form post of `JWT` from the tool's
    /// auto-submitted page. Accepted: the course page, with what was added. Refused: a
    /// page saying why.
    pub(super) async fn deep_link_return(
        &self,
        request: &lti_http::HttpRequest,
    ) -> lti_http::HttpResponse {
        if request.method() != http::Method::POST {
            return super::bad_request("Deep-linking responses are posted here as a form.");
        }
        let fields: Vec<(String, String)> =
            serde_urlencoded::from_bytes(request.body()).unwrap_or_default();
        let jwts: Vec<&str> = fields
            .iter()
            .filter(|(k, _)| k == "JWT")
            .map(|(_, v)| v.as_str())
            .collect();
        let [jwt] = jwts.as_slice() else {
            return refused(&Refusal(
                "The form must carry exactly one JWT field (the signed LtiDeepLinkingResponse)."
                    .into(),
            ));
        };
        match self.accept_deep_link_response(jwt).await {
            Ok(accepted) => {
                tracing::info!(tool = %accepted.tool.id, items = accepted.added.len(), "demo platform: deep-linking response accepted");
                self.home_page(Some(notice(&accepted)))
            }
            Err(refusal) => {
                tracing::warn!(reason = %refusal.0, "demo platform: deep-linking response refused");
                refused(&refusal)
            }
        }
    }
}

fn notice(accepted: &Accepted) -> maud::Markup {
    let n = accepted.added.len();
    maud::html! {
        div #notice {
            p {
                @if n == 0 { "Nothing was added from " (accepted.tool.name) "." }
                @else if n == 1 { "1 item was added from " (accepted.tool.name) "." }
                @else { (n) " items were added from " (accepted.tool.name) "." }
            }
            @if let Some(msg) = &accepted.msg { p #tool-msg { "The tool says: " (msg) } }
            @if let Some(err) = &accepted.errormsg { p #tool-errormsg { "The tool reports a problem: " (err) } }
        }
    }
}

fn refused(refusal: &Refusal) -> lti_http::HttpResponse {
    lti_http::respond::html(
        http::StatusCode::BAD_REQUEST,
        lti_http::pages::info_page(
            "Demo platform: deep-linking response refused",
            maud::html! {
                h1 #refused { "The demo platform refused the deep-linking response" }
                p #reason { (refusal.0) }
                p.muted { "Nothing was added to the course. " a href="/platform" { "Back to the course" } }
            },
        ),
    )
}
