//! The platform's answer to the registration (LTI Dynamic Registration 1.0 §3.6.2):
//! the `client_id` it issued and, in the tool configuration, the `deployment_id` it
//! created — or, when it refused, what it said.
//!
//! Platforms answer in their own ways and the reading is lenient where the meaning is
//! clear: ids as strings or integers, Moodle's `application_type` as a list, members
//! the tool does not use ignored; a product family's own members of the tool
//! configuration (Canvas's `https://canvas.instructure.com/lti/registration_config_url`)
//! are kept. Refusals come as RFC 7591 JSON (`error`, `error_description`), as
//! Canvas's `errorMessage` or `errors`, or as plain text (Moodle).

use super::error::DynRegError;
use super::request::TOOL_CONFIGURATION;
use crate::services::answer::{excerpt, id_string};
use serde_json::{Map, Value};

/// What the platform registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationAnswer {
    pub client_id: String,
    /// The deployment the platform created, if it named one.
    pub deployment_id: Option<String>,
    /// The product family's own members of the tool configuration, kept as sent.
    pub extras: Map<String, Value>,
}

/// Reads a 2xx answer's body.
pub fn read(body: &[u8]) -> Result<RegistrationAnswer, DynRegError> {
    let body = body
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(body);
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(body) else {
        return Err(DynRegError::AnswerInvalid("is not a JSON object".into()));
    };
    let client_id = id_string(answer.get("client_id"))
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            DynRegError::AnswerInvalid(
                "has no client_id (a string), so the tool cannot know which registration launches belong to"
                    .into(),
            )
        })?;
    let tool = match answer.get(TOOL_CONFIGURATION) {
        None | Some(Value::Null) => None,
        Some(Value::Object(tool)) => Some(tool),
        Some(_) => {
            return Err(DynRegError::AnswerInvalid(format!(
                "has a {TOOL_CONFIGURATION} member that is not an object"
            )))
        }
    };
    let deployment_id = match tool.and_then(|t| t.get("deployment_id")) {
        None | Some(Value::Null) => None,
        Some(value) => match id_string(Some(value)).map(|d| d.trim().to_string()) {
            Some(d) if !d.is_empty() => Some(d),
            _ => {
                return Err(DynRegError::AnswerInvalid(
                    "has a deployment_id that is not a non-empty string".into(),
                ))
            }
        },
    };
    let extras = tool
        .map(|t| {
            t.iter()
                .filter(|(k, _)| k.starts_with("https://") && k.len() <= 200)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    Ok(RegistrationAnswer {
        client_id,
        deployment_id,
        extras,
    })
}

/// What the platform said in refusing, in one short line: its error code and
/// description (RFC 7591 §3.2.2), Canvas's `errorMessage` or `errors[].message`, or an
/// excerpt of its text; `secrets` (the registration token) and anything JWT-shaped
/// blanked out.
pub fn refusal(body: &[u8], secrets: &[&str]) -> String {
    let said = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => {
            let text = |name: &str| {
                o.get(name)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
            };
            if let Some(error) = text("error") {
                match text("error_description") {
                    Some(description) => format!("{error}: {description}"),
                    None => error.to_string(),
                }
            } else if let Some(message) = text("errorMessage").or_else(|| text("message")) {
                message.to_string()
            } else if let Some(errors) = o.get("errors").and_then(Value::as_array) {
                errors
                    .iter()
                    .filter_map(|e| {
                        e.get("message")
                            .and_then(Value::as_str)
                            .or_else(|| e.as_str())
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                String::from_utf8_lossy(body).into_owned()
            }
        }
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    excerpt(said.as_bytes(), secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn moodle_answer_with_its_list_shaped_members_is_read() {
        let answer = json!({
            "client_id": "f3kQ9zYx1PlVbX2",
            "token_endpoint_auth_method": "private_key_jwt",
            "response_types": ["id_token"],
            "application_type": ["web"],
            "client_name": "lti-lambda",
            TOOL_CONFIGURATION: {
                "deployment_id": "7",
                "target_link_uri": "https://tool.example/lti/launch",
                "domain": "tool.example",
                "claims": ["sub", "iss", "name"],
            }
        });
        let read = read(answer.to_string().as_bytes()).expect("valid");
        assert_eq!(read.client_id, "f3kQ9zYx1PlVbX2");
        assert_eq!(read.deployment_id.as_deref(), Some("7"));
        assert!(read.extras.is_empty());
    }

    #[test]
    fn canvas_answer_without_deployment_keeps_its_extras() {
        let answer = json!({
            "client_id": 10000000000042u64,
            TOOL_CONFIGURATION: {
                "domain": "tool.example",
                "https://canvas.instructure.com/lti/registration_config_url": "https://school.instructure.com/api/lti/registrations/7/view",
            }
        });
        let read = read(answer.to_string().as_bytes()).expect("valid");
        assert_eq!(read.client_id, "10000000000042");
        assert_eq!(read.deployment_id, None);
        assert_eq!(read.extras.len(), 1);
    }

    #[test]
    fn answers_without_a_client_id_or_not_json_are_refused() {
        for body in [
            &b"not json"[..],
            br#"{"client_name": "x"}"#,
            br#"{"client_id": ""}"#,
            br#"{"client_id": {"a": 1}}"#,
            br#"{"client_id": "c", "https://purl.imsglobal.org/spec/lti-tool-configuration": {"deployment_id": ["1"]}}"#,
        ] {
            assert!(
                matches!(read(body), Err(DynRegError::AnswerInvalid(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_refusal_says_what_the_platform_said_without_the_token() {
        assert_eq!(
            refusal(
                br#"{"error":"invalid_client_metadata","error_description":"redirect_uris must be https"}"#,
                &[]
            ),
            "invalid_client_metadata: redirect_uris must be https"
        );
        assert_eq!(
            refusal(
                br#"{"errorMessage":"JWT did not include expected contents"}"#,
                &[]
            ),
            "JWT did not include expected contents"
        );
        assert_eq!(refusal(b"token_already_used", &[]), "token_already_used");
        let said = refusal(b"bad token secret-token-123 here", &["secret-token-123"]);
        assert!(!said.contains("secret-token-123"), "{said}");
        let long = refusal("x".repeat(5000).as_bytes(), &[]);
        assert!(long.len() <= 300, "{}", long.len());
    }
}
