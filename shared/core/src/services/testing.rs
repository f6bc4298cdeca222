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

/// Checks a client assertion as a platform would — RS256 signature with the tool's
/// public key `jwk` (and its `kid`), `aud` exactly `audience` (byte for byte), `iss`,
/// `sub`, `jti`, `iat` present, `exp` at most 5 minutes after `iat` — and returns its
/// claims, or why a platform would refuse it.
pub fn check_assertion(jwt: &str, jwk: &PublicJwk, audience: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|e| format!("no JWT header: {e}"))?;
    if header.alg != jsonwebtoken::Algorithm::RS256 {
        return Err(format!("alg {:?}", header.alg));
    }
    if header.kid.as_deref() != Some(jwk.kid.as_str()) {
        return Err("kid is not the tool's key".into());
    }
    let key = jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e)
        .map_err(|e| format!("key: {e}"))?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "sub", "aud", "exp", "iat", "jti"]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .map_err(|e| format!("does not verify for aud {audience}: {e}"))?
        .claims;
    if claims["aud"] != Value::String(audience.to_string()) {
        return Err(format!("aud is {}, not {audience}", claims["aud"]));
    }
    match (claims["iat"].as_i64(), claims["exp"].as_i64()) {
        (Some(iat), Some(exp)) if exp > iat && exp - iat <= 300 => {}
        _ => return Err("exp is not within 5 minutes of iat".into()),
    }
    if claims["iss"] != claims["sub"] {
        return Err("iss and sub differ".into());
    }
    Ok(claims)
}

/// [`check_assertion`], panicking (a test helper) when a platform would refuse it.
pub fn verify_assertion(jwt: &str, jwk: &PublicJwk, audience: &str) -> Value {
    check_assertion(jwt, jwk, audience).unwrap_or_else(|why| panic!("assertion refused: {why}"))
}

/// The bearer token of a request, if it has one.
pub fn bearer(request: &OutboundRequest) -> Option<&str> {
    request
        .header_value("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// A token endpoint's `200` with `token`, valid an hour.
pub fn token_answer(token: &str) -> Result<OutboundResponse, OutboundError> {
    ok_json(serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "",
    }))
}
