//! Tool configuration and admin API: /lti/config, /admin/*
//!
//! Thin: configuration, clients and the handler are built once at cold start
//! (`lti_aws::functions::services`); each invocation only converts the event and calls the
//! shared handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lti_aws::lambda::run("services", lti_aws::functions::services).await
}
