//! The hand-off to the company's app: a short-lived app session token (RS256, signed
//! by the tool key, verifiable with the tool's JWKS) delivered to the landing URL.
//!
//! In two steps, so that everything that can fail is done before the launch consumes
//! its state: [`prepare`] (pure: landing URL, claims, encoding) before, then
//! [`Prepared::sign`] after.

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
    /// The app's landing URL (always a valid, normalized absolute URL).
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

/// The landing URL, normalized: `target_link_uri` when it points into the app (an
/// allowed app origin: the link itself names content, the most specific choice),
/// else the matched routing rule's landing URL, else the platform's own landing URL,
/// else the configured one. A URL that does not parse, or is not (or no longer) on
/// an allowed app origin, is never handed a token: the next one is used.
pub fn landing_url(
    config: &ToolConfig,
    target_link_uri: Option<&str>,
    route_landing: Option<&str>,
    platform_landing: Option<&str>,
) -> String {
    if let Some(url) = target_link_uri.and_then(|t| url::Url::parse(t).ok()) {
        if config.is_app_url(&url) && !config.is_tool_url(&url) {
            return url.into();
        }
    }
    // A rule's or registration's landing URL receives app tokens: it must still be on
    // the app's origins (one saved before the origins changed falls through).
    [route_landing, platform_landing]
        .into_iter()
        .flatten()
        .filter_map(|l| url::Url::parse(l).ok())
        .find(|url| config.is_app_url(url))
        .map(String::from)
        .unwrap_or_else(|| config.app_landing_url.to_string())
}

/// An app token ready to be signed: claims encoded, destination decided.
#[derive(Debug, Clone)]
pub struct Prepared {
    claims: serde_json::Value,
    landing_url: String,
    mode: HandoffMode,
    user_id: String,
}

/// Builds the app token's claims for `context` and decides where it goes. Fails only
/// if the claims cannot be encoded; call it before consuming the launch's state.
pub fn prepare(
    config: &ToolConfig,
    random: &dyn Random,
    context: &LaunchContext,
    route_landing: Option<&str>,
    platform_landing: Option<&str>,
    now: i64,
) -> Result<Prepared, SignerError> {
    let claims = AppClaims {
        iss: config.issuer(),
        aud: &config.app_audience,
        sub: &context.user.id,
        iat: now,
        nbf: now,
        exp: now.saturating_add(config.app_token_ttl),
        jti: if context.launch_id.is_empty() {
            random.token(16)
        } else {
            context.launch_id.clone()
        },
        lti: context,
    };
    let claims = serde_json::to_value(&claims)
        .map_err(|e| SignerError::BadKey(format!("cannot encode the app token: {e}")))?;
    // A deep-linking request goes to the app's content picker when it has one.
    let picker = config
        .app_deep_link_url
        .as_ref()
        .filter(|_| context.message_type == crate::launch::claims::DEEP_LINKING_REQUEST);
    Ok(Prepared {
        claims,
        landing_url: match picker {
            Some(url) => url.to_string(),
            None => landing_url(
                config,
                context.target_link_uri.as_deref(),
                route_landing,
                platform_landing,
            ),
        },
        mode: config.handoff,
        user_id: context.user.id.clone(),
    })
}

impl Prepared {
    /// Signs the app token with the tool key.
    pub async fn sign(self, signer: &dyn Signer) -> Result<Handoff, SignerError> {
        let app_token = sign_jwt(signer, &self.claims).await?;
        Ok(Handoff {
            landing_url: self.landing_url,
            app_token,
            mode: self.mode,
            user_id: self.user_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ToolConfig {
        ToolConfig::from_lookup(|name| match name {
            "LTI_BASE_URL" => Some("https://tool.example".into()),
            "LTI_APP_LANDING_URL" => Some("https://app.example/lti".into()),
            "LTI_ALLOWED_APP_ORIGINS" => Some("https://other.example".into()),
            _ => None,
        })
        .expect("config")
    }

    #[test]
    fn a_stored_landing_url_off_the_app_origins_is_never_handed_a_token() {
        let config = config();
        assert_eq!(
            landing_url(&config, None, None, Some("https://other.example/start")),
            "https://other.example/start"
        );
        assert_eq!(
            landing_url(&config, None, None, Some("https://evil.example/steal")),
            "https://app.example/lti"
        );
        assert_eq!(
            landing_url(&config, Some("https://evil.example/x"), None, None),
            "https://app.example/lti"
        );
    }

    #[test]
    fn a_routing_rule_lands_before_the_registration_and_after_a_target_in_the_app() {
        let config = config();
        let route = Some("https://other.example/sales");
        let platform = Some("https://app.example/tb");
        assert_eq!(
            landing_url(&config, None, route, platform),
            "https://other.example/sales"
        );
        assert_eq!(
            landing_url(
                &config,
                Some("https://tool.example/lti/launch"),
                route,
                platform
            ),
            "https://other.example/sales",
            "a link to the tool itself names no content"
        );
        assert_eq!(
            landing_url(&config, Some("https://app.example/item/9"), route, platform),
            "https://app.example/item/9",
            "a link into the app names its content"
        );
        assert_eq!(
            landing_url(&config, None, Some("https://evil.example/x"), platform),
            "https://app.example/tb",
            "a rule off the allowed origins never gets a token"
        );
    }
}
