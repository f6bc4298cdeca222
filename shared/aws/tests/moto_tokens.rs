//! The DynamoDB service token cache passes the same contract suite as the in-memory
//! one, and writes the TTL attribute.

mod common;

use lti_aws::dynamo::DynamoStore;
use lti_aws::dynamo_tokens::token_key;
use lti_core::error::Secret;
use lti_core::services::token::{CachedToken, ServiceTokenCache, TokenKey};

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn the_dynamodb_service_token_cache_meets_the_contract() {
    let clients = common::moto(None).await;
    let table = common::fresh_table(&clients).await;
    lti_core::contract::service_token_cache_contract(&DynamoStore::new(
        clients.dynamodb.clone(),
        table,
    ))
    .await;
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn a_token_item_carries_the_ttl_attribute_and_its_key() {
    let clients = common::moto(None).await;
    let table = common::fresh_table(&clients).await;
    let store = DynamoStore::new(clients.dynamodb.clone(), table.clone());
    let registration = uuid::Uuid::new_v4();
    let key = TokenKey::new(registration, &["b-scope", "a-scope"]);
    let token = CachedToken {
        access_token: Secret::new("opaque-token"),
        expires_at: 2_000_000_000,
    };
    store.put_service_token(&key, &token).await.expect("put");
    let (pk, sk) = token_key(&key);
    assert_eq!(
        pk.as_s().expect("string"),
        &format!("TOKEN#{registration}#{}", key.scope_hash())
    );
    let item = clients
        .dynamodb
        .get_item()
        .table_name(&table)
        .key("pk", pk)
        .key("sk", sk)
        .send()
        .await
        .expect("get")
        .item
        .expect("stored");
    assert_eq!(
        item.get("expires_at")
            .and_then(|v| v.as_n().ok())
            .map(String::as_str),
        Some("2000000000"),
        "expires_at is the table's TTL attribute (provision.rs)"
    );
    assert_eq!(
        item.get("scope")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("a-scope b-scope")
    );
}
