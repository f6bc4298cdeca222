//! The admin side of registration storage: a registration by its id, pages of
//! registrations, deployments listed and removed, registrations deleted, routing
//! rules written. Launches need none of it ([`PlatformStore`] is theirs), so only the
//! services function (the admin API) depends on this port.

use crate::error::{ErrorKind, Problem, StoreError};
use crate::platform::{Deployment, Platform, PlatformStore};
use crate::registration::routing::RouteSet;
use async_trait::async_trait;
use base64::Engine;
use serde::{de::DeserializeOwned, Serialize};
use uuid::Uuid;

/// Largest page of registrations.
pub const MAX_PAGE: usize = 200;
/// Page size when none is asked for.
pub const DEFAULT_PAGE: usize = 50;

/// A page of registrations to read.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// Registrations of this issuer only.
    pub issuer: Option<String>,
    /// At most this many (1–[`MAX_PAGE`]).
    pub limit: usize,
    /// Where the previous page stopped ([`PlatformPage::next_cursor`]).
    pub cursor: Option<String>,
}

/// A page of registrations, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformPage {
    pub platforms: Vec<Platform>,
    /// Present when more registrations follow: pass it back as `cursor`.
    pub next_cursor: Option<String>,
}

/// Reading a page failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PageError {
    /// The cursor is not one this store gave for the same filter.
    #[error("the cursor is not one this API returned for the same filter")]
    InvalidCursor,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What deleting a registration removed besides itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    pub deployments: usize,
    pub routes: usize,
}

/// Writing routing rules lost a race: another write changed them since they were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the routing rules were changed by another request at the same time; try again")]
pub struct RoutesChanged;

impl Problem for RoutesChanged {
    fn code(&self) -> &'static str {
        "ADMIN_ROUTE_CONFLICT"
    }
    fn kind(&self) -> ErrorKind {
        ErrorKind::Replay
    }
}

/// Storage of registrations as the admin API needs it.
#[async_trait]
pub trait PlatformAdmin: PlatformStore {
    /// The registration with this id.
    async fn platform_by_id(&self, id: Uuid) -> Result<Option<Platform>, StoreError>;
    /// A page of registrations (of one issuer, when asked), in a stable key order.
    async fn platform_page(&self, request: &PageRequest) -> Result<PlatformPage, PageError>;
    /// Every deployment of a registration.
    async fn deployments(
        &self,
        issuer: &str,
        client_id: &str,
    ) -> Result<Vec<Deployment>, StoreError>;
    /// Removes one deployment; false when it did not exist.
    async fn delete_deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment_id: &str,
    ) -> Result<bool, StoreError>;
    /// Deletes a registration (only if it still has `platform.id`), its deployments
    /// and its routing rules; course and resource-link records of the registration
    /// stop being usable (they name its id) and are removed where that is cheap.
    async fn delete_platform(&self, platform: &Platform) -> Result<Removed, StoreError>;
    /// Writes the routing rules of a registration with `set.version` =
    /// `expected_version + 1`, unless they changed since `expected_version` was read
    /// (0: none stored).
    async fn save_routes(
        &self,
        issuer: &str,
        client_id: &str,
        set: &RouteSet,
        expected_version: u64,
    ) -> Result<Result<(), RoutesChanged>, StoreError>;
}

/// An opaque cursor: the adapter's position as base64url JSON, tied to the filter it
/// was made for.
pub fn encode_cursor<T: Serialize>(position: &T, issuer: Option<&str>) -> String {
    let value = serde_json::json!({ "p": position, "i": issuer });
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The position in `cursor`, if it was made by [`encode_cursor`] for `issuer`.
pub fn decode_cursor<T: DeserializeOwned>(
    cursor: &str,
    issuer: Option<&str>,
) -> Result<T, PageError> {
    if cursor.len() > 4096 {
        return Err(PageError::InvalidCursor);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| PageError::InvalidCursor)?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| PageError::InvalidCursor)?;
    if value.get("i").and_then(|i| i.as_str()) != issuer {
        return Err(PageError::InvalidCursor);
    }
    serde_json::from_value(value.get("p").cloned().unwrap_or_default())
        .map_err(|_| PageError::InvalidCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_only_continues_the_listing_it_came_from() {
        let cursor = encode_cursor(&("a", "b"), Some("https://i"));
        let back: (String, String) = decode_cursor(&cursor, Some("https://i")).expect("same");
        assert_eq!(back, ("a".into(), "b".into()));
        assert!(decode_cursor::<(String, String)>(&cursor, None).is_err());
        assert!(decode_cursor::<(String, String)>("%%%", None).is_err());
        assert!(decode_cursor::<(String, String)>(&encode_cursor(&5, None), None).is_err());
    }
}
