//! Launch validation (verify + claims + normalize, keys cached) and login initiation
//! with the in-memory store. Targets per core: ≥ 20,000 launches/s, ≥ 100,000 logins/s.
//!
//! On a 3.7 KB Canvas-style token, side by side: the floor (a bare
//! `jsonwebtoken::decode` with the same cached key), validation plus state consumption
//! on the in-memory store, and the complete `Launcher::launch` with the local signer;
//! the throughput ratio of the second to the floor is printed (target ≥ 0.7).

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lti_core::clock::FixedClock;
use lti_core::config::ToolConfig;
use lti_core::contract::sample_platform;
use lti_core::keys::{FetchError, FetchedKeySet, KeySetFetcher, PlatformKeys};
use lti_core::launch::{LaunchForm, Launcher};
use lti_core::login::{LoginRequest, LoginService};
use lti_core::memory::MemoryStore;
use lti_core::platform::{Deployment, PlatformStore};
use lti_core::random::SystemRandom;
use lti_core::services::records::LaunchWrites;
use lti_core::signer::{LocalRsaSigner, PublicJwk};
use lti_core::state::{LaunchStore, LoginState, StateClaim};
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

struct Setup {
    launcher: Launcher,
    login: LoginService,
    store: Arc<MemoryStore>,
    platform_key: LocalRsaSigner,
    /// A Moodle-sized launch (≈ 1.5 KB).
    token: String,
    /// A Canvas-sized launch (≈ 3.7 KB: custom parameters, extensions).
    canvas: String,
}

fn setup(rt: &tokio::runtime::Runtime) -> Setup {
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
        launches: store.clone(),
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
    let token = sign(&platform_key, &claims);
    // Canvas: many custom parameters, extensions, lis, an instructure placement.
    let mut canvas = claims.clone();
    let custom: serde_json::Map<String, serde_json::Value> = (0..12)
        .map(|i| {
            (
                format!("canvas_custom_{i}"),
                json!(format!("$Canvas.value.{i}")),
            )
        })
        .collect();
    canvas[format!("{lti}custom")] = serde_json::Value::Object(custom);
    canvas[format!("{lti}lis")] =
        json!({"person_sourcedid": "SIS-42", "course_offering_sourcedid": "SIS-C-7"});
    canvas["https://www.instructure.com/placement"] = json!("course_navigation");
    canvas[format!("{lti}lti11_legacy_user_id")] =
        json!("0123456789abcdef0123456789abcdef01234567");
    canvas["picture"] = json!("https://canvas.instructure.com/images/messages/avatar-50.png");
    canvas["locale"] = json!("en");
    let canvas = sign(&platform_key, &canvas);
    Setup {
        launcher,
        login,
        store,
        platform_key,
        token,
        canvas,
    }
}

fn sign(key: &LocalRsaSigner, claims: &serde_json::Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key.public_jwk().kid});
    let part = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", part(&header), part(claims));
    let signature = key.sign_now(input.as_bytes()).expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Stores a fresh login state for the benchmark's nonce; returns the state.
fn fresh_state(store: &MemoryStore, rt: &tokio::runtime::Runtime, n: u64) -> String {
    let state = format!("state-{n}");
    rt.block_on(store.begin_login(&LoginState {
        state: state.clone(),
        nonce: "n-1".into(),
        issuer: ISS.into(),
        client_id: CLIENT.into(),
        target_link_uri: "https://tool.example/lti/launch".into(),
        deployment_id: None,
        created_at: NOW,
        expires_at: NOW + 600,
    }))
    .expect("state");
    state
}

/// Validation plus the state's consumption (and every launch write) in the store:
/// what a launch does but for signing the app token.
async fn validate_and_consume(launcher: &Launcher, store: &MemoryStore, token: &str, state: &str) {
    let launch = launcher.validate(token, NOW).await.expect("valid");
    let writes = LaunchWrites::of(
        &launch.platform,
        &launch.context,
        launch.user.clone(),
        state,
        NOW,
        NOW + 3600,
    );
    let claim = StateClaim {
        state: state.to_string(),
        nonce: launch.nonce.clone().expect("nonce"),
        issuer: ISS.into(),
        client_id: CLIENT.into(),
        now: NOW,
    };
    store
        .finish_launch(&claim, &writes)
        .await
        .expect("consumed");
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let Setup {
        launcher,
        login,
        store,
        platform_key,
        token,
        canvas,
    } = setup(&rt);
    // Warm the key cache, as on a warm Lambda instance.
    rt.block_on(launcher.validate(&token, NOW))
        .expect("valid launch");
    let jwk = platform_key.public_jwk();
    let key = jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e).expect("key");
    let mut bare = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    bare.validate_exp = false;
    bare.validate_aud = false;
    bare.required_spec_claims.clear();
    let floor = || {
        jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(&canvas, &key, &bare)
            .expect("decodes")
    };

    let mut group = c.benchmark_group("launch");
    group.throughput(Throughput::Elements(1));
    group.bench_function("validate (verify + claims + normalize, keys cached)", |b| {
        b.to_async(&rt)
            .iter(|| async { launcher.validate(&token, NOW).await.expect("valid") })
    });
    group.bench_function(
        "floor: bare jsonwebtoken::decode, 3.7 KB Canvas token",
        |b| b.iter(floor),
    );
    let mut n = 0u64;
    group.bench_function(
        "validate + consume, 3.7 KB Canvas token, in-memory store",
        |b| {
            b.iter_batched(
                || {
                    n += 1;
                    fresh_state(&store, &rt, n)
                },
                |state| rt.block_on(validate_and_consume(&launcher, &store, &canvas, &state)),
                criterion::BatchSize::SmallInput,
            )
        },
    );
    group.bench_function(
        "Launcher::launch, 3.7 KB Canvas token, local RSA signer",
        |b| {
            b.iter_batched(
                || {
                    n += 1;
                    fresh_state(&store, &rt, n)
                },
                |state| {
                    let form = LaunchForm {
                        id_token: Some(canvas.clone()),
                        state: Some(state.clone()),
                        ..Default::default()
                    };
                    rt.block_on(launcher.launch(&form, Some(&state)))
                        .expect("launch")
                },
                criterion::BatchSize::SmallInput,
            )
        },
    );
    group.finish();

    // The ratio, measured side by side outside criterion's report: short alternating
    // rounds of each, so that a busy machine slows both alike; the median round counts.
    let (rounds, per_round) = (25, 200);
    let mut floor_times = Vec::with_capacity(rounds);
    let mut our_times = Vec::with_capacity(rounds);
    let mut ratios = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let states: Vec<String> = (0..per_round)
            .map(|_| {
                n += 1;
                fresh_state(&store, &rt, n)
            })
            .collect();
        let started = std::time::Instant::now();
        for _ in 0..per_round {
            floor();
        }
        let floor_time = started.elapsed().as_secs_f64();
        let started = std::time::Instant::now();
        for state in &states {
            rt.block_on(validate_and_consume(&launcher, &store, &canvas, state));
        }
        let ours = started.elapsed().as_secs_f64();
        floor_times.push(floor_time * 1e6 / per_round as f64);
        our_times.push(ours * 1e6 / per_round as f64);
        ratios.push(floor_time / ours);
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!(
        "validation + consumption vs bare decode ({} byte token, median of {rounds} rounds): {:.1} µs vs {:.1} µs per launch: throughput ratio {:.2} (target ≥ 0.70)",
        canvas.len(),
        median(&mut our_times),
        median(&mut floor_times),
        median(&mut ratios),
    );

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
