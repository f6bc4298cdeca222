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
