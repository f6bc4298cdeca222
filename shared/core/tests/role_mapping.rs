//! Regression: institution and system roles are not course roles.
//!
//! Found by the interoperability suite (tests/interop/test_tool_dev.py, roles cases):
//! pylti1p3 grants teacher access only for context roles, while we mapped
//! `institution/person#Instructor` and `#Faculty` to `instructor` (and `#Student` to
//! `learner`). Canvas sends `institution/person#Instructor` for everyone who teaches
//! any course, so a learner in this course who teaches another one arrived in the app
//! as an instructor here. LTI 1.3 §A.2 separates context roles from institution and
//! system roles; only the administrator roles of the latter still count (as `admin`).

mod common;

use common::*;
use lti_core::launch::roles::{map_roles, role_kind, RoleKind};
use lti_core::launch::LaunchContext;
use serde_json::{json, Value};

const LIS: &str = "http://purl.imsglobal.org/vocab/lis/v2/";

fn roles(list: &[&str]) -> Vec<String> {
    list.iter().map(|r| r.to_string()).collect()
}

fn lis(path: &str) -> String {
    format!("{LIS}{path}")
}

#[test]
fn a_canvas_learner_who_teaches_another_course_is_only_a_learner_here() {
    let canvas = roles(&[
        &lis("institution/person#Instructor"),
        &lis("institution/person#Student"),
        &lis("membership#Learner"),
        &lis("system/person#User"),
    ]);
    assert_eq!(map_roles(&canvas), vec![RoleKind::Learner]);
}

#[test]
fn institution_and_system_roles_map_to_admin_or_nothing() {
    for name in [
        "Faculty",
        "Instructor",
        "Student",
        "Learner",
        "Mentor",
        "Staff",
    ] {
        let role = lis(&format!("institution/person#{name}"));
        assert_eq!(role_kind(&role), RoleKind::Other, "{role}");
        assert!(map_roles(std::slice::from_ref(&role)).is_empty(), "{role}");
    }
    for role in [
        "urn:lti:instrole:ims/lis/Instructor",
        "urn:lti:instrole:ims/lis/Student",
        "urn:lti:sysrole:ims/lis/User",
    ] {
        assert!(map_roles(&roles(&[role])).is_empty(), "{role}");
    }
    for role in [
        lis("institution/person#Administrator"),
        lis("system/person#Administrator"),
        lis("system/person#SysAdmin"),
        lis("system/person#SysSupport"),
        "urn:lti:instrole:ims/lis/Administrator".to_string(),
    ] {
        assert_eq!(
            map_roles(std::slice::from_ref(&role)),
            vec![RoleKind::Admin],
            "{role}"
        );
    }
    // context roles are unchanged, in every spelling
    assert_eq!(
        map_roles(&roles(&[
            &lis("membership#Instructor"),
            "Learner",
            "urn:lti:role:ims/lis/Mentor",
            &lis("membership/Instructor#TeachingAssistant"),
        ])),
        vec![
            RoleKind::Instructor,
            RoleKind::Learner,
            RoleKind::TeachingAssistant,
            RoleKind::Mentor
        ]
    );
    assert_eq!(
        map_roles(&roles(&["http://example.com/roles#Wizard"])),
        vec![RoleKind::Other]
    );
}

fn context_of(token: &str) -> LaunchContext {
    let payload = token.split('.').nth(1).expect("payload");
    let claims: Value = lti_core::jwt::decode_part(payload).expect("claims");
    serde_json::from_value(claims["lti"].clone()).expect("context")
}

#[tokio::test]
async fn the_app_token_of_a_faculty_member_enrolled_as_a_learner_says_learner() {
    let fixture = Fixture::new().await;
    let mut claims = learner_claims(NOW);
    let raw = json!([LEARNER, lis("institution/person#Faculty")]);
    claims["https://purl.imsglobal.org/spec/lti/claim/roles"] = raw.clone();
    let handoff = fixture.launch(claims).await.expect("launch");
    let ctx = context_of(&handoff.app_token);
    assert_eq!(ctx.roles.mapped, vec![RoleKind::Learner]);
    assert_eq!(json!(ctx.roles.raw), raw, "the raw roles are kept as sent");
}
