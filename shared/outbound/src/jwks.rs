//! The reqwest adapter of the [`KeySetFetcher`] port: platform JWKS over HTTPS with a
//! timeout, a User-Agent (Canvas asks for one on every call) and a size limit.
//!
//! Every URL it connects to passes the tool's URL rules ([`UrlPolicy`], the same
//! function the admin API applies at registration): the key set URL itself (a
//! registration stored before the rules existed is not fetched either), each redirect
//! target (at most [`MAX_REDIRECTS`]; https to http, credentials, private or
//! link-local addresses are refused), and each address a hostname resolves to — the
//! connection goes only to addresses that pass, so a name pointing at 169.254.169.254
//! or 10.x is not reached either. Proxy variables (`HTTPS_PROXY`…) are ignored: a proxy
//! would resolve names where these checks cannot see.

use crate::resolver::PolicyResolver;
use async_trait::async_trait;
use lti_core::keys::{CacheControl, FetchError, FetchedKeySet, KeySetFetcher};
use lti_core::url_policy::UrlPolicy;
use std::sync::Arc;
use std::time::Duration;

pub use crate::USER_AGENT;
/// Largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most redirects followed for one fetch.
pub const MAX_REDIRECTS: usize = 3;

/// Fetches JWKS documents with reqwest.
#[derive(Debug, Clone)]
pub struct HttpKeySetFetcher {
    client: reqwest::Client,
    policy: UrlPolicy,
}

/// A redirect the URL rules refuse; its message names the rule, not the URL.
#[derive(Debug, thiserror::Error)]
#[error("redirected to a URL the registration rules refuse: it {0}")]
struct RedirectRefused(String);

impl HttpKeySetFetcher {
    /// A fetcher with a 5 s timeout that connects only where `policy` allows.
    pub fn new(policy: UrlPolicy) -> Result<Self, reqwest::Error> {
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(RedirectRefused(format!(
                    "is more than {MAX_REDIRECTS} redirects away"
                )));
            }
            match policy.check(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(rule) => attempt.error(RedirectRefused(rule)),
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .redirect(redirects)
            .dns_resolver(Arc::new(PolicyResolver { policy }))
            .no_proxy()
            .build()?;
        Ok(Self { client, policy })
    }
}

/// The innermost message of an error chain.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[async_trait]
impl KeySetFetcher for HttpKeySetFetcher {
    async fn fetch(&self, url: &str) -> Result<FetchedKeySet, FetchError> {
        if let Err(rule) = self.policy.check_str(url) {
            // Refused before leaving the tool: not a platform call.
            return Err(FetchError::new(
                url,
                format!("the key set URL is refused by the URL rules: it {rule}"),
            ));
        }
        // Any unusable answer counts against the platform: without its keys, its
        // launches fail. The key set is read (and its keys checked) by the caller; a
        // body that is not even a JSON object with `keys` is a failed call here.
        let started = std::time::Instant::now();
        let fetched = self.fetch_allowed(url).await;
        let usable = fetched.as_ref().is_ok_and(|set| {
            serde_json::from_slice::<serde_json::Value>(&set.body)
                .is_ok_and(|document| document["keys"].is_array())
        });
        lti_core::observe::record_platform_call(started.elapsed(), usable);
        fetched
    }
}

impl HttpKeySetFetcher {
    /// Fetches `url`, which the URL rules allow.
    async fn fetch_allowed(&self, url: &str) -> Result<FetchedKeySet, FetchError> {
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                if e.is_redirect() {
                    // A platform that redirects somewhere refused is not "down".
                    FetchError::new(url, root_cause(&e))
                } else if e.is_timeout() {
                    FetchError::transient(url, "timed out")
                } else {
                    FetchError::transient(url, root_cause(&e.without_url()))
                }
            })?;
        let status = response.status();
        if !status.is_success() {
            let reason = format!("HTTP status {}", status.as_u16());
            // 5xx, 408 and 429: the endpoint is down or overloaded, not wrong.
            return Err(
                if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
                    FetchError::transient(url, reason)
                } else {
                    FetchError::new(url, reason)
                },
            );
        }
        let headers = response.headers();
        let cache_control = CacheControl::parse(
            headers
                .get_all(reqwest::header::CACHE_CONTROL)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        );
        let age = headers
            .get(reqwest::header::AGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok());
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| FetchError::transient(url, root_cause(&e.without_url())))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::new(url, "the document is larger than 256 KiB"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchedKeySet::new(body, &cache_control, age))
    }
}
