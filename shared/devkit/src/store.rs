//! The dev server's embedded store: the in-memory adapters, with registrations and
//! users written to `<data-dir>/store.json` after every change so they survive a
//! restart. Login states stay in memory (they live ten minutes).
//!
//! The file holds every launched user's name and email: the data directory is made
//! `0700` and every file in it `0600` (also when they already exist with a wider mode).

use async_trait::async_trait;
use lti_core::error::StoreError;
use lti_core::memory::{MemoryStore, Snapshot};
use lti_core::platform::{Deployment, Platform, PlatformStore, Saved};
use lti_core::registration::{
    PageError, PageRequest, PlatformAdmin, PlatformPage, Removed, RouteSet, RoutesChanged,
};
use lti_core::services::keys::{ServiceKeyRecord, ServiceKeyStore};
use lti_core::services::records::{
    ContextRecord, LaunchRecord, LaunchWrites, LinkRecord, ServiceRecords,
};
use lti_core::services::token::{CachedToken, ServiceTokenCache, TokenKey};
use lti_core::state::{ConsumeError, LaunchStore, LoginState, StateClaim};
use lti_core::user::{UserRecord, UserStore};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Creates `dir` (and its missing parents) readable by its owner only (`0700`), and
/// narrows an existing directory to that mode.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    narrow_mode(dir, 0o700)
}

/// The secret kept in `path` (mode 0600), or a new one made by `generate` and written
/// there: the dev server's service key survives a restart like its signing keys.
pub fn load_or_create_secret(
    path: &Path,
    generate: impl FnOnce() -> String,
) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(secret) if !secret.trim().is_empty() => {
            make_private_file(path)?;
            Ok(secret.trim().to_string())
        }
        Ok(_) => write_secret(path, generate()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_secret(path, generate()),
        Err(e) => Err(e),
    }
}

fn write_secret(path: &Path, secret: String) -> std::io::Result<String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(secret.as_bytes())?;
    make_private_file(path)?;
    Ok(secret)
}

/// Narrows an existing file to `0600`; a missing file is fine.
pub fn make_private_file(path: &Path) -> std::io::Result<()> {
    match narrow_mode(path, 0o600) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(unix)]
fn narrow_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current != mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        tracing::info!(path = %path.display(), from = format!("{current:o}"), to = format!("{mode:o}"), "narrowed permissions");
    }
    Ok(())
}

#[cfg(not(unix))]
fn narrow_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file created `0600` and renamed, so
/// a crash never leaves half a file and the data is never readable by others.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    // A temporary file left by a crash keeps its old mode: narrow it before writing.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)
}

/// A [`MemoryStore`] persisted to a JSON file.
pub struct FileStore {
    memory: MemoryStore,
    path: PathBuf,
    write_lock: Mutex<()>,
}

impl FileStore {
    /// Opens (or starts) the store at `path`, narrowing an existing file to `0600`.
    pub fn open(path: PathBuf) -> Result<Self, StoreError> {
        make_private_file(&path).map_err(|e| {
            StoreError::Unavailable(format!("cannot protect {}: {e}", path.display()))
        })?;
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
        write_private(&self.path, &json).map_err(|e| {
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
    async fn routes(&self, issuer: &str, client_id: &str) -> Result<Option<RouteSet>, StoreError> {
        self.memory.routes(issuer, client_id).await
    }
}

#[async_trait]
impl PlatformAdmin for FileStore {
    async fn platform_by_id(&self, id: uuid::Uuid) -> Result<Option<Platform>, StoreError> {
        self.memory.platform_by_id(id).await
    }
    async fn platform_page(&self, request: &PageRequest) -> Result<PlatformPage, PageError> {
        self.memory.platform_page(request).await
    }
    async fn deployments(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Vec<Deployment>, StoreError> {
        self.memory.deployments(issuer, client_id).await
    }
    async fn delete_deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment_id: &str,
    ) -> Result<bool, StoreError> {
        let deleted = self
            .memory
            .delete_deployment(issuer, client_id, deployment_id)
            .await?;
        self.persist()?;
        Ok(deleted)
    }
    async fn delete_platform(&self, platform: &Platform) -> Result<Removed, StoreError> {
        let removed = self.memory.delete_platform(platform).await?;
        self.persist()?;
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
            .memory
            .save_routes(issuer, client_id, set, expected_version)
            .await?;
        self.persist()?;
        Ok(saved)
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
        writes: &LaunchWrites,
    ) -> Result<(), ConsumeError> {
        self.memory.finish_launch(claim, writes).await?;
        self.persist()?;
        Ok(())
    }
    fn recently_consumed(&self, state: &str) -> bool {
        self.memory.recently_consumed(state)
    }
    async fn record_once(
        &self,
        key: &str,
        expires_at: i64,
        now: i64,
        writes: &LaunchWrites,
    ) -> Result<(), ConsumeError> {
        self.memory
            .record_once(key, expires_at, now, writes)
            .await?;
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

#[async_trait]
impl ServiceRecords for FileStore {
    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> Result<bool, StoreError> {
        self.memory.use_once(key, expires_at, now).await
    }
    async fn launch_record(
        &self,
        launch_id: &str,
        now: i64,
    ) -> Result<Option<LaunchRecord>, StoreError> {
        self.memory.launch_record(launch_id, now).await
    }
    async fn context_record(
        &self,
        platform_id: uuid::Uuid,
        context_id: &str,
    ) -> Result<Option<ContextRecord>, StoreError> {
        self.memory.context_record(platform_id, context_id).await
    }
    async fn link_record(
        &self,
        platform_id: uuid::Uuid,
        context_id: &str,
        resource_link_id: &str,
    ) -> Result<Option<LinkRecord>, StoreError> {
        self.memory
            .link_record(platform_id, context_id, resource_link_id)
            .await
    }
}

#[async_trait]
impl ServiceKeyStore for FileStore {
    async fn create_service_key(&self, key: &ServiceKeyRecord) -> Result<(), StoreError> {
        self.memory.create_service_key(key).await?;
        self.persist()
    }
    async fn service_key(&self, id: &str) -> Result<Option<ServiceKeyRecord>, StoreError> {
        self.memory.service_key(id).await
    }
    async fn list_service_keys(&self) -> Result<Vec<ServiceKeyRecord>, StoreError> {
        self.memory.list_service_keys().await
    }
    async fn delete_service_key(&self, id: &str) -> Result<bool, StoreError> {
        let deleted = self.memory.delete_service_key(id).await?;
        self.persist()?;
        Ok(deleted)
    }
    async fn touch_service_key(&self, id: &str, now: i64) -> Result<(), StoreError> {
        self.memory.touch_service_key(id, now).await
    }
}

#[async_trait]
impl ServiceTokenCache for FileStore {
    async fn service_token(
        &self,
        key: &TokenKey,
        now: i64,
    ) -> Result<Option<CachedToken>, StoreError> {
        self.memory.service_token(key, now).await
    }
    async fn put_service_token(
        &self,
        key: &TokenKey,
        token: &CachedToken,
    ) -> Result<(), StoreError> {
        self.memory.put_service_token(key, token).await
    }
}
