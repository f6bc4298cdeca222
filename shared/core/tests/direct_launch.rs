//! Platforms that post a signed id_token without a login step (TimeBack "Level 1"),
//! served only when an admin set the registration's profile to `direct`.

mod common;

use common::*;
use lti_core::config::HandoffMode;
use lti_core::error::Problem;
use lti_core::launch::{LaunchContext, LaunchForm};
use lti_core::platform::{LaunchProfile, PlatformStore};
use lti_core::user::UserStore;
use serde_json::{json, Value};

const TB_ISS: &str = "https://timeback.example";
const AUDIENCE: &str = "lti-lambda-tool-7f3a";

async fn fixture() -> Fixture {
    let fixture = Fixture::new().await;
    let mut platform = lti_core::contract::sample_platform(TB_ISS, "timeback-client", NOW);
    platform.keyset_url = format!("{TB_ISS}/jwks");
    platform.launch_profile = LaunchProfile::Direct;
    platform.audience = Some(AUDIENCE.into());
    platform.landing_url = Some("https://app.example/timeback/start".into());
    fixture.store.save_platform(platform).await.expect("save");
    fixture
}

fn timeback_claims(now: i64) -> Value {
    json!({
        "iss": TB_ISS,
        "aud": AUDIENCE,
        "sub": "tb-user-9",
        "iat": now,
        "exp": now + 300,
        "nonce": "n-123",
        "given_name": "Grace",
        "family_name": "Hopper",
        "email": "grace@school.example",
        "https://timeback.com/lti/claim/application_id": "app-55",
        "https://timeback.com/lti/claim/tool_id": "tool-77"
    })
}

async fn post(
    fixture: &Fixture,
    claims: &Value,
) -> Result<lti_core::handoff::Handoff, lti_core::launch::LaunchError> {
    let form = LaunchForm {
        id_token: Some(sign(&header(), claims, platform_key())),
        ..Default::default()
    };
    fixture.launcher.launch(&form, None).await
}

fn context_of(handoff: &lti_core::handoff::Handoff) -> LaunchContext {
    let payload = handoff.app_token.split('.').nth(1).expect("payload");
    let claims: Value = lti_core::jwt::decode_part(payload).expect("claims");
    serde_json::from_value(claims["lti"].clone()).expect("context")
}

#[tokio::test]
async fn a_direct_launch_is_accepted_and_redirects_to_the_platforms_landing_url() {
    let fixture = fixture().await;
    let handoff = post(&fixture, &timeback_claims(NOW))
        .await
        .expect("accepted");
    assert_eq!(
        handoff.mode,
        HandoffMode::Fragment,
        "a redirect carries the token in the fragment"
    );
    assert_eq!(handoff.landing_url, "https://app.example/timeback/start");
    let ctx = context_of(&handoff);
    assert_eq!(
        ctx.user.name.as_deref(),
        Some("Grace Hopper"),
        "name assembled from the parts"
    );
    assert_eq!(ctx.message_type, "DirectLaunch");
    let timeback = ctx.timeback.expect("timeback claims");
    assert_eq!(timeback.application_id.as_deref(), Some("app-55"));
    assert_eq!(timeback.tool_id.as_deref(), Some("tool-77"));
    assert!(ctx.roles.raw.is_empty());
    // The platform user id is stored with the user, for later event reporting.
    let user = fixture
        .store
        .user(&lti_core::user::stable_user_id(
            TB_ISS,
            &format!("{TB_ISS}/jwks"),
            "tb-user-9",
        ))
        .await
        .expect("read")
        .expect("provisioned");
    assert_eq!(user.sub, "tb-user-9");
    assert_eq!(user.email.as_deref(), Some("grace@school.example"));
    assert_eq!(ctx.user.id, user.id);
}

#[tokio::test]
async fn a_replayed_direct_launch_is_refused_whether_it_has_a_nonce_a_jti_or_neither() {
    let fixture = fixture().await;
    let mut with_jti = timeback_claims(NOW);
    with_jti.as_object_mut().expect("object").remove("nonce");
    with_jti["jti"] = json!("jti-1");
    let mut bare = with_jti.clone();
    bare.as_object_mut().expect("object").remove("jti");
    for claims in [timeback_claims(NOW), with_jti, bare] {
        post(&fixture, &claims).await.expect("first use");
        let err = post(&fixture, &claims).await.expect_err("replay");
        assert_eq!(err.code(), "LTI_NONCE_REPLAYED", "{claims}");
    }
}

#[tokio::test]
async fn direct_launches_with_a_wrong_audience_expired_or_badly_signed_are_refused() {
    let fixture = fixture().await;
    let mut wrong_aud = timeback_claims(NOW);
    wrong_aud["aud"] = json!("someone-else");
    assert_eq!(
        post(&fixture, &wrong_aud).await.expect_err("aud").code(),
        "LTI_AUD_INVALID"
    );

    let mut client_id_as_aud = timeback_claims(NOW);
    client_id_as_aud["aud"] = json!("timeback-client");
    assert_eq!(
        post(&fixture, &client_id_as_aud)
            .await
            .expect_err("aud")
            .code(),
        "LTI_AUD_INVALID",
        "the registered audience string, not the client_id"
    );

    let mut expired = timeback_claims(NOW - 1000);
    expired["iat"] = json!(NOW - 400);
    assert_eq!(
        post(&fixture, &expired).await.expect_err("exp").code(),
        "LTI_TOKEN_EXPIRED"
    );

    let forged = LaunchForm {
        id_token: Some(sign(&header(), &timeback_claims(NOW), other_key())),
        ..Default::default()
    };
    let err = fixture
        .launcher
        .launch(&forged, None)
        .await
        .expect_err("signature");
    assert_eq!(err.code(), "LTI_SIGNATURE_INVALID");

    let mut bad_version = timeback_claims(NOW);
    bad_version["https://purl.imsglobal.org/spec/lti/claim/version"] = json!("1.1");
    assert_eq!(
        post(&fixture, &bad_version)
            .await
            .expect_err("version")
            .code(),
        "LTI_VERSION_INVALID"
    );

    let mut no_sub = timeback_claims(NOW);
    no_sub.as_object_mut().expect("object").remove("sub");
    assert_eq!(
        post(&fixture, &no_sub).await.expect_err("sub").code(),
        "LTI_SUB_MISSING"
    );
}

#[tokio::test]
async fn a_token_without_state_from_a_standard_platform_is_still_refused() {
    let fixture = fixture().await;
    let mut claims = learner_claims(NOW);
    claims["nonce"] = json!("whatever");
    let err = post(&fixture, &claims)
        .await
        .expect_err("standard platform");
    assert_eq!(err.code(), "LTI_STATE_MISSING");
    let mut unknown = timeback_claims(NOW);
    unknown["iss"] = json!("https://unknown.example");
    assert_eq!(
        post(&fixture, &unknown).await.expect_err("unknown").code(),
        "LTI_ISS_UNKNOWN"
    );
}

#[tokio::test]
async fn a_direct_platform_still_launches_through_the_standard_flow_with_state() {
    // The profile adds a way in; it does not weaken the standard flow of other
    // registrations of the same issuer.
    let fixture = fixture().await;
    fixture
        .launch(learner_claims(NOW))
        .await
        .expect("standard flow works");
}

#[tokio::test]
async fn a_standard_id_token_never_launches_through_a_direct_registration_naming_its_client_id() {
    // GIVEN an issuer with a standard registration (client_id CLIENT) and a direct one
    // whose audience is also CLIENT (stored without the admin API's refusal)
    let fixture = Fixture::new().await;
    let mut direct = lti_core::contract::sample_platform(ISS, "direct-client", NOW);
    direct.keyset_url = format!("{ISS}/jwks");
    direct.launch_profile = LaunchProfile::Direct;
    direct.audience = Some(CLIENT.into());
    fixture.store.save_platform(direct).await.expect("save");
    // WHEN a standard id_token that was already used is posted without its state
    let (state, nonce) = fixture.begin().await;
    let token = sign(
        &header(),
        &with_nonce(learner_claims(NOW), &nonce),
        platform_key(),
    );
    fixture
        .post(&token, &state, Some(&state))
        .await
        .expect("the real launch");
    let form = LaunchForm {
        id_token: Some(token),
        ..Default::default()
    };
    let err = fixture
        .launcher
        .launch(&form, None)
        .await
        .expect_err("no state");
    // THEN it is refused as a launch without state, not accepted by the direct path
    assert_eq!(err.code(), "LTI_STATE_MISSING");
}

#[tokio::test]
async fn a_direct_token_is_refused_again_in_the_last_second_it_is_accepted() {
    let fixture = fixture().await;
    let claims = timeback_claims(NOW);
    post(&fixture, &claims).await.expect("first use");
    // exp is NOW + 300; with the 60 s leeway the token is accepted until NOW + 360.
    fixture.clock.advance(360);
    let err = post(&fixture, &claims).await.expect_err("replay");
    assert_eq!(err.code(), "LTI_NONCE_REPLAYED");
    fixture.clock.advance(1);
    let err = post(&fixture, &claims).await.expect_err("expired");
    assert_eq!(err.code(), "LTI_TOKEN_EXPIRED");
}

#[tokio::test]
async fn a_direct_token_with_a_two_kilobyte_jti_is_an_ordinary_one_time_token() {
    let fixture = fixture().await;
    let mut claims = timeback_claims(NOW);
    claims.as_object_mut().expect("object").remove("nonce");
    claims["jti"] = json!("j".repeat(2048));
    post(&fixture, &claims).await.expect("accepted");
    let err = post(&fixture, &claims).await.expect_err("replay");
    assert_eq!(err.code(), "LTI_NONCE_REPLAYED");
}
