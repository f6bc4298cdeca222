//! `GET /lti/config`: the values an LMS administrator pastes into the platform.

use super::ServicesHandler;
use crate::request::{self, RequestError};
use crate::{respond, HttpRequest, HttpResponse};
use http::StatusCode;
use lti_core::config::{paths, ToolConfig};
use lti_core::platform::LaunchProfile;
use serde::Serialize;

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

impl ServicesHandler {
    /// The tool's values; with `?issuer=…&clientId=…` of a direct-profile platform, also
    /// the three values such a platform asks for: launch URL, audience, landing URL.
    pub(super) async fn tool_settings(&self, request: &HttpRequest) -> HttpResponse {
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
}
