//! The DynamoDB adapter of the admin store port ([`PlatformAdmin`]) and of the
//! routing-rule read launches make.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | a registration's routing rules, all in one record | `PLATFORM#<issuer>` | `CLIENT#<client_id>#ROUTES` |
//! | registration id → (issuer, client_id) | `PLATFORMID#<id>` | `PLATFORMID` |
//!
//! The routing rules live under the registration's partition, next to its
//! deployments (`CLIENT#<client_id>#DEPLOYMENT#<id>`): one prefix query finds
//! everything a delete must remove. They are read by key ([`DynamoStore::route_set`]),
//! so the read can join the other reads of a cold launch in one `BatchGetItem`.
//!
//! Pages of registrations read the `gsi1` index (`PLATFORM` / `<issuer>#<client_id>`),
//! one more item than asked so the cursor is only given when more follow; the cursor
//! is the last item's index key (what DynamoDB's `LastEvaluatedKey` would be),
//! base64url JSON tied to the issuer filter.

use crate::dynamo::{
    corrupt, deployment_key, get_n, get_s, key_part, n, platform_from, platform_key, s,
    unavailable, DynamoStore, Item, PLATFORM_INDEX, PLATFORM_PARTITION,
};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, ReturnValue, WriteRequest};
use lti_core::error::StoreError;
use lti_core::platform::{Deployment, Platform, PlatformStore};
use lti_core::registration::store::{decode_cursor, encode_cursor};
use lti_core::registration::{
    PageError, PageRequest, PlatformAdmin, PlatformPage, Removed, RouteRule, RouteSet,
    RoutesChanged,
};
use std::collections::HashMap;
use uuid::Uuid;

/// The (`pk`, `sk`) of a registration's routing rules.
pub fn routes_key(issuer: &str, client_id: &str) -> (AttributeValue, AttributeValue) {
    (
        s(format!("PLATFORM#{}", key_part(issuer))),
        s(format!("CLIENT#{}#ROUTES", key_part(client_id))),
    )
}

/// The (`pk`, `sk`) of the item that finds a registration by its id.
pub fn pointer_key(id: Uuid) -> (AttributeValue, AttributeValue) {
    (s(format!("PLATFORMID#{id}")), s("PLATFORMID"))
}

/// Attempts of a `BatchWriteItem` whose items come back unprocessed (throttling).
const BATCH_ATTEMPTS: u32 = 6;

/// The index key of a registration item: a page's cursor.
#[derive(serde::Serialize, serde::Deserialize)]
struct Position {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
}

impl Position {
    fn of(item: &Item) -> Option<Self> {
        Some(Self {
            pk: get_s(item, "pk")?,
            sk: get_s(item, "sk")?,
            gsi1pk: get_s(item, "gsi1pk")?,
            gsi1sk: get_s(item, "gsi1sk")?,
        })
    }

    fn into_key(self) -> Item {
        HashMap::from([
            ("pk".to_string(), s(self.pk)),
            ("sk".to_string(), s(self.sk)),
            ("gsi1pk".to_string(), s(self.gsi1pk)),
            ("gsi1sk".to_string(), s(self.gsi1sk)),
        ])
    }
}

#[derive(serde::Deserialize)]
struct RulesDoc {
    #[serde(default)]
    rules: Vec<RouteRule>,
}

impl DynamoStore {
    /// The routing rules of (issuer, client_id): one eventually consistent `GetItem`.
    pub async fn route_set(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Option<RouteSet>, StoreError> {
        let Some(item) = self.get(routes_key(issuer, client_id), false).await? else {
            return Ok(None);
        };
        route_set_from(&item).map(Some)
    }

    /// Writes the item that finds `platform` by its id (idempotent).
    pub(crate) async fn put_platform_pointer(&self, platform: &Platform) -> Result<(), StoreError> {
        let (pk, sk) = pointer_key(platform.id);
        self.client()
            .put_item()
            .table_name(self.table())
            .item("pk", pk)
            .item("sk", sk)
            .item("entity", s("platform_id"))
            .item("issuer", s(&platform.issuer))
            .item("client_id", s(&platform.client_id))
            .send()
            .await
            .map_err(|e| unavailable("PutItem", e))?;
        Ok(())
    }

    /// Every item under a registration's key besides itself: its deployments and its
    /// routing rules (strongly consistent, every page).
    async fn children(&self, issuer: &str, client_id: &str) -> Result<Vec<Item>, StoreError> {
        let (pk, _) = platform_key(issuer, client_id);
        let prefix = format!("CLIENT#{}#", key_part(client_id));
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", pk.clone())
                .expression_attribute_values(":prefix", s(&prefix))
                .consistent_read(true)
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

    /// Deletes the items at `keys` with `BatchWriteItem`, 25 at a time, retrying the
    /// unprocessed ones with backoff.
    async fn delete_all(
        &self,
        keys: Vec<(AttributeValue, AttributeValue)>,
    ) -> Result<(), StoreError> {
        for chunk in keys.chunks(25) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .map(|(pk, sk)| {
                    DeleteRequest::builder()
                        .key("pk", pk.clone())
                        .key("sk", sk.clone())
                        .build()
                        .map(|d| WriteRequest::builder().delete_request(d).build())
                        .map_err(|e| StoreError::Unavailable(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            for attempt in 0..BATCH_ATTEMPTS {
                if requests.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
                }
                let output = self
                    .client()
                    .batch_write_item()
                    .request_items(self.table(), std::mem::take(&mut requests))
                    .send()
                    .await
                    .map_err(|e| unavailable("BatchWriteItem", e))?;
                requests = output
                    .unprocessed_items
                    .and_then(|mut m| m.remove(self.table()))
                    .unwrap_or_default();
            }
            if !requests.is_empty() {
                return Err(StoreError::Unavailable(
                    "DynamoDB BatchWriteItem kept leaving items unprocessed".into(),
                ));
            }
        }
        Ok(())
    }

    /// A registration without a pointer item (saved before pointers existed): found
    /// through the registrations index, and given its pointer.
    async fn platform_by_id_in_index(&self, id: Uuid) -> Result<Option<Platform>, StoreError> {
        let mut start: Option<Item> = None;
        loop {
            let output = self
                .client()
                .query()
                .table_name(self.table())
                .index_name(PLATFORM_INDEX)
                .key_condition_expression("gsi1pk = :p")
                .filter_expression("#id = :id")
                .expression_attribute_names("#id", "id")
                .expression_attribute_values(":p", s(PLATFORM_PARTITION))
                .expression_attribute_values(":id", s(id.to_string()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("Query", e))?;
            if let Some(item) = output.items.unwrap_or_default().first() {
                let platform = platform_from(item)?;
                self.put_platform_pointer(&platform).await?;
                return Ok(Some(platform));
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(None),
            }
        }
    }
}

pub(crate) fn route_set_from(item: &Item) -> Result<RouteSet, StoreError> {
    let doc = get_s(item, "doc").ok_or_else(|| corrupt("routes"))?;
    let rules: RulesDoc =
        serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(RouteSet {
        platform_id: get_s(item, "platform_id")
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| corrupt("routes"))?,
        version: get_n(item, "version").map_or(0, |v| u64::try_from(v).unwrap_or(0)),
        rules: rules.rules,
    })
}

fn key_of(item: &Item) -> Option<(AttributeValue, AttributeValue)> {
    Some((item.get("pk")?.clone(), item.get("sk")?.clone()))
}

#[async_trait]
impl PlatformAdmin for DynamoStore {
    async fn platform_by_id(&self, id: Uuid) -> Result<Option<Platform>, StoreError> {
        let Some(pointer) = self.get(pointer_key(id), false).await? else {
            return self.platform_by_id_in_index(id).await;
        };
        let (Some(issuer), Some(client_id)) =
            (get_s(&pointer, "issuer"), get_s(&pointer, "client_id"))
        else {
            return Err(corrupt("registration id"));
        };
        // A pointer left by a deleted registration finds nothing (or another id).
        Ok(self
            .platform(&issuer, &client_id)
            .await?
            .filter(|p| p.id == id))
    }

    async fn platform_page(&self, request: &PageRequest) -> Result<PlatformPage, PageError> {
        let issuer = request.issuer.as_deref();
        let start = request
            .cursor
            .as_deref()
            .map(|c| decode_cursor::<Position>(c, issuer))
            .transpose()?
            // Only a key inside this query (DynamoDB refuses others as invalid).
            .filter(|p| {
                p.gsi1pk == PLATFORM_PARTITION
                    && issuer.is_none_or(|i| p.gsi1sk.starts_with(&format!("{}#", key_part(i))))
            })
            .map(Position::into_key);
        if request.cursor.is_some() && start.is_none() {
            return Err(PageError::InvalidCursor);
        }
        let mut query = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(PLATFORM_INDEX)
            .expression_attribute_values(":p", s(PLATFORM_PARTITION))
            .limit(i32::try_from(request.limit.saturating_add(1)).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start);
        query = match issuer {
            Some(issuer) => query
                .key_condition_expression("gsi1pk = :p AND begins_with(gsi1sk, :prefix)")
                .expression_attribute_values(":prefix", s(format!("{}#", key_part(issuer)))),
            None => query.key_condition_expression("gsi1pk = :p"),
        };
        let output = query
            .send()
            .await
            .map_err(|e| PageError::Store(unavailable("Query", e)))?;
        let mut items = output.items.unwrap_or_default();
        let more = items.len() > request.limit
            || output
                .last_evaluated_key
                .as_ref()
                .is_some_and(|k| !k.is_empty());
        items.truncate(request.limit);
        let next_cursor = if more {
            items
                .last()
                .and_then(Position::of)
                .map(|p| encode_cursor(&p, issuer))
        } else {
            None
        };
        let platforms = items
            .iter()
            .map(platform_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PlatformPage {
            platforms,
            next_cursor,
        })
    }

    async fn deployments(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Vec<Deployment>, StoreError> {
        Ok(self
            .children(issuer, client_id)
            .await?
            .iter()
            .filter(|item| get_s(item, "entity").as_deref() == Some("deployment"))
            .filter_map(|item| {
                Some(Deployment {
                    issuer: issuer.to_string(),
                    client_id: client_id.to_string(),
                    deployment_id: get_s(item, "deployment_id")?,
                    created_at: get_n(item, "created_at").unwrap_or_default(),
                })
            })
            .collect())
    }

    async fn delete_deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment_id: &str,
    ) -> Result<bool, StoreError> {
        let (pk, sk) = deployment_key(issuer, client_id, deployment_id);
        let output = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key("pk", pk)
            .key("sk", sk)
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| unavailable("DeleteItem", e))?;
        Ok(output.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn delete_platform(&self, platform: &Platform) -> Result<Removed, StoreError> {
        let (issuer, client_id) = (&platform.issuer, &platform.client_id);
        // Only this registration: one made again under the same key has another id.
        let current = self.get(platform_key(issuer, client_id), true).await?;
        if current
            .as_ref()
            .map(platform_from)
            .transpose()?
            .is_none_or(|p| p.id != platform.id)
        {
            return Ok(Removed::default());
        }
        let mut removed = Removed::default();
        let children = self.children(issuer, client_id).await?;
        for item in &children {
            match get_s(item, "entity").as_deref() {
                Some("deployment") => removed.deployments += 1,
                Some("routes") => {
                    removed.routes += route_set_from(item)
                        .map(|set| set.rules_of(platform.id).len())
                        .unwrap_or(0)
                }
                _ => {}
            }
        }
        self.delete_all(children.iter().filter_map(key_of).collect())
            .await?;
        // The registration itself, still only if it is this one.
        let (pk, sk) = platform_key(issuer, client_id);
        let deleted = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key("pk", pk)
            .key("sk", sk)
            .condition_expression("#id = :id")
            .expression_attribute_names("#id", "id")
            .expression_attribute_values(":id", s(platform.id.to_string()))
            .send()
            .await;
        match deleted {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) => {}
            Err(e) => return Err(unavailable("DeleteItem", e)),
        }
        // A deployment a launch recorded meanwhile (accepting new deployments) goes too.
        let stragglers = self.children(issuer, client_id).await?;
        removed.deployments += stragglers
            .iter()
            .filter(|item| get_s(item, "entity").as_deref() == Some("deployment"))
            .count();
        self.delete_all(stragglers.iter().filter_map(key_of).collect())
            .await?;
        self.delete_all(vec![pointer_key(platform.id)]).await?;
        Ok(removed)
    }

    async fn save_routes(
        &self,
        issuer: &str,
        client_id: &str,
        set: &RouteSet,
        expected_version: u64,
    ) -> Result<Result<(), RoutesChanged>, StoreError> {
        let (pk, sk) = routes_key(issuer, client_id);
        let doc = serde_json::to_string(&serde_json::json!({ "rules": set.rules }))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let version = i64::try_from(expected_version).unwrap_or(i64::MAX);
        let put = self
            .client()
            .put_item()
            .table_name(self.table())
            .item("pk", pk)
            .item("sk", sk)
            .item("entity", s("routes"))
            .item("platform_id", s(set.platform_id.to_string()))
            .item("version", n(version.saturating_add(1)))
            .item("doc", s(doc));
        let put = if expected_version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :v")
                .expression_attribute_values(":v", n(version))
        };
        match put.send().await {
            Ok(_) => Ok(Ok(())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(Err(RoutesChanged))
            }
            Err(e) => Err(unavailable("PutItem", e)),
        }
    }
}
