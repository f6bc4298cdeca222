//! Names and Role Provisioning Services for the app (SERVICES-API.md, NRPS 2.0):
//! `GET /lti/nrps/members` — the course roster, every page, normalized.

use super::{query_of, service_problem, ServicesHandler};
use crate::{respond, HttpRequest, HttpResponse};
use http::{Method, StatusCode};
use lti_core::services::nrps::MembersQuery;
use lti_core::services::ServiceError;

impl ServicesHandler {
    /// Routes `/lti/nrps/…`.
    pub(super) async fn nrps(&self, request: &HttpRequest, path: &str) -> HttpResponse {
        match (request.method(), path) {
            (&Method::GET, "/lti/nrps/members") => match self.members(request).await {
                Ok(roster) => respond::json(StatusCode::OK, &roster),
                Err(e) => service_problem(request, &e),
            },
            (_, "/lti/nrps/members") => super::api_method_not_allowed(request, "GET"),
            _ => respond::api_problem(request, &crate::request::RequestError::NotFound, None),
        }
    }

    async fn members(
        &self,
        request: &HttpRequest,
    ) -> Result<lti_core::services::nrps::Roster, ServiceError> {
        let call = self.call(request).await?;
        call.caller.require_staff("reading the roster")?;
        let query: MembersQuery = query_of(request)?;
        let url = call
            .course
            .memberships_url
            .clone()
            .ok_or(ServiceError::ServiceNotOffered(
                "the Names and Role Provisioning Services",
            ))?;
        self.nrps_calls
            .members(
                &call.course.platform,
                &url,
                &query,
                call.course.context_id.as_deref(),
                Some(&call.course.deployment_id),
            )
            .await
    }
}
