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
pub fn role_kind(role: &str) -> RoleKind {
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
            | ("membership/Instructor", "Grader") => RoleKind::TeachingAssistant,
            ("membership", n) => context_role(n),
            (p, _) if p.starts_with("membership/") => {
                context_role(p.trim_start_matches("membership/"))
            }
            ("institution/person", n) => match n {
                "Instructor" | "Faculty" => RoleKind::Instructor,
                "Learner" | "Student" => RoleKind::Learner,
                "Administrator" | "SysAdmin" => RoleKind::Admin,
                "Mentor" => RoleKind::Mentor,
                _ => RoleKind::Other,
            },
            ("system/person", "Administrator" | "SysAdmin" | "SysSupport") => RoleKind::Admin,
            _ => RoleKind::Other,
        };
    }
    // Short context role names (deprecated but valid) and LTI 1.1-style URNs.
    let short = role
        .rsplit_once(['/', ':', '#'])
        .map_or(role, |(_, name)| name);
    context_role(short)
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

/// The distinct kinds of `roles`, sorted; empty for an anonymous launch.
pub fn map_roles(roles: &[String]) -> Vec<RoleKind> {
    let mut kinds: Vec<RoleKind> = roles.iter().map(|r| role_kind(r)).collect();
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
                RoleKind::Instructor,
            ),
            (
                "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Student",
                RoleKind::Learner,
            ),
            (
                "http://purl.imsglobal.org/vocab/lis/v2/system/person#Administrator",
                RoleKind::Admin,
            ),
            ("Instructor", RoleKind::Instructor),
            ("Learner", RoleKind::Learner),
            ("urn:lti:role:ims/lis/Learner", RoleKind::Learner),
            ("http://example.com/roles#Wizard", RoleKind::Other),
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
