//! A double behaving like Moodle's LTI services: query-string line item URLs
//! (`…/lineitem?type_id=1`), `Link` headers with lowercase names, bare `rel=next`
//! on rosters and typographic quotes (`rel=“next”`) on line items, numeric user and
//! course ids, short role names.

use crate::support::{all_scopes, endpoint, registration, signer, tool, NOW};
use lti_core::launch::roles::RoleKind;
use lti_core::services::ags::{
    LineItemFilter, ResultsQuery, ScoreInput, MEDIA_LINEITEMS, MEDIA_RESULTS, MEDIA_SCORE,
    SCOPE_LINEITEM, SCOPE_RESULT_READONLY, SCOPE_SCORE,
};
use lti_core::services::nrps::{MembersQuery, MEDIA_MEMBERSHIPS, SCOPE_MEMBERSHIPS};
use lti_core::services::outbound::Method;
use lti_core::services::testing::{
    answer, bearer, check_assertion, form, is_token_request, json_body, token_answer, FakePlatform,
};
use lti_core::services::token::DEPLOYMENT_ID_CLAIM;
use serde_json::json;

const SITE: &str = "https://moodle.example.edu";
const TOKEN_URL: &str = "https://moodle.example.edu/mod/lti/token.php";
const LINEITEMS: &str = "https://moodle.example.edu/mod/lti/services.php/2/lineitems?type_id=1";
const LINEITEM: &str =
    "https://moodle.example.edu/mod/lti/services.php/2/lineitems/7/lineitem?type_id=1";
const MEMBERSHIPS: &str =
    "https://moodle.example.edu/mod/lti/services.php/CourseSection/2/bindings/1/memberships";

fn moodle() -> FakePlatform {
    FakePlatform::new(|request| {
        if is_token_request(request) {
            let form = form(request);
            return match check_assertion(
                &form["client_assertion"],
                signer().public_jwk(),
                TOKEN_URL,
            ) {
                Ok(_) => token_answer("moodle-token"),
                Err(_) => answer(400, &[], r#"{"error":"invalid_client"}"#),
            };
        }
        if bearer(request) != Some("moodle-token") {
            return answer(401, &[], "");
        }
        let json = [("content-type", "application/json")];
        match (request.method, request.url.as_str()) {
            (Method::Get, u) if u == format!("{LINEITEMS}&resource_link_id=rl-1&tag=quiz") => answer(
                200,
                &[
                    ("content-type", MEDIA_LINEITEMS),
                    // Moodle's own header, typographic quotes and all.
                    ("link", "<https://moodle.example.edu/mod/lti/services.php/2/lineitems?type_id=1&limit=1&from=0&resource_link_id=rl-1&tag=quiz>; rel=\u{201C}first\u{201D}, <https://moodle.example.edu/mod/lti/services.php/2/lineitems?resource_link_id=rl-1&tag=quiz&type_id=1&limit=1&from=1>; rel=\u{201C}next\u{201D}"),
                ],
                json!([{
                    "id": LINEITEM, "label": "Quiz 1", "scoreMaximum": 10,
                    "resourceLinkId": "rl-1", "tag": "quiz", "resourceId": ""
                }])
                .to_string(),
            ),
            (Method::Get, "https://moodle.example.edu/mod/lti/services.php/2/lineitems?resource_link_id=rl-1&tag=quiz&type_id=1&limit=1&from=1") =>
            {
                answer(
                    200,
                    &[("content-type", MEDIA_LINEITEMS)],
                    json!([{
                        "id": "https://moodle.example.edu/mod/lti/services.php/2/lineitems/8/lineitem?type_id=1",
                        "label": "Quiz 1 (retake)", "scoreMaximum": "20",
                        "resourceLinkId": "rl-1", "tag": "quiz"
                    }])
                    .to_string(),
                )
            }
            (Method::Post, "https://moodle.example.edu/mod/lti/services.php/2/lineitems/7/lineitem/scores?type_id=1") =>
            {
                answer(200, &[], "")
            }
            (Method::Get, "https://moodle.example.edu/mod/lti/services.php/2/lineitems/7/lineitem/results?type_id=1&user_id=5") =>
            {
                answer(
                    200,
                    &[("content-type", MEDIA_RESULTS)],
                    json!([{
                        "id": "https://moodle.example.edu/mod/lti/services.php/2/lineitems/7/lineitem/results?type_id=1&user_id=5",
                        "scoreOf": LINEITEM, "userId": 5, "resultScore": 8.5,
                        "resultMaximum": 10, "timestamp": "2030-03-17T17:46:40+00:00"
                    }])
                    .to_string(),
                )
            }
            (Method::Get, MEMBERSHIPS) => answer(
                200,
                &[
                    ("content-type", MEDIA_MEMBERSHIPS),
                    ("link", "<https://moodle.example.edu/mod/lti/services.php/CourseSection/2/bindings/1/memberships?limit=2&from=2>; rel=next"),
                ],
                json!({
                    "id": MEMBERSHIPS,
                    "context": {"id": 2, "label": "BIO101", "title": "Biology"},
                    "members": [
                        {"status": "Active", "roles": ["Instructor"], "user_id": 2,
                         "lis_person_sourcedid": "T-2", "name": "Ada Lovelace",
                         "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.edu"},
                        {"status": "Active", "roles": ["Learner"], "user_id": 5}
                    ]
                })
                .to_string(),
            ),
            (Method::Get, u) if u == format!("{MEMBERSHIPS}?limit=2&from=2") => answer(
                200,
                &json,
                json!({
                    "id": MEMBERSHIPS,
                    "context": {"id": 2, "label": "BIO101", "title": "Biology"},
                    "members": [
                        {"status": "Inactive", "roles": ["Learner", "Mentor"], "user_id": 9}
                    ]
                })
                .to_string(),
            ),
            _ => answer(404, &[], "Not Found"),
        }
    })
}

fn moodle_registration() -> lti_core::platform::Platform {
    registration(SITE, "moodle-client-1", TOKEN_URL, None)
}

#[tokio::test]
async fn a_score_goes_to_the_scores_path_before_the_query_with_the_exact_body() {
    let fake = moodle();
    let tool = tool(&fake);
    let platform = moodle_registration();
    let posted = tool
        .ags
        .post_score(
            &platform,
            &endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes()),
            LINEITEM,
            ScoreInput {
                user_id: "5".into(),
                score_given: Some(8.5),
                score_maximum: Some(10.0),
                ..Default::default()
            },
            Some("1"),
        )
        .await
        .expect("posted");
    assert_eq!(posted.status, 200);
    assert_eq!(posted.score.timestamp, "2030-03-17T17:46:40.000Z");

    let sent = fake.service_requests();
    assert_eq!(sent.len(), 1);
    let request = &sent[0];
    assert_eq!(request.method, Method::Post);
    assert_eq!(
        request.url,
        "https://moodle.example.edu/mod/lti/services.php/2/lineitems/7/lineitem/scores?type_id=1"
    );
    assert_eq!(request.header_value("Content-Type"), Some(MEDIA_SCORE));
    assert_eq!(bearer(request), Some("moodle-token"));
    assert_eq!(
        json_body(request),
        json!({
            "userId": "5", "scoreGiven": 8.5, "scoreMaximum": 10,
            "timestamp": "2030-03-17T17:46:40.000Z",
            "activityProgress": "Completed", "gradingProgress": "FullyGraded"
        })
    );

    let tokens = fake.token_requests();
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0].url, TOKEN_URL);
    let form = form(&tokens[0]);
    assert_eq!(form["scope"], SCOPE_SCORE, "only the scope the call needs");
    let claims = check_assertion(&form["client_assertion"], signer().public_jwk(), TOKEN_URL)
        .expect("Moodle accepts it");
    assert_eq!(claims[DEPLOYMENT_ID_CLAIM], "1");
    assert_eq!(claims["iat"], NOW);
}

#[tokio::test]
async fn line_items_filters_join_the_query_and_typographic_next_links_are_followed() {
    let fake = moodle();
    let tool = tool(&fake);
    let items = tool
        .ags
        .line_items(
            &moodle_registration(),
            &endpoint(Some(LINEITEMS), None, all_scopes()),
            &LineItemFilter {
                resource_link_id: Some("rl-1".into()),
                tag: Some("quiz".into()),
                ..Default::default()
            },
            Some("1"),
        )
        .await
        .expect("line items");
    assert_eq!(
        items.iter().map(|i| i.label.as_str()).collect::<Vec<_>>(),
        vec!["Quiz 1", "Quiz 1 (retake)"]
    );
    assert_eq!(
        items[1].score_maximum,
        Some(20.0),
        "a numeric string is read"
    );
    assert_eq!(
        serde_json::to_value(&items[0]).expect("json"),
        json!({"id": LINEITEM, "label": "Quiz 1", "scoreMaximum": 10,
               "resourceLinkId": "rl-1", "tag": "quiz", "resourceId": ""})
    );
    let sent = fake.service_requests();
    assert_eq!(
        sent.iter().map(|r| r.url.as_str()).collect::<Vec<_>>(),
        vec![
            "https://moodle.example.edu/mod/lti/services.php/2/lineitems?type_id=1&resource_link_id=rl-1&tag=quiz",
            "https://moodle.example.edu/mod/lti/services.php/2/lineitems?resource_link_id=rl-1&tag=quiz&type_id=1&limit=1&from=1",
        ]
    );
    for request in &sent {
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.header_value("accept"), Some(MEDIA_LINEITEMS));
        assert_eq!(bearer(request), Some("moodle-token"));
        assert!(request.body.is_none());
    }
    assert_eq!(form(&fake.token_requests()[0])["scope"], SCOPE_LINEITEM);
}

#[tokio::test]
async fn results_go_to_the_results_path_with_the_user_filter_after_the_query() {
    let fake = moodle();
    let tool = tool(&fake);
    let results = tool
        .ags
        .results(
            &moodle_registration(),
            &endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes()),
            LINEITEM,
            &ResultsQuery {
                user_id: Some("5".into()),
                limit: None,
            },
            None,
        )
        .await
        .expect("results");
    assert_eq!(results.results.len(), 1);
    let result = &results.results[0];
    assert_eq!(result.user_id, "5", "a numeric userId is read as a string");
    assert_eq!(result.result_score, Some(8.5));
    assert_eq!(
        result.extra.get("timestamp"),
        Some(&json!("2030-03-17T17:46:40+00:00")),
        "unknown members are kept"
    );
    let sent = fake.service_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].url,
        "https://moodle.example.edu/mod/lti/services.php/2/lineitems/7/lineitem/results?type_id=1&user_id=5"
    );
    assert_eq!(sent[0].header_value("Accept"), Some(MEDIA_RESULTS));
    assert_eq!(
        form(&fake.token_requests()[0])["scope"],
        SCOPE_RESULT_READONLY
    );
}

#[tokio::test]
async fn the_roster_follows_bare_next_links_and_maps_short_role_names() {
    let fake = moodle();
    let tool = tool(&fake);
    let platform = moodle_registration();
    let roster = tool
        .nrps
        .members(
            &platform,
            MEMBERSHIPS,
            &MembersQuery::default(),
            Some("2"),
            Some("1"),
        )
        .await
        .expect("roster");
    assert_eq!(roster.pages, 2);
    assert!(roster.warnings.is_empty(), "{:?}", roster.warnings);
    assert_eq!(roster.context.id, "2");
    assert_eq!(
        roster.context.platform_context_id, None,
        "numeric 2 is the launch's \"2\""
    );
    assert_eq!(roster.context.title.as_deref(), Some("Biology"));
    let ids: Vec<&str> = roster.members.iter().map(|m| m.user_id.as_str()).collect();
    assert_eq!(ids, vec!["2", "5", "9"]);
    let ada = &roster.members[0];
    assert_eq!(ada.app_user_id, platform.user_id("2"));
    assert_eq!(ada.roles.raw, vec!["Instructor"]);
    assert_eq!(ada.roles.mapped, vec![RoleKind::Instructor]);
    assert_eq!(ada.given_name.as_deref(), Some("Ada"));
    assert_eq!(ada.extra.get("lis_person_sourcedid"), Some(&json!("T-2")));
    let last = &roster.members[2];
    assert_eq!(last.status, "Inactive");
    assert_eq!(last.roles.mapped, vec![RoleKind::Learner, RoleKind::Mentor]);
    assert_eq!(
        serde_json::to_value(&roster.members[1]).expect("json"),
        json!({
            "userId": "5", "appUserId": platform.user_id("5"), "status": "Active",
            "roles": {"raw": ["Learner"], "mapped": ["learner"]}
        })
    );

    let sent = fake.service_requests();
    assert_eq!(
        sent.iter().map(|r| r.url.as_str()).collect::<Vec<_>>(),
        vec![
            MEMBERSHIPS.to_string(),
            format!("{MEMBERSHIPS}?limit=2&from=2")
        ]
    );
    for request in &sent {
        assert_eq!(request.method, Method::Get);
        assert_eq!(request.header_value("accept"), Some(MEDIA_MEMBERSHIPS));
        assert_eq!(bearer(request), Some("moodle-token"));
    }
    assert_eq!(form(&fake.token_requests()[0])["scope"], SCOPE_MEMBERSHIPS);
}

#[tokio::test]
async fn roster_filters_are_passed_on() {
    let fake = FakePlatform::new(|request| {
        if is_token_request(request) {
            return token_answer("t");
        }
        answer(200, &[], r#"{"members":[]}"#)
    });
    let tool = tool(&fake);
    tool.nrps
        .members(
            &moodle_registration(),
            &format!("{MEMBERSHIPS}?x=1"),
            &MembersQuery {
                role: Some("http://purl.imsglobal.org/vocab/lis/v2/membership#Learner".into()),
                rlid: Some("rl 1".into()),
                limit: Some(10),
            },
            None,
            None,
        )
        .await
        .expect("roster");
    assert_eq!(
        fake.service_requests()[0].url,
        format!("{MEMBERSHIPS}?x=1&role=http%3A%2F%2Fpurl.imsglobal.org%2Fvocab%2Flis%2Fv2%2Fmembership%23Learner&rlid=rl+1&limit=10")
    );
}
