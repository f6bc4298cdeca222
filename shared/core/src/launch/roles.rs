//! Role vocabulary: LIS v2 role URIs (context, institution, system) and the short
//! context role names LTI 1.3 still allows, mapped onto a few kinds an app can use.
//! <https://www.imsglobal.org/spec/lti/v1p3#role-vocabularies>

use serde::{Deserialize, Serialize};

/// What an app usually needs to know about a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleKind {
    Instructor,
    Admin,
    Learner,
    TeachingAssistant,
    ContentDeveloper,
    Mentor,
    Other,
}

const LIS: &str = "http://purl.imsglobal.org/vocab/lis/v2/";

/// Maps one role (full URI or short name) to its kind.
///
/// Institution and system roles say what the user is in the institution, not in the
/// launch's course (LTI 1.3 §A.2): only their administrator roles count, as
/// [`RoleKind::Admin`]; any other is [`RoleKind::Other`], and [`map_roles`] leaves it
/// out. Canvas, for one, sends `institution/person#Instructor` for everyone who
/// teaches any course, so a learner here who teaches elsewhere is no instructor here.
pub fn role_kind(role: &str) -> RoleKind {
    course_role_kind(role).unwrap_or(RoleKind::Other)
}

/// The kind of `role` in the launch's context; `None` for an institution or system
/// role that says nothing about it.
///
/// Only the vocabularies LTI 1.3 names are mapped: LIS v2 URIs (§A.2), the short
/// context role names it still allows (§A.2.3.1), and the LTI 1.1 URNs platforms keep
/// sending (`urn:lti:role:ims/lis/…`, `urn:lti:instrole:…`, `urn:lti:sysrole:…`). Any
/// other URI is [`RoleKind::Other`], whatever its last segment says
/// (`http://example.edu/roles#Instructor` is not an instructor).
fn course_role_kind(role: &str) -> Option<RoleKind> {
    let role = role.trim();
    if let Some(rest) = role.strip_prefix(LIS) {
        // e.g. membership#Instructor, membership/Instructor#TeachingAssistant,
        // institution/person#Faculty, system/person#Administrator
        let (path, name) = rest.split_once('#').unwrap_or((rest, ""));
        return match (path, name) {
            ("membership/Instructor", "TeachingAssistant")
            | ("membership/Instructor", "TeachingAssistantSection")
            | ("membership/Instructor", "TeachingAssistantOffering")
            | ("membership/Instructor", "TeachingAssistantGroup")
            | ("membership/Instructor", "TeachingAssistantTemplate")
            | ("membership/Instructor", "Grader") => Some(RoleKind::TeachingAssistant),
            ("membership", n) => Some(context_role(n)),
            // A sub-role (membership/Learner#NonCreditLearner) is a kind of its role.
            (p, _) if p.starts_with("membership/") => {
                Some(context_role(p.trim_start_matches("membership/")))
            }
            ("institution/person", n) => institution_or_system_role(n),
            ("system/person", "SysSupport") => Some(RoleKind::Admin),
            ("system/person", n) => institution_or_system_role(n),
            _ => Some(RoleKind::Other),
        };
    }
    // LTI 1.1 URNs: institution and system roles as above; context roles and their
    // sub-roles (urn:lti:role:ims/lis/TeachingAssistant/Grader is a teaching assistant).
    if let Some(name) = ["urn:lti:instrole:ims/lis/", "urn:lti:sysrole:ims/lis/"]
        .iter()
        .find_map(|prefix| role.strip_prefix(prefix))
    {
        return institution_or_system_role(name);
    }
    if let Some(rest) = role.strip_prefix("urn:lti:role:ims/lis/") {
        let (name, sub) = rest.split_once('/').unwrap_or((rest, ""));
        return Some(match (name, sub) {
            ("Instructor", "TeachingAssistant") => RoleKind::TeachingAssistant,
            (n, _) => context_role(n),
        });
    }
    // Short context role names (deprecated but valid): the whole value, nothing else.
    Some(context_role(role))
}

fn institution_or_system_role(name: &str) -> Option<RoleKind> {
    matches!(name, "Administrator" | "SysAdmin").then_some(RoleKind::Admin)
}

fn context_role(name: &str) -> RoleKind {
    match name {
        "Instructor" => RoleKind::Instructor,
        "Learner" => RoleKind::Learner,
        "Administrator" => RoleKind::Admin,
        "ContentDeveloper" => RoleKind::ContentDeveloper,
        "Mentor" => RoleKind::Mentor,
        "TeachingAssistant" => RoleKind::TeachingAssistant,
        _ => RoleKind::Other,
    }
}

/// The distinct kinds of `roles` in the launch's context, sorted; empty for an
/// anonymous launch. Institution and system roles other than administrators are left
/// out (see [`role_kind`]).
pub fn map_roles(roles: &[String]) -> Vec<RoleKind> {
    let mut kinds: Vec<RoleKind> = roles.iter().filter_map(|r| course_role_kind(r)).collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_uris_short_names_and_unknown_roles_are_mapped() {
        let cases = [
            (
                "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor",
                RoleKind::Instructor,
            ),
            (
                "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
                RoleKind::Learner,
            ),
            (
                "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
                RoleKind::TeachingAssistant,
            ),
            (
                "http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper",
                RoleKind::ContentDeveloper,
            ),
            (
                "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor",
                RoleKind::Mentor,
            ),
            (
                "http://purl.imsglobal.org/vocab/lis/v2/membership#Administrator",
                RoleKind::Admin,
            ),
            (
                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty",
                RoleKind::Other,
            ),
            (
                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student",
                RoleKind::Other,
            ),
            (
                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
                RoleKind::Admin,
            ),
            (
                "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator",
                RoleKind::Admin,
            ),
            ("Instructor", RoleKind::Instructor),
            ("Learner", RoleKind::Learner),
            ("urn:lti:role:ims/lis/Learner", RoleKind::Learner),
            ("urn:lti:role:ims/lis/Instructor", RoleKind::Instructor),
            (
                "urn:lti:role:ims/lis/TeachingAssistant/Grader",
                RoleKind::TeachingAssistant,
            ),
            (
                "urn:lti:role:ims/lis/Learner/NonCreditLearner",
                RoleKind::Learner,
            ),
            ("urn:lti:instrole:ims/lis/Administrator", RoleKind::Admin),
            (
                "http://purl.imsglobal.org/vocab/lis/v2/membership/Learner#NonCreditLearner",
                RoleKind::Learner,
            ),
            ("http://example.com/roles#Wizard", RoleKind::Other),
            // A URI outside the LIS vocabularies is never taken by its fragment.
            ("http://example.edu/roles#Instructor", RoleKind::Other),
            ("https://example.edu/roles/Administrator", RoleKind::Other),
            ("urn:example:role:Instructor", RoleKind::Other),
            ("Teacher", RoleKind::Other),
            ("", RoleKind::Other),
        ];
        for (role, kind) in cases {
            assert_eq!(role_kind(role), kind, "{role}");
        }
    }

    #[test]
    fn several_roles_map_to_distinct_sorted_kinds() {
        let roles = vec![
            "Learner".to_string(),
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor".to_string(),
            "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty".to_string(),
        ];
        assert_eq!(
            map_roles(&roles),
            vec![RoleKind::Instructor, RoleKind::Learner]
        );
        assert!(map_roles(&[]).is_empty());
    }
}
