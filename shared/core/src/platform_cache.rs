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
//!
//! A registration's routing rules are cached for the same TTL, found or not (they
//! are read only for launches whose token was verified, so only registered
//! platforms get entries): a warm instance applies them with no store call.
//! Admin writes through this cache ([`PlatformAdmin`]) drop or refresh what they
//! touch, so a deleted registration or deployment is refused at once by the
//! instance that deleted it, and by every other one within the TTL.

use crate::clock::Clock;
use crate::error::StoreError;
use crate::platform::{ColdStart, ColdStartRequest, Deployment, Platform, PlatformStore, Saved};
use crate::registration::{
    PageError, PageRequest, PlatformAdmin, PlatformPage, Removed, RouteSet, RoutesChanged,
};
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
    routes: HashMap<PlatformKey, (Option<RouteSet>, i64)>,
}

impl Entries {
    /// Forgets everything cached about registration (issuer, client_id).
    fn forget(&mut self, issuer: &str, client_id: &str) {
        let key = (issuer.to_string(), client_id.to_string());
        self.platforms.remove(&key);
        self.routes.remove(&key);
        self.deployments
            .retain(|(i, c, _), _| i != issuer || c != client_id);
        self.by_issuer.retain(|(i, _), _| i != issuer);
    }
}

/// Most routing-rule entries kept (one per registration launched lately).
const MAX_ROUTE_ENTRIES: usize = 10_000;

/// Caches [`PlatformStore::platform`] and [`PlatformStore::deployment`] hits, and
/// [`PlatformStore::routes`].
pub struct CachedPlatformStore<S: ?Sized = dyn PlatformStore> {
    inner: Arc<S>,
    clock: Arc<dyn Clock>,
    ttl: i64,
    entries: Mutex<Entries>,
}

impl<S: PlatformStore + ?Sized> CachedPlatformStore<S> {
    /// A cache with [`DEFAULT_TTL`] in front of `inner`.
    pub fn new(inner: Arc<S>, clock: Arc<dyn Clock>) -> Self {
        Self::with_ttl(inner, clock, DEFAULT_TTL)
    }

    /// A cache with its own TTL (seconds).
    pub fn with_ttl(inner: Arc<S>, clock: Arc<dyn Clock>, ttl: i64) -> Self {
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
impl<S: PlatformStore + ?Sized> PlatformStore for CachedPlatformStore<S> {
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
            // Found or not, the rules were read with the registration.
            if entries.routes.len() >= MAX_ROUTE_ENTRIES {
                entries.routes.retain(|_, (_, until)| *until > now);
            }
            entries
                .routes
                .insert(key.clone(), (cold.routes.clone(), until));
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

    async fn routes(&self, issuer: &str, client_id: &str) -> Result<Option<RouteSet>, StoreError> {
        let key = (issuer.to_string(), client_id.to_string());
        let now = self.clock.now();
        if let Some((set, until)) = self.lock().routes.get(&key) {
            if *until > now {
                return Ok(set.clone());
            }
        }
        let found = self.inner.routes(issuer, client_id).await?;
        let mut entries = self.lock();
        if entries.routes.len() >= MAX_ROUTE_ENTRIES {
            entries.routes.retain(|_, (_, until)| *until > now);
        }
        entries
            .routes
            .insert(key, (found.clone(), now.saturating_add(self.ttl)));
        Ok(found)
    }
}

#[async_trait]
impl<S: PlatformAdmin + ?Sized> PlatformAdmin for CachedPlatformStore<S> {
    async fn platform_by_id(&self, id: uuid::Uuid) -> Result<Option<Platform>, StoreError> {
        self.inner.platform_by_id(id).await
    }

    async fn platform_page(&self, request: &PageRequest) -> Result<PlatformPage, PageError> {
        self.inner.platform_page(request).await
    }

    async fn deployments(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Vec<Deployment>, StoreError> {
        self.inner.deployments(issuer, client_id).await
    }

    async fn delete_deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment_id: &str,
    ) -> Result<bool, StoreError> {
        let deleted = self
            .inner
            .delete_deployment(issuer, client_id, deployment_id)
            .await?;
        self.lock().deployments.remove(&(
            issuer.to_string(),
            client_id.to_string(),
            deployment_id.to_string(),
        ));
        Ok(deleted)
    }

    async fn delete_platform(&self, platform: &Platform) -> Result<Removed, StoreError> {
        // Forgotten before and after: a launch on this instance between the two
        // cannot re-cache what is being deleted for longer than the call.
        self.lock().forget(&platform.issuer, &platform.client_id);
        let removed = self.inner.delete_platform(platform).await?;
        self.lock().forget(&platform.issuer, &platform.client_id);
        Ok(removed)
    }

    async fn save_routes(
        &self,
        issuer: &str,
        client_id: &str,
        set: &RouteSet,
        expected_version: u64,
    ) -> Result<Result<(), RoutesChanged>, StoreError> {
        let saved = self
            .inner
            .save_routes(issuer, client_id, set, expected_version)
            .await?;
        self.lock()
            .routes
            .remove(&(issuer.to_string(), client_id.to_string()));
        Ok(saved)
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
        async fn routes(&self, i: &str, c: &str) -> Result<Option<RouteSet>, StoreError> {
            self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner.routes(i, c).await
        }
    }

    #[async_trait]
    impl PlatformAdmin for Counting {
        async fn platform_by_id(&self, id: uuid::Uuid) -> Result<Option<Platform>, StoreError> {
            self.inner.platform_by_id(id).await
        }
        async fn platform_page(&self, r: &PageRequest) -> Result<PlatformPage, PageError> {
            self.inner.platform_page(r).await
        }
        async fn deployments(&self, i: &str, c: &str) -> Result<Vec<Deployment>, StoreError> {
            self.inner.deployments(i, c).await
        }
        async fn delete_deployment(&self, i: &str, c: &str, d: &str) -> Result<bool, StoreError> {
            self.inner.delete_deployment(i, c, d).await
        }
        async fn delete_platform(&self, p: &Platform) -> Result<Removed, StoreError> {
            self.inner.delete_platform(p).await
        }
        async fn save_routes(
            &self,
            i: &str,
            c: &str,
            set: &RouteSet,
            v: u64,
        ) -> Result<Result<(), RoutesChanged>, StoreError> {
            self.inner.save_routes(i, c, set, v).await
        }
    }

    #[tokio::test]
    async fn routing_rules_are_cached_found_or_not_and_refreshed_by_a_write_through_the_cache() {
        let counting = Arc::new(Counting {
            inner: MemoryStore::new(),
            reads: Default::default(),
        });
        let clock = Arc::new(FixedClock::at(1000));
        let cache = CachedPlatformStore::new(counting.clone(), clock.clone());
        let reads = || counting.reads.load(std::sync::atomic::Ordering::SeqCst);

        assert!(cache.routes("i", "c").await.expect("read").is_none());
        assert!(cache.routes("i", "c").await.expect("read").is_none());
        assert_eq!(reads(), 1, "a warm instance knows there are no rules");
        let set = RouteSet {
            platform_id: uuid::Uuid::from_u128(1),
            version: 0,
            rules: vec![],
        };
        cache
            .save_routes("i", "c", &set, 0)
            .await
            .expect("write")
            .expect("saved");
        assert_eq!(
            cache
                .routes("i", "c")
                .await
                .expect("read")
                .map(|s| s.version),
            Some(1),
            "the instance that wrote sees the rules at once"
        );
        cache.routes("i", "c").await.expect("read");
        assert_eq!(reads(), 2);
        clock.advance(DEFAULT_TTL);
        cache.routes("i", "c").await.expect("read");
        assert_eq!(reads(), 3, "read again after the TTL");
    }

    #[tokio::test]
    async fn deleting_through_the_cache_forgets_the_registration_and_its_deployments_at_once() {
        let counting = Arc::new(Counting {
            inner: MemoryStore::new(),
            reads: Default::default(),
        });
        let clock = Arc::new(FixedClock::at(1000));
        let cache = CachedPlatformStore::new(counting.clone(), clock.clone());
        let saved = cache
            .save_platform(crate::contract::sample_platform("i", "c", 0))
            .await
            .expect("save")
            .platform;
        cache
            .save_deployment(Deployment {
                issuer: "i".into(),
                client_id: "c".into(),
                deployment_id: "d".into(),
                created_at: 0,
            })
            .await
            .expect("save");
        assert!(cache
            .deployment("i", "c", "d")
            .await
            .expect("read")
            .is_some());
        assert!(cache.platform("i", "c").await.expect("read").is_some());
        assert_eq!(
            cache.platforms_by_issuer("i", 5).await.expect("read").len(),
            1
        );

        let removed = cache.delete_platform(&saved).await.expect("delete");
        assert_eq!(removed.deployments, 1);
        assert!(cache.platform("i", "c").await.expect("read").is_none());
        assert!(cache
            .deployment("i", "c", "d")
            .await
            .expect("read")
            .is_none());
        assert!(cache
            .platforms_by_issuer("i", 5)
            .await
            .expect("read")
            .is_empty());
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
