//! The admin API's registrations: `GET|POST /admin/platforms`,
//! `GET|PUT|PATCH|DELETE /admin/platforms/{id}`; who may call it, and the audit line
//! each change writes. Deployments and routing rules of a registration are in
//! `admin_deployments.rs` and `admin_routes.rs`.

// A refusal is the response itself, built once per request: boxing it buys nothing.
#![allow(clippy::result_large_err)]

use super::ServicesHandler;
use crate::request::{self, RequestError};
use crate::{respond, GatewayIdentity, HttpRequest, HttpResponse};
use http::StatusCode;
use lti_core::config::AdminAuth;
use lti_core::error::{ErrorKind, Problem};
use lti_core::platform::{FieldError, InvalidPlatform, Platform, PlatformInput};
use lti_core::platform_cache::DEFAULT_TTL;
use lti_core::registration::audit::{AdminActor, AuditEntry};
use lti_core::registration::store::{DEFAULT_PAGE, MAX_PAGE};
use lti_core::registration::upsert::{store_registration, Change, StoreRegistrationError};
use lti_core::registration::{PageError, PageRequest};
use serde::Serialize;
use uuid::Uuid;

/// The admin API refused the call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    /// No admin token is configured, so the admin API is off.
    #[error("the admin API is disabled: set LTI_ADMIN_TOKEN to enable it")]
    Disabled,
    /// The bearer token is missing or wrong.
    #[error("a valid admin bearer token is required")]
    Unauthorized,
    /// IAM mode, and API Gateway passed no caller identity.
    #[error("the admin API requires a request signed with AWS credentials (SigV4)")]
    IamIdentityMissing,
    /// No registration has this id.
    #[error("no platform registration has this id")]
    PlatformNotFound,
    /// The registration has no such deployment.
    #[error("this registration has no such deployment")]
    DeploymentNotFound,
    /// The registration has no such routing rule.
    #[error("this registration has no such routing rule")]
    RouteNotFound,
    /// Query parameters out of range, every one listed.
    #[error("the query is invalid: {}", .0.iter().map(|f| format!("{} {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    InvalidQuery(Vec<FieldError>),
    /// A deployment to add is invalid.
    #[error("the deployment is invalid: {}", .0.iter().map(|f| format!("{} {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    InvalidDeployment(Vec<FieldError>),
}

impl Problem for AdminError {
    fn code(&self) -> &'static str {
        match self {
            Self::Disabled => "ADMIN_DISABLED",
            Self::Unauthorized | Self::IamIdentityMissing => "ADMIN_UNAUTHORIZED",
            Self::PlatformNotFound => "ADMIN_PLATFORM_NOT_FOUND",
            Self::DeploymentNotFound => "ADMIN_DEPLOYMENT_NOT_FOUND",
            Self::RouteNotFound => "ADMIN_ROUTE_NOT_FOUND",
            Self::InvalidQuery(_) => "ADMIN_INVALID_QUERY",
            Self::InvalidDeployment(_) => "ADMIN_INVALID_DEPLOYMENT",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Disabled => ErrorKind::Unavailable,
            Self::Unauthorized | Self::IamIdentityMissing => ErrorKind::SecurityCheck,
            Self::PlatformNotFound | Self::DeploymentNotFound | Self::RouteNotFound => {
                ErrorKind::NotFound
            }
            Self::InvalidQuery(_) | Self::InvalidDeployment(_) => ErrorKind::BadRequest,
        }
    }
    fn public_message(&self) -> String {
        lti_core::error::sentence(&self.to_string())
    }
}

/// An admin error as a JSON response, with its fields when it has some.
pub(super) fn admin_problem(request: &HttpRequest, error: &AdminError) -> HttpResponse {
    let fields = match error {
        AdminError::InvalidQuery(f) | AdminError::InvalidDeployment(f) => {
            serde_json::to_value(f).ok()
        }
        _ => None,
    };
    let mut response = respond::api_problem(request, error, fields);
    if matches!(error, AdminError::Unauthorized) {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// The sentence every change that stops launches answers with.
pub(super) fn propagation(what: &str) -> String {
    format!(
        "{what} at once on the instance that answered, and on every other instance within {DEFAULT_TTL} seconds (registrations, deployments and routing rules are cached that long)."
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SavedPlatform {
    #[serde(flatten)]
    platform: Platform,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment_id: Option<String>,
    user_identity: UserIdentity,
    /// When the change takes effect (updates), or that nothing changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// True when the registration already said exactly this: nothing was written.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unchanged: bool,
}

/// Whose users a registration's launches belong to, as the admin API reports it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserIdentity {
    /// The registration's user scope (see the README, "User identity").
    user_scope: String,
    /// Other registrations of the issuer with the same scope: they share app users.
    shares_users_with: Vec<String>,
    /// Other registrations of the issuer with another key set: never the same users.
    separate_from: Vec<String>,
    /// One sentence saying what this means.
    message: String,
}

use lti_core::registration::upsert::ISSUER_LIMIT as ADMIN_ISSUER_LIMIT;

fn user_identity(saved: &Platform, others: &[Platform]) -> UserIdentity {
    let scope = saved.effective_user_scope();
    let (mut shares, mut separate) = (Vec::new(), Vec::new());
    for other in others.iter().filter(|p| p.client_id != saved.client_id) {
        if other.effective_user_scope() == scope {
            shares.push(other.client_id.clone());
        } else {
            separate.push(other.client_id.clone());
        }
    }
    let message = if separate.is_empty() && shares.is_empty() {
        "Launches through this registration get app user ids of their own.".to_string()
    } else if separate.is_empty() {
        format!(
            "This issuer is also registered with the same key set (clientId {}): they vouch for the same users, so launches through either give the same app user ids.",
            shares.join(", ")
        )
    } else {
        format!(
            "This issuer is also registered with another key set (clientId {}): launches through this registration get their own app user ids and never those of the other registration{}.",
            separate.join(", "),
            if shares.is_empty() {
                String::new()
            } else {
                format!(" (they are shared with clientId {}, same key set)", shares.join(", "))
            }
        )
    };
    UserIdentity {
        user_scope: scope.to_string(),
        shares_users_with: shares,
        separate_from: separate,
        message,
    }
}

impl ServicesHandler {
    /// Who is calling the admin API, or the refusal as a response: the admin token
    /// (token mode), or the IAM identity API Gateway authenticated (IAM mode).
    pub(super) fn admin_caller(&self, request: &HttpRequest) -> Result<AdminActor, HttpResponse> {
        let outcome = match self.config.admin_auth {
            AdminAuth::Iam => request
                .extensions()
                .get::<GatewayIdentity>()
                .map(|id| AdminActor::Iam {
                    arn: id.arn.clone(),
                    account_id: id.account_id.clone(),
                })
                .ok_or(AdminError::IamIdentityMissing),
            AdminAuth::Token => match self.config.admin_token.as_ref() {
                None => Err(AdminError::Disabled),
                Some(expected) => match request::bearer(request) {
                    Some(token) if expected.matches(token) => Ok(AdminActor::token(token)),
                    _ => Err(AdminError::Unauthorized),
                },
            },
        };
        outcome.map_err(|e| admin_problem(request, &e))
    }

    /// Writes the audit line of one change.
    pub(super) fn audit(&self, entry: AuditEntry) {
        self.audit.record(&entry);
    }

    /// A new audit entry for `action` by `who`, stamped now.
    pub(super) fn audit_entry(
        &self,
        request: &HttpRequest,
        who: &AdminActor,
        action: &'static str,
        platform: Option<&Platform>,
    ) -> AuditEntry {
        let mut entry = AuditEntry::new(
            self.clock.now(),
            who.clone(),
            action,
            crate::request_id(request),
        );
        if let Some(p) = platform {
            entry.platform_id = Some(p.id.to_string());
            entry.issuer = Some(p.issuer.clone());
            entry.client_id = Some(p.client_id.clone());
        }
        entry
    }

    /// The registration `id` names, or a 404 response.
    pub(super) async fn platform_of(
        &self,
        request: &HttpRequest,
        id: &str,
    ) -> Result<Platform, HttpResponse> {
        let Ok(id) = Uuid::parse_str(id) else {
            return Err(admin_problem(request, &AdminError::PlatformNotFound));
        };
        match self.platforms.platform_by_id(id).await {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(admin_problem(request, &AdminError::PlatformNotFound)),
            Err(e) => Err(respond::api_problem(request, &e, None)),
        }
    }

    /// `GET /admin/platforms?limit=&cursor=&issuer=`: a page of registrations.
    pub(super) async fn list_platforms(&self, request: &HttpRequest) -> HttpResponse {
        #[derive(serde::Deserialize)]
        struct Query {
            limit: Option<String>,
            cursor: Option<String>,
            issuer: Option<String>,
        }
        let query: Query = match request::params(request) {
            Ok(q) => q,
            Err(e) => return respond::api_problem(request, &e, None),
        };
        let mut errors = Vec::new();
        let limit = match query.limit.as_deref().map(str::trim) {
            None | Some("") => DEFAULT_PAGE,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
                _ => {
                    errors.push(FieldError {
                        field: "limit".into(),
                        message: format!("must be a whole number from 1 to {MAX_PAGE}"),
                    });
                    DEFAULT_PAGE
                }
            },
        };
        let issuer = query.issuer.filter(|i| !i.trim().is_empty());
        if issuer
            .as_ref()
            .is_some_and(|i| i.len() > lti_core::limits::MAX_ISSUER_LEN)
        {
            errors.push(FieldError {
                field: "issuer".into(),
                message: format!("is longer than {} bytes", lti_core::limits::MAX_ISSUER_LEN),
            });
        }
        let page = PageRequest {
            issuer,
            limit,
            cursor: query.cursor.filter(|c| !c.is_empty()),
        };
        if errors.is_empty() {
            match self.platforms.platform_page(&page).await {
                Ok(page) => {
                    let mut body = serde_json::json!({ "platforms": page.platforms });
                    if let Some(next) = page.next_cursor {
                        body["nextCursor"] = serde_json::json!(next);
                    }
                    return respond::json(StatusCode::OK, &body);
                }
                Err(PageError::Store(e)) => return respond::api_problem(request, &e, None),
                Err(PageError::InvalidCursor) => errors.push(FieldError {
                    field: "cursor".into(),
                    message: "is not one this API returned for the same issuer filter".into(),
                }),
            }
        }
        admin_problem(request, &AdminError::InvalidQuery(errors))
    }

    /// `POST /admin/platforms`: creates or updates (issuer + clientId) a registration.
    pub(super) async fn create_platform(
        &self,
        request: &HttpRequest,
        who: &AdminActor,
    ) -> HttpResponse {
        let input: PlatformInput = match request::json(request) {
            Ok(input) => input,
            Err(e) => return respond::api_problem(request, &e, None),
        };
        self.store_platform(request, who, input, None).await
    }

    /// `GET /admin/platforms/{id}`.
    pub(super) async fn show_platform(&self, request: &HttpRequest, id: &str) -> HttpResponse {
        let platform = match self.platform_of(request, id).await {
            Ok(p) => p,
            Err(response) => return response,
        };
        let others = match self
            .platforms
            .platforms_by_issuer(&platform.issuer, ADMIN_ISSUER_LIMIT)
            .await
        {
            Ok(others) => others,
            Err(e) => return respond::api_problem(request, &e, None),
        };
        let identity = user_identity(&platform, &others);
        respond::json(
            StatusCode::OK,
            &SavedPlatform {
                platform,
                deployment_id: None,
                user_identity: identity,
                message: None,
                unchanged: false,
            },
        )
    }

    /// `PUT /admin/platforms/{id}` (every field, as for a creation) and
    /// `PATCH /admin/platforms/{id}` (a JSON merge patch: fields sent replace, `null`
    /// removes an optional one). `issuer` and `clientId` identify the registration and
    /// cannot change.
    pub(super) async fn replace_platform(
        &self,
        request: &HttpRequest,
        who: &AdminActor,
        id: &str,
        patch: bool,
    ) -> HttpResponse {
        let existing = match self.platform_of(request, id).await {
            Ok(p) => p,
            Err(response) => return response,
        };
        let input: Result<PlatformInput, RequestError> = if patch {
            merge_patch(request, &existing)
        } else {
            request::json(request)
        };
        let mut input = match input {
            Ok(input) => input,
            Err(e) => return respond::api_problem(request, &e, None),
        };
        let mut errors = Vec::new();
        for (field, sent, kept) in [
            ("issuer", &mut input.issuer, &existing.issuer),
            ("clientId", &mut input.client_id, &existing.client_id),
        ] {
            match sent.as_deref().map(str::trim) {
                None => *sent = Some(kept.clone()),
                Some(value) if value == kept => {}
                Some(_) => errors.push(FieldError {
                    field: field.into(),
                    message: "cannot change: it identifies the registration (remove it and add a new one)".into(),
                }),
            }
        }
        if !errors.is_empty() {
            let fields = serde_json::to_value(&errors).ok();
            return respond::api_problem(request, &InvalidPlatform(errors), fields);
        }
        self.store_platform(request, who, input, Some(existing))
            .await
    }

    /// `DELETE /admin/platforms/{id}`: the registration, its deployments and routing
    /// rules; its launches are refused from now on (here) or within the cache time.
    pub(super) async fn delete_platform(
        &self,
        request: &HttpRequest,
        who: &AdminActor,
        id: &str,
    ) -> HttpResponse {
        let platform = match self.platform_of(request, id).await {
            Ok(p) => p,
            Err(response) => return response,
        };
        match self.platforms.delete_platform(&platform).await {
            Ok(removed) => {
                let mut entry = self.audit_entry(request, who, "platform.delete", Some(&platform));
                entry.before = Some(platform.id.to_string());
                self.audit(entry);
                respond::json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "id": platform.id,
                        "issuer": platform.issuer,
                        "clientId": platform.client_id,
                        "deleted": true,
                        "deploymentsRemoved": removed.deployments,
                        "routesRemoved": removed.routes,
                        "cacheSeconds": DEFAULT_TTL,
                        "message": propagation("Launches through this registration are refused"),
                    }),
                )
            }
            Err(e) => respond::api_problem(request, &e, None),
        }
    }

    /// Validates and stores a registration: a new one, or `existing` updated (the
    /// same code Dynamic Registration stores with).
    async fn store_platform(
        &self,
        request: &HttpRequest,
        who: &AdminActor,
        input: PlatformInput,
        existing: Option<Platform>,
    ) -> HttpResponse {
        let change = Change {
            store: self.platforms.as_ref(),
            audit: self.audit.as_ref(),
            config: &self.config,
            now: self.clock.now(),
            who,
            request_id: crate::request_id(request),
        };
        match store_registration(&change, input, existing).await {
            Ok(stored) => {
                let identity = user_identity(&stored.platform, &stored.others);
                let status = if stored.created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                let message = if stored.unchanged {
                    Some("Nothing changed: the registration already says this.".to_string())
                } else {
                    (!stored.created).then(|| propagation("The updated registration is used"))
                };
                respond::json(
                    status,
                    &SavedPlatform {
                        platform: stored.platform,
                        deployment_id: stored.deployment_id,
                        user_identity: identity,
                        message,
                        unchanged: stored.unchanged,
                    },
                )
            }
            Err(StoreRegistrationError::Invalid(invalid)) => {
                let fields = serde_json::to_value(&invalid.0).ok();
                respond::api_problem(request, &invalid, fields)
            }
            Err(StoreRegistrationError::Store(e)) => respond::api_problem(request, &e, None),
        }
    }
}

/// The registration with a JSON merge patch (RFC 7396) applied: what `PATCH` stores.
fn merge_patch(request: &HttpRequest, existing: &Platform) -> Result<PlatformInput, RequestError> {
    let patch: serde_json::Value = if is_merge_patch(request) {
        if request.body().len() > request::MAX_BODY {
            return Err(RequestError::TooLarge(request::MAX_BODY));
        }
        serde_json::from_slice(request.body())
            .map_err(|e| RequestError::InvalidJson(e.to_string()))?
    } else {
        request::json(request)?
    };
    let serde_json::Value::Object(patch) = patch else {
        return Err(RequestError::InvalidJson(
            "a merge patch must be a JSON object".into(),
        ));
    };
    let mut merged = serde_json::to_value(PlatformInput::from(existing))
        .map_err(|e| RequestError::InvalidJson(e.to_string()))?;
    if let Some(target) = merged.as_object_mut() {
        for (name, value) in patch {
            if value.is_null() {
                target.remove(&name);
            } else {
                target.insert(name, value);
            }
        }
    }
    serde_json::from_value(merged).map_err(|e| RequestError::InvalidJson(e.to_string()))
}

fn is_merge_patch(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/merge-patch+json")
        })
}
