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
        "/lti/config" | "/lti/config/canvas.json" | "/lti/deep-link" => Some("services"),
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
    let result = outgoing.body(request.body().clone()).send().await;
    let mut response = http::Response::new(bytes::Bytes::new());
    match result {
        Ok(upstream) => {
            *response.status_mut() = upstream.status();
            for (name, value) in upstream.headers() {
                if !matches!(
                    name.as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                ) {
                    response.headers_mut().append(name.clone(), value.clone());
                }
            }
            *response.body_mut() = upstream.bytes().await.unwrap_or_default();
        }
        Err(e) => {
            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
            *response.body_mut() = bytes::Bytes::from(format!("the function did not answer: {e}"));
        }
    }
    response
}
