//! The services function: tool configuration for LMS admins (`GET /lti/config`) and
//! the admin API (`/admin/platforms`). Deep Linking, AGS and NRPS join it later.

use super::{method_not_allowed, relative_path};
use crate::request::{self, RequestError};
use crate::{respond, HttpRequest, HttpResponse};
use http::{Method, StatusCode};
use lti_core::clock::Clock;
use lti_core::config::{paths, ToolConfig};
use lti_core::error::{ErrorKind, Problem};
use lti_core::platform::{Deployment, LaunchProfile, Platform, PlatformInput, PlatformStore};
use serde::Serialize;
use std::sync::Arc;

/// The services function's handler.
#[derive(Clone)]
pub struct ServicesHandler {
    pub config: Arc<ToolConfig>,
    pub platforms: Arc<dyn PlatformStore>,
    pub clock: Arc<dyn Clock>,
}

/// The admin API refused the caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    /// No admin token is configured, so the admin API is off.
    #[error("the admin API is disabled: set LTI_ADMIN_TOKEN to enable it")]
    Disabled,
    /// The bearer token is missing or wrong.
    #[error("a valid admin bearer token is required")]
    Unauthorized,
}

impl Problem for AdminError {
    fn code(&self) -> &'static str {
        match self {
            Self::Disabled => "ADMIN_DISABLED",
            Self::Unauthorized => "ADMIN_UNAUTHORIZED",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Disabled => ErrorKind::Unavailable,
            Self::Unauthorized => ErrorKind::SecurityCheck,
        }
    }
    fn public_message(&self) -> String {
        lti_core::error::sentence(&self.to_string())
    }
}

/// The values an LMS administrator pastes into the platform.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSettings {
    pub title: &'static str,
    pub login_url: String,
    pub redirect_url: String,
    pub target_link_uri: String,
    pub deep_link_url: String,
    pub jwks_url: String,
    pub domain: String,
    /// For a platform with the direct launch profile (asked for by issuer + clientId).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_launch: Option<DirectLaunchSettings>,
}

/// What a direct-launch platform (TimeBack) asks the tool for at registration.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectLaunchSettings {
    pub launch_url: String,
    pub audience: String,
    pub landing_url: String,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigQuery {
    issuer: Option<String>,
    client_id: Option<String>,
}

impl ToolSettings {
    /// The settings of `config`.
    pub fn of(config: &ToolConfig) -> Self {
        Self {
            title: "lti-lambda",
            login_url: config.url(paths::LOGIN),
            redirect_url: config.launch_url(),
            target_link_uri: config.launch_url(),
            deep_link_url: config.launch_url(),
            jwks_url: config.url(paths::JWKS),
            domain: config.base_url.host_str().unwrap_or_default().to_string(),
            direct_launch: None,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SavedPlatform {
    #[serde(flatten)]
    platform: Platform,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment_id: Option<String>,
}

impl ServicesHandler {
    /// Routes a services request.
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
        let path = relative_path(&request, self.config.base_url.path()).to_string();
        match (request.method(), path.as_str()) {
            (&Method::GET, paths::CONFIG) => self.tool_settings(&request).await,
            (_, paths::CONFIG) => method_not_allowed(&request),
            (method, paths::ADMIN_PLATFORMS) => {
                if let Err(e) = self.authorize(&request) {
                    let mut response = respond::api_problem(&request, &e, None);
                    if matches!(e, AdminError::Unauthorized) {
                        response.headers_mut().insert(
                            http::header::WWW_AUTHENTICATE,
                            http::HeaderValue::from_static("Bearer"),
                        );
                    }
                    return response;
                }
                match *method {
                    Method::GET => self.list_platforms(&request).await,
                    Method::POST => self.save_platform(&request).await,
                    _ => respond::api_problem(
                        &request,
                        &RequestError::MethodNotAllowed(method.to_string()),
                        None,
                    ),
                }
            }
            _ => respond::problem(&request, &RequestError::NotFound),
        }
    }

    /// The tool's values; with `?issuer=…&clientId=…` of a direct-profile platform, also
    /// the three values such a platform asks for: launch URL, audience, landing URL.
    async fn tool_settings(&self, request: &HttpRequest) -> HttpResponse {
        let mut settings = ToolSettings::of(&self.config);
        let query: ConfigQuery = match request::params(request) {
            Ok(q) => q,
            Err(e) => return respond::api_problem(request, &e, None),
        };
        if let (Some(issuer), Some(client_id)) = (query.issuer, query.client_id) {
            match self.platforms.platform(&issuer, &client_id).await {
                Ok(Some(p)) if p.launch_profile == LaunchProfile::Direct => {
                    settings.direct_launch = Some(DirectLaunchSettings {
                        launch_url: self.config.launch_url(),
                        audience: p.audience.unwrap_or_default(),
                        landing_url: p
                            .landing_url
                            .unwrap_or_else(|| self.config.app_landing_url.to_string()),
                    });
                }
                Ok(_) => {
                    return respond::api_problem(request, &RequestError::NotFound, None);
                }
                Err(e) => return respond::api_problem(request, &e, None),
            }
        }
        respond::json(StatusCode::OK, &settings)
    }

    fn authorize(&self, request: &HttpRequest) -> Result<(), AdminError> {
        let expected = self
            .config
            .admin_token
            .as_ref()
            .ok_or(AdminError::Disabled)?;
        match request::bearer(request) {
            Some(token) if expected.matches(token) => Ok(()),
            _ => Err(AdminError::Unauthorized),
        }
    }

    async fn list_platforms(&self, request: &HttpRequest) -> HttpResponse {
        match self.platforms.list_platforms().await {
            Ok(platforms) => respond::json(
                StatusCode::OK,
                &serde_json::json!({ "platforms": platforms }),
            ),
            Err(e) => respond::api_problem(request, &e, None),
        }
    }

    async fn save_platform(&self, request: &HttpRequest) -> HttpResponse {
        let input: PlatformInput = match request::json(request) {
            Ok(input) => input,
            Err(e) => return respond::api_problem(request, &e, None),
        };
        let now = self.clock.now();
        let registration = match input.validate(now, &self.config) {
            Ok(r) => r,
            Err(invalid) => {
                let fields = serde_json::to_value(&invalid.0).ok();
                return respond::api_problem(request, &invalid, fields);
            }
        };
        let existed = match self
            .platforms
            .platform(
                &registration.platform.issuer,
                &registration.platform.client_id,
            )
            .await
        {
            Ok(existing) => existing.is_some(),
            Err(e) => return respond::api_problem(request, &e, None),
        };
        // The deployment first: if saving the platform then fails, a retry of the
        // same request completes the registration (both writes are idempotent).
        if let Some(deployment_id) = &registration.deployment_id {
            let deployment = Deployment {
                issuer: registration.platform.issuer.clone(),
                client_id: registration.platform.client_id.clone(),
                deployment_id: deployment_id.clone(),
                created_at: now,
            };
            if let Err(e) = self.platforms.save_deployment(deployment).await {
                return respond::api_problem(request, &e, None);
            }
        }
        match self.platforms.save_platform(registration.platform).await {
            Ok(platform) => {
                tracing::info!(issuer = %platform.issuer, client_id = %platform.client_id, created = !existed, "platform saved");
                let status = if existed {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                };
                respond::json(
                    status,
                    &SavedPlatform {
                        platform,
                        deployment_id: registration.deployment_id,
                    },
                )
            }
            Err(e) => respond::api_problem(request, &e, None),
        }
    }
}
