//! OIDC login initiation (LTI 1.3 Core §4.1, Security Framework §5.1.1): the platform
//! sends the browser here; the tool answers with a redirect to the platform's
//! authorization endpoint, carrying a fresh state and nonce.

use crate::clock::Clock;
use crate::config::ToolConfig;
use crate::error::{ErrorKind, Problem, StoreError};
use crate::platform::PlatformStore;
use crate::random::Random;
use crate::state::{LaunchStore, LoginState};
use serde::Deserialize;
use std::sync::Arc;

/// Random bytes in `state` and `nonce`: 256 bits, well above the 128 required.
pub const STATE_BYTES: usize = 32;

/// The name of the cookie that binds `state` to the browser that started the login.
/// One cookie per state, so logins in two tabs do not overwrite each other.
pub fn state_cookie_name(state: &str) -> String {
    format!("lti-state-{state}")
}

/// The login initiation request (query string of a GET or form of a POST).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LoginRequest {
    pub iss: Option<String>,
    pub login_hint: Option<String>,
    pub target_link_uri: Option<String>,
    pub client_id: Option<String>,
    pub lti_message_hint: Option<String>,
    pub lti_deployment_id: Option<String>,
    /// Canvas sends `deployment_id` as well.
    pub deployment_id: Option<String>,
}

/// Where to send the browser, and the state to bind with a cookie.
#[derive(Debug, Clone)]
pub struct LoginRedirect {
    /// The platform's authorization endpoint with every parameter.
    pub location: String,
    /// The new state (also the cookie's value).
    pub state: String,
    /// Seconds until the state expires (the cookie's Max-Age).
    pub max_age: i64,
}

/// A login initiation was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoginError {
    /// A required parameter is missing (LTI 1.3 Core §4.1).
    #[error("the login request has no {0}")]
    ParamMissing(&'static str),
    /// No registration for this issuer.
    #[error("the platform {0:?} is not registered with this tool")]
    PlatformNotRegistered(String),
    /// The issuer has several registrations and the request did not say which.
    #[error("the platform has several registrations with this tool; the login request must include client_id")]
    ClientIdRequired,
    /// No registration for this (issuer, client_id).
    #[error("the client_id is not registered for this platform")]
    ClientUnknown,
    /// `target_link_uri` is not a URL on this tool or an allowed app origin.
    #[error("the target_link_uri is not on this tool")]
    TargetLinkUriInvalid,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Problem for LoginError {
    fn code(&self) -> &'static str {
        match self {
            Self::ParamMissing(_) => "LTI_LOGIN_PARAM_MISSING",
            Self::PlatformNotRegistered(_) => "LTI_PLATFORM_NOT_REGISTERED",
            Self::ClientIdRequired => "LTI_CLIENT_ID_REQUIRED",
            Self::ClientUnknown => "LTI_CLIENT_ID_UNKNOWN",
            Self::TargetLinkUriInvalid => "LTI_TARGET_LINK_URI_INVALID",
            Self::Store(e) => e.code(),
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            Self::ParamMissing(_) | Self::ClientIdRequired | Self::TargetLinkUriInvalid => {
                ErrorKind::BadRequest
            }
            Self::PlatformNotRegistered(_) | Self::ClientUnknown => ErrorKind::NotFound,
            Self::Store(e) => e.kind(),
        }
    }
    fn public_message(&self) -> String {
        match self {
            Self::Store(e) => e.public_message(),
            other => crate::error::sentence(&other.to_string()),
        }
    }
}

/// Everything a login initiation needs; build it once per process.
#[derive(Clone)]
pub struct LoginService {
    pub config: Arc<ToolConfig>,
    pub platforms: Arc<dyn PlatformStore>,
    pub launches: Arc<dyn LaunchStore>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
}

fn required(value: &Option<String>, name: &'static str) -> Result<String, LoginError> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .ok_or(LoginError::ParamMissing(name))
}

impl LoginService {
    /// Checks the request, stores a new state and nonce, and builds the redirect to
    /// the platform's authorization endpoint.
    pub async fn initiate(&self, request: &LoginRequest) -> Result<LoginRedirect, LoginError> {
        let issuer = required(&request.iss, "iss")?;
        let login_hint = required(&request.login_hint, "login_hint")?;
        let target_link_uri = required(&request.target_link_uri, "target_link_uri")?;
        let target =
            url::Url::parse(&target_link_uri).map_err(|_| LoginError::TargetLinkUriInvalid)?;
        if !self.config.is_tool_url(&target) && !self.config.is_app_url(&target) {
            return Err(LoginError::TargetLinkUriInvalid);
        }

        let client_id = request
            .client_id
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let platform = match client_id {
            Some(client_id) => match self.platforms.platform(&issuer, client_id).await? {
                Some(p) => p,
                None if self
                    .platforms
                    .platforms_by_issuer(&issuer, 1)
                    .await?
                    .is_empty() =>
                {
                    return Err(LoginError::PlatformNotRegistered(issuer))
                }
                None => return Err(LoginError::ClientUnknown),
            },
            None => {
                // Two are enough to know whether the request must name the client_id.
                let mut all = self.platforms.platforms_by_issuer(&issuer, 2).await?;
                match all.len() {
                    0 => return Err(LoginError::PlatformNotRegistered(issuer)),
                    1 => all.remove(0),
                    _ => return Err(LoginError::ClientIdRequired),
                }
            }
        };

        let now = self.clock.now();
        let state = LoginState {
            state: self.random.token(STATE_BYTES),
            nonce: self.random.token(STATE_BYTES),
            issuer,
            client_id: platform.client_id.clone(),
            target_link_uri,
            deployment_id: request
                .lti_deployment_id
                .clone()
                .or_else(|| request.deployment_id.clone()),
            created_at: now,
            expires_at: now + self.config.state_ttl,
        };
        self.launches.begin_login(&state).await?;

        let mut location = url::Url::parse(&platform.auth_login_url).map_err(|_| {
            LoginError::Store(StoreError::Corrupt(
                "the registration's authLoginUrl is not a URL".into(),
            ))
        })?;
        {
            let mut query = location.query_pairs_mut();
            query
                .append_pair("scope", "openid")
                .append_pair("response_type", "id_token")
                .append_pair("response_mode", "form_post")
                .append_pair("prompt", "none")
                .append_pair("client_id", &platform.client_id)
                .append_pair("redirect_uri", &self.config.launch_url())
                .append_pair("login_hint", &login_hint)
                .append_pair("state", &state.state)
                .append_pair("nonce", &state.nonce);
            if let Some(hint) = &request.lti_message_hint {
                query.append_pair("lti_message_hint", hint);
            }
        }
        Ok(LoginRedirect {
            location: location.into(),
            state: state.state,
            max_age: self.config.state_ttl,
        })
    }
}
