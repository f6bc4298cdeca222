//! OIDC login initiation (LTI 1.3 Core §4.1, Security Framework §5.1.1): the platform
//! sends the browser here; the tool answers with a redirect to the platform's
//! authorization endpoint, carrying a fresh state and nonce.

use crate::clock::Clock;
use crate::config::ToolConfig;
use crate::error::{ErrorKind, Problem, StoreError};
use crate::platform::PlatformStore;
use crate::random::Random;
use crate::state::{LaunchStore, LoginRestart, LoginState, StorageBinding};
use serde::Deserialize;
use std::sync::Arc;

/// Random bytes in `state` and `nonce`: 256 bits, well above the 128 required.
pub const STATE_BYTES: usize = 32;

/// What every state cookie's name starts with. The `__Host-` prefix makes browsers
/// accept the cookie only with `Secure`, `Path=/` and no `Domain`, from this host
/// itself, so a sibling subdomain cannot plant one.
pub const STATE_COOKIE_PREFIX: &str = "__Host-lti-state-";

/// The most state cookies a login leaves in a browser: the one it sets and the newest
/// `MAX_STATE_COOKIES - 1` it finds; older ones are expired. Several LTI embeds on one
/// page log in at once, so one cookie per state, but a bounded number: API Gateway
/// refuses a request whose request line and headers pass 10,240 bytes. Eight cookies
/// are at most [`STATE_COOKIES_BUDGET`] bytes of Cookie header.
pub const MAX_STATE_COOKIES: usize = 8;

/// The most bytes [`MAX_STATE_COOKIES`] state cookies take in a Cookie header
/// (`name=value` pairs joined by `; `): 8 × 118 + 7 × 2 = 958 ≤ 1 KiB.
pub const STATE_COOKIES_BUDGET: usize = 1024;

/// The name of the cookie that binds `state` to the browser that started the login.
/// One cookie per state, so logins in two tabs (or two embeds) do not overwrite each
/// other.
pub fn state_cookie_name(state: &str) -> String {
    format!("{STATE_COOKIE_PREFIX}{state}")
}

/// The value of the state cookie: `<issued_at_ms>.<state>`. The issue time (epoch
/// milliseconds) tells a later login which cookies are the oldest.
pub fn state_cookie_value(state: &str, issued_at_ms: i64) -> String {
    format!("{issued_at_ms}.{state}")
}

/// The state a state cookie's value binds: the part after the issue time (a value
/// without one is taken whole, and then simply fails to match).
pub fn state_cookie_binding(value: &str) -> &str {
    match value.split_once('.') {
        Some((issued, state))
            if !issued.is_empty() && issued.bytes().all(|b| b.is_ascii_digit()) =>
        {
            state
        }
        _ => value,
    }
}

/// The names of the state cookies a new login must expire, given every cookie
/// (`name`, `value`) the browser sent: all but the newest `MAX_STATE_COOKIES - 1`
/// state cookies, so that with the one the login sets at most [`MAX_STATE_COOKIES`]
/// remain. A cookie whose issue time cannot be read counts as the oldest.
pub fn stale_state_cookies<'a>(
    cookies: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<String> {
    let mut ours: Vec<(i64, &str)> = cookies
        .into_iter()
        .filter(|(name, _)| name.starts_with(STATE_COOKIE_PREFIX))
        .map(|(name, value)| {
            let issued = value
                .split_once('.')
                .and_then(|(issued, _)| issued.parse::<i64>().ok())
                .unwrap_or(i64::MIN);
            (issued, name)
        })
        .collect();
    // Newest first; a name sent twice counts once, at its newest.
    ours.sort_by(|a, b| b.cmp(a));
    let mut seen = std::collections::HashSet::new();
    ours.retain(|(_, name)| seen.insert(*name));
    ours.into_iter()
        .skip(MAX_STATE_COOKIES - 1)
        .map(|(_, name)| name.to_string())
        .collect()
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
    /// The name of the platform's storage frame (LTI Client Side postMessages):
    /// the login stores the state there too.
    pub lti_storage_target: Option<String>,
}

/// What the login page stores in the platform's storage frame before it goes on.
#[derive(Debug, Clone)]
pub struct StorageLogin {
    /// The `lti_storage_target` frame name.
    pub target: String,
    /// The platform's origin: where the messages go, and where answers must come from.
    pub origin: String,
    /// `state_<state>` and its value `<state>.<proof>`.
    pub state_key: String,
    pub state_value: String,
    /// `nonce_<nonce>` and the nonce.
    pub nonce_key: String,
    pub nonce_value: String,
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
    /// When the login was made, epoch milliseconds (in the cookie's value, see
    /// [`state_cookie_value`]).
    pub issued_at_ms: i64,
    /// Set when the login stores the state in the platform's storage frame: the login
    /// answers a page that does so, then goes to `location`.
    pub storage: Option<StorageLogin>,
    /// The registration's origins (CSP `frame-ancestors` of the login page).
    pub frame_origins: Vec<String>,
}

/// A login initiation was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoginError {
    /// A required parameter is missing (LTI 1.3 Core §4.1).
    #[error("the login request has no {0}")]
    ParamMissing(&'static str),
    /// A parameter is longer than this tool accepts (see [`LOGIN_PARAM_LIMITS`]).
    #[error("the login request's {param} is longer than {max} bytes")]
    ParamTooLong { param: &'static str, max: usize },
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
    /// `lti_storage_target` is not a frame name.
    #[error("the lti_storage_target is not a frame name")]
    StorageTargetInvalid,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Problem for LoginError {
    fn code(&self) -> &'static str {
        match self {
            Self::ParamMissing(_) => "LTI_LOGIN_PARAM_MISSING",
            Self::ParamTooLong { .. } => "LTI_LOGIN_PARAM_TOO_LONG",
            Self::PlatformNotRegistered(_) => "LTI_PLATFORM_NOT_REGISTERED",
            Self::ClientIdRequired => "LTI_CLIENT_ID_REQUIRED",
            Self::ClientUnknown => "LTI_CLIENT_ID_UNKNOWN",
            Self::TargetLinkUriInvalid => "LTI_TARGET_LINK_URI_INVALID",
            Self::StorageTargetInvalid => "LTI_STORAGE_TARGET_INVALID",
            Self::Store(e) => e.code(),
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            Self::ParamMissing(_)
            | Self::ParamTooLong { .. }
            | Self::ClientIdRequired
            | Self::TargetLinkUriInvalid
            | Self::StorageTargetInvalid => ErrorKind::BadRequest,
            Self::PlatformNotRegistered(_) | Self::ClientUnknown => ErrorKind::NotFound,
            Self::Store(e) => e.kind(),
        }
    }
    fn public_message(&self) -> String {
        match self {
            // A login is started by the platform: the user retries from the course.
            Self::Store(_) => "The tool's storage is unavailable right now; please launch the \
                tool again from your course in a moment."
                .into(),
            // The issuer is the caller's text: logged, never shown on the tool's page.
            Self::PlatformNotRegistered(_) => {
                "The platform is not registered with this tool.".into()
            }
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

/// The longest value, in bytes, accepted for each login parameter. A login is
/// unauthenticated, so what it stores (the target link URI and the deployment hint:
/// at most 3 DynamoDB write units with them at their limits, where one of 60 KB cost
/// 60) and what it echoes into the redirect to the platform must be bounded:
/// - `iss` and `client_id`: 2048, what the admin API accepts for a registration;
/// - `login_hint`: 2048 and `lti_message_hint`: 4096, opaque values passed back to the
///   platform (Canvas sends a signed JWT of several hundred bytes as the message hint);
/// - `target_link_uri`: 2048, a URL on this tool or an allowed app origin;
/// - `lti_deployment_id` / `deployment_id`: 255, the limit LTI 1.3 Core §5.3.3 sets;
/// - `lti_storage_target`: 255, a frame name.
pub const LOGIN_PARAM_LIMITS: [(&str, usize); 8] = [
    ("iss", 2048),
    ("login_hint", 2048),
    ("target_link_uri", 2048),
    ("client_id", 2048),
    ("lti_message_hint", 4096),
    ("lti_deployment_id", 255),
    ("deployment_id", 255),
    ("lti_storage_target", crate::storage::MAX_TARGET_LEN),
];

impl LoginRequest {
    /// Refuses the first parameter longer than its limit in [`LOGIN_PARAM_LIMITS`].
    pub fn check_lengths(&self) -> Result<(), LoginError> {
        let values = [
            &self.iss,
            &self.login_hint,
            &self.target_link_uri,
            &self.client_id,
            &self.lti_message_hint,
            &self.lti_deployment_id,
            &self.deployment_id,
            &self.lti_storage_target,
        ];
        for ((param, max), value) in LOGIN_PARAM_LIMITS.iter().zip(values) {
            if value.as_ref().is_some_and(|v| v.len() > *max) {
                return Err(LoginError::ParamTooLong { param, max: *max });
            }
        }
        Ok(())
    }
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
        request.check_lengths()?;
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
        crate::observe::note_registration(&platform.issuer, &platform.client_id);

        // The platform's storage frame, when the login names one (Canvas always does).
        let storage_target = request
            .lti_storage_target
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let storage = match storage_target {
            None => None,
            Some(target) if !crate::storage::valid_target(target) => {
                return Err(LoginError::StorageTargetInvalid)
            }
            Some(target) => {
                let origin =
                    crate::storage::storage_origin(&platform.auth_login_url).ok_or_else(|| {
                        LoginError::Store(StoreError::Corrupt(
                            "the registration's authLoginUrl is not a URL".into(),
                        ))
                    })?;
                let proof = crate::storage::new_proof(self.random.as_ref());
                Some((target.to_string(), origin, proof))
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
            restart: Some(LoginRestart {
                login_hint: login_hint.clone(),
                lti_message_hint: request.lti_message_hint.clone(),
            }),
            storage: storage
                .as_ref()
                .map(|(target, origin, proof)| StorageBinding {
                    target: target.clone(),
                    origin: origin.clone(),
                    proof_hash: crate::storage::proof_hash(proof),
                }),
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
        let storage = storage.map(|(target, origin, proof)| StorageLogin {
            target,
            origin,
            state_key: crate::storage::state_key(&state.state),
            state_value: crate::storage::state_value(&state.state, &proof),
            nonce_key: crate::storage::nonce_key(&state.nonce),
            nonce_value: state.nonce.clone(),
        });
        Ok(LoginRedirect {
            location: location.into(),
            state: state.state,
            max_age: self.config.state_ttl,
            issued_at_ms: self.clock.now_millis(),
            storage,
            frame_origins: crate::storage::registration_origins(&platform),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(state: &str, issued: i64) -> (String, String) {
        (state_cookie_name(state), state_cookie_value(state, issued))
    }

    #[test]
    fn a_state_cookie_binds_the_state_after_its_issue_time() {
        let (name, value) = cookie("abc.def", 1_700_000_000_123);
        assert_eq!(name, "__Host-lti-state-abc.def");
        assert_eq!(value, "1700000000123.abc.def");
        assert_eq!(state_cookie_binding(&value), "abc.def");
        // A value without an issue time is taken whole.
        assert_eq!(state_cookie_binding("abc"), "abc");
        assert_eq!(state_cookie_binding("x1.abc"), "x1.abc");
        assert_eq!(state_cookie_binding(".abc"), ".abc");
    }

    #[test]
    fn a_login_expires_all_but_the_newest_state_cookies() {
        let mut cookies: Vec<(String, String)> = (0..20)
            .map(|i| cookie(&format!("s{i:02}"), 1_000 + i))
            .collect();
        cookies.push(("other".into(), "1.x".into()));
        cookies.push((state_cookie_name("garbled"), "no-time".into()));
        let stale = stale_state_cookies(cookies.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        // 20 + 1 unreadable; keep the 7 newest (s13..s19), the login adds the 8th.
        assert_eq!(stale.len(), 21 - (MAX_STATE_COOKIES - 1));
        assert!(stale.contains(&state_cookie_name("garbled")));
        assert!(!stale.contains(&"other".to_string()));
        for i in 13..20 {
            assert!(!stale.contains(&state_cookie_name(&format!("s{i:02}"))));
        }
        for i in 0..13 {
            assert!(stale.contains(&state_cookie_name(&format!("s{i:02}"))));
        }
        // Few cookies: nothing to expire.
        let few = &cookies[..MAX_STATE_COOKIES - 1];
        assert!(stale_state_cookies(few.iter().map(|(n, v)| (n.as_str(), v.as_str()))).is_empty());
    }

    #[test]
    fn eight_state_cookies_fit_the_budget() {
        let state = "A".repeat(43); // 256 bits in base64url
        let pair = format!(
            "{}={}",
            state_cookie_name(&state),
            state_cookie_value(&state, 9_999_999_999_999)
        );
        let header = vec![pair; MAX_STATE_COOKIES].join("; ");
        assert!(header.len() <= STATE_COOKIES_BUDGET, "{}", header.len());
    }

    #[test]
    fn each_login_parameter_has_a_limit() {
        let at = |param: &str, len: usize| {
            let v = Some("x".repeat(len));
            let mut r = LoginRequest::default();
            match param {
                "iss" => r.iss = v,
                "login_hint" => r.login_hint = v,
                "target_link_uri" => r.target_link_uri = v,
                "client_id" => r.client_id = v,
                "lti_message_hint" => r.lti_message_hint = v,
                "lti_deployment_id" => r.lti_deployment_id = v,
                "deployment_id" => r.deployment_id = v,
                "lti_storage_target" => r.lti_storage_target = v,
                other => panic!("{other}"),
            }
            r.check_lengths()
        };
        for (param, max) in LOGIN_PARAM_LIMITS {
            assert!(at(param, max).is_ok(), "{param} at its limit");
            match at(param, max + 1) {
                Err(e @ LoginError::ParamTooLong { .. }) => {
                    assert_eq!(e.code(), "LTI_LOGIN_PARAM_TOO_LONG");
                    assert!(e.public_message().contains(param), "{}", e.public_message());
                }
                other => panic!("{param}: {other:?}"),
            }
        }
    }
}
