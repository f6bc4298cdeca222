//! Launch validation: POST /lti/launch
//!
//! Thin: configuration, clients and the handler are built once at cold start
//! (`lti_aws::functions::launch`); each invocation only converts the event and calls the
//! shared handler.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lti_aws::lambda::run("launch", lti_aws::functions::launch).await
}
