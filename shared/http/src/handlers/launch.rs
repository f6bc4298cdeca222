//! `POST /lti/launch`: the redirect URI where platforms post the id_token.

use super::login::expired_state_cookie;
use super::method_not_allowed;
use crate::{pages, request, request_id, respond, HttpRequest, HttpResponse};
use http::{header, HeaderValue, Method, StatusCode};
use lti_core::config::HandoffMode;
use lti_core::error::Problem;
use lti_core::handoff::{Handoff, APP_TOKEN_FIELD};
use lti_core::launch::{Cookieless, LaunchError, LaunchForm, Launcher};
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
            return method_not_allowed(&request, "POST");
        }
        let form: LaunchForm = match request::form(&request) {
            Ok(f) => f,
            Err(e) => {
                let mut response = respond::problem(&request, &e);
                respond::allow_framing_by(&mut response, &self.launcher.config.frame_ancestors);
                return response;
            }
        };
        // The state the browser's cookie for the posted state binds (its value is
        // `<issued_at_ms>.<state>`).
        let cookie = form
            .state
            .as_deref()
            .and_then(|s| request::cookie(&request, &state_cookie_name(s)));
        let bound = cookie.as_deref().map(state_cookie_binding);
        let filled = |v: &Option<String>| v.as_deref().is_some_and(|v| !v.is_empty());
        if bound.is_none()
            && filled(&form.state)
            && filled(&form.id_token)
            && !filled(&form.error)
            && !filled(&form.lti_storage_proof)
        {
            // No cookie came back (blocked as third-party, or already used): the
            // platform's storage may bind the launch, or a new window may.
            return self.cookieless(&request, &form).await;
        }
        match self.launcher.launch(&form, bound).await {
            Ok(handoff) => {
                tracing::debug!(
                    user = %handoff.user_id,
                    bound_by = if bound.is_some() { "cookie" } else if filled(&form.lti_storage_proof) { "platform storage" } else { "none (direct)" },
                    "launch accepted"
                );
                let mut response = deliver(&handoff);
                let mut sources = handoff.frame_origins.clone();
                sources.extend(self.launcher.config.frame_ancestors.iter().cloned());
                respond::allow_framing_by(&mut response, &sources);
                if let Some(state) = &form.state {
                    // The state is used up: drop its cookie.
                    let expired = expired_state_cookie(&state_cookie_name(state));
                    if let Ok(value) = HeaderValue::from_str(&expired) {
                        response.headers_mut().append(header::SET_COOKIE, value);
                    }
                }
                response
            }
            Err(e) => self.refuse(&request, &form, &e).await,
        }
    }

    /// A launch without the state cookie and without a storage proof.
    async fn cookieless(&self, request: &HttpRequest, form: &LaunchForm) -> HttpResponse {
        let answer = match self.launcher.cookieless(form).await {
            Ok(answer) => answer,
            Err(e) => return self.refuse(request, form, &e).await,
        };
        let config = &self.launcher.config;
        match answer {
            Cookieless::Storage {
                target,
                origin,
                key,
                frame_origins,
            } => {
                tracing::debug!("launch without the state cookie: reading the platform's storage");
                let mut response = respond::html(
                    StatusCode::OK,
                    pages::storage_launch(
                        &config.launch_url(),
                        form.id_token.as_deref().unwrap_or_default(),
                        form.state.as_deref().unwrap_or_default(),
                        &target,
                        &origin,
                        &key,
                    ),
                );
                let mut sources = frame_origins;
                sources.extend(config.frame_ancestors.iter().cloned());
                respond::allow_framing_by(&mut response, &sources);
                response
                    .extensions_mut()
                    .insert(crate::observe::Outcome("STORAGE_READ"));
                response
            }
            Cookieless::NewWindow {
                restart_url,
                frame_origins,
            } => {
                let error = LaunchError::StateCookieMissing;
                let mut response = if request::wants_json(request) {
                    respond::problem(request, &error)
                } else {
                    // Without the state cookie nor platform storage: a new window.
                    let mut page = respond::html(
                        StatusCode::UNAUTHORIZED,
                        pages::new_window(
                            restart_url.as_deref(),
                            StatusCode::UNAUTHORIZED.as_u16(),
                            error.code(),
                            &request_id(request),
                        ),
                    );
                    respond::mark_refused(&mut page, &error);
                    page
                };
                let mut sources = frame_origins;
                sources.extend(config.frame_ancestors.iter().cloned());
                respond::allow_framing_by(&mut response, &sources);
                response
            }
        }
    }

    /// The error answer, framable by the registration the token names (unverified
    /// `iss` and `azp`/`aud`) when it is known without a store call (the platform
    /// cache of a warm instance), so the user sees it inside the platform; a refusal
    /// never costs a read of its own.
    async fn refuse(
        &self,
        request: &HttpRequest,
        form: &LaunchForm,
        error: &LaunchError,
    ) -> HttpResponse {
        let mut response = respond::problem(request, error);
        let mut sources = Vec::new();
        if let Some((issuer, client_id)) =
            form.id_token.as_deref().and_then(unverified_registration)
        {
            if let Some(platform) = self.launcher.platforms.known_platform(&issuer, &client_id) {
                sources.extend(lti_core::storage::registration_origins(&platform));
            }
        }
        sources.extend(self.launcher.config.frame_ancestors.iter().cloned());
        respond::allow_framing_by(&mut response, &sources);
        response
    }
}

/// The `iss` and client_id (`azp`, else the single or first `aud`) of an id_token,
/// unverified: only to choose who may frame an error page. Bounded like the launch's
/// own reads (2048 bytes each).
fn unverified_registration(token: &str) -> Option<(String, String)> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Audience {
        One(String),
        Many(Vec<String>),
    }
    #[derive(serde::Deserialize)]
    struct Peek {
        iss: Option<String>,
        aud: Option<Audience>,
        azp: Option<String>,
    }
    let (_, payload, _) = lti_core::jwt::split(token)?;
    let peek: Peek = lti_core::jwt::decode_part(payload)?;
    let client_id = peek.azp.or(match peek.aud? {
        Audience::One(aud) => Some(aud),
        Audience::Many(all) => all.into_iter().next(),
    })?;
    let issuer = peek.iss?;
    (issuer.len() <= 2048 && client_id.len() <= 2048).then_some((issuer, client_id))
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
