//! The hand-off to the company's app: a short-lived app session token (RS256, signed
//! by the tool key, verifiable with the tool's JWKS) delivered to the landing URL.

use crate::config::{HandoffMode, ToolConfig};
use crate::jwt::sign_jwt;
use crate::launch::LaunchContext;
use crate::random::Random;
use crate::signer::{Signer, SignerError};
use serde::Serialize;

/// Name of the form field (or fragment parameter) that carries the app token.
pub const APP_TOKEN_FIELD: &str = "app_token";

/// Where and how the user goes next.
#[derive(Debug, Clone)]
pub struct Handoff {
    /// The app's landing URL.
    pub landing_url: String,
    /// The signed app session token.
    pub app_token: String,
    /// Form POST or URL fragment.
    pub mode: HandoffMode,
    /// The stable id of the user who launched.
    pub user_id: String,
}

/// Claims of the app session token.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AppClaims<'a> {
    iss: String,
    aud: &'a str,
    sub: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    /// The normalized launch context.
    lti: &'a LaunchContext,
}

/// The landing URL: `target_link_uri` when it points into the app (an allowed app
/// origin), else the platform's own landing URL, else the configured one.
pub fn landing_url(
    config: &ToolConfig,
    target_link_uri: Option<&str>,
    platform_landing: Option<&str>,
) -> String {
    if let Some(target) = target_link_uri {
        if let Ok(url) = url::Url::parse(target) {
            if config.is_app_url(&url) && !config.is_tool_url(&url) {
                return target.to_string();
            }
        }
    }
    platform_landing
        .map(str::to_string)
        .unwrap_or_else(|| config.app_landing_url.to_string())
}

/// Signs the app token for `context` and decides where it goes.
pub async fn issue(
    config: &ToolConfig,
    signer: &dyn Signer,
    random: &dyn Random,
    context: &LaunchContext,
    platform_landing: Option<&str>,
    now: i64,
) -> Result<Handoff, SignerError> {
    let claims = AppClaims {
        iss: config.issuer(),
        aud: &config.app_audience,
        sub: &context.user.id,
        iat: now,
        nbf: now,
        exp: now + config.app_token_ttl,
        jti: random.token(16),
        lti: context,
    };
    let app_token = sign_jwt(signer, &claims).await?;
    Ok(Handoff {
        landing_url: landing_url(config, context.target_link_uri.as_deref(), platform_landing),
        app_token,
        mode: config.handoff,
        user_id: context.user.id.clone(),
    })
}
