//! What a launch leaves behind for the services, written **inside the launch's atomic
//! write** (the same transaction that consumes the state and upserts the user):
//!
//! - a [`LaunchRecord`] under the launch id — the compact reference an app may present
//!   instead of its whole app token (`Authorization: Bearer <launch id>`), valid as
//!   long as the app token;
//! - a [`ContextRecord`] per (registration, course) with the course's AGS line-items
//!   URL and scopes and its NRPS URL, so a backend job can reach a course once anyone
//!   launched from it;
//! - a [`LinkRecord`] per (registration, course, resource link) with its line item.

use crate::error::StoreError;
use crate::launch::roles::RoleKind;
use crate::launch::{AgsEndpoint, DeepLinkingSettings, LaunchContext, NrpsEndpoint};
use crate::platform::Platform;
use crate::user::UserRecord;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One launch, as services calls made on its behalf see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchRecord {
    /// The launch id (also the app token's `jti` and `lti.launchId`).
    pub launch_id: String,
    /// The registration's id.
    pub platform_id: Uuid,
    pub issuer: String,
    pub client_id: String,
    pub deployment_id: String,
    /// The app user id (the app token's `sub`).
    pub user_id: String,
    /// The platform's user id.
    pub sub: String,
    /// The launch's roles in its course, mapped as in the app token.
    pub roles: Vec<RoleKind>,
    pub message_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_link_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ags: Option<AgsEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nrps: Option<NrpsEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deep_linking: Option<DeepLinkingSettings>,
    /// Epoch seconds.
    pub created_at: i64,
    /// When the launch id stops being accepted (the app token's `exp`), epoch seconds.
    pub expires_at: i64,
}

/// A course's services, as the latest launch from it described them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContextRecord {
    pub platform_id: Uuid,
    pub context_id: String,
    pub issuer: String,
    pub client_id: String,
    pub deployment_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// AGS `lineitems` URL of the course.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineitems: Option<String>,
    /// AGS scopes the platform granted.
    #[serde(default)]
    pub ags_scopes: Vec<String>,
    /// NRPS `context_memberships_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memberships_url: Option<String>,
    /// Epoch seconds of the launch that wrote it.
    pub updated_at: i64,
}

/// A resource link's line item, as the latest launch through it described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkRecord {
    pub platform_id: Uuid,
    pub context_id: String,
    pub resource_link_id: String,
    /// AGS `lineitem` URL of the link, when the platform made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineitem: Option<String>,
    #[serde(default)]
    pub ags_scopes: Vec<String>,
    pub updated_at: i64,
}

/// Everything one launch writes, all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchWrites {
    pub user: UserRecord,
    pub launch: LaunchRecord,
    pub context: Option<ContextRecord>,
    pub link: Option<LinkRecord>,
}

impl LaunchWrites {
    /// The writes of a launch of `context` through `platform`, with id `launch_id`,
    /// whose app token expires at `expires_at`. Context and link records are written
    /// only when the launch carries services for them.
    pub fn of(
        platform: &Platform,
        context: &LaunchContext,
        user: UserRecord,
        launch_id: &str,
        now: i64,
        expires_at: i64,
    ) -> Self {
        let ags = context.services.ags.clone();
        let nrps = context.services.nrps.clone();
        let scopes = ags.as_ref().map(|a| a.scope.clone()).unwrap_or_default();
        let course = context.context.as_ref().map(|c| c.id.clone());
        let launch = LaunchRecord {
            launch_id: launch_id.to_string(),
            platform_id: platform.id,
            issuer: platform.issuer.clone(),
            client_id: platform.client_id.clone(),
            deployment_id: context.platform.deployment_id.clone(),
            user_id: user.id.clone(),
            sub: user.sub.clone(),
            roles: context.roles.mapped.clone(),
            message_type: context.message_type.clone(),
            context_id: course.clone(),
            resource_link_id: context.resource_link.as_ref().map(|l| l.id.clone()),
            ags: ags.clone(),
            nrps: nrps.clone(),
            deep_linking: context.services.deep_linking.clone(),
            created_at: now,
            expires_at,
        };
        let context_record = course
            .as_ref()
            .filter(|_| ags.is_some() || nrps.is_some())
            .map(|id| ContextRecord {
                platform_id: platform.id,
                context_id: id.clone(),
                issuer: platform.issuer.clone(),
                client_id: platform.client_id.clone(),
                deployment_id: context.platform.deployment_id.clone(),
                title: context.context.as_ref().and_then(|c| c.title.clone()),
                lineitems: ags.as_ref().and_then(|a| a.lineitems.clone()),
                ags_scopes: scopes.clone(),
                memberships_url: nrps.as_ref().map(|n| n.context_memberships_url.clone()),
                updated_at: now,
            });
        let link = match (&course, &context.resource_link, &ags) {
            (Some(course), Some(link), Some(_)) => Some(LinkRecord {
                platform_id: platform.id,
                context_id: course.clone(),
                resource_link_id: link.id.clone(),
                lineitem: ags.as_ref().and_then(|a| a.lineitem.clone()),
                ags_scopes: scopes,
                updated_at: now,
            }),
            _ => None,
        };
        Self {
            user,
            launch,
            context: context_record,
            link,
        }
    }
}

/// What launches recorded (the services function reads it), and one-time answers.
#[async_trait]
pub trait ServiceRecords: Send + Sync {
    /// Records that `key` (e.g. a deep-linking launch's answer) was used, until
    /// `expires_at`; false if it already was (and has not expired at `now`). Exactly one
    /// of any number of concurrent calls with one key gets true.
    async fn use_once(&self, key: &str, expires_at: i64, now: i64) -> Result<bool, StoreError>;
    /// The launch with id `launch_id`, if it exists and has not expired at `now`.
    async fn launch_record(
        &self,
        launch_id: &str,
        now: i64,
    ) -> Result<Option<LaunchRecord>, StoreError>;
    /// The course `context_id` of registration `platform_id`.
    async fn context_record(
        &self,
        platform_id: Uuid,
        context_id: &str,
    ) -> Result<Option<ContextRecord>, StoreError>;
    /// The resource link `resource_link_id` of that course.
    async fn link_record(
        &self,
        platform_id: Uuid,
        context_id: &str,
        resource_link_id: &str,
    ) -> Result<Option<LinkRecord>, StoreError>;
}
