//! Users provisioned by launches: one per (issuer, user scope, sub).
//!
//! A user is vouched for by the keys that signed the launch. Two registrations of one
//! issuer whose key sets differ (self-hosted Canvas keeps `https://canvas.instructure.com`,
//! Blackboard uses one issuer everywhere) must never hand out each other's users, so
//! the id is derived from the issuer, the registration's **user scope** (its key set
//! URL when it was first registered, shared by registrations of the issuer with the
//! same key set: Canvas Cloud) and the platform's `sub`.

use crate::error::StoreError;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// A user as the launch provisions it: a mirror of what the platform shares now. An
/// optional field that is `None` is removed from the store (a platform that stops
/// sharing the email stops having it stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    /// Stable user id: see [`stable_user_id`].
    pub id: String,
    /// The platform's issuer.
    pub issuer: String,
    /// The user scope of the registration that vouched for the user.
    #[serde(default)]
    pub user_scope: String,
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

/// The stable user id for (issuer, user scope, sub): a UUID (version 8) built from
/// SHA-256 of the three, each length-prefixed so no two triples collide.
///
/// Deriving it (instead of drawing it at the first launch) lets the launch create or
/// update the user in the same atomic write that consumes the state, with no read.
/// The same person on two platforms, or under two registrations of one issuer with
/// different key sets, has two ids.
pub fn stable_user_id(issuer: &str, user_scope: &str, sub: &str) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"lti-lambda user v2\0");
    for part in [issuer, user_scope, sub] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    let digest = ctx.finish();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// Reading users back (admin API, tests, services).
#[async_trait]
pub trait UserStore: Send + Sync {
    /// The user with stable id `id`.
    async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_sub_on_two_platforms_is_two_users() {
        let a = stable_user_id("https://a.example", "https://a.example/jwks", "42");
        let b = stable_user_id("https://b.example", "https://a.example/jwks", "42");
        assert_ne!(a, b);
        assert_eq!(
            a,
            stable_user_id("https://a.example", "https://a.example/jwks", "42")
        );
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn the_same_sub_under_two_key_sets_of_one_issuer_is_two_users() {
        let a = stable_user_id("https://blackboard.com", "https://a.example/jwks", "42");
        let b = stable_user_id("https://blackboard.com", "https://b.example/jwks", "42");
        assert_ne!(a, b);
    }

    #[test]
    fn parts_cannot_be_shifted_into_each_other() {
        assert_ne!(
            stable_user_id("ab", "c", "d"),
            stable_user_id("a", "bc", "d")
        );
        assert_ne!(
            stable_user_id("a", "b", "cd"),
            stable_user_id("a", "bc", "d")
        );
    }
}
