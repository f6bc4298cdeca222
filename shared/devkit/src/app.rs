//! The demo app: what the company's web app does with the hand-off. It receives the
//! app token, verifies it against the tool's JWKS (fetched over HTTP, as a real app
//! would), and shows who arrived and the normalized launch context.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use lti_core::keys::{parse_jwks, KeySetFetcher};
use lti_core::launch::LaunchContext;
use lti_http::{HttpRequest, HttpResponse};
use lti_outbound::jwks::HttpKeySetFetcher;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The demo app.
pub struct DemoApp {
    /// The tool's JWKS URL.
    pub jwks_url: String,
    /// Expected `iss` of app tokens: the tool's base URL.
    pub tool_issuer: String,
    /// Expected `aud` of app tokens.
    pub audience: String,
    pub fetcher: HttpKeySetFetcher,
}

#[derive(Deserialize)]
struct Landing {
    app_token: Option<String>,
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
    /// Handles `/app`.
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
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
            Ok(claims) => respond(200, welcome(&claims)),
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

fn welcome(claims: &Value) -> String {
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
                tr { td { "Custom" } td #custom { @for (k, v) in &custom { code { (k) "=" (v) } " " } } }
            }
            h2 { "App token claims" }
            pre #claims { (pretty) }
        },
    )
}
