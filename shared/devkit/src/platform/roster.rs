//! The demo course's roster behind Names and Role Provisioning Services 2.0: the demo
//! users and [`GENERATED`] more, with LIS role URIs (and, as Moodle sends them for
//! some, short role names), served [`PAGE_SIZE`] at a time with `Link: rel="next"`.

use super::services::{self, SCOPE_NRPS};
use super::{DemoPlatform, RESOURCE_LINK_ID, USERS};
use lti_http::{HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{json, Value};

/// Members per page, at most.
pub const PAGE_SIZE: usize = 10;
/// Members besides the demo users.
pub const GENERATED: usize = 32;
/// The media type of a roster page.
pub const MEDIA_MEMBERSHIPS: &str = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json";
const ROLE: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership";

/// A member of the demo course.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `Active` or `Inactive`.
    pub status: String,
    pub roles: Vec<String>,
}

impl Member {
    /// The name to show: the full name, else the user id.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.user_id.clone())
    }

    /// True if one of its roles is a learner's (full URI or short name).
    pub fn is_learner(&self) -> bool {
        self.roles
            .iter()
            .any(|r| r == "Learner" || r == &format!("{ROLE}#Learner"))
    }
}

const GIVEN: [&str; 16] = [
    "Ada", "Ben", "Chloé", "Dev", "Emeka", "Farah", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lior",
    "Mina", "Noor", "Otto", "Priya",
];
const FAMILY: [&str; 11] = [
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Silva",
    "Novak",
    "Haddad",
    "Kowalski",
    "Reyes",
    "Nguyen",
    "Brennan",
];

/// The demo course's members, in roster order: the demo users, then the generated ones.
pub fn members() -> Vec<Member> {
    let mut all: Vec<Member> = USERS
        .iter()
        .map(|u| Member {
            user_id: u.sub.to_string(),
            name: u.name.map(|(g, f)| format!("{g} {f}")),
            given_name: u.name.map(|(g, _)| g.to_string()),
            family_name: u.name.map(|(_, f)| f.to_string()),
            email: u.email.map(str::to_string),
            status: "Active".into(),
            // NRPS carries course roles; institution roles stay with the launch.
            roles: u
                .roles
                .iter()
                .filter(|r| r.starts_with(ROLE))
                .map(|r| r.to_string())
                .collect(),
        })
        .collect();
    for i in 1..=GENERATED {
        let given = GIVEN[(i - 1) % GIVEN.len()];
        let family = FAMILY[(i * 7) % FAMILY.len()];
        let roles: Vec<String> = match i {
            // A teaching assistant, as LIS writes one: the role and its sub-role.
            3 => vec![
                format!("{ROLE}#Instructor"),
                format!("{ROLE}/Instructor#TeachingAssistant"),
            ],
            // A mentor, by its short name.
            17 => vec!["Mentor".into()],
            // Some learners by the short name, as Moodle sends them.
            i if i % 4 == 0 => vec!["Learner".into()],
            _ => vec![format!("{ROLE}#Learner")],
        };
        all.push(Member {
            user_id: format!("demo-student-{i:02}"),
            name: Some(format!("{given} {family}")),
            given_name: Some(given.into()),
            family_name: Some(family.into()),
            email: Some(format!(
                "{}.{}@demo.example",
                given.to_lowercase().replace('é', "e"),
                family.to_lowercase()
            )),
            status: if i == 29 { "Inactive" } else { "Active" }.into(),
            roles,
        });
    }
    all
}

/// The member with platform user id `user_id`.
pub fn member(user_id: &str) -> Option<Member> {
    members().into_iter().find(|m| m.user_id == user_id)
}

/// A role as compared by the `role` filter: a LIS membership role by its short name
/// (`…/membership#Learner` → `Learner`), a short name as it is, any other URI whole.
fn role_key(role: &str) -> &str {
    match role.strip_prefix(ROLE) {
        Some(rest) => rest.rsplit('#').next().unwrap_or(rest),
        None => role,
    }
}

/// True if `member` has `role` (a full URI, or a short context role name).
fn has_role(member: &Member, role: &str) -> bool {
    member.roles.iter().any(|r| role_key(r) == role_key(role))
}

impl DemoPlatform {
    /// `GET …/memberships?role&rlid&limit&page`: a page of the roster (at most
    /// [`PAGE_SIZE`] members), a `Link: <…>; rel="next"` while more follow.
    pub(super) fn memberships(&self, request: &HttpRequest) -> HttpResponse {
        if request.method() != http::Method::GET {
            return services::oauth_error(405, "invalid_request", "The roster is read with GET.");
        }
        let grant = match self.authorize_call(request, &[SCOPE_NRPS]) {
            Ok(grant) => grant,
            Err(refusal) => return *refusal,
        };
        let query = services::query(request);
        let (page, size) = match services::paging(&query, PAGE_SIZE) {
            Ok(paging) => paging,
            Err(why) => return services::oauth_error(400, "invalid_request", why),
        };
        if let Some(rlid) = query.get("rlid") {
            if !self.is_resource_link_of(&grant.client_id, rlid) {
                return services::oauth_error(
                    404,
                    "not_found",
                    "rlid is not a resource link of this tool in this course.",
                );
            }
        }
        let selected: Vec<Member> = members()
            .into_iter()
            .filter(|m| query.get("role").is_none_or(|r| has_role(m, r)))
            .collect();
        let (members, more) = services::page_of(&selected, page, size);
        let url = self.memberships_url();
        let mut response = services::media(
            200,
            MEDIA_MEMBERSHIPS,
            &json!({
                "id": url,
                "context": {"id": "demo-course-101", "label": "DEMO101", "title": "Demo Course 101"},
                "members": members,
            }),
        );
        if more {
            services::link_next(&mut response, &url, &query, page + 1);
        }
        response
    }

    /// The roster's URL (the NRPS claim's `context_memberships_url`).
    pub fn memberships_url(&self) -> String {
        format!("{}/courses/demo-course-101/memberships", self.issuer)
    }

    /// True if `rlid` is a resource link of the tool `client_id` in the demo course.
    pub(super) fn is_resource_link_of(&self, client_id: &str, rlid: &str) -> bool {
        let Some(tool) = self.tool_by_client_id(client_id) else {
            return false;
        };
        rlid == RESOURCE_LINK_ID
            || self
                .course_items()
                .iter()
                .any(|i| i.tool_id == tool.id && i.resource_link_id() == rlid)
    }
}

/// The roster as JSON (the gradebook page's JSON view).
pub fn members_json() -> Value {
    serde_json::to_value(members()).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_roster_has_the_demo_users_first_and_thirty_five_members() {
        let all = members();
        assert_eq!(all.len(), USERS.len() + GENERATED);
        assert!(all.len() >= 30);
        assert_eq!(all[0].user_id, "demo-instructor-1");
        assert_eq!(all[1].name.as_deref(), Some("Lea Learner"));
        assert_eq!(
            all[2].name, None,
            "the privacy-restricted learner has no name"
        );
        let ids: std::collections::HashSet<_> = all.iter().map(|m| &m.user_id).collect();
        assert_eq!(ids.len(), all.len(), "user ids are unique");
        assert!(all.iter().any(|m| m.roles == ["Learner"]), "short names");
        assert!(all.iter().any(|m| m.status == "Inactive"));
    }

    #[test]
    fn role_filters_take_full_uris_and_short_names() {
        let all = members();
        let learners = |role: &str| all.iter().filter(|m| has_role(m, role)).count();
        let full = learners(&format!("{ROLE}#Learner"));
        assert_eq!(full, learners("Learner"));
        assert_eq!(full, all.iter().filter(|m| m.is_learner()).count());
        assert_eq!(learners("Mentor"), 1);
        assert_eq!(learners(&format!("{ROLE}#Instructor")), 2);
        assert_eq!(learners("http://example.edu/roles#Learner"), 0);
    }
}
