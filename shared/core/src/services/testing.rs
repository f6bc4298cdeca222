//! Test doubles for the calls to platforms (this crate's tests, and the handler tests
//! of other crates through the `contract` feature): a scripted [`PlatformHttp`] that
//! records every request, and helpers to read what the tool sent.

use crate::services::outbound::{OutboundError, OutboundRequest, OutboundResponse, PlatformHttp};
use crate::signer::PublicJwk;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Handler =
    dyn Fn(&OutboundRequest) -> Result<OutboundResponse, OutboundError> + Send + Sync + 'static;

/// A platform played by a closure: it answers each request and records it.
#[derive(Clone)]
pub struct FakePlatform {
    handler: Arc<Handler>,
    requests: Arc<Mutex<Vec<OutboundRequest>>>,
}

impl FakePlatform {
    /// A platform answering with `handler`.
    pub fn new(
        handler: impl Fn(&OutboundRequest) -> Result<OutboundResponse, OutboundError>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        Self {
            handler: Arc::new(handler),
            requests: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<OutboundRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The requests that were token requests (a `client_credentials` form).
    pub fn token_requests(&self) -> Vec<OutboundRequest> {
        self.requests()
            .into_iter()
            .filter(is_token_request)
            .collect()
    }

    /// The requests that were service calls (everything but token requests).
    pub fn service_requests(&self) -> Vec<OutboundRequest> {
        self.requests()
            .into_iter()
            .filter(|r| !is_token_request(r))
            .collect()
    }
}

/// True if `request` asks for an access token.
pub fn is_token_request(request: &OutboundRequest) -> bool {
    request.body.as_deref().is_some_and(|b| {
        url::form_urlencoded::parse(b).any(|(k, v)| k == "grant_type" && v == "client_credentials")
    })
}

#[async_trait]
impl PlatformHttp for FakePlatform {
    async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request.clone());
        (self.handler)(&request)
    }
}

/// An answer with `status`, `headers` and `body`.
pub fn answer(
    status: u16,
    headers: &[(&str, &str)],
    body: impl Into<Vec<u8>>,
) -> Result<OutboundResponse, OutboundError> {
    Ok(OutboundResponse {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.into(),
    })
}

/// `200` with `body` as `application/json`.
pub fn ok_json(body: Value) -> Result<OutboundResponse, OutboundError> {
    answer(
        200,
        &[("Content-Type", "application/json")],
        body.to_string(),
    )
}

/// The form fields of a request body.
pub fn form(request: &OutboundRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(request.body.as_deref().unwrap_or_default())
        .into_owned()
        .collect()
}

/// The JSON body of a request.
pub fn json_body(request: &OutboundRequest) -> Value {
    serde_json::from_slice(request.body.as_deref().unwrap_or_default()).unwrap_or(Value::Null)
}

/// Verifies a client assertion as a platform would — RS256 signature with the tool's
/// public key `jwk`, `aud` exactly `audience`, `exp` at most 5 minutes after `iat` —
/// and returns its claims. Panics (it is a test helper) when a check fails.
pub fn verify_assertion(jwt: &str, jwk: &PublicJwk, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(jwt).expect("a JWT header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(jwk.kid.as_str()));
    let key = jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e).expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "iat", "jti"]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .unwrap_or_else(|e| panic!("the assertion does not verify for aud {audience}: {e}"))
        .claims;
    assert_eq!(
        claims["aud"],
        Value::String(audience.to_string()),
        "aud byte for byte"
    );
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    assert!(
        matches!((iat, exp), (Some(iat), Some(exp)) if exp > iat && exp - iat <= 300),
        "exp within 5 minutes of iat"
    );
    claims
}
