//! The in-memory adapters pass the storage contract suites.

use lti_core::contract::{key_set_cache_contract, launch_store_contract, platform_store_contract};
use lti_core::memory::MemoryStore;
use std::sync::Arc;

#[tokio::test]
async fn the_memory_platform_store_meets_the_contract() {
    platform_store_contract(&MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_memory_launch_store_meets_the_contract() {
    let store = Arc::new(MemoryStore::new());
    launch_store_contract(store.clone(), store.as_ref(), store.as_ref()).await;
}

#[tokio::test]
async fn the_memory_key_set_cache_meets_the_contract() {
    key_set_cache_contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn the_memory_service_key_store_meets_the_contract() {
    lti_core::contract::service_key_store_contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn the_memory_store_meets_the_platform_admin_contract() {
    lti_core::contract::platform_admin_contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn the_platform_cache_meets_the_platform_admin_contract() {
    // Admin calls go through the cache on the services function: what it answers
    // must be what the store holds, right after every write.
    let cache = lti_core::platform_cache::CachedPlatformStore::new(
        Arc::new(MemoryStore::new()),
        Arc::new(lti_core::clock::FixedClock::at(1_900_000_000)),
    );
    lti_core::contract::platform_admin_contract(&cache).await;
}
