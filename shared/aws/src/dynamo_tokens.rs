//! The DynamoDB adapter of the [`ServiceTokenCache`] port: platform access tokens
//! shared by every function instance, so a token fetched by one is reused by the
//! others until it expires.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | access token | `TOKEN#<registration id>#<SHA-256 of the sorted scopes>` | `TOKEN` |
//!
//! Keyed per **registration** (never per issuer: Canvas serves every tenant under one
//! issuer) and scope set. `expires_at` is the table's TTL attribute; TTL deletion is
//! lazy (up to two days), so every read checks it itself.

use crate::dynamo::{get_n, get_s, key_part, n, s, unavailable, DynamoStore};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use lti_core::error::{Secret, StoreError};
use lti_core::services::token::{CachedToken, ServiceTokenCache, TokenKey};

/// The (`pk`, `sk`) of `key`'s token.
pub fn token_key(key: &TokenKey) -> (AttributeValue, AttributeValue) {
    (
        s(format!(
            "TOKEN#{}#{}",
            key_part(&key.registration().to_string()),
            key.scope_hash()
        )),
        s("TOKEN"),
    )
}

#[async_trait]
impl ServiceTokenCache for DynamoStore {
    async fn service_token(
        &self,
        key: &TokenKey,
        now: i64,
    ) -> Result<Option<CachedToken>, StoreError> {
        let Some(item) = self.get(token_key(key), false).await? else {
            return Ok(None);
        };
        let (Some(access_token), Some(expires_at)) =
            (get_s(&item, "access_token"), get_n(&item, "expires_at"))
        else {
            return Err(StoreError::Corrupt(
                "a service token item is missing attributes".into(),
            ));
        };
        Ok((expires_at > now).then(|| CachedToken {
            access_token: Secret::new(access_token),
            expires_at,
        }))
    }

    async fn put_service_token(
        &self,
        key: &TokenKey,
        token: &CachedToken,
    ) -> Result<(), StoreError> {
        let (pk, sk) = token_key(key);
        self.client()
            .put_item()
            .table_name(self.table())
            .item("pk", pk)
            .item("sk", sk)
            .item("entity", s("service_token"))
            .item("registration", s(key.registration().to_string()))
            .item("scope", s(key.scope()))
            .item("access_token", s(token.access_token.expose()))
            .item("expires_at", n(token.expires_at))
            .send()
            .await
            .map_err(|e| unavailable("PutItem", e))?;
        Ok(())
    }
}
