//! Optional claims are read leniently (coerced or dropped, with a warning), required
//! claims stay strict, unknown members of known claims are kept, and time claims
//! cannot overflow (issue: trust boundaries, items 5–8, 11; hardening item 6).

mod common;

use common::*;
use lti_core::error::Problem;
use lti_core::launch::roles::RoleKind;
use lti_core::launch::LaunchContext;
use serde_json::{json, Value};

const CONTEXT: &str = "https://purl.imsglobal.org/spec/lti/claim/context";
const RESOURCE_LINK: &str = "https://purl.imsglobal.org/spec/lti/claim/resource_link";
const PRESENTATION: &str = "https://purl.imsglobal.org/spec/lti/claim/launch_presentation";
const NRPS: &str = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice";
const DL: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings";
const MT: &str = "https://purl.imsglobal.org/spec/lti/claim/message_type";
const ROLES: &str = "https://purl.imsglobal.org/spec/lti/claim/roles";

fn context_of(handoff: &lti_core::handoff::Handoff) -> LaunchContext {
    let payload = handoff.app_token.split('.').nth(1).expect("payload");
    let claims: Value = lti_core::jwt::decode_part(payload).expect("claims");
    serde_json::from_value(claims["lti"].clone()).expect("context")
}

async fn accepted(claims: Value) -> LaunchContext {
    let fixture = Fixture::new().await;
    match fixture.launch(claims).await {
        Ok(handoff) => context_of(&handoff),
        Err(e) => panic!("refused with {}: {e}", e.code()),
    }
}

#[tokio::test]
async fn harmless_shapes_of_optional_claims_are_coerced_with_a_warning() {
    let mut claims = learner_claims(NOW);
    claims[CONTEXT] = json!({"id": 1234, "title": "Algebra", "type": "CourseSection"});
    claims[RESOURCE_LINK] = json!({"id": 98, "title": "Quiz"});
    claims[PRESENTATION] = json!({"document_target": "iframe", "height": "400", "width": 600});
    let ctx = accepted(claims).await;

    let course = ctx.context.expect("context kept");
    assert_eq!(course.id, "1234");
    assert_eq!(course.types, vec!["CourseSection"]);
    assert_eq!(ctx.resource_link.expect("link").id, "98");
    let presentation = ctx.launch_presentation.expect("presentation");
    assert_eq!(presentation.height, Some(400.0));
    assert_eq!(presentation.width, Some(600.0));
    assert_eq!(
        ctx.warnings,
        vec![
            "context.id was a number; read as a string",
            "context.type was a string; read as a one-element list",
            "resource_link.id was a number; read as a string",
            "launch_presentation.height was a string; read as a number",
        ]
    );
}

#[tokio::test]
async fn unusable_optional_parts_are_dropped_with_a_warning_not_refused() {
    let mut claims = learner_claims(NOW);
    claims[NRPS] = json!({"service_versions": ["2.0"]});
    claims[CONTEXT] = json!({"title": "No id"});
    claims[PRESENTATION] = json!({"height": "tall"});
    let ctx = accepted(claims).await;
    assert!(
        ctx.services.nrps.is_none(),
        "an NRPS claim without URL is dropped"
    );
    assert!(ctx.context.is_none(), "a context without id is dropped");
    assert_eq!(ctx.launch_presentation.expect("kept").height, None);
    assert!(ctx
        .warnings
        .contains(&"the NRPS claim has no context_memberships_url; ignored".to_string()));
    assert!(ctx
        .warnings
        .contains(&"the context claim has no usable id; ignored".to_string()));
    assert!(ctx
        .warnings
        .contains(&"launch_presentation.height is not a number; ignored".to_string()));
}

#[tokio::test]
async fn a_clean_launch_has_no_warnings() {
    let ctx = accepted(learner_claims(NOW)).await;
    assert!(ctx.warnings.is_empty(), "{:?}", ctx.warnings);
}

#[tokio::test]
async fn unknown_members_of_known_claims_reach_the_app() {
    let mut claims = learner_claims(NOW);
    claims[MT] = json!("LtiDeepLinkingRequest");
    claims
        .as_object_mut()
        .expect("object")
        .remove(RESOURCE_LINK);
    // Moodle's deep-linking settings, with members the spec does not name, and `data`
    // as a JSON object (lti1p3platform sends one).
    claims[DL] = json!({
        "deep_link_return_url": "https://lms.example.edu/dl/return",
        "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe", "window"],
        "accept_multiple": "true",
        "accept_copy_advice": false,
        "accept_unsigned": false,
        "can_confirm": true,
        "data": {"course": 7, "nested": [1, "two", null]}
    });
    claims[CONTEXT]["sis_id"] = json!("SIS-101");
    let ctx = accepted(claims).await;
    let dl = ctx.services.deep_linking.expect("settings");
    assert_eq!(dl.accept_multiple, Some(true));
    assert_eq!(dl.extra["accept_copy_advice"], json!(false));
    assert_eq!(dl.extra["accept_unsigned"], json!(false));
    assert_eq!(dl.extra["can_confirm"], json!(true));
    assert_eq!(
        dl.data,
        Some(json!({"course": 7, "nested": [1, "two", null]})),
        "data is opaque and kept exactly"
    );
    assert_eq!(ctx.context.expect("context").extra["sis_id"], "SIS-101");
}

#[tokio::test]
async fn nbf_a_few_seconds_ahead_is_accepted_as_brightspace_sends_it() {
    let mut claims = learner_claims(NOW);
    claims["nbf"] = json!(NOW + 5);
    accepted(claims).await;
}

#[tokio::test]
async fn time_claims_at_the_edge_of_the_number_range_do_not_overflow() {
    for exp in [json!(i64::MAX), json!(1e300), json!(u64::MAX)] {
        let mut claims = learner_claims(NOW);
        claims["exp"] = exp.clone();
        claims["nbf"] = json!(i64::MIN);
        accepted(claims).await;
    }
    let fixture = Fixture::new().await;
    for (claim, value, code) in [
        ("exp", json!(i64::MIN), "LTI_TOKEN_EXPIRED"),
        ("exp", json!(-1e300), "LTI_TOKEN_EXPIRED"),
        ("iat", json!(i64::MAX), "LTI_IAT_INVALID"),
        ("iat", json!(i64::MIN), "LTI_IAT_INVALID"),
        ("nbf", json!(i64::MAX), "LTI_TOKEN_NOT_YET_VALID"),
        ("nbf", json!(1e300), "LTI_TOKEN_NOT_YET_VALID"),
    ] {
        let mut claims = learner_claims(NOW);
        claims[claim] = value.clone();
        let err = fixture.launch(claims).await.expect_err("refused");
        assert_eq!(err.code(), code, "{claim} = {value}");
    }
}

#[tokio::test]
async fn role_uris_outside_the_lis_vocabularies_are_other_and_kept_raw() {
    let mut claims = learner_claims(NOW);
    claims[ROLES] = json!(["http://example.edu/roles#Instructor"]);
    let ctx = accepted(claims).await;
    assert_eq!(ctx.roles.mapped, vec![RoleKind::Other]);
    assert_eq!(ctx.roles.raw, vec!["http://example.edu/roles#Instructor"]);
}
