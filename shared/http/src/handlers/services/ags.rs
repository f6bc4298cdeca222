//! Assignment and Grade Services for the app (SERVICES-API.md, AGS 2.0):
//! `GET|POST /lti/ags/lineitems`, `GET|PUT|DELETE /lti/ags/lineitem?url=…`,
//! `POST /lti/ags/scores`, `GET /lti/ags/results?lineItemUrl=…`.

use super::{query_of, service_problem, Call, ServicesHandler};
use crate::{request, respond, HttpRequest, HttpResponse};
use http::{Method, StatusCode};
use lti_core::launch::AgsEndpoint;
use lti_core::platform::FieldError;
use lti_core::services::ags::{self, LineItem, LineItemFilter, ResultsQuery, ScoreInput};
use lti_core::services::auth::Caller;
use lti_core::services::ServiceError;
use serde::Deserialize;
use serde_json::{json, Value};

/// Members of a score request that choose the line item; the rest is the score.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScoreTarget {
    /// The line item's URL; default: the launch's, else the resource link's.
    line_item_url: Option<String>,
    /// For backend jobs (and staff): the resource link whose line item takes it.
    resource_link_id: Option<String>,
    /// With `resourceLinkId`: which of the link's line items (AGS `tag`).
    tag: Option<String>,
    /// The label of a line item created for the link (default: "Score").
    label: Option<String>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid(vec![FieldError {
        field: field.into(),
        message: message.into(),
    }])
}

fn body<T: serde::de::DeserializeOwned>(request: &HttpRequest) -> Result<T, ServiceError> {
    request::json(request).map_err(|e| match e {
        request::RequestError::TooLarge(limit) => ServiceError::BodyTooLarge(limit),
        other => invalid("body", lti_core::error::Problem::public_message(&other)),
    })
}

impl ServicesHandler {
    /// Routes `/lti/ags/…`.
    pub(super) async fn ags(&self, request: &HttpRequest, path: &str) -> HttpResponse {
        let outcome = match (request.method(), path) {
            (&Method::GET, "/lti/ags/lineitems") => self.list_line_items(request).await,
            (&Method::POST, "/lti/ags/lineitems") => self.create_line_item(request).await,
            (&Method::GET, "/lti/ags/lineitem") => self.get_line_item(request).await,
            (&Method::PUT, "/lti/ags/lineitem") => self.update_line_item(request).await,
            (&Method::DELETE, "/lti/ags/lineitem") => self.delete_line_item(request).await,
            (&Method::POST, "/lti/ags/scores") => self.post_score(request).await,
            (&Method::GET, "/lti/ags/results") => self.results(request).await,
            (
                _,
                "/lti/ags/lineitems" | "/lti/ags/lineitem" | "/lti/ags/scores" | "/lti/ags/results",
            ) => {
                let allow = match path {
                    "/lti/ags/lineitems" => "GET, POST",
                    "/lti/ags/lineitem" => "GET, PUT, DELETE",
                    "/lti/ags/scores" => "POST",
                    _ => "GET",
                };
                return super::api_method_not_allowed(request, allow);
            }
            _ => return respond::api_problem(request, &request::RequestError::NotFound, None),
        };
        match outcome {
            Ok((status, value)) => respond::json(status, &value),
            Err(e) => service_problem(request, &e),
        }
    }

    /// The AGS endpoint of a call: the launch's claim, or what launches recorded for
    /// a backend job's course (and resource link).
    async fn ags_endpoint(
        &self,
        call: &Call,
        resource_link_id: Option<&str>,
    ) -> Result<AgsEndpoint, ServiceError> {
        match &call.caller {
            Caller::Launch(launch) => launch
                .ags
                .clone()
                .ok_or(ServiceError::ServiceNotOffered("AGS")),
            Caller::Backend(context) => {
                let link = match resource_link_id {
                    Some(rl) => {
                        self.records
                            .link_record(context.platform_id, &context.context_id, rl)
                            .await?
                    }
                    None => None,
                };
                let endpoint = ags::endpoint_of(context, link.as_ref());
                if endpoint.lineitems.is_none() && endpoint.lineitem.is_none() {
                    return Err(ServiceError::ServiceNotOffered("AGS"));
                }
                Ok(endpoint)
            }
        }
    }

    async fn list_line_items(
        &self,
        request: &HttpRequest,
    ) -> Result<(StatusCode, Value), ServiceError> {
        let call = self.call(request).await?;
        call.caller.require_staff("listing line items")?;
        let filter: LineItemFilter = query_of(request)?;
        let endpoint = self.ags_endpoint(&call, None).await?;
        let items = self
            .ags_calls
            .line_items(
                &call.course.platform,
                &endpoint,
                &filter,
                Some(&call.course.deployment_id),
            )
            .await?;
        Ok((StatusCode::OK, json!({ "lineItems": items })))
    }

    async fn create_line_item(
        &self,
        request: &HttpRequest,
    ) -> Result<(StatusCode, Value), ServiceError> {
        let call = self.call(request).await?;
        call.caller.require_staff("creating line items")?;
        let input: LineItem = body(request)?;
        let endpoint = self.ags_endpoint(&call, None).await?;
        let created = self
            .ags_calls
            .create_line_item(
                &call.course.platform,
                &endpoint,
                input,
                Some(&call.course.deployment_id),
            )
            .await?;
        tracing::debug!(platform = %call.course.platform.id, "line item created");
        Ok((StatusCode::CREATED, json!({ "lineItem": created })))
    }

    async fn get_line_item(
        &self,
        request: &HttpRequest,
    ) -> Result<(StatusCode, Value), ServiceError> {
        let call = self.call(request).await?;
        call.caller.require_staff("reading line items")?;
        let url = url_param(request)?;
        let endpoint = self.ags_endpoint(&call, None).await?;
        let item = self
            .ags_calls
            .line_item(
                &call.course.platform,
                &endpoint,
                &url,
                Some(&call.course.deployment_id),
            )
            .await?;
        Ok((StatusCode::OK, json!({ "lineItem": item })))
    }

    async fn update_line_item(
        &self,
        request: &HttpRequest,
    ) -> Result<(StatusCode, Value), ServiceError> {
        let call = self.call(request).await?;
        call.caller.require_staff("updating line items")?;
        let url = url_param(request)?;
        let input: LineItem = body(request)?;
        let endpoint = self.ags_endpoint(&call, None).await?;
        let item = self
            .ags_calls
            .update_line_item(
                &call.course.platform,
                &endpoint,
                &url,
                input,
                Some(&call.course.deployment_id),
            )
            .await?;
        Ok((StatusCode::OK, json!({ "lineItem": item })))
    }

    async fn delete_line_item(
        &self,
        request: &HttpRequest,
    ) -> Result<(StatusCode, Value), ServiceError> {
        let call = self.call(request).await?;
        call.caller.require_staff("deleting line items")?;
        let url = url_param(request)?;
        let endpoint = self.ags_endpoint(&call, None).await?;
        self.ags_calls
            .delete_line_item(
                &call.course.platform,
                &endpoint,
                &url,
                Some(&call.course.deployment_id),
            )
            .await?;
        Ok((StatusCode::OK, json!({ "deleted": url })))
    }

    async fn post_score(&self, request: &HttpRequest) -> Result<(StatusCode, Value), ServiceError> {
        let call = self.call(request).await?;
        let mut raw: serde_json::Map<String, Value> = body(request)?;
        let target: ScoreTarget = serde_json::from_value(Value::Object(
            ["lineItemUrl", "resourceLinkId", "tag", "label"]
                .iter()
                .filter_map(|k| raw.remove(*k).map(|v| (k.to_string(), v)))
                .collect(),
        ))
        .map_err(|e| invalid("body", format!("cannot be read: {e}")))?;
        let mut score: ScoreInput = serde_json::from_value(Value::Object(raw))
            .map_err(|e| invalid("body", format!("is not a score: {e}")))?;

        // Whose score: the launch's own user by default; an app user id is mapped
        // back to the platform's user id.
        if score.user_id.is_empty() {
            match &call.caller {
                Caller::Launch(launch) => score.user_id = launch.sub.clone(),
                Caller::Backend(_) => {
                    return Err(invalid("userId", "is required for a backend job"))
                }
            }
        }
        score.user_id = self.platform_user_id(&call, &score.user_id).await?;
        call.caller.may_post_score_for(&score.user_id)?;

        let launch_link = match &call.caller {
            Caller::Launch(launch) => launch.resource_link_id.clone(),
            Caller::Backend(_) => None,
        };
        if call.caller.is_learner_only() {
            // A learner's score goes to its own resource link's line item only.
            let own = launch_link.as_deref();
            if target
                .resource_link_id
                .as_deref()
                .is_some_and(|rl| Some(rl) != own)
            {
                return Err(ServiceError::RoleNotAllowed(
                    "A learner's launch may only post to its own resource link's line item.".into(),
                ));
            }
        }
        let resource_link = target.resource_link_id.clone().or(launch_link);
        let endpoint = self.ags_endpoint(&call, resource_link.as_deref()).await?;
        let deployment = Some(call.course.deployment_id.as_str());
        let line_item = match (&target.line_item_url, &endpoint.lineitem) {
            (Some(url), own) if call.caller.is_learner_only() => {
                if own.as_deref() != Some(url.as_str()) {
                    return Err(ServiceError::RoleNotAllowed(
                        "A learner's launch may only post to its own resource link's line item."
                            .into(),
                    ));
                }
                url.clone()
            }
            (Some(url), _) => url.clone(),
            (None, Some(own)) if target.tag.is_none() => own.clone(),
            (None, _) => {
                let Some(resource_link_id) = resource_link.clone() else {
                    return Err(invalid(
                        "lineItemUrl",
                        "is required: this call has no resource link whose line item could take the score",
                    ));
                };
                let template = LineItem {
                    label: target.label.clone().unwrap_or_else(|| "Score".into()),
                    score_maximum: Some(score.score_maximum.unwrap_or(100.0)),
                    resource_link_id: Some(resource_link_id.clone()),
                    tag: target.tag.clone(),
                    ..LineItem::default()
                };
                let found = if call.caller.is_learner_only() {
                    // Learners never create line items: find the link's, or say so.
                    let filter = LineItemFilter {
                        resource_link_id: Some(resource_link_id),
                        tag: target.tag.clone(),
                        ..LineItemFilter::default()
                    };
                    self.ags_calls
                        .line_items(&call.course.platform, &endpoint, &filter, deployment)
                        .await?
                        .into_iter()
                        .next()
                        .ok_or(ServiceError::ServiceNotOffered(
                            "a line item for this resource link (an instructor's launch or a deep-linking answer with a lineItem creates one)",
                        ))?
                } else {
                    self.ags_calls
                        .find_or_create_line_item(
                            &call.course.platform,
                            &endpoint,
                            template,
                            deployment,
                        )
                        .await?
                };
                found.id.unwrap_or_default()
            }
        };
        let posted = self
            .ags_calls
            .post_score(
                &call.course.platform,
                &endpoint,
                &line_item,
                score,
                deployment,
            )
            .await?;
        tracing::debug!(platform = %call.course.platform.id, status = posted.status, "score posted");
        Ok((
            StatusCode::OK,
            serde_json::to_value(&posted).unwrap_or(Value::Null),
        ))
    }

    async fn results(&self, request: &HttpRequest) -> Result<(StatusCode, Value), ServiceError> {
        let call = self.call(request).await?;
        call.caller.require_staff("reading results")?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Query {
            line_item_url: Option<String>,
            user_id: Option<String>,
            limit: Option<u32>,
        }
        let query: Query = query_of(request)?;
        let endpoint = self.ags_endpoint(&call, None).await?;
        let line_item = query
            .line_item_url
            .or_else(|| endpoint.lineitem.clone())
            .ok_or_else(|| invalid("lineItemUrl", "is required"))?;
        let user_id = match query.user_id {
            Some(u) => Some(self.platform_user_id(&call, &u).await?),
            None => None,
        };
        let results = self
            .ags_calls
            .results(
                &call.course.platform,
                &endpoint,
                &line_item,
                &ResultsQuery {
                    user_id,
                    limit: query.limit,
                },
                Some(&call.course.deployment_id),
            )
            .await?;
        Ok((
            StatusCode::OK,
            serde_json::to_value(&results).unwrap_or(Value::Null),
        ))
    }
}

/// The `url` query parameter (a line item's URL).
fn url_param(request: &HttpRequest) -> Result<String, ServiceError> {
    #[derive(Deserialize)]
    struct Query {
        url: Option<String>,
    }
    let query: Query = query_of(request)?;
    query
        .url
        .filter(|u| !u.is_empty())
        .ok_or_else(|| invalid("url", "is required: the line item's URL"))
}
