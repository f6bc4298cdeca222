//! Tool configuration and admin API: /lti/config, /admin/*
//!
//! Thin: configuration, clients and the handler are built once at cold start; each
//! invocation only converts the event and calls the shared handler.

use lambda_http::{run, service_fn, Error, Request};
use lti_aws::functions::{self, Clients};
use lti_aws::lambda::{from_http, init_logging, to_http};

#[tokio::main]
async fn main() -> Result<(), Error> {
    init_logging();
    let clients = Clients::from_env(None).await;
    let function = &functions::services(&clients, &functions::env);
    run(service_fn(move |event: Request| async move {
        let response = function
            .serve(to_http(event), |handler, request| handler.handle(request))
            .await;
        Ok::<_, Error>(from_http(response))
    }))
    .await
}
