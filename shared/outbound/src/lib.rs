//! # lti-outbound
//!
//! Calls *to* platforms — their key sets ([`jwks`]), token endpoint, AGS, NRPS — with
//! reqwest, kept apart from `lti-http` (which turns inbound requests into calls and
//! errors into responses). Service calls go through the core's [`PlatformHttp`] port.
//!
//! Every call gets the same guard rails:
//! - a connect timeout (3 s) and a total timeout (10 s, body included);
//! - a `User-Agent` (Canvas asks for one on every call);
//! - a body cap (1 MiB): a longer answer is [`OutboundError::TooLarge`], never a
//!   truncated document;
//! - **no redirects followed**: a 3xx is handed back as the answer, and the protocol
//!   code reports it as a rejection (a redirect would otherwise carry the bearer token
//!   wherever the `Location` points);
//! - the tool's URL rules ([`UrlPolicy`]: https, no credentials, no private or
//!   link-local address; loopback only on the dev server or when opted in), checked on
//!   the URL and on every address its host resolves to;
//! - every response header kept, in order (names as the wire gave them, lowercase
//!   with HTTP/1.1 through hyper; the port matches them case-insensitively).

pub mod jwks;
mod resolver;

pub use resolver::resolve_allowed;

use async_trait::async_trait;
use lti_core::services::outbound::{
    Method, OutboundError, OutboundRequest, OutboundResponse, PlatformHttp,
};
use lti_core::url_policy::UrlPolicy;
use std::time::Duration;

/// The User-Agent of every call to a platform.
pub const USER_AGENT: &str = concat!("lti-lambda/", env!("CARGO_PKG_VERSION"));
/// Time allowed to open a connection (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for a whole call, from connecting to the last byte of the body.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest body read from a platform.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Settings of a [`ReqwestPlatformHttp`]; [`Default`] is what production uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundConfig {
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    pub max_body_bytes: usize,
    pub user_agent: String,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            connect_timeout: CONNECT_TIMEOUT,
            total_timeout: TOTAL_TIMEOUT,
            max_body_bytes: MAX_BODY_BYTES,
            user_agent: USER_AGENT.to_string(),
        }
    }
}

/// The reqwest adapter of [`PlatformHttp`].
#[derive(Debug, Clone)]
pub struct ReqwestPlatformHttp {
    client: reqwest::Client,
    max_body_bytes: usize,
    policy: UrlPolicy,
}

/// The client could not be built (the TLS backend failed to initialise).
#[derive(Debug, thiserror::Error)]
#[error("the HTTP client for platform calls cannot be built: {0}")]
pub struct BuildError(String);

impl ReqwestPlatformHttp {
    /// An adapter with the production settings that calls only where `policy` allows.
    pub fn new(policy: UrlPolicy) -> Result<Self, BuildError> {
        Self::with_config(OutboundConfig::default(), policy)
    }

    /// An adapter with `config` (tests shorten the timeouts).
    pub fn with_config(config: OutboundConfig, policy: UrlPolicy) -> Result<Self, BuildError> {
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent)
            .connect_timeout(config.connect_timeout)
            .timeout(config.total_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(resolver::PolicyResolver { policy }))
            .no_proxy()
            .build()
            .map_err(|e| BuildError(e.to_string()))?;
        Ok(Self {
            client,
            max_body_bytes: config.max_body_bytes,
            policy,
        })
    }
}

/// Checks that `url` is one the tool calls under `policy`.
pub fn check_url(policy: UrlPolicy, url: &str) -> Result<url::Url, OutboundError> {
    policy
        .check_str(url)
        .map_err(|reason| OutboundError::UrlRefused(format!("it {reason} ({})", host_of(url))))
}

/// The host of `url`, for messages (never the path or query, which may carry ids).
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "not a URL".into())
}

fn method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Delete => reqwest::Method::DELETE,
    }
}

fn failed(error: &reqwest::Error, host: &str) -> OutboundError {
    if error.is_timeout() {
        OutboundError::Timeout
    } else if error.is_connect() {
        OutboundError::Unreachable(format!("cannot connect to {host}"))
    } else {
        // reqwest's message can name the URL (with its query): keep only the kind.
        let kind = if error.is_body() || error.is_decode() {
            "the answer broke off"
        } else if error.is_request() {
            "the request could not be sent"
        } else {
            "the call failed"
        };
        OutboundError::Unreachable(format!("{kind} ({host})"))
    }
}

#[async_trait]
impl PlatformHttp for ReqwestPlatformHttp {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let url = check_url(self.policy, &request.url)?;
        // Timed for the request's metrics once the URL is allowed (a refused one never
        // left the tool). Down or overloaded: no answer, a broken one, 5xx, 408, 429.
        let started = std::time::Instant::now();
        let sent = self.send_allowed(request, url).await;
        let ok = match &sent {
            Ok(response) => response.status < 500 && !matches!(response.status, 408 | 429),
            Err(_) => false,
        };
        lti_core::observe::record_platform_call(started.elapsed(), ok);
        sent
    }
}

impl ReqwestPlatformHttp {
    /// Sends `request` to `url`, which the URL rules allow.
    async fn send_allowed(
        &self,
        request: OutboundRequest,
        url: url::Url,
    ) -> Result<OutboundResponse, OutboundError> {
        let host = url.host_str().unwrap_or_default().to_string();
        let mut builder = self.client.request(method(request.method), url);
        for (name, value) in &request.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                OutboundError::Unreachable(format!("invalid request header name {name:?}"))
            })?;
            // A value with control characters (a malformed token) is refused here, never
            // sent; the value itself is not repeated in the message.
            let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                OutboundError::Unreachable(format!("invalid value for request header {name}"))
            })?;
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let mut response = builder.send().await.map_err(|e| failed(&e, &host))?;
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        if response
            .content_length()
            .is_some_and(|len| len > self.max_body_bytes as u64)
        {
            return Err(OutboundError::TooLarge(self.max_body_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(&e, &host))? {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(OutboundError::TooLarge(self.max_body_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(OutboundResponse {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_settings_are_the_documented_ones() {
        let config = OutboundConfig::default();
        assert_eq!(config.connect_timeout, Duration::from_secs(3));
        assert_eq!(config.total_timeout, Duration::from_secs(10));
        assert_eq!(config.max_body_bytes, 1_048_576);
        assert!(config.user_agent.starts_with("lti-lambda/"));
    }

    #[test]
    fn only_urls_the_policy_allows_are_called() {
        let local = UrlPolicy::ALLOW_LOOPBACK;
        let check_url = |url: &str| check_url(local, url);
        assert!(check_url("https://lms.example.edu/api").is_ok());
        assert!(check_url("http://127.0.0.1:9/x").is_ok());
        assert!(matches!(
            super::check_url(UrlPolicy::STRICT, "http://127.0.0.1:9/x"),
            Err(OutboundError::UrlRefused(_))
        ));
        assert!(matches!(
            check_url("https://169.254.169.254/latest/meta-data"),
            Err(OutboundError::UrlRefused(_))
        ));
        assert!(matches!(
            check_url("http://lms.example.edu/api"),
            Err(OutboundError::UrlRefused(_))
        ));
        assert!(matches!(
            check_url("file:///etc/passwd"),
            Err(OutboundError::UrlRefused(_))
        ));
        assert!(matches!(
            check_url("not a url"),
            Err(OutboundError::UrlRefused(_))
        ));
    }
}
