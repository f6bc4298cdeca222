//! The KMS adapter of the [`Signer`] port: RSASSA-PKCS1-v1_5 SHA-256. The signing
//! input goes to KMS as is (`MessageType=RAW`) up to the 4096 bytes KMS accepts that
//! way; a larger one (an app token for a Canvas launch with many custom parameters)
//! is hashed here and sent as `MessageType=DIGEST`, which gives the same signature.
//! The private key never leaves KMS. Public keys come from `GetPublicKey` (SPKI DER)
//! once per instance; the `kid` is the key's RFC 7638 thumbprint, so it is stable for
//! the key and the same everywhere.
//!
//! Signing needs the active key alone. Previous keys (after a rotation) are published
//! best-effort: one whose public half cannot be read (a typo, a deleted or disabled
//! key, a key the role may no longer use) is logged and left out of the JWKS, and
//! asked for again at most once per [`PREVIOUS_KEY_RETRY`].

use async_trait::async_trait;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use aws_sdk_kms::Client;
use lti_core::signer::{PublicJwk, Signer, SignerError, ToolKeyCache};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OnceCell};

/// Largest message KMS signs with `MessageType=RAW`; larger ones are signed by digest.
pub const MAX_RAW_MESSAGE: usize = 4096;

/// How long a previous key whose public half could not be read is left out before it
/// is asked for again.
pub const PREVIOUS_KEY_RETRY: Duration = Duration::from_secs(300);

/// Signs with a KMS asymmetric key (`RSA_2048`, `SIGN_VERIFY`).
pub struct KmsSigner {
    client: Client,
    key_id: String,
    active: OnceCell<PublicJwk>,
    /// Where the active key's public half is kept for cold launches (the table).
    key_cache: Option<Arc<dyn ToolKeyCache>>,
    previous: Vec<PreviousKey>,
    retry_after: Duration,
}

/// A key still published after a rotation, and what is known of it.
#[derive(Debug)]
struct PreviousKey {
    key_id: String,
    /// Locked while its public key is fetched, so concurrent requests make one call.
    state: Mutex<Previous>,
}

#[derive(Debug)]
enum Previous {
    /// Not asked for yet.
    Unknown,
    /// Read once; kept for the life of the instance, like the active key.
    Ready(PublicJwk),
    /// Could not be read; not asked for again before `retry_at` (`None`: never).
    Failed { retry_at: Option<Instant> },
}

/// Sorts a KMS failure into what the user is told: a key that cannot be used, or a
/// service that is unavailable right now (throttling, access denied, network).
fn classify<E>(operation: &str, error: SdkError<E>) -> SignerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = error
        .as_service_error()
        .and_then(|e| e.code())
        .unwrap_or("");
    let detail = format!("KMS {operation}: {}", DisplayErrorContext(&error));
    match code {
        "DisabledException"
        | "KMSInvalidStateException"
        | "NotFoundException"
        | "KeyUnavailableException"
        | "InvalidKeyUsageException" => SignerError::KeyUnusable(detail),
        _ => SignerError::Unavailable(detail),
    }
}

/// Runs one KMS call, recording its latency and outcome for the request's metrics
/// (`KmsLatency`, `KmsThrottles`; see `lti_http::observe`).
async fn timed<T, E>(
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T, SdkError<E>>>,
) -> Result<T, SdkError<E>>
where
    E: ProvideErrorMetadata,
{
    let started = Instant::now();
    let result = call.await;
    let (failed, throttled) = match &result {
        Ok(_) => (false, false),
        Err(error) => (
            true,
            error.as_service_error().and_then(|e| e.code()) == Some("ThrottlingException"),
        ),
    };
    lti_core::observe::record_key_call(operation, started.elapsed(), failed, throttled);
    result
}

impl KmsSigner {
    /// A signer for `key_id` (key id, key ARN, alias name or alias ARN) that also
    /// publishes the `previous` keys. Makes no call until first used.
    pub fn new(client: Client, key_id: impl Into<String>, previous: Vec<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
            active: OnceCell::new(),
            key_cache: None,
            previous: previous
                .into_iter()
                .map(|key_id| PreviousKey {
                    key_id,
                    state: Mutex::new(Previous::Unknown),
                })
                .collect(),
            retry_after: PREVIOUS_KEY_RETRY,
        }
    }

    /// Changes how long an unreadable previous key is left out before it is asked for
    /// again (default [`PREVIOUS_KEY_RETRY`]; tests shorten it).
    /// Also keeps the active key's public half in `cache` once read from KMS, and takes
    /// it from there (read by a cold launch with its registration) instead of calling
    /// `GetPublicKey`. Only for a key id or key ARN: an alias can be moved to another
    /// key, so a signer configured with one always asks KMS.
    pub fn with_key_cache(mut self, cache: Arc<dyn ToolKeyCache>) -> Self {
        self.key_cache = Some(cache);
        self
    }

    /// True when the configured key id names a key for good (not an alias).
    fn key_is_fixed(&self) -> bool {
        !(self.key_id.starts_with("alias/") || self.key_id.contains(":alias/"))
    }

    pub fn with_previous_key_retry(mut self, retry_after: Duration) -> Self {
        self.retry_after = retry_after;
        self
    }

    async fn public_key(&self, key_id: &str) -> Result<PublicJwk, SignerError> {
        let output = timed(
            "GetPublicKey",
            self.client.get_public_key().key_id(key_id).send(),
        )
        .await
        .map_err(|e| classify("GetPublicKey", e))?;
        if let Some(usage) = output.key_usage() {
            if usage.as_str() != "SIGN_VERIFY" {
                return Err(SignerError::KeyUnusable(format!(
                    "the key {key_id} is for {}, not SIGN_VERIFY",
                    usage.as_str()
                )));
            }
        }
        let der = output.public_key().ok_or_else(|| {
            SignerError::BadKey(format!("KMS returned no public key for {key_id}"))
        })?;
        PublicJwk::from_spki_der(der.as_ref())
    }

    /// The active key, fetched once per instance (a failure is not remembered: the
    /// next request tries again, as nothing can be signed without it).
    async fn active(&self) -> Result<&PublicJwk, SignerError> {
        self.active
            .get_or_try_init(|| async {
                let jwk = self.public_key(&self.key_id).await?;
                if let Some(cache) = self.key_cache.as_ref().filter(|_| self.key_is_fixed()) {
                    cache.put_tool_key(&self.key_id, &jwk).await;
                }
                Ok(jwk)
            })
            .await
    }

    /// A previous key's public half, if it can be read; an unreadable one is logged and
    /// skipped, and asked for again only once its retry time has come.
    async fn previous_key(&self, previous: &PreviousKey) -> Option<PublicJwk> {
        let mut state = previous.state.lock().await;
        match &*state {
            Previous::Ready(jwk) => return Some(jwk.clone()),
            Previous::Failed { retry_at } if retry_at.is_none_or(|t| Instant::now() < t) => {
                return None
            }
            Previous::Failed { .. } | Previous::Unknown => {}
        }
        match self.public_key(&previous.key_id).await {
            Ok(jwk) => {
                *state = Previous::Ready(jwk.clone());
                Some(jwk)
            }
            Err(error) => {
                tracing::warn!(
                    key = %previous.key_id,
                    code = lti_core::error::Problem::code(&error),
                    error = %error,
                    retry_in_seconds = self.retry_after.as_secs(),
                    "a previous signing key (LTI_PREVIOUS_KMS_KEY_IDS) cannot be read; \
                     it is left out of the JWKS until the next try"
                );
                *state = Previous::Failed {
                    retry_at: Instant::now().checked_add(self.retry_after),
                };
                None
            }
        }
    }
}

impl std::fmt::Debug for KmsSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsSigner")
            .field("key_id", &self.key_id)
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Signer for KmsSigner {
    fn public_key_cache_id(&self) -> Option<String> {
        (self.key_cache.is_some() && self.key_is_fixed() && self.active.get().is_none())
            .then(|| self.key_id.clone())
    }

    fn seed_public_key(&self, jwk: PublicJwk) {
        if self.key_is_fixed() {
            let _ = self.active.set(jwk);
        }
    }

    async fn key_id(&self) -> Result<String, SignerError> {
        Ok(self.active().await?.kid.clone())
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let (message, message_type) = if message.len() <= MAX_RAW_MESSAGE {
            (message.to_vec(), MessageType::Raw)
        } else {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, message);
            (digest.as_ref().to_vec(), MessageType::Digest)
        };
        let call = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(message_type)
            .signing_algorithm(SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
            .send();
        let output = timed("Sign", call).await.map_err(|e| classify("Sign", e))?;
        output
            .signature
            .map(Blob::into_inner)
            .ok_or_else(|| SignerError::Unavailable("KMS returned no signature".into()))
    }

    /// The active key first (required), then every previous key that can be read.
    async fn public_keys(&self) -> Result<Vec<PublicJwk>, SignerError> {
        let mut keys = vec![self.active().await?.clone()];
        for previous in &self.previous {
            keys.extend(self.previous_key(previous).await);
        }
        Ok(keys)
    }
}
