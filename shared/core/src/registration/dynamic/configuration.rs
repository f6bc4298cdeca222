//! The platform's OpenID configuration (LTI Dynamic Registration 1.0 §3.4–3.5): what
//! the tool reads from it, checked — the issuer on the configuration's own site, the
//! endpoints present, RS256 id_tokens and resource link launches supported.
//!
//! Platforms differ in shape, and each difference is read leniently where the meaning
//! is clear: `messages_supported` as objects (`{"type": …, "placements": […]}`, the
//! spec, Canvas) or as plain strings (Moodle 4.x); Moodle 3.10's
//! `"LtiResourceLink"` for `LtiResourceLinkRequest` and its platform-configuration key
//! with a trailing space.

use super::error::DynRegError;
use crate::config::origin_of;
use crate::platform::FieldError;
use serde::Serialize;
use serde_json::{Map, Value};
use url::Url;

/// The platform-configuration member of the OpenID configuration.
pub const PLATFORM_CONFIGURATION: &str =
    "https://purl.imsglobal.org/spec/lti-platform-configuration";
/// The resource link launch message.
pub const RESOURCE_LINK: &str = "LtiResourceLinkRequest";
/// The deep-linking request message.
pub const DEEP_LINKING: &str = "LtiDeepLinkingRequest";

/// A message type the platform supports, with the placements it offers for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageSupported {
    #[serde(rename = "type")]
    pub message_type: String,
    /// Empty when the platform names none.
    pub placements: Vec<String>,
}

/// What the tool uses of a platform's OpenID configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformConfiguration {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub registration_endpoint: String,
    /// `None` when the platform lists none.
    pub scopes_supported: Option<Vec<String>>,
    /// The `aud` of client assertions when not the token endpoint (Brightspace).
    pub authorization_server: Option<String>,
    /// `moodle`, `canvas`, `desire2learn`, `sakai`…
    pub product_family_code: Option<String>,
    pub version: Option<String>,
    pub messages_supported: Vec<MessageSupported>,
    /// The product family's own members of the platform configuration (Canvas's
    /// `https://canvas.instructure.com/lti/account_name`…), kept as sent.
    pub extras: Map<String, Value>,
}

impl PlatformConfiguration {
    /// The platform's support for `message_type`, if any.
    pub fn message(&self, message_type: &str) -> Option<&MessageSupported> {
        self.messages_supported
            .iter()
            .find(|m| m.message_type == message_type)
    }

    /// True for Canvas (its own placements and privacy extension apply).
    pub fn is_canvas(&self) -> bool {
        self.product_family_code.as_deref() == Some("canvas")
    }

    /// A name for the registration: Canvas's account name, else the product and the
    /// issuer's host ("Moodle lms.example.edu"), at most 255 bytes.
    pub fn display_name(&self) -> String {
        let host = Url::parse(&self.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| self.issuer.clone());
        let canvas_account = self
            .extras
            .get("https://canvas.instructure.com/lti/account_name")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty());
        let name = match (canvas_account, self.product_family_code.as_deref()) {
            (Some(account), _) => format!("Canvas {account}"),
            (None, Some(code)) => format!("{} {host}", product_name(code)),
            (None, None) => host,
        };
        let mut name: String = name.chars().filter(|c| !c.is_control()).collect();
        if name.len() > crate::limits::MAX_ID_LEN {
            let mut cut = crate::limits::MAX_ID_LEN;
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            name.truncate(cut);
        }
        name
    }
}

/// The product a `product_family_code` names, as people call it.
pub fn product_name(code: &str) -> String {
    match code {
        "moodle" => "Moodle".into(),
        "canvas" => "Canvas".into(),
        "desire2learn" | "d2l" | "brightspace" => "Brightspace".into(),
        "sakai" => "Sakai".into(),
        "blackboard" | "BlackboardLearn" => "Blackboard".into(),
        "schoology" => "Schoology".into(),
        other => other.chars().take(60).collect(),
    }
}

/// Reads the OpenID configuration `body` fetched from `url` (after any redirect within
/// its site), and checks it as the spec asks.
pub fn read(body: &[u8], url: &Url) -> Result<PlatformConfiguration, DynRegError> {
    let host = url.host_str().unwrap_or_default().to_string();
    let body = body
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(body);
    let document: Value = serde_json::from_slice(body).map_err(|e| {
        let detail = if body.is_empty() {
            "the answer is empty".to_string()
        } else if e.is_syntax() || e.is_eof() {
            "the answer is not JSON".to_string()
        } else {
            "the answer cannot be read as JSON".to_string()
        };
        DynRegError::ConfigurationNotJson {
            host: host.clone(),
            detail,
        }
    })?;
    let Value::Object(document) = document else {
        return Err(DynRegError::ConfigurationNotJson {
            host,
            detail: "the answer is JSON but not an object".into(),
        });
    };

    let mut errors = Vec::new();
    let mut string = |name: &'static str| -> String {
        match document.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            None | Some(Value::Null) => {
                errors.push(field(name, "is missing"));
                String::new()
            }
            Some(Value::String(_)) => {
                errors.push(field(name, "is empty"));
                String::new()
            }
            Some(_) => {
                errors.push(field(name, "must be a string"));
                String::new()
            }
        }
    };
    let issuer = string("issuer");
    // The issuer first: a configuration served for another site's issuer is refused
    // whatever else it holds.
    if !issuer.is_empty() {
        match Url::parse(&issuer) {
            Ok(issuer_url) if matches!(issuer_url.scheme(), "https" | "http") => {
                if origin_of(&issuer_url) != origin_of(url) {
                    return Err(DynRegError::IssuerMismatch {
                        issuer: bounded(&issuer),
                        origin: origin_of(url),
                    });
                }
            }
            _ => {
                return Err(DynRegError::ConfigurationInvalid(vec![field(
                    "issuer",
                    "is not an absolute https URL",
                )]))
            }
        }
    }
    let authorization_endpoint = string("authorization_endpoint");
    let token_endpoint = string("token_endpoint");
    let jwks_uri = string("jwks_uri");
    let registration_endpoint = string("registration_endpoint");

    let algorithms = strings(&document, "id_token_signing_alg_values_supported");
    if algorithms.is_none() {
        errors.push(field(
            "id_token_signing_alg_values_supported",
            "is missing or not a list of strings",
        ));
    }
    let scopes_supported = strings(&document, "scopes_supported");
    let authorization_server = document
        .get("authorization_server")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);

    // The spec's key, or Moodle 3.10's with a trailing space.
    let platform = document.get(PLATFORM_CONFIGURATION).or_else(|| {
        document
            .iter()
            .find(|(k, _)| k.trim() == PLATFORM_CONFIGURATION)
            .map(|(_, v)| v)
    });
    let mut product_family_code = None;
    let mut version = None;
    let mut messages_supported = Vec::new();
    let mut extras = Map::new();
    match platform {
        Some(Value::Object(platform)) => {
            product_family_code = platform
                .get("product_family_code")
                .and_then(Value::as_str)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
            version = platform
                .get("version")
                .and_then(Value::as_str)
                .map(|s| s.trim().chars().take(100).collect());
            match platform.get("messages_supported") {
                Some(Value::Array(items)) => {
                    messages_supported = items.iter().filter_map(message).collect();
                }
                _ => errors.push(field(
                    "https://purl.imsglobal.org/spec/lti-platform-configuration.messages_supported",
                    "is missing or not a list",
                )),
            }
            // Members named by a URL are a product family's own extensions.
            extras = platform
                .iter()
                .filter(|(k, _)| k.starts_with("https://") && k.len() <= 200)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        }
        _ => errors.push(field(PLATFORM_CONFIGURATION, "is missing or not an object")),
    }
    if !errors.is_empty() {
        return Err(DynRegError::ConfigurationInvalid(errors));
    }

    let mut missing = Vec::new();
    if !algorithms
        .as_ref()
        .is_some_and(|a| a.iter().any(|a| a == "RS256"))
    {
        missing.push("id_tokens signed with RS256 (id_token_signing_alg_values_supported)");
    }
    if !messages_supported
        .iter()
        .any(|m| m.message_type == RESOURCE_LINK)
    {
        missing.push("resource link launches (LtiResourceLinkRequest in messages_supported)");
    }
    if !missing.is_empty() {
        return Err(DynRegError::Unsupported(missing.join(" and ")));
    }
    Ok(PlatformConfiguration {
        issuer,
        authorization_endpoint,
        token_endpoint,
        jwks_uri,
        registration_endpoint,
        scopes_supported,
        authorization_server,
        product_family_code,
        version,
        messages_supported,
        extras,
    })
}

fn field(name: &'static str, message: &str) -> FieldError {
    FieldError {
        field: name.into(),
        message: message.into(),
    }
}

/// A list of strings, if `name` is one (non-strings in it are skipped).
fn strings(document: &Map<String, Value>, name: &str) -> Option<Vec<String>> {
    match document.get(name)? {
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().to_string())
                .collect(),
        ),
        _ => None,
    }
}

/// One entry of `messages_supported`: an object with `type`, or a bare type name.
fn message(item: &Value) -> Option<MessageSupported> {
    let (message_type, placements) = match item {
        Value::String(t) => (t.trim(), Vec::new()),
        Value::Object(o) => (
            o.get("type").and_then(Value::as_str)?.trim(),
            o.get("placements")
                .and_then(Value::as_array)
                .map(|p| {
                    p.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => return None,
    };
    let message_type = match message_type {
        // Moodle 3.10 advertised resource links under this name.
        "LtiResourceLink" => RESOURCE_LINK,
        other => other,
    };
    Some(MessageSupported {
        message_type: message_type.to_string(),
        placements,
    })
}

/// At most 200 bytes of a value from the platform, for a message.
fn bounded(value: &str) -> String {
    let mut cut = value.len().min(200);
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    value[..cut].chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn url(u: &str) -> Url {
        Url::parse(u).expect("url")
    }

    fn moodle() -> Value {
        json!({
            "issuer": "https://moodle.example.edu",
            "token_endpoint": "https://moodle.example.edu/mod/lti/token.php",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
            "jwks_uri": "https://moodle.example.edu/mod/lti/certs.php",
            "authorization_endpoint": "https://moodle.example.edu/mod/lti/auth.php",
            "registration_endpoint": "https://moodle.example.edu/mod/lti/openid-registration.php",
            "scopes_supported": ["https://purl.imsglobal.org/spec/lti-ags/scope/score", "openid"],
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public", "pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "iss", "name", "given_name", "family_name", "email"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle",
                "version": "4.5",
                "messages_supported": ["LtiResourceLinkRequest", "LtiDeepLinkingRequest"],
                "placements": ["AddContentMenu"],
                "variables": ["basic-lti-launch-request"]
            }
        })
    }

    fn read_json(value: &Value, from: &str) -> Result<PlatformConfiguration, DynRegError> {
        read(value.to_string().as_bytes(), &url(from))
    }

    #[test]
    fn moodle_4_configuration_with_plain_message_names_is_read() {
        let config = read_json(
            &moodle(),
            "https://moodle.example.edu/mod/lti/openid-configuration.php",
        )
        .expect("valid");
        assert_eq!(config.issuer, "https://moodle.example.edu");
        assert_eq!(config.product_family_code.as_deref(), Some("moodle"));
        assert!(config.message(RESOURCE_LINK).is_some());
        assert!(config.message(DEEP_LINKING).is_some());
        assert_eq!(config.display_name(), "Moodle moodle.example.edu");
    }

    #[test]
    fn moodle_3_10_quirks_are_understood() {
        let mut doc = moodle();
        let platform = doc
            .as_object_mut()
            .and_then(|o| o.remove(PLATFORM_CONFIGURATION))
            .expect("member");
        doc[format!("{PLATFORM_CONFIGURATION} ")] = platform;
        doc[format!("{PLATFORM_CONFIGURATION} ")]["messages_supported"] =
            json!(["LtiResourceLink", "LtiDeepLinkingRequest"]);
        let config = read_json(
            &doc,
            "https://moodle.example.edu/mod/lti/openid-configuration.php",
        )
        .expect("valid");
        assert!(config.message(RESOURCE_LINK).is_some());
    }

    #[test]
    fn an_issuer_on_another_site_is_refused_before_anything_else() {
        let mut doc = moodle();
        doc["issuer"] = json!("https://victim.example.edu");
        doc.as_object_mut().map(|o| o.remove("jwks_uri"));
        let err = read_json(&doc, "https://attacker.example/openid").expect_err("refused");
        assert!(err.to_string().contains("victim.example.edu"), "{err}");
        assert!(matches!(err, DynRegError::IssuerMismatch { .. }));
        // Another port or scheme is another site too.
        let err = read_json(
            &moodle(),
            "https://moodle.example.edu:8443/mod/lti/openid-configuration.php",
        )
        .expect_err("refused");
        assert!(matches!(err, DynRegError::IssuerMismatch { .. }));
    }

    #[test]
    fn missing_fields_are_all_named() {
        let mut doc = moodle();
        let o = doc.as_object_mut().expect("object");
        o.remove("authorization_endpoint");
        o.remove("token_endpoint");
        o.insert("jwks_uri".into(), json!(7));
        let err = read_json(&doc, "https://moodle.example.edu/x").expect_err("refused");
        let fields: Vec<String> = err
            .fields()
            .expect("fields")
            .iter()
            .map(|f| f.field.to_string())
            .collect();
        assert_eq!(
            fields,
            ["authorization_endpoint", "token_endpoint", "jwks_uri"]
        );
    }

    #[test]
    fn rs256_and_resource_links_are_required() {
        let mut doc = moodle();
        doc["id_token_signing_alg_values_supported"] = json!(["ES256"]);
        doc[PLATFORM_CONFIGURATION]["messages_supported"] = json!(["LtiDeepLinkingRequest"]);
        let err = read_json(&doc, "https://moodle.example.edu/x").expect_err("refused");
        assert_eq!(err.code_for_test(), "LTI_DYNREG_UNSUPPORTED");
        assert!(err.to_string().contains("RS256"));
        assert!(err.to_string().contains("LtiResourceLinkRequest"));
    }

    #[test]
    fn non_json_and_non_objects_are_told_apart() {
        let at = url("https://lms.example.edu/openid");
        let err = read(b"<html>login</html>", &at).expect_err("refused");
        assert!(err.to_string().contains("not JSON"), "{err}");
        let err = read(b"[1,2]", &at).expect_err("refused");
        assert!(err.to_string().contains("not an object"), "{err}");
        let err = read(b"", &at).expect_err("refused");
        assert!(err.to_string().contains("empty"), "{err}");
    }

    #[test]
    fn canvas_extras_and_placements_are_kept() {
        let doc = json!({
            "issuer": "https://canvas.instructure.com",
            "authorization_endpoint": "https://sso.canvaslms.com/api/lti/authorize_redirect",
            "registration_endpoint": "https://school.instructure.com/api/lti/registrations",
            "jwks_uri": "https://sso.canvaslms.com/api/lti/security/jwks",
            "token_endpoint": "https://sso.canvaslms.com/login/oauth2/token",
            "id_token_signing_alg_values_supported": ["RS256"],
            "authorization_server": "sso.canvaslms.com",
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "canvas",
                "version": "OpenSource",
                "messages_supported": [
                    {"type": "LtiResourceLinkRequest", "placements": ["course_navigation"]},
                    {"type": "LtiDeepLinkingRequest", "placements": ["link_selection"]}
                ],
                "https://canvas.instructure.com/lti/account_name": "Example School"
            }
        });
        let config = read_json(
            &doc,
            "https://canvas.instructure.com/api/lti/security/openid-configuration?registration_token=x",
        )
        .expect("valid");
        assert!(config.is_canvas());
        assert_eq!(config.display_name(), "Canvas Example School");
        assert_eq!(
            config.message(RESOURCE_LINK).expect("rl").placements,
            ["course_navigation"]
        );
        assert_eq!(config.extras.len(), 1);
    }

    impl DynRegError {
        fn code_for_test(&self) -> &'static str {
            crate::error::Problem::code(self)
        }
    }
}
