//! Platform behaviours that are not errors: a roster of another context id (seen
//! with Coursera), entries that cannot be used, filters a platform ignores.

use crate::support::{all_scopes, endpoint, registration, tool};
use lti_core::services::ags::{LineItem, LineItemFilter, ResultsQuery};
use lti_core::services::nrps::MembersQuery;
use lti_core::services::outbound::Method;
use lti_core::services::testing::{
    answer, is_token_request, json_body, token_answer, FakePlatform,
};
use serde_json::json;

const TOKEN_URL: &str = "https://lms.example.edu/token";
const LINEITEMS: &str = "https://lms.example.edu/courses/1/lineitems";
const LINEITEM: &str = "https://lms.example.edu/courses/1/lineitems/1";
const ROSTER: &str = "https://lms.example.edu/courses/1/memberships";

fn answering(body: serde_json::Value) -> FakePlatform {
    FakePlatform::new(move |request| {
        if is_token_request(request) {
            return token_answer("t-123456789");
        }
        answer(200, &[], body.to_string())
    })
}

#[tokio::test]
async fn a_roster_of_another_context_id_is_answered_under_the_launch_context() {
    let fake = answering(json!({
        "id": ROSTER,
        "context": {"id": "coursera-branch~abc", "title": "Machine Learning", "x": 1},
        "members": [{"user_id": "u1", "roles": ["Learner"]}]
    }));
    let roster = tool(&fake)
        .nrps
        .members(
            &registration("https://lms.example.edu", "c", TOKEN_URL, None),
            ROSTER,
            &MembersQuery::default(),
            Some("course-42"),
            None,
        )
        .await
        .expect("not refused");
    assert_eq!(
        serde_json::to_value(&roster.context).expect("json"),
        json!({"id": "course-42", "platformContextId": "coursera-branch~abc",
               "title": "Machine Learning", "extra": {"x": 1}})
    );
    assert_eq!(roster.members.len(), 1);
}

#[tokio::test]
async fn unusable_and_repeated_members_are_left_out_with_a_warning() {
    let fake = answering(json!({
        "members": [
            {"user_id": "u1", "roles": ["Learner", 5]},
            {"roles": ["Learner"], "name": "No Id"},
            "not an object",
            {"user_id": "u1", "roles": ["Learner"]},
            {"user_id": 77, "roles": "Instructor", "email": ["odd"]}
        ]
    }));
    let roster = tool(&fake)
        .nrps
        .members(
            &registration("https://lms.example.edu", "c", TOKEN_URL, None),
            ROSTER,
            &MembersQuery::default(),
            None,
            None,
        )
        .await
        .expect("roster");
    assert_eq!(
        roster
            .members
            .iter()
            .map(|m| m.user_id.as_str())
            .collect::<Vec<_>>(),
        vec!["u1", "77"]
    );
    assert_eq!(roster.members[1].roles.raw, vec!["Instructor"]);
    assert_eq!(
        roster.members[1].extra.get("email"),
        Some(&json!(["odd"])),
        "a member of the wrong type is kept as sent, not dropped"
    );
    assert_eq!(
        roster.warnings,
        vec![
            "member u1: 1 role(s) that are not strings left out",
            "a member entry (page 1, entry 2) left out: no user_id",
            "a member entry (page 1, entry 3) left out: not a JSON object",
            "member u1 appeared twice; kept once",
        ]
    );
}

#[tokio::test]
async fn filters_a_platform_ignores_are_applied_to_its_answer() {
    let fake = answering(json!([
        {"id": format!("{LINEITEMS}/1"), "label": "A", "resourceLinkId": "rl-1", "tag": "final"},
        {"id": format!("{LINEITEMS}/2"), "label": "B", "resourceLinkId": "rl-2"},
        {"id": format!("{LINEITEMS}/3"), "label": "C"}
    ]));
    let items = tool(&fake)
        .ags
        .line_items(
            &registration("https://lms.example.edu", "c", TOKEN_URL, None),
            &endpoint(Some(LINEITEMS), None, all_scopes()),
            &LineItemFilter {
                resource_link_id: Some("rl-1".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("items");
    assert_eq!(
        items.iter().map(|i| i.label.as_str()).collect::<Vec<_>>(),
        vec!["A", "C"],
        "B names another link; C says nothing, so it is kept"
    );

    let fake = answering(json!([
        {"userId": "u1", "resultScore": 1}, {"userId": "u2", "resultScore": 2}
    ]));
    let results = tool(&fake)
        .ags
        .results(
            &registration("https://lms.example.edu", "c", TOKEN_URL, None),
            &endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes()),
            LINEITEM,
            &ResultsQuery {
                user_id: Some("u2".into()),
                limit: Some(5),
            },
            None,
        )
        .await
        .expect("results");
    assert_eq!(results.results.len(), 1);
    assert_eq!(results.results[0].user_id, "u2");
    assert_eq!(
        fake.service_requests()[0].url,
        format!("{LINEITEM}/results?user_id=u2&limit=5")
    );
}

#[tokio::test]
async fn find_or_create_takes_the_links_line_item_or_creates_one() {
    let platform = registration("https://lms.example.edu", "c", TOKEN_URL, None);
    let ep = endpoint(Some(LINEITEMS), None, all_scopes());
    let template = LineItem {
        label: "Activity".into(),
        score_maximum: Some(100.0),
        resource_link_id: Some("rl-1".into()),
        ..Default::default()
    };
    let existing = answering(json!([
        {"id": format!("{LINEITEMS}/9"), "label": "Other", "resourceLinkId": "rl-9"},
        {"id": format!("{LINEITEMS}/1"), "label": "Activity", "resourceLinkId": "rl-1"}
    ]));
    let found = tool(&existing)
        .ags
        .find_or_create_line_item(&platform, &ep, template.clone(), None)
        .await
        .expect("found");
    assert_eq!(found.id.as_deref(), Some(format!("{LINEITEMS}/1").as_str()));
    assert_eq!(existing.service_requests().len(), 1);

    let empty = FakePlatform::new(|request| {
        if is_token_request(request) {
            return token_answer("t-123456789");
        }
        match request.method {
            Method::Get => answer(200, &[], "[]"),
            _ => {
                let mut created = json_body(request);
                created["id"] = json!(format!("{LINEITEMS}/2"));
                answer(201, &[], created.to_string())
            }
        }
    });
    let created = tool(&empty)
        .ags
        .find_or_create_line_item(&platform, &ep, template, None)
        .await
        .expect("created");
    assert_eq!(
        created.id.as_deref(),
        Some(format!("{LINEITEMS}/2").as_str())
    );
    let sent = empty.service_requests();
    assert_eq!(sent[0].url, format!("{LINEITEMS}?resource_link_id=rl-1"));
    assert_eq!(sent[1].method, Method::Post);
    assert_eq!(
        json_body(&sent[1]),
        json!({"label": "Activity", "scoreMaximum": 100, "resourceLinkId": "rl-1"})
    );
}
