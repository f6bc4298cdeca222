//! Who may call the services (SERVICES-API.md, "Who may call"): the app's backend with
//! a service key, always; on behalf of a launch with its app token (or the launch id it
//! carries) as bearer, scoped to that launch's course, resource link and roles; or as a
//! backend job for a course, named by registration id and context id.

use crate::clock::Clock;
use crate::config::ToolConfig;
use crate::launch::roles::RoleKind;
use crate::platform::{Platform, PlatformStore};
use crate::services::keys::{ServiceKeyRecord, ServiceKeys};
use crate::services::records::{ContextRecord, LaunchRecord, ServiceRecords};
use crate::services::ServiceError;
use crate::signer::Signer;
use std::sync::Arc;
use uuid::Uuid;

/// What a call presented.
#[derive(Debug, Clone, Default)]
pub struct Presented<'a> {
    /// `x-api-key`.
    pub api_key: Option<&'a str>,
    /// `Authorization: Bearer …`: an app token, or the launch id it carries.
    pub bearer: Option<&'a str>,
    /// `platformId` (a registration id), for backend jobs.
    pub platform_id: Option<String>,
    /// `contextId`, for backend jobs.
    pub context_id: Option<String>,
}

/// On whose behalf a call is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A launch: its course, resource link, user and roles limit the call.
    Launch(Box<LaunchRecord>),
    /// A backend job for a course (no user): the course's services as last launched.
    Backend(Box<ContextRecord>),
}

/// The course a call is about, with what its launches said of its services.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseServices {
    pub platform: Platform,
    pub deployment_id: String,
    pub context_id: Option<String>,
    /// AGS `lineitems` of the course.
    pub lineitems: Option<String>,
    /// AGS `lineitem` of the launch's resource link (launches only).
    pub lineitem: Option<String>,
    /// AGS scopes the platform granted.
    pub ags_scopes: Vec<String>,
    /// NRPS `context_memberships_url`.
    pub memberships_url: Option<String>,
    /// The launch's resource link (launches only).
    pub resource_link_id: Option<String>,
}

fn is_staff(roles: &[RoleKind]) -> bool {
    roles.iter().any(|r| {
        matches!(
            r,
            RoleKind::Instructor
                | RoleKind::TeachingAssistant
                | RoleKind::ContentDeveloper
                | RoleKind::Admin
        )
    })
}

impl Caller {
    /// Allowed for instructors, teaching assistants, content developers and
    /// administrators of the course, and for backend jobs; `what` names the call.
    pub fn require_staff(&self, what: &str) -> Result<(), ServiceError> {
        match self {
            Caller::Backend(_) => Ok(()),
            Caller::Launch(l) if is_staff(&l.roles) => Ok(()),
            Caller::Launch(l) if l.roles.contains(&RoleKind::Learner) => {
                Err(ServiceError::RoleNotAllowed(format!(
                    "A learner's launch may only post that learner's own score, not {what}."
                )))
            }
            Caller::Launch(_) => Err(ServiceError::RoleNotAllowed(format!(
                "This launch's roles do not allow {what}."
            ))),
        }
    }

    /// May post a score for the platform user `user_id` (a platform `sub`, or an app
    /// user id): staff and backend jobs for anyone; a learner for themselves only.
    pub fn may_post_score_for(&self, user_id: &str) -> Result<(), ServiceError> {
        match self {
            Caller::Launch(l) if !is_staff(&l.roles) => {
                if !l.roles.contains(&RoleKind::Learner) {
                    return Err(ServiceError::RoleNotAllowed(
                        "This launch's roles do not allow posting scores.".into(),
                    ));
                }
                if user_id == l.sub || user_id == l.user_id {
                    Ok(())
                } else {
                    Err(ServiceError::RoleNotAllowed(
                        "A learner's launch may only post that learner's own score.".into(),
                    ))
                }
            }
            _ => Ok(()),
        }
    }

    /// True for a learner's launch (its scores go to its own resource link only).
    pub fn is_learner_only(&self) -> bool {
        matches!(self, Caller::Launch(l) if !is_staff(&l.roles))
    }
}

/// Authenticates services calls.
pub struct ServiceAuth {
    pub config: Arc<ToolConfig>,
    pub keys: Arc<ServiceKeys>,
    pub signer: Arc<dyn Signer>,
    pub records: Arc<dyn ServiceRecords>,
    pub platforms: Arc<dyn PlatformStore>,
    pub clock: Arc<dyn Clock>,
    /// Launch records read lately (they never change; kept until they expire), so a
    /// warm instance serves repeated calls of one launch without a store read.
    pub launches: LaunchCache,
}

/// Launch records by id, bounded.
#[derive(Default)]
pub struct LaunchCache(std::sync::Mutex<std::collections::HashMap<String, LaunchRecord>>);

/// Most launch records a warm instance keeps.
const LAUNCH_CACHE_ENTRIES: usize = 10_000;

impl LaunchCache {
    fn get(&self, id: &str, now: i64) -> Option<LaunchRecord> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).filter(|l| l.expires_at > now).cloned()
    }

    fn put(&self, record: &LaunchRecord, now: i64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= LAUNCH_CACHE_ENTRIES {
            map.retain(|_, l| l.expires_at > now);
            if map.len() >= LAUNCH_CACHE_ENTRIES {
                map.clear();
            }
        }
        map.insert(record.launch_id.clone(), record.clone());
    }
}

/// Leeway on the app token's `exp`, seconds.
const TOKEN_LEEWAY: u64 = 5;

impl ServiceAuth {
    /// Checks the service key, then decides on whose behalf the call is made.
    pub async fn caller(
        &self,
        presented: Presented<'_>,
    ) -> Result<(ServiceKeyRecord, Caller), ServiceError> {
        let key = self.keys.verify(presented.api_key).await?;
        let now = self.clock.now();
        let caller = match presented.bearer.map(str::trim).filter(|b| !b.is_empty()) {
            Some(bearer) => Caller::Launch(Box::new(self.launch_of(bearer, now).await?)),
            None => {
                let (Some(platform_id), Some(context_id)) = (
                    presented.platform_id.as_deref(),
                    presented.context_id.as_deref(),
                ) else {
                    return Err(ServiceError::Invalid(vec![crate::platform::FieldError {
                        field: "Authorization".into(),
                        message: "is required: the launch's app token or launch id as bearer, or platformId and contextId for a backend job".into(),
                    }]));
                };
                let platform_id: Uuid = platform_id.trim().parse().map_err(|_| {
                    ServiceError::Invalid(vec![crate::platform::FieldError {
                        field: "platformId".into(),
                        message: "is not a registration id".into(),
                    }])
                })?;
                let context = self
                    .records
                    .context_record(platform_id, context_id)
                    .await?
                    .ok_or(ServiceError::ContextUnknown)?;
                Caller::Backend(Box::new(context))
            }
        };
        Ok((key, caller))
    }

    /// The launch a bearer stands for: an app token this tool signed (verified like an
    /// app verifies it: signature with the tool's keys, issuer, audience, expiry), or
    /// the launch id it carries.
    async fn launch_of(&self, bearer: &str, now: i64) -> Result<LaunchRecord, ServiceError> {
        let invalid = |why: &str| ServiceError::LaunchTokenInvalid(why.to_string());
        let launch_id = if bearer.contains('.') {
            self.verify_app_token(bearer).await?
        } else if bearer.len() <= 64 {
            bearer.to_string()
        } else {
            return Err(invalid("it is neither an app token nor a launch id"));
        };
        if let Some(record) = self.launches.get(&launch_id, now) {
            return Ok(record);
        }
        let record = self
            .records
            .launch_record(&launch_id, now)
            .await?
            .ok_or_else(|| invalid("no such launch, or it has expired"))?;
        self.launches.put(&record, now);
        Ok(record)
    }

    /// Verifies an app token; returns its launch id (`jti`).
    async fn verify_app_token(&self, token: &str) -> Result<String, ServiceError> {
        let invalid = |why: String| ServiceError::LaunchTokenInvalid(why);
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| invalid("it is not a JWT".into()))?;
        let kid = header.kid.ok_or_else(|| invalid("it has no kid".into()))?;
        let keys = self.signer.public_keys().await?;
        let jwk = keys
            .iter()
            .find(|k| k.kid == kid)
            .ok_or_else(|| invalid("it was not signed by this tool's keys".into()))?;
        let key = jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e)
            .map_err(|_| invalid("the tool's key cannot be read".into()))?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_issuer(&[self.config.issuer()]);
        validation.set_audience(&[self.config.app_audience.as_str()]);
        validation.leeway = TOKEN_LEEWAY;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        #[derive(serde::Deserialize)]
        struct Claims {
            jti: Option<String>,
        }
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            invalid(match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "it has expired".into(),
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    "its signature is invalid".into()
                }
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    "it was not issued by this tool".into()
                }
                jsonwebtoken::errors::ErrorKind::InvalidAudience => "it is not for this app".into(),
                _ => "it cannot be verified".into(),
            })
        })?;
        data.claims
            .jti
            .filter(|j| !j.is_empty())
            .ok_or_else(|| invalid("it carries no launch id".into()))
    }

    /// The course a call is about: its registration (still registered, with the same
    /// id) and what its launches said of its services.
    pub async fn course(&self, caller: &Caller) -> Result<CourseServices, ServiceError> {
        let (issuer, client_id, platform_id) = match caller {
            Caller::Launch(l) => (&l.issuer, &l.client_id, l.platform_id),
            Caller::Backend(c) => (&c.issuer, &c.client_id, c.platform_id),
        };
        let platform = self
            .platforms
            .platform(issuer, client_id)
            .await?
            .filter(|p| p.id == platform_id)
            .ok_or(ServiceError::PlatformUnknown)?;
        crate::observe::note_registration(&platform.issuer, &platform.client_id);
        Ok(match caller {
            Caller::Launch(l) => CourseServices {
                platform,
                deployment_id: l.deployment_id.clone(),
                context_id: l.context_id.clone(),
                lineitems: l.ags.as_ref().and_then(|a| a.lineitems.clone()),
                lineitem: l.ags.as_ref().and_then(|a| a.lineitem.clone()),
                ags_scopes: l.ags.as_ref().map(|a| a.scope.clone()).unwrap_or_default(),
                memberships_url: l.nrps.as_ref().map(|n| n.context_memberships_url.clone()),
                resource_link_id: l.resource_link_id.clone(),
            },
            Caller::Backend(c) => CourseServices {
                platform,
                deployment_id: c.deployment_id.clone(),
                context_id: Some(c.context_id.clone()),
                lineitems: c.lineitems.clone(),
                lineitem: None,
                ags_scopes: c.ags_scopes.clone(),
                memberships_url: c.memberships_url.clone(),
                resource_link_id: None,
            },
        })
    }
}
