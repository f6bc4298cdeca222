//! `GET /lti/register?openid_configuration=…&registration_token=…`: the tool's side
//! of LTI Dynamic Registration 1.0 (public: the LMS opens it in a popup or an iframe
//! for its administrator). The protocol is in `lti_core::registration::dynamic`; this
//! file reads the query and answers with a page: what was registered and the closing
//! message to the platform, or what failed — code, sentence, what the platform said,
//! what to do. `Accept: application/json` gets the same as JSON.

use super::config::{SERVICE_SCOPES, TOOL_TITLE};
use super::ServicesHandler;
use crate::request::wants_json;
use crate::{pages, respond, HttpRequest, HttpResponse};
use http::StatusCode;
use lti_core::error::Problem;
use lti_core::registration::dynamic::{
    configuration::product_name, register_and_store, DynRegError, Outcome, RegistrationParams,
    Storage, ToolDescription,
};
use serde_json::json;

/// The query, with each parameter at most once.
fn params(request: &HttpRequest) -> Result<RegistrationParams, DynRegError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(request.uri().query().unwrap_or("")).map_err(|_| {
            DynRegError::ParameterInvalid {
                name: "query",
                problem: "cannot be read as URL-encoded parameters",
            }
        })?;
    let mut configuration = None;
    let mut token = None;
    for (name, value) in pairs {
        let (slot, name) = match name.as_str() {
            "openid_configuration" => (&mut configuration, "openid_configuration"),
            "registration_token" => (&mut token, "registration_token"),
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(DynRegError::ParameterInvalid {
                name,
                problem: "is given more than once",
            });
        }
    }
    RegistrationParams::new(configuration, token)
}

impl ServicesHandler {
    /// `GET /lti/register`.
    pub(super) async fn dynamic_registration(&self, request: &HttpRequest) -> HttpResponse {
        let outcome = match params(request) {
            Ok(params) => {
                let tool = ToolDescription {
                    name: TOOL_TITLE,
                    scopes: &SERVICE_SCOPES,
                    logo_url: self.config.tool_logo_url.as_ref().map(url::Url::as_str),
                };
                register_and_store(
                    &self.config,
                    self.http.as_ref(),
                    &tool,
                    &params,
                    &Storage {
                        store: self.platforms.as_ref(),
                        audit: self.audit.as_ref(),
                        request_id: crate::request_id(request),
                    },
                    self.clock.now(),
                )
                .await
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(outcome) => registered(request, &outcome),
            Err(error) => failed(request, &error),
        }
    }
}

fn registered(request: &HttpRequest, outcome: &Outcome) -> HttpResponse {
    let platform = &outcome.stored.platform;
    let deployment = outcome.stored.deployment_id.clone();
    if wants_json(request) {
        return respond::json(
            StatusCode::OK,
            &json!({
                "registered": true,
                "platform": platform,
                "deploymentId": deployment,
                "created": outcome.stored.created,
                "productFamilyCode": outcome.registered.configuration.product_family_code,
            }),
        );
    }
    let product = outcome
        .registered
        .configuration
        .product_family_code
        .as_deref()
        .map(product_name);
    let mut facts = vec![
        ("Platform", platform.name.clone()),
        ("Issuer", platform.issuer.clone()),
        ("Client ID", platform.client_id.clone()),
    ];
    let mut notes = Vec::new();
    match &deployment {
        Some(d) => facts.push(("Deployment ID", d.clone())),
        None => notes.push(
            "The platform named no deployment: this registration accepts every new deployment and records each at its first launch (LTI_DYNAMIC_REGISTRATION_ACCEPT_NEW_DEPLOYMENTS).".to_string(),
        ),
    }
    facts.push(("Registration id in the tool", platform.id.to_string()));
    if !outcome.stored.created {
        notes.push(
            "This client ID was registered already: its registration was updated.".to_string(),
        );
    }
    notes.push(match product.as_deref() {
        Some("Moodle") => "In Moodle, activate the tool under Manage tools, then add it to a course.".to_string(),
        Some("Canvas") => "In Canvas, review and enable the developer key, then add the app to an account or course with its client ID.".to_string(),
        _ => "Enable the tool in the platform if it asks you to, then add it to a course.".to_string(),
    });
    respond::html(
        StatusCode::OK,
        pages::registration_done(&format!("{TOOL_TITLE} is registered"), &facts, &notes),
    )
}

fn failed(request: &HttpRequest, error: &DynRegError) -> HttpResponse {
    let status = respond::status_of(error.kind());
    let request_id = crate::request_id(request);
    let fields: Vec<(String, String)> = error
        .fields()
        .unwrap_or_default()
        .iter()
        .map(|f| (f.field.to_string(), f.message.clone()))
        .collect();
    if wants_json(request) {
        let mut response = respond::api_problem(
            request,
            error,
            error.fields().and_then(|f| serde_json::to_value(f).ok()),
        );
        if let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(response.body()) {
            body["error"]["advice"] = json!(error.advice());
            if let Some(said) = error.platform_error() {
                body["error"]["platformError"] = json!(said);
            }
            *response.body_mut() = body.to_string().into();
        }
        return response;
    }
    let mut page = respond::html(
        status,
        pages::registration_failed(
            status.as_u16(),
            error.code(),
            &error.public_message(),
            error.platform_error(),
            &fields,
            error.advice(),
            &request_id,
        ),
    );
    respond::mark_refused(&mut page, error);
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(query: &str) -> HttpRequest {
        http::Request::builder()
            .uri(format!("https://tool.example/lti/register?{query}"))
            .body(bytes::Bytes::new())
            .expect("request")
    }

    #[test]
    fn parameters_are_read_once_each() {
        let p = params(&request(
            "openid_configuration=https%3A%2F%2Flms.example%2Fopenid&registration_token=abc&other=1",
        ))
        .expect("params");
        assert_eq!(p.openid_configuration, "https://lms.example/openid");
        assert_eq!(
            p.registration_token.as_ref().map(|t| t.expose()),
            Some("abc")
        );
        let twice = params(&request(
            "openid_configuration=https%3A%2F%2Fa.example&openid_configuration=https%3A%2F%2Fb.example",
        ));
        assert_eq!(
            twice.map(|_| ()).map_err(|e| e.code()),
            Err("LTI_DYNREG_PARAM_INVALID")
        );
        assert_eq!(
            params(&request("")).map(|_| ()).map_err(|e| e.code()),
            Err("LTI_DYNREG_PARAM_MISSING")
        );
    }
}
