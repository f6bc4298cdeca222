//! The port for calls *to* platforms (token endpoint, AGS, NRPS): plain requests and
//! responses, so the protocol code can be tested with a closure and the adapter
//! (reqwest, in its own crate) can change without touching it.

use async_trait::async_trait;

/// HTTP methods the services use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// A request to a platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub method: Method,
    /// Absolute URL, as the platform gave it (query kept).
    pub url: String,
    /// Header names as sent (the adapter adds `User-Agent`).
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl OutboundRequest {
    /// A request without headers or body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Sets the body and its `Content-Type`.
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.headers
            .push(("Content-Type".to_string(), content_type.to_string()));
        self.body = Some(body);
        self
    }

    /// The value of header `name` (case-insensitive), if set.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A platform's answer (any status: the caller decides what a status means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    pub status: u16,
    /// Every header, in order; names compared case-insensitively.
    pub headers: Vec<(String, String)>,
    /// The body, at most the adapter's size cap.
    pub body: Vec<u8>,
}

impl OutboundResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (case-insensitive), e.g. several `Link` headers.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A call that got no usable HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// No answer within the time limit.
    #[error("the platform did not answer in time")]
    Timeout,
    /// Connection refused, DNS, TLS…
    #[error("the platform could not be reached: {0}")]
    Unreachable(String),
    /// The answer is larger than the cap (bytes).
    #[error("the platform's answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The URL (or a redirect) breaks the tool's URL rules (https, no private hosts).
    #[error("the platform URL is not allowed: {0}")]
    UrlRefused(String),
}

/// Sends requests to platforms.
#[async_trait]
pub trait PlatformHttp: Send + Sync {
    /// Sends `request`; any HTTP status is an `Ok` answer.
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError>;
}
