//! The normalized launch context: what the app receives, in one predictable shape
//! whatever the platform sent (what ltijs users write by hand as a "token normalizer").

use super::claims as c;
use super::roles::{map_roles, RoleKind};
use super::LaunchError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Everything the app needs to know about a launch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LaunchContext {
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
}

/// Names and Role Provisioning Services claim (NRPS 2.0 §3.6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NrpsEndpoint {
    pub context_memberships_url: String,
    #[serde(default)]
    pub service_versions: Vec<String>,
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
    /// Opaque; must be echoed unchanged in the response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// Wire shapes of the claims, snake_case as the specs write them.
mod wire {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Context {
        pub id: Option<String>,
        pub label: Option<String>,
        pub title: Option<String>,
        #[serde(rename = "type", default)]
        pub types: Option<Vec<String>>,
    }

    #[derive(Deserialize)]
    pub struct ResourceLink {
        pub id: Option<String>,
        pub title: Option<String>,
        pub description: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct LaunchPresentation {
        pub document_target: Option<String>,
        pub return_url: Option<String>,
        pub locale: Option<String>,
        pub height: Option<f64>,
        pub width: Option<f64>,
    }

    #[derive(Deserialize)]
    pub struct Ags {
        #[serde(default)]
        pub scope: Vec<String>,
        pub lineitems: Option<String>,
        pub lineitem: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct Nrps {
        pub context_memberships_url: String,
        #[serde(default)]
        pub service_versions: Vec<String>,
    }

    #[derive(Deserialize)]
    pub struct DeepLinking {
        pub deep_link_return_url: Option<String>,
        #[serde(default)]
        pub accept_types: Vec<String>,
        #[serde(default)]
        pub accept_presentation_document_targets: Vec<String>,
        pub accept_media_types: Option<String>,
        pub accept_multiple: Option<bool>,
        pub accept_lineitem: Option<bool>,
        pub auto_create: Option<bool>,
        pub title: Option<String>,
        pub text: Option<String>,
        pub data: Option<String>,
    }
}

fn take<T: serde::de::DeserializeOwned>(
    claims: &mut Map<String, Value>,
    name: &'static str,
    label: &'static str,
) -> Result<Option<T>, LaunchError> {
    match claims.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| LaunchError::ClaimInvalid {
                claim: label,
                reason: e.to_string(),
            }),
    }
}

fn take_string(claims: &mut Map<String, Value>, name: &str) -> Option<String> {
    match claims.remove(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
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
/// extension.
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
    let given_name = take_string(&mut claims, "given_name");
    let family_name = take_string(&mut claims, "family_name");
    let middle_name = take_string(&mut claims, "middle_name");
    let name = take_string(&mut claims, "name").or_else(|| {
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
        email: take_string(&mut claims, "email"),
        picture: take_string(&mut claims, "picture"),
        locale: take_string(&mut claims, "locale"),
    };

    let context = match take::<wire::Context>(&mut claims, c::CONTEXT, "context")? {
        None => None,
        Some(ctx) => Some(CourseContext {
            id: ctx
                .id
                .filter(|id| !id.is_empty())
                .ok_or(LaunchError::ClaimInvalid {
                    claim: "context",
                    reason: "it has no id".into(),
                })?,
            label: ctx.label,
            title: ctx.title,
            types: ctx.types.unwrap_or_default(),
        }),
    };
    let resource_link = take::<wire::ResourceLink>(&mut claims, c::RESOURCE_LINK, "resource_link")?
        .and_then(|link| {
            Some(ResourceLink {
                id: link.id.filter(|id| !id.is_empty())?,
                title: link.title,
                description: link.description,
            })
        });
    if checked.message_type == c::RESOURCE_LINK_REQUEST && resource_link.is_none() {
        return Err(LaunchError::ResourceLinkMissing);
    }
    let role_scope_mentor =
        take::<Vec<String>>(&mut claims, c::ROLE_SCOPE_MENTOR, "role_scope_mentor")?
            .unwrap_or_default();
    let roles = Roles {
        mapped: map_roles(&checked.roles),
        raw: checked.roles,
        role_scope_mentor,
    };
    let custom = take::<Map<String, Value>>(&mut claims, c::CUSTOM, "custom")?.unwrap_or_default();
    let launch_presentation = take::<wire::LaunchPresentation>(
        &mut claims,
        c::LAUNCH_PRESENTATION,
        "launch_presentation",
    )?
    .map(|p| LaunchPresentation {
        document_target: p.document_target,
        return_url: p.return_url,
        locale: p.locale,
        height: p.height,
        width: p.width,
    });
    let ags = take::<wire::Ags>(&mut claims, c::AGS, "AGS endpoint")?.map(|a| AgsEndpoint {
        scope: a.scope,
        lineitems: a.lineitems,
        lineitem: a.lineitem,
    });
    let nrps = take::<wire::Nrps>(&mut claims, c::NRPS, "NRPS")?.map(|n| NrpsEndpoint {
        context_memberships_url: n.context_memberships_url,
        service_versions: n.service_versions,
    });
    let deep_linking =
        match take::<wire::DeepLinking>(&mut claims, c::DEEP_LINKING, "deep_linking_settings")? {
            Some(d) => match d.deep_link_return_url.filter(|u| !u.is_empty()) {
                Some(deep_link_return_url) => Some(DeepLinkingSettings {
                    deep_link_return_url,
                    accept_types: d.accept_types,
                    accept_presentation_document_targets: d.accept_presentation_document_targets,
                    accept_media_types: d.accept_media_types,
                    accept_multiple: d.accept_multiple,
                    accept_lineitem: d.accept_lineitem,
                    auto_create: d.auto_create,
                    title: d.title,
                    text: d.text,
                    data: d.data,
                }),
                None => None,
            },
            None => None,
        };
    if checked.message_type == c::DEEP_LINKING_REQUEST && deep_linking.is_none() {
        return Err(LaunchError::DeepLinkingSettingsMissing);
    }
    let timeback = {
        let application_id = take_string(&mut claims, c::TIMEBACK_APPLICATION_ID);
        let tool_id = take_string(&mut claims, c::TIMEBACK_TOOL_ID);
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
    })
}
