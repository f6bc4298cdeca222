//! The admin API's registrations: `GET|POST /admin/platforms`.

use super::ServicesHandler;
use crate::request;
use crate::{respond, HttpRequest, HttpResponse};
use http::StatusCode;
use lti_core::error::{ErrorKind, Problem};
use lti_core::platform::{
    Deployment, FieldError, InvalidPlatform, LaunchProfile, Platform, PlatformInput,
};
use serde::Serialize;

/// The admin API refused the caller.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    /// No admin token is configured, so the admin API is off.
    #[error("the admin API is disabled: set LTI_ADMIN_TOKEN to enable it")]
    Disabled,
    /// The bearer token is missing or wrong.
    #[error("a valid admin bearer token is required")]
    Unauthorized,
}

impl Problem for AdminError {
    fn code(&self) -> &'static str {
        match self {
            Self::Disabled => "ADMIN_DISABLED",
            Self::Unauthorized => "ADMIN_UNAUTHORIZED",
        }
    }
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Disabled => ErrorKind::Unavailable,
            Self::Unauthorized => ErrorKind::SecurityCheck,
        }
    }
    fn public_message(&self) -> String {
        lti_core::error::sentence(&self.to_string())
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SavedPlatform {
    #[serde(flatten)]
    platform: Platform,
    #[serde(skip_serializing_if = "Option::is_none")]
    deployment_id: Option<String>,
    user_identity: UserIdentity,
}

/// Whose users a registration's launches belong to, as the admin API reports it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserIdentity {
    /// The registration's user scope (see the README, "User identity").
    user_scope: String,
    /// Other registrations of the issuer with the same scope: they share app users.
    shares_users_with: Vec<String>,
    /// Other registrations of the issuer with another key set: never the same users.
    separate_from: Vec<String>,
    /// One sentence saying what this means.
    message: String,
}

/// Registrations of one issuer the admin API reads to decide a new one's user scope
/// and check audiences (an admin request: generous, but bounded).
const ADMIN_ISSUER_LIMIT: usize = 10_000;

/// A standard registration's client_id must never be the audience of a direct one of
/// the same issuer (nor the reverse): a standard id_token would then launch without
/// its state through the direct path.
fn audience_conflicts(new: &Platform, others: &[Platform]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let others = others.iter().filter(|p| p.client_id != new.client_id);
    for other in others {
        match new.launch_profile {
            LaunchProfile::Direct => {
                if new.audience.as_deref() == Some(other.client_id.as_str())
                    && other.launch_profile == LaunchProfile::Standard
                {
                    errors.push(FieldError {
                        field: "audience".into(),
                        message: format!(
                            "is the client_id of a standard registration of this issuer ({}); a direct audience must differ from every standard client_id",
                            other.client_id
                        ),
                    });
                }
            }
            LaunchProfile::Standard => {
                if other.launch_profile == LaunchProfile::Direct
                    && other.audience.as_deref() == Some(new.client_id.as_str())
                {
                    errors.push(FieldError {
                        field: "clientId".into(),
                        message: format!(
                            "is the audience of a direct registration of this issuer ({}); a standard client_id must differ from every direct audience",
                            other.client_id
                        ),
                    });
                }
            }
        }
    }
    // A direct registration's own client_id as its audience is fine: no standard
    // registration can have that (issuer, client_id).
    errors
}

fn user_identity(saved: &Platform, others: &[Platform]) -> UserIdentity {
    let scope = saved.effective_user_scope();
    let (mut shares, mut separate) = (Vec::new(), Vec::new());
    for other in others.iter().filter(|p| p.client_id != saved.client_id) {
        if other.effective_user_scope() == scope {
            shares.push(other.client_id.clone());
        } else {
            separate.push(other.client_id.clone());
        }
    }
    let message = if separate.is_empty() && shares.is_empty() {
        "Launches through this registration get app user ids of their own.".to_string()
    } else if separate.is_empty() {
        format!(
            "This issuer is also registered with the same key set (clientId {}): they vouch for the same users, so launches through either give the same app user ids.",
            shares.join(", ")
        )
    } else {
        format!(
            "This issuer is also registered with another key set (clientId {}): launches through this registration get their own app user ids and never those of the other registration{}.",
            separate.join(", "),
            if shares.is_empty() {
                String::new()
            } else {
                format!(" (they are shared with clientId {}, same key set)", shares.join(", "))
            }
        )
    };
    UserIdentity {
        user_scope: scope.to_string(),
        shares_users_with: shares,
        separate_from: separate,
        message,
    }
}

impl ServicesHandler {
    pub(super) async fn list_platforms(&self, request: &HttpRequest) -> HttpResponse {
        match self.platforms.list_platforms().await {
            Ok(platforms) => respond::json(
                StatusCode::OK,
                &serde_json::json!({ "platforms": platforms }),
            ),
            Err(e) => respond::api_problem(request, &e, None),
        }
    }

    pub(super) async fn save_platform(&self, request: &HttpRequest) -> HttpResponse {
        let input: PlatformInput = match request::json(request) {
            Ok(input) => input,
            Err(e) => return respond::api_problem(request, &e, None),
        };
        let now = self.clock.now();
        let registration = match input.validate(now, &self.config) {
            Ok(r) => r,
            Err(invalid) => {
                let fields = serde_json::to_value(&invalid.0).ok();
                return respond::api_problem(request, &invalid, fields);
            }
        };
        let mut registration = registration;
        let issuer = registration.platform.issuer.clone();
        let others = match self
            .platforms
            .platforms_by_issuer(&issuer, ADMIN_ISSUER_LIMIT)
            .await
        {
            Ok(others) => others,
            Err(e) => return respond::api_problem(request, &e, None),
        };
        let conflicts = audience_conflicts(&registration.platform, &others);
        if !conflicts.is_empty() {
            let fields = serde_json::to_value(&conflicts).ok();
            return respond::api_problem(request, &InvalidPlatform(conflicts), fields);
        }
        // The user scope: kept by an existing registration; else shared with a
        // registration of the issuer with the same key set; else its own key set.
        let existing = others
            .iter()
            .find(|p| p.client_id == registration.platform.client_id);
        registration.platform.user_scope = Some(match existing {
            Some(existing) => existing.effective_user_scope().to_string(),
            None => others
                .iter()
                .find(|p| p.keyset_url == registration.platform.keyset_url)
                .map(|p| p.effective_user_scope().to_string())
                .unwrap_or_else(|| registration.platform.keyset_url.clone()),
        });
        // The deployment first: if saving the platform then fails, a retry of the
        // same request completes the registration (both writes are idempotent).
        if let Some(deployment_id) = &registration.deployment_id {
            let deployment = Deployment {
                issuer: registration.platform.issuer.clone(),
                client_id: registration.platform.client_id.clone(),
                deployment_id: deployment_id.clone(),
                created_at: now,
            };
            if let Err(e) = self.platforms.save_deployment(deployment).await {
                return respond::api_problem(request, &e, None);
            }
        }
        match self.platforms.save_platform(registration.platform).await {
            Ok(saved) => {
                let platform = saved.platform;
                let identity = user_identity(&platform, &others);
                tracing::info!(issuer = %platform.issuer, client_id = %platform.client_id, created = saved.created, separate_from = ?identity.separate_from, "platform saved");
                let status = if saved.created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                respond::json(
                    status,
                    &SavedPlatform {
                        platform,
                        deployment_id: registration.deployment_id,
                        user_identity: identity,
                    },
                )
            }
            Err(e) => respond::api_problem(request, &e, None),
        }
    }
}
