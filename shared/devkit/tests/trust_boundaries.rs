//! Trust boundaries found by replaying real-world failure reports (issue 8), each
//! through the HTTP layer of a running dev server with a scripted LMS: user identity
//! scoped by the key set that vouched for it, `nbf`, lenient optional claims, typed
//! required claims, the role vocabulary, PII mirrored, unknown members kept.

mod common;

use common::dev::{Dev, ADMIN};
use common::lms::{Lms, LTI};
use lti_core::user::UserStore;
use serde_json::{json, Value};

const CONTEXT: &str = "https://purl.imsglobal.org/spec/lti/claim/context";
const RESOURCE_LINK: &str = "https://purl.imsglobal.org/spec/lti/claim/resource_link";
const NRPS: &str = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice";
const DL: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings";

/// The `lti` context and the app user id of an accepted launch.
fn accepted(answer: &common::lms::Answer) -> (Value, String) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    let claims = answer.app_token_claims().expect("an app token");
    let user_id = claims["sub"].as_str().expect("sub").to_string();
    (claims["lti"].clone(), user_id)
}

#[tokio::test]
async fn two_key_sets_under_one_issuer_never_share_a_user() {
    // GIVEN two registrations of one issuer (Blackboard, self-hosted Canvas) whose key
    // sets differ: A is the real tenant, B is anyone who got a registration
    let dev = Dev::start().await;
    let a = Lms::start("tenant-a").await;
    let mut b = Lms::start("tenant-b").await;
    b.issuer = a.issuer.clone();
    a.register(&dev.tool, ADMIN).await;
    let reply = b.register(&dev.tool, ADMIN).await;
    // THEN the admin API says what it did
    let identity = &reply.json()["userIdentity"];
    assert_eq!(identity["separateFrom"], json!(["tenant-a"]), "{identity}");
    assert_eq!(identity["userScope"], json!(b.jwks_url()));
    assert!(identity["message"]
        .as_str()
        .expect("message")
        .contains("another key set"));

    // WHEN both launch the same sub, B signing with its own key
    let (_, user_a) = accepted(
        &a.launch(&dev.tool, a.claims(&dev.tool, "X", dev.now()))
            .await,
    );
    let mut claims_b = b.claims(&dev.tool, "X", dev.now());
    claims_b["name"] = json!("Mallory");
    claims_b["email"] = json!("mallory@evil.example");
    let (_, user_b) = accepted(&b.launch(&dev.tool, claims_b).await);

    // THEN they are two app users, and A's profile was not overwritten
    assert_ne!(user_a, user_b);
    let stored_a = dev
        .server
        .store
        .user(&user_a)
        .await
        .expect("read")
        .expect("a");
    assert_eq!(stored_a.name.as_deref(), Some("Test User"));
    assert_eq!(stored_a.email.as_deref(), Some("test.user@example.edu"));
    let stored_b = dev
        .server
        .store
        .user(&user_b)
        .await
        .expect("read")
        .expect("b");
    assert_eq!(stored_b.email.as_deref(), Some("mallory@evil.example"));
    dev.server.stop().await;
}

#[tokio::test]
async fn client_ids_sharing_one_key_set_share_their_users_as_canvas_cloud_does() {
    let dev = Dev::start().await;
    let first = Lms::start("canvas-client-1").await;
    let mut second = Lms::start_with_key("canvas-client-2", first.key.clone()).await;
    second.issuer = first.issuer.clone();
    first.register(&dev.tool, ADMIN).await;
    let mut registration = second.registration();
    registration["keysetUrl"] = json!(first.jwks_url());
    let reply = second.admin_post(&dev.tool, ADMIN, &registration).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        reply.json()["userIdentity"]["sharesUsersWith"],
        json!(["canvas-client-1"])
    );
    let (_, one) = accepted(
        &first
            .launch(&dev.tool, first.claims(&dev.tool, "u-7", dev.now()))
            .await,
    );
    let (_, two) = accepted(
        &second
            .launch(&dev.tool, second.claims(&dev.tool, "u-7", dev.now()))
            .await,
    );
    assert_eq!(one, two, "the same Canvas user through two developer keys");
    dev.server.stop().await;
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused_and_a_few_seconds_ahead_is_fine() {
    let dev = Dev::start().await;
    let lms = Lms::start("c").await;
    lms.register(&dev.tool, ADMIN).await;
    let mut early = lms.claims(&dev.tool, "u", dev.now());
    early["nbf"] = json!(dev.now() + 3600);
    let answer = lms.launch(&dev.tool, early).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (401, "LTI_TOKEN_NOT_YET_VALID")
    );
    // Brightspace sends nbf a few seconds ahead.
    let mut d2l = lms.claims(&dev.tool, "u", dev.now());
    d2l["nbf"] = json!(dev.now() + 5);
    accepted(&lms.launch(&dev.tool, d2l).await);
    dev.server.stop().await;
}

#[tokio::test]
async fn cosmetic_faults_in_optional_claims_do_not_lock_a_student_out() {
    let dev = Dev::start().await;
    let lms = Lms::start("c").await;
    lms.register(&dev.tool, ADMIN).await;
    let mut claims = lms.claims(&dev.tool, "u", dev.now());
    claims[NRPS] = json!({"service_versions": ["2.0"]});
    claims[CONTEXT] = json!({"id": 4501, "type": "CourseOffering", "title": "Algebra"});
    claims[RESOURCE_LINK] = json!({"id": 77});
    claims[format!("{LTI}launch_presentation")] = json!({"height": "400"});
    let (lti, _) = accepted(&lms.launch(&dev.tool, claims).await);
    assert_eq!(lti["context"]["id"], "4501");
    assert_eq!(lti["context"]["type"], json!(["CourseOffering"]));
    assert_eq!(lti["resourceLink"]["id"], "77");
    assert_eq!(lti["launchPresentation"]["height"], json!(400.0));
    assert!(
        lti["services"].get("nrps").is_none(),
        "unusable NRPS dropped"
    );
    let warnings = lti["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 5, "{warnings:?}");
    assert!(warnings.contains(&json!(
        "the NRPS claim has no context_memberships_url; ignored"
    )));
    dev.server.stop().await;
}

#[tokio::test]
async fn a_required_claim_of_the_wrong_type_is_named_never_called_missing() {
    let dev = Dev::start().await;
    let lms = Lms::start("c").await;
    lms.register(&dev.tool, ADMIN).await;
    for (claim, value, named) in [
        (format!("{LTI}deployment_id"), json!(1), "deployment_id"),
        ("sub".to_string(), json!(42), "sub"),
    ] {
        let mut claims = lms.claims(&dev.tool, "u", dev.now());
        claims[&claim] = value;
        let answer = lms.launch(&dev.tool, claims).await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (400, "LTI_CLAIM_INVALID"),
            "{claim}"
        );
        let message = answer.json()["error"]["message"]
            .as_str()
            .expect("message")
            .to_string();
        assert!(
            message.contains(named) && message.contains("number"),
            "{message}"
        );
    }
    dev.server.stop().await;
}

#[tokio::test]
async fn a_role_uri_outside_the_lis_vocabularies_is_not_an_instructor() {
    let dev = Dev::start().await;
    let lms = Lms::start("c").await;
    lms.register(&dev.tool, ADMIN).await;
    let mut claims = lms.claims(&dev.tool, "u", dev.now());
    claims[format!("{LTI}roles")] = json!(["http://example.edu/roles#Instructor"]);
    let (lti, _) = accepted(&lms.launch(&dev.tool, claims).await);
    assert_eq!(lti["roles"]["mapped"], json!(["other"]));
    assert_eq!(
        lti["roles"]["raw"],
        json!(["http://example.edu/roles#Instructor"])
    );
    dev.server.stop().await;
}

#[tokio::test]
async fn the_stored_user_mirrors_what_the_platform_shares_now() {
    let dev = Dev::start().await;
    let lms = Lms::start("c").await;
    lms.register(&dev.tool, ADMIN).await;
    let (_, id) = accepted(
        &lms.launch(&dev.tool, lms.claims(&dev.tool, "u", dev.now()))
            .await,
    );
    let before = dev
        .server
        .store
        .user(&id)
        .await
        .expect("read")
        .expect("user");
    assert!(before.name.is_some() && before.email.is_some());
    // The platform's privacy setting changes: no name, no email.
    let mut private = lms.claims(&dev.tool, "u", dev.now());
    private.as_object_mut().expect("object").remove("name");
    private.as_object_mut().expect("object").remove("email");
    let (lti, same) = accepted(&lms.launch(&dev.tool, private).await);
    assert_eq!(same, id);
    assert!(lti["user"].get("email").is_none());
    let after = dev
        .server
        .store
        .user(&id)
        .await
        .expect("read")
        .expect("user");
    assert_eq!((after.name, after.email), (None, None));
    assert_eq!(after.created_at, before.created_at);
    dev.server.stop().await;
}

#[tokio::test]
async fn moodles_extra_deep_linking_settings_and_object_data_reach_the_app() {
    let dev = Dev::start().await;
    let lms = Lms::start("c").await;
    lms.register(&dev.tool, ADMIN).await;
    let mut claims = lms.claims(&dev.tool, "teacher", dev.now());
    claims[format!("{LTI}message_type")] = json!("LtiDeepLinkingRequest");
    claims
        .as_object_mut()
        .expect("object")
        .remove(RESOURCE_LINK);
    claims[format!("{LTI}roles")] =
        json!(["http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"]);
    claims[DL] = json!({
        "deep_link_return_url": format!("{}/dl/return", lms.url),
        "accept_types": ["ltiResourceLink"],
        "accept_presentation_document_targets": ["iframe", "window"],
        "accept_copy_advice": false,
        "accept_unsigned": false,
        "can_confirm": true,
        "data": {"returned": ["exactly", 1]}
    });
    let (lti, _) = accepted(&lms.launch(&dev.tool, claims).await);
    let dl = &lti["services"]["deepLinking"];
    assert_eq!(dl["extra"]["accept_copy_advice"], json!(false));
    assert_eq!(dl["extra"]["accept_unsigned"], json!(false));
    assert_eq!(dl["extra"]["can_confirm"], json!(true));
    assert_eq!(dl["data"], json!({"returned": ["exactly", 1]}));
    dev.server.stop().await;
}
