//! The tool's public keys: GET /.well-known/jwks.json, GET /lti/jwks
//!
//! Thin: configuration, clients and the handler are built once at cold start
//! (`lti_aws::functions::jwks`); each invocation only converts the event and calls the
//! shared handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lti_aws::lambda::run("jwks", lti_aws::functions::jwks).await
}
