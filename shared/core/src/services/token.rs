//! Access tokens for the platforms' services (1EdTech Security Framework §4.1, the
//! OAuth 2.0 client credentials grant with a JWT client assertion, RFC 7523).
//!
//! The tool asks the registration's token endpoint for a token with a client
//! assertion signed through the [`Signer`] port (the KMS key on AWS):
//! `iss` = `sub` = client_id; `aud` = the registration's `tokenAudience` if it has one
//! (Brightspace), else the token URL **exactly as registered** (Canvas refuses a
//! trailing slash added or a default port spelled out); a unique `jti`; `iat`; `exp`
//! 5 minutes later; and the LTI `deployment_id` claim when the call is for a known
//! deployment (some platforms want it).
//!
//! Tokens are cached per **registration** (its id: Canvas serves every tenant under
//! one issuer, so never per issuer) and sorted scopes — in this instance's memory and
//! in the shared [`ServiceTokenCache`] (DynamoDB on AWS), so other function instances
//! reuse them — until `expires_in` − 60 s. One instance asks for one token at a time
//! per key, so concurrent calls share one request. A platform `401` on a service
//! call gets one fresh token and one retry ([`AccessTokens::call`]).
//!
//! Tokens are secrets: never logged, held in [`Secret`], blanked out of excerpts.

use crate::clock::Clock;
use crate::error::{Secret, StoreError};
use crate::platform::Platform;
use crate::random::Random;
use crate::services::answer;
use crate::services::outbound::{Method, OutboundRequest, OutboundResponse, PlatformHttp};
use crate::services::ServiceError;
use crate::signer::Signer;
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

/// Lifetime of a client assertion, seconds (the Security Framework allows 5 minutes).
pub const ASSERTION_LIFETIME: i64 = 300;
/// A token is used until this many seconds before the platform says it expires.
pub const EXPIRY_MARGIN: i64 = 60;
/// `expires_in` assumed when the platform gives none (RFC 6749 makes it optional).
pub const DEFAULT_EXPIRES_IN: i64 = 3600;
/// Longest a token is cached, whatever `expires_in` says.
pub const MAX_CACHE_SECONDS: i64 = 86_400;
/// Longest access token accepted from a platform, bytes.
pub const MAX_TOKEN_LEN: usize = 8192;
/// The LTI deployment id claim, added to assertions for a known deployment.
pub const DEPLOYMENT_ID_CLAIM: &str = "https://purl.imsglobal.org/spec/lti/claim/deployment_id";
/// `client_assertion_type` of a JWT client assertion (RFC 7523).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What a cached token is for: one registration and a set of scopes (sorted,
/// duplicates removed, so the order a caller lists them in does not matter).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKey {
    registration: Uuid,
    scopes: Vec<String>,
}

impl TokenKey {
    /// The key of registration `registration` and `scopes`.
    pub fn new<S: AsRef<str>>(registration: Uuid, scopes: &[S]) -> Self {
        let mut scopes: Vec<String> = scopes
            .iter()
            .map(|s| s.as_ref().trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        scopes.sort();
        scopes.dedup();
        Self {
            registration,
            scopes,
        }
    }

    /// The registration's id.
    pub fn registration(&self) -> Uuid {
        self.registration
    }

    /// The scopes, sorted.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The scopes space-separated, as the token request's `scope` parameter.
    pub fn scope(&self) -> String {
        self.scopes.join(" ")
    }

    /// SHA-256 of [`TokenKey::scope`], base64url: a short fixed-size key part.
    pub fn scope_hash(&self) -> String {
        URL_SAFE_NO_PAD.encode(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.scope().as_bytes()).as_ref(),
        )
    }

    /// `<registration id>#<scope hash>`: the key in a store.
    pub fn id(&self) -> String {
        format!("{}#{}", self.registration, self.scope_hash())
    }
}

/// An access token and when the tool stops using it (epoch seconds, already
/// [`EXPIRY_MARGIN`] before the platform's expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedToken {
    pub access_token: Secret,
    pub expires_at: i64,
}

/// Access tokens shared by every instance of the tool (the DynamoDB table on AWS).
/// A read never returns a token whose `expires_at` is not after `now`.
#[async_trait]
pub trait ServiceTokenCache: Send + Sync {
    /// The token stored for `key`, if it is still valid at `now`.
    async fn service_token(
        &self,
        key: &TokenKey,
        now: i64,
    ) -> Result<Option<CachedToken>, StoreError>;
    /// Stores `token` for `key`, replacing any other.
    async fn put_service_token(
        &self,
        key: &TokenKey,
        token: &CachedToken,
    ) -> Result<(), StoreError>;
}

/// Gets, caches and refreshes access tokens, and sends authorized service calls.
pub struct AccessTokens {
    http: Arc<dyn PlatformHttp>,
    signer: Arc<dyn Signer>,
    shared: Arc<dyn ServiceTokenCache>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    local: Mutex<HashMap<TokenKey, CachedToken>>,
    /// One lock per key: one token request at a time per key in this instance.
    flights: Mutex<HashMap<TokenKey, Arc<tokio::sync::Mutex<()>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl AccessTokens {
    /// Tokens from the platforms through `http`, assertions signed by `signer`,
    /// shared with other instances through `shared`.
    pub fn new(
        http: Arc<dyn PlatformHttp>,
        signer: Arc<dyn Signer>,
        shared: Arc<dyn ServiceTokenCache>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Self {
        Self {
            http,
            signer,
            shared,
            clock,
            random,
            local: Mutex::new(HashMap::new()),
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// The clock (the services read "now" from it too).
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    fn flight(&self, key: &TokenKey) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.flights).entry(key.clone()).or_default().clone()
    }

    fn local_token(&self, key: &TokenKey, now: i64) -> Option<CachedToken> {
        lock(&self.local)
            .get(key)
            .filter(|t| t.expires_at > now)
            .cloned()
    }

    fn remember(&self, key: &TokenKey, token: &CachedToken, now: i64) {
        let mut local = lock(&self.local);
        local.retain(|_, t| t.expires_at > now);
        if token.expires_at > now {
            local.insert(key.clone(), token.clone());
        }
    }

    async fn shared_token(&self, key: &TokenKey, now: i64) -> Option<CachedToken> {
        match self.shared.service_token(key, now).await {
            Ok(token) => token.filter(|t| t.expires_at > now),
            Err(e) => {
                // The shared cache only saves token requests: go on without it.
                tracing::warn!(error = %e, "service token cache unavailable");
                None
            }
        }
    }

    /// A token for `scopes` of `platform`: from this instance's memory, else the
    /// shared cache, else the platform's token endpoint (then cached in both).
    pub async fn token(
        &self,
        platform: &Platform,
        scopes: &[&str],
        deployment_id: Option<&str>,
    ) -> Result<Secret, ServiceError> {
        let key = TokenKey::new(platform.id, scopes);
        if let Some(token) = self.local_token(&key, self.clock.now()) {
            return Ok(token.access_token);
        }
        let flight = self.flight(&key);
        let _one_at_a_time = flight.lock().await;
        let now = self.clock.now();
        if let Some(token) = self.local_token(&key, now) {
            return Ok(token.access_token);
        }
        if let Some(token) = self.shared_token(&key, now).await {
            self.remember(&key, &token, now);
            return Ok(token.access_token);
        }
        self.fetch(platform, &key, deployment_id).await
    }

    /// A token other than `failed` (which the platform just refused with `401`): one
    /// another task or instance got meanwhile, else a fresh one from the platform.
    pub async fn refresh(
        &self,
        platform: &Platform,
        scopes: &[&str],
        deployment_id: Option<&str>,
        failed: &Secret,
    ) -> Result<Secret, ServiceError> {
        let key = TokenKey::new(platform.id, scopes);
        let flight = self.flight(&key);
        let _one_at_a_time = flight.lock().await;
        let now = self.clock.now();
        {
            let mut local = lock(&self.local);
            if local.get(&key).is_some_and(|t| &t.access_token == failed) {
                local.remove(&key);
            }
        }
        if let Some(token) = self.local_token(&key, now) {
            return Ok(token.access_token);
        }
        if let Some(token) = self
            .shared_token(&key, now)
            .await
            .filter(|t| &t.access_token != failed)
        {
            self.remember(&key, &token, now);
            return Ok(token.access_token);
        }
        self.fetch(platform, &key, deployment_id).await
    }

    /// The client assertion for a token request of `platform`, signed now.
    pub async fn client_assertion(
        &self,
        platform: &Platform,
        deployment_id: Option<&str>,
    ) -> Result<Secret, ServiceError> {
        let now = self.clock.now();
        let audience = platform
            .token_audience
            .as_deref()
            .filter(|a| !a.trim().is_empty())
            .unwrap_or(&platform.auth_token_url);
        let mut claims = json!({
            "iss": platform.client_id,
            "sub": platform.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": self.random.token(16),
        });
        if let Some(deployment_id) = deployment_id.filter(|d| !d.is_empty()) {
            claims[DEPLOYMENT_ID_CLAIM] = Value::String(deployment_id.to_string());
        }
        let jwt = crate::jwt::sign_jwt(self.signer.as_ref(), &claims).await?;
        Ok(Secret::new(jwt))
    }

    /// Asks the platform for a token and caches it.
    async fn fetch(
        &self,
        platform: &Platform,
        key: &TokenKey,
        deployment_id: Option<&str>,
    ) -> Result<Secret, ServiceError> {
        let assertion = self.client_assertion(platform, deployment_id).await?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_assertion_type", CLIENT_ASSERTION_TYPE)
            .append_pair("client_assertion", assertion.expose())
            .append_pair("scope", &key.scope())
            .finish();
        let request = OutboundRequest::new(Method::Post, &platform.auth_token_url)
            .header("Accept", "application/json")
            .body("application/x-www-form-urlencoded", form.into_bytes());
        let response = self.http.send(request).await.map_err(answer::unanswered)?;
        let now = self.clock.now();
        let token = read_token(&response, now, assertion.expose())?;
        tracing::debug!(
            registration = %platform.id,
            scopes = %key.scope(),
            cached_for = token.expires_at - now,
            "service access token obtained"
        );
        self.remember(key, &token, now);
        if token.expires_at > now {
            if let Err(e) = self.shared.put_service_token(key, &token).await {
                tracing::warn!(error = %e, "service token not shared with other instances");
            }
        }
        Ok(token.access_token)
    }

    /// Sends `request` to `platform` with a bearer token for `scopes`; on `401`, gets
    /// one fresh token and retries once. Returns the 2xx answer; any other status is
    /// its error ([`answer::rejection`]), a call without answer
    /// [`answer::unanswered`].
    pub async fn call(
        &self,
        platform: &Platform,
        scopes: &[&str],
        deployment_id: Option<&str>,
        request: OutboundRequest,
    ) -> Result<OutboundResponse, ServiceError> {
        let token = self.token(platform, scopes, deployment_id).await?;
        let response = self.send_with(&request, &token).await?;
        if response.status != 401 {
            return answer::success(response, self.clock.now(), &[token.expose()]);
        }
        tracing::debug!(
            registration = %platform.id,
            "the platform refused its access token (401); retrying once with a fresh one"
        );
        let fresh = self
            .refresh(platform, scopes, deployment_id, &token)
            .await?;
        let response = self.send_with(&request, &fresh).await?;
        answer::success(
            response,
            self.clock.now(),
            &[token.expose(), fresh.expose()],
        )
    }

    async fn send_with(
        &self,
        request: &OutboundRequest,
        token: &Secret,
    ) -> Result<OutboundResponse, ServiceError> {
        let request = request
            .clone()
            .header("Authorization", format!("Bearer {}", token.expose()));
        self.http.send(request).await.map_err(answer::unanswered)
    }
}

/// Reads the token endpoint's answer.
fn read_token(
    response: &OutboundResponse,
    now: i64,
    assertion: &str,
) -> Result<CachedToken, ServiceError> {
    if !(200..300).contains(&response.status) {
        if (400..500).contains(&response.status) && response.status != 429 {
            if let Some(refused) = oauth_error(&response.body) {
                return Err(refused);
            }
        }
        return Err(answer::rejection(response, now, &[assertion]));
    }
    let body = answer::json(response, "the token endpoint's answer")?;
    let token = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ServiceError::PlatformAnswerInvalid(
                "the token endpoint's answer has no access_token".into(),
            )
        })?;
    // RFC 6750 b64token characters are visible ASCII; anything else could not be sent
    // in a header (and a line break would split it).
    if token.len() > MAX_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ServiceError::PlatformAnswerInvalid(
            "the token endpoint's access_token is not a usable bearer token".into(),
        ));
    }
    if let Some(kind) = body.get("token_type").and_then(Value::as_str) {
        if !kind.eq_ignore_ascii_case("bearer") {
            tracing::warn!(token_type = %kind.chars().take(32).collect::<String>(),
                "the token endpoint gave a token type other than Bearer; sent as Bearer");
        }
    }
    let expires_in = answer::number(body.get("expires_in"))
        .map(|s| s as i64)
        .unwrap_or(DEFAULT_EXPIRES_IN)
        .clamp(0, MAX_CACHE_SECONDS);
    Ok(CachedToken {
        access_token: Secret::new(token),
        // expires_in ≤ 60: used for this call only (expires_at ≤ now is never cached).
        expires_at: now + expires_in - EXPIRY_MARGIN,
    })
}

/// The OAuth 2.0 error (RFC 6749 §5.2) in a token endpoint's refusal, if it has one.
fn oauth_error(body: &[u8]) -> Option<ServiceError> {
    let body: Value = serde_json::from_slice(body).ok()?;
    let error = body.get("error")?.as_str()?;
    let clean = |text: &str, max: usize| -> String {
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let text = text.trim();
        match text.char_indices().nth(max) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_string(),
        }
    };
    Some(ServiceError::TokenRefused {
        error: clean(error, 64),
        description: body
            .get("error_description")
            .and_then(Value::as_str)
            .map(|d| clean(d, 200))
            .filter(|d| !d.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::contract::sample_platform;
    use crate::memory::MemoryStore;
    use crate::random::SystemRandom;
    use crate::services::testing::{ok_json, FakePlatform};
    use crate::signer::LocalRsaSigner;

    const NOW: i64 = 1_900_000_000;

    #[test]
    fn keys_sort_and_dedupe_scopes_and_hash_them() {
        let id = Uuid::new_v4();
        let a = TokenKey::new(id, &["b", "a", "b", " "]);
        let b = TokenKey::new(id, &["a", "b"]);
        assert_eq!(a, b);
        assert_eq!(a.scope(), "a b");
        assert_eq!(a.scope_hash().len(), 43);
        assert_eq!(a.id(), format!("{id}#{}", a.scope_hash()));
        assert_ne!(a.id(), TokenKey::new(id, &["a"]).id());
        assert_ne!(a.id(), TokenKey::new(Uuid::new_v4(), &["a", "b"]).id());
    }

    #[test]
    fn token_answers_are_read_leniently_but_safely() {
        let ok = |body: Value| OutboundResponse {
            status: 200,
            headers: Vec::new(),
            body: body.to_string().into_bytes(),
        };
        let token = read_token(
            &ok(json!({"access_token": "t1", "expires_in": 3600})),
            NOW,
            "",
        )
        .expect("token");
        assert_eq!(token.expires_at, NOW + 3600 - 60);
        let token = read_token(
            &ok(json!({"access_token": "t1", "expires_in": "120"})),
            NOW,
            "",
        )
        .expect("a numeric string");
        assert_eq!(token.expires_at, NOW + 60);
        let token = read_token(&ok(json!({"access_token": "t1"})), NOW, "").expect("no expires_in");
        assert_eq!(token.expires_at, NOW + DEFAULT_EXPIRES_IN - 60);
        let token = read_token(
            &ok(json!({"access_token": "t1", "expires_in": 1e12})),
            NOW,
            "",
        )
        .expect("huge");
        assert_eq!(token.expires_at, NOW + MAX_CACHE_SECONDS - 60);
        let token = read_token(
            &ok(json!({"access_token": "t1", "expires_in": -1e308})),
            0,
            "",
        )
        .expect("negative: used once, never cached");
        assert_eq!(token.expires_at, -60);
        for bad in [
            json!({}),
            json!({"access_token": ""}),
            json!({"access_token": 5}),
            json!({"access_token": "a b"}),
            json!({"access_token": "a\r\nX-Evil: 1"}),
            json!([]),
        ] {
            assert!(
                matches!(
                    read_token(&ok(bad.clone()), NOW, ""),
                    Err(ServiceError::PlatformAnswerInvalid(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_refusal_names_the_oauth_error_and_anything_else_is_a_rejection() {
        let refusal = |status: u16, body: &str| OutboundResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        };
        let err = read_token(
            &refusal(
                400,
                r#"{"error":"invalid_scope","error_description":"scope\nnot allowed"}"#,
            ),
            NOW,
            "",
        )
        .expect_err("refused");
        assert!(
            matches!(&err, ServiceError::TokenRefused { error, description }
            if error == "invalid_scope" && description.as_deref() == Some("scope not allowed"))
        );
        use crate::error::Problem;
        assert_eq!(err.code(), "LTI_SERVICE_TOKEN_REFUSED");
        let err = read_token(&refusal(401, "Unauthorized"), NOW, "").expect_err("no JSON");
        assert!(matches!(
            err,
            ServiceError::PlatformRejected { status: 401, .. }
        ));
        let err = read_token(&refusal(503, r#"{"error":"x"}"#), NOW, "").expect_err("5xx");
        assert!(matches!(
            err,
            ServiceError::PlatformRejected { status: 503, .. }
        ));
        let echoed = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln";
        let err =
            read_token(&refusal(500, &format!("bad {echoed}")), NOW, echoed).expect_err("5xx");
        assert!(!err.to_string().contains(echoed), "{err}");
    }

    fn tokens(platform: FakePlatform) -> (AccessTokens, Arc<LocalRsaSigner>) {
        let signer = Arc::new(LocalRsaSigner::generate().expect("key"));
        (
            AccessTokens::new(
                Arc::new(platform),
                signer.clone(),
                Arc::new(MemoryStore::new()),
                Arc::new(FixedClock::at(NOW)),
                Arc::new(SystemRandom),
            ),
            signer,
        )
    }

    #[tokio::test]
    async fn the_token_request_is_a_client_credentials_form_with_a_signed_assertion() {
        let platform = sample_platform("https://lms.example.edu", "client-1", NOW);
        let fake = FakePlatform::new(|_| ok_json(json!({"access_token": "T", "expires_in": 3600})));
        let (tokens, signer) = tokens(fake.clone());
        let token = tokens
            .token(&platform, &["s2", "s1"], Some("dep-1"))
            .await
            .expect("token");
        assert_eq!(token.expose(), "T");
        let sent = fake.requests();
        assert_eq!(sent.len(), 1);
        let request = &sent[0];
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.url, "https://lms.example.edu/token");
        assert_eq!(
            request.header_value("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(request.header_value("accept"), Some("application/json"));
        assert_eq!(request.header_value("authorization"), None);
        let form = crate::services::testing::form(request);
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["client_assertion_type"], CLIENT_ASSERTION_TYPE);
        assert_eq!(form["scope"], "s1 s2", "sorted, space-separated");
        let claims = crate::services::testing::verify_assertion(
            &form["client_assertion"],
            signer.public_jwk(),
            "https://lms.example.edu/token",
        );
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["iat"], NOW);
        assert_eq!(claims["exp"], NOW + 300);
        assert_eq!(claims[DEPLOYMENT_ID_CLAIM], "dep-1");
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 20));
    }

    #[tokio::test]
    async fn each_assertion_has_its_own_jti_and_no_deployment_claim_when_unknown() {
        let platform = sample_platform("https://lms.example.edu", "client-1", NOW);
        let (tokens, signer) = tokens(FakePlatform::new(|_| ok_json(json!({}))));
        let mut jtis = std::collections::HashSet::new();
        for _ in 0..20 {
            let jwt = tokens
                .client_assertion(&platform, None)
                .await
                .expect("signed");
            let claims = crate::services::testing::verify_assertion(
                jwt.expose(),
                signer.public_jwk(),
                "https://lms.example.edu/token",
            );
            assert!(claims.get(DEPLOYMENT_ID_CLAIM).is_none());
            assert!(jtis.insert(claims["jti"].as_str().expect("jti").to_string()));
        }
    }

    #[tokio::test]
    async fn a_token_valid_less_than_the_margin_is_used_once_and_not_cached() {
        let platform = sample_platform("https://lms.example.edu", "c", NOW);
        let fake =
            FakePlatform::new(|_| ok_json(json!({"access_token": "short", "expires_in": 30})));
        let (tokens, _) = tokens(fake.clone());
        for _ in 0..3 {
            tokens.token(&platform, &["s"], None).await.expect("token");
        }
        assert_eq!(fake.requests().len(), 3);
    }

    #[tokio::test]
    async fn concurrent_calls_of_one_instance_share_one_token_request() {
        let platform = sample_platform("https://lms.example.edu", "c", NOW);
        let fake = FakePlatform::new(|_| ok_json(json!({"access_token": "T", "expires_in": 3600})));
        let (tokens, _) = tokens(fake.clone());
        let tokens = Arc::new(tokens);
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let tokens = tokens.clone();
            let platform = platform.clone();
            tasks.push(tokio::spawn(async move {
                tokens
                    .token(&platform, &["s"], None)
                    .await
                    .map(|t| t.expose().to_string())
            }));
        }
        for task in tasks {
            assert_eq!(task.await.expect("join").expect("token"), "T");
        }
        assert_eq!(fake.requests().len(), 1);
    }
}
