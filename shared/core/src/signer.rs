//! The tool's signing key: the [`Signer`] port, public JWKs and a local RSA signer.
//!
//! On AWS the key lives in KMS and never leaves it; locally (dev server, tests) the
//! same port is backed by an RSA key file.

use crate::error::{ErrorKind, Problem};
use async_trait::async_trait;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A public key as published in the tool's JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicJwk {
    pub kty: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub n: String,
    pub e: String,
}

impl PublicJwk {
    /// The JWK of an RSA public key given as SubjectPublicKeyInfo DER (what KMS
    /// `GetPublicKey` returns). The `kid` is the RFC 7638 thumbprint, so it is stable
    /// for the key and the same wherever it is computed.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, SignerError> {
        use rsa::pkcs8::DecodePublicKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPublicKey::from_public_key_der(der)
            .map_err(|e| SignerError::BadKey(format!("not an RSA public key: {e}")))?;
        Ok(Self::from_components(
            &key.n().to_bytes_be(),
            &key.e().to_bytes_be(),
        ))
    }

    /// The JWK of the RSA key with big-endian modulus `n` and exponent `e`.
    pub fn from_components(n: &[u8], e: &[u8]) -> Self {
        let n = URL_SAFE_NO_PAD.encode(n);
        let e = URL_SAFE_NO_PAD.encode(e);
        let kid = thumbprint(&n, &e);
        Self {
            kty: "RSA".into(),
            kid,
            alg: "RS256".into(),
            use_: "sig".into(),
            n,
            e,
        }
    }
}

/// RFC 7638 JWK thumbprint of an RSA key: SHA-256 over `{"e":…,"kty":"RSA","n":…}`.
pub fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The signing key failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SignerError {
    /// The message is larger than the signer accepts.
    #[error("the message to sign is {0} bytes, more than the signer accepts")]
    TooLarge(usize),
    /// The key is disabled, pending deletion or not found.
    #[error("the signing key is not usable: {0}")]
    KeyUnusable(String),
    /// The key service refused (access denied) or is throttling or down.
    #[error("the signing service is unavailable: {0}")]
    Unavailable(String),
    /// The key material is not what was expected.
    #[error("the signing key is invalid: {0}")]
    BadKey(String),
}

impl Problem for SignerError {
    fn code(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "LTI_SIGNING_INPUT_TOO_LARGE",
            Self::KeyUnusable(_) => "LTI_SIGNING_KEY_UNUSABLE",
            Self::Unavailable(_) => "LTI_SIGNER_UNAVAILABLE",
            Self::BadKey(_) => "LTI_SIGNING_KEY_INVALID",
        }
    }
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
    fn public_message(&self) -> String {
        "The tool could not sign its response right now; please try again in a moment.".into()
    }
}

/// The tool's signing key. RS256 only.
#[async_trait]
pub trait Signer: Send + Sync {
    /// The `kid` of the active key, put in the header of every JWT the tool signs.
    /// (Async because a KMS key's id is learnt from its public key, once.)
    async fn key_id(&self) -> Result<String, SignerError>;
    /// RSASSA-PKCS1-v1_5 with SHA-256 over `message`.
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
    /// The active key and every previous key still to be published.
    async fn public_keys(&self) -> Result<Vec<PublicJwk>, SignerError>;
    /// The key id whose public half a cold launch may read from the store instead of
    /// asking the key service (KMS), while this signer has not loaded it.
    fn public_key_cache_id(&self) -> Option<String> {
        None
    }
    /// Takes the active key's public half read from the store.
    fn seed_public_key(&self, jwk: PublicJwk) {
        let _ = jwk;
    }
}

/// Where the functions keep the tool's public key, so a cold launch learns its `kid`
/// without a call to the key service.
#[async_trait]
pub trait ToolKeyCache: Send + Sync {
    /// Keeps the public half of key `key_id` (failures are the adapter's to log).
    async fn put_tool_key(&self, key_id: &str, jwk: &PublicJwk);
}

/// An RSA key held in process memory: the dev server's and the tests' [`Signer`].
pub struct LocalRsaSigner {
    key: KeyPair,
    public: PublicJwk,
    previous: Vec<PublicJwk>,
}

impl std::fmt::Debug for LocalRsaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRsaSigner")
            .field("kid", &self.public.kid)
            .finish_non_exhaustive()
    }
}

impl LocalRsaSigner {
    /// A fresh 2048-bit key.
    pub fn generate() -> Result<Self, SignerError> {
        let key = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| SignerError::BadKey("RSA key generation failed".into()))?;
        Self::from_key_pair(key)
    }

    /// A key from PKCS#8 DER.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, SignerError> {
        let key = KeyPair::from_pkcs8(der)
            .map_err(|e| SignerError::BadKey(format!("not an RSA PKCS#8 key: {e}")))?;
        Self::from_key_pair(key)
    }

    fn from_key_pair(key: KeyPair) -> Result<Self, SignerError> {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        let spki: PublicKeyX509Der<'static> = key
            .public_key()
            .as_der()
            .map_err(|_| SignerError::BadKey("cannot encode the public key".into()))?;
        let public = PublicJwk::from_spki_der(spki.as_ref())?;
        Ok(Self {
            key,
            public,
            previous: Vec::new(),
        })
    }

    /// The key as PKCS#8 DER, to persist it.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, SignerError> {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        let der: Pkcs8V1Der<'static> = self
            .key
            .as_der()
            .map_err(|_| SignerError::BadKey("cannot encode the private key".into()))?;
        Ok(der.as_ref().to_vec())
    }

    /// Loads the key at `path`, or creates it (mode 0600) if the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, SignerError> {
        match std::fs::read(path) {
            Ok(der) => Self::from_pkcs8_der(&der),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let signer = Self::generate()?;
                write_private(path, &signer.to_pkcs8_der()?)
                    .map_err(|e| SignerError::BadKey(format!("cannot write {path:?}: {e}")))?;
                Ok(signer)
            }
            Err(e) => Err(SignerError::BadKey(format!("cannot read {path:?}: {e}"))),
        }
    }

    /// Also publishes `previous` keys (after a rotation) in [`Signer::public_keys`].
    pub fn with_previous(mut self, previous: Vec<PublicJwk>) -> Self {
        self.previous = previous;
        self
    }

    /// The active public key.
    pub fn public_jwk(&self) -> &PublicJwk {
        &self.public
    }

    /// Signs synchronously (the local key needs no I/O).
    pub fn sign_now(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| SignerError::Unavailable("local RSA signing failed".into()))?;
        Ok(signature)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    use std::io::Write;
    options.open(path)?.write_all(bytes)
}

#[async_trait]
impl Signer for LocalRsaSigner {
    async fn key_id(&self) -> Result<String, SignerError> {
        Ok(self.public.kid.clone())
    }
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.sign_now(message)
    }
    async fn public_keys(&self) -> Result<Vec<PublicJwk>, SignerError> {
        let mut keys = vec![self.public.clone()];
        keys.extend(self.previous.iter().cloned());
        Ok(keys)
    }
}
