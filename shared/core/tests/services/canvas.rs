//! A double behaving like Canvas: one issuer for every tenant, a token endpoint that
//! refuses any client assertion whose `aud` is not exactly its token URL (no trailing
//! slash added, no default port spelled out), tokens per developer key (client_id),
//! quoted `rel="next"` among several links in one header, extension members on line
//! items and scores.

use crate::support::{all_scopes, endpoint, registration, signer, tool, NOW};
use lti_core::launch::AgsEndpoint;
use lti_core::services::ags::{
    LineItem, LineItemFilter, ScoreInput, MEDIA_LINEITEM, MEDIA_LINEITEMS, MEDIA_SCORE,
};
use lti_core::services::outbound::Method;
use lti_core::services::testing::{
    answer, bearer, check_assertion, form, is_token_request, json_body, ok_json, token_answer,
    verify_assertion, FakePlatform,
};
use lti_core::services::token::DEPLOYMENT_ID_CLAIM;
use lti_core::services::ServiceError;
use serde_json::json;

const ISSUER: &str = "https://canvas.instructure.com";
const TOKEN_URL: &str = "https://sso.canvaslms.com/login/oauth2/token";
const LINEITEMS: &str = "https://school.instructure.com/api/lti/courses/42/line_items";
const LINEITEM: &str = "https://school.instructure.com/api/lti/courses/42/line_items/17";
const SUBMISSION_TYPE: &str = "https://canvas.instructure.com/lti/submission_type";

/// Canvas with its token endpoint at `token_url`.
fn canvas(token_url: &'static str) -> FakePlatform {
    FakePlatform::new(move |request| {
        if is_token_request(request) {
            assert_eq!(request.url, token_url);
            let form = form(request);
            return match check_assertion(
                &form["client_assertion"],
                signer().public_jwk(),
                token_url,
            ) {
                Ok(claims) => token_answer(&format!(
                    "canvas-{}",
                    claims["iss"].as_str().unwrap_or_default()
                )),
                Err(_) => answer(
                    400,
                    &[("content-type", "application/json; charset=utf-8")],
                    r#"{"error":"invalid_client","error_description":"JWT aud is invalid"}"#,
                ),
            };
        }
        if !bearer(request).is_some_and(|t| t.starts_with("canvas-")) {
            return answer(
                401,
                &[],
                r#"{"errors":[{"message":"Invalid access token."}]}"#,
            );
        }
        match (request.method, request.url.as_str()) {
            (Method::Get, LINEITEMS) => answer(
                200,
                &[
                    ("content-type", "application/vnd.ims.lis.v2.lineitemcontainer+json; charset=utf-8"),
                    ("link", "<https://school.instructure.com/api/lti/courses/42/line_items?page=1&per_page=1>; rel=\"current\",<https://school.instructure.com/api/lti/courses/42/line_items?page=2&per_page=1>; rel=\"next\",<https://school.instructure.com/api/lti/courses/42/line_items?page=1&per_page=1>; rel=\"first\",<https://school.instructure.com/api/lti/courses/42/line_items?page=2&per_page=1>; rel=\"last\""),
                ],
                json!([{"id": LINEITEM, "label": "Essay", "scoreMaximum": 100.0,
                        "resourceLinkId": "link-1", SUBMISSION_TYPE: {"type": "external_tool"}}])
                .to_string(),
            ),
            (Method::Get, "https://school.instructure.com/api/lti/courses/42/line_items?page=2&per_page=1") => answer(
                200,
                &[
                    ("content-type", "application/vnd.ims.lis.v2.lineitemcontainer+json; charset=utf-8"),
                    ("link", "<https://school.instructure.com/api/lti/courses/42/line_items?page=2&per_page=1>; rel=\"current\",<https://school.instructure.com/api/lti/courses/42/line_items?page=1&per_page=1>; rel=\"first\",<https://school.instructure.com/api/lti/courses/42/line_items?page=2&per_page=1>; rel=\"last\""),
                ],
                json!([{"id": format!("{LINEITEMS}/18"), "label": "Quiz", "scoreMaximum": 10,
                        "resourceLinkId": "link-2"}])
                .to_string(),
            ),
            (Method::Post, LINEITEMS) => {
                let mut created = json_body(request);
                created["id"] = json!(format!("{LINEITEMS}/19"));
                answer(200, &[("content-type", MEDIA_LINEITEM)], created.to_string())
            }
            (Method::Get, LINEITEM) => answer(
                200,
                &[("content-type", MEDIA_LINEITEM)],
                json!({"id": LINEITEM, "label": "Essay", "scoreMaximum": 100.0}).to_string(),
            ),
            (Method::Put, LINEITEM) => ok_json(json_body(request)),
            (Method::Delete, LINEITEM) => answer(204, &[], ""),
            (Method::Post, u) if u == format!("{LINEITEM}/scores") => ok_json(json!({
                "resultUrl": format!("{LINEITEM}/results/3")
            })),
            _ => answer(404, &[], r#"{"errors":[{"message":"The specified resource does not exist."}]}"#),
        }
    })
}

fn canvas_endpoint() -> AgsEndpoint {
    endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes())
}

#[tokio::test]
async fn the_assertion_audience_is_the_token_url_exactly_as_registered() {
    let fake = canvas(TOKEN_URL);
    let tool = tool(&fake);
    let platform = registration(ISSUER, "10000000000042", TOKEN_URL, None);
    tool.ags
        .line_item(&platform, &canvas_endpoint(), LINEITEM, Some("42:abcdef"))
        .await
        .expect("Canvas accepted the assertion");
    let tokens = fake.token_requests();
    assert_eq!(tokens.len(), 1);
    let request = &tokens[0];
    assert_eq!(request.method, Method::Post);
    assert_eq!(request.url, TOKEN_URL);
    assert_eq!(
        request.header_value("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let form = form(request);
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    // Signature checked with the tool's public key; aud compared byte for byte.
    let claims = verify_assertion(&form["client_assertion"], signer().public_jwk(), TOKEN_URL);
    assert_eq!(claims["aud"], TOKEN_URL);
    assert_eq!(claims["iss"], "10000000000042");
    assert_eq!(claims["sub"], "10000000000042");
    assert_eq!(claims["iat"], NOW);
    assert!(claims["exp"].as_i64().is_some_and(|exp| exp <= NOW + 300));
    assert_eq!(claims[DEPLOYMENT_ID_CLAIM], "42:abcdef");
    assert_eq!(
        fake.service_requests()[0].header_value("authorization"),
        Some("Bearer canvas-10000000000042")
    );
}

#[tokio::test]
async fn a_token_url_is_never_normalized_into_the_audience() {
    // Registered with an upper-case host: a URL parser would lower-case it (and add a
    // slash to a bare origin); the audience stays what the admin registered.
    const ODD: &str = "https://SSO.canvaslms.com/login/oauth2/token";
    let fake = canvas(ODD);
    let tool = tool(&fake);
    let platform = registration(ISSUER, "7", ODD, None);
    tool.ags
        .line_item(&platform, &canvas_endpoint(), LINEITEM, None)
        .await
        .expect("accepted");
    let claims = verify_assertion(
        &form(&fake.token_requests()[0])["client_assertion"],
        signer().public_jwk(),
        ODD,
    );
    assert_eq!(claims["aud"], ODD);
}

#[tokio::test]
async fn an_audience_canvas_refuses_is_a_token_refusal_with_canvas_error() {
    // A registration whose tokenAudience was set wrongly (Canvas wants the token URL).
    let fake = canvas(TOKEN_URL);
    let tool = tool(&fake);
    let platform = registration(
        ISSUER,
        "7",
        TOKEN_URL,
        Some("https://sso.canvaslms.com/login/oauth2/token/"),
    );
    let err = tool
        .ags
        .line_item(&platform, &canvas_endpoint(), LINEITEM, None)
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, ServiceError::TokenRefused { error, description }
            if error == "invalid_client" && description.as_deref() == Some("JWT aud is invalid")),
        "{err:?}"
    );
    assert!(
        fake.service_requests().is_empty(),
        "no service call without a token"
    );
}

#[tokio::test]
async fn two_client_ids_of_one_issuer_never_share_a_token() {
    let fake = canvas(TOKEN_URL);
    let tool = tool(&fake);
    let school_a = registration(ISSUER, "10000000000001", TOKEN_URL, None);
    let school_b = registration(ISSUER, "10000000000002", TOKEN_URL, None);
    for platform in [&school_a, &school_b, &school_a, &school_b] {
        tool.ags
            .line_item(platform, &canvas_endpoint(), LINEITEM, None)
            .await
            .expect("item");
    }
    let tokens = fake.token_requests();
    println!(
        "token requests for 4 calls through 2 registrations of one issuer: {}",
        tokens.len()
    );
    assert_eq!(tokens.len(), 2, "one per registration");
    let used: Vec<String> = fake
        .service_requests()
        .iter()
        .map(|r| bearer(r).unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        used,
        vec![
            "canvas-10000000000001",
            "canvas-10000000000002",
            "canvas-10000000000001",
            "canvas-10000000000002"
        ]
    );
}

#[tokio::test]
async fn line_items_are_listed_created_updated_and_deleted_with_exact_requests() {
    let fake = canvas(TOKEN_URL);
    let tool = tool(&fake);
    let platform = registration(ISSUER, "7", TOKEN_URL, None);
    let ep = canvas_endpoint();

    let items = tool
        .ags
        .line_items(&platform, &ep, &LineItemFilter::default(), None)
        .await
        .expect("list");
    assert_eq!(items.len(), 2, "both pages");
    assert_eq!(
        items[0].extra.get(SUBMISSION_TYPE),
        Some(&json!({"type": "external_tool"})),
        "Canvas extensions are kept"
    );

    let mut input = LineItem {
        label: "Lab report".into(),
        score_maximum: Some(25.0),
        resource_link_id: Some("link-1".into()),
        tag: Some("lab".into()),
        ..Default::default()
    };
    input
        .extra
        .insert(SUBMISSION_TYPE.into(), json!({"type": "external_tool"}));
    let created = tool
        .ags
        .create_line_item(&platform, &ep, input.clone(), None)
        .await
        .expect("create");
    assert_eq!(
        created.id.as_deref(),
        Some(format!("{LINEITEMS}/19").as_str())
    );

    let updated = tool
        .ags
        .update_line_item(
            &platform,
            &ep,
            LINEITEM,
            LineItem {
                label: "Essay (final)".into(),
                score_maximum: Some(50.0),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("update");
    assert_eq!(updated.label, "Essay (final)");
    tool.ags
        .delete_line_item(&platform, &ep, LINEITEM, None)
        .await
        .expect("delete");

    let sent = fake.service_requests();
    let summary: Vec<(Method, &str, Option<&str>, Option<&str>)> = sent
        .iter()
        .map(|r| {
            (
                r.method,
                r.url.as_str(),
                r.header_value("accept"),
                r.header_value("content-type"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (Method::Get, LINEITEMS, Some(MEDIA_LINEITEMS), None),
            (
                Method::Get,
                "https://school.instructure.com/api/lti/courses/42/line_items?page=2&per_page=1",
                Some(MEDIA_LINEITEMS),
                None
            ),
            (
                Method::Post,
                LINEITEMS,
                Some(MEDIA_LINEITEM),
                Some(MEDIA_LINEITEM)
            ),
            (
                Method::Put,
                LINEITEM,
                Some(MEDIA_LINEITEM),
                Some(MEDIA_LINEITEM)
            ),
            (Method::Delete, LINEITEM, None, None),
        ]
    );
    assert!(sent.iter().all(|r| bearer(r) == Some("canvas-7")));
    assert_eq!(
        json_body(&sent[2]),
        json!({"label": "Lab report", "scoreMaximum": 25, "resourceLinkId": "link-1",
               "tag": "lab", SUBMISSION_TYPE: {"type": "external_tool"}})
    );
    assert_eq!(
        json_body(&sent[3]),
        json!({"id": LINEITEM, "label": "Essay (final)", "scoreMaximum": 50})
    );
    assert!(sent[4].body.is_none());
    assert_eq!(
        fake.token_requests().len(),
        1,
        "reading and managing share the lineitem token"
    );
}

#[tokio::test]
async fn a_score_with_extensions_and_canvas_answer() {
    let fake = canvas(TOKEN_URL);
    let tool = tool(&fake);
    let platform = registration(ISSUER, "7", TOKEN_URL, None);
    let mut input = ScoreInput {
        user_id: "535fa085-f3d4-4a5b-a8c8-8b5c2e5c6c0b".into(),
        score_given: Some(0.0),
        score_maximum: Some(100.0),
        comment: Some("Well argued.".into()),
        timestamp: Some("2030-03-17T17:40:00.123+01:00".into()),
        activity_progress: Some("Submitted".into()),
        grading_progress: Some("PendingManual".into()),
        ..Default::default()
    };
    input.extra.insert(
        "https://canvas.instructure.com/lti/submission".into(),
        json!({"new_submission": true}),
    );
    let posted = tool
        .ags
        .post_score(&platform, &canvas_endpoint(), LINEITEM, input, None)
        .await
        .expect("posted");
    assert_eq!(
        posted.platform_answer,
        Some(json!({"resultUrl": format!("{LINEITEM}/results/3")}))
    );
    let sent = fake.service_requests();
    assert_eq!(sent[0].url, format!("{LINEITEM}/scores"));
    assert_eq!(sent[0].header_value("content-type"), Some(MEDIA_SCORE));
    assert_eq!(
        json_body(&sent[0]),
        json!({
            "userId": "535fa085-f3d4-4a5b-a8c8-8b5c2e5c6c0b",
            "scoreGiven": 0, "scoreMaximum": 100, "comment": "Well argued.",
            "timestamp": "2030-03-17T17:40:00.123+01:00",
            "activityProgress": "Submitted", "gradingProgress": "PendingManual",
            "https://canvas.instructure.com/lti/submission": {"new_submission": true}
        })
    );
}
