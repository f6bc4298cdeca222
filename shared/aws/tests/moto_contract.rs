//! The DynamoDB adapters pass the same contract suites as the in-memory ones.

mod common;

use lti_aws::dynamo::DynamoStore;
use lti_core::contract::{key_set_cache_contract, launch_store_contract, platform_store_contract};
use std::sync::Arc;

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn the_dynamodb_platform_store_meets_the_contract() {
    let clients = common::moto(None).await;
    let table = common::fresh_table(&clients).await;
    platform_store_contract(&DynamoStore::new(clients.dynamodb.clone(), table)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn the_dynamodb_launch_store_meets_the_contract() {
    let clients = common::moto(None).await;
    let table = common::fresh_table(&clients).await;
    let store = Arc::new(DynamoStore::new(clients.dynamodb.clone(), table));
    launch_store_contract(store.clone(), store.as_ref(), store.as_ref()).await;
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn keys_with_separators_cannot_collide() {
    use lti_core::platform::PlatformStore;
    let clients = common::moto(None).await;
    let table = common::fresh_table(&clients).await;
    let store = DynamoStore::new(clients.dynamodb.clone(), table);
    let a = lti_core::contract::sample_platform("https://x#y", "c", 1);
    let b = lti_core::contract::sample_platform("https://x", "y#c", 1);
    store.save_platform(a.clone()).await.expect("save a");
    store.save_platform(b.clone()).await.expect("save b");
    assert_eq!(
        store
            .platform("https://x#y", "c")
            .await
            .expect("read")
            .map(|p| p.issuer),
        Some(a.issuer)
    );
    assert_eq!(
        store
            .platform("https://x", "y#c")
            .await
            .expect("read")
            .map(|p| p.client_id),
        Some(b.client_id)
    );
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn the_dynamodb_key_set_cache_meets_the_contract() {
    let clients = common::moto(None).await;
    let table = common::fresh_table(&clients).await;
    key_set_cache_contract(&DynamoStore::new(clients.dynamodb.clone(), table)).await;
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn the_dynamodb_service_key_store_meets_the_contract() {
    let clients = common::moto(None).await;
    let table = common::fresh_table(&clients).await;
    lti_core::contract::service_key_store_contract(&DynamoStore::new(
        clients.dynamodb.clone(),
        table,
    ))
    .await;
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn the_dynamodb_store_meets_the_platform_admin_contract() {
    let clients = common::moto(None).await;
    let table = common::fresh_table(&clients).await;
    lti_core::contract::platform_admin_contract(&DynamoStore::new(clients.dynamodb.clone(), table))
        .await;
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn a_registration_saved_before_pointers_existed_is_found_by_its_id_and_given_one() {
    use lti_core::platform::PlatformStore;
    use lti_core::registration::PlatformAdmin;
    let clients = common::moto(None).await;
    let table = common::fresh_table(&clients).await;
    let store = DynamoStore::new(clients.dynamodb.clone(), table.clone());
    let saved = store
        .save_platform(lti_core::contract::sample_platform(
            "https://old.example",
            "c",
            1,
        ))
        .await
        .expect("save")
        .platform;
    // As an older version left it: no id item.
    let (pk, sk) = lti_aws::dynamo_admin::pointer_key(saved.id);
    clients
        .dynamodb
        .delete_item()
        .table_name(&table)
        .key("pk", pk.clone())
        .key("sk", sk.clone())
        .send()
        .await
        .expect("delete pointer");
    assert_eq!(
        store.platform_by_id(saved.id).await.expect("read"),
        Some(saved.clone())
    );
    let pointer = clients
        .dynamodb
        .get_item()
        .table_name(&table)
        .key("pk", pk)
        .key("sk", sk)
        .send()
        .await
        .expect("read pointer");
    assert!(pointer.item.is_some(), "the id item was written back");
}
