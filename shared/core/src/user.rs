//! Users provisioned by launches: one per (issuer, sub).

use crate::error::StoreError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A user as the launch provisions it. Optional fields that are `None` keep what the
/// store already has (a later privacy-restricted launch does not erase a known name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    /// Stable user id, derived from (issuer, sub): see [`stable_user_id`].
    pub id: String,
    /// The platform's issuer.
    pub issuer: String,
    /// The platform's user id (`sub`).
    pub sub: String,
    /// The registration's client_id at the last launch.
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// First launch, epoch seconds (set once).
    pub created_at: i64,
    /// Latest launch, epoch seconds.
    pub last_seen_at: i64,
}

/// The stable user id for (issuer, sub): a UUID (version 8) built from SHA-256 of both.
///
/// Deriving it (instead of drawing it at the first launch) lets the launch create or
/// update the user in the same atomic write that consumes the state, with no read.
/// The same person on two platforms has two issuers and so two ids.
pub fn stable_user_id(issuer: &str, sub: &str) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"lti-lambda user v1\0");
    ctx.update(issuer.as_bytes());
    ctx.update(b"\0");
    ctx.update(sub.as_bytes());
    let digest = ctx.finish();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Reading users back (admin API, tests, later services).
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The user for (issuer, sub).
    async fn user(&self, issuer: &str, sub: &str) -> Result<Option<UserRecord>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_sub_on_two_platforms_is_two_users() {
        let a = stable_user_id("https://a.example", "42");
        let b = stable_user_id("https://b.example", "42");
        assert_ne!(a, b);
        assert_eq!(a, stable_user_id("https://a.example", "42"));
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn issuer_and_sub_cannot_be_shifted_into_each_other() {
        assert_ne!(stable_user_id("ab", "c"), stable_user_id("a", "bc"));
    }
}
