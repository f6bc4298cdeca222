//! In-memory adapters for every storage port: tests, benchmarks and the dev server.
//!
//! They follow the same rules as the DynamoDB adapters: expiry is checked on every
//! read, and a state is consumed under one lock (the in-process equivalent of a
//! conditional write).

use crate::error::StoreError;
use crate::keys::{KeySetCache, SharedKeySet};
use crate::platform::{Deployment, Platform, PlatformStore};
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
    users: BTreeMap<(String, String), UserRecord>,
}

/// Every port in one process-local store.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
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
                inner.users.insert((u.issuer.clone(), u.sub.clone()), u);
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

fn upsert_user(users: &mut BTreeMap<(String, String), UserRecord>, user: &UserRecord) {
    let key = (user.issuer.clone(), user.sub.clone());
    match users.get_mut(&key) {
        None => {
            users.insert(key, user.clone());
        }
        Some(existing) => {
            existing.client_id = user.client_id.clone();
            existing.last_seen_at = user.last_seen_at;
            let fields = [
                (&mut existing.name, &user.name),
                (&mut existing.given_name, &user.given_name),
                (&mut existing.family_name, &user.family_name),
                (&mut existing.email, &user.email),
                (&mut existing.picture, &user.picture),
            ];
            for (old, new) in fields {
                if new.is_some() {
                    old.clone_from(new);
                }
            }
        }
    }
}

#[async_trait]
impl PlatformStore for MemoryStore {
    async fn platforms_by_issuer(&self, issuer: &str) -> Result<Vec<Platform>, StoreError> {
        Ok(self
            .lock()
            .platforms
            .values()
            .filter(|p| p.issuer == issuer)
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

    async fn save_platform(&self, mut platform: Platform) -> Result<Platform, StoreError> {
        let mut inner = self.lock();
        let key = (platform.issuer.clone(), platform.client_id.clone());
        if let Some(existing) = inner.platforms.get(&key) {
            platform.id = existing.id;
            platform.created_at = existing.created_at;
        }
        inner.platforms.insert(key, platform.clone());
        Ok(platform)
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
        user: &UserRecord,
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
        upsert_user(&mut inner.users, user);
        Ok(())
    }

    async fn record_once(
        &self,
        key: &str,
        expires_at: i64,
        now: i64,
        user: &UserRecord,
    ) -> Result<(), ConsumeError> {
        let mut inner = self.lock();
        if inner.once.get(key).is_some_and(|until| *until > now) {
            return Err(ConsumeError::AlreadyUsed);
        }
        inner.once.insert(key.to_string(), expires_at);
        upsert_user(&mut inner.users, user);
        Ok(())
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn user(&self, issuer: &str, sub: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .lock()
            .users
            .get(&(issuer.to_string(), sub.to_string()))
            .cloned())
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
