//! Running the shared handlers under `lambda_http`: the event becomes the plain
//! `http` request the handlers take, the response goes back as API Gateway expects.

use crate::functions::{env, Clients, Function, Lookup};
use bytes::Bytes;
use lambda_http::{Body, Request, RequestExt, Response};
use lti_http::handlers::Handler;
use lti_http::observe::{self, RequestLog, TraceId};
use lti_http::{GatewayIdentity, HttpRequest, HttpResponse, RequestId};

/// The caller identity API Gateway authenticated with `AWS_IAM` (SigV4), from the
/// v2 event's `requestContext.authorizer.iam`: API Gateway writes it, a client
/// cannot (whatever headers it sends).
pub fn gateway_identity(event: &Request) -> Option<GatewayIdentity> {
    // Only HTTP API (v2) events are enabled; the other arm is for builds that add more.
    #[allow(unreachable_patterns)]
    match event.request_context_ref()? {
        lambda_http::request::RequestContext::ApiGatewayV2(context) => {
            let iam = context.authorizer.as_ref()?.iam.as_ref()?;
            Some(GatewayIdentity {
                arn: iam.user_arn.clone().filter(|arn| !arn.is_empty())?,
                account_id: iam.account_id.clone(),
            })
        }
        _ => None,
    }
}

/// The API Gateway request as the handlers see it, tagged with the Lambda request id
/// (and the IAM caller, on `AWS_IAM` routes).
pub fn to_http(event: Request) -> HttpRequest {
    let request_id = event
        .lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty());
    let trace_id = event
        .lambda_context_ref()
        .and_then(|c| c.xray_trace_id.as_deref())
        .and_then(xray_root);
    let identity = gateway_identity(&event);
    let (parts, body) = event.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(binary) => Bytes::from(binary),
        _ => Bytes::new(),
    };
    let mut request = http::Request::from_parts(parts, bytes);
    request
        .extensions_mut()
        .insert(RequestId(request_id.unwrap_or_else(|| "-".into())));
    if let Some(identity) = identity {
        request.extensions_mut().insert(identity);
    }
    if let Some(trace_id) = trace_id {
        request.extensions_mut().insert(TraceId(trace_id));
    }
    request
}

/// The `Root=` part of an X-Ray trace header (`Root=1-…;Parent=…;Sampled=1`): what
/// finds the trace in the X-Ray console.
fn xray_root(header: &str) -> Option<String> {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
        .filter(|root| !root.is_empty() && root.len() <= 64)
        .map(str::to_string)
}

/// The handler's response in the shape `lambda_http` sends back: text bodies as text,
/// anything else as binary (base64 on the wire).
pub fn from_http(response: HttpResponse) -> Response<Body> {
    let is_text = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/") || ct.starts_with("application/json"));
    let (parts, bytes) = response.into_parts();
    let body = if bytes.is_empty() {
        Body::Empty
    } else if is_text {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(e) => Body::Binary(e.into_bytes()),
        }
    } else {
        Body::Binary(bytes.to_vec())
    };
    Response::from_parts(parts, body)
}

/// JSON logs (one object per line, fields at the top level like the request line's),
/// level from `RUST_LOG` (default info). At INFO a function writes only its request
/// lines ([`lti_http::observe`]) and, for admin changes, audit lines; warnings and
/// errors name degraded dependencies. Nothing logs tokens.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// A function's whole `main`: logging, clients and handler built once at cold start,
/// then every invocation converted, answered by the shared handler and logged in one
/// request line with its metrics (namespace `LTI_METRICS_NAMESPACE`).
pub async fn run<H: Handler + 'static>(
    function_name: &'static str,
    build: impl FnOnce(&Clients, Lookup<'_>) -> Function<H>,
) -> Result<(), lambda_http::Error> {
    init_logging();
    let clients = Clients::from_env(None).await;
    let function = &build(&clients, &env);
    let log = &RequestLog::emf_from_env(function_name, env("LTI_METRICS_NAMESPACE"));
    lambda_http::run(lambda_http::service_fn(move |event: Request| async move {
        let response = observe::serve(log, to_http(event), |request| {
            function.serve(request, |handler, request| handler.handle(request))
        })
        .await;
        Ok::<_, lambda_http::Error>(from_http(response))
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::xray_root;

    #[test]
    fn the_trace_id_is_the_root_of_the_xray_header() {
        assert_eq!(
            xray_root("Root=1-6b0d984e-d273b26cf3599a369e43718b;Parent=f809e9c75a1d25a5;Sampled=1")
                .as_deref(),
            Some("1-6b0d984e-d273b26cf3599a369e43718b")
        );
        assert_eq!(xray_root("Parent=f809e9c75a1d25a5;Sampled=0"), None);
        assert_eq!(xray_root("Root=;Sampled=0"), None);
        assert_eq!(xray_root(&format!("Root={}", "x".repeat(200))), None);
    }
}
