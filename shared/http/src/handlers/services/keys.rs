//! Service keys for the app's backend (SERVICES-API.md, "Who may call"):
//! `GET|POST /admin/service-keys`, `DELETE /admin/service-keys/{id}`.

use super::ServicesHandler;
use crate::request::{self, RequestError};
use crate::{respond, HttpRequest, HttpResponse};
use http::StatusCode;
use lti_core::registration::audit::AdminActor;
use lti_core::services::keys::CACHE_SECONDS;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: Option<String>,
}

impl ServicesHandler {
    /// Every key: id, name, createdAt, lastUsedAt (never the key or its hash).
    pub(super) async fn list_service_keys(&self, request: &HttpRequest) -> HttpResponse {
        match self.service_keys.list().await {
            Ok(keys) => respond::json(StatusCode::OK, &serde_json::json!({ "serviceKeys": keys })),
            Err(e) => respond::api_problem(request, &e, None),
        }
    }

    /// A new key, shown in this answer only.
    pub(super) async fn create_service_key(
        &self,
        request: &HttpRequest,
        who: &AdminActor,
    ) -> HttpResponse {
        let input: NewKey = match request::json(request) {
            Ok(input) => input,
            Err(e) => return respond::api_problem(request, &e, None),
        };
        match self
            .service_keys
            .create(input.name.as_deref().unwrap_or_default())
            .await
        {
            Ok((key, record)) => {
                tracing::debug!(key_id = %record.id, name = %record.name, "service key created");
                let mut entry = self.audit_entry(request, who, "serviceKey.create", None);
                entry.after = Some(record.id.clone());
                self.audit(entry);
                respond::json(
                    StatusCode::CREATED,
                    &serde_json::json!({
                        "id": record.id,
                        "name": record.name,
                        "createdAt": record.created_at,
                        "key": key.expose(),
                        "message": "Store this key now: it is shown once and kept only as a hash.",
                    }),
                )
            }
            Err(e) => {
                let fields = e.fields().and_then(|f| serde_json::to_value(f).ok());
                respond::api_problem(request, &e, fields)
            }
        }
    }

    /// Revokes key `id`: refused at once here, within the cache time elsewhere.
    pub(super) async fn revoke_service_key(
        &self,
        request: &HttpRequest,
        who: &AdminActor,
        id: &str,
    ) -> HttpResponse {
        match self.service_keys.revoke(id).await {
            Ok(true) => {
                tracing::debug!(key_id = %id, "service key revoked");
                let mut entry = self.audit_entry(request, who, "serviceKey.revoke", None);
                entry.before = Some(id.to_string());
                self.audit(entry);
                respond::json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "id": id,
                        "revoked": true,
                        "message": format!("The key is refused at once by the instance that answered, and by every other instance within {CACHE_SECONDS} seconds."),
                    }),
                )
            }
            Ok(false) => respond::api_problem(request, &RequestError::NotFound, None),
            Err(e) => respond::api_problem(request, &e, None),
        }
    }
}
