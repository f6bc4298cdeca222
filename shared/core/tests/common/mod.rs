//! A launch fixture: a platform with its own key, a registered tool, a fixed clock.
#![allow(dead_code)]

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lti_core::clock::FixedClock;
use lti_core::config::ToolConfig;
use lti_core::handoff::Handoff;
use lti_core::keys::{FetchError, FetchedKeySet, KeySetFetcher, PlatformKeys};
use lti_core::launch::{LaunchError, LaunchForm, Launcher};
use lti_core::login::{LoginRequest, LoginService};
use lti_core::memory::MemoryStore;
use lti_core::platform::{Deployment, PlatformStore};
use lti_core::random::SystemRandom;
use lti_core::signer::{LocalRsaSigner, PublicJwk};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

pub const ISS: &str = "https://lms.example.edu";
pub const CLIENT: &str = "tool-client-1";
pub const DEPLOYMENT: &str = "1";
pub const TOOL: &str = "https://tool.example";
pub const NOW: i64 = 1_900_000_000;

/// RSA keys are slow to make; every test in a binary shares these.
pub fn platform_key() -> &'static LocalRsaSigner {
    static KEY: OnceLock<LocalRsaSigner> = OnceLock::new();
    KEY.get_or_init(|| LocalRsaSigner::generate().expect("key"))
}

pub fn other_key() -> &'static LocalRsaSigner {
    static KEY: OnceLock<LocalRsaSigner> = OnceLock::new();
    KEY.get_or_init(|| LocalRsaSigner::generate().expect("key"))
}

pub fn tool_key() -> Arc<LocalRsaSigner> {
    static KEY: OnceLock<Arc<LocalRsaSigner>> = OnceLock::new();
    KEY.get_or_init(|| Arc::new(LocalRsaSigner::generate().expect("key")))
        .clone()
}

/// Serves a JWKS document from memory and counts fetches.
pub struct StaticJwks {
    pub keys: Mutex<Vec<PublicJwk>>,
    pub fetches: AtomicUsize,
}

impl StaticJwks {
    pub fn new(keys: Vec<PublicJwk>) -> Arc<Self> {
        Arc::new(Self {
            keys: Mutex::new(keys),
            fetches: AtomicUsize::new(0),
        })
    }
    pub fn fetch_count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl KeySetFetcher for StaticJwks {
    async fn fetch(&self, _url: &str) -> Result<FetchedKeySet, FetchError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let keys = self.keys.lock().expect("lock").clone();
        Ok(FetchedKeySet {
            body: serde_json::to_vec(&json!({ "keys": keys })).expect("json"),
            ..Default::default()
        })
    }
}

pub fn config() -> ToolConfig {
    ToolConfig::from_lookup(|name| match name {
        "LTI_BASE_URL" => Some(TOOL.into()),
        "LTI_APP_LANDING_URL" => Some("https://app.example/lti/landing".into()),
        "LTI_ALLOWED_APP_ORIGINS" => Some("https://app.example".into()),
        _ => None,
    })
    .expect("config")
}

pub struct Fixture {
    pub store: Arc<MemoryStore>,
    pub clock: Arc<FixedClock>,
    pub jwks: Arc<StaticJwks>,
    pub login: LoginService,
    pub launcher: Launcher,
}

impl Fixture {
    pub async fn new() -> Self {
        let store = Arc::new(MemoryStore::new());
        let mut platform = lti_core::contract::sample_platform(ISS, CLIENT, NOW);
        platform.keyset_url = format!("{ISS}/jwks");
        store.save_platform(platform).await.expect("platform");
        store
            .save_deployment(Deployment {
                issuer: ISS.into(),
                client_id: CLIENT.into(),
                deployment_id: DEPLOYMENT.into(),
                created_at: NOW,
            })
            .await
            .expect("deployment");
        let clock = Arc::new(FixedClock::at(NOW));
        let jwks = StaticJwks::new(vec![platform_key().public_jwk().clone()]);
        let config = Arc::new(config());
        let login = LoginService {
            config: config.clone(),
            platforms: store.clone(),
            launches: store.clone(),
            clock: clock.clone(),
            random: Arc::new(SystemRandom),
        };
        let launcher = Launcher {
            config,
            platforms: store.clone(),
            launches: store.clone(),
            keys: Arc::new(PlatformKeys::new(jwks.clone())),
            signer: tool_key(),
            clock: clock.clone(),
            random: Arc::new(SystemRandom),
        };
        Self {
            store,
            clock,
            jwks,
            login,
            launcher,
        }
    }

    /// Runs a login initiation and returns (state, nonce).
    pub async fn begin(&self) -> (String, String) {
        let redirect = self
            .login
            .initiate(&LoginRequest {
                iss: Some(ISS.into()),
                login_hint: Some("hint".into()),
                target_link_uri: Some(format!("{TOOL}/lti/launch")),
                client_id: Some(CLIENT.into()),
                ..Default::default()
            })
            .await
            .expect("login");
        let nonce = self
            .store
            .stored_state(&redirect.state)
            .expect("stored")
            .login
            .nonce;
        (redirect.state, nonce)
    }

    /// Logs in, signs `claims` (with `"nonce": "$NONCE"` replaced by the login's nonce)
    /// with the platform key, and launches with the right cookie.
    pub async fn launch(&self, claims: Value) -> Result<Handoff, LaunchError> {
        let (state, nonce) = self.begin().await;
        let token = sign(&header(), &with_nonce(claims, &nonce), platform_key());
        self.post(&token, &state, Some(&state)).await
    }

    pub async fn post(
        &self,
        token: &str,
        state: &str,
        cookie: Option<&str>,
    ) -> Result<Handoff, LaunchError> {
        let form = LaunchForm {
            id_token: Some(token.to_string()),
            state: Some(state.to_string()),
            ..Default::default()
        };
        self.launcher.launch(&form, cookie).await
    }
}

pub fn with_nonce(mut claims: Value, nonce: &str) -> Value {
    if claims.get("nonce") == Some(&json!("$NONCE")) {
        claims["nonce"] = json!(nonce);
    }
    claims
}

pub fn header() -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": platform_key().public_jwk().kid})
}

pub fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("json"))
}

/// A compact JWS of `header`.`claims` signed RS256 with `key`.
pub fn sign(header: &Value, claims: &Value, key: &LocalRsaSigner) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = key.sign_now(input.as_bytes()).expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The app user id of `sub` launching through the fixture's registration (its user
/// scope is its key set URL).
pub fn user_id(sub: &str) -> String {
    lti_core::user::stable_user_id(ISS, &format!("{ISS}/jwks"), sub)
}

pub const LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";
pub const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";

/// A complete learner resource-link launch, as Moodle would send it.
pub fn learner_claims(now: i64) -> Value {
    json!({
        "iss": ISS,
        "aud": CLIENT,
        "sub": "user-42",
        "exp": now + 300,
        "iat": now,
        "nonce": "$NONCE",
        "name": "Ada Lovelace",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "email": "ada@example.edu",
        "https://purl.imsglobal.org/spec/lti/claim/message_type": "LtiResourceLinkRequest",
        "https://purl.imsglobal.org/spec/lti/claim/version": "1.3.0",
        "https://purl.imsglobal.org/spec/lti/claim/deployment_id": DEPLOYMENT,
        "https://purl.imsglobal.org/spec/lti/claim/target_link_uri": format!("{TOOL}/lti/launch"),
        "https://purl.imsglobal.org/spec/lti/claim/resource_link": {"id": "rl-1", "title": "Quiz 1"},
        "https://purl.imsglobal.org/spec/lti/claim/roles": [LEARNER],
        "https://purl.imsglobal.org/spec/lti/claim/context": {
            "id": "course-7", "label": "CS101", "title": "Intro to CS",
            "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"]
        },
        "https://purl.imsglobal.org/spec/lti/claim/custom": {"chapter": "3"},
        "https://purl.imsglobal.org/spec/lti/claim/tool_platform": {"name": "Example Moodle", "guid": "moodle-1"},
        "https://purl.imsglobal.org/spec/lti/claim/launch_presentation": {"document_target": "iframe", "return_url": "https://lms.example.edu/return"},
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "lineitems": "https://lms.example.edu/mod/lti/services.php/2/lineitems?type_id=1"
        },
        "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
            "context_memberships_url": "https://lms.example.edu/mod/lti/services.php/CourseSection/2/bindings/1/memberships",
            "service_versions": ["2.0"]
        }
    })
}
