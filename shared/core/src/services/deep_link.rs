//! Deep Linking 2.0 responses (DL 2.0 §4.5): the content items the app picked, checked
//! against what the platform said it accepts, in a `LtiDeepLinkingResponse` JWT the
//! tool signs, delivered by an auto-submitted form POST of `JWT` to the platform's
//! `deep_link_return_url`.
//!
//! Items are the spec's JSON objects, passed through exactly as the app sent them
//! (unknown members included: platforms have extensions) once checked.

use crate::launch::claims as c;
use crate::launch::DeepLinkingSettings;
use crate::platform::{FieldError, Platform};
use crate::services::ServiceError;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The message type of the answer.
pub const DEEP_LINKING_RESPONSE: &str = "LtiDeepLinkingResponse";
/// Most content items in one answer.
pub const MAX_ITEMS: usize = 100;
/// Longest string anywhere in an item or message, bytes.
pub const MAX_STRING: usize = 4096;
/// Most custom parameters of one item.
pub const MAX_CUSTOM: usize = 50;
/// Largest request body, bytes.
pub const MAX_BODY: usize = 256 * 1024;
/// Lifetime of the response JWT, seconds (the checklist's ≤ 5 min).
pub const RESPONSE_TTL: i64 = 300;

const DL: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/";

/// What the app sends to `POST /lti/deep-link`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeepLinkInput {
    /// The picked items; empty (the instructor cancelled) is a valid answer.
    #[serde(default)]
    pub content_items: Vec<Value>,
    /// A message for the user, shown by the platform.
    pub msg: Option<String>,
    /// A message for the platform's log.
    pub log: Option<String>,
    /// An error message for the user (the pick failed).
    pub errormsg: Option<String>,
    /// An error message for the platform's log.
    pub errorlog: Option<String>,
}

fn field(path: String, message: impl Into<String>) -> FieldError {
    FieldError {
        field: path.into(),
        message: message.into(),
    }
}

/// True for the URLs an item may carry: absolute https, or http on the machine itself
/// (a developer's localhost).
fn url_allowed(value: &str) -> bool {
    match url::Url::parse(value) {
        Ok(url) => match url.scheme() {
            "https" => url.host_str().is_some(),
            "http" => {
                matches!(url.host(), Some(url::Host::Domain("localhost")))
                    || match url.host() {
                        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                        _ => false,
                    }
            }
            _ => false,
        },
        Err(_) => false,
    }
}

/// Every string in `value` longer than [`MAX_STRING`], with its path.
fn long_strings(value: &Value, path: &str, out: &mut Vec<FieldError>) {
    match value {
        Value::String(s) if s.len() > MAX_STRING => out.push(field(
            path.to_string(),
            format!("is longer than {MAX_STRING} bytes"),
        )),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                long_strings(v, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                long_strings(v, &format!("{path}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// The URL members an item of `kind` must or may have.
fn check_urls(item: &Map<String, Value>, kind: &str, path: &str, out: &mut Vec<FieldError>) {
    let required = matches!(kind, "link" | "file" | "image");
    match item.get("url") {
        None | Some(Value::Null) if required => {
            out.push(field(format!("{path}.url"), "is required for this type"))
        }
        None | Some(Value::Null) => {}
        Some(Value::String(u)) if url_allowed(u) => {}
        Some(_) => out.push(field(
            format!("{path}.url"),
            "must be an absolute https URL (http only on localhost)",
        )),
    }
    for (member, inner) in [("icon", "url"), ("thumbnail", "url"), ("iframe", "src")] {
        if let Some(Value::Object(part)) = item.get(member) {
            match part.get(inner) {
                None | Some(Value::Null) if member == "iframe" => {}
                Some(Value::String(u)) if url_allowed(u) => {}
                _ => out.push(field(
                    format!("{path}.{member}.{inner}"),
                    "must be an absolute https URL (http only on localhost)",
                )),
            }
        }
    }
}

/// Checks `input` against the platform's `settings`; returns the items to send.
///
/// Shape, size and URL faults are one `LTI_SERVICE_REQUEST_INVALID` listing each;
/// then what the platform does not accept, with its own code: a type not in
/// `accept_types`, several items without `accept_multiple`, a presentation target not
/// in `accept_presentation_document_targets`, a line item when `accept_lineitem` is
/// false.
pub fn check(
    settings: &DeepLinkingSettings,
    input: &DeepLinkInput,
) -> Result<Vec<Value>, ServiceError> {
    let mut invalid = Vec::new();
    if input.content_items.len() > MAX_ITEMS {
        invalid.push(field(
            "contentItems".into(),
            format!("has more than {MAX_ITEMS} items"),
        ));
    }
    for (name, value) in [
        ("msg", &input.msg),
        ("log", &input.log),
        ("errormsg", &input.errormsg),
        ("errorlog", &input.errorlog),
    ] {
        if value.as_ref().is_some_and(|v| v.len() > MAX_STRING) {
            invalid.push(field(
                name.to_string(),
                format!("is longer than {MAX_STRING} bytes"),
            ));
        }
    }
    let mut types = Vec::new();
    for (i, item) in input.content_items.iter().enumerate().take(MAX_ITEMS) {
        let path = format!("contentItems[{i}]");
        let Value::Object(map) = item else {
            invalid.push(field(path, "must be an object"));
            continue;
        };
        let kind = match map.get("type") {
            Some(Value::String(t)) if !t.is_empty() => t.clone(),
            _ => {
                invalid.push(field(format!("{path}.type"), "is required"));
                continue;
            }
        };
        long_strings(item, &path, &mut invalid);
        check_urls(map, &kind, &path, &mut invalid);
        if kind == "html" && !matches!(map.get("html"), Some(Value::String(h)) if !h.is_empty()) {
            invalid.push(field(format!("{path}.html"), "is required for this type"));
        }
        match map.get("custom") {
            None | Some(Value::Null) => {}
            Some(Value::Object(custom)) => {
                if custom.len() > MAX_CUSTOM {
                    invalid.push(field(
                        format!("{path}.custom"),
                        format!("has more than {MAX_CUSTOM} entries"),
                    ));
                }
                if custom.values().any(|v| !v.is_string()) {
                    invalid.push(field(
                        format!("{path}.custom"),
                        "values must be strings (LTI custom parameters)",
                    ));
                }
            }
            Some(_) => invalid.push(field(format!("{path}.custom"), "must be an object")),
        }
        if let Some(line_item) = map.get("lineItem").filter(|v| !v.is_null()) {
            match line_item.get("scoreMaximum").and_then(Value::as_f64) {
                Some(max) if max > 0.0 && max.is_finite() => {}
                _ => invalid.push(field(
                    format!("{path}.lineItem.scoreMaximum"),
                    "is required and must be a number above 0",
                )),
            }
        }
        types.push((i, kind, map));
    }
    if !invalid.is_empty() {
        return Err(ServiceError::Invalid(invalid));
    }

    // What the platform accepts (DL 2.0 §4.4.1).
    let refuse =
        |code: &'static str, fields: Vec<FieldError>| ServiceError::NotAccepted { code, fields };
    if !settings.accept_types.is_empty() {
        let refused: Vec<FieldError> = types
            .iter()
            .filter(|(_, kind, _)| !settings.accept_types.iter().any(|t| t == kind))
            .map(|(i, kind, _)| {
                field(
                    format!("contentItems[{i}].type"),
                    format!(
                        "{kind:?} is not accepted here (accepted: {})",
                        settings.accept_types.join(", ")
                    ),
                )
            })
            .collect();
        if !refused.is_empty() {
            return Err(refuse("LTI_CONTENT_TYPE_NOT_ACCEPTED", refused));
        }
    }
    if types.len() > 1 && settings.accept_multiple != Some(true) {
        return Err(refuse(
            "LTI_MULTIPLE_ITEMS_NOT_ACCEPTED",
            vec![field(
                "contentItems".into(),
                format!(
                    "has {} items; the platform accepts one at most here",
                    types.len()
                ),
            )],
        ));
    }
    if !settings.accept_presentation_document_targets.is_empty() {
        let mut refused = Vec::new();
        for (i, _, map) in &types {
            for target in ["window", "iframe", "embed"] {
                if map.get(target).is_some_and(|v| !v.is_null())
                    && !settings
                        .accept_presentation_document_targets
                        .iter()
                        .any(|t| t == target)
                {
                    refused.push(field(
                        format!("contentItems[{i}].{target}"),
                        format!(
                            "is not a presentation the platform accepts here (accepted: {})",
                            settings.accept_presentation_document_targets.join(", ")
                        ),
                    ));
                }
            }
        }
        if !refused.is_empty() {
            return Err(refuse("LTI_PRESENTATION_NOT_ACCEPTED", refused));
        }
    }
    if settings.accept_lineitem == Some(false) {
        let refused: Vec<FieldError> = types
            .iter()
            .filter(|(_, _, map)| map.get("lineItem").is_some_and(|v| !v.is_null()))
            .map(|(i, _, _)| {
                field(
                    format!("contentItems[{i}].lineItem"),
                    "is not accepted: the platform does not create line items here",
                )
            })
            .collect();
        if !refused.is_empty() {
            return Err(refuse("LTI_LINE_ITEM_NOT_ACCEPTED", refused));
        }
    }
    Ok(input.content_items.clone())
}

/// The claims of the `LtiDeepLinkingResponse` JWT: `iss` = the client_id, `aud` = the
/// platform's issuer, a fresh `nonce`, `iat`/`exp` (5 min), the deployment, message
/// type and version, the items, the request's `data` exactly as received, and the
/// messages.
pub fn response_claims(
    platform: &Platform,
    deployment_id: &str,
    settings: &DeepLinkingSettings,
    items: Vec<Value>,
    input: &DeepLinkInput,
    nonce: &str,
    now: i64,
) -> Value {
    let mut claims = json!({
        "iss": platform.client_id,
        "aud": platform.issuer,
        "iat": now,
        "exp": now.saturating_add(RESPONSE_TTL),
        "nonce": nonce,
        (c::DEPLOYMENT_ID): deployment_id,
        (c::MESSAGE_TYPE): DEEP_LINKING_RESPONSE,
        (c::VERSION): c::LTI_VERSION,
        (format!("{DL}content_items")): items,
    });
    if let Some(data) = &settings.data {
        claims[format!("{DL}data")] = data.clone();
    }
    for (name, value) in [
        ("msg", &input.msg),
        ("log", &input.log),
        ("errormsg", &input.errormsg),
        ("errorlog", &input.errorlog),
    ] {
        if let Some(value) = value {
            claims[format!("{DL}{name}")] = json!(value);
        }
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DeepLinkingSettings {
        DeepLinkingSettings {
            deep_link_return_url: "https://lms.example/dl".into(),
            accept_types: vec!["ltiResourceLink".into(), "link".into(), "html".into()],
            accept_presentation_document_targets: vec!["iframe".into(), "window".into()],
            accept_media_types: None,
            accept_multiple: Some(true),
            accept_lineitem: Some(true),
            auto_create: None,
            title: None,
            text: None,
            data: Some(json!({"k": [1, "x"]})),
            extra: Map::new(),
        }
    }

    fn input(items: Vec<Value>) -> DeepLinkInput {
        DeepLinkInput {
            content_items: items,
            ..Default::default()
        }
    }

    fn code(result: Result<Vec<Value>, ServiceError>) -> &'static str {
        use crate::error::Problem;
        result.expect_err("refused").code()
    }

    #[test]
    fn accepted_items_pass_through_exactly() {
        let item = json!({"type": "ltiResourceLink", "url": "https://tool.example/a",
            "custom": {"unit": "3"}, "lineItem": {"scoreMaximum": 10, "label": "Quiz"},
            "https://canvas.instructure.com/lti/preserve": true, "iframe": {"width": 800}});
        let items = check(&settings(), &input(vec![item.clone()])).expect("accepted");
        assert_eq!(items, vec![item]);
        assert!(check(&settings(), &input(vec![]))
            .expect("cancel")
            .is_empty());
    }

    #[test]
    fn what_the_platform_does_not_accept_is_refused_with_its_code() {
        let mut s = settings();
        assert_eq!(
            code(check(
                &s,
                &input(vec![json!({"type": "file", "url": "https://f.example/x"})])
            )),
            "LTI_CONTENT_TYPE_NOT_ACCEPTED"
        );
        s.accept_multiple = Some(false);
        let two = vec![json!({"type": "link", "url": "https://a.example"}); 2];
        assert_eq!(
            code(check(&s, &input(two.clone()))),
            "LTI_MULTIPLE_ITEMS_NOT_ACCEPTED"
        );
        s.accept_multiple = None;
        assert_eq!(
            code(check(&s, &input(two))),
            "LTI_MULTIPLE_ITEMS_NOT_ACCEPTED"
        );
        let embedded =
            json!({"type": "link", "url": "https://a.example", "embed": {"html": "<p>"}});
        assert_eq!(
            code(check(&s, &input(vec![embedded]))),
            "LTI_PRESENTATION_NOT_ACCEPTED"
        );
        s.accept_lineitem = Some(false);
        let graded = json!({"type": "ltiResourceLink", "lineItem": {"scoreMaximum": 5}});
        assert_eq!(
            code(check(&s, &input(vec![graded]))),
            "LTI_LINE_ITEM_NOT_ACCEPTED"
        );
    }

    #[test]
    fn shapes_sizes_and_urls_are_checked_and_every_fault_listed() {
        let items = vec![
            json!({"type": "link", "url": "http://evil.example/x"}),
            json!({"type": "link"}),
            json!({"type": "ltiResourceLink", "custom": {"n": 1}, "lineItem": {"label": "x"}}),
            json!({"type": "html", "html": "x".repeat(MAX_STRING + 1)}),
            json!("not an object"),
        ];
        match check(&settings(), &input(items)) {
            Err(ServiceError::Invalid(fields)) => {
                let text: Vec<String> = fields.iter().map(|f| f.field.to_string()).collect();
                assert_eq!(
                    text,
                    vec![
                        "contentItems[0].url",
                        "contentItems[1].url",
                        "contentItems[2].custom",
                        "contentItems[2].lineItem.scoreMaximum",
                        "contentItems[3].html",
                        "contentItems[4]",
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        let many = vec![json!({"type": "link", "url": "https://a.example"}); MAX_ITEMS + 1];
        assert_eq!(
            code(check(&settings(), &input(many))),
            "LTI_SERVICE_REQUEST_INVALID"
        );
        let local = json!({"type": "link", "url": "http://localhost:3000/x"});
        check(&settings(), &input(vec![local])).expect("http on localhost is fine");
    }

    #[test]
    fn the_response_echoes_data_and_carries_every_required_claim() {
        let platform = crate::contract::sample_platform("https://lms.example", "client-9", 0);
        let items = vec![json!({"type": "link", "url": "https://a.example"})];
        let claims = response_claims(
            &platform,
            "dep-1",
            &settings(),
            items.clone(),
            &DeepLinkInput {
                msg: Some("Added".into()),
                ..Default::default()
            },
            "n-1",
            1000,
        );
        assert_eq!(claims["iss"], "client-9");
        assert_eq!(claims["aud"], "https://lms.example");
        assert_eq!(claims["exp"], 1300);
        assert_eq!(claims[c::MESSAGE_TYPE], DEEP_LINKING_RESPONSE);
        assert_eq!(claims[c::DEPLOYMENT_ID], "dep-1");
        assert_eq!(claims[format!("{DL}data")], json!({"k": [1, "x"]}));
        assert_eq!(claims[format!("{DL}content_items")], json!(items));
        assert_eq!(claims[format!("{DL}msg")], "Added");
        assert!(claims.get(format!("{DL}errormsg")).is_none());
    }
}
