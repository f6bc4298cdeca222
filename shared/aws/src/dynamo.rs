//! Every storage port of the core on one DynamoDB table (`pk`/`sk` strings, TTL on
//! `expires_at`, one GSI `gsi1` for listing platforms).
//!
//! | item | pk | sk |
//! |---|---|---|
//! | platform registration | `PLATFORM#<issuer>` | `CLIENT#<client_id>` |
//! | deployment | `PLATFORM#<issuer>` | `CLIENT#<client_id>#DEPLOYMENT#<id>` |
//! | login state + nonce | `STATE#<state>` | `STATE` |
//! | one-time token id (direct launch) | `ONCE#<id>` | `ONCE` |
//! | user | `USER#<stable user id>` | `USER` |
//! | platform JWKS shared by instances | `JWKS#<url>` | `JWKS#v2` |
//! | service key (hash, never the key) | `SKEY#<id>` | `SKEY` |
//! | launch record (services' compact reference) | `LAUNCH#<launch id>` | `LAUNCH` |
//! | a course's services | `CTX#<registration id>#<context id>` | `CTX` |
//! | a resource link's line item | `CTX#<registration id>#<context id>` | `LINK#<resource link id>` |
//! | a one-time answer (deep linking) | `USED#<key>` | `USED` |
//! | the tool's public key (a cold launch's kid) | `TOOLKEY#<KMS key id>` | `TOOLKEY` |
//! | a registration's routing rules (one record) | `PLATFORM#<issuer>` | `CLIENT#<client_id>#ROUTES` |
//! | registration id → (issuer, client_id) | `PLATFORMID#<id>` | `PLATFORMID` |
//!
//! The admin side (registrations by id, pages, deletes, routing rules) is in
//! [`crate::dynamo_admin`].
//!
//! Key parts are escaped (`%` → `%25`, `#` → `%23`) so no two (issuer, client_id)
//! pairs can share a key; a part longer than [`MAX_KEY_PART`] bytes once escaped is
//! replaced by `%H` and its SHA-256 (a form escaping never produces), so every key
//! fits DynamoDB's limits (2048 bytes for `pk`, 1024 for `sk`) whatever the input.
//! The registrations of an issuer are read through `gsi1` (`PLATFORM` /
//! `<issuer>#<client_id>`), which holds registrations only: reading them never reads
//! the issuer's deployments. TTL deletion is lazy, so every condition on a state or a
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
use lti_core::platform::{ColdStart, ColdStartRequest, Deployment, Platform, PlatformStore, Saved};
use lti_core::registration::RouteSet;
use lti_core::services::keys::{ServiceKeyRecord, ServiceKeyStore};
use lti_core::services::records::{
    ContextRecord, LaunchRecord, LaunchWrites, LinkRecord, ServiceRecords,
};
use lti_core::signer::{PublicJwk, ToolKeyCache};
use lti_core::state::{refusal, ConsumeError, LaunchStore, LoginState, StateClaim, StoredState};
use lti_core::user::{UserRecord, UserStore};
use std::collections::HashMap;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// Name of the GSI that lists platform registrations.
pub const PLATFORM_INDEX: &str = "gsi1";
pub(crate) const PLATFORM_PARTITION: &str = "PLATFORM";
const SERVICE_KEY_PARTITION: &str = "SERVICEKEY";

/// The DynamoDB adapter of every storage port.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Course and resource-link records this instance wrote lately, by key: (hash of
    /// their content, until when it is trusted). Every launch from a course would
    /// otherwise rewrite the same item, and concurrent launches from one course would
    /// make the launch transactions conflict on it.
    recent: std::sync::Arc<std::sync::Mutex<HashMap<String, (u64, i64)>>>,
    /// States this instance consumed: a replay of one is refused without a call.
    consumed: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// States remembered as consumed per instance (then the set starts over).
const CONSUMED_REMEMBERED: usize = 10_000;

/// How long a course or resource-link record written by this instance is not written
/// again with the same content, seconds.
pub const RECORDS_REWRITE_AFTER: i64 = 300;

/// Longest key part kept as it is (escaped); longer ones are hashed.
pub const MAX_KEY_PART: usize = 400;

/// Escapes a key part so `#` only ever separates parts; hashes a long one.
pub fn key_part(value: &str) -> String {
    let escaped = value.replace('%', "%25").replace('#', "%23");
    if escaped.len() <= MAX_KEY_PART {
        return escaped;
    }
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
    format!(
        "%H{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
    )
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn unavailable<E: std::error::Error + 'static>(operation: &str, error: E) -> StoreError {
    StoreError::Unavailable(format!(
        "DynamoDB {operation}: {}",
        DisplayErrorContext(error)
    ))
}

pub(crate) fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

pub(crate) fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("a {what} item is missing attributes"))
}

pub(crate) fn platform_key(issuer: &str, client_id: &str) -> (AttributeValue, AttributeValue) {
    (
        s(format!("PLATFORM#{}", key_part(issuer))),
        s(format!("CLIENT#{}", key_part(client_id))),
    )
}

pub(crate) fn deployment_key(
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

fn user_key(id: &str) -> (AttributeValue, AttributeValue) {
    (s(format!("USER#{}", key_part(id))), s("USER"))
}

pub(crate) fn platform_from(item: &Item) -> Result<Platform, StoreError> {
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
    if let Some(scope) = get_s(item, "user_scope") {
        platform.user_scope = Some(scope);
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
        user_scope: get_s(item, "user_scope").unwrap_or_default(),
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

/// An `Update` that creates or updates `user`: `created_at` is set once; the record
/// mirrors what the platform shares now, so an optional field the launch did not
/// carry is removed.
fn user_upsert(table: &str, user: &UserRecord) -> Result<Update, StoreError> {
    let (pk, sk) = user_key(&user.id);
    let mut removes = Vec::new();
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
    set("user_scope", s(&user.user_scope));
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
        match value {
            Some(value) => set(attribute, s(value)),
            None => removes.push(attribute),
        }
    }
    names.insert("#created".into(), "created_at".into());
    values.insert(":created".into(), n(user.created_at));
    sets.push("#created = if_not_exists(#created, :created)".into());
    let mut expression = format!("SET {}", sets.join(", "));
    if !removes.is_empty() {
        let removed: Vec<String> = removes
            .iter()
            .enumerate()
            .map(|(i, attribute)| {
                names.insert(format!("#r{i}"), (*attribute).to_string());
                format!("#r{i}")
            })
            .collect();
        expression.push_str(&format!(" REMOVE {}", removed.join(", ")));
    }
    Update::builder()
        .table_name(table)
        .key("pk", pk)
        .key("sk", sk)
        .update_expression(expression)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(Some(values))
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// What a cancelled transaction says about its first item.
enum Cancelled {
    /// The condition failed; the item as it was, if it existed.
    Condition(Option<Item>),
    /// Another transaction touched items at the same time (their indices); nothing
    /// was written.
    Conflict(Vec<usize>),
    /// A transaction with this client request token is still in progress: its outcome
    /// is unknown, retry with the same token.
    InProgress,
    Other(StoreError),
}

fn cancelled(error: SdkError<TransactWriteItemsError>) -> Cancelled {
    if let Some(TransactWriteItemsError::TransactionCanceledException(e)) = error.as_service_error()
    {
        let reasons = e.cancellation_reasons();
        let conflicting: Vec<usize> = reasons
            .iter()
            .enumerate()
            .filter(|(_, r)| r.code() == Some("TransactionConflict"))
            .map(|(i, _)| i)
            .collect();
        if !conflicting.is_empty() {
            return Cancelled::Conflict(conflicting);
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
        return Cancelled::InProgress;
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
            recent: Default::default(),
            consumed: Default::default(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client (for the adapters in sibling modules).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The item at (`pk`, `sk`), if any.
    pub(crate) async fn get(
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
    ///
    /// One client request token is used for every attempt whose outcome is unknown
    /// (`TransactionInProgressException`: the first attempt may still commit), so a
    /// retry of a transaction that did commit succeeds instead of failing its own
    /// condition (which would turn a user's single launch into a "replay"). After a
    /// cancellation for a conflict nothing was written, and the next attempt gets a
    /// fresh token. Backoff is exponential with jitter: several LTI embeds on one LMS
    /// page launch the same user at the same moment.
    ///
    /// Items from index `optional_from` on are advisory (a course's services, written
    /// by every launch from it): when a concurrent transaction conflicts on one of them
    /// only, that transaction is writing the same facts, and the retry goes without it.
    async fn transact(
        &self,
        mut items: Vec<TransactWriteItem>,
        optional_from: usize,
    ) -> Result<Result<(), Option<Item>>, StoreError> {
        let mut token = request_token();
        for attempt in 0..TRANSACTION_ATTEMPTS {
            match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(&token)
                .send()
                .await
            {
                Ok(_) => return Ok(Ok(())),
                Err(e) => match cancelled(e) {
                    Cancelled::Condition(item) => return Ok(Err(item)),
                    Cancelled::Conflict(indices) => {
                        token = request_token();
                        if indices.iter().all(|i| *i >= optional_from) {
                            let mut index = 0;
                            items.retain(|_| {
                                index += 1;
                                !indices.contains(&(index - 1))
                            });
                            continue;
                        }
                        tokio::time::sleep(backoff(attempt, 10)).await;
                    }
                    Cancelled::InProgress => {
                        tokio::time::sleep(backoff(attempt, 100)).await;
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

/// A fresh client request token (a UUID: 36 characters, the most DynamoDB allows).
fn request_token() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `base_ms · 2^attempt`, scaled by a random factor in [0.5, 1.5).
fn backoff(attempt: usize, base_ms: u64) -> std::time::Duration {
    let mut byte = [0u8; 1];
    let _ = aws_lc_rs::rand::fill(&mut byte);
    let exp = base_ms.saturating_mul(1 << attempt.min(10));
    let jittered = exp / 2 + exp * u64::from(byte[0]) / 256;
    std::time::Duration::from_millis(jittered)
}

fn tool_key_key(key_id: &str) -> (AttributeValue, AttributeValue) {
    (s(format!("TOOLKEY#{}", key_part(key_id))), s("TOOLKEY"))
}

fn shared_key_set_from(item: &Item) -> Option<SharedKeySet> {
    let stale_until = get_n(item, "expires_at")?;
    let fresh_until = get_n(item, "fresh_until")?.min(stale_until);
    let body = item.get("body")?.as_b().ok()?.as_ref().to_vec();
    Some(SharedKeySet {
        body,
        fresh_until,
        stale_until,
    })
}

#[async_trait]
impl PlatformStore for DynamoStore {
    /// One `BatchGetItem`: the registration, the deployment, the registration's platform
    /// keys and the tool's public key. A key DynamoDB leaves unprocessed is simply not
    /// in the answer: the launch reads it alone afterwards.
    async fn cold_start(
        &self,
        request: &ColdStartRequest<'_>,
    ) -> Result<Option<ColdStart>, StoreError> {
        let mut keys: Vec<(AttributeValue, AttributeValue)> =
            vec![platform_key(request.issuer, request.client_id)];
        if let Some(deployment) = request.deployment_id {
            keys.push(deployment_key(
                request.issuer,
                request.client_id,
                deployment,
            ));
        }
        keys.push(jwks_key(request.key_set));
        if let Some(tool) = request.tool_key_id {
            keys.push(tool_key_key(tool));
        }
        let routes = crate::dynamo_admin::routes_key(request.issuer, request.client_id);
        keys.push(routes.clone());
        let wanted = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(
                keys.iter()
                    .map(|(pk, sk)| {
                        HashMap::from([
                            ("pk".to_string(), pk.clone()),
                            ("sk".to_string(), sk.clone()),
                        ])
                    })
                    .collect(),
            ))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.table, wanted)
            .send()
            .await
            .map_err(|e| unavailable("BatchGetItem", e))?;
        if output
            .unprocessed_keys
            .as_ref()
            .is_some_and(|unprocessed| !unprocessed.is_empty())
        {
            // Some keys were not read (throttling): absent would be a guess, so the
            // launch reads each part on its own instead.
            return Ok(None);
        }
        let items = output
            .responses
            .and_then(|mut r| r.remove(&self.table))
            .unwrap_or_default();
        let find = |(pk, sk): &(AttributeValue, AttributeValue)| {
            items
                .iter()
                .find(|i| i.get("pk") == Some(pk) && i.get("sk") == Some(sk))
        };
        let mut cold = ColdStart::default();
        if let Some(item) = find(&keys[0]) {
            cold.platform = Some(platform_from(item)?);
        }
        if let Some(deployment) = request.deployment_id {
            let key = deployment_key(request.issuer, request.client_id, deployment);
            cold.deployment = find(&key).map(|item| Deployment {
                issuer: request.issuer.to_string(),
                client_id: request.client_id.to_string(),
                deployment_id: deployment.to_string(),
                created_at: get_n(item, "created_at").unwrap_or_default(),
            });
        }
        cold.key_set = find(&jwks_key(request.key_set)).and_then(shared_key_set_from);
        if let Some(tool) = request.tool_key_id {
            cold.tool_key = find(&tool_key_key(tool))
                .and_then(|item| get_s(item, "doc"))
                .and_then(|doc| serde_json::from_str::<PublicJwk>(&doc).ok());
        }
        cold.routes = find(&routes)
            .map(crate::dynamo_admin::route_set_from)
            .transpose()?;
        Ok(Some(cold))
    }

    async fn platforms_by_issuer(
        &self,
        issuer: &str,
        limit: usize,
    ) -> Result<Vec<Platform>, StoreError> {
        // The registrations index holds registrations only, keyed `<issuer>#<client>`:
        // a prefix query reads exactly this issuer's registrations, at most `limit`.
        let prefix = format!("{}#", key_part(issuer));
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        while items.len() < limit {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(PLATFORM_INDEX)
                .key_condition_expression("gsi1pk = :p AND begins_with(gsi1sk, :prefix)")
                .expression_attribute_values(":p", s(PLATFORM_PARTITION))
                .expression_attribute_values(":prefix", s(&prefix))
                .limit(i32::try_from(limit - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("Query", e))?;
            items.extend(output.items.unwrap_or_default());
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        items.truncate(limit);
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

    async fn save_platform(&self, platform: Platform) -> Result<Saved, StoreError> {
        let (pk, sk) = platform_key(&platform.issuer, &platform.client_id);
        let doc =
            serde_json::to_string(&platform).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let scope = platform.effective_user_scope().to_string();
        // ALL_OLD tells whether this call created the item (of two concurrent creations,
        // exactly one sees no old item); the stored value is built from the old
        // attributes that an upsert keeps and the new document.
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .update_expression(
                "SET entity = :platform, issuer = :issuer, client_id = :client, \
                 #id = if_not_exists(#id, :id), created_at = if_not_exists(created_at, :created), \
                 user_scope = if_not_exists(user_scope, :scope), \
                 updated_at = :updated, doc = :doc, gsi1pk = :gpk, gsi1sk = :gsk",
            )
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":platform", s("platform"))
            .expression_attribute_values(":issuer", s(&platform.issuer))
            .expression_attribute_values(":client", s(&platform.client_id))
            .expression_attribute_values(":id", s(platform.id.to_string()))
            .expression_attribute_values(":created", n(platform.created_at))
            .expression_attribute_values(":scope", s(scope))
            .expression_attribute_values(":updated", n(platform.updated_at))
            .expression_attribute_values(":doc", s(&doc))
            .expression_attribute_values(":gpk", s(PLATFORM_PARTITION))
            .expression_attribute_values(
                ":gsk",
                s(format!(
                    "{}#{}",
                    key_part(&platform.issuer),
                    key_part(&platform.client_id)
                )),
            )
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable("UpdateItem", e))?;
        let old = output.attributes.unwrap_or_default();
        let created = old.is_empty();
        let mut item: Item = HashMap::new();
        item.insert("doc".into(), s(doc));
        for kept in ["id", "created_at", "user_scope"] {
            if let Some(value) = old.get(kept) {
                item.insert(kept.into(), value.clone());
            }
        }
        let mut saved = platform_from(&item)?;
        if saved.user_scope.is_none() {
            saved.user_scope = Some(platform.effective_user_scope().to_string());
        }
        // Found by id from now on (idempotent: a retry of the save writes it again).
        self.put_platform_pointer(&saved).await?;
        Ok(Saved {
            platform: saved,
            created,
        })
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

    async fn routes(&self, issuer: &str, client_id: &str) -> Result<Option<RouteSet>, StoreError> {
        self.route_set(issuer, client_id).await
    }
}

#[async_trait]
impl LaunchStore for DynamoStore {
    fn recently_consumed(&self, state: &str) -> bool {
        self.consumed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(state)
    }

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
        writes: &LaunchWrites,
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
        let mut items = vec![TransactWriteItem::builder().update(consume).build()];
        let remember = self.launch_items(&mut items, writes, claim.now)?;
        match self.transact(items, 3).await? {
            Ok(()) => {
                self.remember(remember, claim.now);
                let mut consumed = self.consumed.lock().unwrap_or_else(|e| e.into_inner());
                if consumed.len() >= CONSUMED_REMEMBERED {
                    consumed.clear();
                }
                consumed.insert(claim.state.clone());
                Ok(())
            }
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
        writes: &LaunchWrites,
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
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        let remember = self.launch_items(&mut items, writes, now)?;
        match self.transact(items, 3).await? {
            Ok(()) => {
                self.remember(remember, now);
                Ok(())
            }
            Err(_) => Err(ConsumeError::AlreadyUsed),
        }
    }
}

fn doc_of<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn content_hash(doc: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    doc.hash(&mut hasher);
    hasher.finish()
}

fn context_key(platform_id: uuid::Uuid, context_id: &str) -> String {
    format!("CTX#{platform_id}#{}", key_part(context_id))
}

fn record_put(
    table: &str,
    pk: String,
    sk: String,
    entity: &str,
    doc: String,
    updated_at: i64,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .item("pk", s(pk))
        .item("sk", s(sk))
        .item("entity", s(entity))
        .item("doc", s(doc))
        .item("updated_at", n(updated_at))
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl DynamoStore {
    /// Appends what a launch writes after the item carrying its condition: the user
    /// (index 1), the launch record (2), then the course's and the resource link's
    /// records (3 and 4) unless this instance wrote the same content lately. Returns
    /// the records to remember once the transaction succeeded.
    fn launch_items(
        &self,
        items: &mut Vec<TransactWriteItem>,
        writes: &LaunchWrites,
        now: i64,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        items.push(
            TransactWriteItem::builder()
                .update(user_upsert(&self.table, &writes.user)?)
                .build(),
        );
        let launch = Put::builder()
            .table_name(&self.table)
            .item(
                "pk",
                s(format!("LAUNCH#{}", key_part(&writes.launch.launch_id))),
            )
            .item("sk", s("LAUNCH"))
            .item("entity", s("launch"))
            .item("doc", s(doc_of(&writes.launch)?))
            .item("expires_at", n(writes.launch.expires_at))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        items.push(TransactWriteItem::builder().put(launch).build());
        let mut remember = Vec::new();
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let mut add = |pk: String, sk: String, entity: &str, doc: String, at: i64| {
            let key = format!("{pk}\n{sk}");
            let hash = content_hash(&doc);
            if recent
                .get(&key)
                .is_some_and(|(h, until)| *h == hash && *until > now)
            {
                return Ok::<(), StoreError>(());
            }
            items.push(record_put(&self.table, pk, sk, entity, doc, at)?);
            remember.push((key, hash));
            Ok(())
        };
        if let Some(context) = &writes.context {
            let stable = ContextRecord {
                updated_at: 0,
                ..context.clone()
            };
            add(
                context_key(context.platform_id, &context.context_id),
                "CTX".into(),
                "context",
                doc_of(&stable)?,
                context.updated_at,
            )?;
        }
        if let Some(link) = &writes.link {
            let stable = LinkRecord {
                updated_at: 0,
                ..link.clone()
            };
            add(
                context_key(link.platform_id, &link.context_id),
                format!("LINK#{}", key_part(&link.resource_link_id)),
                "link",
                doc_of(&stable)?,
                link.updated_at,
            )?;
        }
        Ok(remember)
    }

    fn remember(&self, written: Vec<(String, u64)>, now: i64) {
        if written.is_empty() {
            return;
        }
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() > 10_000 {
            recent.retain(|_, (_, until)| *until > now);
        }
        for (key, hash) in written {
            recent.insert(key, (hash, now + RECORDS_REWRITE_AFTER));
        }
    }

    async fn doc_at<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        sk: String,
    ) -> Result<Option<(T, Item)>, StoreError> {
        let Some(item) = self.get((s(pk), s(sk)), false).await? else {
            return Ok(None);
        };
        let doc = get_s(&item, "doc").ok_or_else(|| corrupt("record"))?;
        let value = serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some((value, item)))
    }
}

#[async_trait]
impl ServiceRecords for DynamoStore {
    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("USED#{}", key_part(key))))
            .item("sk", s("USED"))
            .item("entity", s("used"))
            .item("expires_at", n(expires_at))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(unavailable("PutItem", e)),
        }
    }

    async fn launch_record(
        &self,
        launch_id: &str,
        now: i64,
    ) -> Result<Option<LaunchRecord>, StoreError> {
        let found: Option<(LaunchRecord, Item)> = self
            .doc_at(format!("LAUNCH#{}", key_part(launch_id)), "LAUNCH".into())
            .await?;
        Ok(found
            .map(|(record, _)| record)
            .filter(|r| r.expires_at > now))
    }

    async fn context_record(
        &self,
        platform_id: uuid::Uuid,
        context_id: &str,
    ) -> Result<Option<ContextRecord>, StoreError> {
        let found: Option<(ContextRecord, Item)> = self
            .doc_at(context_key(platform_id, context_id), "CTX".into())
            .await?;
        Ok(found.map(|(mut record, item)| {
            record.updated_at = get_n(&item, "updated_at").unwrap_or_default();
            record
        }))
    }

    async fn link_record(
        &self,
        platform_id: uuid::Uuid,
        context_id: &str,
        resource_link_id: &str,
    ) -> Result<Option<LinkRecord>, StoreError> {
        let found: Option<(LinkRecord, Item)> = self
            .doc_at(
                context_key(platform_id, context_id),
                format!("LINK#{}", key_part(resource_link_id)),
            )
            .await?;
        Ok(found.map(|(mut record, item)| {
            record.updated_at = get_n(&item, "updated_at").unwrap_or_default();
            record
        }))
    }
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        let (pk, sk) = user_key(id);
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
impl ToolKeyCache for DynamoStore {
    async fn put_tool_key(&self, key_id: &str, jwk: &PublicJwk) {
        let (pk, sk) = tool_key_key(key_id);
        let doc = match serde_json::to_string(jwk) {
            Ok(doc) => doc,
            Err(_) => return,
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk)
            .item("sk", sk)
            .item("entity", s("tool_key"))
            .item("doc", s(doc))
            .send()
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %unavailable("PutItem", e), "tool public key not cached");
        }
    }
}

#[async_trait]
impl KeySetCache for DynamoStore {
    async fn get(&self, url: &str, now: i64) -> Option<SharedKeySet> {
        match self.get(jwks_key(url), false).await {
            Ok(item) => shared_key_set_from(&item?).filter(|set| set.stale_until > now),
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

fn service_key_key(id: &str) -> (AttributeValue, AttributeValue) {
    (s(format!("SKEY#{}", key_part(id))), s("SKEY"))
}

fn service_key_from(item: &Item) -> Result<ServiceKeyRecord, StoreError> {
    Ok(ServiceKeyRecord {
        id: get_s(item, "id").ok_or_else(|| corrupt("service key"))?,
        name: get_s(item, "name").unwrap_or_default(),
        hash: get_s(item, "hash").ok_or_else(|| corrupt("service key"))?,
        created_at: get_n(item, "created_at").unwrap_or_default(),
        last_used_at: get_n(item, "last_used_at"),
    })
}

#[async_trait]
impl ServiceKeyStore for DynamoStore {
    async fn create_service_key(&self, key: &ServiceKeyRecord) -> Result<(), StoreError> {
        let (pk, sk) = service_key_key(&key.id);
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk)
            .item("sk", sk)
            .item("entity", s("service_key"))
            .item("id", s(&key.id))
            .item("name", s(&key.name))
            .item("hash", s(&key.hash))
            .item("created_at", n(key.created_at))
            .item("gsi1pk", s(SERVICE_KEY_PARTITION))
            .item("gsi1sk", s(key_part(&key.id)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| unavailable("PutItem", e))?;
        Ok(())
    }

    async fn service_key(&self, id: &str) -> Result<Option<ServiceKeyRecord>, StoreError> {
        let item = self.get(service_key_key(id), false).await?;
        item.as_ref().map(service_key_from).transpose()
    }

    async fn list_service_keys(&self) -> Result<Vec<ServiceKeyRecord>, StoreError> {
        let items = self
            .query_all(|| {
                self.client
                    .query()
                    .table_name(&self.table)
                    .index_name(PLATFORM_INDEX)
                    .key_condition_expression("gsi1pk = :p")
                    .expression_attribute_values(":p", s(SERVICE_KEY_PARTITION))
            })
            .await?;
        items.iter().map(service_key_from).collect()
    }

    async fn delete_service_key(&self, id: &str) -> Result<bool, StoreError> {
        let (pk, sk) = service_key_key(id);
        let output = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem", e))?;
        Ok(output.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn touch_service_key(&self, id: &str, now: i64) -> Result<(), StoreError> {
        let (pk, sk) = service_key_key(id);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk)
            .key("sk", sk)
            .update_expression("SET last_used_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Revoked meanwhile: nothing to touch.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable("UpdateItem", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_exponential_with_jitter() {
        let waits: Vec<u128> = (0..50).map(|_| backoff(2, 10).as_millis()).collect();
        assert!(waits.iter().all(|w| (20..60).contains(w)), "{waits:?}");
        let first = waits[0];
        assert!(
            waits.iter().any(|w| *w != first),
            "jittered, not one fixed delay"
        );
    }

    #[test]
    fn long_key_parts_are_hashed_and_short_ones_only_escaped() {
        assert_eq!(key_part("a#b%c"), "a%23b%25c");
        let long = key_part(&"#".repeat(255));
        assert!(long.starts_with("%H") && long.len() < 50, "{long}");
        assert_ne!(key_part(&"#".repeat(255)), key_part(&"#".repeat(256)));
    }
}
