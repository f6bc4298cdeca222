//! Hostile input (issue 14, item 1): property tests of every decoder in the core that
//! reads what a browser or a platform sends — the id_token's three parts and its
//! claims, the launch form and the state cookie, the login parameters, JWKS
//! documents, `Cache-Control` and `Link` headers, and the answers of token, AGS and
//! NRPS endpoints. Each case must end in a result or an error whose code the README
//! documents, in bounded time, and a refused launch never consumes its login.
//!
//! The number of cases is fixed and the seed is fixed, so `cargo test` is
//! reproducible; `tests/fuzz.sh` runs the same tests longer (`PROPTEST_CASES`,
//! `PROPTEST_RNG_SEED`).

mod common;
#[path = "services/support.rs"]
mod support;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use lti_core::error::Problem;
use lti_core::keys::{parse_jwks, CacheControl, FetchError, FetchedKeySet, KeySetFetcher};
use lti_core::keys::{KeyError, PlatformKeys};
use lti_core::launch::LaunchForm;
use lti_core::login::LoginRequest;
use lti_core::services::ags::{LineItemFilter, ResultsQuery, ScoreInput};
use lti_core::services::nrps::MembersQuery;
use lti_core::services::outbound::OutboundResponse;
use lti_core::services::paging::parse_links;
use lti_core::services::testing::{is_token_request, FakePlatform};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestRunner};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Longest any single case may take (bounded time); debug build, 2 cores.
const CASE_BUDGET: Duration = Duration::from_secs(5);

/// A runner with `cases` cases (or `PROPTEST_CASES`), a fixed seed (or
/// `PROPTEST_RNG_SEED`) and no regression files: a failure found becomes a named
/// regression test below.
fn runner(cases: u32) -> TestRunner {
    let env = |name: &str| std::env::var(name).ok();
    TestRunner::new(ProptestConfig {
        cases: env("PROPTEST_CASES")
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        rng_seed: RngSeed::Fixed(
            env("PROPTEST_RNG_SEED")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0x5EED_1414),
        ),
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })
}

/// Every error code the README documents (its tables and its prose).
fn documented_codes() -> &'static BTreeSet<String> {
    static CODES: OnceLock<BTreeSet<String>> = OnceLock::new();
    CODES.get_or_init(|| {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
        readme
            .split('`')
            .filter(|word| {
                word.len() > 5
                    && word.contains('_')
                    && word
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            })
            .map(str::to_string)
            .collect()
    })
}

fn assert_documented(error: &dyn Problem) -> Result<(), TestCaseError> {
    prop_assert!(
        documented_codes().contains(error.code()),
        "undocumented error code {} ({error})",
        error.code()
    );
    prop_assert!(!error.public_message().is_empty());
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

// ---------------------------------------------------------------- strategies

/// Text a hostile client sends: printable, control characters, any Unicode, and
/// the separators the decoders split on.
fn text(max: usize) -> BoxedStrategy<String> {
    prop_oneof![
        proptest::string::string_regex(&format!("[ -~]{{0,{max}}}")).expect("regex"),
        proptest::string::string_regex(&format!("[.=,;\"<>%+/_a-zA-Z0-9-]{{0,{max}}}"))
            .expect("regex"),
        proptest::collection::vec(any::<char>(), 0..max).prop_map(|c| c.into_iter().collect()),
        Just(String::new()),
    ]
    .boxed()
}

/// Any JSON value, nested a few levels, with numbers at the edges.
fn json_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop_oneof![
            Just(json!(-1)),
            Just(json!(0)),
            Just(json!(1e300)),
            Just(json!(NOW)),
            Just(json!(i64::MAX)),
            Just(json!(i64::MIN))
        ],
        text(40).prop_map(Value::String),
        Just(json!("x".repeat(70_000))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(text(12), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A part of a compact JWS: garbage, base64url of garbage, or base64url of JSON.
fn jws_part() -> BoxedStrategy<String> {
    prop_oneof![
        text(60),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        json_value().prop_map(|v| b64(&v)),
        // Headers that get past the first checks.
        (
            prop_oneof![
                Just(json!("RS256")),
                Just(json!("none")),
                Just(json!("HS256")),
                json_value()
            ],
            prop_oneof![Just(json!(platform_key().public_jwk().kid)), json_value()],
        )
            .prop_map(|(alg, kid)| b64(&json!({"alg": alg, "kid": kid}))),
        // Payloads that name the registration.
        json_value().prop_map(|extra| {
            let mut claims = learner_claims(NOW);
            claims["extra"] = extra;
            b64(&claims)
        }),
        // Standard base64 with padding, and bytes that are not base64 at all.
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| { base64::engine::general_purpose::STANDARD.encode(b) }),
    ]
    .boxed()
}

/// An id_token as a hostile client might post it.
fn id_token() -> BoxedStrategy<String> {
    prop_oneof![
        3 => (jws_part(), jws_part(), jws_part()).prop_map(|(h, p, s)| format!("{h}.{p}.{s}")),
        1 => proptest::collection::vec(jws_part(), 0..6).prop_map(|parts| parts.join(".")),
        1 => text(200),
        // A real header and payload with a forged signature.
        1 => jws_part().prop_map(|s| {
            let claims = learner_claims(NOW);
            format!("{}.{}.{s}", b64(&header()), b64(&claims))
        }),
    ]
    .boxed()
}

/// The claims a launch is made of, to break one at a time.
const CLAIM_NAMES: &[&str] = &[
    "iss",
    "aud",
    "azp",
    "sub",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "jti",
    "name",
    "email",
    "picture",
    "given_name",
    "https://purl.imsglobal.org/spec/lti/claim/message_type",
    "https://purl.imsglobal.org/spec/lti/claim/version",
    "https://purl.imsglobal.org/spec/lti/claim/deployment_id",
    "https://purl.imsglobal.org/spec/lti/claim/target_link_uri",
    "https://purl.imsglobal.org/spec/lti/claim/resource_link",
    "https://purl.imsglobal.org/spec/lti/claim/roles",
    "https://purl.imsglobal.org/spec/lti/claim/role_scope_mentor",
    "https://purl.imsglobal.org/spec/lti/claim/context",
    "https://purl.imsglobal.org/spec/lti/claim/custom",
    "https://purl.imsglobal.org/spec/lti/claim/tool_platform",
    "https://purl.imsglobal.org/spec/lti/claim/launch_presentation",
    "https://purl.imsglobal.org/spec/lti/claim/lis",
    "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint",
    "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice",
    "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings",
];

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, Value),
    Remove(usize),
    /// Sets a field inside an object claim.
    SetInner(usize, String, Value),
    MessageType(&'static str),
}

fn mutation() -> BoxedStrategy<Mutation> {
    let claim = 0..CLAIM_NAMES.len();
    prop_oneof![
        (claim.clone(), json_value()).prop_map(|(c, v)| Mutation::Set(c, v)),
        claim.clone().prop_map(Mutation::Remove),
        (
            claim,
            prop_oneof![
                Just("id".to_string()),
                Just("lineitems".to_string()),
                Just("lineitem".to_string()),
                Just("scope".to_string()),
                Just("context_memberships_url".to_string()),
                Just("deep_link_return_url".to_string()),
                Just("accept_types".to_string()),
                Just("return_url".to_string()),
                Just("type".to_string()),
                text(10)
            ],
            json_value()
        )
            .prop_map(|(c, k, v)| Mutation::SetInner(c, k, v)),
        prop_oneof![
            Just("LtiDeepLinkingRequest"),
            Just("LtiSubmissionReviewRequest"),
            Just("LtiResourceLinkRequest")
        ]
        .prop_map(Mutation::MessageType),
    ]
    .boxed()
}

fn apply(claims: &mut Value, mutation: &Mutation) {
    let Some(object) = claims.as_object_mut() else {
        return;
    };
    match mutation {
        Mutation::Set(c, v) => {
            object.insert(CLAIM_NAMES[*c].to_string(), v.clone());
        }
        Mutation::Remove(c) => {
            object.remove(CLAIM_NAMES[*c]);
        }
        Mutation::SetInner(c, k, v) => {
            let entry = object
                .entry(CLAIM_NAMES[*c].to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = entry {
                inner.insert(k.clone(), v.clone());
            }
        }
        Mutation::MessageType(t) => {
            object.insert(CLAIM_NAMES[13].to_string(), json!(t));
            object.insert(
                CLAIM_NAMES[27].to_string(),
                json!({"deep_link_return_url": "https://lms.example.edu/dl", "accept_types": ["ltiResourceLink"], "accept_presentation_document_targets": ["iframe"]}),
            );
        }
    }
}

// ---------------------------------------------------------------- id_token

#[test]
fn fuzz_id_token_parts_are_refused_with_a_documented_code_and_leave_the_login_unused() {
    let rt = runtime();
    let fixture = rt.block_on(Fixture::new());
    let (state, _) = rt.block_on(fixture.begin());
    runner(400)
        .run(&id_token(), |token| {
            let started = Instant::now();
            let result = rt.block_on(fixture.post(&token, &state, Some(&state)));
            prop_assert!(started.elapsed() < CASE_BUDGET);
            // Nobody can forge the platform's signature: every one is refused…
            let Err(error) = result else {
                return Err(TestCaseError::fail("a forged id_token launched"));
            };
            assert_documented(&error)?;
            // …and the login it was posted for is still there to be used.
            let stored = fixture.store.stored_state(&state).expect("state kept");
            prop_assert_eq!(stored.consumed_at, None);
            Ok(())
        })
        .expect("property");
}

#[test]
fn fuzz_signed_claims_launch_or_are_refused_with_a_documented_code() {
    let rt = runtime();
    let fixture = rt.block_on(Fixture::new());
    let strategy = (proptest::collection::vec(mutation(), 1..5), any::<bool>());
    runner(300)
        .run(&strategy, |(mutations, keep_nonce)| {
            let (state, nonce) = rt.block_on(fixture.begin());
            let mut claims = learner_claims(NOW);
            for m in &mutations {
                apply(&mut claims, m);
            }
            if keep_nonce && claims.is_object() {
                claims["nonce"] = json!(nonce);
            }
            let token = sign(&header(), &claims, platform_key());
            let started = Instant::now();
            let result = rt.block_on(fixture.post(&token, &state, Some(&state)));
            prop_assert!(started.elapsed() < CASE_BUDGET);
            let stored = fixture.store.stored_state(&state).expect("state kept");
            match result {
                Ok(_) => prop_assert!(stored.consumed_at.is_some()),
                Err(error) => {
                    assert_documented(&error)?;
                    // A refused launch never uses up the login (except when the refusal
                    // is the consumption itself: a nonce that is not the login's).
                    if error.code() != "LTI_NONCE_INVALID" {
                        prop_assert_eq!(stored.consumed_at, None, "{}", error.code());
                    }
                }
            }
            Ok(())
        })
        .expect("property");
}

// ---------------------------------------------------------------- forms and cookies

#[test]
fn fuzz_launch_forms_and_cookies_are_refused_with_a_documented_code() {
    let rt = runtime();
    let fixture = rt.block_on(Fixture::new());
    let (state, _) = rt.block_on(fixture.begin());
    let field = || {
        prop_oneof![
            Just(None),
            text(80).prop_map(Some),
            Just(Some(state.clone())),
            Just(Some("s".repeat(5_000)))
        ]
    };
    let strategy = (
        prop::option::of(id_token()),
        field(),
        prop::option::of(text(40)),
        prop::option::of(text(200)),
        field(),
        prop::option::of(text(60)),
        prop::option::of(text(8)),
    );
    runner(300)
        .run(
            &strategy,
            |(id_token, form_state, error, error_description, cookie, proof, failed)| {
                let form = LaunchForm {
                    id_token,
                    state: form_state,
                    error,
                    error_description,
                    lti_storage_proof: proof,
                    lti_storage_failed: failed,
                };
                let result = rt.block_on(fixture.launcher.launch(&form, cookie.as_deref()));
                let Err(error) = result else {
                    return Err(TestCaseError::fail("a forged launch succeeded"));
                };
                assert_documented(&error)?;
                // The platform's own words are shown only to the browser that logged in.
                let bound =
                    form.state.as_deref().is_some_and(|s| !s.is_empty()) && form.state == cookie;
                if error.code() == "LTI_PLATFORM_ERROR" && !bound {
                    if let Some(d) = form.error_description.as_deref().filter(|d| d.len() > 8) {
                        prop_assert!(!error.public_message().contains(d));
                    }
                }
                prop_assert_eq!(
                    fixture
                        .store
                        .stored_state(&state)
                        .expect("kept")
                        .consumed_at,
                    None
                );
                Ok(())
            },
        )
        .expect("property");
}

#[test]
fn fuzz_login_parameters_redirect_or_are_refused_with_a_documented_code() {
    let rt = runtime();
    let fixture = rt.block_on(Fixture::new());
    let param = |real: &'static str| {
        prop_oneof![
            Just(None),
            Just(Some(real.to_string())),
            text(60).prop_map(Some),
            Just(Some("p".repeat(9_000)))
        ]
    };
    let strategy = (
        param(ISS),
        param("hint"),
        param("https://tool.example/lti/launch"),
        param(CLIENT),
        param("message-hint"),
        param(DEPLOYMENT),
        param(DEPLOYMENT),
        param("post_message_forwarding"),
    );
    runner(300)
        .run(
            &strategy,
            |(iss, hint, target, client, message_hint, d1, d2, storage_target)| {
                let request = LoginRequest {
                    iss,
                    login_hint: hint,
                    target_link_uri: target,
                    client_id: client,
                    lti_message_hint: message_hint,
                    lti_deployment_id: d1,
                    deployment_id: d2,
                    lti_storage_target: storage_target,
                };
                match rt.block_on(fixture.login.initiate(&request)) {
                    Ok(redirect) => {
                        // Only the registered platform gets a redirect, to its own endpoint.
                        prop_assert_eq!(request.iss.as_deref(), Some(ISS));
                        prop_assert!(redirect.location.starts_with("https://"));
                        prop_assert_eq!(redirect.state.len(), 43);
                    }
                    Err(error) => assert_documented(&error)?,
                }
                Ok(())
            },
        )
        .expect("property");
}

// ---------------------------------------------------------------- platform keys

#[test]
fn fuzz_cache_control_never_gives_a_negative_lifetime() {
    let directive = prop_oneof![
        text(30),
        (
            prop_oneof![
                Just("max-age"),
                Just("MAX-AGE"),
                Just("no-store"),
                Just("no-cache"),
                Just("must-revalidate"),
                Just("s-maxage")
            ],
            prop_oneof![
                Just(String::new()),
                any::<i64>().prop_map(|n| format!("={n}")),
                "[0-9]{1,40}".prop_map(|n| format!("={n}")),
                text(12).prop_map(|v| format!("=\"{v}\"")),
                text(12).prop_map(|v| format!("={v}")),
            ]
        )
            .prop_map(|(n, v)| format!("{n}{v}")),
    ];
    let header = proptest::collection::vec(directive, 0..8).prop_map(|d| d.join(", "));
    let strategy = (
        proptest::collection::vec(header, 0..3),
        prop::option::of(any::<i64>()),
    );
    runner(2_000)
        .run(&strategy, |(values, age)| {
            let parsed = CacheControl::parse(&values);
            if let Some(max_age) = parsed.max_age {
                prop_assert!(max_age >= 0);
            }
            let fetched = FetchedKeySet::new(Vec::new(), &parsed, age);
            if let Some(max_age) = fetched.max_age {
                prop_assert!(
                    max_age >= 0,
                    "lifetime {max_age} from {values:?} age {age:?}"
                );
            }
            Ok(())
        })
        .expect("property");
}

/// A JWKS endpoint that answers whatever the case says.
struct ScriptedJwks(Mutex<Result<FetchedKeySet, FetchError>>);

#[async_trait]
impl KeySetFetcher for ScriptedJwks {
    async fn fetch(&self, _url: &str) -> Result<FetchedKeySet, FetchError> {
        self.0.lock().expect("lock").clone()
    }
}

fn jwk() -> BoxedStrategy<Value> {
    let real = platform_key().public_jwk().clone();
    let real = serde_json::to_value(real).expect("jwk");
    prop_oneof![
        json_value(),
        Just(real.clone()),
        (0..6usize, json_value()).prop_map(move |(i, v)| {
            let mut jwk = real.clone();
            let field = ["kid", "n", "e", "kty", "alg", "use"][i];
            jwk[field] = v;
            jwk
        }),
        (text(20), text(40), text(8))
            .prop_map(|(kid, n, e)| json!({"kty": "RSA", "kid": kid, "n": n, "e": e})),
    ]
    .boxed()
}

#[test]
fn fuzz_jwks_documents_give_keys_or_a_documented_code() {
    let rt = runtime();
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        proptest::collection::vec(jwk(), 0..5)
            .prop_map(|keys| json!({ "keys": keys }).to_string().into_bytes()),
    ];
    let strategy = (body, prop::option::of(0i64..1_000), any::<bool>());
    runner(400)
        .run(&strategy, |(body, max_age, no_store)| {
            // The parser alone…
            let _ = parse_jwks(&body);
            // …and the cache in front of it, as a launch uses it.
            let fetcher = Arc::new(ScriptedJwks(Mutex::new(Ok(FetchedKeySet {
                body,
                max_age,
                no_store,
                must_revalidate: false,
            }))));
            let keys = PlatformKeys::new(fetcher);
            let kid = &platform_key().public_jwk().kid;
            let started = Instant::now();
            let result = rt.block_on(keys.keys("https://lms.example.edu/jwks", kid, NOW));
            prop_assert!(started.elapsed() < CASE_BUDGET);
            match result {
                Ok(found) => prop_assert!(!found.is_empty()),
                Err(KeyError::UnknownKid) => {}
                Err(KeyError::Fetch(error)) => assert_documented(&error)?,
            }
            Ok(())
        })
        .expect("property");
}

// ---------------------------------------------------------------- Link headers

#[test]
fn fuzz_link_headers_give_absolute_urls_or_nothing() {
    let link = prop_oneof![
        text(60),
        (
            prop_oneof![
                text(30),
                Just("https://lms.example.edu/page2".to_string()),
                Just("?page=3".to_string()),
                Just("//other.example/x".to_string()),
                Just("javascript:alert(1)".to_string())
            ],
            proptest::collection::vec(
                (
                    prop_oneof![Just("rel"), Just("REL"), Just("title"), Just("type")],
                    prop_oneof![
                        Just("next".to_string()),
                        Just("\"next last\"".to_string()),
                        text(12)
                    ]
                ),
                0..4
            )
        )
            .prop_map(|(url, params)| {
                let params: String = params
                    .into_iter()
                    .map(|(k, v)| format!("; {k}={v}"))
                    .collect();
                format!("<{url}>{params}")
            }),
    ];
    let header = proptest::collection::vec(link, 0..6).prop_map(|l| l.join(", "));
    let strategy = proptest::collection::vec(header, 0..3);
    runner(2_000)
        .run(&strategy, |values| {
            let total: usize = values.iter().map(String::len).sum();
            let links = parse_links(
                values.iter().map(String::as_str),
                "https://lms.example.edu/lineitems",
            );
            prop_assert!(links.len() <= total / 2 + 1);
            for link in links {
                prop_assert!(url::Url::parse(&link.url).is_ok(), "{}", link.url);
            }
            Ok(())
        })
        .expect("property");
}

// ---------------------------------------------------------------- platform answers

const TOKEN_URL: &str = "https://lms.example.edu/token";
const LINEITEMS: &str = "https://lms.example.edu/courses/1/lineitems";
const LINEITEM: &str = "https://lms.example.edu/courses/1/lineitems/1";
const ROSTER: &str = "https://lms.example.edu/courses/1/memberships";
const ACCESS_TOKEN: &str = "fuzz-access-token-5f0c2a9e7d";

/// An answer a platform might give: any status, a few headers, and a body that is
/// garbage, any JSON, or a plausible answer with one field broken.
fn platform_answer(plausible: Value) -> BoxedStrategy<OutboundResponse> {
    let status = prop_oneof![
        4 => Just(200u16),
        1 => Just(201u16),
        1 => prop_oneof![Just(204u16), Just(302), Just(400), Just(401), Just(429), Just(500)],
        1 => 0u16..1000,
    ];
    let header = prop_oneof![
        Just(("Content-Type".to_string(), "application/json".to_string())),
        text(20).prop_map(|v| ("Retry-After".to_string(), v)),
        text(60).prop_map(|v| ("Link".to_string(), v)),
        Just((
            "Link".to_string(),
            format!("<{LINEITEMS}?page=2>; rel=\"next\"")
        )),
        (text(10), text(20)),
    ];
    let broken = {
        let plausible = plausible.clone();
        (text(16), json_value()).prop_map(move |(k, v)| {
            let mut answer = plausible.clone();
            match &mut answer {
                Value::Object(map) => {
                    let key = map.keys().nth(k.len() % map.len().max(1)).cloned();
                    map.insert(key.unwrap_or(k), v);
                }
                Value::Array(items) => {
                    if let Some(Value::Object(first)) = items.first_mut() {
                        let key = first.keys().nth(k.len() % first.len().max(1)).cloned();
                        first.insert(key.unwrap_or(k), v);
                    } else {
                        items.push(v);
                    }
                }
                _ => {}
            }
            answer.to_string().into_bytes()
        })
    };
    let body = prop_oneof![
        1 => proptest::collection::vec(any::<u8>(), 0..120),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => Just(plausible.to_string().into_bytes()),
        4 => broken,
        // A platform that echoes the bearer token it was sent in its error.
        1 => Just(format!("{{\"error\": \"invalid bearer {ACCESS_TOKEN}\"}}").into_bytes()),
    ];
    (status, proptest::collection::vec(header, 0..4), body)
        .prop_map(|(status, headers, body)| OutboundResponse {
            status,
            headers,
            body,
        })
        .boxed()
}

fn token_answer_value() -> Value {
    json!({"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600,
           "scope": "https://purl.imsglobal.org/spec/lti-ags/scope/score"})
}

#[test]
fn fuzz_platform_answers_to_token_ags_and_nrps_calls_give_documented_codes() {
    let rt = runtime();
    let line_items = json!([{"id": LINEITEM, "label": "Quiz", "scoreMaximum": 10,
                             "resourceLinkId": "rl-1", "tag": "t"}]);
    let results = json!([{"id": format!("{LINEITEM}/results/1"), "userId": "u1",
                          "resultScore": 5, "resultMaximum": 10, "scoreOf": LINEITEM}]);
    let members = json!({"id": ROSTER, "context": {"id": "c1"},
                         "members": [{"user_id": "u1", "roles": [LEARNER], "status": "Active",
                                      "name": "Ada"}]});
    let strategy = (
        platform_answer(token_answer_value()),
        prop_oneof![
            platform_answer(line_items),
            platform_answer(results),
            platform_answer(members)
        ],
        0..4usize,
    );
    runner(400)
        .run(&strategy, |(token, service, call)| {
            // The token the tool holds once the token endpoint issued it.
            let issued = (200..300).contains(&token.status);
            let fake = FakePlatform::new(move |request| {
                Ok(if is_token_request(request) {
                    token.clone()
                } else {
                    service.clone()
                })
            });
            let tool = support::tool(&fake);
            let lms = support::registration("https://lms.example.edu", "client", TOKEN_URL, None);
            let ep = support::endpoint(Some(LINEITEMS), Some(LINEITEM), support::all_scopes());
            let started = Instant::now();
            let error = rt.block_on(async {
                match call {
                    0 => tool
                        .ags
                        .line_items(&lms, &ep, &LineItemFilter::default(), None)
                        .await
                        .err(),
                    1 => tool
                        .ags
                        .results(&lms, &ep, LINEITEM, &ResultsQuery::default(), None)
                        .await
                        .err(),
                    2 => {
                        let score = ScoreInput {
                            user_id: "u1".into(),
                            score_given: Some(1.0),
                            score_maximum: Some(1.0),
                            ..Default::default()
                        };
                        tool.ags
                            .post_score(&lms, &ep, LINEITEM, score, None)
                            .await
                            .err()
                    }
                    _ => tool
                        .nrps
                        .members(&lms, ROSTER, &MembersQuery::default(), None, None)
                        .await
                        .err(),
                }
            });
            prop_assert!(started.elapsed() < CASE_BUDGET);
            if let Some(error) = error {
                assert_documented(&error)?;
                // What the platform said is never shown or logged with the token the
                // tool holds in it.
                if issued {
                    prop_assert!(!error.public_message().contains(ACCESS_TOKEN));
                    prop_assert!(!error.to_string().contains(ACCESS_TOKEN));
                }
            }
            // Bounded: a page is never asked for more than the paging limit allows.
            prop_assert!(fake.requests().len() <= 2 * (lti_core::services::paging::MAX_PAGES + 1));
            Ok(())
        })
        .expect("property");
}
