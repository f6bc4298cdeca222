//! The one place where errors become responses, and the response builders.

use crate::observe::Refusal;
use crate::pages;
use crate::request::wants_json;
use crate::{request_id, HttpRequest, HttpResponse};
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use lti_core::error::{ErrorKind, Problem};
use serde::Serialize;

/// The status code of each kind of error.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
        ErrorKind::SecurityCheck => StatusCode::UNAUTHORIZED,
        ErrorKind::NotAllowed => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Replay => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::PlatformFailed => StatusCode::BAD_GATEWAY,
        ErrorKind::PlatformTimeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<serde_json::Value>,
}

/// Answers `problem`: JSON when the client asked for it, else an HTML page. The
/// detail goes to the request's log line (never a token: errors carry none), the
/// user gets one sentence, the code and the request id.
pub fn problem(request: &HttpRequest, problem: &dyn Problem) -> HttpResponse {
    problem_with_fields(request, problem, None)
}

/// [`problem`] as JSON whatever the client accepts (APIs), with a list of invalid
/// fields if there are any.
pub fn api_problem(
    request: &HttpRequest,
    problem: &dyn Problem,
    fields: Option<serde_json::Value>,
) -> HttpResponse {
    problem_as(request, problem, fields, true)
}

fn problem_with_fields(
    request: &HttpRequest,
    problem: &dyn Problem,
    fields: Option<serde_json::Value>,
) -> HttpResponse {
    let as_json = wants_json(request);
    problem_as(request, problem, fields, as_json)
}

fn problem_as(
    request: &HttpRequest,
    problem: &dyn Problem,
    fields: Option<serde_json::Value>,
    as_json: bool,
) -> HttpResponse {
    let status = status_of(problem.kind());
    let request_id = request_id(request);
    let message = problem.public_message();
    let retry_after = problem.retry_after();
    let mut response = if as_json {
        let body = ErrorBody {
            error: ErrorDetail {
                code: problem.code(),
                message: &message,
                request_id: &request_id,
                fields,
            },
        };
        json(status, &body)
    } else {
        html(
            status,
            pages::error_page(status.as_u16(), problem.code(), &message, &request_id),
        )
    };
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(allow) = problem.allowed_methods() {
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    mark_refused(&mut response, problem);
    response
}

/// Leaves `problem`'s code and detail on `response` for its request line (see
/// [`crate::observe`]): refusals are logged once, in that line, not here.
pub fn mark_refused(response: &mut HttpResponse, problem: &dyn Problem) {
    response.extensions_mut().insert(Refusal {
        code: problem.code(),
        detail: problem.to_string(),
    });
}

fn base(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = http::Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// An HTML page with the tool's security headers.
pub fn html(status: StatusCode, page: String) -> HttpResponse {
    let mut response = base(status, "text/html; charset=utf-8", page);
    if let Ok(csp) = HeaderValue::from_str(&pages::content_security_policy()) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// A JSON body.
pub fn json<T: Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    match serde_json::to_vec(value) {
        Ok(body) => base(status, "application/json", body),
        Err(_) => base(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            r#"{"error":{"code":"HTTP_ENCODING_FAILED","message":"The response could not be encoded."}}"#,
        ),
    }
}

/// A body that already is JSON text.
pub fn json_text(status: StatusCode, body: &'static str) -> HttpResponse {
    base(status, "application/json", body)
}

/// A 302 redirect.
pub fn redirect(location: &str) -> HttpResponse {
    let mut response = base(StatusCode::FOUND, "text/plain; charset=utf-8", Bytes::new());
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => base(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            "The redirect address is not a valid header value.",
        ),
    }
}

/// Adds `frame-ancestors` to the response's CSP: the page may be framed by `sources`
/// (and the tool itself), nothing else. See [`pages::frame_ancestors`].
pub fn allow_framing_by(response: &mut HttpResponse, sources: &[String]) {
    let policy = match response
        .headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
    {
        Some(csp) => format!("{csp}; {}", pages::frame_ancestors(sources)),
        None => pages::frame_ancestors(sources),
    };
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
}
