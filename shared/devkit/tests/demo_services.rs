//! Grades and rosters on the dev server against its demo platform, as a person and an
//! app developer meet them: the demo platform's token endpoint verifies the tool's
//! client assertions against the tool's JWKS fetched over HTTP; its gradebook and
//! roster take only its own access tokens; the tool creates, lists, replaces and
//! deletes line items, posts scores, reads results and reads the 35-member roster page
//! by page; the demo app's **Submit a score**, **Show roster** and **Submit my score**
//! go through the app's backend, and the score shows on the demo gradebook page.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::dev::Dev;
use lti_core::signer::LocalRsaSigner;
use lti_dev::browser::{first_form, Browser, Next, Page};
use lti_dev::platform::{roster, CLIENT_ID};
use serde_json::{json, Value};

const NRPS_SCOPE: &str =
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly";
const SCORE_SCOPE: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/score";

use common::last_app_token_claims as app_token_claims;

/// The text inside the element with `id` (tags stripped, whitespace collapsed).
fn text_of(body: &str, id: &str) -> Option<String> {
    let start = body.find(&format!(r#"id="{id}""#))?;
    let open = start + body[start..].find('>')? + 1;
    let tag = body[..start].rfind('<')?;
    let name: String = body[tag + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let close = open + body[open..].find(&format!("</{name}>"))?;
    let mut text = String::new();
    let mut in_tag = false;
    for c in body[open..close].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// The form of `page` whose id is `id`: its action and fields.
fn form_fields(body: &str, id: &str) -> Vec<(String, String)> {
    let start = body.find(&format!(r#"<form id="{id}""#)).expect("the form");
    first_form(&body[start..]).expect("a form").fields
}

/// `user` launches the demo activity; the page the app shows and the launch id.
async fn launch(dev: &Dev, browser: &mut Browser, user: &str) -> (Page, String) {
    let page = browser
        .run(Next::Get(format!(
            "{}/platform/launch?user={user}",
            dev.tool
        )))
        .await
        .expect("the flow completes");
    assert_eq!(page.url, format!("{}/app", dev.tool), "{}", page.body);
    assert_eq!(page.status, 200, "{}", page.body);
    let launch_id = app_token_claims(browser)["lti"]["launchId"]
        .as_str()
        .expect("launch id")
        .to_string();
    (page, launch_id)
}

/// A call of the app's backend to the tool: the service key, the launch id.
async fn call(
    dev: &Dev,
    method: reqwest::Method,
    path: &str,
    launch_id: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", dev.tool))
        .header("x-api-key", &dev.server.service_key)
        .bearer_auth(launch_id)
        .header("accept", "application/json");
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("the tool answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("query")
}

#[tokio::test]
async fn the_tool_manages_line_items_posts_scores_and_reads_the_roster_of_the_demo_platform() {
    let dev = Dev::start().await;
    let platform = &dev.server.platform;
    let mut browser = Browser::new();
    let (_, launch_id) = launch(&dev, &mut browser, "instructor").await;
    let lti = app_token_claims(&browser)["lti"].clone();
    // The launch advertises the course's line items and the demo activity's own.
    let activity = platform
        .line_item_url_for(CLIENT_ID, "demo-link-1")
        .expect("the demo activity is graded");
    assert_eq!(lti["services"]["ags"]["lineitem"], activity);
    assert_eq!(
        lti["services"]["ags"]["lineitems"],
        platform.lineitems_url()
    );
    assert_eq!(
        lti["services"]["nrps"]["contextMembershipsUrl"],
        platform.memberships_url()
    );

    // Line items: the demo activity's, then one created, found by its tag, replaced.
    let (status, listed) = call(
        &dev,
        reqwest::Method::GET,
        "/lti/ags/lineitems",
        &launch_id,
        None,
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["lineItems"][0]["label"], "Demo Activity");
    assert_eq!(listed["lineItems"][0]["resourceLinkId"], "demo-link-1");
    let (status, made) = call(
        &dev,
        reqwest::Method::POST,
        "/lti/ags/lineitems",
        &launch_id,
        Some(json!({"label": "Quiz 1", "scoreMaximum": 10, "resourceLinkId": "demo-link-1", "tag": "quiz", "resourceId": "quiz-1"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let quiz = made["lineItem"]["id"].as_str().expect("id").to_string();
    let stored = platform.line_item(&quiz).expect("in the gradebook");
    assert_eq!(
        (stored.label.as_str(), stored.score_maximum),
        ("Quiz 1", 10.0)
    );
    assert_eq!(stored.tag.as_deref(), Some("quiz"));
    let (_, tagged) = call(
        &dev,
        reqwest::Method::GET,
        &format!("/lti/ags/lineitems?{}", query(&[("tag", "quiz")])),
        &launch_id,
        None,
    )
    .await;
    assert_eq!(
        tagged["lineItems"].as_array().map(Vec::len),
        Some(1),
        "{tagged}"
    );
    assert_eq!(tagged["lineItems"][0]["id"], quiz.as_str());
    let item_path = format!("/lti/ags/lineitem?{}", query(&[("url", &quiz)]));
    let (status, replaced) = call(
        &dev,
        reqwest::Method::PUT,
        &item_path,
        &launch_id,
        Some(json!({"label": "Quiz 1 (rescored)", "scoreMaximum": 20, "resourceLinkId": "demo-link-1", "tag": "quiz"})),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(
        platform.line_item(&quiz).expect("kept").label,
        "Quiz 1 (rescored)"
    );
    let (_, read) = call(&dev, reqwest::Method::GET, &item_path, &launch_id, None).await;
    assert_eq!(read["lineItem"]["scoreMaximum"], 20);

    // A score for Lea lands in the gradebook; the same score again changes nothing.
    let tokens_before = platform.token_requests();
    let calls_before = platform.service_requests();
    let (status, posted) = call(
        &dev,
        reqwest::Method::POST,
        "/lti/ags/scores",
        &launch_id,
        Some(json!({"userId": "demo-learner-1", "scoreGiven": 7, "scoreMaximum": 20, "lineItemUrl": quiz, "comment": "Well argued"})),
    )
    .await;
    assert_eq!(status, 200, "{posted}");
    println!(
        "demo platform, first score post: {} token request(s), {} service call(s)",
        platform.token_requests() - tokens_before,
        platform.service_requests() - calls_before
    );
    let scores = platform.line_item(&quiz).expect("kept").scores;
    assert_eq!(scores.len(), 1);
    assert_eq!(scores[0].user_id, "demo-learner-1");
    assert_eq!(
        (scores[0].score_given, scores[0].score_maximum),
        (Some(7.0), Some(20.0))
    );
    assert_eq!(
        scores[0].timestamp,
        posted["score"]["timestamp"].as_str().expect("timestamp")
    );
    assert_eq!(scores[0].comment.as_deref(), Some("Well argued"));
    let mut retry = posted["score"].clone();
    retry["lineItemUrl"] = json!(quiz);
    let (status, _) = call(
        &dev,
        reqwest::Method::POST,
        "/lti/ags/scores",
        &launch_id,
        Some(retry),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        platform.line_item(&quiz).expect("kept").scores.len(),
        1,
        "a retry"
    );
    let tokens_before = platform.token_requests();
    let calls_before = platform.service_requests();
    let (status, _) = call(
        &dev,
        reqwest::Method::POST,
        "/lti/ags/scores",
        &launch_id,
        Some(json!({"userId": "demo-student-01", "scoreGiven": 15, "scoreMaximum": 20, "lineItemUrl": quiz})),
    )
    .await;
    assert_eq!(status, 200);
    let per_post = platform.service_requests() - calls_before;
    println!(
        "demo platform, warm score post: {} token request(s), {per_post} service call(s)",
        platform.token_requests() - tokens_before
    );
    assert_eq!(
        (platform.token_requests() - tokens_before, per_post),
        (0, 1)
    );

    // A score without a line item goes to the launch's own (the demo activity's).
    let (status, posted) = call(
        &dev,
        reqwest::Method::POST,
        "/lti/ags/scores",
        &launch_id,
        Some(json!({"userId": "demo-learner-1", "scoreGiven": 90, "scoreMaximum": 100})),
    )
    .await;
    assert_eq!(status, 200, "{posted}");
    assert_eq!(posted["lineItem"], activity.as_str());
    assert_eq!(platform.line_item(&activity).expect("kept").scores.len(), 1);

    // The platform refuses what a strict LMS refuses, and the tool says so.
    let (status, refused) = call(
        &dev,
        reqwest::Method::POST,
        "/lti/ags/scores",
        &launch_id,
        Some(json!({"userId": "nobody-here", "scoreGiven": 1, "scoreMaximum": 2, "lineItemUrl": quiz})),
    )
    .await;
    assert_eq!(status, 502, "{refused}");
    assert_eq!(refused["error"]["code"], "LTI_PLATFORM_REJECTED");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("not a member"),
        "{refused}"
    );

    // Results: each user's current result.
    let (status, results) = call(
        &dev,
        reqwest::Method::GET,
        &format!("/lti/ags/results?{}", query(&[("lineItemUrl", &quiz)])),
        &launch_id,
        None,
    )
    .await;
    assert_eq!(status, 200, "{results}");
    let got: Vec<(String, Value)> = results["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["userId"].as_str().unwrap_or_default().to_string(),
                r["resultScore"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("demo-learner-1".to_string(), json!(7)),
            ("demo-student-01".to_string(), json!(15))
        ]
    );

    // The roster: every page, each member mapped as at launch.
    let calls_before = platform.service_requests();
    let tokens_before = platform.token_requests();
    let (status, members) = call(
        &dev,
        reqwest::Method::GET,
        "/lti/nrps/members",
        &launch_id,
        None,
    )
    .await;
    assert_eq!(status, 200, "{members}");
    let pages = platform.service_requests() - calls_before;
    println!(
        "demo platform, roster read: {} token request(s), {pages} service call(s) for {} members",
        platform.token_requests() - tokens_before,
        members["members"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_default()
    );
    let all = members["members"].as_array().expect("members");
    assert_eq!(all.len(), roster::members().len());
    assert!(all.len() >= 30);
    assert_eq!(members["pages"], 4);
    assert_eq!(pages, 4, "10 members a page");
    assert_eq!(members["context"]["id"], "demo-course-101");
    let by_id = |id: &str| {
        all.iter()
            .find(|m| m["userId"] == id)
            .cloned()
            .expect("member")
    };
    assert_eq!(by_id("demo-learner-1")["name"], "Lea Learner");
    assert_eq!(
        by_id("demo-learner-1")["roles"]["mapped"],
        json!(["learner"])
    );
    assert_eq!(
        by_id("demo-instructor-1")["roles"]["mapped"],
        json!(["instructor"])
    );
    let short = by_id("demo-student-04");
    assert_eq!(
        short["roles"]["raw"],
        json!(["Learner"]),
        "a short role name"
    );
    assert_eq!(short["roles"]["mapped"], json!(["learner"]));
    assert_eq!(
        by_id("demo-student-03")["roles"]["mapped"],
        json!(["instructor", "teaching_assistant"])
    );
    assert_eq!(
        by_id("demo-student-17")["roles"]["mapped"],
        json!(["mentor"])
    );
    assert_eq!(by_id("demo-student-29")["status"], "Inactive");
    assert!(by_id("demo-private-7f3a9c").get("name").is_none());
    // The app user id is the one a launch of that member hands the app.
    let mut lea = Browser::new();
    launch(&dev, &mut lea, "learner").await;
    assert_eq!(
        by_id("demo-learner-1")["appUserId"],
        app_token_claims(&lea)["sub"]
    );
    let (_, learners) = call(
        &dev,
        reqwest::Method::GET,
        &format!("/lti/nrps/members?{}", query(&[("role", "Learner")])),
        &launch_id,
        None,
    )
    .await;
    assert_eq!(
        learners["members"].as_array().map(Vec::len),
        Some(
            all.iter()
                .filter(|m| m["roles"]["mapped"] == json!(["learner"]))
                .count()
        )
    );

    // Deleted: gone from the gradebook.
    let (status, _) = call(&dev, reqwest::Method::DELETE, &item_path, &launch_id, None).await;
    assert_eq!(status, 200);
    assert!(platform.line_item(&quiz).is_none());
    let (status, gone) = call(&dev, reqwest::Method::GET, &item_path, &launch_id, None).await;
    assert_eq!(
        (status, gone["error"]["code"].as_str()),
        (502, Some("LTI_PLATFORM_REJECTED"))
    );

    // One access token per scope, all told.
    println!(
        "demo platform, the whole test: {} token request(s), {} token(s) issued, {} service call(s)",
        platform.token_requests(),
        platform.tokens_issued(),
        platform.service_requests()
    );
    assert_eq!(
        platform.tokens_issued(),
        4,
        "lineitem, score, result.readonly, roster"
    );
    assert_eq!(platform.token_requests(), 4);
    dev.server.stop().await;
}

#[tokio::test]
async fn the_instructor_submits_a_score_and_shows_the_roster_in_the_demo_app() {
    let dev = Dev::start().await;
    let mut browser = Browser::new();
    let (page, _) = launch(&dev, &mut browser, "instructor").await;
    // The forms: a learner to choose (from the roster), a score, and the roster.
    assert!(page.body.contains(r#"id="submit-score""#), "{}", page.body);
    assert!(page.body.contains(r#"id="show-roster""#));
    assert!(!page.body.contains(r#"id="submit-my-score""#));
    assert!(
        page.body
            .contains(r#"<option value="demo-learner-1">Lea Learner</option>"#),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains(r#"<option value="demo-instructor-1""#),
        "learners only"
    );
    assert!(!page.body.contains(&dev.server.service_key));
    let launch_id = app_token_claims(&browser)["lti"]["launchId"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        text_of(&page.body, "launch-id").as_deref(),
        Some(launch_id.as_str())
    );

    // Submit a score for Lea.
    let mut fields = form_fields(&page.body, "score-form");
    for (name, value) in fields.iter_mut() {
        match name.as_str() {
            "score" => *value = "87".into(),
            "max" => *value = "100".into(),
            _ => {}
        }
    }
    assert!(
        !fields.iter().any(|(_, v)| v.contains(&launch_id)),
        "no launch id in the form"
    );
    fields.push(("user".into(), "demo-learner-1".into()));
    let posted = browser
        .send(&Next::Post(format!("{}/app/services", dev.tool), fields))
        .await
        .expect("answer");
    assert_eq!(posted.status, 200, "{}", posted.body);
    assert_eq!(
        text_of(&posted.body, "posted-score").as_deref(),
        Some("87 / 100")
    );
    assert_eq!(
        text_of(&posted.body, "posted-user").as_deref(),
        Some("Lea Learner")
    );
    assert_eq!(
        text_of(&posted.body, "posted-line-item").as_deref(),
        Some("Demo Activity")
    );
    assert!(
        posted.body.contains(r#"href="http://127.0.0.1"#) || posted.body.contains("see-gradebook")
    );
    assert!(!posted.body.contains(&dev.server.service_key));

    // It shows on the demo gradebook page.
    let gradebook = browser
        .send(&Next::Get(format!("{}/platform/gradebook", dev.tool)))
        .await
        .expect("page");
    assert_eq!(gradebook.status, 200);
    let row = gradebook
        .body
        .split(r#"data-user="demo-learner-1""#)
        .nth(1)
        .expect("Lea's row")
        .split("</tr>")
        .next()
        .expect("row");
    assert!(
        row.contains("Lea Learner") && row.contains("87 / 100"),
        "{row}"
    );
    assert!(gradebook.body.contains("Demo Activity"));

    // Show roster: every member, with roles and app user ids.
    let fields = form_fields(&posted.body, "roster-form");
    let roster_page = browser
        .send(&Next::Post(format!("{}/app/services", dev.tool), fields))
        .await
        .expect("answer");
    assert_eq!(roster_page.status, 200, "{}", roster_page.body);
    assert_eq!(
        text_of(&roster_page.body, "roster-count").as_deref(),
        Some("35 members, read from 4 page(s) of Demo Course 101.")
    );
    assert_eq!(roster_page.body.matches(r#"class="member""#).count(), 35);
    assert_eq!(
        roster_page.body.matches(r#"class="app-user-id""#).count(),
        35
    );
    dev.server.stop().await;
}

#[tokio::test]
async fn a_learner_submits_only_its_own_score() {
    let dev = Dev::start().await;
    let platform = &dev.server.platform;
    let mut browser = Browser::new();
    let (page, launch_id) = launch(&dev, &mut browser, "learner").await;
    assert!(
        page.body.contains(r#"id="submit-my-score""#),
        "{}",
        page.body
    );
    assert!(!page.body.contains(r#"id="submit-score""#));
    assert!(!page.body.contains(r#"id="show-roster""#));

    // Submit my score: to the demo activity's line item, as Lea.
    let mut fields = form_fields(&page.body, "my-score-form");
    for (name, value) in fields.iter_mut() {
        if name == "score" {
            *value = "42".into();
        }
    }
    let posted = browser
        .send(&Next::Post(
            format!("{}/app/services", dev.tool),
            fields.clone(),
        ))
        .await
        .expect("answer");
    assert_eq!(posted.status, 200, "{}", posted.body);
    assert_eq!(
        text_of(&posted.body, "posted-score").as_deref(),
        Some("42 / 100")
    );
    assert_eq!(
        text_of(&posted.body, "posted-user").as_deref(),
        Some("Lea Learner")
    );
    let activity = platform
        .line_item_url_for(CLIENT_ID, "demo-link-1")
        .expect("graded");
    let scores = platform.line_item(&activity).expect("kept").scores;
    assert_eq!(scores.len(), 1);
    assert_eq!(
        (scores[0].user_id.as_str(), scores[0].score_given),
        ("demo-learner-1", Some(42.0))
    );

    // Someone else's score, through the same form: the tool refuses, nothing lands.
    let mut forged = fields.clone();
    for (name, value) in forged.iter_mut() {
        if name == "action" {
            *value = "score".into();
        }
    }
    forged.push(("user".into(), "demo-student-01".into()));
    let refused = browser
        .send(&Next::Post(format!("{}/app/services", dev.tool), forged))
        .await
        .expect("answer");
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        text_of(&refused.body, "service-error-code").as_deref(),
        Some("LTI_ROLE_NOT_ALLOWED")
    );
    let roster = browser
        .send(&Next::Post(
            format!("{}/app/services", dev.tool),
            fields
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        if k == "action" {
                            "roster".into()
                        } else {
                            v.clone()
                        },
                    )
                })
                .collect(),
        ))
        .await
        .expect("answer");
    assert_eq!(roster.status, 403, "{}", roster.body);

    // The same through the API.
    for (method, path, body) in [
        (
            reqwest::Method::POST,
            "/lti/ags/scores",
            Some(json!({"userId": "demo-student-01", "scoreGiven": 1, "scoreMaximum": 2})),
        ),
        (
            reqwest::Method::POST,
            "/lti/ags/scores",
            Some(
                json!({"scoreGiven": 1, "scoreMaximum": 2, "lineItemUrl": format!("{}/999", platform.lineitems_url())}),
            ),
        ),
        (
            reqwest::Method::POST,
            "/lti/ags/lineitems",
            Some(json!({"label": "Mine", "scoreMaximum": 1})),
        ),
        (reqwest::Method::GET, "/lti/nrps/members", None),
        (reqwest::Method::GET, "/lti/ags/lineitems", None),
    ] {
        let (status, answer) = call(&dev, method, path, &launch_id, body).await;
        assert_eq!(status, 403, "{path}: {answer}");
        assert_eq!(answer["error"]["code"], "LTI_ROLE_NOT_ALLOWED");
    }
    let total: usize = platform.line_items().iter().map(|i| i.scores.len()).sum();
    assert_eq!(total, 1, "only Lea's own score landed");

    // A session the app does not know.
    let unknown = browser
        .send(&Next::Post(
            format!("{}/app/services", dev.tool),
            vec![
                ("session".into(), "nope".into()),
                ("action".into(), "roster".into()),
            ],
        ))
        .await
        .expect("answer");
    assert_eq!(unknown.status, 410);
    dev.server.stop().await;
}

/// A client assertion signed with `key` under `kid`.
fn assertion(key: &LocalRsaSigner, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", part(&header), part(claims));
    let signature = key.sign_now(input.as_bytes()).expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

async fn token_request(dev: &Dev, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(dev.server.platform.token_url())
        .form(form)
        .send()
        .await
        .expect("answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_token_endpoint_verifies_client_assertions_and_services_check_tokens() {
    let dev = Dev::start().await;
    let platform = &dev.server.platform;
    let tool_key =
        LocalRsaSigner::load_or_create(&dev.data_dir().join("tool-key.der")).expect("key");
    let kid = tool_key.public_jwk().kid.clone();
    let token_url = platform.token_url();
    let now = dev.now();
    let claims = |changes: Value| {
        let mut c = json!({
            "iss": CLIENT_ID, "sub": CLIENT_ID, "aud": token_url, "iat": now, "exp": now + 300,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        for (k, v) in changes.as_object().expect("object") {
            if v.is_null() {
                c.as_object_mut().expect("object").remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let grant = |assertion: &str, scope: &str| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ),
            ("client_assertion", assertion.to_string()),
            ("scope", scope.to_string()),
        ]
    };
    let send = |form: Vec<(&'static str, String)>| {
        let dev = &dev;
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token_request(dev, &pairs).await
        }
    };

    // A good assertion: a token for the offered scopes asked for.
    let good = assertion(&tool_key, &kid, &claims(json!({})));
    let (status, answer) = send(grant(
        &good,
        &format!("{NRPS_SCOPE} https://example.com/other"),
    ))
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], NRPS_SCOPE);
    assert_eq!(answer["expires_in"], 3600);
    let roster_token = answer["access_token"].as_str().expect("token").to_string();
    // Used once only.
    let (status, answer) = send(grant(&good, NRPS_SCOPE)).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("invalid_client")),
        "{answer}"
    );

    let other_key = LocalRsaSigner::generate().expect("key");
    for (case, jwt, why) in [
        (
            "aud with a trailing slash",
            assertion(
                &tool_key,
                &kid,
                &claims(json!({"aud": format!("{token_url}/")})),
            ),
            "aud",
        ),
        (
            "aud the issuer",
            assertion(&tool_key, &kid, &claims(json!({"aud": platform.issuer}))),
            "aud",
        ),
        (
            "expired",
            assertion(
                &tool_key,
                &kid,
                &claims(json!({"iat": now - 900, "exp": now - 600})),
            ),
            "expired",
        ),
        (
            "ten minutes",
            assertion(&tool_key, &kid, &claims(json!({"exp": now + 600}))),
            "5 minutes",
        ),
        (
            "iat in the future",
            assertion(
                &tool_key,
                &kid,
                &claims(json!({"iat": now + 600, "exp": now + 700})),
            ),
            "future",
        ),
        (
            "no jti",
            assertion(&tool_key, &kid, &claims(json!({"jti": null}))),
            "jti",
        ),
        (
            "sub not the client",
            assertion(&tool_key, &kid, &claims(json!({"sub": "someone"}))),
            "sub",
        ),
        (
            "unknown client",
            assertion(
                &tool_key,
                &kid,
                &claims(json!({"iss": "nobody", "sub": "nobody"})),
            ),
            "client_id",
        ),
        (
            "another key, the tool's kid",
            assertion(&other_key, &kid, &claims(json!({}))),
            "refused",
        ),
        (
            "a kid the tool does not publish",
            assertion(&tool_key, "kid-nobody-has", &claims(json!({}))),
            "kid",
        ),
        ("not a JWT", "not-a-jwt".to_string(), "not a JWT"),
    ] {
        let (status, answer) = send(grant(&jwt, NRPS_SCOPE)).await;
        assert_eq!(status, 401, "{case}: {answer}");
        assert_eq!(answer["error"], "invalid_client", "{case}");
        assert!(
            answer["error_description"]
                .as_str()
                .unwrap_or_default()
                .contains(why),
            "{case}: {answer}"
        );
    }
    let fresh = || assertion(&tool_key, &kid, &claims(json!({})));
    let mut wrong_grant = grant(&fresh(), NRPS_SCOPE);
    wrong_grant[0].1 = "password".into();
    assert_eq!(send(wrong_grant).await.1["error"], "unsupported_grant_type");
    let (status, answer) = send(grant(&fresh(), "https://example.com/not-offered")).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, answer) = send(vec![("grant_type", "client_credentials".into())]).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_request"))
    );

    // Service calls: this platform's token, unexpired, with the scope the call needs.
    let client = reqwest::Client::new();
    let roster_url = platform.memberships_url();
    let get = |url: String, token: Option<String>| {
        let client = client.clone();
        async move {
            let mut request = client.get(url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send().await.expect("answer")
        }
    };
    assert_eq!(get(roster_url.clone(), None).await.status(), 401);
    assert_eq!(
        get(roster_url.clone(), Some("made-up".into()))
            .await
            .status(),
        401
    );
    let first = get(roster_url.clone(), Some(roster_token.clone())).await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.headers()["content-type"],
        "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
    );
    assert_eq!(
        first.headers()["link"],
        format!("<{roster_url}?page=2>; rel=\"next\"").as_str()
    );
    let page: Value = first.json().await.expect("json");
    assert_eq!(page["members"].as_array().map(Vec::len), Some(10));
    let last = get(format!("{roster_url}?page=4"), Some(roster_token.clone())).await;
    assert!(last.headers().get("link").is_none());
    let page: Value = last.json().await.expect("json");
    assert_eq!(page["members"].as_array().map(Vec::len), Some(5));
    let unknown_link = get(
        format!("{roster_url}?rlid=elsewhere"),
        Some(roster_token.clone()),
    )
    .await;
    assert_eq!(unknown_link.status(), 404);
    // The roster token does not open the gradebook.
    let lineitems = get(platform.lineitems_url(), Some(roster_token.clone())).await;
    assert_eq!(lineitems.status(), 403);
    let answer: Value = lineitems.json().await.expect("json");
    assert_eq!(answer["error"], "insufficient_scope");

    // A score token: what a strict gradebook refuses.
    let (_, answer) = send(grant(&fresh(), SCORE_SCOPE)).await;
    let score_token = answer["access_token"].as_str().expect("token").to_string();
    let activity = platform
        .line_item_url_for(CLIENT_ID, "demo-link-1")
        .expect("graded");
    let post = |body: Value, media: &'static str| {
        let client = client.clone();
        let url = format!("{activity}/scores");
        let token = score_token.clone();
        async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .header("content-type", media)
                .body(body.to_string())
                .send()
                .await
                .expect("answer");
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    const SCORE: &str = "application/vnd.ims.lis.v1.score+json";
    let score = |timestamp: &str, given: f64| {
        json!({"userId": "demo-learner-1", "scoreGiven": given, "scoreMaximum": 10, "timestamp": timestamp,
               "activityProgress": "Completed", "gradingProgress": "FullyGraded"})
    };
    assert_eq!(
        post(score("2030-01-01T10:00:00.000Z", 5.0), SCORE).await.0,
        204
    );
    assert_eq!(
        post(score("2030-01-01T10:00:00.000Z", 5.0), "application/json")
            .await
            .0,
        415
    );
    let (status, answer) = post(score("2030-01-01T09:00:00.000Z", 6.0), SCORE).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (409, Some("conflict")),
        "an older score"
    );
    let mut bad = score("2030-01-01T11:00:00.000Z", 5.0);
    bad["gradingProgress"] = json!("Done");
    assert_eq!(post(bad, SCORE).await.0, 400);
    let mut bad = score("2030-01-01T11:00:00.000Z", 5.0);
    bad.as_object_mut().expect("object").remove("scoreMaximum");
    assert_eq!(post(bad, SCORE).await.0, 400);
    let mut bad = score("yesterday", 5.0);
    bad["timestamp"] = json!("yesterday");
    assert_eq!(post(bad, SCORE).await.0, 400);
    assert_eq!(
        post(score("2030-01-01T12:00:00.000Z", 8.0), SCORE).await.0,
        204
    );
    let latest = platform.line_item(&activity).expect("kept").latest_scores();
    assert_eq!(latest[0].score_given, Some(8.0));

    // Tokens expire.
    dev.clock.advance(3601);
    assert_eq!(get(roster_url, Some(roster_token)).await.status(), 401);
    dev.server.stop().await;
}
