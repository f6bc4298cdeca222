//! Per-course routing through a running dev server: rules made with the admin API,
//! applied at launch (most specific wins), carried to the app as `lti.route`, and
//! their landing URLs kept on the allowed app origins.

mod common;

use common::dev::{Dev, ADMIN};
use common::lms::{Lms, LTI};
use serde_json::{json, Value};

async fn post(url: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("call");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Launches `lms` from `context` in `deployment`; returns (landing URL, lti.route).
async fn land(dev: &Dev, lms: &Lms, deployment: &str, context: Option<&str>) -> (String, Value) {
    let mut claims = lms.claims(&dev.tool, "u-1", dev.now());
    claims[format!("{LTI}deployment_id")] = json!(deployment);
    match context {
        Some(id) => claims[format!("{LTI}context")] = json!({"id": id}),
        None => {
            claims
                .as_object_mut()
                .expect("object")
                .remove(&format!("{LTI}context"));
        }
    }
    let answer = lms.launch(&dev.tool, claims).await;
    let form = lti_dev::browser::first_form(&answer.body).expect("the hand-off form");
    let lti = answer.app_token_claims().expect("an app token")["lti"].clone();
    (form.action, lti["route"].clone())
}

#[tokio::test]
async fn the_most_specific_rule_sets_the_landing_url_and_the_route_claims() {
    let dev = Dev::with_settings(&[("LTI_ALLOWED_APP_ORIGINS", "https://scenarios.example")]).await;
    let lms = Lms::start("routed").await;
    let mut registration = lms.registration();
    registration["acceptNewDeployments"] = json!(true);
    let id = lms.admin_post(&dev.tool, ADMIN, &registration).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let routes = format!("{}/admin/platforms/{id}/routes", dev.tool);
    let app = format!("{}/app", dev.tool);

    // No rule: the global default, and no route in the token.
    assert_eq!(
        land(&dev, &lms, "1", Some("sales")).await,
        (app.clone(), Value::Null)
    );

    let mut made = std::collections::HashMap::new();
    for (name, rule) in [
        ("platform", json!({"claims": {"level": "platform"}})),
        (
            "deployment",
            json!({"deploymentId": "1", "landingUrl": "https://scenarios.example/d1", "claims": {"level": "deployment"}}),
        ),
        (
            "context",
            json!({"contextId": "sales", "landingUrl": "https://scenarios.example/sales", "claims": {"scenarioCode": "SALES-1", "groupId": 7}}),
        ),
        (
            "both",
            json!({"deploymentId": "2", "contextId": "sales", "landingUrl": "https://scenarios.example/sales-2", "claims": {"level": "both"}}),
        ),
    ] {
        let (status, answer) = post(&routes, rule).await;
        assert_eq!(status, 201, "{answer}");
        assert!(answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("at once")));
        made.insert(name, answer["id"].as_str().expect("id").to_string());
    }

    // Deployment + course beats course, course beats deployment, deployment beats
    // the registration's default, which applies to everything else.
    let table = [
        (
            "2",
            Some("sales"),
            "https://scenarios.example/sales-2",
            "both",
        ),
        (
            "1",
            Some("sales"),
            "https://scenarios.example/sales",
            "context",
        ),
        (
            "3",
            Some("sales"),
            "https://scenarios.example/sales",
            "context",
        ),
        (
            "1",
            Some("math"),
            "https://scenarios.example/d1",
            "deployment",
        ),
        ("1", None, "https://scenarios.example/d1", "deployment"),
        ("3", Some("math"), app.as_str(), "platform"),
    ];
    for (deployment, context, landing, rule) in table {
        let (at, route) = land(&dev, &lms, deployment, context).await;
        assert_eq!(at, landing, "deployment {deployment}, course {context:?}");
        assert_eq!(
            route["id"],
            made[rule].as_str(),
            "deployment {deployment}, course {context:?}"
        );
    }
    let (_, route) = land(&dev, &lms, "1", Some("sales")).await;
    assert_eq!(
        route["claims"],
        json!({"scenarioCode": "SALES-1", "groupId": 7})
    );

    // Listed most specific first; a rule removed stops applying.
    let listed: Value = reqwest::Client::new()
        .get(&routes)
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let order: Vec<&str> = listed["routes"]
        .as_array()
        .expect("routes")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert_eq!(
        order,
        vec![
            &made["both"],
            &made["context"],
            &made["deployment"],
            &made["platform"]
        ]
    );
    let removed = reqwest::Client::new()
        .delete(format!("{routes}/{}", made["context"]))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("delete");
    assert_eq!(removed.status(), 200);
    let (at, route) = land(&dev, &lms, "1", Some("sales")).await;
    assert_eq!(
        (at.as_str(), route["id"].as_str()),
        (
            "https://scenarios.example/d1",
            Some(made["deployment"].as_str())
        )
    );
}

#[tokio::test]
async fn a_rule_landing_off_the_allowed_origins_is_refused_and_a_duplicate_is_a_conflict() {
    let dev = Dev::start().await;
    let lms = Lms::start("routed-refusals").await;
    let id = lms.register(&dev.tool, ADMIN).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let routes = format!("{}/admin/platforms/{id}/routes", dev.tool);
    let (status, answer) = post(
        &routes,
        json!({"contextId": "sales", "landingUrl": "https://evil.example/steal"}),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("ADMIN_INVALID_ROUTE"))
    );
    assert_eq!(answer["error"]["fields"][0]["field"], "landingUrl");
    let (status, answer) = post(
        &routes,
        json!({"contextId": "sales", "claims": "x", "extra": 1}),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("HTTP_INVALID_JSON")),
        "unknown fields are refused"
    );
    let (status, _) = post(&routes, json!({"contextId": "sales", "claims": {"a": 1}})).await;
    assert_eq!(status, 201);
    let (status, answer) = post(&routes, json!({"contextId": "sales", "claims": {"b": 2}})).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("ADMIN_ROUTE_CONFLICT"))
    );
    // The launch still lands on the app, with the rule's claims.
    let (at, route) = land(&dev, &lms, "1", Some("sales")).await;
    assert_eq!(at, format!("{}/app", dev.tool));
    assert_eq!(route["claims"], json!({"a": 1}));
}

#[tokio::test]
async fn a_rule_whose_origin_is_no_longer_allowed_is_ignored_at_launch() {
    let dir = common::TempDir::new("lti-dev-routing");
    let start = |origins: &'static str| {
        let data_dir = dir.0.clone();
        async move {
            lti_dev::DevServer::start(lti_dev::DevOptions {
                port: 0,
                data_dir,
                admin_token: Some(ADMIN.into()),
                clock: std::sync::Arc::new(lti_core::clock::SystemClock),
                settings: vec![("LTI_ALLOWED_APP_ORIGINS".into(), origins.into())],
            })
            .await
            .expect("dev server")
        }
    };
    let lms = Lms::start("origins").await;
    let server = start("https://scenarios.example").await;
    let id = lms.register(&server.base_url, ADMIN).await.json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    let routes = format!("{}/admin/platforms/{id}/routes", server.base_url);
    let (status, _) = post(
        &routes,
        json!({"contextId": "sales", "landingUrl": "https://scenarios.example/sales"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = post(&routes, json!({"claims": {"fallback": true}})).await;
    assert_eq!(status, 201);
    server.stop().await;
    // The same data, restarted without that origin: the rule is skipped, the next applies.
    let server = start("").await;
    let dev_like = lms.claims(
        &server.base_url,
        "u-1",
        lti_core::clock::Clock::now(&lti_core::clock::SystemClock),
    );
    let answer = lms.launch(&server.base_url, dev_like).await;
    let form = lti_dev::browser::first_form(&answer.body).expect("form");
    assert_eq!(form.action, format!("{}/app", server.base_url));
    let lti = answer.app_token_claims().expect("token")["lti"].clone();
    assert_eq!(lti["route"]["claims"], json!({"fallback": true}));
    server.stop().await;
}
