//! Routing rules of a registration: `GET|POST /admin/platforms/{id}/routes`,
//! `DELETE /admin/platforms/{id}/routes/{routeId}`. The rules are one record per
//! registration, written only over the version that was read (a concurrent change
//! makes the write read again, at most [`ATTEMPTS`] times).

// A refusal is the response itself, built once per request: boxing it buys nothing.
#![allow(clippy::result_large_err)]

use super::admin::{admin_problem, propagation, AdminError};
use super::ServicesHandler;
use crate::request;
use crate::{respond, HttpRequest, HttpResponse};
use http::StatusCode;
use lti_core::error::StoreError;
use lti_core::platform::Platform;
use lti_core::registration::audit::AdminActor;
use lti_core::registration::routing::RouteError;
use lti_core::registration::{RouteInput, RouteRule, RouteSet, RoutesChanged};

/// Read-modify-write attempts when another request changes the rules meanwhile.
const ATTEMPTS: usize = 3;

/// What a change of the rules did, or why not.
enum Outcome<T> {
    Done(T),
    Refused(HttpResponse),
}

impl ServicesHandler {
    /// The rules of `platform` and the version they were read at.
    async fn rules_of(&self, platform: &Platform) -> Result<(Vec<RouteRule>, u64), StoreError> {
        Ok(
            match self
                .platforms
                .routes(&platform.issuer, &platform.client_id)
                .await?
            {
                Some(set) => (set.rules_of(platform.id).to_vec(), set.version),
                None => (vec![], 0),
            },
        )
    }

    /// Applies `change` to the rules and writes them, again on a concurrent change.
    async fn change_rules<T>(
        &self,
        request: &HttpRequest,
        platform: &Platform,
        change: impl Fn(&mut Vec<RouteRule>) -> Result<T, HttpResponse>,
    ) -> Outcome<T> {
        for _ in 0..ATTEMPTS {
            let (mut rules, version) = match self.rules_of(platform).await {
                Ok(read) => read,
                Err(e) => return Outcome::Refused(respond::api_problem(request, &e, None)),
            };
            let done = match change(&mut rules) {
                Ok(done) => done,
                Err(response) => return Outcome::Refused(response),
            };
            let set = RouteSet {
                platform_id: platform.id,
                version,
                rules,
            };
            match self
                .platforms
                .save_routes(&platform.issuer, &platform.client_id, &set, version)
                .await
            {
                Ok(Ok(())) => return Outcome::Done(done),
                Ok(Err(RoutesChanged)) => continue,
                Err(e) => return Outcome::Refused(respond::api_problem(request, &e, None)),
            }
        }
        Outcome::Refused(respond::api_problem(request, &RoutesChanged, None))
    }

    /// Every rule of the registration, most specific first.
    pub(super) async fn list_routes(&self, request: &HttpRequest, id: &str) -> HttpResponse {
        let platform = match self.platform_of(request, id).await {
            Ok(p) => p,
            Err(response) => return response,
        };
        match self.rules_of(&platform).await {
            Ok((mut rules, _)) => {
                rules.sort_by_key(|r| (r.level(), r.created_at, r.id));
                respond::json(
                    StatusCode::OK,
                    &serde_json::json!({ "platformId": platform.id, "routes": rules }),
                )
            }
            Err(e) => respond::api_problem(request, &e, None),
        }
    }

    /// Adds a rule (201).
    pub(super) async fn add_route(
        &self,
        request: &HttpRequest,
        who: &AdminActor,
        id: &str,
    ) -> HttpResponse {
        let platform = match self.platform_of(request, id).await {
            Ok(p) => p,
            Err(response) => return response,
        };
        let input: RouteInput = match request::json(request) {
            Ok(input) => input,
            Err(e) => return respond::api_problem(request, &e, None),
        };
        let now = self.clock.now();
        let outcome = self
            .change_rules(request, &platform, |rules| {
                let rule = input
                    .clone()
                    .validate(now, &self.config, rules)
                    .map_err(|e| route_problem(request, &e))?;
                rules.push(rule.clone());
                Ok(rule)
            })
            .await;
        match outcome {
            Outcome::Done(rule) => {
                let mut entry = self.audit_entry(request, who, "route.add", Some(&platform));
                entry.after = Some(rule.id.to_string());
                self.audit(entry);
                let mut body = serde_json::to_value(&rule).unwrap_or_default();
                body["platformId"] = serde_json::json!(platform.id);
                body["message"] = serde_json::json!(propagation("The rule applies to launches"));
                respond::json(StatusCode::CREATED, &body)
            }
            Outcome::Refused(response) => response,
        }
    }

    /// Removes a rule.
    pub(super) async fn remove_route(
        &self,
        request: &HttpRequest,
        who: &AdminActor,
        id: &str,
        route_id: &str,
    ) -> HttpResponse {
        let platform = match self.platform_of(request, id).await {
            Ok(p) => p,
            Err(response) => return response,
        };
        let Ok(route_id) = uuid::Uuid::parse_str(route_id) else {
            return admin_problem(request, &AdminError::RouteNotFound);
        };
        let outcome = self
            .change_rules(request, &platform, |rules| {
                let before = rules.len();
                rules.retain(|r| r.id != route_id);
                if rules.len() == before {
                    return Err(admin_problem(request, &AdminError::RouteNotFound));
                }
                Ok(())
            })
            .await;
        match outcome {
            Outcome::Done(()) => {
                let mut entry = self.audit_entry(request, who, "route.remove", Some(&platform));
                entry.before = Some(route_id.to_string());
                self.audit(entry);
                respond::json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "platformId": platform.id,
                        "id": route_id,
                        "deleted": true,
                        "message": propagation("Launches stop using the rule"),
                    }),
                )
            }
            Outcome::Refused(response) => response,
        }
    }
}

fn route_problem(request: &HttpRequest, error: &RouteError) -> HttpResponse {
    let fields = error.fields().and_then(|f| serde_json::to_value(f).ok());
    respond::api_problem(request, error, fields)
}
