//! The normalized launch context: what the app receives, in one predictable shape
//! whatever the platform sent (what ltijs users write by hand as a "token normalizer").

use super::claims as c;
use super::roles::{map_roles, RoleKind};
use super::{json_type, LaunchError};
use crate::limits;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Everything the app needs to know about a launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchContext {
    /// This launch's id: the app token's `jti`, and the compact reference a services
    /// call may present instead of the whole app token.
    #[serde(default)]
    pub launch_id: String,
    /// `LtiResourceLinkRequest`, `LtiDeepLinkingRequest`…
    pub message_type: String,
    /// Always `1.3.0`.
    pub version: String,
    pub user: LaunchUser,
    pub platform: LaunchPlatform,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<CourseContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_link: Option<ResourceLink>,
    pub roles: Roles,
    /// Custom parameters, as sent.
    #[serde(default)]
    pub custom: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_presentation: Option<LaunchPresentation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_link_uri: Option<String>,
    pub services: Services,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lis: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_platform: Option<Value>,
    /// TimeBack's application and tool ids, when a TimeBack platform sends them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeback: Option<Timeback>,
    /// Claims this tool does not know, kept as sent, by claim name.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extensions: Map<String, Value>,
    /// What was read leniently in optional claims (coerced or dropped), one sentence
    /// each, e.g. "context.type was a string; read as a one-element list". Also logged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The routing rule that matched this launch (its id and claims), if any
    /// ([`crate::registration::routing`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<crate::registration::AppRoute>,
}

/// The launching user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchUser {
    /// Stable id in this tool (see [`crate::user::stable_user_id`]).
    pub id: String,
    /// The platform's user id.
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// The platform and deployment the launch came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchPlatform {
    pub issuer: String,
    pub client_id: String,
    pub deployment_id: String,
    /// `tool_platform.name`, else the registration's name.
    pub name: String,
}

/// The course (LTI "context").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CourseContext {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Members of the claim this shape has no field for, kept as sent.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// The link the user clicked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceLink {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Members of the claim this shape has no field for, kept as sent.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Roles, raw and mapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Roles {
    /// As sent by the platform.
    pub raw: Vec<String>,
    /// Mapped to kinds, distinct and sorted; empty for an anonymous launch.
    pub mapped: Vec<RoleKind>,
    /// `role_scope_mentor`: users this mentor may see.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_scope_mentor: Vec<String>,
}

/// How the platform wants the tool shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchPresentation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<f64>,
    /// Members of the claim this shape has no field for, kept as sent.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// TimeBack's own claims (`https://timeback.com/lti/claim/…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeback {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_id: Option<String>,
}

/// The LTI Advantage services the platform offers for this launch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Services {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ags: Option<AgsEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nrps: Option<NrpsEndpoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deep_linking: Option<DeepLinkingSettings>,
}

/// Assignment and Grade Services endpoint claim (AGS 2.0 §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgsEndpoint {
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineitems: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineitem: Option<String>,
    /// Members of the claim this shape has no field for, kept as sent.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Names and Role Provisioning Services claim (NRPS 2.0 §3.6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NrpsEndpoint {
    pub context_memberships_url: String,
    #[serde(default)]
    pub service_versions: Vec<String>,
    /// Members of the claim this shape has no field for, kept as sent.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Deep Linking settings claim (DL 2.0 §4.4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeepLinkingSettings {
    pub deep_link_return_url: String,
    #[serde(default)]
    pub accept_types: Vec<String>,
    #[serde(default)]
    pub accept_presentation_document_targets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_media_types: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_multiple: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_lineitem: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_create: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Opaque: any JSON value, echoed exactly as received in the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Members of the claim this shape has no field for, kept as sent.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// Reads optional claims leniently: harmless shapes are coerced (a number where an id
/// string belongs, a string where a list belongs, a numeric string where a number
/// belongs) and unusable parts dropped, each with a warning sentence, instead of
/// refusing a user for a cosmetic fault of the platform. Required claims never come
/// through here: they stay strict.
struct Lenient {
    warnings: Vec<String>,
}

impl Lenient {
    fn warn(&mut self, sentence: String) {
        self.warnings.push(sentence);
    }

    /// The claim `name` as an object; anything else is dropped with a warning.
    fn object(
        &mut self,
        claims: &mut Map<String, Value>,
        name: &str,
        label: &str,
    ) -> Option<Map<String, Value>> {
        match claims.remove(name)? {
            Value::Object(map) => Some(map),
            Value::Null => None,
            other => {
                self.warn(format!(
                    "{label} was {}, not an object; ignored",
                    json_type(&other)
                ));
                None
            }
        }
    }

    /// An id (LTI 1.3 §5.3: a string of at most 255 characters): a number is read as
    /// its decimal string; anything else, or a longer one, is dropped.
    fn id(&mut self, map: &mut Map<String, Value>, field: &str, label: &str) -> Option<String> {
        let id = match map.remove(field)? {
            Value::String(s) => s,
            Value::Number(n) => {
                self.warn(format!("{label}.{field} was a number; read as a string"));
                n.to_string()
            }
            Value::Null => return None,
            other => {
                self.warn(format!(
                    "{label}.{field} was {}; ignored",
                    json_type(&other)
                ));
                return None;
            }
        };
        if id.len() > limits::MAX_ID_LEN {
            self.warn(format!(
                "{label}.{field} is longer than {} bytes; ignored",
                limits::MAX_ID_LEN
            ));
            return None;
        }
        (!id.is_empty()).then_some(id)
    }

    /// A text field: numbers and booleans are read as text; other shapes dropped.
    fn text(&mut self, map: &mut Map<String, Value>, field: &str, label: &str) -> Option<String> {
        match map.remove(field)? {
            Value::String(s) => (!s.is_empty()).then_some(s),
            Value::Null => None,
            value @ (Value::Number(_) | Value::Bool(_)) => {
                self.warn(format!(
                    "{label}.{field} was {}; read as text",
                    json_type(&value)
                ));
                Some(value.to_string())
            }
            other => {
                self.warn(format!(
                    "{label}.{field} was {}; ignored",
                    json_type(&other)
                ));
                None
            }
        }
    }

    /// A list of strings: a single string is read as a one-element list; numbers in
    /// the list as their text; other members dropped.
    fn list(&mut self, map: &mut Map<String, Value>, field: &str, label: &str) -> Vec<String> {
        match map.remove(field) {
            None | Some(Value::Null) => vec![],
            Some(Value::String(s)) => {
                self.warn(format!(
                    "{label}.{field} was a string; read as a one-element list"
                ));
                vec![s]
            }
            Some(Value::Array(items)) => {
                let mut list = Vec::with_capacity(items.len());
                let mut dropped = false;
                for item in items {
                    match item {
                        Value::String(s) => list.push(s),
                        Value::Number(n) => {
                            dropped = true;
                            list.push(n.to_string());
                        }
                        _ => dropped = true,
                    }
                }
                if dropped {
                    self.warn(format!(
                        "{label}.{field} had members that are not strings; numbers read as text, others ignored"
                    ));
                }
                list
            }
            Some(other) => {
                self.warn(format!(
                    "{label}.{field} was {}, not a list; ignored",
                    json_type(&other)
                ));
                vec![]
            }
        }
    }

    /// A number: a numeric string is read as its number; other shapes dropped.
    fn number(&mut self, map: &mut Map<String, Value>, field: &str, label: &str) -> Option<f64> {
        match map.remove(field)? {
            Value::Number(n) => n.as_f64(),
            Value::Null => None,
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => {
                    self.warn(format!("{label}.{field} was a string; read as a number"));
                    Some(n)
                }
                _ => {
                    self.warn(format!("{label}.{field} is not a number; ignored"));
                    None
                }
            },
            other => {
                self.warn(format!(
                    "{label}.{field} was {}; ignored",
                    json_type(&other)
                ));
                None
            }
        }
    }

    /// A boolean: "true"/"false" strings are read as booleans; other shapes dropped.
    fn boolean(&mut self, map: &mut Map<String, Value>, field: &str, label: &str) -> Option<bool> {
        match map.remove(field)? {
            Value::Bool(b) => Some(b),
            Value::Null => None,
            Value::String(s)
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
            {
                self.warn(format!("{label}.{field} was a string; read as a boolean"));
                Some(s.eq_ignore_ascii_case("true"))
            }
            other => {
                self.warn(format!(
                    "{label}.{field} was {}; ignored",
                    json_type(&other)
                ));
                None
            }
        }
    }

    /// A top-level text claim such as `email`.
    fn claim_text(&mut self, claims: &mut Map<String, Value>, name: &str) -> Option<String> {
        match claims.remove(name)? {
            Value::String(s) => (!s.is_empty()).then_some(s),
            Value::Null => None,
            other => {
                self.warn(format!("{name} was {}; ignored", json_type(&other)));
                None
            }
        }
    }
}

/// The parts of the verified claims the pipeline has already checked.
pub(super) struct Checked {
    pub message_type: String,
    pub sub: String,
    pub user_id: String,
    pub issuer: String,
    pub client_id: String,
    pub deployment_id: String,
    pub platform_name: String,
    pub roles: Vec<String>,
    pub target_link_uri: Option<String>,
}

/// Builds the normalized context from what remains of the verified claims once the
/// pipeline has taken out the checked ones; every claim it does not know becomes an
/// extension, and every member of a known claim it has no field for goes to that
/// part's `extra`.
pub(super) fn normalize(
    checked: Checked,
    mut claims: Map<String, Value>,
) -> Result<LaunchContext, LaunchError> {
    // Token mechanics, not launch data.
    for name in [
        "iss",
        "aud",
        "azp",
        "exp",
        "iat",
        "nbf",
        "nonce",
        "auth_time",
        "jti",
    ] {
        claims.remove(name);
    }
    claims.remove(c::VERSION);
    let mut l = Lenient { warnings: vec![] };

    let given_name = l.claim_text(&mut claims, "given_name");
    let family_name = l.claim_text(&mut claims, "family_name");
    let middle_name = l.claim_text(&mut claims, "middle_name");
    let name = l.claim_text(&mut claims, "name").or_else(|| {
        let parts: Vec<&str> = [&given_name, &middle_name, &family_name]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    let user = LaunchUser {
        id: checked.user_id,
        sub: checked.sub,
        name,
        given_name,
        family_name,
        middle_name,
        email: l.claim_text(&mut claims, "email"),
        picture: l.claim_text(&mut claims, "picture"),
        locale: l.claim_text(&mut claims, "locale"),
    };

    let context = match l.object(&mut claims, c::CONTEXT, "context") {
        None => None,
        Some(mut map) => match l.id(&mut map, "id", "context") {
            Some(id) => Some(CourseContext {
                id,
                label: l.text(&mut map, "label", "context"),
                title: l.text(&mut map, "title", "context"),
                types: l.list(&mut map, "type", "context"),
                extra: map,
            }),
            None => {
                l.warn("the context claim has no usable id; ignored".into());
                None
            }
        },
    };

    let resource_link = match l.object(&mut claims, c::RESOURCE_LINK, "resource_link") {
        None => None,
        Some(mut map) => {
            let id = if checked.message_type == c::RESOURCE_LINK_REQUEST {
                // Required for a resource-link launch (LTI 1.3 §5.3.5): strict, but a
                // number is still its decimal string.
                match map.remove("id") {
                    Some(Value::String(s)) if s.len() > limits::MAX_ID_LEN => {
                        return Err(LaunchError::ClaimInvalid {
                            claim: "resource_link",
                            reason: format!("its id is longer than {} bytes", limits::MAX_ID_LEN),
                        })
                    }
                    Some(Value::String(s)) if !s.is_empty() => Some(s),
                    Some(Value::Number(n)) => {
                        l.warn("resource_link.id was a number; read as a string".into());
                        Some(n.to_string())
                    }
                    None | Some(Value::Null) | Some(Value::String(_)) => None,
                    Some(other) => {
                        return Err(LaunchError::ClaimInvalid {
                            claim: "resource_link",
                            reason: format!("its id is {}, not a string", json_type(&other)),
                        })
                    }
                }
            } else {
                l.id(&mut map, "id", "resource_link")
            };
            id.map(|id| ResourceLink {
                id,
                title: l.text(&mut map, "title", "resource_link"),
                description: l.text(&mut map, "description", "resource_link"),
                extra: map,
            })
        }
    };
    if checked.message_type == c::RESOURCE_LINK_REQUEST && resource_link.is_none() {
        return Err(LaunchError::ResourceLinkMissing);
    }

    let role_scope_mentor = match claims.remove(c::ROLE_SCOPE_MENTOR) {
        None | Some(Value::Null) => vec![],
        Some(value) => {
            let mut holder = Map::new();
            holder.insert("role_scope_mentor".into(), value);
            l.list(&mut holder, "role_scope_mentor", "claim")
        }
    };
    let roles = Roles {
        mapped: map_roles(&checked.roles),
        raw: checked.roles,
        role_scope_mentor,
    };
    let custom = l
        .object(&mut claims, c::CUSTOM, "custom")
        .unwrap_or_default();
    let launch_presentation = l
        .object(&mut claims, c::LAUNCH_PRESENTATION, "launch_presentation")
        .map(|mut map| {
            let label = "launch_presentation";
            LaunchPresentation {
                document_target: l.text(&mut map, "document_target", label),
                return_url: l.text(&mut map, "return_url", label),
                locale: l.text(&mut map, "locale", label),
                height: l.number(&mut map, "height", label),
                width: l.number(&mut map, "width", label),
                extra: map,
            }
        });
    let ags = l
        .object(&mut claims, c::AGS, "AGS endpoint")
        .map(|mut map| {
            let label = "AGS endpoint";
            AgsEndpoint {
                scope: l.list(&mut map, "scope", label),
                lineitems: l.text(&mut map, "lineitems", label),
                lineitem: l.text(&mut map, "lineitem", label),
                extra: map,
            }
        });
    let nrps = match l.object(&mut claims, c::NRPS, "NRPS claim") {
        None => None,
        Some(mut map) => match l.text(&mut map, "context_memberships_url", "NRPS claim") {
            Some(context_memberships_url) => Some(NrpsEndpoint {
                context_memberships_url,
                service_versions: l.list(&mut map, "service_versions", "NRPS claim"),
                extra: map,
            }),
            None => {
                l.warn("the NRPS claim has no context_memberships_url; ignored".into());
                None
            }
        },
    };
    let deep_linking = match l.object(&mut claims, c::DEEP_LINKING, "deep_linking_settings") {
        None => None,
        Some(mut map) => {
            let label = "deep_linking_settings";
            l.text(&mut map, "deep_link_return_url", label)
                .map(|deep_link_return_url| DeepLinkingSettings {
                    deep_link_return_url,
                    accept_types: l.list(&mut map, "accept_types", label),
                    accept_presentation_document_targets: l.list(
                        &mut map,
                        "accept_presentation_document_targets",
                        label,
                    ),
                    accept_media_types: match map.get("accept_media_types") {
                        // DL 2.0 §4.4.1 says a comma-separated string; a list is joined.
                        Some(Value::Array(_)) => {
                            let list = l.list(&mut map, "accept_media_types", label);
                            (!list.is_empty()).then(|| list.join(","))
                        }
                        _ => l.text(&mut map, "accept_media_types", label),
                    },
                    accept_multiple: l.boolean(&mut map, "accept_multiple", label),
                    accept_lineitem: l.boolean(&mut map, "accept_lineitem", label),
                    auto_create: l.boolean(&mut map, "auto_create", label),
                    title: l.text(&mut map, "title", label),
                    text: l.text(&mut map, "text", label),
                    // Opaque: any JSON value, kept exactly.
                    data: map.remove("data").filter(|d| !d.is_null()),
                    extra: map,
                })
        }
    };
    if checked.message_type == c::DEEP_LINKING_REQUEST && deep_linking.is_none() {
        return Err(LaunchError::DeepLinkingSettingsMissing);
    }
    let timeback = {
        let application_id = l.claim_text(&mut claims, c::TIMEBACK_APPLICATION_ID);
        let tool_id = l.claim_text(&mut claims, c::TIMEBACK_TOOL_ID);
        (application_id.is_some() || tool_id.is_some()).then_some(Timeback {
            application_id,
            tool_id,
        })
    };
    let lis = claims.remove(c::LIS);
    let tool_platform = claims.remove(c::TOOL_PLATFORM);
    let platform_name = tool_platform
        .as_ref()
        .and_then(|tp| tp.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .unwrap_or(checked.platform_name);

    Ok(LaunchContext {
        // Given by the launcher once the launch is validated.
        launch_id: String::new(),
        message_type: checked.message_type,
        version: c::LTI_VERSION.into(),
        user,
        platform: LaunchPlatform {
            issuer: checked.issuer,
            client_id: checked.client_id,
            deployment_id: checked.deployment_id,
            name: platform_name,
        },
        context,
        resource_link,
        roles,
        custom,
        launch_presentation,
        target_link_uri: checked.target_link_uri,
        services: Services {
            ags,
            nrps,
            deep_linking,
        },
        lis,
        tool_platform,
        timeback,
        extensions: claims,
        warnings: l.warnings,
        // Given by the launcher once the registration's rules are read.
        route: None,
    })
}
