//! The error vocabulary shared by every concern.
//!
//! Each concern has its own error enum with one variant per failed check. They all
//! implement [`Problem`], which gives a stable error code, an [`ErrorKind`] and one
//! human sentence. Only the http crate turns a `Problem` into a response.

use std::fmt;

/// What kind of failure an error is; the http crate maps each kind to one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or misses something required (400).
    BadRequest,
    /// A security check failed: signature, audience, expiry, state, nonce (401).
    SecurityCheck,
    /// The caller is known but not allowed to do this (403).
    NotAllowed,
    /// The thing asked for does not exist (404).
    NotFound,
    /// The address exists, but not for this method (405).
    MethodNotAllowed,
    /// The request was already used once (409).
    Replay,
    /// The request body is larger than accepted (413).
    TooLarge,
    /// The platform answered badly or not at all (502).
    PlatformFailed,
    /// The platform did not answer in time (504).
    PlatformTimeout,
    /// A dependency is down or the tool is not configured (503).
    Unavailable,
}

/// An error that can be shown to a user: a stable code, a kind and one sentence.
pub trait Problem: std::error::Error {
    /// Stable machine-readable code, e.g. `LTI_NONCE_REPLAYED`.
    fn code(&self) -> &'static str;
    /// The kind, which decides the status code.
    fn kind(&self) -> ErrorKind;
    /// One sentence for the person in front of the browser. Never contains secrets.
    fn public_message(&self) -> String {
        self.to_string()
    }
    /// Seconds after which a retry may succeed (the `Retry-After` header), if known.
    fn retry_after(&self) -> Option<u64> {
        None
    }
    /// The methods the address takes (the `Allow` header of a 405), for
    /// [`ErrorKind::MethodNotAllowed`].
    fn allowed_methods(&self) -> Option<&'static str> {
        None
    }
}

/// `text` as a sentence: first letter capitalised, full stop at the end.
pub fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => {
            let rest = chars.as_str().trim_end_matches('.');
            format!("{}{rest}.", first.to_uppercase())
        }
        None => String::new(),
    }
}

/// A storage adapter failed. The message is for logs; users see a generic sentence.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or refused the call.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The store returned data this code cannot read.
    #[error("the store returned unreadable data: {0}")]
    Corrupt(String),
}

impl Problem for StoreError {
    fn code(&self) -> &'static str {
        "LTI_STORE_UNAVAILABLE"
    }
    fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
    fn public_message(&self) -> String {
        "The tool's storage is unavailable right now; please try again in a moment.".into()
    }
}

/// A secret string (admin token, private key material) whose `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The secret itself; call only where it is really needed.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Compares with `candidate` in time independent of where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(self.0.as_bytes(), candidate.as_bytes())
            .is_ok()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}
