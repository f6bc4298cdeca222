//! Login state and nonce: created at login initiation, consumed once at launch.

use crate::error::StoreError;
use crate::services::records::LaunchWrites;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What the tool remembers between login initiation and launch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// The `state` parameter (≥ 128 random bits), also the key.
    pub state: String,
    /// The `nonce` the id_token must carry (≥ 128 random bits).
    pub nonce: String,
    /// Issuer of the platform that started the login.
    pub issuer: String,
    /// client_id of the registration.
    pub client_id: String,
    /// `target_link_uri` of the login request.
    pub target_link_uri: String,
    /// Deployment hinted in the login request, if any.
    pub deployment_id: Option<String>,
    /// Creation time, epoch seconds.
    pub created_at: i64,
    /// Expiry, epoch seconds; also the DynamoDB TTL attribute.
    pub expires_at: i64,
    /// The login request's `login_hint` and `lti_message_hint`, kept so that a launch
    /// the browser could not bind (no cookie, no platform storage) can offer to start
    /// the same login again in a new window.
    #[serde(default)]
    pub restart: Option<LoginRestart>,
    /// Set when the login stored the state in the platform's storage frame
    /// (LTI postMessage Storage): where, and the hash of the one-time proof.
    #[serde(default)]
    pub storage: Option<StorageBinding>,
}

/// What a login restart needs besides what the state keeps (issuer, client_id,
/// target_link_uri, deployment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRestart {
    pub login_hint: String,
    pub lti_message_hint: Option<String>,
}

/// A login that used the platform's postMessage storage (`lti_storage_target`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageBinding {
    /// The `lti_storage_target` frame name (`_parent` for the parent window).
    pub target: String,
    /// The origin the storage messages go to and must come from: the origin of the
    /// platform's OIDC authorization endpoint.
    pub origin: String,
    /// SHA-256 (base64url) of the one-time proof the login gave the storage frame;
    /// the launch's second POST must present the proof itself.
    pub proof_hash: String,
}

/// What a launch presents to consume a state: the state and the id_token's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateClaim {
    /// The `state` form field.
    pub state: String,
    /// The id_token's `nonce`.
    pub nonce: String,
    /// The id_token's verified issuer.
    pub issuer: String,
    /// The registration's client_id the id_token was verified for.
    pub client_id: String,
    /// Now, epoch seconds.
    pub now: i64,
    /// The hash of the storage proof the launch presented instead of the state cookie
    /// (see [`StorageBinding::proof_hash`]); `None` on the cookie path.
    pub storage_proof_hash: Option<String>,
}

/// Why a state could not be consumed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConsumeError {
    /// No such state: never issued (or deleted long after expiry).
    #[error("unknown state")]
    Unknown,
    /// The state exists but its time is up.
    #[error("expired state")]
    Expired,
    /// The state was consumed before: a replay.
    #[error("state already used")]
    AlreadyUsed,
    /// The id_token's nonce is not the one issued with this state.
    #[error("nonce does not match the state")]
    NonceMismatch,
    /// The state was issued for another platform registration.
    #[error("state was issued for another platform")]
    PlatformMismatch,
    /// The launch presented a storage proof that is not this state's.
    #[error("the storage proof does not match the state")]
    StorageProofMismatch,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Decides why a stored state cannot be consumed by `claim`, or `None` if it can.
///
/// Adapters whose conditional write failed call this on the item they got back, so
/// every adapter reports the same reason for the same situation.
pub fn refusal(stored: &StoredState, claim: &StateClaim) -> Option<ConsumeError> {
    if stored.consumed_at.is_some() {
        Some(ConsumeError::AlreadyUsed)
    } else if stored.login.expires_at <= claim.now {
        Some(ConsumeError::Expired)
    } else if claim.storage_proof_hash.as_ref().is_some_and(|presented| {
        stored.login.storage.as_ref().map(|s| &s.proof_hash) != Some(presented)
    }) {
        Some(ConsumeError::StorageProofMismatch)
    } else if stored.login.nonce != claim.nonce {
        Some(ConsumeError::NonceMismatch)
    } else if stored.login.issuer != claim.issuer || stored.login.client_id != claim.client_id {
        Some(ConsumeError::PlatformMismatch)
    } else {
        None
    }
}

/// A login state as stored, with its consumption mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredState {
    /// The state as issued.
    pub login: LoginState,
    /// When it was consumed; a consumed state is kept until it expires so that a
    /// replay is reported as a replay and not as an unknown state.
    pub consumed_at: Option<i64>,
}

/// Storage of login states, nonces and the launch's user upsert.
///
/// The launch's hot path is one call, [`LaunchStore::finish_launch`]: it consumes the
/// state (checking nonce, issuer, client_id, expiry and single use in one atomic
/// condition) and writes everything the launch leaves behind — the user, the launch
/// record, the course's and the resource link's services — all or nothing.
#[async_trait]
pub trait LaunchStore: Send + Sync {
    /// Stores a new login state. Fails if the state already exists.
    async fn begin_login(&self, state: &LoginState) -> Result<(), StoreError>;

    /// The login state `state` if it exists, is unexpired at `now` and unconsumed
    /// (a strongly consistent read). Only launches that came without the state cookie
    /// read it, to choose between the platform-storage page and the new-window page.
    async fn pending_login(&self, state: &str, now: i64) -> Result<Option<LoginState>, StoreError>;

    /// Atomically consumes the state for `claim` and makes `writes`. Exactly one of
    /// any number of concurrent calls with the same state succeeds.
    async fn finish_launch(
        &self,
        claim: &StateClaim,
        writes: &LaunchWrites,
    ) -> Result<(), ConsumeError>;

    /// True when this process already saw `state` consumed: a replay refused without
    /// any store call (a local, best-effort answer; `false` when unknown).
    fn recently_consumed(&self, state: &str) -> bool {
        let _ = state;
        false
    }

    /// Records a one-time token id (nonce or jti of a direct launch) until `expires_at`.
    /// Fails with [`ConsumeError::AlreadyUsed`] if it is already recorded and unexpired,
    /// and makes `writes` in the same atomic step.
    async fn record_once(
        &self,
        key: &str,
        expires_at: i64,
        now: i64,
        writes: &LaunchWrites,
    ) -> Result<(), ConsumeError>;
}
