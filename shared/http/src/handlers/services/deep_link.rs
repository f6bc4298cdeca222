//! `POST /lti/deep-link` (Deep Linking 2.0 §4.5): the app answers a deep-linking
//! launch with the content items the instructor picked; the tool checks them against
//! what the platform accepts, signs the `LtiDeepLinkingResponse` JWT, and returns it
//! with its return URL and a page that posts it there.

use super::{service_problem, ServicesHandler};
use crate::request;
use crate::{pages, respond, HttpRequest, HttpResponse};
use http::StatusCode;
use lti_core::jwt::sign_jwt;
use lti_core::services::auth::Caller;
use lti_core::services::deep_link::{self, DeepLinkInput};
use lti_core::services::ServiceError;
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    /// The signed `LtiDeepLinkingResponse`.
    jwt: String,
    /// Where it goes: the platform's `deep_link_return_url`.
    return_url: String,
    /// A page that posts `JWT` to the return URL as soon as it loads.
    auto_submit_html: String,
}

impl ServicesHandler {
    pub(super) async fn deep_link(&self, request: &HttpRequest) -> HttpResponse {
        match self.answer_deep_link(request).await {
            Ok(answer) => respond::json(StatusCode::OK, &answer),
            Err(e) => service_problem(request, &e),
        }
    }

    async fn answer_deep_link(&self, request: &HttpRequest) -> Result<Answer, ServiceError> {
        let (_, caller) = self.auth.caller(super::presented(request)).await?;
        let Caller::Launch(launch) = &caller else {
            return Err(ServiceError::Invalid(vec![
                lti_core::platform::FieldError {
                    field: "Authorization".into(),
                    message: "must be the deep-linking launch's app token or launch id".into(),
                },
            ]));
        };
        let settings = launch
            .deep_linking
            .clone()
            .ok_or(ServiceError::NotDeepLinking)?;
        caller.require_staff("answering a deep-linking request")?;
        let input: DeepLinkInput =
            request::json_up_to(request, deep_link::MAX_BODY).map_err(|e| match e {
                request::RequestError::TooLarge(limit) => ServiceError::BodyTooLarge(limit),
                other => ServiceError::Invalid(vec![request_fault(other)]),
            })?;
        let items = deep_link::check(&settings, &input)?;
        let course = self.auth.course(&caller).await?;
        let now = self.clock.now();
        let claims = deep_link::response_claims(
            &course.platform,
            &launch.deployment_id,
            &settings,
            items,
            &input,
            &self.random.token(16),
            now,
        );
        let jwt = sign_jwt(self.signer.as_ref(), &claims).await?;
        // One answer per deep-linking launch: of two concurrent answers one wins.
        let key = format!("deep-link\n{}", launch.launch_id);
        if !self.records.use_once(&key, launch.expires_at, now).await? {
            return Err(ServiceError::AlreadyAnswered(
                "This deep-linking request was already answered; the instructor can start again from the course.".into(),
            ));
        }
        tracing::debug!(
            launch = %launch.launch_id,
            items = claims[format!("{}content_items", "https://purl.imsglobal.org/spec/lti-dl/claim/")]
                .as_array()
                .map_or(0, Vec::len),
            "deep-linking response signed"
        );
        let return_url = settings.deep_link_return_url.clone();
        Ok(Answer {
            auto_submit_html: pages::auto_submit(
                &return_url,
                &[("JWT", &jwt)],
                "Returning to the course",
            ),
            jwt,
            return_url,
        })
    }
}

/// A body that cannot be read, as a field of the one 400.
fn request_fault(error: request::RequestError) -> lti_core::platform::FieldError {
    lti_core::platform::FieldError {
        field: "body".into(),
        message: lti_core::error::Problem::public_message(&error),
    }
}
