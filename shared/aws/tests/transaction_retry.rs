//! The launch transaction's retries against a fake DynamoDB endpoint, for sequences
//! moto cannot play: a `TransactionInProgressException` after which the first attempt
//! turns out to have committed, and a conflict cancellation.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use lti_aws::dynamo::DynamoStore;
use lti_core::state::{LaunchStore, StateClaim};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// What the fake endpoint answers to each TransactWriteItems, in order, and what it got.
#[derive(Default)]
struct Script {
    answers: Mutex<Vec<(u16, Value)>>,
    tokens: Mutex<Vec<String>>,
    /// The number of items of each request.
    items: Mutex<Vec<usize>>,
}

async fn endpoint(
    State(script): State<Arc<Script>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(target, "DynamoDB_20120810.TransactWriteItems");
    let request: Value = serde_json::from_slice(&body).expect("json");
    script.tokens.lock().expect("lock").push(
        request["ClientRequestToken"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    script.items.lock().expect("lock").push(
        request["TransactItems"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_default(),
    );
    let (status, answer) = script.answers.lock().expect("lock").remove(0);
    (
        StatusCode::from_u16(status).expect("status"),
        [("content-type", "application/x-amz-json-1.0")],
        answer.to_string(),
    )
}

async fn store_with(answers: Vec<(u16, Value)>) -> (DynamoStore, Arc<Script>) {
    let script = Arc::new(Script {
        items: Mutex::default(),
        answers: Mutex::new(answers),
        tokens: Mutex::default(),
    });
    let app = axum::Router::new()
        .fallback(axum::routing::post(endpoint))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    (DynamoStore::new(client, "table"), script)
}

fn claim() -> StateClaim {
    StateClaim {
        state: "s".repeat(43),
        nonce: "n".into(),
        issuer: "https://lms.example".into(),
        client_id: "c".into(),
        now: 1_900_000_000,
        storage_proof_hash: None,
    }
}

const IN_PROGRESS: &str = "com.amazonaws.dynamodb.v20120810#TransactionInProgressException";
const CANCELED: &str = "com.amazonaws.dynamodb.v20120810#TransactionCanceledException";

#[tokio::test]
async fn a_launch_whose_first_attempt_committed_is_not_turned_into_a_replay() {
    // GIVEN DynamoDB answers the first attempt "in progress", and the retry (with the
    // same token) as the idempotent success of the committed first attempt
    let (store, script) = store_with(vec![
        (
            400,
            json!({"__type": IN_PROGRESS, "message": "in progress"}),
        ),
        (200, json!({})),
    ])
    .await;
    let user = lti_core::contract::sample_user("https://lms.example", "u", 1_900_000_000);
    // WHEN the launch is finished
    store
        .finish_launch(&claim(), &lti_core::contract::writes(&user))
        .await
        .expect("the user's single launch succeeds");
    // THEN both attempts carried one client request token
    let tokens = script.tokens.lock().expect("lock").clone();
    assert_eq!(tokens.len(), 2);
    assert!(!tokens[0].is_empty());
    assert_eq!(tokens[0], tokens[1], "one token across the retries");
}

#[tokio::test]
async fn after_a_conflict_cancellation_the_retry_is_a_new_transaction() {
    let conflict = json!({
        "__type": CANCELED,
        "message": "Transaction cancelled",
        "CancellationReasons": [
            {"Code": "TransactionConflict", "Message": "conflict"},
            {"Code": "None"}
        ]
    });
    let (store, script) = store_with(vec![(400, conflict), (200, json!({}))]).await;
    let user = lti_core::contract::sample_user("https://lms.example", "u", 1_900_000_000);
    store
        .finish_launch(&claim(), &lti_core::contract::writes(&user))
        .await
        .expect("succeeds on retry");
    let tokens = script.tokens.lock().expect("lock").clone();
    assert_eq!(tokens.len(), 2);
    assert_ne!(
        tokens[0], tokens[1],
        "nothing was written: the next attempt is a new request"
    );
}

#[tokio::test]
async fn a_conflict_on_the_courses_record_alone_retries_without_it() {
    // GIVEN a concurrent launch from the same course holds the course's record: the
    // transaction is cancelled with a conflict on that item only (index 3)
    let conflict = json!({
        "__type": CANCELED,
        "message": "Transaction cancelled",
        "CancellationReasons": [
            {"Code": "None"}, {"Code": "None"}, {"Code": "None"},
            {"Code": "TransactionConflict", "Message": "conflict"}, {"Code": "None"}
        ]
    });
    let (store, script) = store_with(vec![(400, conflict), (200, json!({}))]).await;
    let user = lti_core::contract::sample_user("https://lms.example", "u", 1_900_000_000);
    // WHEN the launch is finished
    store
        .finish_launch(&claim(), &lti_core::contract::writes(&user))
        .await
        .expect("the launch succeeds");
    // THEN the retry carried every item but the course's record
    assert_eq!(*script.items.lock().expect("lock"), vec![5, 4]);
}
