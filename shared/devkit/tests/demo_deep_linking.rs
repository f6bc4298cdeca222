//! Deep Linking end to end on the dev server, as a person does it: the instructor
//! presses **Add content** on the demo platform, the demo app's picker opens, the
//! picked items go through the app's backend (`POST /lti/deep-link` with the service
//! key) back to the demo platform, which verifies the response against the tool's JWKS
//! and adds the items to its course; launching an added resource link carries its
//! title and custom parameters. Then what the demo platform refuses.

mod common;

use common::dev::Dev;
use common::lms::sign_with;
use lti_core::signer::LocalRsaSigner;
use lti_dev::browser::{first_form, Browser, Next, Page};
use serde_json::{json, Value};

const LTI: &str = "https://purl.imsglobal.org/spec/lti/claim/";
const DL: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/";

use common::last_app_token_claims as app_token_claims;

/// The instructor presses Add content: the picker page, and the picker's id.
async fn open_picker(dev: &Dev, browser: &mut Browser) -> (Page, String) {
    let page = browser
        .run(Next::Get(format!(
            "{}/platform/launch?user=instructor&message=deep",
            dev.tool
        )))
        .await
        .expect("the flow completes");
    assert_eq!(page.url, format!("{}/app", dev.tool), "{}", page.body);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"id="picker""#), "{}", page.body);
    let form = first_form(&page.body).expect("the picker form");
    assert_eq!(form.action, "/app/deep-link");
    let picker = form.field("picker").expect("picker id").to_string();
    (page, picker)
}

fn pick(picker: &str, items: &[&str], action: &str) -> Vec<(String, String)> {
    let mut fields = vec![("picker".to_string(), picker.to_string())];
    fields.extend(items.iter().map(|i| ("item".to_string(), i.to_string())));
    fields.push(("action".into(), action.into()));
    fields
}

/// The text of the element with `id` (its first text node).
fn text_of(body: &str, id: &str) -> Option<String> {
    let start = body.find(&format!(r#"id="{id}""#))?;
    let open = start + body[start..].find('>')? + 1;
    let end = open + body[open..].find('<')?;
    Some(body[open..end].trim().to_string())
}

#[tokio::test]
async fn an_instructor_adds_content_and_a_learner_launches_the_added_link() {
    let dev = Dev::start().await;
    let mut browser = Browser::new();
    let (page, picker) = open_picker(&dev, &mut browser).await;
    // Who arrived, as for any launch, and what the platform asked for.
    assert_eq!(
        text_of(&page.body, "welcome").as_deref(),
        Some("Welcome, Ian Instructor")
    );
    let claims = app_token_claims(&browser);
    let settings = &claims["lti"]["services"]["deepLinking"];
    assert_eq!(
        settings["acceptTypes"],
        json!(["ltiResourceLink", "link", "html"])
    );
    assert_eq!(settings["acceptMultiple"], json!(true));
    assert_eq!(settings["acceptLineitem"], json!(true));
    assert_eq!(settings["data"]["course"], "demo-course-101");
    // The browser never sees the service key.
    assert!(!page.body.contains(&dev.server.service_key));

    let added = browser
        .run(Next::Post(
            format!("{}/app/deep-link", dev.tool),
            pick(&picker, &["resource", "link"], "add"),
        ))
        .await
        .expect("the answer reaches the platform");
    assert_eq!(
        added.url,
        format!("{}/platform/deep-link-return", dev.tool),
        "{}",
        added.body
    );
    assert_eq!(added.status, 200, "{}", added.body);
    assert!(
        added.body.contains("2 items were added from lti-lambda."),
        "{}",
        added.body
    );
    assert!(
        added
            .body
            .contains("The tool says: 2 items picked in the demo app"),
        "{}",
        added.body
    );
    // The hop in between: the tool's auto-submit page, served by the app's backend.
    let handoff = browser
        .hops
        .iter()
        .find(|p| p.url.ends_with("/app/deep-link"))
        .expect("the picker's answer");
    let form = first_form(&handoff.body).expect("the auto-submit form");
    assert_eq!(
        form.action,
        format!("{}/platform/deep-link-return", dev.tool)
    );
    assert!(form.field("JWT").is_some());
    assert!(!handoff.body.contains(&dev.server.service_key));

    // The course lists them, exactly as the demo app sent them.
    let course = dev.server.platform.course_items();
    assert_eq!(course.len(), 2);
    assert_eq!(course[0].item["type"], "ltiResourceLink");
    assert_eq!(
        course[0].item,
        json!({
            "type": "ltiResourceLink", "title": "Sales scenario 7", "text": "A graded role-play",
            "url": format!("{}/lti/launch", dev.tool),
            "custom": {"scenario": "sales-7", "difficulty": "2"},
            "lineItem": {"scoreMaximum": 100, "label": "Sales scenario 7", "resourceId": "sales-7", "tag": "scenario"},
            "window": {"targetName": "_blank"}
        })
    );
    assert_eq!(
        course[1].item["url"],
        "https://www.imsglobal.org/spec/lti/v1p3/"
    );
    let home = browser
        .run(Next::Get(format!("{}/platform", dev.tool)))
        .await
        .expect("home");
    assert!(home.body.contains("Sales scenario 7"), "{}", home.body);
    assert!(
        home.body
            .contains(&format!(r#"id="launch-item-{}""#, course[0].id)),
        "{}",
        home.body
    );
    assert!(home
        .body
        .contains("graded: line item Sales scenario 7, out of 100"));

    // The same picker cannot answer twice.
    let again = browser
        .send(&Next::Post(
            format!("{}/app/deep-link", dev.tool),
            pick(&picker, &["html"], "add"),
        ))
        .await
        .expect("answer");
    assert_eq!(again.status, 410, "{}", again.body);
    assert_eq!(dev.server.platform.course_items().len(), 2);

    // A learner launches the added resource link: its title and custom parameters.
    let mut learner = Browser::new();
    let landed = learner
        .run(Next::Get(format!(
            "{}/platform/launch?user=learner&item={}",
            dev.tool, course[0].id
        )))
        .await
        .expect("launch");
    assert_eq!(landed.url, format!("{}/app", dev.tool), "{}", landed.body);
    assert_eq!(
        text_of(&landed.body, "welcome").as_deref(),
        Some("Welcome, Lea Learner")
    );
    assert_eq!(
        text_of(&landed.body, "activity").as_deref(),
        Some("Sales scenario 7")
    );
    assert!(landed.body.contains("scenario=sales-7"), "{}", landed.body);
    let lti = app_token_claims(&learner)["lti"].clone();
    assert_eq!(lti["messageType"], "LtiResourceLinkRequest");
    assert_eq!(
        lti["resourceLink"],
        json!({"id": format!("dl-item-{}", course[0].id), "title": "Sales scenario 7", "description": "A graded role-play"})
    );
    assert_eq!(lti["custom"]["scenario"], "sales-7");
    assert_eq!(lti["custom"]["difficulty"], "2");
    // The platform made the item's line item when it took the answer; the launch
    // points at it.
    let platform = &dev.server.platform;
    let line_item = platform
        .line_item_url_for(
            lti_dev::platform::CLIENT_ID,
            &format!("dl-item-{}", course[0].id),
        )
        .expect("a line item for the added link");
    assert_eq!(lti["services"]["ags"]["lineitem"], line_item.as_str());
    let stored = platform.line_item(&line_item).expect("in the gradebook");
    assert_eq!(
        (
            stored.label.as_str(),
            stored.score_maximum,
            stored.resource_id.as_deref(),
            stored.tag.as_deref()
        ),
        ("Sales scenario 7", 100.0, Some("sales-7"), Some("scenario"))
    );
    // The learner's Submit my score lands in it.
    let form_start = landed
        .body
        .find(r#"<form id="my-score-form""#)
        .expect("Submit my score");
    let fields = first_form(&landed.body[form_start..]).expect("form").fields;
    let posted = learner
        .send(&Next::Post(format!("{}/app/services", dev.tool), fields))
        .await
        .expect("answer");
    assert_eq!(posted.status, 200, "{}", posted.body);
    let scores = platform.line_item(&line_item).expect("kept").scores;
    assert_eq!(scores.len(), 1);
    assert_eq!(
        (scores[0].user_id.as_str(), scores[0].score_given),
        ("demo-learner-1", Some(80.0))
    );
    // A link is not launched.
    let link = learner
        .send(&Next::Get(format!(
            "{}/platform/launch?user=learner&item={}",
            dev.tool, course[1].id
        )))
        .await
        .expect("answer");
    assert_eq!(link.status, 400);
    dev.server.stop().await;
}

#[tokio::test]
async fn cancel_adds_nothing_and_the_platform_says_so() {
    let dev = Dev::start().await;
    let mut browser = Browser::new();
    let (_, picker) = open_picker(&dev, &mut browser).await;
    // Add with nothing picked: the picker again, with a hint.
    let empty = browser
        .send(&Next::Post(
            format!("{}/app/deep-link", dev.tool),
            pick(&picker, &[], "add"),
        ))
        .await
        .expect("answer");
    assert_eq!(empty.status, 200);
    assert!(
        empty.body.contains("Pick at least one item"),
        "{}",
        empty.body
    );
    let page = browser
        .run(Next::Post(
            format!("{}/app/deep-link", dev.tool),
            pick(&picker, &["resource"], "cancel"),
        ))
        .await
        .expect("the answer reaches the platform");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Nothing was added from lti-lambda."),
        "{}",
        page.body
    );
    assert!(dev.server.platform.course_items().is_empty());
    dev.server.stop().await;
}

/// A valid deep-linking response for a fresh Add content, from the tool itself
/// (`POST /lti/deep-link`), and the claims it carries.
async fn a_valid_response(dev: &Dev, items: Value) -> (String, Value) {
    let mut browser = Browser::new();
    let (_, _) = open_picker(dev, &mut browser).await;
    let launch_id = app_token_claims(&browser)["lti"]["launchId"]
        .as_str()
        .expect("launch id")
        .to_string();
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/lti/deep-link", dev.tool))
        .header("x-api-key", &dev.server.service_key)
        .bearer_auth(launch_id)
        .json(&json!({"contentItems": items}))
        .send()
        .await
        .expect("call")
        .json()
        .await
        .expect("json");
    let jwt = answer["jwt"].as_str().expect("jwt").to_string();
    let claims =
        lti_core::jwt::decode_part(jwt.split('.').nth(1).expect("payload")).expect("claims");
    (jwt, claims)
}

async fn post_return(dev: &Dev, jwt: &str) -> Page {
    Browser::new()
        .send(&Next::Post(
            format!("{}/platform/deep-link-return", dev.tool),
            vec![("JWT".into(), jwt.into())],
        ))
        .await
        .expect("answer")
}

#[tokio::test]
async fn the_demo_platform_refuses_a_response_it_cannot_trust() {
    let dev = Dev::start().await;
    // The tool's own key (it is in the dev server's data folder): forged responses
    // with a valid signature test each claim check on its own.
    let tool_key =
        LocalRsaSigner::load_or_create(&dev.data_dir().join("tool-key.der")).expect("key");
    let kid = tool_key.public_jwk().kid.clone();
    let link = json!([{"type": "link", "url": "https://example.com/a", "title": "A"}]);
    let (jwt, claims) = a_valid_response(&dev, link.clone()).await;
    let fresh = |mut claims: Value| {
        claims["nonce"] = json!(uuid::Uuid::new_v4().to_string());
        claims
    };
    let mut cases: Vec<(String, &str)> = vec![];
    let mut with = |change: &dyn Fn(&mut Value), reason: &'static str| {
        let mut c = fresh(claims.clone());
        change(&mut c);
        cases.push((sign_with(&tool_key, &kid, &c), reason));
    };
    with(
        &|c| c["aud"] = json!("https://lms.example"),
        "aud is not this platform",
    );
    with(
        &|c| c[format!("{LTI}deployment_id")] = json!("2"),
        "deployment_id is not the tool",
    );
    with(
        &|c| c[format!("{LTI}message_type")] = json!("LtiResourceLinkRequest"),
        "not an LtiDeepLinkingResponse",
    );
    with(
        &|c| c[format!("{LTI}version")] = json!("1.1"),
        "version is not 1.3.0",
    );
    with(
        &|c| {
            c["iat"] = json!(c["iat"].as_i64().expect("iat") - 1000);
            c["exp"] = json!(c["exp"].as_i64().expect("exp") - 1000);
        },
        "has expired",
    );
    with(
        &|c| {
            c.as_object_mut().expect("object").remove("nonce");
        },
        "has no nonce",
    );
    with(
        &|c| c[format!("{DL}data")]["session"] = json!("made-up"),
        "data is not what this platform sent",
    );
    with(
        &|c| {
            c[format!("{DL}content_items")] =
                json!([{"type": "file", "url": "https://example.com/f"}])
        },
        "item of type",
    );
    // Another key under the tool's kid.
    let other = LocalRsaSigner::generate().expect("key");
    cases.push((
        sign_with(&other, &kid, &fresh(claims.clone())),
        "signature does not verify",
    ));
    // A kid the tool does not publish.
    cases.push((
        sign_with(&tool_key, "nobodys-kid", &fresh(claims.clone())),
        "does not publish the key",
    ));
    // An HS256 token.
    let hs = format!(
        "{}.{}.c2ln",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            json!({"alg": "HS256", "kid": kid}).to_string()
        ),
        jwt.split('.').nth(1).expect("payload")
    );
    cases.push((hs, "RS256 only"));
    cases.push(("not-a-jwt".into(), "not a JWT"));
    for (forged, reason) in &cases {
        let page = post_return(&dev, forged).await;
        assert_eq!(page.status, 400, "{reason}: {}", page.body);
        let said = text_of(&page.body, "reason").unwrap_or_default();
        assert!(said.contains(reason), "{reason}: {said}");
    }
    assert!(dev.server.platform.course_items().is_empty());

    // The real one is accepted, once.
    let page = post_return(&dev, &jwt).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(dev.server.platform.course_items().len(), 1);
    let replay = post_return(&dev, &jwt).await;
    assert_eq!(replay.status, 400);
    assert!(text_of(&replay.body, "reason")
        .unwrap_or_default()
        .contains("received already"));
    // A second response to the same request (fresh nonce, valid signature).
    let second = post_return(&dev, &sign_with(&tool_key, &kid, &fresh(claims.clone()))).await;
    assert_eq!(second.status, 400);
    assert!(text_of(&second.body, "reason")
        .unwrap_or_default()
        .contains("answered already"));
    assert_eq!(dev.server.platform.course_items().len(), 1);
    dev.server.stop().await;
}

#[tokio::test]
async fn a_learner_cannot_answer_and_the_app_says_why() {
    let dev = Dev::start().await;
    let mut browser = Browser::new();
    let page = browser
        .run(Next::Get(format!(
            "{}/platform/launch?user=learner&message=deep",
            dev.tool
        )))
        .await
        .expect("flow");
    let picker = first_form(&page.body)
        .and_then(|f| f.field("picker").map(str::to_string))
        .expect("picker");
    let refused = browser
        .send(&Next::Post(
            format!("{}/app/deep-link", dev.tool),
            pick(&picker, &["link"], "add"),
        ))
        .await
        .expect("answer");
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        text_of(&refused.body, "refusal-code").as_deref(),
        Some("LTI_ROLE_NOT_ALLOWED")
    );
    assert!(dev.server.platform.course_items().is_empty());
    dev.server.stop().await;
}
