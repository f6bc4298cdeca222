//! Assignment and Grade Services 2.0: line items (list, create, get, update,
//! delete), scores and results, as the platform's AGS claim grants them.
//!
//! - **Scopes.** Each call needs one scope, and the context's AGS claim must list it
//!   (else [`ServiceError::ScopeNotGranted`]); the token asked for carries that scope
//!   only (reading line items uses `lineitem` when granted, so managing and reading
//!   share one token).
//! - **Media types** exactly as the spec names them, in `Accept` and `Content-Type`.
//! - **Moodle's line item URLs carry a query** (`…/lineitems/7/lineitem?type_id=2`):
//!   `/scores` and `/results` go into the path, the query is kept.
//! - **Line item URLs from the caller** must be on the origin of the context's AGS
//!   endpoints: the tool's bearer token goes wherever the URL points.
//! - **Shapes** are the spec's own JSON (camelCase); members this code does not know
//!   (platform extensions such as Canvas's `submission_type`) are kept in place, in
//!   both directions. Platforms' ids given as numbers are read as strings, numbers
//!   given as strings as numbers.

use crate::launch::AgsEndpoint;
use crate::platform::{FieldError, Platform};
use crate::services::answer;
use crate::services::outbound::{Method, OutboundRequest};
use crate::services::paging::{follow_pages, next_url, MAX_PAGES};
use crate::services::records::{ContextRecord, LinkRecord};
use crate::services::token::AccessTokens;
use crate::services::ServiceError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Manage line items.
pub const SCOPE_LINEITEM: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem";
/// Read line items.
pub const SCOPE_LINEITEM_READONLY: &str =
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly";
/// Read results.
pub const SCOPE_RESULT_READONLY: &str =
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly";
/// Post scores.
pub const SCOPE_SCORE: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/score";

/// One line item.
pub const MEDIA_LINEITEM: &str = "application/vnd.ims.lis.v2.lineitem+json";
/// A page of line items.
pub const MEDIA_LINEITEMS: &str = "application/vnd.ims.lis.v2.lineitemcontainer+json";
/// A score.
pub const MEDIA_SCORE: &str = "application/vnd.ims.lis.v1.score+json";
/// A page of results.
pub const MEDIA_RESULTS: &str = "application/vnd.ims.lis.v2.resultcontainer+json";

/// `activityProgress` values (AGS 2.0 §3.4.5).
pub const ACTIVITY_PROGRESS: [&str; 5] = [
    "Initialized",
    "Started",
    "InProgress",
    "Submitted",
    "Completed",
];
/// `gradingProgress` values (AGS 2.0 §3.4.6).
pub const GRADING_PROGRESS: [&str; 5] = [
    "FullyGraded",
    "Pending",
    "PendingManual",
    "Failed",
    "NotReady",
];

/// Longest label accepted, bytes.
pub const MAX_LABEL_LEN: usize = 1024;
/// Longest id (user id, resource link id) accepted, bytes (LTI's limit).
pub const MAX_ID_LEN: usize = 255;
/// Longest `resourceId` or `tag`, bytes.
pub const MAX_TAG_LEN: usize = 1024;

/// A line item, as platforms and the app exchange it (AGS 2.0 §3.2). Every field but
/// the label is optional in what a platform answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    /// The line item's URL (set by the platform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub label: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "plain_number"
    )]
    pub score_maximum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_link_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grades_released: Option<bool>,
    /// Members this shape has no field for (platform extensions), kept in place.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Filters of a line items list (passed to the platform as query parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItemFilter {
    pub resource_link_id: Option<String>,
    pub resource_id: Option<String>,
    pub tag: Option<String>,
    /// Page size asked of the platform (it may choose another).
    pub limit: Option<u32>,
}

/// A score to post, as the app sends it (AGS 2.0 §3.4). Unset progress values and
/// timestamp get the defaults of [`Score`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreInput {
    /// The platform's user id (`sub`).
    #[serde(default)]
    pub user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_given: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_maximum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// RFC 3339; default: now, with milliseconds. Give it when retrying a score, so
    /// the platform sees the same score, not a newer one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grading_progress: Option<String>,
    /// Other members (`submission`, `scoringUserId`, platform extensions), sent as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A score as sent to the platform: every default filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    pub user_id: String,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "plain_number"
    )]
    pub score_given: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "plain_number"
    )]
    pub score_maximum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub timestamp: String,
    pub activity_progress: String,
    pub grading_progress: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// What posting a score did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScorePosted {
    /// The line item the score went to.
    pub line_item: String,
    /// The score exactly as sent (with the timestamp used: retry with it).
    pub score: Score,
    /// The platform's status (200, 201, 202 or 204).
    pub status: u16,
    /// The platform's answer body, when it sent JSON (Canvas sends a `resultUrl`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_answer: Option<Value>,
}

/// Filters of a results list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultsQuery {
    /// Only this platform user's result.
    pub user_id: Option<String>,
    /// Page size asked of the platform.
    pub limit: Option<u32>,
}

/// One result (AGS 2.0 §3.3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgsResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score_of: Option<String>,
    #[serde(default)]
    pub user_id: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "plain_number"
    )]
    pub result_score: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "plain_number"
    )]
    pub result_maximum: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scoring_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Results of a line item, with what could not be read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    pub results: Vec<AgsResult>,
    /// Pages read.
    pub pages: usize,
    /// Entries left out, each with why (never dropped silently).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Writes integral numbers without a fraction (`100`, not `100.0`).
fn plain_number<S: serde::Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => s.serialize_i64(*v as i64),
        Some(v) => s.serialize_f64(*v),
        None => s.serialize_none(),
    }
}

/// The AGS endpoint a backend job has for a course (and one of its links): what the
/// latest launch recorded.
pub fn endpoint_of(context: &ContextRecord, link: Option<&LinkRecord>) -> AgsEndpoint {
    AgsEndpoint {
        scope: link
            .filter(|l| !l.ags_scopes.is_empty())
            .map_or_else(|| context.ags_scopes.clone(), |l| l.ags_scopes.clone()),
        lineitems: context.lineitems.clone(),
        lineitem: link.and_then(|l| l.lineitem.clone()),
        extra: Map::new(),
    }
}

/// The calls of AGS 2.0.
pub struct Ags {
    tokens: Arc<AccessTokens>,
}

fn field(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

fn granted(endpoint: &AgsEndpoint, scope: &str) -> bool {
    endpoint.scope.iter().any(|s| s.trim() == scope)
}

fn require(endpoint: &AgsEndpoint, scope: &'static str) -> Result<&'static str, ServiceError> {
    if granted(endpoint, scope) {
        Ok(scope)
    } else {
        Err(ServiceError::ScopeNotGranted(scope.to_string()))
    }
}

/// The scope to read line items with: `lineitem` when granted (one token for reading
/// and managing), else `lineitem.readonly`.
fn read_scope(endpoint: &AgsEndpoint) -> Result<&'static str, ServiceError> {
    require(endpoint, SCOPE_LINEITEM).or_else(|_| require(endpoint, SCOPE_LINEITEM_READONLY))
}

fn lineitems_url(endpoint: &AgsEndpoint) -> Result<&str, ServiceError> {
    endpoint
        .lineitems
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or(ServiceError::ServiceNotOffered(
            "a line items service (AGS lineitems)",
        ))
}

/// Checks that `url` (a line item URL from the caller) is on the origin of the
/// endpoint's `lineitems` or `lineitem`: the bearer token goes where it points.
pub fn check_line_item_url(
    endpoint: &AgsEndpoint,
    url: &str,
    name: &'static str,
) -> Result<(), ServiceError> {
    let known: Vec<url::Origin> = [endpoint.lineitems.as_deref(), endpoint.lineitem.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(|u| url::Url::parse(u).ok())
        .map(|u| u.origin())
        .collect();
    if known.is_empty() {
        return Err(ServiceError::ServiceNotOffered(
            "the Assignment and Grade Services",
        ));
    }
    let parsed = url::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http"));
    match parsed {
        None => Err(ServiceError::Invalid(vec![field(
            name,
            "must be the absolute URL of a line item",
        )])),
        Some(u) if !known.contains(&u.origin()) => Err(ServiceError::Invalid(vec![field(
            name,
            "must be a line item of this course's platform",
        )])),
        Some(_) => Ok(()),
    }
}

/// `line_item_url` with `/<suffix>` appended to its path; query kept, fragment
/// dropped (Moodle: `…/lineitem?type_id=2` → `…/lineitem/scores?type_id=2`).
pub fn sub_resource(line_item_url: &str, suffix: &str) -> String {
    let without_fragment = line_item_url.split('#').next().unwrap_or(line_item_url);
    let (path, query) = match without_fragment.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (without_fragment, None),
    };
    let mut url = format!("{}/{suffix}", path.trim_end_matches('/'));
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// `url` with `pairs` added to its query (after whatever query it has), form-encoded.
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return url.to_string();
    }
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs.iter().copied())
        .finish();
    let mut out = base.to_string();
    if !base.contains('?') {
        out.push('?');
    } else if !(base.ends_with('?') || base.ends_with('&')) {
        out.push('&');
    }
    out.push_str(&encoded);
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// `ms` (epoch milliseconds) as RFC 3339 UTC with milliseconds:
/// `2030-03-17T17:46:40.000Z`.
pub fn rfc3339_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// True if `value` is an RFC 3339 date-time (`YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`).
pub fn is_rfc3339(value: &str) -> bool {
    let b = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range.clone())
            .is_some_and(|s| s.len() == range.len() && s.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: u8| b.get(i).is_some_and(|x| x.eq_ignore_ascii_case(&c));
    if !(digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && (at(10, b'T') || at(10, b' '))
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19))
    {
        return false;
    }
    let num = |r: std::ops::Range<usize>| value[r].parse::<u32>().unwrap_or(99);
    if !(1..=12).contains(&num(5..7))
        || !(1..=31).contains(&num(8..10))
        || num(11..13) > 23
        || num(14..16) > 59
        || num(17..19) > 60
    {
        return false;
    }
    let mut i = 19;
    if at(i, b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    match b.get(i) {
        Some(b'Z') | Some(b'z') => i + 1 == b.len(),
        Some(b'+') | Some(b'-') => {
            i + 6 == b.len()
                && digits(i + 1..i + 3)
                && at(i + 3, b':')
                && digits(i + 4..i + 6)
                && num(i + 1..i + 3) <= 23
                && num(i + 4..i + 6) <= 59
        }
        _ => false,
    }
}

fn check_len(errors: &mut Vec<FieldError>, name: &'static str, value: Option<&str>, max: usize) {
    if value.is_some_and(|v| v.len() > max) {
        errors.push(field(name, format!("must be at most {max} bytes")));
    }
}

/// Every invalid field of a line item to create or update.
pub fn validate_line_item(item: &LineItem) -> Result<(), ServiceError> {
    let mut errors = Vec::new();
    if item.label.trim().is_empty() {
        errors.push(field("label", "is required"));
    }
    check_len(&mut errors, "label", Some(&item.label), MAX_LABEL_LEN);
    match item.score_maximum {
        None => errors.push(field("scoreMaximum", "is required")),
        Some(max) if !max.is_finite() || max <= 0.0 => {
            errors.push(field("scoreMaximum", "must be a number greater than 0"))
        }
        Some(_) => {}
    }
    check_len(
        &mut errors,
        "resourceLinkId",
        item.resource_link_id.as_deref(),
        MAX_ID_LEN,
    );
    check_len(
        &mut errors,
        "resourceId",
        item.resource_id.as_deref(),
        MAX_TAG_LEN,
    );
    check_len(&mut errors, "tag", item.tag.as_deref(), MAX_TAG_LEN);
    for (name, value) in [
        ("startDateTime", &item.start_date_time),
        ("endDateTime", &item.end_date_time),
    ] {
        if value.as_deref().is_some_and(|v| !is_rfc3339(v)) {
            errors.push(field(name, "must be an RFC 3339 date-time"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ServiceError::Invalid(errors))
    }
}

/// The score to send for `input`: validated, defaults filled in (`timestamp` =
/// `now_ms` in RFC 3339 with milliseconds, `activityProgress` `Completed`,
/// `gradingProgress` `FullyGraded`).
pub fn score_of(input: ScoreInput, now_ms: i64) -> Result<Score, ServiceError> {
    let mut errors = Vec::new();
    let user_id = input.user_id.trim().to_string();
    if user_id.is_empty() {
        errors.push(field("userId", "is required"));
    }
    check_len(&mut errors, "userId", Some(&user_id), MAX_ID_LEN);
    if let Some(given) = input.score_given {
        if !given.is_finite() || given < 0.0 {
            errors.push(field("scoreGiven", "must be a number of at least 0"));
        }
        if input.score_maximum.is_none() {
            errors.push(field("scoreMaximum", "is required with scoreGiven"));
        }
    }
    if input
        .score_maximum
        .is_some_and(|max| !max.is_finite() || max <= 0.0)
    {
        errors.push(field("scoreMaximum", "must be a number greater than 0"));
    }
    if input.timestamp.as_deref().is_some_and(|t| !is_rfc3339(t)) {
        errors.push(field("timestamp", "must be an RFC 3339 date-time"));
    }
    let activity = input
        .activity_progress
        .unwrap_or_else(|| "Completed".into());
    if !ACTIVITY_PROGRESS.contains(&activity.as_str()) {
        errors.push(field(
            "activityProgress",
            format!("must be one of {}", ACTIVITY_PROGRESS.join(", ")),
        ));
    }
    let grading = input
        .grading_progress
        .unwrap_or_else(|| "FullyGraded".into());
    if !GRADING_PROGRESS.contains(&grading.as_str()) {
        errors.push(field(
            "gradingProgress",
            format!("must be one of {}", GRADING_PROGRESS.join(", ")),
        ));
    }
    if !errors.is_empty() {
        return Err(ServiceError::Invalid(errors));
    }
    Ok(Score {
        user_id,
        score_given: input.score_given,
        score_maximum: input.score_maximum,
        comment: input.comment,
        timestamp: input.timestamp.unwrap_or_else(|| rfc3339_millis(now_ms)),
        activity_progress: activity,
        grading_progress: grading,
        extra: input.extra,
    })
}

fn string(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::to_string)
}

/// A line item from a platform's JSON: lenient on types, strict on being an object.
fn read_line_item(value: Value) -> Result<LineItem, String> {
    let Value::Object(mut map) = value else {
        return Err("a line item is not a JSON object".into());
    };
    let mut take = |name: &str| map.remove(name);
    let item = LineItem {
        id: answer::id_string(take("id").as_ref()),
        label: string(take("label").as_ref()).unwrap_or_default(),
        score_maximum: answer::number(take("scoreMaximum").as_ref()),
        resource_id: answer::id_string(take("resourceId").as_ref()),
        resource_link_id: answer::id_string(take("resourceLinkId").as_ref()),
        tag: string(take("tag").as_ref()),
        start_date_time: string(take("startDateTime").as_ref()),
        end_date_time: string(take("endDateTime").as_ref()),
        grades_released: take("gradesReleased").as_ref().and_then(Value::as_bool),
        extra: Map::new(),
    };
    Ok(LineItem { extra: map, ..item })
}

/// A result from a platform's JSON.
fn read_result(value: Value) -> Result<AgsResult, String> {
    let Value::Object(mut map) = value else {
        return Err("a result is not a JSON object".into());
    };
    let mut take = |name: &str| map.remove(name);
    let user_id = answer::id_string(take("userId").as_ref())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| "a result has no userId".to_string())?;
    let result = AgsResult {
        id: answer::id_string(take("id").as_ref()),
        score_of: answer::id_string(take("scoreOf").as_ref()),
        user_id,
        result_score: answer::number(take("resultScore").as_ref()),
        result_maximum: answer::number(take("resultMaximum").as_ref()),
        scoring_user_id: answer::id_string(take("scoringUserId").as_ref()),
        comment: string(take("comment").as_ref()),
        extra: Map::new(),
    };
    Ok(AgsResult {
        extra: map,
        ..result
    })
}

fn list_of(value: Value, what: &str) -> Result<Vec<Value>, ServiceError> {
    match value {
        Value::Array(items) => Ok(items),
        _ => Err(ServiceError::PlatformAnswerInvalid(format!(
            "{what} is not a JSON array"
        ))),
    }
}

fn body_of<T: Serialize>(value: &T) -> Result<Vec<u8>, ServiceError> {
    serde_json::to_vec(value)
        .map_err(|e| ServiceError::Invalid(vec![field("body", format!("cannot be encoded: {e}"))]))
}

/// Keeps `item` unless it carries a filtered member with another value (platforms
/// that ignore the filter parameters otherwise answer every line item).
fn matches_filter(item: &LineItem, filter: &LineItemFilter) -> bool {
    let differs = |want: &Option<String>, have: &Option<String>| matches!((want, have), (Some(w), Some(h)) if w != h);
    !(differs(&filter.resource_link_id, &item.resource_link_id)
        || differs(&filter.resource_id, &item.resource_id)
        || differs(&filter.tag, &item.tag))
}

impl Ags {
    /// AGS calls with tokens from `tokens`.
    pub fn new(tokens: Arc<AccessTokens>) -> Self {
        Self { tokens }
    }

    /// Every line item of the course (all pages), filtered by `filter`.
    pub async fn line_items(
        &self,
        platform: &Platform,
        endpoint: &AgsEndpoint,
        filter: &LineItemFilter,
        deployment_id: Option<&str>,
    ) -> Result<Vec<LineItem>, ServiceError> {
        let scope = read_scope(endpoint)?;
        let base = lineitems_url(endpoint)?;
        let limit = filter.limit.map(|l| l.to_string());
        let pairs: Vec<(&str, &str)> = [
            ("resource_link_id", filter.resource_link_id.as_deref()),
            ("resource_id", filter.resource_id.as_deref()),
            ("tag", filter.tag.as_deref()),
            ("limit", limit.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let first = with_query(base, &pairs);
        let pages = follow_pages(&first, MAX_PAGES, |url| async move {
            let request = OutboundRequest::new(Method::Get, &url).header("Accept", MEDIA_LINEITEMS);
            let response = self
                .tokens
                .call(platform, &[scope], deployment_id, request)
                .await?;
            let next = next_url(&response, &url);
            let items = list_of(
                answer::json(&response, "the line items page")?,
                "the line items page",
            )?
            .into_iter()
            .map(read_line_item)
            .collect::<Result<Vec<_>, _>>()
            .map_err(ServiceError::PlatformAnswerInvalid)?;
            Ok((items, next))
        })
        .await?;
        Ok(pages
            .into_iter()
            .flatten()
            .filter(|item| matches_filter(item, filter))
            .collect())
    }

    /// Creates a line item in the course; returns it as the platform stored it.
    pub async fn create_line_item(
        &self,
        platform: &Platform,
        endpoint: &AgsEndpoint,
        input: LineItem,
        deployment_id: Option<&str>,
    ) -> Result<LineItem, ServiceError> {
        let scope = require(endpoint, SCOPE_LINEITEM)?;
        let url = lineitems_url(endpoint)?;
        validate_line_item(&input)?;
        let input = LineItem { id: None, ..input };
        let request = OutboundRequest::new(Method::Post, url)
            .header("Accept", MEDIA_LINEITEM)
            .body(MEDIA_LINEITEM, body_of(&input)?);
        let response = self
            .tokens
            .call(platform, &[scope], deployment_id, request)
            .await?;
        let created = read_line_item(answer::json(&response, "the created line item")?)
            .map_err(ServiceError::PlatformAnswerInvalid)?;
        if created.id.as_deref().is_none_or(str::is_empty) {
            return Err(ServiceError::PlatformAnswerInvalid(
                "the created line item has no id".into(),
            ));
        }
        Ok(created)
    }

    /// The line item at `url`.
    pub async fn line_item(
        &self,
        platform: &Platform,
        endpoint: &AgsEndpoint,
        url: &str,
        deployment_id: Option<&str>,
    ) -> Result<LineItem, ServiceError> {
        let scope = read_scope(endpoint)?;
        check_line_item_url(endpoint, url, "url")?;
        let request = OutboundRequest::new(Method::Get, url).header("Accept", MEDIA_LINEITEM);
        let response = self
            .tokens
            .call(platform, &[scope], deployment_id, request)
            .await?;
        read_line_item(answer::json(&response, "the line item")?)
            .map_err(ServiceError::PlatformAnswerInvalid)
    }

    /// Replaces the line item at `url` with `input` (PUT; its `id` is set to `url`).
    pub async fn update_line_item(
        &self,
        platform: &Platform,
        endpoint: &AgsEndpoint,
        url: &str,
        input: LineItem,
        deployment_id: Option<&str>,
    ) -> Result<LineItem, ServiceError> {
        let scope = require(endpoint, SCOPE_LINEITEM)?;
        check_line_item_url(endpoint, url, "url")?;
        validate_line_item(&input)?;
        let input = LineItem {
            id: Some(url.to_string()),
            ..input
        };
        let request = OutboundRequest::new(Method::Put, url)
            .header("Accept", MEDIA_LINEITEM)
            .body(MEDIA_LINEITEM, body_of(&input)?);
        let response = self
            .tokens
            .call(platform, &[scope], deployment_id, request)
            .await?;
        if response.body.iter().all(u8::is_ascii_whitespace) {
            // Some platforms answer 204: the line item is what was sent.
            return Ok(input);
        }
        read_line_item(answer::json(&response, "the updated line item")?)
            .map_err(ServiceError::PlatformAnswerInvalid)
    }

    /// Deletes the line item at `url`.
    pub async fn delete_line_item(
        &self,
        platform: &Platform,
        endpoint: &AgsEndpoint,
        url: &str,
        deployment_id: Option<&str>,
    ) -> Result<(), ServiceError> {
        let scope = require(endpoint, SCOPE_LINEITEM)?;
        check_line_item_url(endpoint, url, "url")?;
        let request = OutboundRequest::new(Method::Delete, url);
        self.tokens
            .call(platform, &[scope], deployment_id, request)
            .await?;
        Ok(())
    }

    /// The line item of resource link `template.resourceLinkId` (and `tag`, if the
    /// template has one), or a new one made from `template` when there is none.
    pub async fn find_or_create_line_item(
        &self,
        platform: &Platform,
        endpoint: &AgsEndpoint,
        template: LineItem,
        deployment_id: Option<&str>,
    ) -> Result<LineItem, ServiceError> {
        let filter = LineItemFilter {
            resource_link_id: template.resource_link_id.clone(),
            resource_id: None,
            tag: template.tag.clone(),
            limit: None,
        };
        let found = self
            .line_items(platform, endpoint, &filter, deployment_id)
            .await?
            .into_iter()
            // Only an exact match: an item without the members is not this link's.
            .find(|item| {
                item.resource_link_id == filter.resource_link_id
                    && (filter.tag.is_none() || item.tag == filter.tag)
            });
        match found {
            Some(item) => Ok(item),
            None => {
                self.create_line_item(platform, endpoint, template, deployment_id)
                    .await
            }
        }
    }

    /// Posts a score to the line item at `line_item_url` (its `/scores`).
    pub async fn post_score(
        &self,
        platform: &Platform,
        endpoint: &AgsEndpoint,
        line_item_url: &str,
        input: ScoreInput,
        deployment_id: Option<&str>,
    ) -> Result<ScorePosted, ServiceError> {
        let scope = require(endpoint, SCOPE_SCORE)?;
        check_line_item_url(endpoint, line_item_url, "lineItem")?;
        let score = score_of(input, self.tokens.clock().now_millis())?;
        let request = OutboundRequest::new(Method::Post, sub_resource(line_item_url, "scores"))
            .header("Accept", "application/json")
            .body(MEDIA_SCORE, body_of(&score)?);
        let response = self
            .tokens
            .call(platform, &[scope], deployment_id, request)
            .await?;
        // The score is in: whatever the body says (often nothing) does not undo that.
        let platform_answer = answer::json(&response, "the score answer").ok();
        Ok(ScorePosted {
            line_item: line_item_url.to_string(),
            score,
            status: response.status,
            platform_answer,
        })
    }

    /// The results of the line item at `line_item_url` (all pages of its `/results`).
    pub async fn results(
        &self,
        platform: &Platform,
        endpoint: &AgsEndpoint,
        line_item_url: &str,
        query: &ResultsQuery,
        deployment_id: Option<&str>,
    ) -> Result<Results, ServiceError> {
        let scope = require(endpoint, SCOPE_RESULT_READONLY)?;
        check_line_item_url(endpoint, line_item_url, "lineItemUrl")?;
        let limit = query.limit.map(|l| l.to_string());
        let pairs: Vec<(&str, &str)> = [
            ("user_id", query.user_id.as_deref()),
            ("limit", limit.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        let first = with_query(&sub_resource(line_item_url, "results"), &pairs);
        let pages = follow_pages(&first, MAX_PAGES, |url| async move {
            let request = OutboundRequest::new(Method::Get, &url).header("Accept", MEDIA_RESULTS);
            let response = self
                .tokens
                .call(platform, &[scope], deployment_id, request)
                .await?;
            let next = next_url(&response, &url);
            let entries = list_of(
                answer::json(&response, "the results page")?,
                "the results page",
            )?;
            Ok((entries, next))
        })
        .await?;
        let mut out = Results {
            pages: pages.len(),
            ..Results::default()
        };
        for (index, entry) in pages.into_iter().flatten().enumerate() {
            match read_result(entry) {
                Ok(result) => {
                    // A platform that ignores the user filter answers everyone.
                    if query.user_id.as_ref().is_none_or(|u| *u == result.user_id) {
                        out.results.push(result);
                    }
                }
                Err(why) => out.warnings.push(format!("result {index} left out: {why}")),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sub_resources_go_into_the_path_and_keep_the_query() {
        assert_eq!(
            sub_resource("https://moodle.example.edu/mod/lti/services.php/2/lineitems/7/lineitem?type_id=2", "scores"),
            "https://moodle.example.edu/mod/lti/services.php/2/lineitems/7/lineitem/scores?type_id=2"
        );
        assert_eq!(
            sub_resource(
                "https://canvas.example.edu/api/lti/courses/1/line_items/5",
                "results"
            ),
            "https://canvas.example.edu/api/lti/courses/1/line_items/5/results"
        );
        assert_eq!(
            sub_resource("https://lms.example.edu/items/5/?a=1&b=2#frag", "scores"),
            "https://lms.example.edu/items/5/scores?a=1&b=2"
        );
        assert_eq!(
            sub_resource("https://lms.example.edu/items/5?", "scores"),
            "https://lms.example.edu/items/5/scores"
        );
    }

    #[test]
    fn query_parameters_are_added_after_the_existing_query() {
        assert_eq!(
            with_query(
                "https://m.example.edu/lineitems?type_id=1",
                &[("tag", "a b&c")]
            ),
            "https://m.example.edu/lineitems?type_id=1&tag=a+b%26c"
        );
        assert_eq!(
            with_query(
                "https://c.example.edu/line_items",
                &[("resource_link_id", "x"), ("limit", "5")]
            ),
            "https://c.example.edu/line_items?resource_link_id=x&limit=5"
        );
        assert_eq!(with_query("https://x/?", &[("a", "1")]), "https://x/?a=1");
        assert_eq!(
            with_query("https://x/?b=2&", &[("a", "1")]),
            "https://x/?b=2&a=1"
        );
        assert_eq!(
            with_query("https://x/p#f", &[("a", "1")]),
            "https://x/p?a=1#f"
        );
        assert_eq!(with_query("https://x/p?q=%2F", &[]), "https://x/p?q=%2F");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(
            rfc3339_millis(1_900_000_000_123),
            "2030-03-17T17:46:40.123Z"
        );
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        for good in [
            "2030-03-17T17:46:40.123Z",
            "2030-03-17T17:46:40Z",
            "2030-03-17t17:46:40z",
            "2030-03-17T17:46:40.123456+01:00",
            "2030-03-17T17:46:40-05:30",
        ] {
            assert!(is_rfc3339(good), "{good}");
        }
        for bad in [
            "",
            "2030-03-17",
            "2030-03-17T17:46:40",
            "2030-13-17T17:46:40Z",
            "2030-03-17T24:00:00Z",
            "2030-03-17T17:46:40.Z",
            "2030-03-17T17:46:40+0100",
            "2030-03-17T17:46:40Z ",
            "yesterday",
            "2030-03-17T17:46:40+01:00é",
            "２０３０-03-17T17:46:40Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn a_score_gets_its_defaults_and_the_caller_may_override_them() {
        let score = score_of(
            ScoreInput {
                user_id: " u1 ".into(),
                ..Default::default()
            },
            1_900_000_000_123,
        )
        .expect("valid");
        assert_eq!(
            serde_json::to_value(&score).expect("json"),
            json!({"userId": "u1", "timestamp": "2030-03-17T17:46:40.123Z",
                   "activityProgress": "Completed", "gradingProgress": "FullyGraded"})
        );
        let score = score_of(
            ScoreInput {
                user_id: "u1".into(),
                score_given: Some(7.25),
                score_maximum: Some(10.0),
                timestamp: Some("2030-01-01T00:00:00Z".into()),
                activity_progress: Some("InProgress".into()),
                grading_progress: Some("Pending".into()),
                ..Default::default()
            },
            0,
        )
        .expect("valid");
        assert_eq!(score.timestamp, "2030-01-01T00:00:00Z");
        assert_eq!(
            serde_json::to_value(&score).expect("json")["scoreGiven"],
            json!(7.25)
        );
        assert_eq!(
            (
                score.activity_progress.as_str(),
                score.grading_progress.as_str()
            ),
            ("InProgress", "Pending")
        );
        let extra_credit = score_of(
            ScoreInput {
                user_id: "u1".into(),
                score_given: Some(11.0),
                score_maximum: Some(10.0),
                ..Default::default()
            },
            0,
        );
        assert!(extra_credit.is_ok(), "scoreGiven may exceed scoreMaximum");
    }

    #[test]
    fn an_app_line_item_keeps_its_extensions_both_ways() {
        let item: LineItem = serde_json::from_value(json!({
            "label": "Essay", "scoreMaximum": 100,
            "https://canvas.instructure.com/lti/submission_type": {"type": "external_tool"}
        }))
        .expect("reads");
        assert_eq!(item.score_maximum, Some(100.0));
        assert_eq!(item.extra.len(), 1);
        validate_line_item(&item).expect("valid");
        assert_eq!(
            serde_json::to_value(&item).expect("json"),
            json!({"label": "Essay", "scoreMaximum": 100,
                   "https://canvas.instructure.com/lti/submission_type": {"type": "external_tool"}})
        );
        assert!(read_line_item(json!(["x"])).is_err());
        let lenient = read_line_item(
            json!({"id": 5, "label": 3, "scoreMaximum": "12.5", "resourceLinkId": 9}),
        )
        .expect("lenient");
        assert_eq!(lenient.id.as_deref(), Some("5"));
        assert_eq!(lenient.score_maximum, Some(12.5));
        assert_eq!(lenient.resource_link_id.as_deref(), Some("9"));
        assert_eq!(lenient.label, "");
    }

    #[test]
    fn a_backend_job_endpoint_comes_from_the_records() {
        let platform_id = uuid::Uuid::new_v4();
        let context = ContextRecord {
            platform_id,
            context_id: "c".into(),
            issuer: "https://lms".into(),
            client_id: "x".into(),
            deployment_id: "d".into(),
            title: None,
            lineitems: Some("https://lms/li".into()),
            ags_scopes: vec![SCOPE_LINEITEM.into()],
            memberships_url: None,
            updated_at: 0,
        };
        let link = LinkRecord {
            platform_id,
            context_id: "c".into(),
            resource_link_id: "r".into(),
            lineitem: Some("https://lms/li/1".into()),
            ags_scopes: vec![SCOPE_SCORE.into()],
            updated_at: 0,
        };
        let ep = endpoint_of(&context, Some(&link));
        assert_eq!(ep.lineitems.as_deref(), Some("https://lms/li"));
        assert_eq!(ep.lineitem.as_deref(), Some("https://lms/li/1"));
        assert_eq!(ep.scope, vec![SCOPE_SCORE]);
        assert_eq!(endpoint_of(&context, None).scope, vec![SCOPE_LINEITEM]);
    }

    #[test]
    fn line_item_urls_must_be_on_the_platforms_origin() {
        let ep = AgsEndpoint {
            scope: vec![],
            lineitems: Some("https://lms.example.edu/c/1/lineitems".into()),
            lineitem: None,
            extra: Map::new(),
        };
        assert!(check_line_item_url(&ep, "https://lms.example.edu/c/2/lineitems/5", "url").is_ok());
        for bad in [
            "https://lms.example.edu.evil.com/x",
            "http://lms.example.edu/c/1/lineitems/1",
            "https://lms.example.edu:8443/c/1/lineitems/1",
            "/c/1/lineitems/1",
            "javascript:alert(1)",
        ] {
            assert!(
                matches!(
                    check_line_item_url(&ep, bad, "url"),
                    Err(ServiceError::Invalid(_))
                ),
                "{bad}"
            );
        }
        let none = AgsEndpoint {
            lineitems: None,
            ..ep
        };
        assert!(matches!(
            check_line_item_url(&none, "https://lms.example.edu/x", "url"),
            Err(ServiceError::ServiceNotOffered(_))
        ));
    }
}
