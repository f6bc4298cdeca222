//! OIDC login initiation: GET|POST /lti/login
//!
//! Thin: configuration, clients and the handler are built once at cold start
//! (`lti_aws::functions::login`); each invocation only converts the event and calls the
//! shared handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lti_aws::lambda::run("login", lti_aws::functions::login).await
}
