//! Per-course routing: rules a registration carries that send launches from a given
//! deployment and/or course to a given landing URL, with claims for the app
//! ("launches from the Sales course open the Sales scenario and join group 7").
//!
//! At launch the most specific rule wins: deployment + context, then context alone,
//! then deployment alone, then the registration's default rule (neither). Rules of
//! one level are tried oldest first. A rule whose landing URL is not (or no longer)
//! on an allowed app origin is skipped with a warning, so the next one applies; with
//! no rule the landing URL is decided as before (see [`crate::handoff::landing_url`]).
//!
//! All rules of a registration are one small record ([`RouteSet`]), read with one
//! key lookup at launch and cached with the registration on warm instances.

use crate::config::ToolConfig;
use crate::error::{ErrorKind, Problem};
use crate::limits;
use crate::platform::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Most rules one registration may have.
pub const MAX_RULES: usize = 200;
/// Largest `claims` object of one rule, serialized bytes: it travels in every app
/// token of the launches it matches.
pub const MAX_CLAIMS_BYTES: usize = 1024;

/// One routing rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRule {
    /// The rule's id (`route.id` in the app token).
    pub id: Uuid,
    /// Matches launches of this deployment only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// Matches launches from this course (`context.id`) only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// Where matched launches land (on an allowed app origin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing_url: Option<String>,
    /// Handed to the app as `route.claims` (e.g. `scenarioCode`, `groupId`).
    #[serde(default)]
    pub claims: Map<String, Value>,
    /// Epoch seconds.
    pub created_at: i64,
}

/// How specific a rule is; lower wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteLevel {
    DeploymentAndContext,
    Context,
    Deployment,
    Platform,
}

impl RouteRule {
    /// The rule's level.
    pub fn level(&self) -> RouteLevel {
        match (&self.deployment_id, &self.context_id) {
            (Some(_), Some(_)) => RouteLevel::DeploymentAndContext,
            (None, Some(_)) => RouteLevel::Context,
            (Some(_), None) => RouteLevel::Deployment,
            (None, None) => RouteLevel::Platform,
        }
    }

    fn matches(&self, deployment_id: &str, context_id: Option<&str>) -> bool {
        self.deployment_id
            .as_deref()
            .is_none_or(|d| d == deployment_id)
            && self
                .context_id
                .as_deref()
                .is_none_or(|c| Some(c) == context_id)
    }

    /// What the app token carries of this rule.
    pub fn app_route(&self) -> AppRoute {
        AppRoute {
            id: self.id,
            claims: self.claims.clone(),
        }
    }
}

/// The `route` of the app token's `lti` context: which rule matched, and its claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRoute {
    pub id: Uuid,
    #[serde(default)]
    pub claims: Map<String, Value>,
}

/// Every rule of one registration, stored as one record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSet {
    /// The registration the rules belong to: a set left behind by a deleted
    /// registration never applies to a new one of the same issuer and client_id.
    pub platform_id: Uuid,
    /// Bumped by every write; writes are conditional on it (optimistic concurrency).
    pub version: u64,
    pub rules: Vec<RouteRule>,
}

impl RouteSet {
    /// The rules that apply to registration `platform_id` (none if the set belongs
    /// to another registration).
    pub fn rules_of(&self, platform_id: Uuid) -> &[RouteRule] {
        if self.platform_id == platform_id {
            &self.rules
        } else {
            &[]
        }
    }
}

/// The rule for a launch of `deployment_id` from `context_id`: the most specific
/// level first; within a level, the oldest (then the smallest id). A rule whose
/// landing URL is not on an allowed app origin is skipped.
pub fn resolve<'a>(
    rules: &'a [RouteRule],
    deployment_id: &str,
    context_id: Option<&str>,
    config: &ToolConfig,
) -> Option<&'a RouteRule> {
    let mut candidates: Vec<&RouteRule> = rules
        .iter()
        .filter(|r| r.matches(deployment_id, context_id))
        .collect();
    candidates.sort_by_key(|r| (r.level(), r.created_at, r.id));
    candidates.into_iter().find(|rule| {
        let usable = rule.landing_url.as_deref().is_none_or(|landing| {
            url::Url::parse(landing).is_ok_and(|url| config.is_app_url(&url))
        });
        if !usable {
            tracing::warn!(route_id = %rule.id, "routing rule skipped: its landing URL is not on an allowed app origin");
        }
        usable
    })
}

/// What an admin sends to add a rule (`POST /admin/platforms/{id}/routes`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Value>,
}

/// A rule was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    /// Invalid fields, every one listed.
    #[error("the routing rule is invalid: {}", .0.iter().map(|f| format!("{} {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// A rule for the same deployment and course exists (its id).
    #[error("a routing rule for this deployment and course exists already ({0}); remove it first")]
    Exists(Uuid),
    /// The registration has [`MAX_RULES`] rules.
    #[error("this registration has {MAX_RULES} routing rules, the most it may have")]
    Full,
}

impl Problem for RouteError {
    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "ADMIN_INVALID_ROUTE",
            Self::Exists(_) | Self::Full => "ADMIN_ROUTE_CONFLICT",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Invalid(_) => ErrorKind::BadRequest,
            Self::Exists(_) | Self::Full => ErrorKind::Replay,
        }
    }
    fn public_message(&self) -> String {
        crate::error::sentence(&self.to_string())
    }
}

impl RouteError {
    /// The invalid fields, for the response.
    pub fn fields(&self) -> Option<&[FieldError]> {
        match self {
            Self::Invalid(fields) => Some(fields),
            _ => None,
        }
    }
}

fn optional_id(
    field: &'static str,
    value: Option<String>,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let value = value?.trim().to_string();
    if value.is_empty() || value.len() > limits::MAX_ID_LEN {
        errors.push(FieldError {
            field: field.into(),
            message: format!("must be 1 to {} bytes", limits::MAX_ID_LEN),
        });
    }
    Some(value)
}

impl RouteInput {
    /// Validates every field and builds the rule, stamped `now`, to add to `existing`.
    pub fn validate(
        self,
        now: i64,
        config: &ToolConfig,
        existing: &[RouteRule],
    ) -> Result<RouteRule, RouteError> {
        let mut errors = Vec::new();
        let deployment_id = optional_id("deploymentId", self.deployment_id, &mut errors);
        let context_id = optional_id("contextId", self.context_id, &mut errors);
        let landing_url = self
            .landing_url
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        if let Some(landing) = &landing_url {
            let checked = if landing.len() > limits::MAX_URL_LEN {
                Err(format!("is longer than {} bytes", limits::MAX_URL_LEN))
            } else {
                crate::platform::check_landing_url(landing, config)
            };
            if let Err(message) = checked {
                errors.push(FieldError {
                    field: "landingUrl".into(),
                    message,
                });
            }
        }
        let claims = match self.claims {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => {
                let size = serde_json::to_string(&map).map_or(usize::MAX, |s| s.len());
                if size > MAX_CLAIMS_BYTES {
                    errors.push(FieldError {
                        field: "claims".into(),
                        message: format!(
                            "is {size} bytes as JSON; at most {MAX_CLAIMS_BYTES} (it travels in every app token)"
                        ),
                    });
                }
                map
            }
            Some(_) => {
                errors.push(FieldError {
                    field: "claims".into(),
                    message: "must be a JSON object".into(),
                });
                Map::new()
            }
        };
        if landing_url.is_none() && claims.is_empty() {
            errors.push(FieldError {
                field: "landingUrl".into(),
                message: "or claims is required: a rule without either changes nothing".into(),
            });
        }
        if !errors.is_empty() {
            return Err(RouteError::Invalid(errors));
        }
        if let Some(same) = existing
            .iter()
            .find(|r| r.deployment_id == deployment_id && r.context_id == context_id)
        {
            return Err(RouteError::Exists(same.id));
        }
        if existing.len() >= MAX_RULES {
            return Err(RouteError::Full);
        }
        Ok(RouteRule {
            id: Uuid::new_v4(),
            deployment_id,
            context_id,
            landing_url,
            claims,
            created_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> ToolConfig {
        ToolConfig::from_lookup(|name| match name {
            "LTI_BASE_URL" => Some("https://tool.example".into()),
            "LTI_APP_LANDING_URL" => Some("https://app.example/landing".into()),
            "LTI_ALLOWED_APP_ORIGINS" => Some("https://other-app.example".into()),
            _ => None,
        })
        .expect("config")
    }

    fn rule(n: u128, deployment: Option<&str>, context: Option<&str>, at: i64) -> RouteRule {
        RouteRule {
            id: Uuid::from_u128(n),
            deployment_id: deployment.map(str::to_string),
            context_id: context.map(str::to_string),
            landing_url: Some(format!("https://app.example/r{n}")),
            claims: json!({ "rule": n as u64 })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            created_at: at,
        }
    }

    fn winner(rules: &[RouteRule], deployment: &str, context: Option<&str>) -> Option<u128> {
        resolve(rules, deployment, context, &config()).map(|r| r.id.as_u128())
    }

    /// The precedence table: each level beats the ones below it, and a launch that
    /// matches no rule gets none (the global default).
    #[test]
    fn the_most_specific_rule_wins_level_by_level() {
        let all = vec![
            rule(4, None, None, 0),
            rule(3, Some("d1"), None, 0),
            rule(2, None, Some("sales"), 0),
            rule(1, Some("d1"), Some("sales"), 0),
        ];
        // (rules, deployment, course, winning rule)
        type Row<'a> = (&'a [RouteRule], &'a str, Option<&'a str>, Option<u128>);
        let table: [Row; 9] = [
            (&all, "d1", Some("sales"), Some(1)),
            (&all[..3], "d1", Some("sales"), Some(2)),
            (&all[..2], "d1", Some("sales"), Some(3)),
            (&all[..1], "d1", Some("sales"), Some(4)),
            (&[], "d1", Some("sales"), None),
            // Another deployment: the context rule, not the deployment ones.
            (&all, "d2", Some("sales"), Some(2)),
            // Another course: the deployment rule.
            (&all, "d1", Some("math"), Some(3)),
            // No course at all (a launch without context).
            (&all, "d1", None, Some(3)),
            (&all, "d2", None, Some(4)),
        ];
        for (rules, deployment, context, expected) in table {
            assert_eq!(
                winner(rules, deployment, context),
                expected,
                "{} rules, launch of {deployment} from {context:?}",
                rules.len()
            );
        }
    }

    #[test]
    fn ties_within_a_level_go_to_the_oldest_rule_then_the_smallest_id() {
        let rules = vec![
            rule(9, None, Some("sales"), 20),
            rule(8, None, Some("sales"), 10),
            rule(7, None, Some("sales"), 10),
        ];
        assert_eq!(winner(&rules, "d1", Some("sales")), Some(7));
        let mut reversed = rules.clone();
        reversed.reverse();
        assert_eq!(
            winner(&reversed, "d1", Some("sales")),
            Some(7),
            "order of storage does not matter"
        );
    }

    #[test]
    fn a_rule_whose_landing_url_left_the_allowed_origins_is_skipped_for_the_next() {
        let mut off = rule(1, Some("d1"), Some("sales"), 0);
        off.landing_url = Some("https://evil.example/steal".into());
        let rules = vec![off, rule(2, None, Some("sales"), 0)];
        assert_eq!(winner(&rules, "d1", Some("sales")), Some(2));
        let mut claims_only = rule(3, Some("d1"), Some("sales"), 0);
        claims_only.landing_url = None;
        assert_eq!(
            winner(&[claims_only], "d1", Some("sales")),
            Some(3),
            "a rule with claims only applies"
        );
    }

    #[test]
    fn a_rule_set_of_another_registration_never_applies() {
        let set = RouteSet {
            platform_id: Uuid::from_u128(1),
            version: 1,
            rules: vec![rule(1, None, None, 0)],
        };
        assert_eq!(set.rules_of(Uuid::from_u128(1)).len(), 1);
        assert!(set.rules_of(Uuid::from_u128(2)).is_empty());
    }

    fn refused(input: Value, existing: &[RouteRule]) -> (String, Vec<String>) {
        let input: RouteInput = serde_json::from_value(input).expect("shape");
        let err = input.validate(0, &config(), existing).expect_err("refused");
        let fields = err
            .fields()
            .map(|f| f.iter().map(|f| f.field.to_string()).collect())
            .unwrap_or_default();
        (err.code().to_string(), fields)
    }

    #[test]
    fn every_invalid_field_of_a_rule_is_listed_and_off_origin_landing_urls_are_refused() {
        let (code, fields) = refused(
            json!({"deploymentId": "", "contextId": "x".repeat(256),
                   "landingUrl": "https://evil.example/x", "claims": [1]}),
            &[],
        );
        assert_eq!(code, "ADMIN_INVALID_ROUTE");
        assert_eq!(
            fields,
            vec!["deploymentId", "contextId", "landingUrl", "claims"]
        );
        let (_, fields) = refused(
            json!({"claims": {"big": "x".repeat(MAX_CLAIMS_BYTES)}}),
            &[],
        );
        assert_eq!(fields, vec!["claims"]);
        let (_, fields) = refused(json!({"contextId": "c"}), &[]);
        assert_eq!(fields, vec!["landingUrl"], "a rule must change something");
        let ok: RouteInput = serde_json::from_value(json!({
            "contextId": " sales ", "landingUrl": "https://other-app.example/sales",
            "claims": {"scenarioCode": "SALES-1", "groupId": 7}
        }))
        .expect("shape");
        let made = ok.validate(5, &config(), &[]).expect("valid");
        assert_eq!(made.context_id.as_deref(), Some("sales"));
        assert_eq!(made.level(), RouteLevel::Context);
        assert_eq!(made.created_at, 5);
    }

    #[test]
    fn a_second_rule_for_the_same_deployment_and_course_is_a_conflict() {
        let existing = vec![rule(1, Some("d1"), Some("sales"), 0)];
        let (code, _) = refused(
            json!({"deploymentId": "d1", "contextId": "sales", "claims": {"a": 1}}),
            &existing,
        );
        assert_eq!(code, "ADMIN_ROUTE_CONFLICT");
        let other: RouteInput =
            serde_json::from_value(json!({"contextId": "sales", "claims": {"a": 1}}))
                .expect("shape");
        assert!(other.validate(0, &config(), &existing).is_ok());
    }
}
