//! The services function: the tool's values for LMS admins (`GET /lti/config`), LTI
//! Dynamic Registration (`GET /lti/register`), the
//! admin API (`/admin/platforms…`, `/admin/service-keys`) and the app-facing services
//! (SERVICES-API.md). One file per API area; this one routes.

mod admin;
mod admin_deployments;
mod admin_routes;
mod ags;
mod config;
mod deep_link;
mod keys;
mod nrps;
mod register;

pub use config::{canvas_json, DirectLaunchSettings, FormField, ToolSettings, SERVICE_SCOPES};

use super::{api_method_not_allowed, method_not_allowed, relative_path};
use crate::request::{self, RequestError};
use crate::{respond, HttpRequest, HttpResponse};
use http::Method;
use lti_core::clock::Clock;
use lti_core::config::{paths, ToolConfig};
use lti_core::platform::PlatformStore;
use lti_core::random::Random;
use lti_core::registration::audit::{AuditSink, StdoutAudit};
use lti_core::registration::PlatformAdmin;
use lti_core::services::ags::Ags;
use lti_core::services::auth::{Caller, CourseServices, Presented, ServiceAuth};
use lti_core::services::keys::{ServiceKeyRecord, ServiceKeyStore, ServiceKeys};
use lti_core::services::nrps::Nrps;
use lti_core::services::outbound::PlatformHttp;
use lti_core::services::records::ServiceRecords;
use lti_core::services::token::{AccessTokens, ServiceTokenCache};
use lti_core::services::ServiceError;
use lti_core::signer::Signer;
use lti_core::user::UserStore;
use std::sync::Arc;

/// What the services function is built from.
pub struct ServicesDeps {
    pub config: Arc<ToolConfig>,
    /// Registrations (read by the services, managed by the admin API).
    pub platforms: Arc<dyn PlatformAdmin>,
    pub service_key_store: Arc<dyn ServiceKeyStore>,
    pub records: Arc<dyn ServiceRecords>,
    /// The tool's key: verifies app tokens, signs client assertions and deep-linking
    /// responses.
    pub signer: Arc<dyn Signer>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    /// Calls to platforms (token endpoint, AGS, NRPS).
    pub http: Arc<dyn PlatformHttp>,
    /// Platform access tokens shared across instances.
    pub token_cache: Arc<dyn ServiceTokenCache>,
    /// The app's users (an app user id in a call is mapped back to the platform's).
    pub users: Arc<dyn UserStore>,
}

/// A services call, authenticated: its key, on whose behalf, and its course.
pub(crate) struct Call {
    #[allow(dead_code)]
    pub key: ServiceKeyRecord,
    pub caller: Caller,
    pub course: CourseServices,
}

/// The services function's handler.
#[derive(Clone)]
pub struct ServicesHandler {
    pub config: Arc<ToolConfig>,
    pub platforms: Arc<dyn PlatformAdmin>,
    /// Where the admin API's audit lines go (one JSON line per change; standard
    /// output by default).
    pub audit: Arc<dyn AuditSink>,
    pub clock: Arc<dyn Clock>,
    /// Service keys (admin API) — also inside `auth`.
    pub service_keys: Arc<ServiceKeys>,
    /// Who may call the app-facing services.
    pub auth: Arc<ServiceAuth>,
    /// What launches recorded; one-time answers.
    pub records: Arc<dyn ServiceRecords>,
    /// The tool's key (deep-linking responses, client assertions).
    pub signer: Arc<dyn Signer>,
    pub random: Arc<dyn Random>,
    /// AGS calls to platforms.
    pub ags_calls: Arc<Ags>,
    /// NRPS calls to platforms.
    pub nrps_calls: Arc<Nrps>,
    pub users: Arc<dyn UserStore>,
    /// Calls to platforms outside the services (Dynamic Registration).
    pub http: Arc<dyn PlatformHttp>,
}

impl ServicesHandler {
    /// The handler built from `deps`.
    pub fn new(deps: ServicesDeps) -> Self {
        let service_keys = Arc::new(ServiceKeys::new(
            deps.service_key_store,
            deps.clock.clone(),
            deps.random.clone(),
        ));
        let http = deps.http.clone();
        let tokens = Arc::new(AccessTokens::new(
            deps.http,
            deps.signer.clone(),
            deps.token_cache,
            deps.clock.clone(),
            deps.random.clone(),
        ));
        let auth = Arc::new(ServiceAuth {
            config: deps.config.clone(),
            keys: service_keys.clone(),
            signer: deps.signer.clone(),
            records: deps.records.clone(),
            platforms: deps.platforms.clone() as Arc<dyn PlatformStore>,
            clock: deps.clock.clone(),
            launches: Default::default(),
        });
        Self {
            config: deps.config,
            platforms: deps.platforms,
            audit: Arc::new(StdoutAudit),
            clock: deps.clock,
            service_keys,
            auth,
            records: deps.records,
            signer: deps.signer.clone(),
            random: deps.random.clone(),
            ags_calls: Arc::new(Ags::new(tokens.clone())),
            nrps_calls: Arc::new(Nrps::new(tokens)),
            users: deps.users,
            http,
        }
    }

    /// Routes a services request.
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
        let path = relative_path(&request, self.config.base_url.path()).to_string();
        let method = request.method().clone();
        match path.as_str() {
            paths::CONFIG => match method {
                Method::GET => self.tool_settings(&request).await,
                _ => method_not_allowed(&request, "GET"),
            },
            paths::CONFIG_CANVAS => match method {
                Method::GET => self.canvas_config(),
                _ => method_not_allowed(&request, "GET"),
            },
            paths::REGISTER => match method {
                Method::GET => self.dynamic_registration(&request).await,
                _ => method_not_allowed(&request, "GET"),
            },
            paths::OPENAPI => match method {
                Method::GET => openapi(),
                _ => api_method_not_allowed(&request, "GET"),
            },
            p if p.starts_with("/lti/ags/") => self.ags(&request, p).await,
            p if p.starts_with("/lti/nrps/") => self.nrps(&request, p).await,
            paths::DEEP_LINK => match method {
                Method::POST => self.deep_link(&request).await,
                _ => api_method_not_allowed(&request, "POST"),
            },
            p if p == paths::ADMIN_PLATFORMS || p.starts_with("/admin/platforms/") => {
                let who = match self.admin_caller(&request) {
                    Ok(who) => who,
                    Err(denied) => return denied,
                };
                self.admin_platforms(&request, &who, &p[paths::ADMIN_PLATFORMS.len()..])
                    .await
            }
            paths::ADMIN_SERVICE_KEYS => {
                let who = match self.admin_caller(&request) {
                    Ok(who) => who,
                    Err(denied) => return denied,
                };
                match method {
                    Method::GET => self.list_service_keys(&request).await,
                    Method::POST => self.create_service_key(&request, &who).await,
                    _ => api_method_not_allowed(&request, "GET, POST"),
                }
            }
            p if p.starts_with(paths::ADMIN_SERVICE_KEYS)
                && p[paths::ADMIN_SERVICE_KEYS.len()..].starts_with('/') =>
            {
                let who = match self.admin_caller(&request) {
                    Ok(who) => who,
                    Err(denied) => return denied,
                };
                let id = &p[paths::ADMIN_SERVICE_KEYS.len() + 1..];
                match method {
                    Method::DELETE if !id.is_empty() && !id.contains('/') => {
                        self.revoke_service_key(&request, &who, id).await
                    }
                    Method::DELETE => respond::api_problem(&request, &RequestError::NotFound, None),
                    _ => api_method_not_allowed(&request, "DELETE"),
                }
            }
            _ => respond::problem(&request, &RequestError::NotFound),
        }
    }

    /// Authenticates a services call and finds its course.
    pub(crate) async fn call(&self, request: &HttpRequest) -> Result<Call, ServiceError> {
        let (key, caller) = self.auth.caller(presented(request)).await?;
        let course = self.auth.course(&caller).await?;
        Ok(Call {
            key,
            caller,
            course,
        })
    }

    /// The platform's user id for `user_id`, which may be the app user id (the `sub`
    /// of app tokens) of a user of this registration.
    pub(crate) async fn platform_user_id(
        &self,
        call: &Call,
        user_id: &str,
    ) -> Result<String, ServiceError> {
        if let Caller::Launch(launch) = &call.caller {
            if user_id == launch.user_id {
                return Ok(launch.sub.clone());
            }
        }
        if uuid::Uuid::parse_str(user_id).is_ok() {
            if let Some(user) = self.users.user(user_id).await? {
                let platform = &call.course.platform;
                if user.issuer == platform.issuer
                    && user.user_scope == platform.effective_user_scope()
                {
                    return Ok(user.sub);
                }
            }
        }
        Ok(user_id.to_string())
    }

    /// Routes `/admin/platforms{rest}` for an authenticated admin.
    async fn admin_platforms(
        &self,
        request: &HttpRequest,
        who: &lti_core::registration::audit::AdminActor,
        rest: &str,
    ) -> HttpResponse {
        let method = request.method().clone();
        let segments: Vec<&str> = if rest.is_empty() {
            vec![]
        } else {
            match rest.strip_prefix('/') {
                Some(tail) => tail.split('/').collect(),
                None => return respond::api_problem(request, &RequestError::NotFound, None),
            }
        };
        match (segments.as_slice(), &method) {
            ([], &Method::GET) => self.list_platforms(request).await,
            ([], &Method::POST) => self.create_platform(request, who).await,
            ([id], &Method::GET) => self.show_platform(request, id).await,
            ([id], &Method::PUT) => self.replace_platform(request, who, id, false).await,
            ([id], &Method::PATCH) => self.replace_platform(request, who, id, true).await,
            ([id], &Method::DELETE) => self.delete_platform(request, who, id).await,
            ([id, "deployments"], &Method::GET) => self.list_deployments(request, id).await,
            ([id, "deployments"], &Method::POST) => self.add_deployment(request, who, id).await,
            ([id, "deployments", deployment], &Method::DELETE) => {
                match percent_encoding::percent_decode_str(deployment).decode_utf8() {
                    Ok(deployment) if !deployment.is_empty() => {
                        self.remove_deployment(request, who, id, &deployment).await
                    }
                    _ => respond::api_problem(request, &RequestError::NotFound, None),
                }
            }
            ([id, "routes"], &Method::GET) => self.list_routes(request, id).await,
            ([id, "routes"], &Method::POST) => self.add_route(request, who, id).await,
            ([id, "routes", route], &Method::DELETE) => {
                self.remove_route(request, who, id, route).await
            }
            ([], _) | ([_, "deployments" | "routes"], _) => {
                api_method_not_allowed(request, "GET, POST")
            }
            ([_], _) => api_method_not_allowed(request, "GET, PUT, PATCH, DELETE"),
            ([_, "deployments" | "routes", _], _) => api_method_not_allowed(request, "DELETE"),
            _ => respond::api_problem(request, &RequestError::NotFound, None),
        }
    }
}

/// What a services call presented: `x-api-key`, the bearer, and for backend jobs the
/// `platformId` and `contextId` query parameters.
fn presented(request: &HttpRequest) -> Presented<'_> {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(request.uri().query().unwrap_or("")).unwrap_or_default();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    Presented {
        api_key: request
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok()),
        bearer: request::bearer(request),
        platform_id: param("platformId"),
        context_id: param("contextId"),
    }
}

/// The query string as `T` (unknown parameters ignored); a bad value is a 400.
fn query_of<T: serde::de::DeserializeOwned>(request: &HttpRequest) -> Result<T, ServiceError> {
    serde_urlencoded::from_str(request.uri().query().unwrap_or("")).map_err(|e| {
        ServiceError::Invalid(vec![lti_core::platform::FieldError {
            field: "query".into(),
            message: format!("cannot be read: {e}"),
        }])
    })
}

/// A services error as JSON, with its invalid fields and `Retry-After` when known.
fn service_problem(request: &HttpRequest, error: &ServiceError) -> HttpResponse {
    let fields = error.fields().and_then(|f| serde_json::to_value(f).ok());
    let mut response = respond::api_problem(request, error, fields);
    if matches!(error, ServiceError::KeyInvalid) {
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("ApiKey header=\"x-api-key\""),
        );
    }
    response
}

/// The OpenAPI 3.1 document of the app-facing API (`openapi.json` next to this file).
pub const OPENAPI_DOCUMENT: &str = include_str!("openapi.json");

fn openapi() -> HttpResponse {
    let mut response = crate::respond::json_text(http::StatusCode::OK, OPENAPI_DOCUMENT);
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("public, max-age=3600"),
    );
    response
}
