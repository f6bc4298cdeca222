//! `GET /.well-known/jwks.json` and `GET /lti/jwks`: the tool's public keys.

use super::method_not_allowed;
use crate::{respond, HttpRequest, HttpResponse};
use http::{header, HeaderValue, Method, StatusCode};
use lti_core::signer::Signer;
use std::sync::Arc;

/// The jwks function's handler.
#[derive(Clone)]
pub struct JwksHandler {
    pub signer: Arc<dyn Signer>,
}

impl JwksHandler {
    /// Answers the key set: every active and previous key.
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return method_not_allowed(&request, "GET, HEAD");
        }
        match self.signer.public_keys().await {
            Ok(keys) => {
                let mut response =
                    respond::json(StatusCode::OK, &serde_json::json!({ "keys": keys }));
                response.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=300"),
                );
                response.headers_mut().insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
                response
            }
            Err(e) => respond::problem(&request, &e),
        }
    }
}
