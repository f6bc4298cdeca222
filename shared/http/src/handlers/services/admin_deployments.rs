//! Deployments of a registration: `GET|POST /admin/platforms/{id}/deployments`,
//! `DELETE /admin/platforms/{id}/deployments/{deploymentId}`.

// A refusal is the response itself, built once per request: boxing it buys nothing.
#![allow(clippy::result_large_err)]

use super::admin::{admin_problem, propagation, AdminError};
use super::ServicesHandler;
use crate::request;
use crate::{respond, HttpRequest, HttpResponse};
use http::StatusCode;
use lti_core::platform::{Deployment, FieldError};
use lti_core::registration::audit::AdminActor;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewDeployment {
    deployment_id: Option<String>,
}

fn listed(d: &Deployment) -> serde_json::Value {
    serde_json::json!({ "deploymentId": d.deployment_id, "createdAt": d.created_at })
}

impl ServicesHandler {
    /// Every deployment of the registration.
    pub(super) async fn list_deployments(&self, request: &HttpRequest, id: &str) -> HttpResponse {
        let platform = match self.platform_of(request, id).await {
            Ok(p) => p,
            Err(response) => return response,
        };
        match self
            .platforms
            .deployments(&platform.issuer, &platform.client_id)
            .await
        {
            Ok(mut deployments) => {
                deployments.sort_by(|a, b| a.deployment_id.cmp(&b.deployment_id));
                respond::json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "platformId": platform.id,
                        "deployments": deployments.iter().map(listed).collect::<Vec<_>>(),
                    }),
                )
            }
            Err(e) => respond::api_problem(request, &e, None),
        }
    }

    /// Adds a deployment (201; 200 when it was there already).
    pub(super) async fn add_deployment(
        &self,
        request: &HttpRequest,
        who: &AdminActor,
        id: &str,
    ) -> HttpResponse {
        let platform = match self.platform_of(request, id).await {
            Ok(p) => p,
            Err(response) => return response,
        };
        let input: NewDeployment = match request::json(request) {
            Ok(input) => input,
            Err(e) => return respond::api_problem(request, &e, None),
        };
        let deployment_id = input
            .deployment_id
            .map(|d| d.trim().to_string())
            .unwrap_or_default();
        if deployment_id.is_empty() || deployment_id.len() > lti_core::limits::MAX_ID_LEN {
            return admin_problem(
                request,
                &AdminError::InvalidDeployment(vec![FieldError {
                    field: "deploymentId".into(),
                    message: "must be 1 to 255 characters".into(),
                }]),
            );
        }
        let (issuer, client_id) = (&platform.issuer, &platform.client_id);
        let existed = match self
            .platforms
            .deployment(issuer, client_id, &deployment_id)
            .await
        {
            Ok(found) => found,
            Err(e) => return respond::api_problem(request, &e, None),
        };
        let created = existed.is_none();
        let deployment = match existed {
            Some(d) => d,
            None => {
                let d = Deployment {
                    issuer: issuer.clone(),
                    client_id: client_id.clone(),
                    deployment_id: deployment_id.clone(),
                    created_at: self.clock.now(),
                };
                if let Err(e) = self.platforms.save_deployment(d.clone()).await {
                    return respond::api_problem(request, &e, None);
                }
                let mut entry = self.audit_entry(request, who, "deployment.add", Some(&platform));
                entry.after = Some(deployment_id.clone());
                self.audit(entry);
                d
            }
        };
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let mut body = listed(&deployment);
        body["platformId"] = serde_json::json!(platform.id);
        respond::json(status, &body)
    }

    /// Removes a deployment: its launches are refused (`LTI_DEPLOYMENT_UNKNOWN`),
    /// unless the registration accepts new deployments (then it comes back).
    pub(super) async fn remove_deployment(
        &self,
        request: &HttpRequest,
        who: &AdminActor,
        id: &str,
        deployment_id: &str,
    ) -> HttpResponse {
        let platform = match self.platform_of(request, id).await {
            Ok(p) => p,
            Err(response) => return response,
        };
        match self
            .platforms
            .delete_deployment(&platform.issuer, &platform.client_id, deployment_id)
            .await
        {
            Ok(true) => {
                let mut entry =
                    self.audit_entry(request, who, "deployment.remove", Some(&platform));
                entry.before = Some(deployment_id.to_string());
                self.audit(entry);
                let mut message = propagation("Launches of this deployment are refused");
                if platform.accept_new_deployments {
                    message.push_str(" This registration accepts new deployments, so the next launch of this deployment records it again: set acceptNewDeployments to false to keep it out.");
                }
                respond::json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "platformId": platform.id,
                        "deploymentId": deployment_id,
                        "deleted": true,
                        "message": message,
                    }),
                )
            }
            Ok(false) => admin_problem(request, &AdminError::DeploymentNotFound),
            Err(e) => respond::api_problem(request, &e, None),
        }
    }
}
