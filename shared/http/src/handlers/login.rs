//! `GET|POST /lti/login`: OIDC login initiation.

use super::method_not_allowed;
use crate::{request, respond, HttpRequest, HttpResponse};
use http::{header, HeaderValue, Method};
use lti_core::login::{state_cookie_name, LoginRequest, LoginService};

/// The login function's handler.
#[derive(Clone)]
pub struct LoginHandler {
    pub service: LoginService,
}

/// The `Set-Cookie` value binding `state` to the browser: third-party-context safe
/// (`SameSite=None; Secure; Partitioned`), invisible to scripts (`HttpOnly`).
pub fn state_cookie(state: &str, max_age: i64) -> String {
    format!(
        "{}={state}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=None; Partitioned",
        state_cookie_name(state)
    )
}

impl LoginHandler {
    /// Handles one login initiation.
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
        if request.method() != Method::GET && request.method() != Method::POST {
            return method_not_allowed(&request);
        }
        let params: LoginRequest = match request::params(&request) {
            Ok(p) => p,
            Err(e) => return respond::problem(&request, &e),
        };
        match self.service.initiate(&params).await {
            Ok(redirect) => {
                tracing::info!(
                    issuer = params.iss.as_deref().unwrap_or(""),
                    "login initiated"
                );
                let mut response = respond::redirect(&redirect.location);
                if let Ok(cookie) =
                    HeaderValue::from_str(&state_cookie(&redirect.state, redirect.max_age))
                {
                    response.headers_mut().append(header::SET_COOKIE, cookie);
                }
                response
            }
            Err(e) => respond::problem(&request, &e),
        }
    }
}
