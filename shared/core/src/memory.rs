//! In-memory adapters for every storage port: tests, benchmarks and the dev server.
//!
//! They follow the same rules as the DynamoDB adapters: expiry is checked on every
//! read, and a state is consumed under one lock (the in-process equivalent of a
//! conditional write).

use crate::error::StoreError;
use crate::keys::{KeySetCache, SharedKeySet};
use crate::platform::{Deployment, Platform, PlatformStore, Saved};
use crate::registration::store::{decode_cursor, encode_cursor};
use crate::registration::{
    PageError, PageRequest, PlatformAdmin, PlatformPage, Removed, RouteSet, RoutesChanged,
};
use crate::services::keys::{ServiceKeyRecord, ServiceKeyStore};
use crate::services::records::{
    ContextRecord, LaunchRecord, LaunchWrites, LinkRecord, ServiceRecords,
};
use crate::state::{refusal, ConsumeError, LaunchStore, LoginState, StateClaim, StoredState};
use crate::user::{UserRecord, UserStore};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

/// The durable part of a [`MemoryStore`]: registrations and users, which the dev
/// server writes to disk. Login states are short-lived and stay in memory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub platforms: Vec<Platform>,
    pub deployments: Vec<Deployment>,
    pub users: Vec<UserRecord>,
    #[serde(default)]
    pub service_keys: Vec<ServiceKeyRecordStored>,
    #[serde(default)]
    pub contexts: Vec<ContextRecord>,
    #[serde(default)]
    pub links: Vec<LinkRecord>,
    #[serde(default)]
    pub routes: Vec<StoredRoutes>,
}

/// The routing rules of one registration, as the dev server persists them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredRoutes {
    pub issuer: String,
    pub client_id: String,
    #[serde(flatten)]
    pub set: RouteSet,
}

/// A service key as the dev server persists it (the hash included).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceKeyRecordStored {
    pub id: String,
    pub name: String,
    pub hash: String,
    pub created_at: i64,
    #[serde(default)]
    pub last_used_at: Option<i64>,
}

#[derive(Default)]
struct Inner {
    platforms: BTreeMap<(String, String), Platform>,
    deployments: BTreeMap<(String, String, String), Deployment>,
    states: HashMap<String, StoredState>,
    once: HashMap<String, i64>,
    key_sets: HashMap<String, SharedKeySet>,
    /// State count at which expired states are next pruned (amortized: doubles when
    /// pruning frees little, so inserts stay O(1) on average).
    prune_at: usize,
    /// By stable user id.
    users: BTreeMap<String, UserRecord>,
    service_keys: BTreeMap<String, ServiceKeyRecord>,
    /// Launch records by launch id (pruned when expired).
    launches: HashMap<String, LaunchRecord>,
    contexts: BTreeMap<(uuid::Uuid, String), ContextRecord>,
    links: BTreeMap<(uuid::Uuid, String, String), LinkRecord>,
    routes: BTreeMap<(String, String), RouteSet>,
}

/// Every port in one process-local store.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Service access tokens by [`TokenKey::id`] (see the impl at the end).
    service_tokens: Mutex<HashMap<String, CachedToken>>,
}

/// Expired states beyond this many are pruned on the next insert.
const PRUNE_ABOVE: usize = 100_000;

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `snapshot`.
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        let store = Self::new();
        {
            let mut inner = store.lock();
            for p in snapshot.platforms {
                inner
                    .platforms
                    .insert((p.issuer.clone(), p.client_id.clone()), p);
            }
            for d in snapshot.deployments {
                inner.deployments.insert(
                    (
                        d.issuer.clone(),
                        d.client_id.clone(),
                        d.deployment_id.clone(),
                    ),
                    d,
                );
            }
            for u in snapshot.users {
                inner.users.insert(u.id.clone(), u);
            }
            for c in snapshot.contexts {
                inner
                    .contexts
                    .insert((c.platform_id, c.context_id.clone()), c);
            }
            for l in snapshot.links {
                inner.links.insert(
                    (
                        l.platform_id,
                        l.context_id.clone(),
                        l.resource_link_id.clone(),
                    ),
                    l,
                );
            }
            for r in snapshot.routes {
                inner.routes.insert((r.issuer, r.client_id), r.set);
            }
            for k in snapshot.service_keys {
                inner.service_keys.insert(
                    k.id.clone(),
                    ServiceKeyRecord {
                        id: k.id,
                        name: k.name,
                        hash: k.hash,
                        created_at: k.created_at,
                        last_used_at: k.last_used_at,
                    },
                );
            }
        }
        store
    }

    /// The durable data, for persisting.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        Snapshot {
            platforms: inner.platforms.values().cloned().collect(),
            deployments: inner.deployments.values().cloned().collect(),
            users: inner.users.values().cloned().collect(),
            contexts: inner.contexts.values().cloned().collect(),
            links: inner.links.values().cloned().collect(),
            routes: inner
                .routes
                .iter()
                .map(|((issuer, client_id), set)| StoredRoutes {
                    issuer: issuer.clone(),
                    client_id: client_id.clone(),
                    set: set.clone(),
                })
                .collect(),
            service_keys: inner
                .service_keys
                .values()
                .map(|k| ServiceKeyRecordStored {
                    id: k.id.clone(),
                    name: k.name.clone(),
                    hash: k.hash.clone(),
                    created_at: k.created_at,
                    last_used_at: k.last_used_at,
                })
                .collect(),
        }
    }

    /// The stored state, consumed or not (for tests).
    pub fn stored_state(&self, state: &str) -> Option<StoredState> {
        self.lock().states.get(state).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Makes everything a launch writes (under the caller's lock).
fn write_launch(inner: &mut Inner, writes: &LaunchWrites, now: i64) {
    upsert_user(&mut inner.users, &writes.user);
    if inner.launches.len() >= PRUNE_ABOVE {
        inner.launches.retain(|_, l| l.expires_at > now);
    }
    inner
        .launches
        .insert(writes.launch.launch_id.clone(), writes.launch.clone());
    if let Some(c) = &writes.context {
        inner
            .contexts
            .insert((c.platform_id, c.context_id.clone()), c.clone());
    }
    if let Some(l) = &writes.link {
        inner.links.insert(
            (
                l.platform_id,
                l.context_id.clone(),
                l.resource_link_id.clone(),
            ),
            l.clone(),
        );
    }
}

/// Creates or updates `user`: the stored record mirrors what the platform shares now
/// (a field the launch did not carry is removed); `created_at` is set once.
fn upsert_user(users: &mut BTreeMap<String, UserRecord>, user: &UserRecord) {
    let created_at = users
        .get(&user.id)
        .map_or(user.created_at, |existing| existing.created_at);
    users.insert(
        user.id.clone(),
        UserRecord {
            created_at,
            ..user.clone()
        },
    );
}

#[async_trait]
impl PlatformStore for MemoryStore {
    async fn platforms_by_issuer(
        &self,
        issuer: &str,
        limit: usize,
    ) -> Result<Vec<Platform>, StoreError> {
        Ok(self
            .lock()
            .platforms
            .values()
            .filter(|p| p.issuer == issuer)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn platform(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Option<Platform>, StoreError> {
        Ok(self
            .lock()
            .platforms
            .get(&(issuer.to_string(), client_id.to_string()))
            .cloned())
    }

    async fn save_platform(&self, mut platform: Platform) -> Result<Saved, StoreError> {
        let mut inner = self.lock();
        let key = (platform.issuer.clone(), platform.client_id.clone());
        let existing = inner.platforms.get(&key);
        if let Some(existing) = existing {
            platform.id = existing.id;
            platform.created_at = existing.created_at;
            if existing.user_scope.is_some() {
                platform.user_scope.clone_from(&existing.user_scope);
            }
        }
        let created = existing.is_none();
        if platform.user_scope.is_none() {
            platform.user_scope = Some(platform.effective_user_scope().to_string());
        }
        inner.platforms.insert(key, platform.clone());
        Ok(Saved { platform, created })
    }

    async fn list_platforms(&self) -> Result<Vec<Platform>, StoreError> {
        Ok(self.lock().platforms.values().cloned().collect())
    }

    async fn deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment_id: &str,
    ) -> Result<Option<Deployment>, StoreError> {
        Ok(self
            .lock()
            .deployments
            .get(&(
                issuer.to_string(),
                client_id.to_string(),
                deployment_id.to_string(),
            ))
            .cloned())
    }

    async fn save_deployment(&self, deployment: Deployment) -> Result<(), StoreError> {
        let key = (
            deployment.issuer.clone(),
            deployment.client_id.clone(),
            deployment.deployment_id.clone(),
        );
        self.lock().deployments.entry(key).or_insert(deployment);
        Ok(())
    }

    async fn routes(&self, issuer: &str, client_id: &str) -> Result<Option<RouteSet>, StoreError> {
        Ok(self
            .lock()
            .routes
            .get(&(issuer.to_string(), client_id.to_string()))
            .cloned())
    }
}

#[async_trait]
impl PlatformAdmin for MemoryStore {
    async fn platform_by_id(&self, id: uuid::Uuid) -> Result<Option<Platform>, StoreError> {
        Ok(self.lock().platforms.values().find(|p| p.id == id).cloned())
    }

    async fn platform_page(&self, request: &PageRequest) -> Result<PlatformPage, PageError> {
        use std::ops::Bound;
        let issuer = request.issuer.as_deref();
        let after: Option<(String, String)> = request
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, issuer))
            .transpose()?;
        let inner = self.lock();
        let start = match after {
            Some(key) => Bound::Excluded(key),
            None => Bound::Unbounded,
        };
        let mut platforms: Vec<Platform> = inner
            .platforms
            .range((start, Bound::Unbounded))
            .map(|(_, p)| p)
            .filter(|p| issuer.is_none_or(|i| p.issuer == i))
            .take(request.limit.saturating_add(1))
            .cloned()
            .collect();
        let next_cursor = if platforms.len() > request.limit {
            platforms.truncate(request.limit);
            platforms
                .last()
                .map(|p| encode_cursor(&(&p.issuer, &p.client_id), issuer))
        } else {
            None
        };
        Ok(PlatformPage {
            platforms,
            next_cursor,
        })
    }

    async fn deployments(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Vec<Deployment>, StoreError> {
        Ok(self
            .lock()
            .deployments
            .values()
            .filter(|d| d.issuer == issuer && d.client_id == client_id)
            .cloned()
            .collect())
    }

    async fn delete_deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .lock()
            .deployments
            .remove(&(
                issuer.to_string(),
                client_id.to_string(),
                deployment_id.to_string(),
            ))
            .is_some())
    }

    async fn delete_platform(&self, platform: &Platform) -> Result<Removed, StoreError> {
        let mut inner = self.lock();
        let key = (platform.issuer.clone(), platform.client_id.clone());
        if inner
            .platforms
            .get(&key)
            .is_none_or(|p| p.id != platform.id)
        {
            return Ok(Removed::default());
        }
        inner.platforms.remove(&key);
        let before = inner.deployments.len();
        inner
            .deployments
            .retain(|(i, c, _), _| (i, c) != (&key.0, &key.1));
        let deployments = before - inner.deployments.len();
        let routes = inner
            .routes
            .remove(&key)
            .map_or(0, |set| set.rules_of(platform.id).len());
        inner.contexts.retain(|(id, _), _| *id != platform.id);
        inner.links.retain(|(id, _, _), _| *id != platform.id);
        Ok(Removed {
            deployments,
            routes,
        })
    }

    async fn save_routes(
        &self,
        issuer: &str,
        client_id: &str,
        set: &RouteSet,
        expected_version: u64,
    ) -> Result<Result<(), RoutesChanged>, StoreError> {
        let mut inner = self.lock();
        let key = (issuer.to_string(), client_id.to_string());
        let current = inner.routes.get(&key).map_or(0, |s| s.version);
        if current != expected_version {
            return Ok(Err(RoutesChanged));
        }
        let mut stored = set.clone();
        stored.version = expected_version + 1;
        inner.routes.insert(key, stored);
        Ok(Ok(()))
    }
}

#[async_trait]
impl LaunchStore for MemoryStore {
    async fn begin_login(&self, state: &LoginState) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.states.len() >= inner.prune_at.max(PRUNE_ABOVE) {
            let now = state.created_at;
            inner.states.retain(|_, s| s.login.expires_at > now);
            inner.prune_at = inner.states.len() * 2;
        }
        if inner.states.contains_key(&state.state) {
            return Err(StoreError::Unavailable("state collision".into()));
        }
        inner.states.insert(
            state.state.clone(),
            StoredState {
                login: state.clone(),
                consumed_at: None,
            },
        );
        Ok(())
    }

    async fn finish_launch(
        &self,
        claim: &StateClaim,
        writes: &LaunchWrites,
    ) -> Result<(), ConsumeError> {
        let mut inner = self.lock();
        let stored = inner
            .states
            .get_mut(&claim.state)
            .ok_or(ConsumeError::Unknown)?;
        if let Some(reason) = refusal(stored, claim) {
            return Err(reason);
        }
        stored.consumed_at = Some(claim.now);
        write_launch(&mut inner, writes, claim.now);
        Ok(())
    }

    fn recently_consumed(&self, state: &str) -> bool {
        self.lock()
            .states
            .get(state)
            .is_some_and(|s| s.consumed_at.is_some())
    }

    async fn record_once(
        &self,
        key: &str,
        expires_at: i64,
        now: i64,
        writes: &LaunchWrites,
    ) -> Result<(), ConsumeError> {
        let mut inner = self.lock();
        if inner.once.len() >= PRUNE_ABOVE {
            inner.once.retain(|_, until| *until > now);
        }
        if inner.once.get(key).is_some_and(|until| *until > now) {
            return Err(ConsumeError::AlreadyUsed);
        }
        inner.once.insert(key.to_string(), expires_at);
        write_launch(&mut inner, writes, now);
        Ok(())
    }
}

#[async_trait]
impl ServiceRecords for MemoryStore {
    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let key = format!("use-once\n{key}");
        if inner.once.get(&key).is_some_and(|until| *until > now) {
            return Ok(false);
        }
        inner.once.insert(key, expires_at);
        Ok(true)
    }

    async fn launch_record(
        &self,
        launch_id: &str,
        now: i64,
    ) -> Result<Option<LaunchRecord>, StoreError> {
        Ok(self
            .lock()
            .launches
            .get(launch_id)
            .filter(|l| l.expires_at > now)
            .cloned())
    }

    async fn context_record(
        &self,
        platform_id: uuid::Uuid,
        context_id: &str,
    ) -> Result<Option<ContextRecord>, StoreError> {
        Ok(self
            .lock()
            .contexts
            .get(&(platform_id, context_id.to_string()))
            .cloned())
    }

    async fn link_record(
        &self,
        platform_id: uuid::Uuid,
        context_id: &str,
        resource_link_id: &str,
    ) -> Result<Option<LinkRecord>, StoreError> {
        Ok(self
            .lock()
            .links
            .get(&(
                platform_id,
                context_id.to_string(),
                resource_link_id.to_string(),
            ))
            .cloned())
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.lock().users.get(id).cloned())
    }
}

#[async_trait]
impl KeySetCache for MemoryStore {
    async fn get(&self, url: &str, now: i64) -> Option<SharedKeySet> {
        self.lock()
            .key_sets
            .get(url)
            .filter(|s| s.stale_until > now)
            .cloned()
    }
    async fn put(&self, url: &str, set: SharedKeySet) {
        self.lock().key_sets.insert(url.to_string(), set);
    }
    async fn forget(&self, url: &str) {
        self.lock().key_sets.remove(url);
    }
}

#[async_trait]
impl ServiceKeyStore for MemoryStore {
    async fn create_service_key(&self, key: &ServiceKeyRecord) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.service_keys.contains_key(&key.id) {
            return Err(StoreError::Unavailable("service key id collision".into()));
        }
        inner.service_keys.insert(key.id.clone(), key.clone());
        Ok(())
    }
    async fn service_key(&self, id: &str) -> Result<Option<ServiceKeyRecord>, StoreError> {
        Ok(self.lock().service_keys.get(id).cloned())
    }
    async fn list_service_keys(&self) -> Result<Vec<ServiceKeyRecord>, StoreError> {
        Ok(self.lock().service_keys.values().cloned().collect())
    }
    async fn delete_service_key(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().service_keys.remove(id).is_some())
    }
    async fn touch_service_key(&self, id: &str, now: i64) -> Result<(), StoreError> {
        if let Some(key) = self.lock().service_keys.get_mut(id) {
            key.last_used_at = Some(now);
        }
        Ok(())
    }
}

use crate::services::token::{CachedToken, ServiceTokenCache, TokenKey};

#[async_trait]
impl ServiceTokenCache for MemoryStore {
    async fn service_token(
        &self,
        key: &TokenKey,
        now: i64,
    ) -> Result<Option<CachedToken>, StoreError> {
        Ok(self
            .service_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key.id())
            .filter(|t| t.expires_at > now)
            .cloned())
    }

    async fn put_service_token(
        &self,
        key: &TokenKey,
        token: &CachedToken,
    ) -> Result<(), StoreError> {
        // One entry per (registration, scope set), replaced on refresh: a handful per
        // registration, nothing to prune.
        self.service_tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.id(), token.clone());
        Ok(())
    }
}
