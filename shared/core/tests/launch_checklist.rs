//! Every launch LTI-CHECKLIST.md says must be rejected fails with its own code; every
//! launch it says must be accepted succeeds.

mod common;

use common::*;
use lti_core::error::Problem;
use lti_core::launch::roles::RoleKind;
use lti_core::launch::LaunchContext;
use lti_core::platform::PlatformStore;
use lti_core::user::UserStore;
use serde_json::{json, Value};

const MT: &str = "https://purl.imsglobal.org/spec/lti/claim/message_type";
const VERSION: &str = "https://purl.imsglobal.org/spec/lti/claim/version";
const DEPLOYMENT_ID: &str = "https://purl.imsglobal.org/spec/lti/claim/deployment_id";
const ROLES: &str = "https://purl.imsglobal.org/spec/lti/claim/roles";
const RESOURCE_LINK: &str = "https://purl.imsglobal.org/spec/lti/claim/resource_link";
const TARGET: &str = "https://purl.imsglobal.org/spec/lti/claim/target_link_uri";
const CONTEXT: &str = "https://purl.imsglobal.org/spec/lti/claim/context";

fn remove(claims: &mut Value, name: &str) {
    claims.as_object_mut().expect("object").remove(name);
}

type Mutation = fn(&mut Value);

/// Claim-level rejections: (case, mutation of a valid learner launch, expected code).
const CLAIM_REJECTIONS: &[(&str, Mutation, &str)] = &[
    (
        "iss unknown",
        |c| c["iss"] = json!("https://evil.example"),
        "LTI_ISS_UNKNOWN",
    ),
    ("iss missing", |c| remove(c, "iss"), "LTI_ISS_MISSING"),
    (
        "aud not this tool",
        |c| c["aud"] = json!("someone-else"),
        "LTI_AUD_INVALID",
    ),
    ("aud missing", |c| remove(c, "aud"), "LTI_AUD_INVALID"),
    (
        "aud array without azp",
        |c| c["aud"] = json!([CLIENT, "other"]),
        "LTI_AZP_INVALID",
    ),
    (
        "azp not the client_id",
        |c| {
            c["aud"] = json!([CLIENT, "other"]);
            c["azp"] = json!("other2");
        },
        "LTI_AZP_INVALID",
    ),
    (
        "single aud with a different azp",
        |c| c["azp"] = json!("other"),
        "LTI_AZP_INVALID",
    ),
    (
        "exp in the past",
        |c| c["exp"] = json!(NOW - 61),
        "LTI_TOKEN_EXPIRED",
    ),
    ("exp missing", |c| remove(c, "exp"), "LTI_EXP_INVALID"),
    (
        "iat in the future",
        |c| c["iat"] = json!(NOW + 120),
        "LTI_IAT_INVALID",
    ),
    (
        "iat far in the past",
        |c| c["iat"] = json!(NOW - 86_400),
        "LTI_IAT_INVALID",
    ),
    ("iat missing", |c| remove(c, "iat"), "LTI_IAT_INVALID"),
    (
        "version missing",
        |c| remove(c, VERSION),
        "LTI_VERSION_INVALID",
    ),
    (
        "version 1.1",
        |c| c[VERSION] = json!("1.1.0"),
        "LTI_VERSION_INVALID",
    ),
    (
        "message_type missing",
        |c| remove(c, MT),
        "LTI_MESSAGE_TYPE_MISSING",
    ),
    (
        "message_type unknown",
        |c| c[MT] = json!("LtiFancyRequest"),
        "LTI_MESSAGE_TYPE_UNSUPPORTED",
    ),
    (
        "not an LTI message",
        |c| {
            remove(c, MT);
            remove(c, VERSION);
        },
        "LTI_NOT_LTI_MESSAGE",
    ),
    (
        "deployment_id missing",
        |c| remove(c, DEPLOYMENT_ID),
        "LTI_DEPLOYMENT_MISSING",
    ),
    (
        "deployment_id not registered",
        |c| c[DEPLOYMENT_ID] = json!("999"),
        "LTI_DEPLOYMENT_UNKNOWN",
    ),
    ("sub missing", |c| remove(c, "sub"), "LTI_SUB_MISSING"),
    ("sub empty", |c| c["sub"] = json!(""), "LTI_SUB_MISSING"),
    ("roles missing", |c| remove(c, ROLES), "LTI_ROLES_MISSING"),
    (
        "roles not a list",
        |c| c[ROLES] = json!("Learner"),
        "LTI_ROLES_INVALID",
    ),
    (
        "resource_link missing",
        |c| remove(c, RESOURCE_LINK),
        "LTI_RESOURCE_LINK_MISSING",
    ),
    (
        "resource_link without id",
        |c| c[RESOURCE_LINK] = json!({"title": "x"}),
        "LTI_RESOURCE_LINK_MISSING",
    ),
    ("nonce missing", |c| remove(c, "nonce"), "LTI_NONCE_MISSING"),
    (
        "nonce not the login's",
        |c| c["nonce"] = json!("forged"),
        "LTI_NONCE_INVALID",
    ),
    (
        "target_link_uri elsewhere",
        |c| c[TARGET] = json!("https://evil.example/x"),
        "LTI_TARGET_LINK_URI_INVALID",
    ),
    (
        "target_link_uri missing",
        |c| remove(c, TARGET),
        "LTI_TARGET_LINK_URI_INVALID",
    ),
    (
        "nbf an hour ahead",
        |c| c["nbf"] = json!(NOW + 3600),
        "LTI_TOKEN_NOT_YET_VALID",
    ),
    (
        "nbf not a number",
        |c| c["nbf"] = json!("soon"),
        "LTI_CLAIM_INVALID",
    ),
    (
        "deployment_id a number",
        |c| c[DEPLOYMENT_ID] = json!(1),
        "LTI_CLAIM_INVALID",
    ),
    (
        "sub a number",
        |c| c["sub"] = json!(42),
        "LTI_CLAIM_INVALID",
    ),
    (
        "sub longer than 255 characters",
        |c| c["sub"] = json!("x".repeat(256)),
        "LTI_CLAIM_INVALID",
    ),
    (
        "nonce a number",
        |c| c["nonce"] = json!(12345),
        "LTI_CLAIM_INVALID",
    ),
    (
        "message_type a number",
        |c| c[MT] = json!(1),
        "LTI_CLAIM_INVALID",
    ),
    (
        "resource_link id too long",
        |c| c[RESOURCE_LINK] = json!({"id": "r".repeat(256)}),
        "LTI_CLAIM_INVALID",
    ),
    (
        "deep linking without settings",
        |c| c[MT] = json!("LtiDeepLinkingRequest"),
        "LTI_DEEP_LINKING_SETTINGS_MISSING",
    ),
];

#[tokio::test]
async fn every_claim_the_checklist_forbids_is_rejected_with_its_own_code() {
    let fixture = Fixture::new().await;
    let mut failures = Vec::new();
    for (case, mutate, expected) in CLAIM_REJECTIONS {
        let mut claims = learner_claims(NOW);
        mutate(&mut claims);
        match fixture.launch(claims).await {
            Ok(_) => failures.push(format!("{case}: accepted")),
            Err(e) if e.code() != *expected => {
                failures.push(format!("{case}: {} instead of {expected}", e.code()))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test]
async fn a_rejected_launch_does_not_consume_the_state() {
    let fixture = Fixture::new().await;
    let (state, nonce) = fixture.begin().await;
    let mut bad = with_nonce(learner_claims(NOW), &nonce);
    bad[DEPLOYMENT_ID] = json!("999");
    let token = sign(&header(), &bad, platform_key());
    let err = fixture
        .post(&token, &state, Some(&state))
        .await
        .expect_err("bad");
    assert_eq!(err.code(), "LTI_DEPLOYMENT_UNKNOWN");
    assert!(fixture
        .store
        .stored_state(&state)
        .expect("kept")
        .consumed_at
        .is_none());
    let good = sign(
        &header(),
        &with_nonce(learner_claims(NOW), &nonce),
        platform_key(),
    );
    fixture
        .post(&good, &state, Some(&state))
        .await
        .expect("the state is still usable");
}

/// Token-level rejections: the JWT itself is wrong.
#[tokio::test]
async fn tokens_with_a_bad_header_key_or_signature_are_rejected() {
    let fixture = Fixture::new().await;
    let kid = platform_key().public_jwk().kid.clone();
    type MakeToken = Box<dyn Fn(&Value) -> String>;
    let cases: Vec<(&str, MakeToken, &str)> = vec![
        (
            "no kid",
            Box::new(|c| sign(&json!({"alg": "RS256"}), c, platform_key())),
            "LTI_KID_MISSING",
        ),
        (
            "kid the platform does not publish",
            Box::new(|c| sign(&json!({"alg": "RS256", "kid": "nope"}), c, platform_key())),
            "LTI_KID_UNKNOWN",
        ),
        (
            "alg none",
            Box::new(move |c| format!("{}.{}.", b64(&json!({"alg": "none", "kid": kid})), b64(c))),
            "LTI_ALG_UNSUPPORTED",
        ),
        (
            "HS256 keyed with the public key",
            Box::new(|c| {
                let header = json!({"alg": "HS256", "kid": platform_key().public_jwk().kid});
                let input = format!("{}.{}", b64(&header), b64(c));
                let key = aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA256,
                    platform_key().public_jwk().n.as_bytes(),
                );
                let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
                format!("{input}.{}", base64_url(tag.as_ref()))
            }),
            "LTI_ALG_UNSUPPORTED",
        ),
        (
            "signed by another key under the platform's kid",
            Box::new(|c| sign(&header(), c, other_key())),
            "LTI_SIGNATURE_INVALID",
        ),
        (
            "payload changed after signing",
            Box::new(|c| {
                let token = sign(&header(), c, platform_key());
                let parts: Vec<&str> = token.split('.').collect();
                let mut changed = c.clone();
                changed["sub"] = json!("admin");
                format!("{}.{}.{}", parts[0], b64(&changed), parts[2])
            }),
            "LTI_SIGNATURE_INVALID",
        ),
        (
            "not a JWT",
            Box::new(|_| "hello".to_string()),
            "LTI_JWT_MALFORMED",
        ),
        (
            "signature is not base64url",
            Box::new(|c| {
                let token = sign(&header(), c, platform_key());
                let (signed, _) = token.rsplit_once('.').expect("three parts");
                format!("{signed}.not*base64")
            }),
            "LTI_JWT_MALFORMED",
        ),
        (
            "payload is a JSON array, not a claims object",
            Box::new(|c| {
                let values: Vec<Value> = c.as_object().expect("claims").values().cloned().collect();
                sign(&header(), &Value::Array(values), platform_key())
            }),
            "LTI_JWT_MALFORMED",
        ),
        (
            "header is not JSON",
            Box::new(|c| format!("bm90anNvbg.{}.c2ln", b64(c))),
            "LTI_JWT_MALFORMED",
        ),
    ];
    for (case, make, expected) in cases {
        let (state, nonce) = fixture.begin().await;
        let token = make(&with_nonce(learner_claims(NOW), &nonce));
        let err = fixture
            .post(&token, &state, Some(&state))
            .await
            .expect_err(case);
        assert_eq!(err.code(), expected, "{case}");
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn state_problems_are_rejected_with_their_own_codes() {
    let fixture = Fixture::new().await;

    // Missing state.
    let (_, nonce) = fixture.begin().await;
    let token = sign(
        &header(),
        &with_nonce(learner_claims(NOW), &nonce),
        platform_key(),
    );
    let form = lti_core::launch::LaunchForm {
        id_token: Some(token.clone()),
        ..Default::default()
    };
    let err = fixture
        .launcher
        .launch(&form, None)
        .await
        .expect_err("no state");
    assert_eq!(err.code(), "LTI_STATE_MISSING");

    // Missing id_token.
    let form = lti_core::launch::LaunchForm {
        state: Some("x".into()),
        ..Default::default()
    };
    let err = fixture
        .launcher
        .launch(&form, Some("x"))
        .await
        .expect_err("no token");
    assert_eq!(err.code(), "LTI_ID_TOKEN_MISSING");

    // Cookie missing or for another state: not this browser.
    let (state, nonce) = fixture.begin().await;
    let token = sign(
        &header(),
        &with_nonce(learner_claims(NOW), &nonce),
        platform_key(),
    );
    let err = fixture
        .post(&token, &state, None)
        .await
        .expect_err("no cookie");
    assert_eq!(err.code(), "LTI_STATE_COOKIE_MISSING");
    let err = fixture
        .post(&token, &state, Some("other"))
        .await
        .expect_err("wrong cookie");
    assert_eq!(err.code(), "LTI_STATE_NOT_BOUND");

    // A state this tool never issued.
    let err = fixture
        .post(&token, "never-issued", Some("never-issued"))
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), "LTI_STATE_UNKNOWN");

    // Expired: ten minutes later the state is dead even though the store still has it.
    fixture.clock.advance(601);
    let fresh = sign(
        &header(),
        &with_nonce(learner_claims(NOW + 601), &nonce),
        platform_key(),
    );
    let err = fixture
        .post(&fresh, &state, Some(&state))
        .await
        .expect_err("expired");
    assert_eq!(err.code(), "LTI_STATE_EXPIRED");
}

#[tokio::test]
async fn a_replayed_launch_is_refused_with_the_replay_code() {
    let fixture = Fixture::new().await;
    let (state, nonce) = fixture.begin().await;
    let token = sign(
        &header(),
        &with_nonce(learner_claims(NOW), &nonce),
        platform_key(),
    );
    fixture
        .post(&token, &state, Some(&state))
        .await
        .expect("first");
    let err = fixture
        .post(&token, &state, Some(&state))
        .await
        .expect_err("replay");
    assert_eq!(err.code(), "LTI_NONCE_REPLAYED");
    assert_eq!(err.kind(), lti_core::ErrorKind::Replay);
}

#[tokio::test]
async fn a_platform_error_response_is_reported_as_such() {
    let fixture = Fixture::new().await;
    let form = lti_core::launch::LaunchForm {
        error: Some("login_required".into()),
        error_description: Some("The user is not logged in".into()),
        ..Default::default()
    };
    let err = fixture
        .launcher
        .launch(&form, None)
        .await
        .expect_err("error");
    assert_eq!(err.code(), "LTI_PLATFORM_ERROR");
    assert!(err.public_message().contains("login_required"));
    // Without the state and its cookie the platform's own text is logged, not shown.
    assert!(!err.public_message().contains("The user is not logged in"));
    assert!(err.to_string().contains("The user is not logged in"));
    let bound = lti_core::launch::LaunchForm {
        state: Some("s1".into()),
        ..form
    };
    let err = fixture
        .launcher
        .launch(&bound, Some("s1"))
        .await
        .expect_err("error");
    assert!(err.public_message().contains("The user is not logged in"));
}

fn context_of(handoff: &lti_core::handoff::Handoff) -> LaunchContext {
    let payload = handoff.app_token.split('.').nth(1).expect("payload");
    let claims: Value = lti_core::jwt::decode_part(payload).expect("claims");
    serde_json::from_value(claims["lti"].clone()).expect("context")
}

/// Accepted launches: (case, mutation, check on the normalized context).
#[tokio::test]
async fn every_launch_the_checklist_allows_is_accepted() {
    type Check = fn(&LaunchContext);
    let cases: &[(&str, Mutation, Check)] = &[
        (
            "learner",
            |_| {},
            |ctx| {
                assert_eq!(ctx.roles.mapped, vec![RoleKind::Learner]);
                assert_eq!(ctx.user.name.as_deref(), Some("Ada Lovelace"));
            },
        ),
        (
            "instructor with several roles",
            |c| {
                c[ROLES] = json!([
                    INSTRUCTOR,
                    "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty",
                    "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator"
                ])
            },
            |ctx| {
                assert_eq!(
                    ctx.roles.mapped,
                    vec![RoleKind::Instructor, RoleKind::Admin]
                );
                assert_eq!(ctx.roles.raw.len(), 3);
            },
        ),
        (
            "short role names",
            |c| c[ROLES] = json!(["Instructor", "Learner"]),
            |ctx| {
                assert_eq!(
                    ctx.roles.mapped,
                    vec![RoleKind::Instructor, RoleKind::Learner]
                );
            },
        ),
        (
            "unknown role URIs",
            |c| c[ROLES] = json!(["http://example.com/roles#Wizard"]),
            |ctx| {
                assert_eq!(ctx.roles.mapped, vec![RoleKind::Other]);
                assert_eq!(ctx.roles.raw, vec!["http://example.com/roles#Wizard"]);
            },
        ),
        (
            "no role (empty array)",
            |c| c[ROLES] = json!([]),
            |ctx| {
                assert!(ctx.roles.mapped.is_empty());
            },
        ),
        (
            "email only",
            |c| {
                for k in ["name", "given_name", "family_name"] {
                    remove(c, k);
                }
            },
            |ctx| {
                assert_eq!(ctx.user.email.as_deref(), Some("ada@example.edu"));
                assert!(ctx.user.name.is_none());
            },
        ),
        (
            "name only",
            |c| remove(c, "email"),
            |ctx| {
                assert!(ctx.user.email.is_none());
                assert_eq!(ctx.user.name.as_deref(), Some("Ada Lovelace"));
            },
        ),
        (
            "given and family name without name",
            |c| remove(c, "name"),
            |ctx| {
                assert_eq!(ctx.user.name.as_deref(), Some("Ada Lovelace"));
            },
        ),
        (
            "no PII at all",
            |c| {
                for k in ["name", "given_name", "family_name", "email"] {
                    remove(c, k);
                }
            },
            |ctx| {
                assert_eq!(ctx.user.sub, "user-42");
                assert!(ctx.user.name.is_none() && ctx.user.email.is_none());
            },
        ),
        (
            "no context",
            |c| remove(c, CONTEXT),
            |ctx| assert!(ctx.context.is_none()),
        ),
        (
            "unknown claims are kept",
            |c| c["https://example.com/claim/x"] = json!({"a": 1}),
            |ctx| {
                assert_eq!(
                    ctx.extensions["https://example.com/claim/x"],
                    json!({"a": 1})
                );
            },
        ),
        (
            "aud array with azp (Schoology)",
            |c| {
                c["aud"] = json!([CLIENT, "other"]);
                c["azp"] = json!(CLIENT);
            },
            |ctx| {
                assert_eq!(ctx.platform.client_id, CLIENT);
            },
        ),
        ("aud array of one", |c| c["aud"] = json!([CLIENT]), |_| {}),
        (
            "exp just past, within 60 s leeway",
            |c| c["exp"] = json!(NOW - 30),
            |_| {},
        ),
        (
            "deep linking request",
            |c| {
                c[MT] = json!("LtiDeepLinkingRequest");
                remove(c, RESOURCE_LINK);
                c["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = json!({
                    "deep_link_return_url": "https://lms.example.edu/dl/return",
                    "accept_types": ["ltiResourceLink"], "accept_presentation_document_targets": ["iframe"],
                    "data": "opaque-123"
                });
            },
            |ctx| {
                let dl = ctx.services.deep_linking.as_ref().expect("settings");
                assert_eq!(dl.data, Some(json!("opaque-123")));
                assert_eq!(ctx.message_type, "LtiDeepLinkingRequest");
            },
        ),
    ];
    let fixture = Fixture::new().await;
    for (case, mutate, check) in cases {
        let mut claims = learner_claims(NOW);
        mutate(&mut claims);
        let handoff = fixture
            .launch(claims)
            .await
            .unwrap_or_else(|e| panic!("{case}: rejected with {}: {e}", e.code()));
        check(&context_of(&handoff));
    }
}

#[tokio::test]
async fn the_normalized_context_carries_everything_the_platform_sent() {
    let fixture = Fixture::new().await;
    let handoff = fixture.launch(learner_claims(NOW)).await.expect("launch");
    let ctx = context_of(&handoff);
    assert_eq!(ctx.platform.issuer, ISS);
    assert_eq!(ctx.platform.deployment_id, DEPLOYMENT);
    assert_eq!(
        ctx.platform.name, "Example Moodle",
        "tool_platform.name wins"
    );
    let course = ctx.context.as_ref().expect("context");
    assert_eq!(
        (course.id.as_str(), course.label.as_deref()),
        ("course-7", Some("CS101"))
    );
    assert_eq!(
        ctx.resource_link.as_ref().expect("link").title.as_deref(),
        Some("Quiz 1")
    );
    assert_eq!(ctx.custom["chapter"], json!("3"));
    let ags = ctx.services.ags.as_ref().expect("ags");
    assert!(ags
        .lineitems
        .as_deref()
        .expect("url")
        .ends_with("?type_id=1"));
    assert!(ctx.services.nrps.is_some());
    assert_eq!(
        ctx.launch_presentation
            .as_ref()
            .and_then(|p| p.document_target.as_deref()),
        Some("iframe")
    );
    assert!(
        ctx.extensions.is_empty(),
        "known claims are not extensions: {:?}",
        ctx.extensions
    );
}

#[tokio::test]
async fn the_app_token_is_signed_by_the_tool_and_names_the_stable_user() {
    let fixture = Fixture::new().await;
    let handoff = fixture.launch(learner_claims(NOW)).await.expect("launch");
    let jwk = tool_key().public_jwk().clone();
    let key = jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e).expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["https://app.example"]);
    validation.set_issuer(&[TOOL]);
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<Value>(&handoff.app_token, &key, &validation).expect("valid");
    assert_eq!(data.header.kid.as_deref(), Some(jwk.kid.as_str()));
    let user = fixture
        .store
        .user(&user_id("user-42"))
        .await
        .expect("read")
        .expect("provisioned");
    assert_eq!(data.claims["sub"], json!(user.id));
    assert_eq!(data.claims["exp"], json!(NOW + 3600));
    assert_eq!(handoff.landing_url, "https://app.example/lti/landing");
}

#[tokio::test]
async fn a_target_link_uri_on_an_allowed_app_origin_becomes_the_landing_url() {
    let fixture = Fixture::new().await;
    let mut claims = learner_claims(NOW);
    claims[TARGET] = json!("https://app.example/courses/7/quiz");
    let handoff = fixture.launch(claims).await.expect("launch");
    assert_eq!(handoff.landing_url, "https://app.example/courses/7/quiz");
}

#[tokio::test]
async fn users_are_provisioned_once_and_updated_later() {
    let fixture = Fixture::new().await;
    fixture.launch(learner_claims(NOW)).await.expect("first");
    let first = fixture
        .store
        .user(&user_id("user-42"))
        .await
        .expect("read")
        .expect("created");
    fixture.clock.advance(100);
    let mut claims = learner_claims(NOW + 100);
    claims["email"] = json!("ada@new.example.edu");
    remove(&mut claims, "name");
    remove(&mut claims, "given_name");
    remove(&mut claims, "family_name");
    fixture.launch(claims).await.expect("second");
    let second = fixture
        .store
        .user(&user_id("user-42"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(second.id, first.id, "the id is stable");
    assert_eq!(second.email.as_deref(), Some("ada@new.example.edu"));
    assert_eq!(
        second.name, None,
        "the record mirrors what the platform shares now: no name any more"
    );
    assert_eq!((second.created_at, second.last_seen_at), (NOW, NOW + 100));
}

#[tokio::test]
async fn a_platform_that_accepts_new_deployments_records_them() {
    let fixture = Fixture::new().await;
    let mut platform = fixture
        .store
        .platform(ISS, CLIENT)
        .await
        .expect("read")
        .expect("p");
    platform.accept_new_deployments = true;
    fixture.store.save_platform(platform).await.expect("save");
    let mut claims = learner_claims(NOW);
    claims[DEPLOYMENT_ID] = json!("43");
    fixture.launch(claims).await.expect("accepted");
    assert!(fixture
        .store
        .deployment(ISS, CLIENT, "43")
        .await
        .expect("read")
        .is_some());
}

#[tokio::test]
async fn a_rotated_platform_key_is_found_after_one_refetch() {
    let fixture = Fixture::new().await;
    fixture.launch(learner_claims(NOW)).await.expect("old key");
    assert_eq!(fixture.jwks.fetch_count(), 1);
    // The platform rotates to a new key.
    *fixture.jwks.keys.lock().expect("lock") = vec![other_key().public_jwk().clone()];
    let (state, nonce) = fixture.begin().await;
    let rotated_header = json!({"alg": "RS256", "kid": other_key().public_jwk().kid});
    let token = sign(
        &rotated_header,
        &with_nonce(learner_claims(NOW), &nonce),
        other_key(),
    );
    fixture
        .post(&token, &state, Some(&state))
        .await
        .expect("new key works");
    assert_eq!(fixture.jwks.fetch_count(), 2);
}

#[tokio::test]
async fn a_launch_with_many_custom_parameters_gets_a_complete_app_token_over_4_kib() {
    // Canvas launches with a handful of custom variables produce app tokens larger
    // than the 4096 bytes KMS signs as RAW (found by the interop suite).
    let fixture = Fixture::new().await;
    let mut claims = learner_claims(NOW);
    let custom: serde_json::Map<String, Value> = (0..40)
        .map(|i| {
            (
                format!("canvas_variable_{i}"),
                json!(format!("value-{i}-{}", "x".repeat(60))),
            )
        })
        .collect();
    claims["https://purl.imsglobal.org/spec/lti/claim/custom"] = Value::Object(custom);
    let handoff = fixture.launch(claims).await.expect("accepted");
    assert!(
        handoff.app_token.len() > 4096,
        "{}",
        handoff.app_token.len()
    );
    let ctx = context_of(&handoff);
    assert_eq!(ctx.custom.len(), 40, "nothing left out");
}
