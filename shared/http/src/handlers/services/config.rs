//! `GET /lti/config` (admin): the values an LMS administrator pastes into the
//! platform — the tool's URLs, Moodle's form field by field, the Canvas developer-key
//! JSON, and for a direct-launch registration (`?issuer=…&clientId=…`) the three
//! values such a platform asks for. `GET /lti/config/canvas.json` (public): the
//! Canvas JSON alone, for Canvas's "Enter URL" (Canvas fetches it without
//! credentials; it holds only the tool's public URLs).

use super::ServicesHandler;
use crate::request::{self, RequestError};
use crate::{respond, HttpRequest, HttpResponse};
use http::StatusCode;
use lti_core::config::{paths, ToolConfig};
use lti_core::platform::LaunchProfile;
use serde::Serialize;
use serde_json::{json, Value};

/// The tool's name in the LMS.
pub const TOOL_TITLE: &str = "lti-lambda";

/// AGS and NRPS scopes the tool asks for (LTI AGS 2.0 §3.1, NRPS 2.0 §2.1).
pub const SERVICE_SCOPES: [&str; 5] = [
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
];

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
    /// The Canvas JSON's own address (for "Enter URL").
    pub canvas_config_url: String,
    /// Moodle's "Configure a tool manually" form, field by field, in its order.
    pub moodle: Vec<FormField>,
    /// The Canvas developer key, as JSON ("Paste JSON").
    pub canvas: Value,
    /// For a platform with the direct launch profile (asked for by issuer + clientId).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct_launch: Option<DirectLaunchSettings>,
}

/// One field of an LMS's form and what to put in it.
#[derive(Debug, Clone, Serialize)]
pub struct FormField {
    pub field: &'static str,
    pub value: String,
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

/// Moodle 4.x, Site administration → Plugins → Activity modules → External tool →
/// Manage tools → "configure a tool manually".
fn moodle_fields(config: &ToolConfig) -> Vec<FormField> {
    let field = |field, value: String| FormField { field, value };
    vec![
        field("Tool name", TOOL_TITLE.to_string()),
        field("Tool URL", config.launch_url()),
        field("LTI version", "LTI 1.3".into()),
        field("Public key type", "Keyset URL".into()),
        field("Public keyset", config.url(paths::JWKS)),
        field("Initiate login URL", config.url(paths::LOGIN)),
        field("Redirection URI(s)", config.launch_url()),
        field("Supports Deep Linking (Content-Item Message)", "Yes".into()),
        field("Content Selection URL", config.launch_url()),
        field(
            "IMS LTI Assignment and Grade Services",
            "Use this service for grade sync and column management".into(),
        ),
        field(
            "IMS LTI Names and Role Provisioning",
            "Use this service to retrieve members' information as per privacy settings".into(),
        ),
        field("Share launcher's name with tool", "Always".into()),
        field("Share launcher's email with tool", "Always".into()),
    ]
}

/// The Canvas LTI 1.3 developer key configuration ("Paste JSON" or "Enter URL"),
/// with the fields Canvas's JSON configuration takes: `title`, `description`,
/// `oidc_initiation_url`, `target_link_uri`, `public_jwk_url`, `scopes`, and one
/// `extensions` entry for `canvas.instructure.com` with the privacy level and the
/// placements (course navigation; link and assignment selection by deep linking).
pub fn canvas_json(config: &ToolConfig) -> Value {
    let launch = config.launch_url();
    let placement = |placement: &str, message_type: &str, text: &str| {
        json!({
            "placement": placement,
            "message_type": message_type,
            "target_link_uri": launch,
            "text": text,
        })
    };
    json!({
        "title": TOOL_TITLE,
        "description": "Launches into the app through lti-lambda (LTI 1.3, Deep Linking, AGS, NRPS).",
        "oidc_initiation_url": config.url(paths::LOGIN),
        "target_link_uri": launch,
        "public_jwk_url": config.url(paths::JWKS),
        "scopes": SERVICE_SCOPES,
        "extensions": [{
            "platform": "canvas.instructure.com",
            "domain": config.base_url.host_str().unwrap_or_default(),
            "tool_id": TOOL_TITLE,
            "privacy_level": "public",
            "settings": {
                "text": TOOL_TITLE,
                "placements": [
                    placement("course_navigation", "LtiResourceLinkRequest", TOOL_TITLE),
                    placement("link_selection", "LtiDeepLinkingRequest", TOOL_TITLE),
                    placement("assignment_selection", "LtiDeepLinkingRequest", TOOL_TITLE),
                ],
            },
        }],
        "custom_fields": {},
    })
}

impl ToolSettings {
    /// The settings of `config`.
    pub fn of(config: &ToolConfig) -> Self {
        Self {
            title: TOOL_TITLE,
            login_url: config.url(paths::LOGIN),
            redirect_url: config.launch_url(),
            target_link_uri: config.launch_url(),
            deep_link_url: config.launch_url(),
            jwks_url: config.url(paths::JWKS),
            domain: config.base_url.host_str().unwrap_or_default().to_string(),
            canvas_config_url: config.url(paths::CONFIG_CANVAS),
            moodle: moodle_fields(config),
            canvas: canvas_json(config),
            direct_launch: None,
        }
    }
}

impl ServicesHandler {
    /// The tool's values (admin); with `?issuer=…&clientId=…` of a direct-profile
    /// platform, also the three values such a platform asks for: launch URL, audience,
    /// landing URL.
    pub(super) async fn tool_settings(&self, request: &HttpRequest) -> HttpResponse {
        if let Err(denied) = self.admin_caller(request) {
            return denied;
        }
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

    /// The Canvas developer-key JSON alone (public).
    pub(super) fn canvas_config(&self) -> HttpResponse {
        let mut response = respond::json(StatusCode::OK, &canvas_json(&self.config));
        response.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("public, max-age=300"),
        );
        response
    }
}
