//! Tool configuration, read once at cold start into a typed [`ToolConfig`].
//!
//! A missing or invalid variable is a [`ConfigError`] that names it; the functions
//! then answer every request with 503 and that sentence instead of panicking.

use crate::error::{ErrorKind, Problem, Secret};
use crate::url_policy::UrlPolicy;
use url::Url;

/// Paths of the tool's endpoints, relative to [`ToolConfig::base_url`].
pub mod paths {
    /// OIDC login initiation.
    pub const LOGIN: &str = "/lti/login";
    /// The redirect URI: where platforms post the id_token.
    pub const LAUNCH: &str = "/lti/launch";
    /// The tool's public keys.
    pub const JWKS: &str = "/.well-known/jwks.json";
    /// The tool's public keys, second address.
    pub const JWKS_ALT: &str = "/lti/jwks";
    /// The values a platform admin pastes into the LMS.
    pub const CONFIG: &str = "/lti/config";
    /// Platform registrations (admin API).
    pub const ADMIN_PLATFORMS: &str = "/admin/platforms";
    /// The OpenAPI document of the app-facing API.
    pub const OPENAPI: &str = "/lti/services/openapi.json";
    /// Deep-linking responses (services).
    pub const DEEP_LINK: &str = "/lti/deep-link";
    /// Service keys of the app's backend (admin API).
    pub const ADMIN_SERVICE_KEYS: &str = "/admin/service-keys";
    /// The Canvas developer-key JSON alone (public: Canvas fetches it by URL).
    pub const CONFIG_CANVAS: &str = "/lti/config/canvas.json";
}

/// How the admin API knows its callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminAuth {
    /// `Authorization: Bearer <LTI_ADMIN_TOKEN>`.
    #[default]
    Token,
    /// API Gateway authorizes `/admin/*` with `AWS_IAM` (SigV4) and the function
    /// trusts the caller identity in the request context; no token is accepted.
    Iam,
}

/// How the app session token reaches the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffMode {
    /// An auto-submitted form POST of `app_token` to the landing URL (default).
    FormPost,
    /// A redirect to the landing URL with `#app_token=…` in the fragment.
    Fragment,
}

/// The tool's settings.
#[derive(Debug, Clone)]
pub struct ToolConfig {
    /// Public base URL of the tool, without a trailing slash, e.g.
    /// `https://abc.execute-api.us-east-1.amazonaws.com` or `http://127.0.0.1:3000`.
    pub base_url: Url,
    /// Where launched users land by default (the company's app).
    pub app_landing_url: Url,
    /// Where deep-linking requests land: the app's content picker (default: the
    /// landing URL).
    pub app_deep_link_url: Option<Url>,
    /// `aud` of the app session token.
    pub app_audience: String,
    /// Origins (scheme://host[:port]) of the app that a `target_link_uri` may point to.
    pub allowed_app_origins: Vec<String>,
    /// How the app token is delivered.
    pub handoff: HandoffMode,
    /// Lifetime of the app session token, seconds.
    pub app_token_ttl: i64,
    /// Lifetime of a login state (and its nonce), seconds.
    pub state_ttl: i64,
    /// Bearer token for the admin API; `None` disables it (in token mode).
    pub admin_token: Option<Secret>,
    /// Token or AWS IAM (`LTI_ADMIN_AUTH`).
    pub admin_auth: AdminAuth,
    /// Platform URLs on loopback hosts (127.0.0.1, ::1, localhost) are accepted and
    /// fetched: always on the dev server; on Lambda only with the explicit opt-in
    /// `LTI_INSECURE_ALLOW_LOOPBACK_URLS=true` (local end-to-end runs).
    pub insecure_allow_loopback_urls: bool,
}

/// A configuration variable is missing or invalid.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the tool is not configured: {variable} {problem}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl Problem for ConfigError {
    fn code(&self) -> &'static str {
        "LTI_NOT_CONFIGURED"
    }
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
}

fn missing(variable: &'static str) -> ConfigError {
    ConfigError {
        variable,
        problem: "is not set".into(),
    }
}

fn invalid(variable: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.into(),
    }
}

/// `scheme://host[:port]` of a URL, the unit the allow-lists compare.
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn parse_url(variable: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim())
        .map_err(|e| invalid(variable, format!("is not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err(invalid(variable, "must be an http(s) URL with a host"));
    }
    Ok(url)
}

impl ToolConfig {
    /// Reads the configuration through `var` (usually `std::env::var`).
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `LTI_BASE_URL` | public base URL of the tool | required |
    /// | `LTI_APP_LANDING_URL` | where users land | required |
    /// | `LTI_APP_AUDIENCE` | `aud` of the app token | landing URL's origin |
    /// | `LTI_ALLOWED_APP_ORIGINS` | comma-separated app origins | none |
    /// | `LTI_HANDOFF_MODE` | `form_post` or `fragment` | `form_post` |
    /// | `LTI_APP_TOKEN_TTL_SECONDS` | app token lifetime | 3600 |
    /// | `LTI_STATE_TTL_SECONDS` | login state lifetime | 600 |
    /// | `LTI_ADMIN_TOKEN` | admin API bearer token (≥ 32 chars) | admin API off |
    /// | `LTI_ADMIN_AUTH` | `token`, or `iam` (API Gateway `AWS_IAM` on `/admin/*`) | `token` |
    /// | `LTI_INSECURE_ALLOW_LOOPBACK_URLS` | `true` accepts loopback platform URLs | `false` |
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let mut base_url = parse_url(
            "LTI_BASE_URL",
            &get("LTI_BASE_URL").ok_or_else(|| missing("LTI_BASE_URL"))?,
        )?;
        let trimmed = base_url.path().trim_end_matches('/').to_string();
        base_url.set_path(&trimmed);
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(invalid(
                "LTI_BASE_URL",
                "must not have a query or a fragment",
            ));
        }
        let app_landing_url = parse_url(
            "LTI_APP_LANDING_URL",
            &get("LTI_APP_LANDING_URL").ok_or_else(|| missing("LTI_APP_LANDING_URL"))?,
        )?;
        let app_audience = get("LTI_APP_AUDIENCE").unwrap_or_else(|| origin_of(&app_landing_url));
        let app_deep_link_url = get("LTI_APP_DEEP_LINK_URL")
            .map(|v| parse_url("LTI_APP_DEEP_LINK_URL", &v))
            .transpose()?;
        let mut allowed_app_origins = Vec::new();
        if let Some(list) = get("LTI_ALLOWED_APP_ORIGINS") {
            for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let url = parse_url("LTI_ALLOWED_APP_ORIGINS", item)?;
                allowed_app_origins.push(origin_of(&url));
            }
        }
        if let Some(url) = &app_deep_link_url {
            let origin = origin_of(url);
            if origin != origin_of(&app_landing_url) && !allowed_app_origins.contains(&origin) {
                return Err(invalid(
                    "LTI_APP_DEEP_LINK_URL",
                    "must be on the landing URL's origin or one of LTI_ALLOWED_APP_ORIGINS (it receives app tokens)",
                ));
            }
        }
        let handoff = match get("LTI_HANDOFF_MODE").as_deref().map(str::trim) {
            None | Some("form_post") => HandoffMode::FormPost,
            Some("fragment") => HandoffMode::Fragment,
            Some(other) => {
                return Err(invalid(
                    "LTI_HANDOFF_MODE",
                    format!("must be form_post or fragment, not {other:?}"),
                ))
            }
        };
        let seconds = |name: &'static str, default: i64, max: i64| -> Result<i64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<i64>() {
                    Ok(n) if (30..=max).contains(&n) => Ok(n),
                    _ => Err(invalid(
                        name,
                        format!("must be a whole number of seconds from 30 to {max}"),
                    )),
                },
            }
        };
        let app_token_ttl = seconds("LTI_APP_TOKEN_TTL_SECONDS", 3600, 86_400)?;
        let state_ttl = seconds("LTI_STATE_TTL_SECONDS", 600, 3600)?;
        let admin_token = match get("LTI_ADMIN_TOKEN") {
            None => None,
            Some(t) if t.trim().len() >= 32 => Some(Secret::new(t.trim())),
            Some(_) => {
                return Err(invalid(
                    "LTI_ADMIN_TOKEN",
                    "must be at least 32 characters long",
                ))
            }
        };
        let admin_auth = match get("LTI_ADMIN_AUTH").as_deref().map(str::trim) {
            None | Some("token") => AdminAuth::Token,
            Some("iam") => AdminAuth::Iam,
            Some(other) => {
                return Err(invalid(
                    "LTI_ADMIN_AUTH",
                    format!("must be token or iam, not {other:?}"),
                ))
            }
        };
        let insecure_allow_loopback_urls = match get("LTI_INSECURE_ALLOW_LOOPBACK_URLS")
            .map(|v| v.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                return Err(invalid(
                    "LTI_INSECURE_ALLOW_LOOPBACK_URLS",
                    "must be true or false",
                ))
            }
        };
        Ok(Self {
            base_url,
            app_landing_url,
            app_deep_link_url,
            app_audience,
            allowed_app_origins,
            handoff,
            app_token_ttl,
            state_ttl,
            admin_token,
            admin_auth,
            insecure_allow_loopback_urls,
        })
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The absolute URL of one of the tool's [`paths`].
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url.as_str().trim_end_matches('/'), path)
    }

    /// The redirect URI platforms post id_tokens to.
    pub fn launch_url(&self) -> String {
        self.url(paths::LAUNCH)
    }

    /// The tool's issuer for tokens it signs: its base URL.
    pub fn issuer(&self) -> String {
        self.base_url.as_str().trim_end_matches('/').to_string()
    }

    /// True when `url` is on this tool: same origin, and the base path itself or a
    /// path below it (`/prod` covers `/prod/lti/launch`, never `/production`).
    pub fn is_tool_url(&self, url: &Url) -> bool {
        let base = self.base_url.path().trim_end_matches('/');
        origin_of(url) == origin_of(&self.base_url)
            && url
                .path()
                .strip_prefix(base)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// The rules for platform URLs: at registration and for every URL the tool fetches.
    pub fn url_policy(&self) -> UrlPolicy {
        UrlPolicy::new(self.insecure_allow_loopback_urls)
    }

    /// True when `url` is on one of the allowed app origins or the landing URL's origin.
    pub fn is_app_url(&self, url: &Url) -> bool {
        let origin = origin_of(url);
        origin == origin_of(&self.app_landing_url) || self.allowed_app_origins.contains(&origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn a_missing_base_url_is_named_in_the_error() {
        let err = ToolConfig::from_lookup(lookup(&[("LTI_APP_LANDING_URL", "https://app")]))
            .expect_err("must fail");
        assert_eq!(err.variable, "LTI_BASE_URL");
        assert!(err.to_string().contains("LTI_BASE_URL is not set"));
    }

    #[test]
    fn an_invalid_handoff_mode_is_rejected_with_the_allowed_values() {
        let err = ToolConfig::from_lookup(lookup(&[
            ("LTI_BASE_URL", "https://tool.example"),
            ("LTI_APP_LANDING_URL", "https://app.example/lti"),
            ("LTI_HANDOFF_MODE", "query"),
        ]))
        .expect_err("must fail");
        assert_eq!(err.variable, "LTI_HANDOFF_MODE");
        assert!(err.problem.contains("form_post or fragment"));
    }

    #[test]
    fn defaults_are_applied_and_the_base_url_loses_its_trailing_slash() {
        let config = ToolConfig::from_lookup(lookup(&[
            ("LTI_BASE_URL", "https://tool.example/prod/"),
            ("LTI_APP_LANDING_URL", "https://app.example/lti"),
            (
                "LTI_ALLOWED_APP_ORIGINS",
                "https://a.example, https://b.example:8443/x",
            ),
        ]))
        .expect("valid");
        assert_eq!(config.launch_url(), "https://tool.example/prod/lti/launch");
        assert_eq!(config.app_audience, "https://app.example");
        assert_eq!(config.handoff, HandoffMode::FormPost);
        assert_eq!(config.app_token_ttl, 3600);
        assert_eq!(
            config.allowed_app_origins,
            vec!["https://a.example", "https://b.example:8443"]
        );
        assert!(config.admin_token.is_none());
        assert!(!config.insecure_allow_loopback_urls, "loopback is opt-in");
        assert!(!config.url_policy().allows_loopback());
    }

    #[test]
    fn loopback_platform_urls_are_an_explicit_opt_in() {
        let with = |value: &str| {
            ToolConfig::from_lookup(lookup(&[
                ("LTI_BASE_URL", "https://tool.example"),
                ("LTI_APP_LANDING_URL", "https://app.example/lti"),
                ("LTI_INSECURE_ALLOW_LOOPBACK_URLS", value),
            ]))
        };
        assert!(with("true").expect("valid").url_policy().allows_loopback());
        assert!(!with("false").expect("valid").url_policy().allows_loopback());
        let err = with("yes").expect_err("must fail");
        assert_eq!(err.variable, "LTI_INSECURE_ALLOW_LOOPBACK_URLS");
    }

    #[test]
    fn a_short_admin_token_is_refused() {
        let err = ToolConfig::from_lookup(lookup(&[
            ("LTI_BASE_URL", "https://tool.example"),
            ("LTI_APP_LANDING_URL", "https://app.example/lti"),
            ("LTI_ADMIN_TOKEN", "short"),
        ]))
        .expect_err("must fail");
        assert_eq!(err.variable, "LTI_ADMIN_TOKEN");
    }

    #[test]
    fn the_tool_path_prefix_stops_at_a_path_boundary() {
        let config = ToolConfig::from_lookup(lookup(&[
            ("LTI_BASE_URL", "https://tool.example/prod"),
            ("LTI_APP_LANDING_URL", "https://app.example/lti"),
        ]))
        .expect("valid");
        let url = |u: &str| Url::parse(u).expect("url");
        assert!(config.is_tool_url(&url("https://tool.example/prod/lti/launch")));
        assert!(config.is_tool_url(&url("https://tool.example/prod")));
        assert!(!config.is_tool_url(&url("https://tool.example/production/lti/launch")));
        assert!(!config.is_tool_url(&url("https://tool.example/lti/launch")));
        assert!(!config.is_tool_url(&url("https://other.example/prod/lti/launch")));
    }
}
