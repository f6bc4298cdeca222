//! Names and Role Provisioning Services 2.0: every member of a course, across every
//! page, normalized like a launch.
//!
//! - The roster is read from the context's `context_memberships_url` with the exact
//!   media type, following `Link: rel="next"` to the end (see [`paging`]); `role`,
//!   `rlid` and `limit` are passed on as query parameters.
//! - Each member comes back as the app sees a launched user: `userId` (the platform's
//!   `sub`), `appUserId` (the stable id in app tokens), names, email, picture,
//!   `status` (`Active` when the platform says nothing, as the spec defaults), and
//!   `roles {raw, mapped}` mapped exactly as at launch (short role names included,
//!   as Moodle sends them). Members the shape has no field for (`message`,
//!   `lis_person_sourcedid`…) are kept in `extra`. Numeric ids (Moodle's `user_id`)
//!   are read as strings.
//! - A member without a user id, or one that appears twice, is left out with a
//!   warning in the answer, never silently.
//! - A roster whose `context.id` is not the launch's (seen with Coursera) is not
//!   refused: it is answered under the launch's context, the platform's id kept in
//!   `platformContextId`.
//!
//! [`paging`]: crate::services::paging

use crate::launch::roles::map_roles;
use crate::launch::Roles;
use crate::platform::Platform;
use crate::services::answer;
use crate::services::outbound::{Method, OutboundRequest};
use crate::services::paging::{follow_pages, next_url, MAX_PAGES};
use crate::services::token::AccessTokens;
use crate::services::ServiceError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// Read the roster.
pub const SCOPE_MEMBERSHIPS: &str =
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly";
/// A page of members.
pub const MEDIA_MEMBERSHIPS: &str = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json";

/// Filters passed on to the platform.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MembersQuery {
    /// Only members with this role (a full role URI or a short name).
    pub role: Option<String>,
    /// Only members who can access this resource link.
    pub rlid: Option<String>,
    /// Page size asked of the platform (it may choose another).
    pub limit: Option<u32>,
}

/// The course a roster is of.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RosterContext {
    /// The launch's context id (the platform's when the call names none).
    pub id: String,
    /// The platform's `context.id`, when it differs from the launch's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_context_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// One member, normalized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The platform's user id (`sub` at launch).
    pub user_id: String,
    /// The stable app user id (the `sub` of the app tokens).
    pub app_user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// `Active`, `Inactive` or `Deleted`.
    pub status: String,
    pub roles: Roles,
    /// Members of the platform's entry this shape has no field for, kept as sent.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// A course's roster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Roster {
    pub context: RosterContext,
    pub members: Vec<Member>,
    /// Pages read.
    pub pages: usize,
    /// Entries left out, each with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One page as read: its context and its member entries.
struct Page {
    context: Option<Map<String, Value>>,
    members: Vec<Value>,
}

fn read_page(body: Value) -> Result<Page, ServiceError> {
    let invalid = |why: &str| ServiceError::PlatformAnswerInvalid(format!("the roster page {why}"));
    let Value::Object(mut body) = body else {
        return Err(invalid("is not a JSON object"));
    };
    let members = match body.remove("members") {
        Some(Value::Array(members)) => members,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(invalid("has members that are not a list")),
    };
    let context = match body.remove("context") {
        Some(Value::Object(context)) => Some(context),
        _ => None,
    };
    Ok(Page { context, members })
}

fn text(map: &mut Map<String, Value>, name: &str) -> Option<String> {
    match map.remove(name) {
        Some(Value::String(s)) => Some(s),
        Some(other) if !other.is_null() => {
            // Not a string: kept as sent, under its own name.
            map.insert(name.to_string(), other);
            None
        }
        _ => None,
    }
}

/// A member entry, normalized; `Err` says why it is left out.
fn read_member(
    platform: &Platform,
    entry: Value,
    warnings: &mut Vec<String>,
) -> Result<Member, String> {
    let Value::Object(mut map) = entry else {
        return Err("not a JSON object".into());
    };
    let user_id = answer::id_string(map.get("user_id"))
        .filter(|u| !u.is_empty())
        .ok_or("no user_id")?;
    map.remove("user_id");
    let raw: Vec<String> = match map.remove("roles") {
        Some(Value::Array(roles)) => {
            let total = roles.len();
            let strings: Vec<String> = roles
                .into_iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect();
            if strings.len() != total {
                warnings.push(format!(
                    "member {user_id}: {} role(s) that are not strings left out",
                    total - strings.len()
                ));
            }
            strings
        }
        // One role as a string (lenient, as at launch for lists).
        Some(Value::String(role)) => vec![role],
        _ => Vec::new(),
    };
    let member = Member {
        app_user_id: platform.user_id(&user_id),
        name: text(&mut map, "name"),
        given_name: text(&mut map, "given_name"),
        family_name: text(&mut map, "family_name"),
        email: text(&mut map, "email"),
        picture: text(&mut map, "picture"),
        status: text(&mut map, "status").unwrap_or_else(|| "Active".into()),
        roles: Roles {
            mapped: map_roles(&raw),
            raw,
            role_scope_mentor: Vec::new(),
        },
        user_id,
        extra: Map::new(),
    };
    Ok(Member {
        extra: map,
        ..member
    })
}

/// The calls of NRPS 2.0.
pub struct Nrps {
    tokens: Arc<AccessTokens>,
}

impl Nrps {
    /// NRPS calls with tokens from `tokens`.
    pub fn new(tokens: Arc<AccessTokens>) -> Self {
        Self { tokens }
    }

    /// Every member of the course whose memberships URL is `url` (all pages), for a
    /// launch from context `context_id` (when known).
    pub async fn members(
        &self,
        platform: &Platform,
        url: &str,
        query: &MembersQuery,
        context_id: Option<&str>,
        deployment_id: Option<&str>,
    ) -> Result<Roster, ServiceError> {
        if url.trim().is_empty() {
            return Err(ServiceError::ServiceNotOffered(
                "the Names and Role Provisioning Services",
            ));
        }
        let limit = query.limit.map(|l| l.to_string());
        let pairs: Vec<(&str, &str)> = [
            ("role", query.role.as_deref()),
            ("rlid", query.rlid.as_deref()),
            ("limit", limit.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let first = crate::services::ags::with_query(url, &pairs);
        let pages = follow_pages(&first, MAX_PAGES, |page_url| async move {
            let request =
                OutboundRequest::new(Method::Get, &page_url).header("Accept", MEDIA_MEMBERSHIPS);
            let response = self
                .tokens
                .call(platform, &[SCOPE_MEMBERSHIPS], deployment_id, request)
                .await?;
            let next = next_url(&response, &page_url);
            Ok((
                read_page(answer::json(&response, "the roster page")?)?,
                next,
            ))
        })
        .await?;

        let mut roster = Roster {
            pages: pages.len(),
            ..Roster::default()
        };
        let mut platform_context = None;
        let mut seen = HashSet::new();
        for (page_no, page) in pages.into_iter().enumerate() {
            if platform_context.is_none() {
                platform_context = page.context;
            }
            for (index, entry) in page.members.into_iter().enumerate() {
                match read_member(platform, entry, &mut roster.warnings) {
                    Ok(member) if !seen.insert(member.user_id.clone()) => roster.warnings.push(
                        format!("member {} appeared twice; kept once", member.user_id),
                    ),
                    Ok(member) => roster.members.push(member),
                    Err(why) => roster.warnings.push(format!(
                        "a member entry (page {}, entry {}) left out: {why}",
                        page_no + 1,
                        index + 1
                    )),
                }
            }
        }
        roster.context = roster_context(platform_context.unwrap_or_default(), context_id);
        Ok(roster)
    }
}

fn roster_context(mut platform: Map<String, Value>, launch_id: Option<&str>) -> RosterContext {
    let platform_id = answer::id_string(platform.get("id"));
    platform.remove("id");
    let label = text(&mut platform, "label");
    let title = text(&mut platform, "title");
    let (id, platform_context_id) = match (launch_id, platform_id) {
        (Some(launch), Some(theirs)) if launch != theirs => (launch.to_string(), Some(theirs)),
        (Some(launch), _) => (launch.to_string(), None),
        (None, theirs) => (theirs.unwrap_or_default(), None),
    };
    RosterContext {
        id,
        platform_context_id,
        label,
        title,
        extra: platform,
    }
}
