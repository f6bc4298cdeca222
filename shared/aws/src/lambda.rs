//! Running the shared handlers under `lambda_http`: the event becomes the plain
//! `http` request the handlers take, the response goes back as API Gateway expects.

use crate::functions::{env, Clients, Function, Lookup};
use bytes::Bytes;
use lambda_http::{Body, Request, RequestExt, Response};
use lti_http::handlers::Handler;
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
    request
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

/// JSON logs with the Lambda request id (tracing), level from `RUST_LOG` (default info).
/// Nothing logs tokens: handlers log codes, issuers and user ids only.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// A function's whole `main`: logging, clients and handler built once at cold start,
/// then every invocation converted and answered by the shared handler.
pub async fn run<H: Handler + 'static>(
    build: impl FnOnce(&Clients, Lookup<'_>) -> Function<H>,
) -> Result<(), lambda_http::Error> {
    init_logging();
    let clients = Clients::from_env(None).await;
    let function = &build(&clients, &env);
    lambda_http::run(lambda_http::service_fn(move |event: Request| async move {
        let response = function
            .serve(to_http(event), |handler, request| handler.handle(request))
            .await;
        Ok::<_, lambda_http::Error>(from_http(response))
    }))
    .await
}
