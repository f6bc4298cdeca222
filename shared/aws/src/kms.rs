//! The KMS adapter of the [`Signer`] port: RSASSA-PKCS1-v1_5 SHA-256. The signing
//! input goes to KMS as is (`MessageType=RAW`) up to the 4096 bytes KMS accepts that
//! way; a larger one (an app token for a Canvas launch with many custom parameters)
//! is hashed here and sent as `MessageType=DIGEST`, which gives the same signature.
//! The private key never leaves KMS. Public keys come from `GetPublicKey` (SPKI DER) once per instance; the `kid` is
//! the key's RFC 7638 thumbprint, so it is stable for the key and the same everywhere.

use async_trait::async_trait;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use aws_sdk_kms::Client;
use lti_core::signer::{PublicJwk, Signer, SignerError};
use tokio::sync::OnceCell;

/// Largest message KMS signs with `MessageType=RAW`; larger ones are signed by digest.
pub const MAX_RAW_MESSAGE: usize = 4096;

/// Signs with a KMS asymmetric key (`RSA_2048`, `SIGN_VERIFY`).
#[derive(Debug)]
pub struct KmsSigner {
    client: Client,
    key_id: String,
    previous: Vec<String>,
    keys: OnceCell<Vec<PublicJwk>>,
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

impl KmsSigner {
    /// A signer for `key_id` (key id, key ARN, alias name or alias ARN) that also
    /// publishes the `previous` keys. Makes no call until first used.
    pub fn new(client: Client, key_id: impl Into<String>, previous: Vec<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
            previous,
            keys: OnceCell::new(),
        }
    }

    async fn public_key(&self, key_id: &str) -> Result<PublicJwk, SignerError> {
        let output = self
            .client
            .get_public_key()
            .key_id(key_id)
            .send()
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

    /// The active key first, then the previous ones; fetched once per instance.
    async fn keys(&self) -> Result<&Vec<PublicJwk>, SignerError> {
        self.keys
            .get_or_try_init(|| async {
                let mut keys = vec![self.public_key(&self.key_id).await?];
                for previous in &self.previous {
                    keys.push(self.public_key(previous).await?);
                }
                Ok(keys)
            })
            .await
    }
}

#[async_trait]
impl Signer for KmsSigner {
    async fn key_id(&self) -> Result<String, SignerError> {
        Ok(self.keys().await?[0].kid.clone())
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let (message, message_type) = if message.len() <= MAX_RAW_MESSAGE {
            (message.to_vec(), MessageType::Raw)
        } else {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, message);
            (digest.as_ref().to_vec(), MessageType::Digest)
        };
        let output = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(message_type)
            .signing_algorithm(SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
            .send()
            .await
            .map_err(|e| classify("Sign", e))?;
        output
            .signature
            .map(Blob::into_inner)
            .ok_or_else(|| SignerError::Unavailable("KMS returned no signature".into()))
    }

    async fn public_keys(&self) -> Result<Vec<PublicJwk>, SignerError> {
        Ok(self.keys().await?.clone())
    }
}
