//! The demo course's gradebook behind Assignment and Grade Services 2.0: line items
//! (list with `resource_link_id` / `resource_id` / `tag` filters, create, read,
//! replace, delete), scores and results, checked like a strict LMS checks them. Each
//! tool sees only its own line items. The demo activity has a line item from the
//! start, and a deep-linking answer's resource link with a `lineItem` gets one when
//! the platform accepts it; a launch of such a link carries its URL as `lineitem`.
//!
//! The page `/platform/gradebook` shows every line item with the scores as they land,
//! and the roster ([`super::roster`]); `/platform/gradebook.json` is the same as JSON.

use super::roster::{self, Member};
use super::services::{
    self, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE,
};
use super::DemoPlatform;
use lti_http::{HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// A line item.
pub const MEDIA_LINEITEM: &str = "application/vnd.ims.lis.v2.lineitem+json";
/// A page of line items.
pub const MEDIA_LINEITEMS: &str = "application/vnd.ims.lis.v2.lineitemcontainer+json";
/// A score.
pub const MEDIA_SCORE: &str = "application/vnd.ims.lis.v1.score+json";
/// A page of results.
pub const MEDIA_RESULTS: &str = "application/vnd.ims.lis.v2.resultcontainer+json";
/// Line items or results per page, at most.
pub const PAGE_SIZE: usize = 10;
/// At most this many line items in the course.
pub const MAX_LINE_ITEMS: usize = 500;
/// At most this many scores kept per line item (the oldest go first).
pub const MAX_SCORES: usize = 1000;
const MAX_TEXT: usize = 1024;
const ACTIVITY: [&str; 5] = [
    "Initialized",
    "Started",
    "InProgress",
    "Submitted",
    "Completed",
];
const GRADING: [&str; 5] = [
    "FullyGraded",
    "Pending",
    "PendingManual",
    "Failed",
    "NotReady",
];

/// A score as the platform received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceivedScore {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_given: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_maximum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub timestamp: String,
    pub activity_progress: String,
    pub grading_progress: String,
    /// `timestamp` in epoch milliseconds.
    #[serde(skip)]
    pub timestamp_ms: i64,
}

/// A line item of the demo course, with every score it received.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GradebookLineItem {
    /// Its URL.
    pub id: String,
    /// The tool it belongs to.
    pub client_id: String,
    pub label: String,
    pub score_maximum: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_link_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grades_released: Option<bool>,
    /// Every score received, oldest first.
    pub scores: Vec<ReceivedScore>,
    #[serde(skip)]
    number: u64,
}

impl GradebookLineItem {
    /// The line item as AGS answers it.
    fn to_json(&self) -> Value {
        let mut item = json!({"id": self.id, "label": self.label, "scoreMaximum": json_number(self.score_maximum)});
        let optional = [
            ("resourceId", &self.resource_id),
            ("resourceLinkId", &self.resource_link_id),
            ("tag", &self.tag),
            ("startDateTime", &self.start_date_time),
            ("endDateTime", &self.end_date_time),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                item[name] = json!(value);
            }
        }
        if let Some(released) = self.grades_released {
            item["gradesReleased"] = json!(released);
        }
        item
    }

    /// The latest score of each user (by timestamp; the later received on a tie), in
    /// the order users first got one.
    pub fn latest_scores(&self) -> Vec<ReceivedScore> {
        let mut latest: Vec<ReceivedScore> = Vec::new();
        for score in &self.scores {
            match latest.iter_mut().find(|s| s.user_id == score.user_id) {
                Some(slot) if slot.timestamp_ms <= score.timestamp_ms => *slot = score.clone(),
                Some(_) => {}
                None => latest.push(score.clone()),
            }
        }
        latest
    }
}

/// A line item body, checked, and its resource link.
type LineItemFields = (Map<String, Value>, Option<String>);

/// The gradebook's state.
#[derive(Debug, Default)]
pub(super) struct Gradebook {
    items: Vec<GradebookLineItem>,
    next: u64,
}

/// A number as JSON: integral values without a fraction.
fn json_number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// A number as people read it.
pub fn plain(value: f64) -> String {
    match json_number(value) {
        Value::Number(n) => n.to_string(),
        _ => value.to_string(),
    }
}

/// Epoch milliseconds of an RFC 3339 date-time (`YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`).
pub fn epoch_millis(value: &str) -> Option<i64> {
    if !lti_core::services::ags::is_rfc3339(value) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| value.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hour, minute, second) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let rest = &value[19..];
    let (fraction, zone) = match rest.strip_prefix('.') {
        Some(f) => {
            let digits = f.bytes().take_while(u8::is_ascii_digit).count();
            (&f[..digits], &f[digits..])
        }
        None => ("", rest),
    };
    let millis = format!("{fraction:0<3}")[..3].parse::<i64>().ok()?;
    let offset = match zone {
        "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let hours = z.get(1..3)?.parse::<i64>().ok()?;
            let minutes = z.get(4..6)?.parse::<i64>().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hour * 3600 + minute * 60 + second - offset) * 1000 + millis)
}

/// A field of a JSON body that must be a string of at most [`MAX_TEXT`] bytes.
fn text(body: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_TEXT => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(format!("{name} is longer than {MAX_TEXT} bytes")),
        Some(_) => Err(format!("{name} must be a string")),
    }
}

/// A field that must be a finite number.
fn finite(body: &Map<String, Value>, name: &str) -> Result<Option<f64>, String> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| format!("{name} must be a finite number")),
        Some(_) => Err(format!("{name} must be a number")),
    }
}

impl DemoPlatform {
    /// Every line item of the demo course (of every tool), oldest first.
    pub fn line_items(&self) -> Vec<GradebookLineItem> {
        self.gradebook
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .items
            .clone()
    }

    /// The line item at `url`.
    pub fn line_item(&self, url: &str) -> Option<GradebookLineItem> {
        self.line_items().into_iter().find(|i| i.id == url)
    }

    /// The URL of the first line item of tool `client_id` for resource link `rlid`.
    pub fn line_item_url_for(&self, client_id: &str, rlid: &str) -> Option<String> {
        self.line_items()
            .into_iter()
            .find(|i| i.client_id == client_id && i.resource_link_id.as_deref() == Some(rlid))
            .map(|i| i.id)
    }

    /// The URL of the course's line items (the AGS claim's `lineitems`).
    pub fn lineitems_url(&self) -> String {
        format!("{}/courses/demo-course-101/lineitems", self.issuer)
    }

    /// Adds a line item as the platform itself does (the demo activity's, a deep-linked
    /// resource link's); returns its URL, or `None` when the gradebook is full.
    pub(super) fn add_line_item(
        &self,
        client_id: &str,
        fields: Map<String, Value>,
        resource_link_id: Option<String>,
    ) -> Option<String> {
        let mut book = self.gradebook.lock().unwrap_or_else(|e| e.into_inner());
        if book.items.len() >= MAX_LINE_ITEMS {
            return None;
        }
        book.next += 1;
        let number = book.next;
        let id = format!("{}/{number}", self.lineitems_url());
        let read = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_string);
        book.items.push(GradebookLineItem {
            id: id.clone(),
            client_id: client_id.to_string(),
            label: read("label").unwrap_or_else(|| "Untitled".into()),
            score_maximum: fields
                .get("scoreMaximum")
                .and_then(Value::as_f64)
                .filter(|m| m.is_finite() && *m > 0.0)
                .unwrap_or(100.0),
            resource_id: read("resourceId"),
            resource_link_id,
            tag: read("tag"),
            start_date_time: read("startDateTime"),
            end_date_time: read("endDateTime"),
            grades_released: fields.get("gradesReleased").and_then(Value::as_bool),
            scores: Vec::new(),
            number,
        });
        Some(id)
    }

    /// Routes `…/lineitems{rest}` for the tool of the call's token.
    pub(super) fn gradebook_call(&self, request: &HttpRequest, rest: &str) -> HttpResponse {
        type Handler = fn(&DemoPlatform, &HttpRequest, &str, Option<u64>) -> HttpResponse;
        enum Resource {
            Collection,
            Item,
            Scores,
            Results,
        }
        let parts: Vec<&str> = rest.split('/').skip(1).collect();
        let number = parts.first().and_then(|n| n.parse::<u64>().ok());
        let resource = match (parts.as_slice(), number) {
            _ if !(rest.is_empty() || rest.starts_with('/')) => None,
            ([], _) => Some(Resource::Collection),
            ([_], Some(_)) => Some(Resource::Item),
            ([_, "scores"], Some(_)) => Some(Resource::Scores),
            ([_, "results"], Some(_)) => Some(Resource::Results),
            _ => None,
        };
        let Some(resource) = resource else {
            return services::oauth_error(404, "not_found", "There is no such line item service.");
        };
        let read: &[&str] = &[SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY];
        let route: Option<(&[&str], Handler)> = match (resource, request.method().clone()) {
            (Resource::Collection, http::Method::GET) => Some((read, Self::list_line_items)),
            (Resource::Collection, http::Method::POST) => {
                Some((&[SCOPE_LINEITEM], Self::create_line_item))
            }
            (Resource::Item, http::Method::GET) => Some((read, Self::get_line_item)),
            (Resource::Item, http::Method::PUT) => Some((&[SCOPE_LINEITEM], Self::put_line_item)),
            (Resource::Item, http::Method::DELETE) => {
                Some((&[SCOPE_LINEITEM], Self::delete_line_item))
            }
            (Resource::Scores, http::Method::POST) => Some((&[SCOPE_SCORE], Self::post_score)),
            (Resource::Results, http::Method::GET) => {
                Some((&[SCOPE_RESULT_READONLY], Self::results))
            }
            _ => None,
        };
        let Some((scopes, handler)) = route else {
            return services::oauth_error(
                405,
                "invalid_request",
                "That method is not allowed here.",
            );
        };
        let grant = match self.authorize_call(request, scopes) {
            Ok(grant) => grant,
            Err(refusal) => return *refusal,
        };
        handler(self, request, &grant.client_id, number)
    }

    /// The line item `number` of `client_id`, or the `404` to answer.
    fn own_item(
        &self,
        client_id: &str,
        number: Option<u64>,
    ) -> Result<GradebookLineItem, Box<HttpResponse>> {
        self.line_items()
            .into_iter()
            .find(|i| Some(i.number) == number && i.client_id == client_id)
            .ok_or_else(|| {
                Box::new(services::oauth_error(
                    404,
                    "not_found",
                    "There is no such line item.",
                ))
            })
    }

    fn list_line_items(
        &self,
        request: &HttpRequest,
        client_id: &str,
        _: Option<u64>,
    ) -> HttpResponse {
        let query = services::query(request);
        let (page, size) = match services::paging(&query, PAGE_SIZE) {
            Ok(paging) => paging,
            Err(why) => return services::oauth_error(400, "invalid_request", why),
        };
        let wanted = |name: &str, value: &Option<String>| {
            query
                .get(name)
                .is_none_or(|w| value.as_deref() == Some(w.as_str()))
        };
        let selected: Vec<Value> = self
            .line_items()
            .iter()
            .filter(|i| i.client_id == client_id)
            .filter(|i| {
                wanted("resource_link_id", &i.resource_link_id)
                    && wanted("resource_id", &i.resource_id)
                    && wanted("tag", &i.tag)
            })
            .map(GradebookLineItem::to_json)
            .collect();
        let (items, more) = services::page_of(&selected, page, size);
        let mut response = services::media(200, MEDIA_LINEITEMS, &json!(items));
        if more {
            services::link_next(&mut response, &self.lineitems_url(), &query, page + 1);
        }
        response
    }

    /// The fields of a line item body (create or replace), checked; `url` is the line
    /// item's own URL when replacing.
    fn line_item_fields(
        &self,
        request: &HttpRequest,
        client_id: &str,
        url: Option<&str>,
    ) -> Result<LineItemFields, Box<HttpResponse>> {
        let bad = |why: String| Box::new(services::oauth_error(400, "invalid_request", &why));
        if services::content_type(request) != MEDIA_LINEITEM {
            return Err(Box::new(services::oauth_error(
                415,
                "invalid_request",
                &format!("A line item is sent as {MEDIA_LINEITEM}."),
            )));
        }
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(request.body()) else {
            return Err(bad("The body must be a JSON object.".into()));
        };
        let label = text(&body, "label").map_err(bad)?;
        if label.as_deref().is_none_or(|l| l.trim().is_empty()) {
            return Err(bad("label is required.".into()));
        }
        match finite(&body, "scoreMaximum").map_err(bad)? {
            Some(max) if max > 0.0 => {}
            _ => return Err(bad("scoreMaximum must be a number greater than 0.".into())),
        }
        for name in ["resourceId", "tag"] {
            text(&body, name).map_err(bad)?;
        }
        for name in ["startDateTime", "endDateTime"] {
            if let Some(date) = text(&body, name).map_err(bad)? {
                if epoch_millis(&date).is_none() {
                    return Err(bad(format!("{name} must be an RFC 3339 date-time.")));
                }
            }
        }
        if body
            .get("gradesReleased")
            .is_some_and(|v| !v.is_boolean() && !v.is_null())
        {
            return Err(bad("gradesReleased must be true or false.".into()));
        }
        if let (Some(url), Some(id)) = (url, body.get("id")) {
            if id.as_str() != Some(url) {
                return Err(bad("id must be the line item's URL.".into()));
            }
        }
        let link = text(&body, "resourceLinkId").map_err(bad)?;
        if let Some(rlid) = &link {
            if !self.is_resource_link_of(client_id, rlid) {
                return Err(bad(
                    "resourceLinkId is not a resource link of this tool in this course.".into(),
                ));
            }
        }
        Ok((body, link))
    }

    fn create_line_item(
        &self,
        request: &HttpRequest,
        client_id: &str,
        _: Option<u64>,
    ) -> HttpResponse {
        let (body, link) = match self.line_item_fields(request, client_id, None) {
            Ok(fields) => fields,
            Err(refusal) => return *refusal,
        };
        let Some(url) = self.add_line_item(client_id, body, link) else {
            return services::oauth_error(400, "invalid_request", "The gradebook is full.");
        };
        tracing::info!(line_item = %url, "demo platform: line item created");
        match self.line_item(&url) {
            Some(item) => services::media(201, MEDIA_LINEITEM, &item.to_json()),
            None => services::oauth_error(404, "not_found", "The line item is gone."),
        }
    }

    fn get_line_item(&self, _: &HttpRequest, client_id: &str, number: Option<u64>) -> HttpResponse {
        match self.own_item(client_id, number) {
            Ok(item) => services::media(200, MEDIA_LINEITEM, &item.to_json()),
            Err(refusal) => *refusal,
        }
    }

    fn put_line_item(
        &self,
        request: &HttpRequest,
        client_id: &str,
        number: Option<u64>,
    ) -> HttpResponse {
        let item = match self.own_item(client_id, number) {
            Ok(item) => item,
            Err(refusal) => return *refusal,
        };
        let (body, link) = match self.line_item_fields(request, client_id, Some(&item.id)) {
            Ok(fields) => fields,
            Err(refusal) => return *refusal,
        };
        let read = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
        let mut book = self.gradebook.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = book.items.iter_mut().find(|i| i.id == item.id) else {
            return services::oauth_error(404, "not_found", "There is no such line item.");
        };
        slot.label = read("label").unwrap_or_default();
        slot.score_maximum = body
            .get("scoreMaximum")
            .and_then(Value::as_f64)
            .unwrap_or(slot.score_maximum);
        slot.resource_id = read("resourceId");
        slot.resource_link_id = link;
        slot.tag = read("tag");
        slot.start_date_time = read("startDateTime");
        slot.end_date_time = read("endDateTime");
        slot.grades_released = body.get("gradesReleased").and_then(Value::as_bool);
        services::media(200, MEDIA_LINEITEM, &slot.to_json())
    }

    fn delete_line_item(
        &self,
        _: &HttpRequest,
        client_id: &str,
        number: Option<u64>,
    ) -> HttpResponse {
        let item = match self.own_item(client_id, number) {
            Ok(item) => item,
            Err(refusal) => return *refusal,
        };
        self.gradebook
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .items
            .retain(|i| i.id != item.id);
        tracing::info!(line_item = %item.id, "demo platform: line item deleted");
        services::empty(204)
    }

    /// `POST …/lineitems/{n}/scores` (AGS §3.4): `userId` a member of the course,
    /// `timestamp` RFC 3339, both progress values from the spec's lists, `scoreGiven`
    /// (≥ 0) only with `scoreMaximum` (> 0). A score older than the user's latest is
    /// refused (409); one with the same timestamp is a retry and changes nothing.
    fn post_score(
        &self,
        request: &HttpRequest,
        client_id: &str,
        number: Option<u64>,
    ) -> HttpResponse {
        let item = match self.own_item(client_id, number) {
            Ok(item) => item,
            Err(refusal) => return *refusal,
        };
        let bad = |why: &str| services::oauth_error(400, "invalid_request", why);
        if services::content_type(request) != MEDIA_SCORE {
            return services::oauth_error(
                415,
                "invalid_request",
                &format!("A score is sent as {MEDIA_SCORE}."),
            );
        }
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(request.body()) else {
            return bad("The body must be a JSON object.");
        };
        let user_id = match text(&body, "userId") {
            Ok(Some(u)) if !u.is_empty() => u,
            Ok(_) => return bad("userId is required."),
            Err(why) => return bad(&why),
        };
        if roster::member(&user_id).is_none() {
            return bad("userId is not a member of this course.");
        }
        let timestamp = match text(&body, "timestamp") {
            Ok(Some(t)) => t,
            Ok(None) => return bad("timestamp is required."),
            Err(why) => return bad(&why),
        };
        let Some(timestamp_ms) = epoch_millis(&timestamp) else {
            return bad("timestamp must be an RFC 3339 date-time.");
        };
        let progress = |name: &str, allowed: &[&str]| match body.get(name).and_then(Value::as_str) {
            Some(v) if allowed.contains(&v) => Ok(v.to_string()),
            _ => Err(format!("{name} must be one of {}.", allowed.join(", "))),
        };
        let (activity_progress, grading_progress) = match (
            progress("activityProgress", &ACTIVITY),
            progress("gradingProgress", &GRADING),
        ) {
            (Ok(a), Ok(g)) => (a, g),
            (Err(why), _) | (_, Err(why)) => return bad(&why),
        };
        let (score_given, score_maximum) =
            match (finite(&body, "scoreGiven"), finite(&body, "scoreMaximum")) {
                (Ok(given), Ok(max)) => (given, max),
                (Err(why), _) | (_, Err(why)) => return bad(&why),
            };
        match (score_given, score_maximum) {
            (Some(given), Some(max)) if given >= 0.0 && max > 0.0 => {}
            (Some(_), Some(_)) => {
                return bad("scoreGiven must be at least 0 and scoreMaximum greater than 0.")
            }
            (Some(_), None) => return bad("scoreMaximum is required with scoreGiven."),
            (None, _) => {}
        }
        let comment = match text(&body, "comment") {
            Ok(c) => c,
            Err(why) => return bad(&why),
        };
        let mut book = self.gradebook.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = book.items.iter_mut().find(|i| i.id == item.id) else {
            return services::oauth_error(404, "not_found", "There is no such line item.");
        };
        let latest = slot
            .scores
            .iter()
            .filter(|s| s.user_id == user_id)
            .map(|s| s.timestamp_ms)
            .max();
        if latest.is_some_and(|l| timestamp_ms < l) {
            return services::oauth_error(
                409,
                "conflict",
                "This score is older than the user's latest score (AGS: the platform must not update the result).",
            );
        }
        let score = ReceivedScore {
            user_id,
            score_given,
            score_maximum,
            comment,
            timestamp,
            activity_progress,
            grading_progress,
            timestamp_ms,
        };
        if latest == Some(timestamp_ms) && slot.scores.contains(&score) {
            // The same score again: a retry.
            return services::empty(204);
        }
        tracing::info!(line_item = %slot.id, user = %score.user_id, "demo platform: score received");
        slot.scores.push(score);
        let excess = slot.scores.len().saturating_sub(MAX_SCORES);
        slot.scores.drain(..excess);
        services::empty(204)
    }

    /// `GET …/lineitems/{n}/results?user_id&limit&page`: each user's current result.
    fn results(&self, request: &HttpRequest, client_id: &str, number: Option<u64>) -> HttpResponse {
        let item = match self.own_item(client_id, number) {
            Ok(item) => item,
            Err(refusal) => return *refusal,
        };
        let query = services::query(request);
        let (page, size) = match services::paging(&query, PAGE_SIZE) {
            Ok(paging) => paging,
            Err(why) => return services::oauth_error(400, "invalid_request", why),
        };
        let all: Vec<Value> = item
            .latest_scores()
            .into_iter()
            .filter(|s| query.get("user_id").is_none_or(|u| *u == s.user_id))
            .map(|s| {
                let mut result = json!({
                    "id": format!("{}/results/{}", item.id, s.user_id),
                    "scoreOf": item.id,
                    "userId": s.user_id,
                });
                if let Some(given) = s.score_given {
                    result["resultScore"] = json_number(given);
                    result["resultMaximum"] =
                        json_number(s.score_maximum.unwrap_or(item.score_maximum));
                }
                if let Some(comment) = s.comment {
                    result["comment"] = json!(comment);
                }
                result
            })
            .collect();
        let (results, more) = services::page_of(&all, page, size);
        let mut response = services::media(200, MEDIA_RESULTS, &json!(results));
        if more {
            services::link_next(
                &mut response,
                &format!("{}/results", item.id),
                &query,
                page + 1,
            );
        }
        response
    }

    /// The gradebook and the roster as JSON (`/platform/gradebook.json`).
    pub(super) fn gradebook_json(&self) -> HttpResponse {
        lti_http::respond::json(
            http::StatusCode::OK,
            &json!({"lineItems": self.line_items(), "members": roster::members_json()}),
        )
    }

    /// Every line item with each user's latest score.
    pub(super) fn gradebook_markup(&self) -> Markup {
        let members = roster::members();
        let name_of = |user_id: &str| {
            members
                .iter()
                .find(|m| m.user_id == user_id)
                .map(Member::display_name)
                .unwrap_or_else(|| user_id.to_string())
        };
        let tools = self.tools();
        let tool_name = |client_id: &str| {
            tools
                .iter()
                .find(|t| t.client_id == client_id)
                .map(|t| t.name.clone())
                .unwrap_or_else(|| client_id.to_string())
        };
        let items = self.line_items();
        html! {
            @if items.is_empty() {
                p.muted #gradebook-empty { "No line items." }
            }
            @for item in &items {
                section.line-item data-line-item=(item.id) {
                    h3 { (item.label) " " span.muted { "out of " (plain(item.score_maximum)) } }
                    p.muted {
                        (tool_name(&item.client_id))
                        @if let Some(rl) = &item.resource_link_id { ", resource link " code { (rl) } }
                        @if let Some(tag) = &item.tag { ", tag " code { (tag) } }
                        @if let Some(rid) = &item.resource_id { ", resource " code { (rid) } }
                        " — " code { (item.id) }
                    }
                    @let latest = item.latest_scores();
                    @if latest.is_empty() {
                        p.muted.no-scores { "No scores yet." }
                    } @else {
                        table.scores {
                            tr { th { "Learner" } th { "Score" } th { "Progress" } th { "Comment" } th { "Timestamp" } }
                            @for score in &latest {
                                tr.score data-user=(score.user_id) {
                                    td.learner { (name_of(&score.user_id)) }
                                    td.given {
                                        @match (score.score_given, score.score_maximum) {
                                            (Some(g), Some(m)) => { (plain(g)) " / " (plain(m)) }
                                            _ => { "—" }
                                        }
                                    }
                                    td { (score.activity_progress) ", " (score.grading_progress) }
                                    td { (score.comment.clone().unwrap_or_default()) }
                                    td { code { (score.timestamp) } }
                                }
                            }
                        }
                        p.muted { (item.scores.len()) " score(s) received." }
                    }
                }
            }
        }
    }

    /// The roster as a table.
    pub(super) fn roster_markup(&self) -> Markup {
        let members = roster::members();
        html! {
            p.muted { (members.len()) " members, served " (roster::PAGE_SIZE) " per page at " code { (self.memberships_url()) } "." }
            table #roster-table {
                tr { th { "Name" } th { "Email" } th { "Roles" } th { "Status" } th { "User id" } }
                @for m in &members {
                    tr.member data-user=(m.user_id) {
                        td { (m.name.clone().unwrap_or_else(|| "(not shared)".into())) }
                        td { (m.email.clone().unwrap_or_default()) }
                        td { @for r in &m.roles { code { (r.rsplit(['#', '/']).next().unwrap_or(r)) } " " } }
                        td { (m.status) }
                        td { code { (m.user_id) } }
                    }
                }
            }
        }
    }

    /// `GET /platform/gradebook`: the gradebook (reloads itself every 5 s, so scores
    /// show as they land) and the roster.
    pub(super) fn gradebook_page(&self) -> HttpResponse {
        let body = html! {
            h1 { "Demo Course 101: gradebook" }
            p.muted { "Scores land here as tools post them (this page reloads every 5 seconds). " a href="/platform" { "Back to the course" } " · " a href="/platform/gradebook.json" { "JSON" } }
            section #gradebook { (self.gradebook_markup()) }
            h2 #roster { "Roster" }
            (self.roster_markup())
        };
        let page = maud::html! {
            (maud::DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta http-equiv="refresh" content="5";
                    title { "Demo platform: gradebook" }
                    style { (maud::PreEscaped("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2433}td,th{padding:.2rem .8rem .2rem 0;text-align:left;vertical-align:top}.muted{color:#5b6478;font-size:.9rem}code{background:#f1f3f7;padding:.1rem .3rem;border-radius:3px}")) }
                }
                body { (body) }
            }
        };
        lti_http::respond::html(http::StatusCode::OK, page.into_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_are_read_to_epoch_millis() {
        assert_eq!(epoch_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(epoch_millis("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            epoch_millis("2030-03-17T17:46:40.000Z"),
            Some(1_900_000_000_000)
        );
        assert_eq!(
            epoch_millis("2030-03-17T18:46:40.000+01:00"),
            epoch_millis("2030-03-17T17:46:40Z")
        );
        assert_eq!(
            epoch_millis("2024-02-29T12:00:00.123456Z"),
            Some(1_709_208_000_123)
        );
        assert_eq!(epoch_millis("yesterday"), None);
    }

    #[test]
    fn the_latest_score_of_each_user_wins_by_timestamp() {
        let score = |user: &str, ms: i64, given: f64| ReceivedScore {
            user_id: user.into(),
            score_given: Some(given),
            score_maximum: Some(10.0),
            comment: None,
            timestamp: String::new(),
            activity_progress: "Completed".into(),
            grading_progress: "FullyGraded".into(),
            timestamp_ms: ms,
        };
        let item = GradebookLineItem {
            id: "u".into(),
            client_id: "c".into(),
            label: "l".into(),
            score_maximum: 10.0,
            resource_id: None,
            resource_link_id: None,
            tag: None,
            start_date_time: None,
            end_date_time: None,
            grades_released: None,
            scores: vec![
                score("a", 2, 5.0),
                score("b", 1, 6.0),
                score("a", 3, 7.0),
                score("a", 1, 1.0),
            ],
            number: 1,
        };
        let latest = item.latest_scores();
        assert_eq!(latest.len(), 2);
        assert_eq!(
            (latest[0].user_id.as_str(), latest[0].score_given),
            ("a", Some(7.0))
        );
        assert_eq!(
            (latest[1].user_id.as_str(), latest[1].score_given),
            ("b", Some(6.0))
        );
    }
}
