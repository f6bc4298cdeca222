//! Service keys: what the app's backend presents on every services call
//! (`x-api-key`). Created through the admin API and shown once; stored only as a
//! SHA-256 hash (a key carries 256 random bits, so a fast hash is enough); named, with
//! `createdAt` and `lastUsedAt`; revoked by deleting them.
//!
//! A key reads `lsk_<id>_<secret>`: the id finds the record with one read, the secret
//! is compared by hash in constant time. Any other string of at least 32 characters
//! (the dev server's `LTI_SERVICE_KEY`) is found by an id derived from its hash.

use crate::clock::Clock;
use crate::error::{Secret, StoreError};
use crate::random::Random;
use crate::services::ServiceError;
use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A stored service key: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceKeyRecord {
    /// Public id (appears in the key and in the admin API).
    pub id: String,
    /// What the key is for, e.g. "grade sync".
    pub name: String,
    /// base64url SHA-256 of the secret part; never shown.
    #[serde(skip_serializing)]
    #[serde(default)]
    pub hash: String,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds of the latest use (updated at most every [`TOUCH_EVERY`] seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<i64>,
}

/// Storage of service keys.
#[async_trait]
pub trait ServiceKeyStore: Send + Sync {
    /// Stores a new key (fails if the id exists).
    async fn create_service_key(&self, key: &ServiceKeyRecord) -> Result<(), StoreError>;
    /// The key with this id.
    async fn service_key(&self, id: &str) -> Result<Option<ServiceKeyRecord>, StoreError>;
    /// Every key, for the admin API.
    async fn list_service_keys(&self) -> Result<Vec<ServiceKeyRecord>, StoreError>;
    /// Deletes the key; false if there was none.
    async fn delete_service_key(&self, id: &str) -> Result<bool, StoreError>;
    /// Sets `last_used_at`.
    async fn touch_service_key(&self, id: &str, now: i64) -> Result<(), StoreError>;
}

/// How long a verified key is trusted by a warm instance without reading it again:
/// a revoked key stops working everywhere within this time.
pub const CACHE_SECONDS: i64 = 60;
/// `lastUsedAt` is written at most this often per key and instance.
pub const TOUCH_EVERY: i64 = 3600;
/// Shortest key accepted (the dev server's own keys).
pub const MIN_KEY_LEN: usize = 32;
/// Longest name.
pub const MAX_NAME_LEN: usize = 100;

fn hash(secret: &str) -> String {
    URL_SAFE_NO_PAD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes()).as_ref())
}

/// The (id, secret) of a presented key.
fn split(presented: &str) -> Option<(String, &str)> {
    if presented.len() < MIN_KEY_LEN || presented.len() > 256 {
        return None;
    }
    if let Some(rest) = presented.strip_prefix("lsk_") {
        if let Some((id, secret)) = rest.split_once('_') {
            if !id.is_empty() && id.len() <= 32 && secret.len() >= 32 {
                return Some((id.to_string(), secret));
            }
        }
    }
    Some((derived_id(presented), presented))
}

/// The id of a key that is not in the `lsk_` form: from its hash.
fn derived_id(key: &str) -> String {
    format!("h{}", &hash(key)[..16])
}

/// Creates, verifies, lists and revokes service keys.
pub struct ServiceKeys {
    store: Arc<dyn ServiceKeyStore>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    /// Verified keys: record and until when it is trusted.
    cache: Mutex<HashMap<String, (ServiceKeyRecord, i64)>>,
}

impl ServiceKeys {
    pub fn new(
        store: Arc<dyn ServiceKeyStore>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
    ) -> Self {
        Self {
            store,
            clock,
            random,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Creates a key named `name`; returns the key (shown once) and its record.
    pub async fn create(&self, name: &str) -> Result<(Secret, ServiceKeyRecord), ServiceError> {
        let name = name.trim();
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(ServiceError::Invalid(vec![crate::platform::FieldError {
                field: "name".into(),
                message: format!("must be 1 to {MAX_NAME_LEN} characters"),
            }]));
        }
        let id = self.random.token(9).replace(['-', '_'], "x");
        let secret = self.random.token(32);
        let record = ServiceKeyRecord {
            id: id.clone(),
            name: name.to_string(),
            hash: hash(&secret),
            created_at: self.clock.now(),
            last_used_at: None,
        };
        self.store.create_service_key(&record).await?;
        Ok((Secret::new(format!("lsk_{id}_{secret}")), record))
    }

    /// Stores `key` (a chosen string of at least 32 characters, e.g. the dev server's
    /// `LTI_SERVICE_KEY`) under `name`, unless it exists.
    pub async fn install(
        &self,
        key: &Secret,
        name: &str,
    ) -> Result<ServiceKeyRecord, ServiceError> {
        let (id, secret) = split(key.expose()).ok_or_else(|| {
            ServiceError::Invalid(vec![crate::platform::FieldError {
                field: "key".into(),
                message: format!("must be {MIN_KEY_LEN} to 256 characters"),
            }])
        })?;
        if let Some(existing) = self.store.service_key(&id).await? {
            return Ok(existing);
        }
        let record = ServiceKeyRecord {
            id,
            name: name.to_string(),
            hash: hash(secret),
            created_at: self.clock.now(),
            last_used_at: None,
        };
        self.store.create_service_key(&record).await?;
        Ok(record)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ServiceKeyRecord, i64)>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The record of the key `presented` (the `x-api-key` header), or
    /// [`ServiceError::KeyInvalid`].
    pub async fn verify(&self, presented: Option<&str>) -> Result<ServiceKeyRecord, ServiceError> {
        let presented = presented.map(str::trim).ok_or(ServiceError::KeyInvalid)?;
        let (id, secret) = split(presented).ok_or(ServiceError::KeyInvalid)?;
        let now = self.clock.now();
        let cached = self
            .lock()
            .get(&id)
            .filter(|(_, until)| *until > now)
            .map(|(record, _)| record.clone());
        let record = match cached {
            Some(record) => record,
            None => {
                let record = self
                    .store
                    .service_key(&id)
                    .await?
                    .ok_or(ServiceError::KeyInvalid)?;
                let mut cache = self.lock();
                cache.retain(|_, (_, until)| *until > now);
                cache.insert(id.clone(), (record.clone(), now + CACHE_SECONDS));
                record
            }
        };
        if !Secret::new(record.hash.clone()).matches(&hash(secret)) {
            return Err(ServiceError::KeyInvalid);
        }
        if record.last_used_at.is_none_or(|at| at <= now - TOUCH_EVERY) {
            // Best effort: a failed write never refuses the call.
            match self.store.touch_service_key(&record.id, now).await {
                Ok(()) => {
                    if let Some((cached, _)) = self.lock().get_mut(&id) {
                        cached.last_used_at = Some(now);
                    }
                }
                Err(e) => tracing::warn!(error = %e, key = %record.id, "lastUsedAt not written"),
            }
        }
        Ok(record)
    }

    /// Every key (without hashes).
    pub async fn list(&self) -> Result<Vec<ServiceKeyRecord>, ServiceError> {
        Ok(self.store.list_service_keys().await?)
    }

    /// Revokes the key `id`: refused at once on this instance, within
    /// [`CACHE_SECONDS`] on the others. False if there was no such key.
    pub async fn revoke(&self, id: &str) -> Result<bool, ServiceError> {
        let deleted = self.store.delete_service_key(id).await?;
        self.lock().remove(id);
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::memory::MemoryStore;
    use crate::random::SystemRandom;

    fn keys() -> (ServiceKeys, Arc<FixedClock>) {
        let clock = Arc::new(FixedClock::at(1_000_000));
        (
            ServiceKeys::new(
                Arc::new(MemoryStore::new()),
                clock.clone(),
                Arc::new(SystemRandom),
            ),
            clock,
        )
    }

    #[tokio::test]
    async fn a_created_key_verifies_and_a_tampered_one_does_not() {
        let (keys, _) = keys();
        let (key, record) = keys.create("grade sync").await.expect("create");
        assert!(key.expose().starts_with(&format!("lsk_{}_", record.id)));
        assert_eq!(
            keys.verify(Some(key.expose())).await.expect("ok").id,
            record.id
        );
        let mut wrong = key.expose().to_string();
        // Another last character (the key's own may be 'A': 1 run in 64).
        let last = wrong.pop();
        wrong.push(if last == Some('A') { 'B' } else { 'A' });
        assert!(matches!(
            keys.verify(Some(&wrong)).await,
            Err(ServiceError::KeyInvalid)
        ));
        assert!(matches!(
            keys.verify(None).await,
            Err(ServiceError::KeyInvalid)
        ));
        assert!(matches!(
            keys.verify(Some("short")).await,
            Err(ServiceError::KeyInvalid)
        ));
    }

    #[tokio::test]
    async fn the_store_holds_a_hash_never_the_key() {
        let store = Arc::new(MemoryStore::new());
        let keys = ServiceKeys::new(
            store.clone(),
            Arc::new(FixedClock::at(0)),
            Arc::new(SystemRandom),
        );
        let (key, record) = keys.create("k").await.expect("create");
        let stored = store
            .service_key(&record.id)
            .await
            .expect("read")
            .expect("exists");
        // The whole secret (it may itself hold a `_`), never a short tail of it that
        // could occur in the hash by chance.
        let secret = key
            .expose()
            .strip_prefix(&format!("lsk_{}_", record.id))
            .expect("lsk_<id>_<secret>");
        assert!(secret.len() >= 32, "{secret}");
        assert!(!stored.hash.contains(secret));
        assert!(!format!("{stored:?}").contains(secret));
        assert_eq!(stored.hash.len(), 43);
        let listed = serde_json::to_string(&keys.list().await.expect("list")).expect("json");
        assert!(
            !listed.contains(&stored.hash),
            "the admin API never shows the hash"
        );
    }

    #[tokio::test]
    async fn a_revoked_key_is_refused_at_once_here() {
        let (keys, _) = keys();
        let (key, record) = keys.create("k").await.expect("create");
        keys.verify(Some(key.expose())).await.expect("ok");
        assert!(keys.revoke(&record.id).await.expect("revoke"));
        assert!(matches!(
            keys.verify(Some(key.expose())).await,
            Err(ServiceError::KeyInvalid)
        ));
        assert!(!keys.revoke(&record.id).await.expect("again"));
    }

    #[tokio::test]
    async fn last_used_is_written_at_most_hourly() {
        let (keys, clock) = keys();
        let (key, record) = keys.create("k").await.expect("create");
        keys.verify(Some(key.expose())).await.expect("ok");
        let first = keys.list().await.expect("list")[0].last_used_at;
        assert_eq!(first, Some(clock.now()));
        clock.advance(10);
        keys.verify(Some(key.expose())).await.expect("ok");
        assert_eq!(keys.list().await.expect("list")[0].last_used_at, first);
        clock.advance(TOUCH_EVERY);
        keys.verify(Some(key.expose())).await.expect("ok");
        assert_eq!(
            keys.list().await.expect("list")[0].last_used_at,
            Some(clock.now())
        );
        let _ = record;
    }

    #[tokio::test]
    async fn a_chosen_dev_key_is_installed_once_and_verifies() {
        let (keys, _) = keys();
        let chosen = Secret::new("dev-service-key-0123456789abcdefghijkl");
        let first = keys.install(&chosen, "dev").await.expect("install");
        let again = keys.install(&chosen, "dev").await.expect("install");
        assert_eq!(first.id, again.id);
        keys.verify(Some(chosen.expose())).await.expect("ok");
    }
}
