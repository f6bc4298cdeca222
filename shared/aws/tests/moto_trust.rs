//! Trust boundaries and bounded reads on DynamoDB (moto): two key sets under one issuer
//! never share a user; reading an issuer's registrations never reads its deployments,
//! and anonymous launches cost a bounded, cached number of reads; of two concurrent
//! creations of a registration exactly one is created.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lti_aws::dynamo::{key_part, PLATFORM_INDEX};
use lti_aws::functions;
use lti_core::platform::{Deployment, PlatformStore};
use lti_core::user::UserStore;
use serde_json::{json, Value};

use common::stack::{env, json_of, ready, request, Lms, ISS};

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn two_key_sets_under_one_issuer_never_share_a_user_on_dynamodb() {
    let env = env().await;
    let var = env.var();
    let services = ready(functions::services(&env.clients, &var));
    let (a, b) = (
        Lms::start("institution-a").await,
        Lms::start("institution-b").await,
    );
    for lms in [&a, &b] {
        let response = services
            .handle(request(
                "POST",
                "/admin/platforms",
                "application/json",
                lms.registration().to_string(),
            ))
            .await;
        assert_eq!(response.status(), 201);
    }
    let user_a = a.launch_user(&env, "X", "alice@a.example").await;
    let user_b = b.launch_user(&env, "X", "mallory@b.example").await;
    assert_ne!(user_a, user_b, "one sub, two key sets: two users");
    let stored_a = env.store.user(&user_a).await.expect("read").expect("a");
    assert_eq!(
        stored_a.email.as_deref(),
        Some("alice@a.example"),
        "not overwritten"
    );
    assert_eq!(stored_a.user_scope, a.jwks_url);
    let stored_b = env.store.user(&user_b).await.expect("read").expect("b");
    assert_eq!(stored_b.email.as_deref(), Some("mallory@b.example"));
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn an_issuers_registrations_are_read_without_its_deployments() {
    let env = env().await;
    for client in ["a", "b"] {
        env.store
            .save_platform(lti_core::contract::sample_platform(ISS, client, 0))
            .await
            .expect("save");
    }
    for d in 0..300 {
        env.store
            .save_deployment(Deployment {
                issuer: ISS.into(),
                client_id: "a".into(),
                deployment_id: format!("{d}"),
                created_at: 0,
            })
            .await
            .expect("save");
    }
    // What the adapter queries: the registrations index, by issuer prefix.
    let scanned = env
        .clients
        .dynamodb
        .query()
        .table_name(env.store.table())
        .index_name(PLATFORM_INDEX)
        .key_condition_expression("gsi1pk = :p AND begins_with(gsi1sk, :prefix)")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S("PLATFORM".into()),
        )
        .expression_attribute_values(
            ":prefix",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("{}#", key_part(ISS))),
        )
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .expect("query");
    // What the adapter used to query: the issuer's partition of the table.
    let partition = env
        .clients
        .dynamodb
        .query()
        .table_name(env.store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("PLATFORM#{}", key_part(ISS))),
        )
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .expect("query");
    println!(
        "Items read for an issuer with 2 registrations and 300 deployments: {} (its table partition holds {})",
        scanned.scanned_count(),
        partition.scanned_count()
    );
    assert_eq!(partition.scanned_count(), 302);
    assert_eq!(scanned.scanned_count(), 2);
    let listed = env.store.platforms_by_issuer(ISS, 50).await.expect("list");
    assert_eq!(listed.len(), 2);
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn anonymous_launches_cost_a_bounded_cached_number_of_reads() {
    let env = env().await;
    env.store
        .save_platform(lti_core::contract::sample_platform(ISS, "a", 0))
        .await
        .expect("save");
    let var = env.var();
    let launch = ready(functions::launch(&env.clients, &var));
    env.counter.take();
    // Unsigned tokens naming the registered issuer with an audience it never registered,
    // posted without state (the direct path) and with a state and its cookie.
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    for i in 0..20 {
        let token = format!(
            "{}.{}.c2ln",
            part(&json!({"alg": "RS256", "kid": "k"})),
            part(&json!({"iss": ISS, "aud": format!("nobody-{i}")}))
        );
        let form = if i % 2 == 0 {
            serde_urlencoded::to_string([("id_token", token.as_str())])
        } else {
            serde_urlencoded::to_string([("id_token", token.as_str()), ("state", "s")])
        }
        .expect("form");
        let mut post = request(
            "POST",
            "/lti/launch",
            "application/x-www-form-urlencoded",
            form,
        );
        let cookie = format!(
            "{}={}",
            lti_core::login::state_cookie_name("s"),
            lti_core::login::state_cookie_value("s", 1)
        );
        post.headers_mut().insert(
            "cookie",
            http::HeaderValue::from_str(&cookie).expect("cookie"),
        );
        let response = launch.handle(post).await;
        assert!(response.status().is_client_error());
    }
    let calls = env.counter.take();
    let queries = calls.iter().filter(|c| c.ends_with(":Query")).count();
    let gets = calls.iter().filter(|c| c.ends_with(":GetItem")).count();
    println!(
        "AWS calls for 20 anonymous launches naming a registered issuer: {gets} GetItem, {queries} Query (registrations only, cached)"
    );
    assert_eq!(
        queries, 1,
        "the issuer's registrations are read once, then cached"
    );
    assert!(gets <= 20, "at most one point read per request: {calls:?}");
    assert_eq!(calls.len(), gets + queries, "{calls:?}");
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn of_two_concurrent_creations_exactly_one_is_created_on_dynamodb() {
    let env = env().await;
    let var = env.var();
    let services = ready(functions::services(&env.clients, &var));
    let lms = Lms::start("concurrent").await;
    let body = lms.registration().to_string();
    let (one, two) = tokio::join!(
        services.handle(request(
            "POST",
            "/admin/platforms",
            "application/json",
            body.clone()
        )),
        services.handle(request(
            "POST",
            "/admin/platforms",
            "application/json",
            body
        ))
    );
    let mut statuses = vec![one.status().as_u16(), two.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, vec![200, 201]);
    assert_eq!(json_of(&one)["id"], json_of(&two)["id"]);
}
