//! The demo platform's side of LTI Dynamic Registration 1.0, so a person can connect
//! a tool by URL and launch it right after:
//!
//! - `GET /platform/add-tool`: the "Add a tool by URL" page; with `?url=<the tool's
//!   registration URL>` it issues a registration token (one use, an hour) and opens
//!   the tool's registration URL in an iframe with `openid_configuration` and
//!   `registration_token`, then waits for the tool's `org.imsglobal.lti.close`
//!   message;
//! - `GET /platform/.well-known/openid-configuration`: the platform's configuration
//!   (§3.4): its endpoints, RS256, resource links and deep linking, AGS and NRPS
//!   scopes;
//! - `POST /platform/register`: the registration endpoint (§3.6): the token as bearer,
//!   the tool's metadata checked like a strict LMS would; answers with the `client_id`
//!   (`lti-dev-dynreg-<n>`) and, in the tool configuration, the `deployment_id`
//!   (`dynreg-<n>`). The tool then appears among the platform's tools.

use super::{page, DemoPlatform, DemoTool, MAX_EXTRA_TOOLS};
use lti_core::random::{Random, SystemRandom};
use lti_http::respond;
use lti_http::{HttpRequest, HttpResponse};
use maud::{html, PreEscaped};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

/// Path of the configuration.
pub const CONFIGURATION_PATH: &str = "/platform/.well-known/openid-configuration";
/// Path of the registration endpoint.
pub const REGISTER_PATH: &str = "/platform/register";
/// Path of the "Add a tool by URL" page.
pub const ADD_TOOL_PATH: &str = "/platform/add-tool";
/// Client ids of dynamically registered tools start with this.
pub const DYNREG_CLIENT_ID_PREFIX: &str = "lti-dev-dynreg-";
/// A registration token is valid this long, seconds.
pub const TOKEN_SECONDS: i64 = 3600;
/// At most this many tokens wait for their registration (the oldest goes first).
const MAX_TOKENS: usize = 100;
const TOOL_CONFIGURATION: &str = "https://purl.imsglobal.org/spec/lti-tool-configuration";

/// The script of the add-tool page: on the tool's closing message, hide the frame (an
/// LMS closes its dialog) and
/// show the way back to the course.
const ON_CLOSE: &str = "window.addEventListener(\"message\",function(e){if(e.data&&e.data.subject===\"org.imsglobal.lti.close\"){var f=document.getElementById(\"registration\");if(f){f.hidden=true;}document.getElementById(\"closed\").hidden=false;}});";

/// Registration tokens issued and not yet used: token → expiry (epoch seconds).
#[derive(Default)]
pub(super) struct Tokens(Mutex<HashMap<String, i64>>);

fn oauth_error(status: u16, error: &str, description: &str) -> HttpResponse {
    let mut response = respond::json(
        http::StatusCode::OK,
        &json!({"error": error, "error_description": description}),
    );
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST);
    response
}

impl DemoPlatform {
    /// The platform's OpenID configuration URL.
    pub fn openid_configuration_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// Its registration endpoint.
    pub fn registration_url(&self) -> String {
        format!("{}/register", self.issuer)
    }

    /// A fresh registration token (one use, [`TOKEN_SECONDS`]).
    pub fn issue_registration_token(&self) -> String {
        let token = SystemRandom.token(24);
        let now = self.clock.now();
        let mut tokens = self
            .dynreg_tokens
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, expiry| *expiry > now);
        if tokens.len() >= MAX_TOKENS {
            if let Some(oldest) = tokens
                .iter()
                .min_by_key(|(_, expiry)| **expiry)
                .map(|(t, _)| t.clone())
            {
                tokens.remove(&oldest);
            }
        }
        tokens.insert(token.clone(), now + TOKEN_SECONDS);
        token
    }

    /// The URL the platform opens for `registration_url` with a new token.
    pub fn registration_start_url(&self, registration_url: &str) -> Result<String, String> {
        let mut url = url::Url::parse(registration_url.trim())
            .map_err(|_| "The tool's registration URL is not an absolute URL.".to_string())?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.fragment().is_some()
            || !url.username().is_empty()
        {
            return Err(
                "The tool's registration URL must be an http(s) URL without credentials or fragment."
                    .into(),
            );
        }
        let token = self.issue_registration_token();
        url.query_pairs_mut()
            .append_pair("openid_configuration", &self.openid_configuration_url())
            .append_pair("registration_token", &token);
        Ok(url.to_string())
    }

    pub(super) fn openid_configuration(&self) -> HttpResponse {
        respond::json(
            http::StatusCode::OK,
            &json!({
                "issuer": self.issuer,
                "authorization_endpoint": self.auth_url(),
                "token_endpoint": self.token_url(),
                "jwks_uri": self.jwks_url(),
                "registration_endpoint": self.registration_url(),
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
                "scopes_supported": [
                    "openid",
                    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
                ],
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "claims_supported": ["iss", "sub", "name", "given_name", "family_name", "email"],
                "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                    "product_family_code": "lti-lambda-demo",
                    "version": env!("CARGO_PKG_VERSION"),
                    "messages_supported": [
                        {"type": "LtiResourceLinkRequest", "placements": ["ContentArea"]},
                        {"type": "LtiDeepLinkingRequest", "placements": ["ContentArea"]}
                    ]
                }
            }),
        )
    }

    /// `POST /platform/register`.
    pub(super) fn register_endpoint(&self, request: &HttpRequest) -> HttpResponse {
        if request.method() != http::Method::POST {
            return oauth_error(405, "invalid_request", "use POST");
        }
        let now = self.clock.now();
        let Some(token) = lti_http::request::bearer(request).map(str::to_string) else {
            return oauth_error(401, "invalid_token", "the registration token is missing");
        };
        let valid = {
            let tokens = self
                .dynreg_tokens
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            tokens.get(&token).is_some_and(|expiry| *expiry > now)
        };
        if !valid {
            return oauth_error(
                401,
                "invalid_token",
                "the registration token is unknown, used or expired",
            );
        }
        let body: Value = match serde_json::from_slice(request.body()) {
            Ok(Value::Object(o)) => Value::Object(o),
            _ => {
                return oauth_error(
                    400,
                    "invalid_client_metadata",
                    "the body is not a JSON object",
                )
            }
        };
        let tool = match self.tool_from_metadata(&body) {
            Ok(tool) => tool,
            Err(problem) => return oauth_error(400, "invalid_client_metadata", &problem),
        };
        // The token is used once, by a registration that succeeded.
        self.dynreg_tokens
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&token);
        let mut tools = self.extra_tools.write().unwrap_or_else(|e| e.into_inner());
        if tools.len() >= MAX_EXTRA_TOOLS {
            tools.remove(0);
        }
        tools.push(tool.clone());
        drop(tools);
        tracing::info!(tool = %tool.id, client_id = %tool.client_id, deployment_id = %tool.deployment_id, "demo platform: tool registered by Dynamic Registration");
        let mut answer = body;
        answer["client_id"] = json!(tool.client_id);
        answer[TOOL_CONFIGURATION]["deployment_id"] = json!(tool.deployment_id);
        let mut response = respond::json(http::StatusCode::OK, &answer);
        *response.status_mut() = http::StatusCode::CREATED;
        response
    }

    /// The tool described by registration metadata, checked as a strict LMS would.
    fn tool_from_metadata(&self, body: &Value) -> Result<DemoTool, String> {
        let text = |value: &Value, name: &str| -> Result<String, String> {
            value
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("{name} is required"))
        };
        let has = |name: &str, wanted: &str| {
            body.get(name)
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| v == wanted))
        };
        if body.get("application_type").and_then(Value::as_str) != Some("web") {
            return Err("application_type must be web".into());
        }
        if !has("response_types", "id_token") {
            return Err("response_types must include id_token".into());
        }
        if !has("grant_types", "implicit") || !has("grant_types", "client_credentials") {
            return Err("grant_types must include implicit and client_credentials".into());
        }
        if body
            .get("token_endpoint_auth_method")
            .and_then(Value::as_str)
            != Some("private_key_jwt")
        {
            return Err("token_endpoint_auth_method must be private_key_jwt".into());
        }
        let login_url = text(body, "initiate_login_uri")?;
        let jwks_url = text(body, "jwks_uri")?;
        let redirect_uri = body
            .get("redirect_uris")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or("redirect_uris must list at least one URI")?;
        for (name, value) in [
            ("initiate_login_uri", &login_url),
            ("jwks_uri", &jwks_url),
            ("redirect_uris", &redirect_uri),
        ] {
            super::tool_url(value, name).map_err(|e| e.to_string())?;
        }
        let configuration = body
            .get(TOOL_CONFIGURATION)
            .filter(|c| c.is_object())
            .ok_or_else(|| format!("{TOOL_CONFIGURATION} is required"))?;
        text(configuration, "domain")?;
        text(configuration, "target_link_uri")?;
        let n = self.registered.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(DemoTool {
            id: format!("tool-{n}"),
            name: text(body, "client_name")
                .map(|n| n.chars().take(80).collect())
                .unwrap_or_else(|_| format!("Tool {n}")),
            client_id: format!("{DYNREG_CLIENT_ID_PREFIX}{n}"),
            deployment_id: format!("dynreg-{n}"),
            login_url,
            redirect_uri,
            jwks_url: Some(jwks_url),
        })
    }

    /// `GET /platform/add-tool[?url=…]`.
    pub(super) fn add_tool_page(&self, query: &HashMap<String, String>) -> HttpResponse {
        let suggested = self.tool_login_url.replace("/lti/login", "/lti/register");
        let url = query.get("url").map(|u| u.trim()).filter(|u| !u.is_empty());
        let start = url.map(|u| self.registration_start_url(u));
        let (status, body) = match &start {
            Some(Ok(src)) => (
                http::StatusCode::OK,
                html! {
                    h1 { "Registering the tool" }
                    p { "The tool's registration page is below. When it says it is done, it closes itself and the tool is in the course's tool list." }
                    iframe #registration src=(src) title="Tool registration" style="width:100%;height:26rem;border:1px solid #ccd" {}
                    div #closed hidden {
                        p { b { "The tool finished its registration." } }
                        p { a #back href="/platform" { "Back to the course" } " — pick the new tool in the Tool list and launch." }
                    }
                    script { (PreEscaped(ON_CLOSE)) }
                },
            ),
            other => (
                if matches!(other, Some(Err(_))) {
                    http::StatusCode::BAD_REQUEST
                } else {
                    http::StatusCode::OK
                },
                html! {
                    h1 { "Add a tool by URL" }
                    @if let Some(Err(problem)) = other { p #problem { b { (problem) } } }
                    p { "LTI Dynamic Registration: paste the tool's registration URL. The platform opens it with its OpenID configuration and a one-time registration token; the tool registers itself, and you can launch it right after." }
                    form method="get" action=(ADD_TOOL_PATH) {
                        p { label { "Registration URL " input #url type="url" name="url" size="60" value=(url.unwrap_or(&suggested)); } }
                        button #register type="submit" { "Register" }
                    }
                    p.muted { "OpenID configuration: " code { (self.openid_configuration_url()) } }
                },
            ),
        };
        let mut response = respond::html(status, page("Add a tool by URL", body));
        // This page frames the tool and runs its own listener: a CSP of its own.
        if let Ok(csp) = http::HeaderValue::from_str(&format!(
            "default-src 'none'; script-src {}; style-src 'unsafe-inline'; frame-src http: https:; img-src data:; base-uri 'none'",
            lti_http::pages::script_hash(ON_CLOSE)
        )) {
            response
                .headers_mut()
                .insert(http::header::CONTENT_SECURITY_POLICY, csp);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lti_core::clock::FixedClock;
    use lti_core::signer::LocalRsaSigner;
    use std::sync::Arc;

    fn platform(clock: Arc<FixedClock>) -> DemoPlatform {
        DemoPlatform::new(
            "http://127.0.0.1:9",
            LocalRsaSigner::generate().expect("key"),
            clock,
        )
    }

    fn post(token: Option<&str>, body: Value) -> HttpRequest {
        let mut builder = http::Request::builder()
            .method("POST")
            .uri("http://127.0.0.1:9/platform/register")
            .header("content-type", "application/json");
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        builder
            .body(bytes::Bytes::from(body.to_string()))
            .expect("request")
    }

    fn metadata() -> Value {
        json!({
            "application_type": "web",
            "response_types": ["id_token"],
            "grant_types": ["implicit", "client_credentials"],
            "initiate_login_uri": "http://127.0.0.1:7/lti/login",
            "redirect_uris": ["http://127.0.0.1:7/lti/launch"],
            "client_name": "Other tool",
            "jwks_uri": "http://127.0.0.1:7/.well-known/jwks.json",
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": "",
            TOOL_CONFIGURATION: {"domain": "127.0.0.1:7", "target_link_uri": "http://127.0.0.1:7/lti/launch", "claims": [], "messages": []}
        })
    }

    fn status_and_json(response: HttpResponse) -> (u16, Value) {
        (
            response.status().as_u16(),
            serde_json::from_slice(response.body()).unwrap_or(Value::Null),
        )
    }

    #[test]
    fn the_registration_endpoint_wants_a_fresh_token_once_and_good_metadata() {
        let clock = Arc::new(FixedClock::at(1_750_000_000));
        let p = platform(clock.clone());
        let (status, body) = status_and_json(p.register_endpoint(&post(None, metadata())));
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_token"))
        );

        let token = p.issue_registration_token();
        let mut bad = metadata();
        bad["token_endpoint_auth_method"] = json!("client_secret_basic");
        let (status, body) = status_and_json(p.register_endpoint(&post(Some(&token), bad)));
        assert_eq!(status, 400);
        assert_eq!(body["error"], "invalid_client_metadata");
        assert!(body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("private_key_jwt")));

        let (status, body) = status_and_json(p.register_endpoint(&post(Some(&token), metadata())));
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["client_id"], "lti-dev-dynreg-1");
        assert_eq!(body[TOOL_CONFIGURATION]["deployment_id"], "dynreg-1");
        let tool = p.tool("tool-1").expect("listed");
        assert_eq!(tool.redirect_uri, "http://127.0.0.1:7/lti/launch");
        assert_eq!(tool.name, "Other tool");

        // Used once.
        let (status, _) = status_and_json(p.register_endpoint(&post(Some(&token), metadata())));
        assert_eq!(status, 401);
        // Expired.
        let late = p.issue_registration_token();
        clock.advance(TOKEN_SECONDS + 1);
        let (status, _) = status_and_json(p.register_endpoint(&post(Some(&late), metadata())));
        assert_eq!(status, 401);
    }

    #[test]
    fn the_add_tool_page_frames_the_registration_url_with_a_token() {
        let p = platform(Arc::new(FixedClock::at(1_750_000_000)));
        let mut query = HashMap::new();
        query.insert(
            "url".to_string(),
            "http://127.0.0.1:9/lti/register".to_string(),
        );
        let response = p.add_tool_page(&query);
        assert_eq!(response.status(), 200);
        let csp = response
            .headers()
            .get(http::header::CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(csp.contains("frame-src"), "{csp}");
        let page = String::from_utf8_lossy(response.body()).to_string();
        assert!(page.contains("openid_configuration=http%3A%2F%2F127.0.0.1%3A9%2Fplatform%2F.well-known%2Fopenid-configuration"), "{page}");
        assert!(page.contains("registration_token="));
        query.insert("url".to_string(), "javascript:alert(1)".to_string());
        assert_eq!(p.add_tool_page(&query).status(), 400);
    }
}
