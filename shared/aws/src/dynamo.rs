//! Every storage port of the core on one DynamoDB table (`pk`/`sk` strings, TTL on
//! `expires_at`, one GSI `gsi1` for listing platforms).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | platform registration | `PLATFORM#<issuer>` | `CLIENT#<client_id>` |
//! | deployment | `PLATFORM#<issuer>` | `CLIENT#<client_id>#DEPLOYMENT#<id>` |
//! | login state + nonce | `STATE#<state>` | `STATE` |
//! | one-time token id (direct launch) | `ONCE#<id>` | `ONCE` |
//! | user | `USER#<issuer>` | `SUB#<sub>` |
//! | platform JWKS shared by instances | `JWKS#<url>` | `JWKS#v2` |
//!
//! Key parts are escaped (`%` → `%25`, `#` → `%23`) so no two (issuer, client_id)
//! pairs can share a key. TTL deletion is lazy, so every condition on a state or a
//! one-time id checks `expires_at` itself; single use is a conditional write inside a
//! transaction, never a read followed by a write.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use aws_sdk_dynamodb::Client;
use lti_core::error::StoreError;
use lti_core::keys::{KeySetCache, SharedKeySet};
use lti_core::platform::{Deployment, Platform, PlatformStore};
use lti_core::state::{refusal, ConsumeError, LaunchStore, LoginState, StateClaim, StoredState};
use lti_core::user::{UserRecord, UserStore};
use std::collections::HashMap;

type Item = HashMap<String, AttributeValue>;

/// Name of the GSI that lists platform registrations.
pub const PLATFORM_INDEX: &str = "gsi1";
const PLATFORM_PARTITION: &str = "PLATFORM";

/// The DynamoDB adapter of every storage port.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

/// Escapes a key part so `#` only ever separates parts.
pub fn key_part(value: &str) -> String {
    value.replace('%', "%25").replace('#', "%23")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn unavailable<E: std::error::Error + 'static>(operation: &str, error: E) -> StoreError {
    StoreError::Unavailable(format!(
        "DynamoDB {operation}: {}",
        DisplayErrorContext(error)
    ))
}

fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("a {what} item is missing attributes"))
}

fn platform_key(issuer: &str, client_id: &str) -> (AttributeValue, AttributeValue) {
    (
        s(format!("PLATFORM#{}", key_part(issuer))),
        s(format!("CLIENT#{}", key_part(client_id))),
    )
}

fn deployment_key(
    issuer: &str,
    client_id: &str,
    deployment_id: &str,
) -> (AttributeValue, AttributeValue) {
    (
        s(format!("PLATFORM#{}", key_part(issuer))),
        s(format!(
            "CLIENT#{}#DEPLOYMENT#{}",
            key_part(client_id),
            key_part(deployment_id)
        )),
    )
}

fn user_key(issuer: &str, sub: &str) -> (AttributeValue, AttributeValue) {
    (
        s(format!("USER#{}", key_part(issuer))),
        s(format!("SUB#{}", key_part(sub))),
    )
}

fn platform_from(item: &Item) -> Result<Platform, StoreError> {
    let doc = get_s(item, "doc").ok_or_else(|| corrupt("platform"))?;
    let mut platform: Platform =
        serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // id and created_at are set once, by the first write, outside the document.
    if let Some(id) = get_s(item, "id").and_then(|id| id.parse().ok()) {
        platform.id = id;
    }
    if let Some(created_at) = get_n(item, "created_at") {
        platform.created_at = created_at;
    }
    Ok(platform)
}

fn state_from(item: &Item) -> Result<StoredState, StoreError> {
    let pk = get_s(item, "pk").ok_or_else(|| corrupt("state"))?;
    Ok(StoredState {
        login: LoginState {
            state: pk.trim_start_matches("STATE#").to_string(),
            nonce: get_s(item, "nonce").ok_or_else(|| corrupt("state"))?,
            issuer: get_s(item, "issuer").ok_or_else(|| corrupt("state"))?,
            client_id: get_s(item, "client_id").ok_or_else(|| corrupt("state"))?,
            target_link_uri: get_s(item, "target_link_uri").unwrap_or_default(),
            deployment_id: get_s(item, "deployment_id"),
            created_at: get_n(item, "created_at").unwrap_or_default(),
            expires_at: get_n(item, "expires_at").ok_or_else(|| corrupt("state"))?,
        },
        consumed_at: get_n(item, "consumed_at"),
    })
}

fn user_from(item: &Item) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: get_s(item, "id").ok_or_else(|| corrupt("user"))?,
        issuer: get_s(item, "issuer").ok_or_else(|| corrupt("user"))?,
        sub: get_s(item, "sub").ok_or_else(|| corrupt("user"))?,
        client_id: get_s(item, "client_id").unwrap_or_default(),
        name: get_s(item, "name"),
        given_name: get_s(item, "given_name"),
        family_name: get_s(item, "family_name"),
        email: get_s(item, "email"),
        picture: get_s(item, "picture"),
        created_at: get_n(item, "created_at").unwrap_or_default(),
        last_seen_at: get_n(item, "last_seen_at").unwrap_or_default(),
    })
}

/// An `Update` that creates or updates `user`: `created_at` is set once; optional
/// fields the launch did not carry keep their stored value.
fn user_upsert(table: &str, user: &UserRecord) -> Result<Update, StoreError> {
    let (pk, sk) = user_key(&user.issuer, &user.sub);
    let mut sets = Vec::new();
    let mut names = HashMap::new();
    let mut values = HashMap::new();
    let mut set = |attribute: &str, value: AttributeValue| {
        let i = sets.len();
        names.insert(format!("#a{i}"), attribute.to_string());
        values.insert(format!(":v{i}"), value);
        sets.push(format!("#a{i} = :v{i}"));
    };
    set("entity", s("user"));
    set("id", s(&user.id));
    set("issuer", s(&user.issuer));
    set("sub", s(&user.sub));
    set("client_id", s(&user.client_id));
    set("last_seen_at", n(user.last_seen_at));
    for (attribute, value) in [
        ("name", &user.name),
        ("given_name", &user.given_name),
        ("family_name", &user.family_name),
        ("email", &user.email),
        ("picture", &user.picture),
    ] {
        if let Some(value) = value {
            set(attribute, s(value));
        }
    }
    names.insert("#created".into(), "created_at".into());
    values.insert(":created".into(), n(user.created_at));
    sets.push("#created = if_not_exists(#created, :created)".into());
    Update::builder()
        .table_name(table)
        .key("pk", pk)
        .key("sk", sk)
        .update_expression(format!("SET {}", sets.join(", ")))
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// What a cancelled transaction says about its first item.
enum Cancelled {
    /// The condition failed; the item as it was, if it existed.
    Condition(Option<Item>),
    /// Another transaction touched the item at the same time: try again.
    Conflict,
    Other(StoreError),
}

fn cancelled(error: SdkError<TransactWriteItemsError>) -> Cancelled {
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) = error.as_service_error()
    {
        let reasons = e.cancellation_reasons();
        if reasons
            .iter()
            .any(|r| r.code() == Some("TransactionConflict"))
        {
            return Cancelled::Conflict;
        }
        if let Some(first) = reasons.first() {
            if first.code() == Some("ConditionalCheckFailed") {
                return Cancelled::Condition(first.item().cloned());
            }
        }
    }
    if let Some(TransactWriteItemsError::TransactionInProgressException(_)) =
        error.as_service_error()
    {
        return Cancelled::Conflict;
    }
    Cancelled::Other(unavailable("TransactWriteItems", error))
}

/// Attempts of a transaction that conflicts with a concurrent one.
const TRANSACTION_ATTEMPTS: usize = 4;

impl DynamoStore {
    /// The store on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The item at (`pk`, `sk`), if any.
    async fn get(
        &self,
        (pk, sk): (AttributeValue, AttributeValue),
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", e))?;
        Ok(output.item)
    }

    async fn query_all(
        &self,
        build: impl Fn() -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = build()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("Query", e))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    /// Runs a transaction whose first item carries the condition, retrying when a
    /// concurrent transaction conflicts. A failed condition returns the item as it was.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Option<Item>>, StoreError> {
        for attempt in 0..TRANSACTION_ATTEMPTS {
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
            {
                Ok(_) => return Ok(Ok(())),
                Err(e) => match cancelled(e) {
                    Cancelled::Condition(item) => return Ok(Err(item)),
                    Cancelled::Conflict => {
                        let backoff = 10u64 * (1 << attempt);
                        tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
                    }
                    Cancelled::Other(e) => return Err(e),
                },
            }
        }
        Err(StoreError::Unavailable(
            "DynamoDB TransactWriteItems kept conflicting with concurrent writes".into(),
        ))
    }
}

#[async_trait]
impl PlatformStore for DynamoStore {
    async fn platforms_by_issuer(&self, issuer: &str) -> Result<Vec<Platform>, StoreError> {
        let pk = format!("PLATFORM#{}", key_part(issuer));
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("pk = :pk AND begins_with(sk, :client)")
                    .filter_expression("entity = :platform")
                    .expression_attribute_values(":pk", s(&pk))
                    .expression_attribute_values(":client", s("CLIENT#"))
                    .expression_attribute_values(":platform", s("platform"))
            })
            .await?;
        items.iter().map(platform_from).collect()
    }

    async fn platform(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Option<Platform>, StoreError> {
        let (pk, sk) = platform_key(issuer, client_id);
        let item = self.get((pk, sk), false).await?;
        item.as_ref().map(platform_from).transpose()
    }

    async fn save_platform(&self, platform: Platform) -> Result<Platform, StoreError> {
        let (pk, sk) = platform_key(&platform.issuer, &platform.client_id);
        let doc =
            serde_json::to_string(&platform).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .update_expression(
                "SET entity = :platform, issuer = :issuer, client_id = :client, \
                 #id = if_not_exists(#id, :id), created_at = if_not_exists(created_at, :created), \
                 updated_at = :updated, doc = :doc, gsi1pk = :gpk, gsi1sk = :gsk",
            )
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":platform", s("platform"))
            .expression_attribute_values(":issuer", s(&platform.issuer))
            .expression_attribute_values(":client", s(&platform.client_id))
            .expression_attribute_values(":id", s(platform.id.to_string()))
            .expression_attribute_values(":created", n(platform.created_at))
            .expression_attribute_values(":updated", n(platform.updated_at))
            .expression_attribute_values(":doc", s(doc))
            .expression_attribute_values(":gpk", s(PLATFORM_PARTITION))
            .expression_attribute_values(
                ":gsk",
                s(format!(
                    "{}#{}",
                    key_part(&platform.issuer),
                    key_part(&platform.client_id)
                )),
            )
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| unavailable("UpdateItem", e))?;
        platform_from(&output.attributes.unwrap_or_default())
    }

    async fn list_platforms(&self) -> Result<Vec<Platform>, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(PLATFORM_INDEX)
                    .key_condition_expression("gsi1pk = :p")
                    .expression_attribute_values(":p", s(PLATFORM_PARTITION))
            })
            .await?;
        items.iter().map(platform_from).collect()
    }

    async fn deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment_id: &str,
    ) -> Result<Option<Deployment>, StoreError> {
        let (pk, sk) = deployment_key(issuer, client_id, deployment_id);
        let item = self.get((pk, sk), false).await?;
        Ok(item.map(|item| Deployment {
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
            deployment_id: deployment_id.to_string(),
            created_at: get_n(&item, "created_at").unwrap_or_default(),
        }))
    }

    async fn save_deployment(&self, deployment: Deployment) -> Result<(), StoreError> {
        let (pk, sk) = deployment_key(
            &deployment.issuer,
            &deployment.client_id,
            &deployment.deployment_id,
        );
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk)
            .item("sk", sk)
            .item("entity", s("deployment"))
            .item("deployment_id", s(&deployment.deployment_id))
            .item("created_at", n(deployment.created_at))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable("PutItem", e)),
        }
    }
}

#[async_trait]
impl LaunchStore for DynamoStore {
    async fn begin_login(&self, state: &LoginState) -> Result<(), StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("STATE#{}", key_part(&state.state))))
            .item("sk", s("STATE"))
            .item("entity", s("state"))
            .item("nonce", s(&state.nonce))
            .item("issuer", s(&state.issuer))
            .item("client_id", s(&state.client_id))
            .item("target_link_uri", s(&state.target_link_uri))
            .item("created_at", n(state.created_at))
            .item("expires_at", n(state.expires_at))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(d) = &state.deployment_id {
            put = put.item("deployment_id", s(d));
        }
        put.send().await.map_err(|e| unavailable("PutItem", e))?;
        Ok(())
    }

    async fn finish_launch(
        &self,
        claim: &StateClaim,
        user: &UserRecord,
    ) -> Result<(), ConsumeError> {
        let consume = Update::builder()
            .table_name(&self.table)
            .key("pk", s(format!("STATE#{}", key_part(&claim.state))))
            .key("sk", s("STATE"))
            .update_expression("SET consumed_at = :now")
            .condition_expression(
                "attribute_exists(pk) AND attribute_not_exists(consumed_at) AND nonce = :nonce \
                 AND issuer = :issuer AND client_id = :client AND expires_at > :now",
            )
            .expression_attribute_values(":now", n(claim.now))
            .expression_attribute_values(":nonce", s(&claim.nonce))
            .expression_attribute_values(":issuer", s(&claim.issuer))
            .expression_attribute_values(":client", s(&claim.client_id))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().update(consume).build(),
            TransactWriteItem::builder()
                .update(user_upsert(&self.table, user)?)
                .build(),
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(None) => Err(ConsumeError::Unknown),
            Err(Some(old)) => {
                let stored = state_from(&old)?;
                // The condition failed, so one of the reasons holds; `Unknown` only if
                // the item changed between the write and now.
                Err(refusal(&stored, claim).unwrap_or(ConsumeError::AlreadyUsed))
            }
        }
    }

    async fn record_once(
        &self,
        key: &str,
        expires_at: i64,
        now: i64,
        user: &UserRecord,
    ) -> Result<(), ConsumeError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(format!("ONCE#{}", key_part(key))))
            .item("sk", s("ONCE"))
            .item("entity", s("once"))
            .item("expires_at", n(expires_at))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder()
                .update(user_upsert(&self.table, user)?)
                .build(),
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(ConsumeError::AlreadyUsed),
        }
    }
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn user(&self, issuer: &str, sub: &str) -> Result<Option<UserRecord>, StoreError> {
        let (pk, sk) = user_key(issuer, sub);
        let item = self.get((pk, sk), false).await?;
        item.as_ref().map(user_from).transpose()
    }
}

impl DynamoStore {
    /// The stored login state, consumed or not, or `None` if it is unknown or expired
    /// at `now` (TTL deletion is lazy). For tests and support tooling.
    pub async fn stored_state(
        &self,
        state: &str,
        now: i64,
    ) -> Result<Option<StoredState>, StoreError> {
        let key = (s(format!("STATE#{}", key_part(state))), s("STATE"));
        match self.get(key, true).await? {
            Some(item) => {
                let stored = state_from(&item)?;
                Ok((stored.login.expires_at > now).then_some(stored))
            }
            None => Ok(None),
        }
    }
}

/// The key of a JWKS document in the shared cache. The sort key is `JWKS#v2`: these
/// items keep `fresh_until` apart from `expires_at` (the end of the stale window), and
/// instances running the earlier format (sort key `JWKS`, where `expires_at` was the
/// lifetime) must not read them as fresh.
fn jwks_key(url: &str) -> (AttributeValue, AttributeValue) {
    (s(format!("JWKS#{}", key_part(url))), s("JWKS#v2"))
}

#[async_trait]
impl KeySetCache for DynamoStore {
    async fn get(&self, url: &str, now: i64) -> Option<SharedKeySet> {
        match self.get(jwks_key(url), false).await {
            Ok(item) => {
                let item = item?;
                let stale_until = get_n(&item, "expires_at")?;
                let fresh_until = get_n(&item, "fresh_until")?.min(stale_until);
                let body = item.get("body")?.as_b().ok()?.as_ref().to_vec();
                (stale_until > now).then_some(SharedKeySet {
                    body,
                    fresh_until,
                    stale_until,
                })
            }
            Err(e) => {
                tracing::warn!(error = %e, "platform key cache unavailable");
                None
            }
        }
    }

    async fn put(&self, url: &str, set: SharedKeySet) {
        let (pk, sk) = jwks_key(url);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk)
            .item("sk", sk)
            .item("entity", s("jwks"))
            .item(
                "body",
                AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(set.body)),
            )
            .item("fresh_until", n(set.fresh_until))
            // TTL: the item may go once it cannot be served even stale.
            .item("expires_at", n(set.stale_until.max(set.fresh_until)))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %unavailable("PutItem", e), "platform key cache not written");
        }
    }

    async fn forget(&self, url: &str) {
        let (pk, sk) = jwks_key(url);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %unavailable("DeleteItem", e), "platform key cache entry not removed");
        }
    }
}
