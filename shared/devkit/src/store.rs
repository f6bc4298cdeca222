//! The dev server's embedded store: the in-memory adapters, with registrations and
//! users written to `<data-dir>/store.json` after every change so they survive a
//! restart. Login states stay in memory (they live ten minutes).

use async_trait::async_trait;
use lti_core::error::StoreError;
use lti_core::memory::{MemoryStore, Snapshot};
use lti_core::platform::{Deployment, Platform, PlatformStore, Saved};
use lti_core::state::{ConsumeError, LaunchStore, LoginState, StateClaim};
use lti_core::user::{UserRecord, UserStore};
use std::path::PathBuf;
use std::sync::Mutex;

/// A [`MemoryStore`] persisted to a JSON file.
pub struct FileStore {
    memory: MemoryStore,
    path: PathBuf,
    write_lock: Mutex<()>,
}

impl FileStore {
    /// Opens (or starts) the store at `path`.
    pub fn open(path: PathBuf) -> Result<Self, StoreError> {
        let snapshot = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Snapshot>(&bytes).map_err(|e| {
                StoreError::Corrupt(format!("{} is not a store file: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Snapshot::default(),
            Err(e) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        Ok(Self {
            memory: MemoryStore::from_snapshot(snapshot),
            path,
            write_lock: Mutex::new(()),
        })
    }

    /// The in-memory store underneath (for tests).
    pub fn memory(&self) -> &MemoryStore {
        &self.memory
    }

    fn persist(&self) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let json = serde_json::to_vec_pretty(&self.memory.snapshot())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // Write then rename, so a crash never leaves half a file.
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &self.path))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot write {}: {e}", self.path.display()))
            })
    }
}

#[async_trait]
impl PlatformStore for FileStore {
    async fn platforms_by_issuer(
        &self,
        issuer: &str,
        limit: usize,
    ) -> Result<Vec<Platform>, StoreError> {
        self.memory.platforms_by_issuer(issuer, limit).await
    }
    async fn platform(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Option<Platform>, StoreError> {
        self.memory.platform(issuer, client_id).await
    }
    async fn save_platform(&self, platform: Platform) -> Result<Saved, StoreError> {
        let saved = self.memory.save_platform(platform).await?;
        self.persist()?;
        Ok(saved)
    }
    async fn list_platforms(&self) -> Result<Vec<Platform>, StoreError> {
        self.memory.list_platforms().await
    }
    async fn deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment_id: &str,
    ) -> Result<Option<Deployment>, StoreError> {
        self.memory
            .deployment(issuer, client_id, deployment_id)
            .await
    }
    async fn save_deployment(&self, deployment: Deployment) -> Result<(), StoreError> {
        self.memory.save_deployment(deployment).await?;
        self.persist()
    }
}

#[async_trait]
impl LaunchStore for FileStore {
    async fn begin_login(&self, state: &LoginState) -> Result<(), StoreError> {
        self.memory.begin_login(state).await
    }
    async fn finish_launch(
        &self,
        claim: &StateClaim,
        user: &UserRecord,
    ) -> Result<(), ConsumeError> {
        self.memory.finish_launch(claim, user).await?;
        self.persist()?;
        Ok(())
    }
    async fn record_once(
        &self,
        key: &str,
        expires_at: i64,
        now: i64,
        user: &UserRecord,
    ) -> Result<(), ConsumeError> {
        self.memory.record_once(key, expires_at, now, user).await?;
        self.persist()?;
        Ok(())
    }
}

#[async_trait]
impl UserStore for FileStore {
    async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.memory.user(id).await
    }
}
