//! Faults from the code review (issue 16), reproduced through the HTTP layer of a
//! running dev server with a scripted LMS: the direct path and standard tokens,
//! one-time records, overflowing time claims, the hand-off URL, oversized ids and
//! states, concurrent registrations.

mod common;

use common::dev::{Dev, ADMIN};
use common::lms::{sign_with, Lms, LTI};
use serde_json::{json, Value};

fn code(answer: &common::lms::Answer) -> (u16, String) {
    (answer.status, answer.code())
}

/// A direct-profile registration of `lms`'s issuer with `audience`.
fn direct_registration(lms: &Lms, client_id: &str, audience: &str, landing: &str) -> Value {
    let mut body = lms.registration();
    body["clientId"] = json!(client_id);
    body["launchProfile"] = json!("direct");
    body["audience"] = json!(audience);
    body["landingUrl"] = json!(landing);
    body.as_object_mut().expect("object").remove("deploymentId");
    body
}

#[tokio::test]
async fn a_direct_audience_equal_to_a_standard_client_id_is_refused_both_ways() {
    let dev = Dev::start().await;
    let lms = Lms::start("standard-c").await;
    lms.register(&dev.tool, ADMIN).await;
    let landing = format!("{}/app", dev.tool);

    // A direct registration whose audience is the standard client_id.
    let reply = lms
        .admin_post(
            &dev.tool,
            ADMIN,
            &direct_registration(&lms, "direct-1", "standard-c", &landing),
        )
        .await;
    assert_eq!(code(&reply), (400, "ADMIN_INVALID_PLATFORM".into()));
    assert_eq!(reply.json()["error"]["fields"][0]["field"], "audience");

    // A standard registration whose client_id is a direct audience.
    let ok = lms
        .admin_post(
            &dev.tool,
            ADMIN,
            &direct_registration(&lms, "direct-2", "tool-audience", &landing),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let mut standard = lms.registration();
    standard["clientId"] = json!("tool-audience");
    let reply = lms.admin_post(&dev.tool, ADMIN, &standard).await;
    assert_eq!(code(&reply), (400, "ADMIN_INVALID_PLATFORM".into()));
    assert_eq!(reply.json()["error"]["fields"][0]["field"], "clientId");

    // And a standard id_token, used or not, posted without its state is refused.
    let answer = lms
        .launch(&dev.tool, lms.claims(&dev.tool, "u", dev.now()))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let mut claims = lms.claims(&dev.tool, "u", dev.now());
    claims["nonce"] = json!("a-used-nonce");
    let token = sign_with(&lms.key, &lms.kid(), &claims);
    let replay = lms
        .post_launch(&dev.tool, &[("id_token", &token)], "")
        .await;
    assert_eq!(code(&replay), (401, "LTI_STATE_MISSING".into()));
    dev.server.stop().await;
}

#[tokio::test]
async fn a_direct_token_is_refused_in_the_last_second_it_would_be_accepted() {
    let dev = Dev::start().await;
    let lms = Lms::start("std").await;
    let landing = format!("{}/app", dev.tool);
    let reply = lms
        .admin_post(
            &dev.tool,
            ADMIN,
            &direct_registration(&lms, "direct", "aud-7", &landing),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let now = dev.now();
    let claims = json!({
        "iss": lms.issuer, "aud": "aud-7", "sub": "student-1",
        "iat": now, "exp": now + 300, "jti": "once-1"
    });
    let token = sign_with(&lms.key, &lms.kid(), &claims);
    let first = lms
        .post_launch(&dev.tool, &[("id_token", &token)], "")
        .await;
    assert_eq!(first.status, 302, "{}", first.body);
    // Accepted until exp + 60 s leeway: at that very second it is a replay.
    dev.clock.advance(360);
    let again = lms
        .post_launch(&dev.tool, &[("id_token", &token)], "")
        .await;
    assert_eq!(code(&again), (409, "LTI_NONCE_REPLAYED".into()));
    dev.clock.advance(1);
    let late = lms
        .post_launch(&dev.tool, &[("id_token", &token)], "")
        .await;
    assert_eq!(code(&late), (401, "LTI_TOKEN_EXPIRED".into()));
    dev.server.stop().await;
}

#[tokio::test]
async fn time_claims_at_the_integer_limit_get_an_answer_not_a_crash() {
    let dev = Dev::start().await;
    let lms = Lms::start("c").await;
    lms.register(&dev.tool, ADMIN).await;
    for exp in [json!(9_223_372_036_854_775_807_i64), json!(1e300)] {
        let mut claims = lms.claims(&dev.tool, "u", dev.now());
        claims["exp"] = exp;
        let answer = lms.launch(&dev.tool, claims).await;
        assert_eq!(answer.status, 200, "a far future: {}", answer.body);
    }
    let mut claims = lms.claims(&dev.tool, "u", dev.now());
    claims["iat"] = json!(9_223_372_036_854_775_807_i64);
    let answer = lms.launch(&dev.tool, claims).await;
    assert_eq!(code(&answer), (401, "LTI_IAT_INVALID".into()));
    let mut claims = lms.claims(&dev.tool, "u", dev.now());
    claims["nbf"] = json!(1e300);
    let answer = lms.launch(&dev.tool, claims).await;
    assert_eq!(code(&answer), (401, "LTI_TOKEN_NOT_YET_VALID".into()));
    dev.server.stop().await;
}

#[tokio::test]
async fn the_hand_off_uses_the_checked_target_link_uri_never_the_raw_string() {
    // GIVEN the app on another origin (nothing needs to listen there), reached by
    // redirect with the token in the fragment
    let app_origin = "http://localhost:9";
    let dev = Dev::with_settings(&[
        ("LTI_HANDOFF_MODE", "fragment"),
        ("LTI_ALLOWED_APP_ORIGINS", app_origin),
    ])
    .await;
    let lms = Lms::start("c").await;
    lms.register(&dev.tool, ADMIN).await;
    // WHEN the target_link_uri carries a control character
    let mut claims = lms.claims(&dev.tool, "u", dev.now());
    claims[format!("{LTI}target_link_uri")] = json!(format!("{app_origin}/app/quiz\u{1}7"));
    let login = lms.login(&dev.tool).await;
    claims["nonce"] = json!(login.nonce);
    let token = sign_with(&lms.key, &lms.kid(), &claims);
    let answer = lms
        .post_launch(
            &dev.tool,
            &[("id_token", &token), ("state", &login.state)],
            &login.cookie_header(),
        )
        .await;
    // THEN the user lands at the URL as checked, percent-encoded, with a code-free 302
    assert_eq!(answer.status, 302, "{}", answer.body);
    let location = answer.headers["location"].to_str().expect("ascii");
    assert!(
        location.starts_with(&format!("{app_origin}/app/quiz%017#app_token=")),
        "{location}"
    );
    dev.server.stop().await;
}

#[tokio::test]
async fn oversized_ids_and_states_are_refused_with_a_code_not_a_store_outage() {
    let dev = Dev::start().await;
    let lms = Lms::start("c").await;
    lms.register(&dev.tool, ADMIN).await;
    let mut claims = lms.claims(&dev.tool, &"x".repeat(1500), dev.now());
    claims["name"] = json!("Long Sub");
    let answer = lms.launch(&dev.tool, claims).await;
    assert_eq!(code(&answer), (400, "LTI_CLAIM_INVALID".into()));
    assert!(answer.body.contains("sub"), "{}", answer.body);

    let state = "s".repeat(3000);
    let token = sign_with(&lms.key, &lms.kid(), &lms.claims(&dev.tool, "u", dev.now()));
    let cookie = format!(
        "{}={}",
        lti_core::login::state_cookie_name(&state),
        lti_core::login::state_cookie_value(&state, 1)
    );
    let answer = lms
        .post_launch(
            &dev.tool,
            &[("id_token", &token), ("state", &state)],
            &cookie,
        )
        .await;
    assert_ne!(answer.status, 503, "{}", answer.body);
    assert!(
        answer.status == 401 || answer.status == 400,
        "{}",
        answer.body
    );
    dev.server.stop().await;
}

#[tokio::test]
async fn of_two_concurrent_creations_of_one_registration_exactly_one_is_created() {
    let dev = Dev::start().await;
    let lms = Lms::start("c").await;
    let body = lms.registration();
    let (a, b) = tokio::join!(
        lms.admin_post(&dev.tool, ADMIN, &body),
        lms.admin_post(&dev.tool, ADMIN, &body)
    );
    let mut statuses = vec![a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, vec![200, 201]);
    assert_eq!(a.json()["id"], b.json()["id"]);
    dev.server.stop().await;
}
