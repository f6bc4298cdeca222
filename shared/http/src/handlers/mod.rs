//! The handlers of the four functions. Each takes only what it uses.

mod jwks;
mod launch;
mod login;
mod services;

pub use jwks::JwksHandler;
pub use launch::LaunchHandler;
pub use login::LoginHandler;
pub use services::{
    canvas_json, DirectLaunchSettings, FormField, ServicesDeps, ServicesHandler, ToolSettings,
    OPENAPI_DOCUMENT, SERVICE_SCOPES,
};

use crate::request::RequestError;
use crate::respond;
use crate::{HttpRequest, HttpResponse};
use lti_core::config::{paths, ConfigError};

/// A function's request handler: what the Lambda glue and the dev server call.
#[async_trait::async_trait]
pub trait Handler: Send + Sync {
    /// Answers one request.
    async fn handle(&self, request: HttpRequest) -> HttpResponse;
}

macro_rules! handler {
    ($($t:ty),*) => {$(
        #[async_trait::async_trait]
        impl Handler for $t {
            async fn handle(&self, request: HttpRequest) -> HttpResponse {
                <$t>::handle(self, request).await
            }
        }
    )*};
}

handler!(LoginHandler, LaunchHandler, JwksHandler, ServicesHandler);

/// Answers every request of an unconfigured function: 503 naming what is missing.
pub fn not_configured(request: &HttpRequest, error: &ConfigError) -> HttpResponse {
    respond::problem(request, error)
}

/// The path of `request` relative to the tool's base path (API Gateway stages and
/// custom domains may put the tool under a prefix).
pub fn relative_path<'a>(request: &'a HttpRequest, base_path: &str) -> &'a str {
    let path = request.uri().path();
    let base = base_path.trim_end_matches('/');
    match path.strip_prefix(base) {
        Some(rest) if !base.is_empty() && rest.starts_with('/') => rest,
        _ => path,
    }
}

/// All four handlers behind one router: the dev server's tool, and a reference for
/// which path goes to which function in `template.yaml`.
pub struct ToolRouter {
    pub base_path: String,
    pub login: LoginHandler,
    pub launch: LaunchHandler,
    pub jwks: JwksHandler,
    pub services: ServicesHandler,
}

impl ToolRouter {
    /// Routes `request` to its handler.
    pub async fn handle(&self, request: HttpRequest) -> HttpResponse {
        let path = relative_path(&request, &self.base_path).to_string();
        match path.as_str() {
            paths::LOGIN => self.login.handle(request).await,
            paths::LAUNCH => self.launch.handle(request).await,
            paths::JWKS | paths::JWKS_ALT => self.jwks.handle(request).await,
            p if p == paths::CONFIG
                || p == paths::CONFIG_CANVAS
                || p == paths::REGISTER
                || p == paths::DEEP_LINK
                || p.starts_with("/lti/ags/")
                || p.starts_with("/lti/nrps/")
                || p.starts_with("/lti/services/")
                || p.starts_with("/admin/")
                || p.starts_with("/services/") =>
            {
                self.services.handle(request).await
            }
            _ => respond::problem(&request, &RequestError::NotFound),
        }
    }
}

/// The origins of the registrations of `issuer` (at most a few; none when the issuer is
/// missing, too long or unknown, or the store fails), with the configured
/// `LTI_FRAME_ANCESTORS`: who may frame an answer that failed before its registration
/// was known. Read only on refusals.
async fn framing_sources(
    config: &lti_core::config::ToolConfig,
    platforms: &dyn lti_core::platform::PlatformStore,
    issuer: Option<&str>,
) -> Vec<String> {
    let mut sources = Vec::new();
    if let Some(issuer) = issuer.filter(|i| !i.is_empty() && i.len() <= 2048) {
        if let Ok(found) = platforms.platforms_by_issuer(issuer, 4).await {
            for platform in &found {
                sources.extend(lti_core::storage::registration_origins(platform));
            }
        }
    }
    sources.extend(config.frame_ancestors.iter().cloned());
    sources
}

/// 405 with the methods the address takes (`allow`, e.g. `"GET, POST"`) in `Allow`.
fn method_not_allowed(request: &HttpRequest, allow: &'static str) -> HttpResponse {
    respond::problem(request, &not_allowed(request, allow))
}

/// [`method_not_allowed`] as JSON whatever the client accepts (APIs).
fn api_method_not_allowed(request: &HttpRequest, allow: &'static str) -> HttpResponse {
    respond::api_problem(request, &not_allowed(request, allow), None)
}

fn not_allowed(request: &HttpRequest, allow: &'static str) -> RequestError {
    RequestError::MethodNotAllowed {
        method: request.method().to_string(),
        allow,
    }
}
