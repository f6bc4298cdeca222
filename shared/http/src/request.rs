//! Reading requests: form bodies, query strings and cookies, with limits.

use crate::HttpRequest;
use lti_core::error::{ErrorKind, Problem};
use serde::de::DeserializeOwned;
use std::collections::HashSet;

/// Largest form or JSON body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// Largest body any endpoint accepts (a deep-linking answer with many items); each
/// endpoint enforces its own limit below it.
pub const MAX_REQUEST_BODY: usize = 256 * 1024;

/// The request itself is unacceptable, before any LTI rule applies.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// The body is over the endpoint's limit, bytes.
    #[error("the request body is larger than {} KiB", .0 / 1024)]
    TooLarge(usize),
    /// A POST that is not a form (or JSON, where JSON is expected).
    #[error("the request body must be {0}")]
    UnsupportedMediaType(&'static str),
    /// The form or query string cannot be decoded.
    #[error("the request parameters cannot be read: {0}")]
    Malformed(String),
    /// A parameter appears twice; which one counts would be ambiguous.
    #[error("the parameter {0:?} appears more than once")]
    DuplicateParameter(String),
    /// The JSON body cannot be decoded.
    #[error("the JSON body is invalid: {0}")]
    InvalidJson(String),
    /// No route for this path.
    #[error("there is nothing at this address")]
    NotFound,
    /// The route exists but not for this method; `allow` lists the ones it takes
    /// (the `Allow` header of the 405, RFC 9110 §15.5.6).
    #[error("this address does not accept {method}")]
    MethodNotAllowed { method: String, allow: &'static str },
}

impl Problem for RequestError {
    fn code(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "HTTP_BODY_TOO_LARGE",
            Self::UnsupportedMediaType(_) => "HTTP_UNSUPPORTED_MEDIA_TYPE",
            Self::Malformed(_) => "HTTP_MALFORMED_REQUEST",
            Self::DuplicateParameter(_) => "HTTP_DUPLICATE_PARAMETER",
            Self::InvalidJson(_) => "HTTP_INVALID_JSON",
            Self::NotFound => "HTTP_NOT_FOUND",
            Self::MethodNotAllowed { .. } => "HTTP_METHOD_NOT_ALLOWED",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            Self::TooLarge(_) => ErrorKind::TooLarge,
            Self::NotFound => ErrorKind::NotFound,
            Self::MethodNotAllowed { .. } => ErrorKind::MethodNotAllowed,
            _ => ErrorKind::BadRequest,
        }
    }
    fn allowed_methods(&self) -> Option<&'static str> {
        match self {
            Self::MethodNotAllowed { allow, .. } => Some(allow),
            _ => None,
        }
    }
    fn public_message(&self) -> String {
        match self {
            // The parameter's name is the caller's text: logged, not shown.
            Self::DuplicateParameter(_) => "A parameter appears more than once.".into(),
            other => lti_core::error::sentence(&other.to_string()),
        }
    }
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RequestError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(bytes).map_err(|e| RequestError::Malformed(e.to_string()))?;
    let mut seen = HashSet::new();
    for (name, _) in &pairs {
        if !seen.insert(name.as_str()) {
            return Err(RequestError::DuplicateParameter(
                name.chars().take(40).collect(),
            ));
        }
    }
    let encoded =
        serde_urlencoded::to_string(&pairs).map_err(|e| RequestError::Malformed(e.to_string()))?;
    serde_urlencoded::from_str(&encoded).map_err(|e| RequestError::Malformed(e.to_string()))
}

fn media_type(request: &HttpRequest) -> String {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// The parameters of a GET (query string) or POST (form body).
pub fn params<T: DeserializeOwned>(request: &HttpRequest) -> Result<T, RequestError> {
    if request.method() == http::Method::POST {
        form(request)
    } else {
        decode(request.uri().query().unwrap_or("").as_bytes())
    }
}

/// An `application/x-www-form-urlencoded` body of at most [`MAX_BODY`] bytes.
pub fn form<T: DeserializeOwned>(request: &HttpRequest) -> Result<T, RequestError> {
    if request.body().len() > MAX_BODY {
        return Err(RequestError::TooLarge(MAX_BODY));
    }
    if media_type(request) != "application/x-www-form-urlencoded" {
        return Err(RequestError::UnsupportedMediaType(
            "an application/x-www-form-urlencoded form",
        ));
    }
    decode(request.body())
}

/// A JSON body of at most [`MAX_BODY`] bytes.
pub fn json<T: DeserializeOwned>(request: &HttpRequest) -> Result<T, RequestError> {
    json_up_to(request, MAX_BODY)
}

/// A JSON body of at most `limit` bytes.
pub fn json_up_to<T: DeserializeOwned>(
    request: &HttpRequest,
    limit: usize,
) -> Result<T, RequestError> {
    if request.body().len() > limit {
        return Err(RequestError::TooLarge(limit));
    }
    if media_type(request) != "application/json" {
        return Err(RequestError::UnsupportedMediaType("application/json"));
    }
    serde_json::from_slice(request.body()).map_err(|e| RequestError::InvalidJson(e.to_string()))
}

/// The value of cookie `name`, if the browser sent it.
pub fn cookie(request: &HttpRequest, name: &str) -> Option<String> {
    request
        .headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// True when the client asked for JSON rather than a page.
pub fn wants_json(request: &HttpRequest) -> bool {
    let accept = request
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

/// The bearer token of the `Authorization` header.
pub fn bearer(request: &HttpRequest) -> Option<&str> {
    let value = request
        .headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn post(body: &str, content_type: &str) -> HttpRequest {
        http::Request::post("/lti/launch")
            .header("content-type", content_type)
            .body(bytes::Bytes::from(body.to_string()))
            .expect("request")
    }

    #[test]
    fn a_form_is_decoded() {
        let form: HashMap<String, String> = params(&post(
            "a=1&b=x%20y",
            "application/x-www-form-urlencoded; charset=utf-8",
        ))
        .expect("form");
        assert_eq!(form["b"], "x y");
    }

    #[test]
    fn a_body_over_64_kib_is_too_large() {
        let body = format!("a={}", "x".repeat(MAX_BODY));
        let err =
            params::<HashMap<String, String>>(&post(&body, "application/x-www-form-urlencoded"))
                .expect_err("too large");
        assert_eq!(err.code(), "HTTP_BODY_TOO_LARGE");
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        let err = params::<HashMap<String, String>>(&post(
            "state=a&state=b",
            "application/x-www-form-urlencoded",
        ))
        .expect_err("duplicate");
        assert_eq!(err.code(), "HTTP_DUPLICATE_PARAMETER");
    }

    #[test]
    fn a_json_post_to_a_form_endpoint_is_refused() {
        let err = params::<HashMap<String, String>>(&post("{}", "application/json"))
            .expect_err("not a form");
        assert_eq!(err.code(), "HTTP_UNSUPPORTED_MEDIA_TYPE");
    }

    #[test]
    fn cookies_are_found_by_name_across_headers() {
        let request = http::Request::get("/")
            .header("cookie", "a=1; lti-state-xyz=xyz")
            .header("cookie", "b=2")
            .body(bytes::Bytes::new())
            .expect("request");
        assert_eq!(cookie(&request, "lti-state-xyz").as_deref(), Some("xyz"));
        assert_eq!(cookie(&request, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&request, "c"), None);
    }
}
