//! The in-memory service token cache meets the contract the DynamoDB one meets.

use lti_core::contract::service_token_cache_contract;
use lti_core::memory::MemoryStore;

#[tokio::test]
async fn the_memory_service_token_cache_meets_the_contract() {
    service_token_cache_contract(&MemoryStore::new()).await;
}
