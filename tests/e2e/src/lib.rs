//! A local stand-in for API Gateway in front of `cargo lambda watch`: it routes each
//! tool path to its function (as `template.yaml` does) and serves the demo platform
//! and the demo app beside them, so a browser sees one origin, as on AWS.

pub mod aws_proxy;

use lti_dev::app::DemoApp;
use lti_dev::platform::DemoPlatform;
use std::sync::Arc;

/// Which function serves `path`, as the HttpApi routes of template.yaml say.
pub fn function_for(path: &str) -> Option<&'static str> {
    match path {
        "/lti/login" => Some("login"),
        "/lti/launch" => Some("launch"),
        "/.well-known/jwks.json" | "/lti/jwks" => Some("jwks"),
        "/lti/config" | "/lti/config/canvas.json" | "/lti/deep-link" | "/lti/register" => {
            Some("services")
        }
        p if [
            "/admin/",
            "/services/",
            "/lti/ags/",
            "/lti/nrps/",
            "/lti/services/",
        ]
        .iter()
        .any(|prefix| p.starts_with(prefix)) =>
        {
            Some("services")
        }
        _ => None,
    }
}

/// True for `cargo lambda watch`'s own error answer (its emulator's RFC 7807 body,
/// `"type":"https://httpstatuses.com/500"`), which the tool never sends (its errors
/// are `{"error":{"code":…}}`). The emulator answers it, now and then, for an
/// invocation whose function logged a 200 request line: a flake of the stand-in, not
/// of the tool. Reads (GET) that get it are made once more, and say so.
pub fn is_emulator_error(status: u16, body: &[u8]) -> bool {
    status == 500
        && serde_json::from_slice::<serde_json::Value>(body)
            .is_ok_and(|v| v["type"] == "https://httpstatuses.com/500" && v.get("error").is_none())
}

struct State {
    lambda_url: String,
    client: reqwest::Client,
    platform: Arc<DemoPlatform>,
    app: DemoApp,
}

/// Starts the gateway on `listener`; requests for tool paths go to
/// `<lambda_url>/lambda-url/<function><path>`.
pub fn serve(
    listener: tokio::net::TcpListener,
    lambda_url: String,
    platform: Arc<DemoPlatform>,
    app: DemoApp,
) -> tokio::task::JoinHandle<()> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default();
    let state = Arc::new(State {
        lambda_url,
        client,
        platform,
        app,
    });
    let router = axum::Router::new().fallback(route).with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })
}

async fn route(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let request = http::Request::from_parts(parts, body);
    let path = request.uri().path().to_string();
    let response = if path == "/platform" || path.starts_with("/platform/") {
        state.platform.handle(request).await
    } else if path == "/app" || path.starts_with("/app/") {
        state.app.handle(request).await
    } else if let Some(function) = function_for(&path) {
        forward(&state, function, request).await
    } else {
        let mut not_found = http::Response::new(bytes::Bytes::from_static(b"no route"));
        *not_found.status_mut() = http::StatusCode::NOT_FOUND;
        not_found
    };
    response.map(axum::body::Body::from)
}

/// An upstream answer, read whole.
async fn read(
    sent: reqwest::Result<reqwest::Response>,
) -> reqwest::Result<(http::StatusCode, http::HeaderMap, bytes::Bytes)> {
    let upstream = sent?;
    let status = upstream.status();
    let headers = upstream.headers().clone();
    Ok((status, headers, upstream.bytes().await?))
}

async fn forward(
    state: &State,
    function: &str,
    request: lti_http::HttpRequest,
) -> lti_http::HttpResponse {
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let url = format!(
        "{}/lambda-url/{function}{}{query}",
        state.lambda_url,
        request.uri().path()
    );
    let mut outgoing = state.client.request(request.method().clone(), &url);
    for name in [
        "cookie",
        "content-type",
        "accept",
        "authorization",
        "x-api-key",
    ] {
        for value in request.headers().get_all(name) {
            outgoing = outgoing.header(name, value);
        }
    }
    let retry = outgoing.try_clone();
    let mut answer = read(outgoing.body(request.body().clone()).send().await).await;
    if request.method() == http::Method::GET {
        if let (Ok((status, _, body)), Some(again)) = (&answer, retry) {
            if is_emulator_error(status.as_u16(), body) {
                eprintln!(
                    "lti-gateway: cargo lambda's emulator answered its own 500 to GET {}; asking once more",
                    request.uri().path()
                );
                answer = read(again.send().await).await;
            }
        }
    }
    let mut response = http::Response::new(bytes::Bytes::new());
    match answer {
        Ok((status, headers, body)) => {
            *response.status_mut() = status;
            for (name, value) in &headers {
                if !matches!(
                    name.as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                ) {
                    response.headers_mut().append(name.clone(), value.clone());
                }
            }
            *response.body_mut() = body;
        }
        Err(e) => {
            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
            *response.body_mut() = bytes::Bytes::from(format!("the function did not answer: {e}"));
        }
    }
    response
}

#[cfg(test)]
mod emulator_tests {
    use super::is_emulator_error;

    #[test]
    fn only_the_emulators_own_500_is_taken_for_a_flake() {
        let emulator =
            br#"{"type":"https://httpstatuses.com/500","status":500,"title":"Internal Server Error"}"#;
        assert!(is_emulator_error(500, emulator));
        // The tool's own 500s are never retried away.
        let tool = br#"{"error":{"code":"HTTP_ENCODING_FAILED","message":"The response could not be encoded."}}"#;
        assert!(!is_emulator_error(500, tool));
        assert!(!is_emulator_error(502, emulator));
        assert!(!is_emulator_error(500, b"Internal Server Error"));
    }
}
