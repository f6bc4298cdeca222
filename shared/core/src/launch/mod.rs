//! Launch validation: the id_token posted to the redirect URI, checked step by step.
//!
//! [`Launcher::launch`] reads top to bottom as the pipeline of the 1EdTech Security
//! Framework §5.1.3 and LTI 1.3 Core §5: platform error → id_token present → state
//! bound to this browser → header and unverified `iss`/`aud` (only to choose keys) →
//! registration → RS256 signature → claims → state and nonce consumed atomically,
//! once, together with the user upsert → hand-off.

pub mod claims;
mod context;
mod error;
pub mod roles;

pub use context::{
    AgsEndpoint, CourseContext, DeepLinkingSettings, LaunchContext, LaunchPlatform,
    LaunchPresentation, LaunchUser, NrpsEndpoint, ResourceLink, Roles, Services,
};
pub use error::LaunchError;

use crate::clock::Clock;
use crate::config::ToolConfig;
use crate::handoff::{self, Handoff};
use crate::jwt;
use crate::keys::{KeyError, PlatformKeys};
use crate::platform::{Deployment, Platform, PlatformStore};
use crate::random::Random;
use crate::signer::Signer;
use crate::state::{ConsumeError, LaunchStore, StateClaim};
use crate::user::{stable_user_id, UserRecord};
use claims as c;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Clock skew allowed on `exp` and `iat`, seconds (no more than 60, per the checklist).
pub const LEEWAY: i64 = 60;

/// The form a platform posts to the redirect URI.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LaunchForm {
    pub id_token: Option<String>,
    pub state: Option<String>,
    /// OIDC error response fields, posted instead of an id_token.
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A verified id_token: the platform, the token's one-time values and the context.
#[derive(Debug, Clone)]
pub struct ValidatedLaunch {
    pub platform: Platform,
    /// The `nonce` claim.
    pub nonce: Option<String>,
    /// The `jti` claim.
    pub jti: Option<String>,
    /// The `exp` claim.
    pub exp: i64,
    /// The normalized launch.
    pub context: LaunchContext,
    /// The user to create or update.
    pub user: UserRecord,
}

/// Everything a launch needs; build it once per process.
#[derive(Clone)]
pub struct Launcher {
    pub config: Arc<ToolConfig>,
    pub platforms: Arc<dyn PlatformStore>,
    pub launches: Arc<dyn LaunchStore>,
    pub keys: Arc<PlatformKeys>,
    pub signer: Arc<dyn Signer>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct Peek {
    iss: Option<String>,
    aud: Option<Audience>,
    azp: Option<String>,
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

fn number(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    match claims.get(name)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

fn non_empty_string(value: Option<Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s),
        _ => None,
    }
}

/// The client_id the token is for (Security Framework §5.1.3 steps 3–5): a single
/// audience, or with several audiences the `azp`, which must be one of them.
fn client_id_of(peek: &Peek) -> Result<String, LaunchError> {
    let audiences: Vec<&str> = match &peek.aud {
        Some(Audience::One(a)) => vec![a.as_str()],
        Some(Audience::Many(list)) => list.iter().map(String::as_str).collect(),
        None => vec![],
    };
    match (audiences.as_slice(), peek.azp.as_deref()) {
        ([], _) => Err(LaunchError::AudienceInvalid),
        ([one], None) => Ok((*one).to_string()),
        (list, Some(azp)) if list.contains(&azp) => Ok(azp.to_string()),
        _ => Err(LaunchError::AzpInvalid),
    }
}

impl Launcher {
    /// Validates a launch and hands the user off to the app.
    ///
    /// `state_cookie` is the value of the cookie the login set for the posted state
    /// (see [`crate::login::state_cookie_name`]), if the browser sent it.
    pub async fn launch(
        &self,
        form: &LaunchForm,
        state_cookie: Option<&str>,
    ) -> Result<Handoff, LaunchError> {
        // 1. The platform may answer the login with an error instead of a token.
        if let Some(error) = form.error.as_deref().filter(|e| !e.is_empty()) {
            return Err(LaunchError::PlatformError {
                error: truncate(error, 100),
                description: form.error_description.as_deref().map(|d| truncate(d, 300)),
            });
        }
        // 2. The id_token and the state must both be there.
        let token = form
            .id_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or(LaunchError::IdTokenMissing)?;
        let state = form
            .state
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(LaunchError::StateMissing)?;
        // 3. The state must be bound to this browser by the cookie set at login.
        match state_cookie {
            None => return Err(LaunchError::StateCookieMissing),
            Some(cookie) if !crate::error::Secret::new(cookie).matches(state) => {
                return Err(LaunchError::StateNotBound)
            }
            Some(_) => {}
        }
        // 4–6. Registration, signature and claims.
        let now = self.clock.now();
        let launch = self.validate(token, now).await?;
        let nonce = launch.nonce.clone().ok_or(LaunchError::NonceMissing)?;
        // 7. Consume state and nonce once, atomically, with the user upsert.
        let claim = StateClaim {
            state: state.to_string(),
            nonce,
            issuer: launch.platform.issuer.clone(),
            client_id: launch.platform.client_id.clone(),
            now,
        };
        self.launches
            .finish_launch(&claim, &launch.user)
            .await
            .map_err(|e| match e {
                ConsumeError::Unknown => LaunchError::StateUnknown,
                ConsumeError::Expired => LaunchError::StateExpired,
                ConsumeError::AlreadyUsed => LaunchError::Replayed,
                ConsumeError::NonceMismatch => LaunchError::NonceInvalid,
                ConsumeError::PlatformMismatch => LaunchError::StatePlatformMismatch,
                ConsumeError::Store(e) => LaunchError::Store(e),
            })?;
        // 8. Hand the user off to the app.
        Ok(handoff::issue(
            &self.config,
            self.signer.as_ref(),
            self.random.as_ref(),
            &launch.context,
            launch.platform.landing_url.as_deref(),
            now,
        )
        .await?)
    }

    /// Verifies an id_token and normalizes its claims; touches no state.
    ///
    /// This is everything but the single-use checks and the hand-off: the header, the
    /// registration, the RS256 signature with the platform's key, and every claim.
    pub async fn validate(&self, token: &str, now: i64) -> Result<ValidatedLaunch, LaunchError> {
        // Header and unverified iss/aud: safe to read, only used to choose the key.
        let (header, payload, _) = jwt::split(token).ok_or(LaunchError::NotAJwt)?;
        let header: Header = jwt::decode_part(header).ok_or(LaunchError::NotAJwt)?;
        match header.alg.as_deref() {
            Some("RS256") => {}
            Some(other) => return Err(LaunchError::AlgUnsupported(truncate(other, 20))),
            None => return Err(LaunchError::NotAJwt),
        }
        let kid = header
            .kid
            .filter(|k| !k.is_empty())
            .ok_or(LaunchError::KidMissing)?;
        let peek: Peek = jwt::decode_part(payload).ok_or(LaunchError::NotAJwt)?;
        let issuer = peek
            .iss
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or(LaunchError::IssuerMissing)?;
        let client_id = client_id_of(&peek)?;

        // The registration for (iss, client_id).
        let platform = match self.platforms.platform(&issuer, &client_id).await? {
            Some(p) => p,
            None if self
                .platforms
                .platforms_by_issuer(&issuer)
                .await?
                .is_empty() =>
            {
                return Err(LaunchError::IssuerUnknown)
            }
            None => return Err(LaunchError::AudienceInvalid),
        };

        // RS256 signature with the platform's key for this kid.
        let key = self
            .keys
            .key(&platform.keyset_url, &kid, now)
            .await
            .map_err(|e| match e {
                KeyError::UnknownKid => LaunchError::KidUnknown,
                KeyError::Fetch(f) => LaunchError::Keys(f),
            })?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        // Time and audience are checked below, each with its own error code.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let mut claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => LaunchError::SignatureInvalid,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                    LaunchError::AlgUnsupported("another algorithm".into())
                }
                _ => LaunchError::NotAJwt,
            })?
            .claims;

        self.check_times(&claims, now)?;
        let checked = self
            .check_lti_claims(&mut claims, &platform, &issuer, &client_id, now)
            .await?;
        let nonce = non_empty_string(claims.get("nonce").cloned());
        let jti = non_empty_string(claims.get("jti").cloned());
        let exp = number(&claims, "exp").unwrap_or(now);
        let context = context::normalize(checked, claims)?;
        let user = UserRecord {
            id: context.user.id.clone(),
            issuer: issuer.clone(),
            sub: context.user.sub.clone(),
            client_id: client_id.clone(),
            name: context.user.name.clone(),
            given_name: context.user.given_name.clone(),
            family_name: context.user.family_name.clone(),
            email: context.user.email.clone(),
            picture: context.user.picture.clone(),
            created_at: now,
            last_seen_at: now,
        };
        Ok(ValidatedLaunch {
            platform,
            nonce,
            jti,
            exp,
            context,
            user,
        })
    }

    /// `exp` in the future and `iat` neither in the future nor older than a login can
    /// be (Security Framework §5.1.3 steps 7 and 8), with [`LEEWAY`].
    fn check_times(&self, claims: &Map<String, Value>, now: i64) -> Result<(), LaunchError> {
        let exp = number(claims, "exp").ok_or(LaunchError::ExpInvalid)?;
        if now > exp + LEEWAY {
            return Err(LaunchError::Expired);
        }
        let iat = number(claims, "iat").ok_or(LaunchError::IatInvalid)?;
        // A token cannot be older than the login state it answers.
        let max_age = self.config.state_ttl + LEEWAY;
        if iat > now + LEEWAY || iat < now - max_age {
            return Err(LaunchError::IatInvalid);
        }
        Ok(())
    }

    /// The LTI claims of LTI 1.3 Core §5.3, taken out of `claims` once checked.
    async fn check_lti_claims(
        &self,
        claims: &mut Map<String, Value>,
        platform: &Platform,
        issuer: &str,
        client_id: &str,
        now: i64,
    ) -> Result<context::Checked, LaunchError> {
        let message_type = claims.remove(c::MESSAGE_TYPE);
        let version = claims.get(c::VERSION);
        if message_type.is_none() && version.is_none() {
            return Err(LaunchError::NotLtiMessage);
        }
        if version.and_then(Value::as_str) != Some(c::LTI_VERSION) {
            return Err(LaunchError::VersionInvalid);
        }
        let message_type = non_empty_string(message_type).ok_or(LaunchError::MessageTypeMissing)?;
        if !c::SUPPORTED_MESSAGE_TYPES.contains(&message_type.as_str()) {
            return Err(LaunchError::MessageTypeUnsupported(truncate(
                &message_type,
                60,
            )));
        }

        let deployment_id = non_empty_string(claims.remove(c::DEPLOYMENT_ID))
            .ok_or(LaunchError::DeploymentMissing)?;
        if self
            .platforms
            .deployment(issuer, client_id, &deployment_id)
            .await?
            .is_none()
        {
            if !platform.accept_new_deployments {
                return Err(LaunchError::DeploymentUnknown);
            }
            self.platforms
                .save_deployment(Deployment {
                    issuer: issuer.to_string(),
                    client_id: client_id.to_string(),
                    deployment_id: deployment_id.clone(),
                    created_at: now,
                })
                .await?;
        }

        let sub = non_empty_string(claims.remove("sub")).ok_or(LaunchError::SubMissing)?;
        let roles = match claims.remove(c::ROLES) {
            None | Some(Value::Null) => return Err(LaunchError::RolesMissing),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|r| match r {
                    Value::String(s) => Ok(s),
                    _ => Err(LaunchError::RolesInvalid),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(LaunchError::RolesInvalid),
        };

        let target_link_uri = non_empty_string(claims.remove(c::TARGET_LINK_URI));
        match &target_link_uri {
            Some(uri) => {
                let url = url::Url::parse(uri).map_err(|_| LaunchError::TargetLinkUriInvalid)?;
                if !self.config.is_tool_url(&url) && !self.config.is_app_url(&url) {
                    return Err(LaunchError::TargetLinkUriInvalid);
                }
            }
            None if message_type == c::RESOURCE_LINK_REQUEST => {
                return Err(LaunchError::TargetLinkUriInvalid)
            }
            None => {}
        }

        Ok(context::Checked {
            message_type,
            user_id: stable_user_id(issuer, &sub),
            sub,
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
            deployment_id,
            platform_name: platform.name.clone(),
            roles,
            target_link_uri,
        })
    }
}
