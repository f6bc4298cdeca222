//! Grades and rosters through the services function as Lambda runs it, on DynamoDB and
//! KMS served by moto, against a scripted LMS over HTTP: an instructor's launch, the
//! app's backend with a service key, a line item, scores, results and the roster; the
//! platform token fetched once and reused from the shared cache by a second (cold)
//! function instance; the AWS and platform calls counted.

mod common;

use common::stack::{env, json_of, ready, request, Env, Lms, ISS};
use lti_aws::functions;
use lti_dev::scripted::{LmsServices, MEMBERS};
use lti_http::handlers::ServicesHandler;
use serde_json::{json, Value};

const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";

/// A services call: the service key and a bearer, JSON in and out.
async fn call(
    services: &ServicesHandler,
    method: &str,
    path: &str,
    key: &str,
    bearer: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = request(
        method,
        path,
        "application/json",
        body.map(|b| b.to_string()).unwrap_or_default(),
    );
    req.headers_mut()
        .insert("x-api-key", http::HeaderValue::from_str(key).expect("key"));
    req.headers_mut().insert(
        "authorization",
        http::HeaderValue::from_str(&format!("Bearer {bearer}")).expect("bearer"),
    );
    let response = services.handle(req).await;
    (response.status().as_u16(), json_of(&response))
}

/// The tool's public keys as the jwks function publishes them, served on 127.0.0.1
/// (the platform's token endpoint checks client assertions against them).
async fn tool_jwks(env: &Env) -> String {
    let var = env.var();
    let jwks = ready(functions::jwks(&env.clients, &var));
    let response = jwks
        .handle(request("GET", "/.well-known/jwks.json", "", String::new()))
        .await;
    common::serve_jwks(json_of(&response)).await
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn grades_and_rosters_on_the_lambda_functions_with_one_token_shared_by_instances() {
    let env = env().await;
    let var = env.var();
    let lms = Lms::start("services-client").await;
    let services = LmsServices::start(&tool_jwks(&env).await, "services-client").await;
    let lineitem = services.add_line_item("Activity 1", Some("rl-1"));

    // The administrator registers the platform and makes a key for the app's backend.
    let first = ready(functions::services(&env.clients, &var));
    let mut registration = lms.registration();
    registration["authTokenUrl"] = json!(services.token_url());
    let saved = first
        .handle(request(
            "POST",
            "/admin/platforms",
            "application/json",
            registration.to_string(),
        ))
        .await;
    assert_eq!(saved.status(), 201, "{}", json_of(&saved));
    let created = first
        .handle(request(
            "POST",
            "/admin/service-keys",
            "application/json",
            json!({"name": "app backend"}).to_string(),
        ))
        .await;
    let key = json_of(&created)["key"].as_str().expect("key").to_string();

    // An instructor launches from course-1.
    let claims = services.claims(Some(&lineitem));
    let token = lms
        .launch(&env, "teacher-1", |c| {
            let lti = "https://purl.imsglobal.org/spec/lti/claim/";
            c[format!("{lti}roles")] = json!([INSTRUCTOR]);
            c[format!("{lti}context")] = json!({"id": "course-1"});
            for (name, value) in claims {
                c[name] = value;
            }
        })
        .await;
    let launch_id = lti_core::jwt::decode_part::<Value>(token.split('.').nth(1).expect("payload"))
        .expect("claims")["jti"]
        .as_str()
        .expect("jti")
        .to_string();

    // Instance 1: a line item, a score, results, the roster.
    let (status, made) = call(
        &first,
        "POST",
        "/lti/ags/lineitems",
        &key,
        &token,
        Some(json!({"label": "Quiz", "scoreMaximum": 10, "resourceLinkId": "rl-1", "tag": "quiz"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let quiz = made["lineItem"]["id"].as_str().expect("id").to_string();
    let score =
        json!({"userId": "student-2", "scoreGiven": 7, "scoreMaximum": 10, "lineItemUrl": quiz});
    let (status, posted) = call(
        &first,
        "POST",
        "/lti/ags/scores",
        &key,
        &launch_id,
        Some(score.clone()),
    )
    .await;
    assert_eq!(status, 200, "{posted}");
    env.counter.take();
    let platform_before = services.requests().len();
    let tokens_before = services.token_requests();
    let (status, _) = call(
        &first,
        "POST",
        "/lti/ags/scores",
        &key,
        &launch_id,
        Some(score.clone()),
    )
    .await;
    assert_eq!(status, 200);
    let warm_post = env.counter.take();
    println!(
        "AWS calls per warm score post: {warm_post:?}; platform calls: {} (token requests: {})",
        services.requests().len() - platform_before,
        services.token_requests() - tokens_before
    );
    assert_eq!(services.scores(2).len(), 2);
    let (status, results) = call(
        &first,
        "GET",
        &format!(
            "/lti/ags/results?lineItemUrl={}",
            &serde_urlencoded::to_string([("u", quiz.as_str())]).expect("q")[2..]
        ),
        &key,
        &launch_id,
        None,
    )
    .await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(results["results"][0]["userId"], "student-2");
    env.counter.take();
    let platform_before = services.requests().len();
    let (status, roster) = call(&first, "GET", "/lti/nrps/members", &key, &launch_id, None).await;
    assert_eq!(status, 200, "{roster}");
    assert_eq!(roster["members"].as_array().map(Vec::len), Some(MEMBERS));
    println!(
        "AWS calls per roster read of {} pages: {:?}; platform calls: {}",
        roster["pages"],
        env.counter.take(),
        services.requests().len() - platform_before
    );
    let after_first = services.token_requests();

    // Instance 2, cold: the score token comes from the shared cache, not the platform.
    let second = ready(functions::services(&env.clients, &var));
    for i in 0..50 {
        let body = json!({"userId": format!("student-{i}"), "scoreGiven": 5, "scoreMaximum": 10, "lineItemUrl": quiz});
        let (status, posted) = call(
            &second,
            "POST",
            "/lti/ags/scores",
            &key,
            &launch_id,
            Some(body),
        )
        .await;
        assert_eq!(status, 200, "{posted}");
    }
    println!(
        "platform token requests: instance 1 made {after_first} (one per scope), instance 2 made {} for 50 score posts",
        services.token_requests() - after_first
    );
    assert_eq!(
        services.token_requests(),
        after_first,
        "the second instance reuses the shared token"
    );

    // The launch recorded its course for backend jobs.
    let platform_id = json_of(&saved)["id"].as_str().expect("id").to_string();
    let job = format!("/lti/nrps/members?platformId={platform_id}&contextId=course-1");
    let mut req = request("GET", &job, "", String::new());
    req.headers_mut()
        .insert("x-api-key", http::HeaderValue::from_str(&key).expect("key"));
    req.headers_mut().remove("authorization");
    let response = second.handle(req).await;
    assert_eq!(response.status(), 200, "{}", json_of(&response));
    let _ = ISS;
}
