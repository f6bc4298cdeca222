//! `GET|POST /lti/login`: OIDC login initiation.

use super::{framing_sources, method_not_allowed};
use crate::{pages, request, respond, HttpRequest, HttpResponse};
use cookie::{Cookie, SameSite};
use http::{header, HeaderValue, Method};
use lti_core::login::{
    stale_state_cookies, state_cookie_name, state_cookie_value, LoginRequest, LoginService,
};

/// The login function's handler.
#[derive(Clone)]
pub struct LoginHandler {
    pub service: LoginService,
}

/// A state cookie with every attribute: `__Host-` rules (`Secure`, `Path=/`, no
/// `Domain`), third-party-context safe (`SameSite=None; Partitioned`), invisible to
/// scripts (`HttpOnly`).
fn state_cookie_attributes(name: String, value: String) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::None)
        .partitioned(true)
        .build()
}

/// The `Set-Cookie` value binding `state` to the browser for `max_age` seconds; its
/// value carries the login's time (see [`state_cookie_value`]).
pub fn state_cookie(state: &str, issued_at_ms: i64, max_age: i64) -> String {
    let mut cookie = state_cookie_attributes(
        state_cookie_name(state),
        state_cookie_value(state, issued_at_ms),
    );
    cookie.set_max_age(cookie::time::Duration::seconds(max_age));
    cookie.to_string()
}

/// The `Set-Cookie` value that removes the state cookie `name` (same attributes, so
/// the browser matches it, including its partition).
pub fn expired_state_cookie(name: &str) -> String {
    let mut cookie = state_cookie_attributes(name.to_string(), String::new());
    cookie.make_removal();
    cookie.to_string()
}

/// Every cookie of the request, as (name, value).
fn request_cookies(request: &HttpRequest) -> Vec<(String, String)> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .map(|c| (c.name().to_string(), c.value().to_string()))
        .collect()
}

impl LoginHandler {
    /// Handles one login initiation.
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
        if request.method() != Method::GET && request.method() != Method::POST {
            return method_not_allowed(&request, "GET, POST");
        }
        let params: LoginRequest = match request::params(&request) {
            Ok(p) => p,
            Err(e) => {
                let mut response = respond::problem(&request, &e);
                respond::allow_framing_by(&mut response, &self.service.config.frame_ancestors);
                return response;
            }
        };
        lti_core::observe::note_claimed(params.iss.as_deref(), params.client_id.as_deref());
        match self.service.initiate(&params).await {
            Ok(redirect) => {
                tracing::debug!(
                    issuer = params.iss.as_deref().unwrap_or(""),
                    storage = redirect.storage.is_some(),
                    "login initiated"
                );
                // With the platform's storage frame, a page stores the state there and
                // then goes on; else a plain redirect.
                let mut response = match &redirect.storage {
                    Some(storage) => {
                        let mut page = respond::html(
                            http::StatusCode::OK,
                            pages::storage_login(&redirect.location, storage),
                        );
                        let mut sources = redirect.frame_origins.clone();
                        sources.extend(self.service.config.frame_ancestors.iter().cloned());
                        respond::allow_framing_by(&mut page, &sources);
                        page
                    }
                    None => respond::redirect(&redirect.location),
                };
                let cookies = request_cookies(&request);
                let stale =
                    stale_state_cookies(cookies.iter().map(|(n, v)| (n.as_str(), v.as_str())));
                let set = std::iter::once(state_cookie(
                    &redirect.state,
                    redirect.issued_at_ms,
                    redirect.max_age,
                ))
                .chain(stale.iter().map(|name| expired_state_cookie(name)));
                for cookie in set {
                    if let Ok(value) = HeaderValue::from_str(&cookie) {
                        response.headers_mut().append(header::SET_COOKIE, value);
                    }
                }
                response
            }
            Err(e) => {
                let mut response = respond::problem(&request, &e);
                let sources = framing_sources(
                    &self.service.config,
                    self.service.platforms.as_ref(),
                    params.iss.as_deref(),
                )
                .await;
                respond::allow_framing_by(&mut response, &sources);
                response
            }
        }
    }
}
