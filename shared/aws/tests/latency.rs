//! The launch and login as the user waits for them: every AWS call goes through a proxy
//! that adds a fixed delay (`LATENCY_MS`, default 10) in front of moto, so what the
//! handlers spend is dominated by the calls they make one after the other. Prints one
//! line per case — calls made, calls on the critical path (calls that overlap in time
//! count once), server time — and asserts the call budget (never a time).
//!
//! Run by `tests/latency.sh` (which starts moto); `#[ignore]`d otherwise.

mod common;

use common::stack::{env, ready, Env, Lms};
use lti_aws::calls::{critical_path, CallCounter};
use lti_aws::functions::{self, Clients};
use serde_json::json;
use std::time::{Duration, Instant};

/// Clients whose every call goes through the delaying proxy, counted.
async fn delayed_clients(delay: Duration, counter: &CallCounter) -> Clients {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (tests/latency.sh)");
    let proxy = lti_e2e::aws_proxy::start(moto, delay)
        .await
        .expect("the proxy starts");
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(proxy)
        .load()
        .await;
    Clients::from_shared(&shared, Some(counter.clone()))
}

fn report(case: &str, counter: &CallCounter, started: Instant) -> (usize, usize) {
    let server_ms = started.elapsed().as_secs_f64() * 1000.0;
    let calls = counter.take_calls();
    let critical = critical_path(&calls);
    let names: Vec<String> = calls.iter().map(|c| c.name.clone()).collect();
    println!(
        "{case}: calls={} critical_path={critical} server_ms={server_ms:.1} ({})",
        calls.len(),
        names.join(", ")
    );
    (calls.len(), critical)
}

/// Registers `lms` with a routing rule for course `sales`: a cold launch reads the rules
/// with the registration.
async fn registered(env: &Env, lms: &Lms) {
    let var = env.var();
    let services = ready(functions::services(&env.clients, &var));
    let response = services
        .handle(common::stack::request(
            "POST",
            "/admin/platforms",
            "application/json",
            lms.registration().to_string(),
        ))
        .await;
    assert_eq!(response.status(), 201);
    let id = common::stack::json_of(&response)["id"]
        .as_str()
        .expect("id")
        .to_string();
    let rule = json!({
        "contextId": "sales",
        "landingUrl": "https://app.example/sales",
        "claims": {"group": "7"}
    });
    let response = services
        .handle(common::stack::request(
            "POST",
            &format!("/admin/platforms/{id}/routes"),
            "application/json",
            rule.to_string(),
        ))
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.body());
}

/// A launch into course `sales`.
fn in_sales(claims: &mut serde_json::Value) {
    claims["https://purl.imsglobal.org/spec/lti/claim/context"] = json!({"id": "sales"});
}

/// The launch landed where the course's routing rule sends it.
fn routed(response: &lti_http::HttpResponse) -> bool {
    String::from_utf8_lossy(response.body()).contains("https://app.example/sales")
}

#[tokio::test]
#[ignore = "needs a moto server: tests/latency.sh starts one"]
async fn the_launch_and_login_in_round_trips() {
    let delay = Duration::from_millis(
        std::env::var("LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
    );
    println!("every AWS call delayed by {} ms", delay.as_millis());
    let env = env().await;
    let lms = Lms::start("latency-client").await;
    registered(&env, &lms).await;
    let counter = CallCounter::default();
    let clients = delayed_clients(delay, &counter).await;
    let var = env.var();

    // The first login and launch of a new stack: nothing cached anywhere yet.
    let login = ready(functions::login(&clients, &var));
    let launch = ready(functions::launch(&clients, &var));
    let started = Instant::now();
    let (state, nonce, cookie) = lms.login_with(&login).await;
    report("cold login", &counter, started);
    let token = lms.id_token("u-1", &nonce, |c| c["email"] = json!("u@example.edu"));
    let started = Instant::now();
    let response = lms.post_launch_with(&launch, &token, &state, &cookie).await;
    assert_eq!(response.status(), 200);
    let (calls, _) = report(
        "first launch of a new stack (empty table)",
        &counter,
        started,
    );
    // The batch (registration, deployment, absent key copies), the platform's keys
    // kept, the transaction, the tool key's public half read once and kept, the
    // signature: the shared key entry the batch found absent is not read again.
    assert_eq!(calls, 6, "the calls are printed above");

    // Warm: the same instances again.
    let started = Instant::now();
    let (state, nonce, cookie) = lms.login_with(&login).await;
    let (calls, critical) = report("warm login", &counter, started);
    assert_eq!((calls, critical), (1, 1));
    let token = lms.id_token("u-1", &nonce, in_sales);
    let started = Instant::now();
    let response = lms.post_launch_with(&launch, &token, &state, &cookie).await;
    assert_eq!(response.status(), 200);
    let (calls, critical) = report("warm launch", &counter, started);
    assert_eq!((calls, critical), (2, 1));
    assert!(
        routed(&response),
        "the course's rule applies on a warm instance"
    );

    // Cold: new instances, with the table as warm instances left it.
    let login = ready(functions::login(&clients, &var));
    let launch = ready(functions::launch(&clients, &var));
    let started = Instant::now();
    let (state, nonce, cookie) = lms.login_with(&login).await;
    let (calls, _) = report("cold login", &counter, started);
    assert!(calls <= 2);
    let token = lms.id_token("u-2", &nonce, in_sales);
    let started = Instant::now();
    let response = lms.post_launch_with(&launch, &token, &state, &cookie).await;
    assert_eq!(response.status(), 200);
    let (calls, critical) = report("cold launch", &counter, started);
    assert_eq!((calls, critical), (3, 2));
    assert!(
        routed(&response),
        "the course's rule was read with the registration"
    );

    // A replay of the warm launch on the instance that consumed it: no call at all.
    let started = Instant::now();
    let response = lms.post_launch_with(&launch, &token, &state, &cookie).await;
    assert_eq!(response.status(), 409);
    let (calls, _) = report("replay on the instance that consumed it", &counter, started);
    assert_eq!(calls, 0);
}
