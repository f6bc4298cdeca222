//! The demo platform's LTI Advantage services: the OAuth 2.0 token endpoint tools get
//! access tokens from (client credentials with a JWT client assertion, verified against
//! the tool's JWKS fetched over HTTP), and the checks every service call passes — a
//! bearer token this endpoint issued, unexpired, carrying a scope the call needs.
//! The gradebook ([`super::gradebook`]) and the roster ([`super::roster`]) sit behind
//! them, under `/platform/courses/demo-course-101/`.
//!
//! Everything lives in memory until the server stops: issued tokens, the assertion ids
//! (`jti`) seen, and the counters tests print.

use super::{DemoPlatform, DemoTool};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lti_core::random::{Random, SystemRandom};
use lti_core::signer::PublicJwk;
use lti_http::{HttpRequest, HttpResponse};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Manage line items.
pub const SCOPE_LINEITEM: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem";
/// Read line items.
pub const SCOPE_LINEITEM_READONLY: &str =
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly";
/// Read results.
pub const SCOPE_RESULT_READONLY: &str =
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly";
/// Post scores.
pub const SCOPE_SCORE: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/score";
/// Read the roster.
pub const SCOPE_NRPS: &str =
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly";
/// The AGS scopes every launch advertises.
pub const AGS_SCOPES: [&str; 4] = [
    SCOPE_LINEITEM,
    SCOPE_LINEITEM_READONLY,
    SCOPE_RESULT_READONLY,
    SCOPE_SCORE,
];
/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/platform/token";
/// Paths of the course's services start with this.
pub const COURSE_PATH: &str = "/platform/courses/demo-course-101";
/// Access tokens live this long, seconds.
pub const TOKEN_SECONDS: i64 = 3600;
/// A client assertion may live at most this long (`exp` − `iat`), seconds.
pub const ASSERTION_MAX_SECONDS: i64 = 300;
/// Clock leeway on the assertion's `exp` and `iat`, seconds.
const LEEWAY: i64 = 60;
/// At most this many access tokens are kept (the oldest goes first).
const MAX_TOKENS: usize = 2000;
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An access token this platform issued.
#[derive(Debug, Clone)]
struct Issued {
    client_id: String,
    scopes: Vec<String>,
    expires_at: i64,
}

/// The token endpoint's state and the services' counters.
pub(super) struct Tokens {
    issued: Mutex<HashMap<String, Issued>>,
    /// Assertion ids seen, until their `exp` (+ leeway).
    jtis: Mutex<HashMap<String, i64>>,
    token_requests: AtomicU64,
    tokens_issued: AtomicU64,
    service_requests: AtomicU64,
}

impl Default for Tokens {
    fn default() -> Self {
        Self {
            issued: Mutex::new(HashMap::new()),
            jtis: Mutex::new(HashMap::new()),
            token_requests: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
            service_requests: AtomicU64::new(0),
        }
    }
}

/// What a service call is allowed as: the tool whose token it carries.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    pub client_id: String,
}

/// An OAuth 2.0 error answer (RFC 6749 §5.2): `{"error", "error_description"}`.
pub(super) fn oauth_error(status: u16, error: &str, description: &str) -> HttpResponse {
    let mut response = lti_http::respond::json(
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_REQUEST),
        &json!({"error": error, "error_description": description}),
    );
    if status == 401 {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// A `200` with `body` under the service's own media type.
pub(super) fn media(status: u16, media_type: &'static str, body: &Value) -> HttpResponse {
    let mut response = lti_http::respond::json(
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK),
        body,
    );
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(media_type),
    );
    response
}

/// An empty answer with `status` (`204` after a score or a delete).
pub(super) fn empty(status: u16) -> HttpResponse {
    let mut response = http::Response::new(bytes::Bytes::new());
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::NO_CONTENT);
    response
}

/// The `Content-Type` of `request` without parameters, lowercase.
pub(super) fn content_type(request: &HttpRequest) -> String {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The query of `request`, one value per name (the last one).
pub(super) fn query(request: &HttpRequest) -> HashMap<String, String> {
    serde_urlencoded::from_str(request.uri().query().unwrap_or("")).unwrap_or_default()
}

/// `items` cut into pages of `size`: page `page` (from 1) and whether one follows.
pub(super) fn page_of<T: Clone>(items: &[T], page: usize, size: usize) -> (Vec<T>, bool) {
    let size = size.max(1);
    let start = page.saturating_sub(1).saturating_mul(size);
    let end = start.saturating_add(size).min(items.len());
    let slice = items.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    (slice, end < items.len())
}

/// The `page` (from 1) and page size (`limit`, at most `max`, default `max`) a list
/// request asks for, or why it cannot be read.
pub(super) fn paging(
    query: &HashMap<String, String>,
    max: usize,
) -> Result<(usize, usize), &'static str> {
    let page = match query.get("page") {
        None => 1,
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|p| (1..=10_000).contains(p))
            .ok_or("page must be a number from 1")?,
    };
    let size = match query.get("limit") {
        None => max,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| *l >= 1)
            .ok_or("limit must be a positive number")?
            .min(max),
    };
    Ok((page, size))
}

/// Adds `Link: <url of the next page>; rel="next"` to `response`: `base` with the
/// request's query, `page` replaced.
pub(super) fn link_next(
    response: &mut HttpResponse,
    base: &str,
    query: &HashMap<String, String>,
    next_page: usize,
) {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .filter(|(k, _)| k.as_str() != "page")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    pairs.sort();
    pairs.push(("page".into(), next_page.to_string()));
    let encoded = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if let Ok(value) = http::HeaderValue::from_str(&format!("<{base}?{encoded}>; rel=\"next\"")) {
        response.headers_mut().insert(http::header::LINK, value);
    }
}

impl DemoPlatform {
    /// Token requests received (accepted or not).
    pub fn token_requests(&self) -> u64 {
        self.tokens.token_requests.load(Ordering::Relaxed)
    }

    /// Access tokens issued.
    pub fn tokens_issued(&self) -> u64 {
        self.tokens.tokens_issued.load(Ordering::Relaxed)
    }

    /// Calls to the gradebook and the roster (authorized or not).
    pub fn service_requests(&self) -> u64 {
        self.tokens.service_requests.load(Ordering::Relaxed)
    }

    /// The scopes a launch into `tool` grants, AGS then NRPS.
    pub fn offered_scopes(&self) -> Vec<&'static str> {
        let mut all = AGS_SCOPES.to_vec();
        all.push(SCOPE_NRPS);
        all
    }

    /// `POST /platform/token`: the client-credentials grant with a JWT client assertion
    /// (1EdTech Security Framework §4.1). The assertion must be signed RS256 with a key
    /// the tool publishes in its JWKS (fetched now, over HTTP), `iss` = `sub` = the
    /// tool's client_id, `aud` exactly this token URL, `iat` not in the future, `exp`
    /// not past and at most 5 minutes after `iat`, and a `jti` never seen before. The
    /// token carries the requested scopes this platform offers.
    pub(super) async fn token_endpoint(&self, request: &HttpRequest) -> HttpResponse {
        self.tokens.token_requests.fetch_add(1, Ordering::Relaxed);
        if request.method() != http::Method::POST {
            return oauth_error(405, "invalid_request", "Token requests are POSTed.");
        }
        if content_type(request) != "application/x-www-form-urlencoded" {
            return oauth_error(
                400,
                "invalid_request",
                "The token request must be a form (application/x-www-form-urlencoded).",
            );
        }
        let Ok(fields) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(request.body())
        else {
            return oauth_error(400, "invalid_request", "The form cannot be read.");
        };
        let mut form: HashMap<&str, &str> = HashMap::new();
        for (name, value) in &fields {
            if form.insert(name.as_str(), value.as_str()).is_some() {
                return oauth_error(400, "invalid_request", "A parameter is repeated.");
            }
        }
        let field = |name: &str| form.get(name).copied().filter(|v| !v.is_empty());
        match field("grant_type") {
            Some("client_credentials") => {}
            Some(_) => {
                return oauth_error(
                    400,
                    "unsupported_grant_type",
                    "Only client_credentials is supported.",
                )
            }
            None => return oauth_error(400, "invalid_request", "grant_type is required."),
        }
        if field("client_assertion_type") != Some(JWT_BEARER) {
            return oauth_error(
                400,
                "invalid_request",
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
            );
        }
        let Some(assertion) = field("client_assertion") else {
            return oauth_error(400, "invalid_request", "client_assertion is required.");
        };
        let Some(scope) = field("scope") else {
            return oauth_error(400, "invalid_request", "scope is required.");
        };
        let tool = match self.check_client_assertion(assertion).await {
            Ok(tool) => tool,
            Err(why) => {
                tracing::warn!(reason = %why, "demo platform: client assertion refused");
                return oauth_error(401, "invalid_client", &why);
            }
        };
        let offered = self.offered_scopes();
        let mut granted: Vec<String> = Vec::new();
        for s in scope.split_whitespace() {
            if offered.contains(&s) && !granted.iter().any(|g| g == s) {
                granted.push(s.to_string());
            }
        }
        if granted.is_empty() {
            return oauth_error(
                400,
                "invalid_scope",
                "None of the requested scopes is offered to this tool.",
            );
        }
        let token = format!("demo-at-{}", SystemRandom.token(24));
        let now = self.clock.now();
        {
            let mut issued = self.tokens.issued.lock().unwrap_or_else(|e| e.into_inner());
            issued.retain(|_, t| t.expires_at > now);
            if issued.len() >= MAX_TOKENS {
                if let Some(oldest) = issued
                    .iter()
                    .min_by_key(|(_, t)| t.expires_at)
                    .map(|(k, _)| k.clone())
                {
                    issued.remove(&oldest);
                }
            }
            issued.insert(
                token.clone(),
                Issued {
                    client_id: tool.client_id.clone(),
                    scopes: granted.clone(),
                    expires_at: now + TOKEN_SECONDS,
                },
            );
        }
        self.tokens.tokens_issued.fetch_add(1, Ordering::Relaxed);
        tracing::info!(tool = %tool.id, scope = %granted.join(" "), "demo platform: access token issued");
        lti_http::respond::json(
            http::StatusCode::OK,
            &json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": TOKEN_SECONDS,
                "scope": granted.join(" "),
            }),
        )
    }

    /// The tool a client assertion authenticates, or why it does not.
    async fn check_client_assertion(&self, jwt: &str) -> Result<DemoTool, String> {
        let header =
            jsonwebtoken::decode_header(jwt).map_err(|_| "The client assertion is not a JWT.")?;
        if header.alg != jsonwebtoken::Algorithm::RS256 {
            return Err("The client assertion must be signed with RS256.".into());
        }
        let kid = header
            .kid
            .ok_or("The client assertion's header has no kid.")?;
        // The issuer names the tool whose keys to fetch; nothing else is trusted yet.
        let unverified = jwt
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .unwrap_or(Value::Null);
        let tool = unverified["iss"]
            .as_str()
            .and_then(|c| self.tool_by_client_id(c))
            .ok_or("The client assertion's iss is not the client_id of a tool of this platform.")?;
        let jwks_url = tool
            .jwks_url
            .clone()
            .ok_or("This platform knows no key set URL for the tool.")?;
        let jwk = self.tool_jwk(&jwks_url, &kid).await?;
        let claims = lti_core::services::testing::check_assertion(jwt, &jwk, &self.token_url())
            .map_err(|why| format!("The client assertion is refused: {why}."))?;
        if claims["iss"] != tool.client_id.as_str() || claims["sub"] != tool.client_id.as_str() {
            return Err("The client assertion's iss and sub must both be the client_id.".into());
        }
        let now = self.clock.now();
        let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
            return Err("The client assertion's iat and exp must be numbers.".into());
        };
        if exp + LEEWAY < now {
            return Err("The client assertion has expired.".into());
        }
        if iat > now + LEEWAY {
            return Err("The client assertion's iat is in the future.".into());
        }
        if exp - iat > ASSERTION_MAX_SECONDS {
            return Err("The client assertion may live at most 5 minutes.".into());
        }
        let jti = claims["jti"]
            .as_str()
            .filter(|j| !j.is_empty())
            .ok_or("The client assertion has no jti.")?;
        let mut seen = self.tokens.jtis.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, until| *until + LEEWAY >= now);
        if seen.contains_key(jti) {
            return Err("The client assertion was used before (its jti was seen).".into());
        }
        seen.insert(jti.to_string(), exp);
        Ok(tool)
    }

    /// The tool's public key `kid` from its JWKS, fetched now.
    async fn tool_jwk(&self, url: &str, kid: &str) -> Result<PublicJwk, String> {
        let unavailable = || "The tool's key set could not be fetched.".to_string();
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
        let key = jwks["keys"]
            .as_array()
            .and_then(|keys| {
                keys.iter()
                    .find(|k| k["kid"] == kid && k["kty"] == "RSA" && k["use"] != "enc")
            })
            .ok_or("The tool does not publish the key (kid) the assertion was signed with.")?;
        match (key["n"].as_str(), key["e"].as_str()) {
            (Some(n), Some(e)) => Ok(PublicJwk {
                kty: "RSA".into(),
                kid: kid.to_string(),
                alg: "RS256".into(),
                use_: "sig".into(),
                n: n.to_string(),
                e: e.to_string(),
            }),
            _ => Err("The tool's published key cannot be read.".into()),
        }
    }

    /// Checks the bearer token of a service call: one this platform issued, unexpired,
    /// with one of `scopes`. The refusal is the answer to send.
    pub(super) fn authorize_call(
        &self,
        request: &HttpRequest,
        scopes: &[&str],
    ) -> Result<Grant, Box<HttpResponse>> {
        let Some(token) = lti_http::request::bearer(request) else {
            return Err(Box::new(oauth_error(
                401,
                "invalid_token",
                "The call needs an access token from this platform's token endpoint (Authorization: Bearer).",
            )));
        };
        let now = self.clock.now();
        let issued = self
            .tokens
            .issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned();
        let Some(issued) = issued.filter(|t| t.expires_at > now) else {
            return Err(Box::new(oauth_error(
                401,
                "invalid_token",
                "The access token is unknown or expired.",
            )));
        };
        if !scopes.iter().any(|s| issued.scopes.iter().any(|g| g == s)) {
            return Err(Box::new(oauth_error(
                403,
                "insufficient_scope",
                &format!(
                    "The access token lacks the scope this call needs ({}).",
                    scopes.join(" or ")
                ),
            )));
        }
        Ok(Grant {
            client_id: issued.client_id,
        })
    }

    /// Routes a call under [`COURSE_PATH`] to the gradebook or the roster.
    pub(super) async fn course_service(&self, request: &HttpRequest, path: &str) -> HttpResponse {
        self.tokens.service_requests.fetch_add(1, Ordering::Relaxed);
        let rest = path.strip_prefix(COURSE_PATH).unwrap_or_default();
        if rest == "/memberships" {
            return self.memberships(request);
        }
        if let Some(rest) = rest.strip_prefix("/lineitems") {
            return self.gradebook_call(request, rest);
        }
        oauth_error(404, "not_found", "There is no such service in this course.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_cut_from_one_and_say_whether_more_follow() {
        let items: Vec<u32> = (1..=25).collect();
        assert_eq!(page_of(&items, 1, 10), ((1..=10).collect(), true));
        assert_eq!(page_of(&items, 3, 10), ((21..=25).collect(), false));
        assert_eq!(page_of(&items, 4, 10), (vec![], false));
        assert_eq!(page_of(&items, 0, 10), ((1..=10).collect(), true));
    }

    #[test]
    fn paging_reads_page_and_limit_with_a_cap() {
        let q = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        assert_eq!(paging(&q(&[]), 10), Ok((1, 10)));
        assert_eq!(paging(&q(&[("page", "3"), ("limit", "4")]), 10), Ok((3, 4)));
        assert_eq!(paging(&q(&[("limit", "500")]), 10), Ok((1, 10)));
        assert!(paging(&q(&[("page", "0")]), 10).is_err());
        assert!(paging(&q(&[("page", "x")]), 10).is_err());
        assert!(paging(&q(&[("limit", "0")]), 10).is_err());
    }

    #[test]
    fn the_next_link_keeps_the_query_and_quotes_rel() {
        let mut response = empty(200);
        let q: HashMap<String, String> = [("role", "Learner"), ("page", "1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        link_next(&mut response, "http://h/m", &q, 2);
        assert_eq!(
            response.headers()["link"],
            "<http://h/m?role=Learner&page=2>; rel=\"next\""
        );
    }
}
