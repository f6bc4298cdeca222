//! The tool's registration request (LTI Dynamic Registration 1.0 §3.6.1): an OpenID
//! Connect client registration with the LTI tool configuration, shaped by what the
//! platform said it supports — only the message types, placements and service scopes
//! it offers — and, for Canvas, Canvas's own extension members.

use super::configuration::{PlatformConfiguration, DEEP_LINKING, RESOURCE_LINK};
use crate::config::{paths, ToolConfig};
use serde_json::{json, Map, Value};

/// The tool configuration member of a registration and of its answer.
pub const TOOL_CONFIGURATION: &str = "https://purl.imsglobal.org/spec/lti-tool-configuration";
/// Canvas's privacy level extension: `public` shares names and emails.
pub const CANVAS_PRIVACY_LEVEL: &str = "https://canvas.instructure.com/lti/privacy_level";

/// The claims the tool asks platforms to include in id_tokens.
pub const CLAIMS: [&str; 6] = ["iss", "sub", "name", "given_name", "family_name", "email"];

/// Placements the tool would like for resource links, in the spec's vocabulary and
/// Canvas's; only those the platform offers for the message are asked for.
const RESOURCE_LINK_PLACEMENTS: [&str; 2] = ["ContentArea", "course_navigation"];
/// Placements the tool would like for deep linking (adding content).
const DEEP_LINKING_PLACEMENTS: [&str; 4] = [
    "ContentArea",
    "RichTextEditor",
    "link_selection",
    "assignment_selection",
];

/// How the tool presents itself.
#[derive(Debug, Clone, Copy)]
pub struct ToolDescription<'a> {
    /// `client_name`, and the label of its links.
    pub name: &'a str,
    /// The AGS and NRPS scopes the tool would use; the platform's offer limits them.
    pub scopes: &'a [&'a str],
    /// `logo_uri`, when the tool has one.
    pub logo_url: Option<&'a str>,
}

/// The scopes to ask for: the tool's, limited to those the platform lists (all of
/// them when it lists none: the platform then grants what it has).
pub fn scopes(tool: &ToolDescription<'_>, platform: &PlatformConfiguration) -> Vec<String> {
    tool.scopes
        .iter()
        .filter(|s| {
            platform
                .scopes_supported
                .as_ref()
                .is_none_or(|offered| offered.iter().any(|o| o == *s))
        })
        .map(|s| s.to_string())
        .collect()
}

/// The registration request body for `platform`.
pub fn registration(
    config: &ToolConfig,
    tool: &ToolDescription<'_>,
    platform: &PlatformConfiguration,
) -> Value {
    let launch = config.launch_url();
    let mut messages = Vec::new();
    for (message_type, label, wanted) in [
        (
            RESOURCE_LINK,
            tool.name.to_string(),
            &RESOURCE_LINK_PLACEMENTS[..],
        ),
        (
            DEEP_LINKING,
            format!("{} content", tool.name),
            &DEEP_LINKING_PLACEMENTS[..],
        ),
    ] {
        let Some(supported) = platform.message(message_type) else {
            continue;
        };
        let mut message = json!({
            "type": message_type,
            "target_link_uri": launch,
            "label": label,
        });
        let placements: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|p| supported.placements.iter().any(|s| s == p))
            .collect();
        if !placements.is_empty() {
            message["placements"] = json!(placements);
        }
        messages.push(message);
    }
    let mut tool_configuration = json!({
        "domain": domain(config),
        "target_link_uri": launch,
        "claims": CLAIMS,
        "messages": messages,
    });
    if platform.is_canvas() {
        tool_configuration[CANVAS_PRIVACY_LEVEL] = json!("public");
    }
    let mut body = Map::new();
    body.insert("application_type".into(), json!("web"));
    body.insert("response_types".into(), json!(["id_token"]));
    body.insert(
        "grant_types".into(),
        json!(["implicit", "client_credentials"]),
    );
    body.insert("initiate_login_uri".into(), json!(config.url(paths::LOGIN)));
    body.insert("redirect_uris".into(), json!([launch]));
    body.insert("client_name".into(), json!(tool.name));
    body.insert("jwks_uri".into(), json!(config.url(paths::JWKS)));
    if let Some(logo) = tool.logo_url {
        body.insert("logo_uri".into(), json!(logo));
    }
    body.insert(
        "token_endpoint_auth_method".into(),
        json!("private_key_jwt"),
    );
    body.insert("scope".into(), json!(scopes(tool, platform).join(" ")));
    body.insert(TOOL_CONFIGURATION.into(), tool_configuration);
    Value::Object(body)
}

/// The tool's domain: its host, with the port when the base URL names one.
pub fn domain(config: &ToolConfig) -> String {
    let host = config.base_url.host_str().unwrap_or_default();
    match config.base_url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registration::dynamic::configuration::MessageSupported;

    fn config() -> ToolConfig {
        ToolConfig::from_lookup(|name| match name {
            "LTI_BASE_URL" => Some("https://tool.example/prod".into()),
            "LTI_APP_LANDING_URL" => Some("https://app.example/lti".into()),
            _ => None,
        })
        .expect("config")
    }

    fn platform(family: &str, messages: Vec<MessageSupported>) -> PlatformConfiguration {
        PlatformConfiguration {
            issuer: "https://lms.example.edu".into(),
            authorization_endpoint: "https://lms.example.edu/auth".into(),
            token_endpoint: "https://lms.example.edu/token".into(),
            jwks_uri: "https://lms.example.edu/jwks".into(),
            registration_endpoint: "https://lms.example.edu/register".into(),
            scopes_supported: Some(vec![
                "openid".into(),
                "https://purl.imsglobal.org/spec/lti-ags/scope/score".into(),
            ]),
            authorization_server: None,
            product_family_code: Some(family.into()),
            version: None,
            messages_supported: messages,
            extras: Map::new(),
        }
    }

    const TOOL: ToolDescription<'static> = ToolDescription {
        name: "lti-lambda",
        scopes: &[
            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
            "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
        ],
        logo_url: None,
    };

    fn message(t: &str, placements: &[&str]) -> MessageSupported {
        MessageSupported {
            message_type: t.into(),
            placements: placements.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn the_request_has_every_member_the_spec_requires() {
        let body = registration(
            &config(),
            &TOOL,
            &platform("moodle", vec![message(RESOURCE_LINK, &[])]),
        );
        assert_eq!(body["application_type"], "web");
        assert_eq!(body["response_types"], json!(["id_token"]));
        assert_eq!(
            body["grant_types"],
            json!(["implicit", "client_credentials"])
        );
        assert_eq!(
            body["initiate_login_uri"],
            "https://tool.example/prod/lti/login"
        );
        assert_eq!(
            body["redirect_uris"],
            json!(["https://tool.example/prod/lti/launch"])
        );
        assert_eq!(
            body["jwks_uri"],
            "https://tool.example/prod/.well-known/jwks.json"
        );
        assert_eq!(body["token_endpoint_auth_method"], "private_key_jwt");
        assert_eq!(body["client_name"], "lti-lambda");
        assert!(body.get("logo_uri").is_none());
        let tc = &body[TOOL_CONFIGURATION];
        assert_eq!(tc["domain"], "tool.example");
        assert_eq!(
            tc["target_link_uri"],
            "https://tool.example/prod/lti/launch"
        );
        assert_eq!(tc["claims"], json!(CLAIMS));
        assert!(tc.get(CANVAS_PRIVACY_LEVEL).is_none());
    }

    #[test]
    fn only_what_the_platform_offers_is_asked_for() {
        let body = registration(
            &config(),
            &TOOL,
            &platform("moodle", vec![message(RESOURCE_LINK, &[])]),
        );
        // The NRPS scope is not offered; deep linking is not supported.
        assert_eq!(
            body["scope"],
            "https://purl.imsglobal.org/spec/lti-ags/scope/score"
        );
        let messages = body[TOOL_CONFIGURATION]["messages"]
            .as_array()
            .expect("messages");
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0]["type"], RESOURCE_LINK);
        assert_eq!(messages[0]["label"], "lti-lambda");
        assert!(messages[0].get("placements").is_none());
    }

    #[test]
    fn canvas_gets_its_placements_and_privacy_level() {
        let body = registration(
            &config(),
            &TOOL,
            &platform(
                "canvas",
                vec![
                    message(RESOURCE_LINK, &["course_navigation", "account_navigation"]),
                    message(DEEP_LINKING, &["link_selection", "editor_button"]),
                ],
            ),
        );
        let tc = &body[TOOL_CONFIGURATION];
        assert_eq!(tc[CANVAS_PRIVACY_LEVEL], "public");
        assert_eq!(
            tc["messages"][0]["placements"],
            json!(["course_navigation"])
        );
        assert_eq!(tc["messages"][1]["type"], DEEP_LINKING);
        assert_eq!(tc["messages"][1]["label"], "lti-lambda content");
        assert_eq!(tc["messages"][1]["placements"], json!(["link_selection"]));
    }
}
