//! `POST /lti/launch`: the redirect URI where platforms post the id_token.

use super::login::expired_state_cookie;
use super::method_not_allowed;
use crate::{pages, request, respond, HttpRequest, HttpResponse};
use http::{header, HeaderValue, Method, StatusCode};
use lti_core::config::HandoffMode;
use lti_core::handoff::{Handoff, APP_TOKEN_FIELD};
use lti_core::launch::{LaunchForm, Launcher};
use lti_core::login::{state_cookie_binding, state_cookie_name};

/// The launch function's handler.
#[derive(Clone)]
pub struct LaunchHandler {
    pub launcher: Launcher,
}

impl LaunchHandler {
    /// Handles one launch.
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
        if request.method() != Method::POST {
            return method_not_allowed(&request);
        }
        let form: LaunchForm = match request::form(&request) {
            Ok(f) => f,
            Err(e) => return respond::problem(&request, &e),
        };
        // The state the browser's cookie for the posted state binds (its value is
        // `<issued_at_ms>.<state>`).
        let cookie = form
            .state
            .as_deref()
            .and_then(|s| request::cookie(&request, &state_cookie_name(s)));
        let bound = cookie.as_deref().map(state_cookie_binding);
        match self.launcher.launch(&form, bound).await {
            Ok(handoff) => {
                tracing::info!(user = %handoff.user_id, "launch accepted");
                let mut response = deliver(&handoff);
                if let Some(state) = &form.state {
                    // The state is used up: drop its cookie.
                    let expired = expired_state_cookie(&state_cookie_name(state));
                    if let Ok(value) = HeaderValue::from_str(&expired) {
                        response.headers_mut().append(header::SET_COOKIE, value);
                    }
                }
                response
            }
            Err(e) => respond::problem(&request, &e),
        }
    }
}

/// The response that takes the user to the app: an auto-submitting form POST of the
/// app token, or a redirect with the token in the URL fragment (never the query).
pub fn deliver(handoff: &Handoff) -> HttpResponse {
    match handoff.mode {
        HandoffMode::FormPost => respond::html(
            StatusCode::OK,
            pages::auto_submit(
                &handoff.landing_url,
                &[(APP_TOKEN_FIELD, &handoff.app_token)],
                "Signing you in",
            ),
        ),
        HandoffMode::Fragment => {
            let mut url = handoff.landing_url.clone();
            if let Some(i) = url.find('#') {
                url.truncate(i);
            }
            respond::redirect(&format!("{url}#{APP_TOKEN_FIELD}={}", handoff.app_token))
        }
    }
}
