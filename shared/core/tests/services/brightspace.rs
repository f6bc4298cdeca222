//! A double behaving like Brightspace (D2L): its token endpoint accepts only its
//! documented audience (`https://api.brightspace.com/auth/token`, the registration's
//! `tokenAudience`), never the token URL.

use crate::support::{all_scopes, endpoint, registration, signer, tool};
use lti_core::services::ags::{ScoreInput, MEDIA_SCORE, SCOPE_SCORE};
use lti_core::services::outbound::Method;
use lti_core::services::testing::{
    answer, bearer, check_assertion, form, is_token_request, json_body, token_answer,
    verify_assertion, FakePlatform,
};
use lti_core::services::ServiceError;

const ISSUER: &str = "https://school.brightspace.com";
const TOKEN_URL: &str = "https://auth.brightspace.com/core/connect/token";
const AUDIENCE: &str = "https://api.brightspace.com/auth/token";
const LINEITEMS: &str =
    "https://school.brightspace.com/d2l/api/lti/ags/2.0/deployment/0f5c2e3a/orgunit/6606/lineitems";
const LINEITEM: &str = "https://school.brightspace.com/d2l/api/lti/ags/2.0/deployment/0f5c2e3a/orgunit/6606/lineitems/7c1d0c1e-95a4-4c4e-a1d0-6c2a1b0b3f4e";

fn brightspace() -> FakePlatform {
    FakePlatform::new(|request| {
        if is_token_request(request) {
            let form = form(request);
            return match check_assertion(&form["client_assertion"], signer().public_jwk(), AUDIENCE)
            {
                Ok(_) => token_answer("d2l-token"),
                Err(_) => answer(
                    400,
                    &[("Content-Type", "application/json")],
                    r#"{"error":"invalid_client"}"#,
                ),
            };
        }
        if bearer(request) != Some("d2l-token") {
            return answer(401, &[], "");
        }
        match (request.method, request.url.as_str()) {
            (Method::Post, u) if u == format!("{LINEITEM}/scores") => answer(204, &[], ""),
            _ => answer(404, &[], ""),
        }
    })
}

#[tokio::test]
async fn the_assertion_audience_is_the_registered_token_audience() {
    let fake = brightspace();
    let tool = tool(&fake);
    let platform = registration(ISSUER, "d2l-client", TOKEN_URL, Some(AUDIENCE));
    let posted = tool
        .ags
        .post_score(
            &platform,
            &endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes()),
            LINEITEM,
            ScoreInput {
                user_id: "a1b2c3_42".into(),
                score_given: Some(3.0),
                score_maximum: Some(4.0),
                ..Default::default()
            },
            Some("0f5c2e3a"),
        )
        .await
        .expect("posted");
    assert_eq!(posted.status, 204);
    assert_eq!(
        posted.platform_answer, None,
        "204: no body, still a success"
    );

    let tokens = fake.token_requests();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        tokens[0].url, TOKEN_URL,
        "the request goes to the token URL"
    );
    let form = form(&tokens[0]);
    assert_eq!(form["scope"], SCOPE_SCORE);
    let claims = verify_assertion(&form["client_assertion"], signer().public_jwk(), AUDIENCE);
    assert_eq!(claims["aud"], AUDIENCE, "the aud is the tokenAudience");

    let sent = fake.service_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, Method::Post);
    assert_eq!(sent[0].url, format!("{LINEITEM}/scores"));
    assert_eq!(sent[0].header_value("content-type"), Some(MEDIA_SCORE));
    assert_eq!(bearer(&sent[0]), Some("d2l-token"));
    assert_eq!(json_body(&sent[0])["userId"], "a1b2c3_42");
}

#[tokio::test]
async fn without_its_token_audience_brightspace_refuses_the_token() {
    let fake = brightspace();
    let tool = tool(&fake);
    let platform = registration(ISSUER, "d2l-client", TOKEN_URL, None);
    let err = tool
        .ags
        .post_score(
            &platform,
            &endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes()),
            LINEITEM,
            ScoreInput {
                user_id: "u".into(),
                ..Default::default()
            },
            None,
        )
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, ServiceError::TokenRefused { error, description: None } if error == "invalid_client"),
        "{err:?}"
    );
    let claims = verify_assertion(
        &form(&fake.token_requests()[0])["client_assertion"],
        signer().public_jwk(),
        TOKEN_URL,
    );
    assert_eq!(
        claims["aud"], TOKEN_URL,
        "without tokenAudience, the token URL"
    );
    assert!(fake.service_requests().is_empty());
}
