//! The README's run command, end to end: `tests/run.sh` starts `cargo run -p lti-dev`
//! exactly as a newcomer would and runs this test against it with `LTI_DEV_URL` set.
//! It completes a demo launch the way a browser does, following redirects and
//! auto-submitting forms.

use lti_dev::browser::{Browser, Next};

fn dev_url() -> String {
    std::env::var("LTI_DEV_URL")
        .expect("LTI_DEV_URL must name the running dev server (tests/run.sh sets it)")
        .trim_end_matches('/')
        .to_string()
}

#[tokio::test]
#[ignore = "needs the dev server started by the README's run command; tests/run.sh runs it"]
async fn the_readme_run_command_serves_a_complete_demo_launch() {
    let base = dev_url();
    for (user, welcome) in [
        ("instructor", "Welcome, Ian Instructor"),
        ("learner", "Welcome, Lea Learner"),
        ("private", "Welcome, Anonymous user demo-private-7f3a9c"),
    ] {
        let mut browser = Browser::new();
        let home = browser
            .send(&Next::Get(format!("{base}/platform")))
            .await
            .expect("home");
        assert!(
            home.body.contains("Launch"),
            "the demo platform page offers a launch"
        );
        let page = browser
            .run(Next::Get(format!("{base}/platform/launch?user={user}")))
            .await
            .expect("the flow completes");
        assert_eq!(page.url, format!("{base}/app"));
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains(welcome), "{user}: {}", page.body);
        assert_eq!(browser.hops.len(), 6, "platform, login, auth, launch, app");
    }
    let client = reqwest::Client::new();
    let jwks: serde_json::Value = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
}

/// The README's "Try grades and rosters in five minutes", step by step: the dev
/// server's service key (`LTI_DEV_SERVICE_KEY`: tests/run.sh chooses it with
/// `LTI_SERVICE_KEY`, so that the banner does not print it into the log), an
/// instructor's launch id from the demo app, the roster and a score with curl's
/// requests, the score on the gradebook page.
#[tokio::test]
#[ignore = "needs the dev server started by the README's run command; tests/run.sh runs it"]
async fn the_readme_grades_and_rosters_walkthrough_works_as_written() {
    let base = dev_url();
    let key = std::env::var("LTI_DEV_SERVICE_KEY")
        .expect("LTI_DEV_SERVICE_KEY: the dev server's LTI_SERVICE_KEY (tests/run.sh sets it)");

    // 2. Ian Instructor launches; the demo app shows the launch id and the buttons.
    let mut browser = Browser::new();
    let page = browser
        .run(Next::Get(format!("{base}/platform/launch?user=instructor")))
        .await
        .expect("the flow completes");
    assert_eq!(page.status, 200, "{}", page.body);
    for button in ["Submit a score", "Show roster"] {
        assert!(page.body.contains(button), "{button}: {}", page.body);
    }
    let launch_id = shown_launch_id(&page.body);

    // 3. The app's backend: the roster, then a score.
    let client = reqwest::Client::new();
    let call = |request: reqwest::RequestBuilder| {
        request
            .header("x-api-key", &key)
            .bearer_auth(&launch_id)
            .header("content-type", "application/json")
    };
    let roster: serde_json::Value = call(client.get(format!("{base}/lti/nrps/members")))
        .send()
        .await
        .expect("roster")
        .json()
        .await
        .expect("json");
    assert_eq!(roster["context"]["id"], "demo-course-101");
    assert_eq!(roster["members"][0]["userId"], "demo-instructor-1");
    assert_eq!(roster["members"][0]["roles"]["mapped"][0], "instructor");
    assert_eq!(roster["members"].as_array().map(Vec::len), Some(35));
    assert_eq!(roster["pages"], 4);
    let posted = call(client.post(format!("{base}/lti/ags/scores")))
        .body(r#"{"userId": "demo-learner-1", "scoreGiven": 87, "scoreMaximum": 100, "comment": "Nice work"}"#)
        .send()
        .await
        .expect("score");
    assert_eq!(posted.status(), 200);
    let posted: serde_json::Value = posted.json().await.expect("json");
    assert_eq!(
        posted["lineItem"],
        format!("{base}/platform/courses/demo-course-101/lineitems/1")
    );
    assert_eq!(posted["score"]["scoreGiven"], 87);
    assert_eq!(posted["status"], 204);

    // A learner's launch id: Submit my score on the page; a score for someone else is
    // refused as the README says.
    let mut learner = Browser::new();
    let page = learner
        .run(Next::Get(format!("{base}/platform/launch?user=learner")))
        .await
        .expect("the flow completes");
    assert!(page.body.contains("Submit my score"), "{}", page.body);
    let refused = client
        .post(format!("{base}/lti/ags/scores"))
        .header("x-api-key", &key)
        .bearer_auth(shown_launch_id(&page.body))
        .header("content-type", "application/json")
        .body(r#"{"userId": "demo-student-01", "scoreGiven": 100, "scoreMaximum": 100}"#)
        .send()
        .await
        .expect("score");
    assert_eq!(refused.status(), 403);
    let refused: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(
        refused["error"]["code"], "LTI_ROLE_NOT_ALLOWED",
        "{refused}"
    );

    // 4. The gradebook page shows it under Demo Activity.
    let gradebook = browser
        .send(&Next::Get(format!("{base}/platform/gradebook")))
        .await
        .expect("gradebook");
    let activity = gradebook
        .body
        .split("<h3>")
        .find(|s| s.starts_with("Demo Activity"))
        .expect("Demo Activity");
    let row = activity
        .split(r#"data-user="demo-learner-1""#)
        .nth(1)
        .expect("Lea's row");
    assert!(
        row.contains("Lea Learner") && row.contains("87 / 100"),
        "{row}"
    );
}

/// The launch id the demo app shows on its page (`#launch-id`).
fn shown_launch_id(page: &str) -> String {
    let start = page.find(r#"id="launch-id""#).expect("the launch id");
    page[start..]
        .split("<code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .expect("the launch id")
        .to_string()
}
