//! The scripted LMS of `common::lms` launches into the dev server like a real platform:
//! the base every HTTP-level trust and hardening test builds on.

use lti_core::clock::{Clock, SystemClock};
use lti_dev::{DevOptions, DevServer};
use std::sync::Arc;

mod common;
use common::lms::Lms;
use common::TempDir;

#[tokio::test]
async fn a_registered_lms_launches_a_learner_into_the_app() {
    let dir = TempDir::new("lti-dev-lms");
    let admin = "s".repeat(40);
    let server = DevServer::start(DevOptions {
        port: 0,
        data_dir: dir.0.clone(),
        admin_token: Some(admin.clone()),
        clock: Arc::new(SystemClock),
        settings: vec![],
    })
    .await
    .expect("dev server");
    let tool = server.base_url.clone();
    let lms = Lms::start("client-a").await;
    lms.register(&tool, &admin).await;

    let answer = lms
        .launch(&tool, lms.claims(&tool, "user-1", SystemClock.now()))
        .await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    let claims = answer.app_token_claims().expect("app token");
    assert_eq!(claims["lti"]["user"]["sub"], "user-1");
    assert_eq!(claims["lti"]["platform"]["clientId"], "client-a");
    assert_eq!(lms.jwks_hits(), 1, "the LMS keys were fetched once");
    server.stop().await;
}
