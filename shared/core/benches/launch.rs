//! Launch validation (verify + claims + normalize, keys cached) and login initiation
//! with the in-memory store. Targets per core: ≥ 20,000 launches/s, ≥ 100,000 logins/s.

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lti_core::clock::FixedClock;
use lti_core::config::ToolConfig;
use lti_core::contract::sample_platform;
use lti_core::keys::{FetchError, FetchedKeySet, KeySetFetcher, PlatformKeys};
use lti_core::launch::Launcher;
use lti_core::login::{LoginRequest, LoginService};
use lti_core::memory::MemoryStore;
use lti_core::platform::{Deployment, PlatformStore};
use lti_core::random::SystemRandom;
use lti_core::signer::{LocalRsaSigner, PublicJwk};
use serde_json::json;
use std::sync::Arc;

const ISS: &str = "https://lms.example.edu";
const CLIENT: &str = "client-1";
const NOW: i64 = 1_900_000_000;

struct Jwks(PublicJwk);

#[async_trait]
impl KeySetFetcher for Jwks {
    async fn fetch(&self, _url: &str) -> Result<FetchedKeySet, FetchError> {
        Ok(FetchedKeySet {
            body: serde_json::to_vec(&json!({ "keys": [self.0] })).expect("json"),
            max_age: Some(86_400),
            ..Default::default()
        })
    }
}

fn setup(rt: &tokio::runtime::Runtime) -> (Launcher, LoginService, String) {
    let platform_key = LocalRsaSigner::generate().expect("key");
    let store = Arc::new(MemoryStore::new());
    rt.block_on(async {
        store
            .save_platform(sample_platform(ISS, CLIENT, NOW))
            .await
            .expect("platform");
        store
            .save_deployment(Deployment {
                issuer: ISS.into(),
                client_id: CLIENT.into(),
                deployment_id: "1".into(),
                created_at: NOW,
            })
            .await
            .expect("deployment");
    });
    let config = Arc::new(
        ToolConfig::from_lookup(|name| match name {
            "LTI_BASE_URL" => Some("https://tool.example".into()),
            "LTI_APP_LANDING_URL" => Some("https://app.example/landing".into()),
            _ => None,
        })
        .expect("config"),
    );
    let clock = Arc::new(FixedClock::at(NOW));
    let launcher = Launcher {
        config: config.clone(),
        platforms: store.clone(),
        launches: store.clone(),
        keys: Arc::new(PlatformKeys::new(Arc::new(Jwks(
            platform_key.public_jwk().clone(),
        )))),
        signer: Arc::new(LocalRsaSigner::generate().expect("key")),
        clock: clock.clone(),
        random: Arc::new(SystemRandom),
    };
    let login = LoginService {
        config,
        platforms: store.clone(),
        launches: store,
        clock,
        random: Arc::new(SystemRandom),
    };
    // A typical Moodle launch: names, roles, context, link, custom, AGS, NRPS.
    let lti = "https://purl.imsglobal.org/spec/lti/claim/";
    let claims = json!({
        "iss": ISS, "aud": CLIENT, "sub": "user-42", "exp": NOW + 300, "iat": NOW, "nonce": "n-1",
        "name": "Ada Lovelace", "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.edu",
        format!("{lti}message_type"): "LtiResourceLinkRequest",
        format!("{lti}version"): "1.3.0",
        format!("{lti}deployment_id"): "1",
        format!("{lti}target_link_uri"): "https://tool.example/lti/launch",
        format!("{lti}resource_link"): {"id": "rl-1", "title": "Quiz 1"},
        format!("{lti}roles"): ["http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
                                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student"],
        format!("{lti}context"): {"id": "c-7", "label": "CS101", "title": "Intro", "type": ["CourseOffering"]},
        format!("{lti}custom"): {"chapter": "3"},
        format!("{lti}tool_platform"): {"name": "Moodle", "guid": "m-1", "product_family_code": "moodle"},
        format!("{lti}launch_presentation"): {"document_target": "iframe", "return_url": "https://lms.example.edu/r"},
        "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint": {
            "scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
            "lineitems": "https://lms.example.edu/mod/lti/services.php/2/lineitems?type_id=1"},
        "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
            "context_memberships_url": "https://lms.example.edu/mod/lti/services.php/CourseSection/2/bindings/1/memberships",
            "service_versions": ["2.0"]}
    });
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": platform_key.public_jwk().kid});
    let part = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", part(&header), part(&claims));
    let signature = platform_key.sign_now(input.as_bytes()).expect("sign");
    let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
    (launcher, login, token)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let (launcher, login, token) = setup(&rt);
    // Warm the key cache, as on a warm Lambda instance.
    rt.block_on(launcher.validate(&token, NOW))
        .expect("valid launch");

    let mut group = c.benchmark_group("launch");
    group.throughput(Throughput::Elements(1));
    group.bench_function("validate (verify + claims + normalize, keys cached)", |b| {
        b.to_async(&rt)
            .iter(|| async { launcher.validate(&token, NOW).await.expect("valid") })
    });
    group.finish();

    let request = LoginRequest {
        iss: Some(ISS.into()),
        login_hint: Some("user-42".into()),
        target_link_uri: Some("https://tool.example/lti/launch".into()),
        client_id: Some(CLIENT.into()),
        lti_message_hint: Some("rl-1".into()),
        ..Default::default()
    };
    let mut group = c.benchmark_group("login");
    group.throughput(Throughput::Elements(1));
    group.bench_function("initiate (in-memory store)", |b| {
        b.to_async(&rt)
            .iter(|| async { login.initiate(&request).await.expect("redirect") })
    });
    group.finish();
}

criterion_group!(launch, benches);
criterion_main!(launch);
