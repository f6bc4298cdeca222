//! A read-through cache in front of a [`PlatformStore`], so a warm function does not
//! read the registration and the deployment from the store on every launch.
//!
//! Only hits are cached, for a short time ([`DEFAULT_TTL`]): a newly registered
//! platform or deployment works at once, and a changed registration is picked up by
//! every instance within the TTL. Writes go straight through and refresh the cache.
//! The registrations of an issuer (read by requests that are not yet authenticated:
//! a login without client_id, a direct launch, a refused audience) are cached the
//! same way when there are any, so a flood of anonymous requests costs one store
//! read per issuer per TTL, not one per request.

use crate::clock::Clock;
use crate::error::StoreError;
use crate::platform::{ColdStart, ColdStartRequest, Deployment, Platform, PlatformStore, Saved};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How long a cached registration or deployment is trusted, seconds.
pub const DEFAULT_TTL: i64 = 60;

type PlatformKey = (String, String);
type DeploymentKey = (String, String, String);
type IssuerKey = (String, usize);

#[derive(Default)]
struct Entries {
    platforms: HashMap<PlatformKey, (Platform, i64)>,
    deployments: HashMap<DeploymentKey, (Deployment, i64)>,
    by_issuer: HashMap<IssuerKey, (Vec<Platform>, i64)>,
}

/// Caches [`PlatformStore::platform`] and [`PlatformStore::deployment`] hits.
pub struct CachedPlatformStore {
    inner: Arc<dyn PlatformStore>,
    clock: Arc<dyn Clock>,
    ttl: i64,
    entries: Mutex<Entries>,
}

impl CachedPlatformStore {
    /// A cache with [`DEFAULT_TTL`] in front of `inner`.
    pub fn new(inner: Arc<dyn PlatformStore>, clock: Arc<dyn Clock>) -> Self {
        Self::with_ttl(inner, clock, DEFAULT_TTL)
    }

    /// A cache with its own TTL (seconds).
    pub fn with_ttl(inner: Arc<dyn PlatformStore>, clock: Arc<dyn Clock>, ttl: i64) -> Self {
        Self {
            inner,
            clock,
            ttl,
            entries: Mutex::new(Entries::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl PlatformStore for CachedPlatformStore {
    /// When the registration is not cached: one read of everything a cold launch
    /// needs, and the registration and deployment cached from it.
    async fn cold_start(
        &self,
        request: &ColdStartRequest<'_>,
    ) -> Result<Option<ColdStart>, StoreError> {
        let now = self.clock.now();
        let key = (request.issuer.to_string(), request.client_id.to_string());
        if self
            .lock()
            .platforms
            .get(&key)
            .is_some_and(|(_, until)| *until > now)
        {
            return Ok(None);
        }
        let Some(cold) = self.inner.cold_start(request).await? else {
            return Ok(None);
        };
        let until = now.saturating_add(self.ttl);
        let mut entries = self.lock();
        if let Some(platform) = &cold.platform {
            entries.platforms.insert(key, (platform.clone(), until));
        }
        if let Some(deployment) = &cold.deployment {
            entries.deployments.insert(
                (
                    deployment.issuer.clone(),
                    deployment.client_id.clone(),
                    deployment.deployment_id.clone(),
                ),
                (deployment.clone(), until),
            );
        }
        Ok(Some(cold))
    }

    async fn platforms_by_issuer(
        &self,
        issuer: &str,
        limit: usize,
    ) -> Result<Vec<Platform>, StoreError> {
        let key = (issuer.to_string(), limit);
        let now = self.clock.now();
        if let Some((list, until)) = self.lock().by_issuer.get(&key) {
            if *until > now {
                return Ok(list.clone());
            }
        }
        let found = self.inner.platforms_by_issuer(issuer, limit).await?;
        let mut entries = self.lock();
        if found.is_empty() {
            entries.by_issuer.remove(&key);
        } else {
            // Bounded: entries expire, and only issuers with registrations get one.
            entries.by_issuer.retain(|_, (_, until)| *until > now);
            entries
                .by_issuer
                .insert(key, (found.clone(), now.saturating_add(self.ttl)));
        }
        Ok(found)
    }

    async fn platform(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Option<Platform>, StoreError> {
        let key = (issuer.to_string(), client_id.to_string());
        let now = self.clock.now();
        if let Some((platform, until)) = self.lock().platforms.get(&key) {
            if *until > now {
                return Ok(Some(platform.clone()));
            }
        }
        let found = self.inner.platform(issuer, client_id).await?;
        let mut entries = self.lock();
        match &found {
            Some(p) => {
                entries
                    .platforms
                    .insert(key, (p.clone(), now.saturating_add(self.ttl)));
            }
            None => {
                entries.platforms.remove(&key);
            }
        }
        Ok(found)
    }

    async fn save_platform(&self, platform: Platform) -> Result<Saved, StoreError> {
        let saved = self.inner.save_platform(platform).await?;
        let key = (
            saved.platform.issuer.clone(),
            saved.platform.client_id.clone(),
        );
        let until = self.clock.now().saturating_add(self.ttl);
        let mut entries = self.lock();
        entries
            .by_issuer
            .retain(|(issuer, _), _| *issuer != saved.platform.issuer);
        entries
            .platforms
            .insert(key, (saved.platform.clone(), until));
        Ok(saved)
    }

    async fn list_platforms(&self) -> Result<Vec<Platform>, StoreError> {
        self.inner.list_platforms().await
    }

    async fn deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment_id: &str,
    ) -> Result<Option<Deployment>, StoreError> {
        let key = (
            issuer.to_string(),
            client_id.to_string(),
            deployment_id.to_string(),
        );
        let now = self.clock.now();
        if let Some((deployment, until)) = self.lock().deployments.get(&key) {
            if *until > now {
                return Ok(Some(deployment.clone()));
            }
        }
        let found = self
            .inner
            .deployment(issuer, client_id, deployment_id)
            .await?;
        if let Some(d) = &found {
            self.lock()
                .deployments
                .insert(key, (d.clone(), now.saturating_add(self.ttl)));
        }
        Ok(found)
    }

    async fn save_deployment(&self, deployment: Deployment) -> Result<(), StoreError> {
        self.inner.save_deployment(deployment).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::memory::MemoryStore;

    /// Counts reads that reach the store.
    struct Counting {
        inner: MemoryStore,
        reads: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl PlatformStore for Counting {
        async fn platforms_by_issuer(
            &self,
            issuer: &str,
            limit: usize,
        ) -> Result<Vec<Platform>, StoreError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.platforms_by_issuer(issuer, limit).await
        }
        async fn platform(&self, i: &str, c: &str) -> Result<Option<Platform>, StoreError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.platform(i, c).await
        }
        async fn save_platform(&self, p: Platform) -> Result<Saved, StoreError> {
            self.inner.save_platform(p).await
        }
        async fn list_platforms(&self) -> Result<Vec<Platform>, StoreError> {
            self.inner.list_platforms().await
        }
        async fn deployment(
            &self,
            i: &str,
            c: &str,
            d: &str,
        ) -> Result<Option<Deployment>, StoreError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.deployment(i, c, d).await
        }
        async fn save_deployment(&self, d: Deployment) -> Result<(), StoreError> {
            self.inner.save_deployment(d).await
        }
    }

    #[tokio::test]
    async fn hits_are_served_from_memory_until_the_ttl_and_misses_always_reach_the_store() {
        let counting = Arc::new(Counting {
            inner: MemoryStore::new(),
            reads: Default::default(),
        });
        let clock = Arc::new(FixedClock::at(1000));
        let cache = CachedPlatformStore::new(counting.clone(), clock.clone());
        let reads = || counting.reads.load(std::sync::atomic::Ordering::SeqCst);

        assert!(cache.platform("i", "c").await.expect("read").is_none());
        assert!(cache.platform("i", "c").await.expect("read").is_none());
        assert_eq!(reads(), 2, "misses are not cached");

        counting
            .inner
            .save_platform(crate::contract::sample_platform("i", "c", 0))
            .await
            .expect("save");
        assert!(
            cache.platform("i", "c").await.expect("read").is_some(),
            "new platform at once"
        );
        cache.platform("i", "c").await.expect("read");
        assert_eq!(reads(), 3, "the hit is cached");
        clock.advance(DEFAULT_TTL);
        cache.platform("i", "c").await.expect("read");
        assert_eq!(reads(), 4, "expired entries are read again");
    }

    #[tokio::test]
    async fn the_registrations_of_an_issuer_are_read_once_per_ttl_and_refreshed_by_a_save() {
        let counting = Arc::new(Counting {
            inner: MemoryStore::new(),
            reads: Default::default(),
        });
        let clock = Arc::new(FixedClock::at(1000));
        let cache = CachedPlatformStore::new(counting.clone(), clock.clone());
        let reads = || counting.reads.load(std::sync::atomic::Ordering::SeqCst);

        // An issuer with no registration: nothing cached, so a registration works at once.
        assert!(cache
            .platforms_by_issuer("i", 2)
            .await
            .expect("read")
            .is_empty());
        cache
            .save_platform(crate::contract::sample_platform("i", "a", 0))
            .await
            .expect("save");
        assert_eq!(
            cache.platforms_by_issuer("i", 2).await.expect("read").len(),
            1
        );
        let before = reads();
        for _ in 0..20 {
            cache.platforms_by_issuer("i", 2).await.expect("read");
        }
        assert_eq!(reads(), before, "twenty anonymous requests, no store read");

        // A save through the cache drops the issuer's list: the next read sees both.
        cache
            .save_platform(crate::contract::sample_platform("i", "b", 0))
            .await
            .expect("save");
        assert_eq!(
            cache.platforms_by_issuer("i", 2).await.expect("read").len(),
            2
        );
        clock.advance(DEFAULT_TTL);
        let before = reads();
        cache.platforms_by_issuer("i", 2).await.expect("read");
        assert_eq!(reads(), before + 1, "read again after the TTL");
    }
}
