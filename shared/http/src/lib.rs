//! # lti-http
//!
//! The HTTP side of lti-lambda, shared by the Lambda functions and the dev server:
//! request parsing ([`request`]), the one place errors become responses
//! ([`respond`]), HTML pages ([`pages`]) and the handlers of the four functions
//! ([`handlers`]). Calls *to* platforms live in `lti-outbound`.
//!
//! Requests and responses are plain `http` types with `Bytes` bodies, so the same
//! handler runs behind `lambda_http` and behind the dev server's hyper.

pub mod handlers;
pub mod observe;
pub mod pages;
pub mod request;
pub mod respond;

/// A request as the handlers see it.
pub type HttpRequest = http::Request<bytes::Bytes>;
/// A response as the handlers produce it.
pub type HttpResponse = http::Response<bytes::Bytes>;

/// Request id set by the caller (the Lambda request id, or one made by the dev
/// server), shown on error pages and in logs.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The AWS identity API Gateway authenticated for this request (`AWS_IAM` routes:
/// `requestContext.authorizer.iam`), set by the Lambda glue from the event — never
/// from anything the client sends. The admin API trusts it in `LTI_ADMIN_AUTH=iam`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayIdentity {
    /// The caller's ARN (`userArn`).
    pub arn: String,
    /// The caller's account.
    pub account_id: Option<String>,
}

/// The request id of `request`, or `-` if the caller set none.
pub fn request_id(request: &HttpRequest) -> String {
    request
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| "-".into())
}
