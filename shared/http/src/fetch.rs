//! The reqwest adapter of the [`KeySetFetcher`] port: platform JWKS over HTTPS with a
//! timeout, a User-Agent (Canvas asks for one on every call) and a size limit.

use async_trait::async_trait;
use lti_core::keys::{max_age_of, FetchError, FetchedKeySet, KeySetFetcher};
use std::time::Duration;

/// The User-Agent of every outgoing call.
pub const USER_AGENT: &str = concat!("lti-lambda/", env!("CARGO_PKG_VERSION"));
/// Largest JWKS document accepted.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Fetches JWKS documents with reqwest.
#[derive(Debug, Clone)]
pub struct HttpKeySetFetcher {
    client: reqwest::Client,
}

impl HttpKeySetFetcher {
    /// A fetcher with a 5 s timeout.
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .build()?;
        Ok(Self { client })
    }

    /// A fetcher on an existing client.
    pub fn with_client(client: reqwest::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl KeySetFetcher for HttpKeySetFetcher {
    async fn fetch(&self, url: &str) -> Result<FetchedKeySet, FetchError> {
        let fail = |reason: String| FetchError {
            url: url.to_string(),
            reason,
        };
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                fail(if e.is_timeout() {
                    "timed out".into()
                } else {
                    e.to_string()
                })
            })?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP status {}", response.status().as_u16())));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age_of);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| fail(e.to_string()))? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(fail("the document is larger than 256 KiB".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchedKeySet { body, max_age })
    }
}
