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
    LaunchPresentation, LaunchUser, NrpsEndpoint, ResourceLink, Roles, Services, Timeback,
};
pub use error::LaunchError;

use crate::clock::Clock;
use crate::config::ToolConfig;
use crate::handoff::{self, Handoff};
use crate::jwt;
use crate::keys::{KeyError, PlatformKeys};
use crate::limits;
use crate::platform::{
    key_set_cache_key, ColdStartRequest, Deployment, LaunchProfile, Platform, PlatformStore,
};
use crate::random::Random;
use crate::services::records::LaunchWrites;
use crate::signer::Signer;
use crate::state::{ConsumeError, LaunchStore, StateClaim};
use crate::user::UserRecord;
use claims as c;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Clock skew allowed on `exp`, `iat` and `nbf`, seconds (no more than 60, per the
/// checklist; D2L sends `nbf` a few seconds ahead).
pub const LEEWAY: i64 = 60;

/// The form a platform posts to the redirect URI.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LaunchForm {
    pub id_token: Option<String>,
    pub state: Option<String>,
    /// OIDC error response fields, posted instead of an id_token.
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// The one-time proof read back from the platform's storage frame, posted by the
    /// tool's own storage page when the browser withheld the state cookie.
    pub lti_storage_proof: Option<String>,
    /// Posted by the tool's storage page when the platform's storage did not give the
    /// state back: the launch then offers a new window.
    pub lti_storage_failed: Option<String>,
}

/// How to go on with a launch that came without the state cookie (and without a
/// storage proof): see [`Launcher::cookieless`].
#[derive(Debug, Clone)]
pub enum Cookieless {
    /// The login stored the state in the platform's storage frame: answer the page
    /// that reads it back and posts the launch again with the proof.
    Storage {
        /// The `lti_storage_target` frame name.
        target: String,
        /// The platform's origin (messages go to and must come from it).
        origin: String,
        /// The key to read: `state_<state>`.
        key: String,
        /// The registration's origins (CSP `frame-ancestors`).
        frame_origins: Vec<String>,
    },
    /// Neither the cookie nor the platform's storage binds this launch: explain, and
    /// offer the same login at the top level (a new window), where the cookie works.
    NewWindow {
        /// The tool's login URL with the login's `iss`, `login_hint`,
        /// `target_link_uri`, `lti_message_hint`, `client_id` and deployment.
        restart_url: Option<String>,
        /// The registration's origins (CSP `frame-ancestors`).
        frame_origins: Vec<String>,
    },
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
    /// Only to read the deployment with the registration on a cold instance.
    #[serde(rename = "https://purl.imsglobal.org/spec/lti/claim/deployment_id")]
    deployment_id: Option<Value>,
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// A numeric date claim as whole seconds. Values beyond the i64 range (`1e300`)
/// saturate, and every sum with them below saturates too: no claim can overflow.
fn number(claims: &Map<String, Value>, name: &str) -> Option<i64> {
    match claims.get(name)? {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|_| i64::MAX))
            // `as` saturates (and maps NaN, which JSON cannot carry, to 0).
            .or_else(|| n.as_f64().map(|f| f as i64)),
        _ => None,
    }
}

/// An optional string claim: absent, null or blank is `None`; another type is invalid.
fn optional_string(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, LaunchError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(LaunchError::ClaimInvalid {
            claim: name,
            reason: format!("it must be a string, not {}", json_type(other)),
        }),
    }
}

/// A required string claim: absent, null or blank is `missing`; any other type is
/// [`LaunchError::ClaimInvalid`] naming the claim (never "missing" for a claim that is
/// there); longer than `max` bytes is invalid too.
fn required_string(
    value: Option<Value>,
    missing: LaunchError,
    label: &'static str,
    max: usize,
) -> Result<String, LaunchError> {
    match value {
        None | Some(Value::Null) => Err(missing),
        Some(Value::String(s)) if s.trim().is_empty() => Err(missing),
        Some(Value::String(s)) if s.len() > max => Err(LaunchError::ClaimInvalid {
            claim: label,
            reason: format!("it is longer than {max} bytes"),
        }),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(LaunchError::ClaimInvalid {
            claim: label,
            reason: format!("it must be a string, not {}", json_type(&other)),
        }),
    }
}

/// The JSON type of `value`, for error sentences.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The client_id the token claims to be for (Security Framework §5.1.3 steps 3–5):
/// the `azp` when present, else the single audience. Several audiences need an `azp`.
fn claimed_client_id(peek: &Peek) -> Result<(String, Vec<&str>), LaunchError> {
    let audiences = audiences_of(peek);
    if audiences.is_empty() {
        return Err(LaunchError::AudienceInvalid);
    }
    let candidate = match (peek.azp.as_deref(), audiences.as_slice()) {
        (Some(azp), _) => azp.to_string(),
        (None, [one]) => (*one).to_string(),
        (None, _) => return Err(LaunchError::AzpInvalid),
    };
    Ok((candidate, audiences))
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
        //    Its description is shown only to the browser that started this login.
        if let Some(error) = form.error.as_deref().filter(|e| !e.is_empty()) {
            let bound = match (form.state.as_deref(), state_cookie) {
                (Some(state), Some(cookie)) if !state.is_empty() => {
                    crate::error::Secret::new(cookie).matches(state)
                }
                _ => false,
            };
            let description = form.error_description.as_deref();
            return Err(LaunchError::platform_error(error, description, bound));
        }
        // 2. The id_token and the state must both be there.
        let token = form
            .id_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or(LaunchError::IdTokenMissing)?;
        let Some(state) = form.state.as_deref().filter(|s| !s.is_empty()) else {
            // No login step: only a platform an admin set to the direct profile may.
            return self.launch_direct(token).await;
        };
        if state.len() > limits::MAX_STATE_LEN {
            // Not one this tool issued (they are 43 characters): never a store key.
            return Err(LaunchError::StateUnknown);
        }
        // 3. The state must be bound to this browser: by the cookie set at login or,
        //    when the browser withheld it, by the proof the login left in the
        //    platform's storage frame (its hash is checked when the state is consumed).
        let storage_proof_hash = match state_cookie {
            Some(cookie) if !crate::error::Secret::new(cookie).matches(state) => {
                return Err(LaunchError::StateNotBound)
            }
            Some(_) => None,
            None => match form.lti_storage_proof.as_deref().filter(|p| !p.is_empty()) {
                Some(proof) if proof.len() > crate::storage::MAX_PROOF_LEN => {
                    return Err(LaunchError::StorageProofInvalid)
                }
                Some(proof) => Some(crate::storage::proof_hash(proof)),
                None => return Err(LaunchError::StateCookieMissing),
            },
        };
        // 4–6. Registration, signature and claims.
        let now = self.clock.now();
        let mut launch = self.validate(token, now).await?;
        let nonce = launch.nonce.clone().ok_or(LaunchError::NonceMissing)?;
        // Everything that can fail before the hand-off is done before the state is
        // consumed, so a refused launch never uses up the user's login.
        let (prepared, writes) = self.prepare(&mut launch, now).await?;
        // 7–8. Consume state and nonce once, atomically, with everything the launch
        // writes — and, at the same time, sign the app token. The two do not depend on
        // each other, so the user waits for one round trip, not two; the token is handed
        // out only if the consumption succeeded (a refused launch never gets it). A
        // state this instance already saw consumed is refused before either call.
        if self.launches.recently_consumed(state) {
            return Err(LaunchError::Replayed);
        }
        let claim = StateClaim {
            state: state.to_string(),
            nonce,
            issuer: launch.platform.issuer.clone(),
            client_id: launch.platform.client_id.clone(),
            now,
            storage_proof_hash,
        };
        let (consumed, signed) = tokio::join!(
            self.launches.finish_launch(&claim, &writes),
            prepared.sign(self.signer.as_ref())
        );
        consumed.map_err(|e| match e {
            ConsumeError::Unknown => LaunchError::StateUnknown,
            ConsumeError::Expired => LaunchError::StateExpired,
            ConsumeError::AlreadyUsed => LaunchError::Replayed,
            ConsumeError::NonceMismatch => LaunchError::NonceInvalid,
            ConsumeError::PlatformMismatch => LaunchError::StatePlatformMismatch,
            ConsumeError::StorageProofMismatch => LaunchError::StorageProofInvalid,
            ConsumeError::Store(e) => LaunchError::Store(e),
        })?;
        let mut handoff = signed?;
        handoff.frame_origins = crate::storage::registration_origins(&launch.platform);
        Ok(handoff)
    }

    /// What to answer a launch that came without the state cookie and without a
    /// storage proof (the handler calls this instead of [`Launcher::launch`]): one
    /// strongly consistent read of the state. A state that is unknown, expired or
    /// used is refused as before ([`LaunchError::StateCookieMissing`]); nothing is
    /// consumed and the id_token is not read — the launch that follows checks it all.
    pub async fn cookieless(&self, form: &LaunchForm) -> Result<Cookieless, LaunchError> {
        form.id_token
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or(LaunchError::IdTokenMissing)?;
        let state = form
            .state
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(LaunchError::StateMissing)?;
        if state.len() > limits::MAX_STATE_LEN {
            return Err(LaunchError::StateUnknown);
        }
        if self.launches.recently_consumed(state) {
            // This instance consumed it: no store call for a replay.
            return Err(LaunchError::StateCookieMissing);
        }
        let now = self.clock.now();
        let login = self
            .launches
            .pending_login(state, now)
            .await?
            .ok_or(LaunchError::StateCookieMissing)?;
        let frame_origins = match self
            .platforms
            .platform(&login.issuer, &login.client_id)
            .await?
        {
            Some(platform) => crate::storage::registration_origins(&platform),
            None => Vec::new(),
        };
        let failed = form
            .lti_storage_failed
            .as_deref()
            .is_some_and(|f| !f.is_empty());
        match login.storage {
            Some(storage) if !failed => Ok(Cookieless::Storage {
                target: storage.target,
                origin: storage.origin,
                key: crate::storage::state_key(state),
                frame_origins,
            }),
            _ => Ok(Cookieless::NewWindow {
                restart_url: login.restart.map(|restart| {
                    let mut url = url::Url::parse(&self.config.url(crate::config::paths::LOGIN))
                        .unwrap_or_else(|_| self.config.base_url.clone());
                    {
                        let mut query = url.query_pairs_mut();
                        query
                            .append_pair("iss", &login.issuer)
                            .append_pair("login_hint", &restart.login_hint)
                            .append_pair("target_link_uri", &login.target_link_uri)
                            .append_pair("client_id", &login.client_id);
                        if let Some(hint) = &restart.lti_message_hint {
                            query.append_pair("lti_message_hint", hint);
                        }
                        if let Some(deployment) = &login.deployment_id {
                            query.append_pair("lti_deployment_id", deployment);
                        }
                    }
                    url.to_string()
                }),
                frame_origins,
            }),
        }
    }

    /// Gives the launch its id and its routing rule, and prepares, before anything is
    /// consumed, the app token and everything the launch writes (the user, the launch
    /// record, the course's and the resource link's services).
    async fn prepare(
        &self,
        launch: &mut ValidatedLaunch,
        now: i64,
    ) -> Result<(handoff::Prepared, LaunchWrites), LaunchError> {
        let launch_id = self.random.token(16);
        launch.context.launch_id.clone_from(&launch_id);
        // The registration's routing rules: one read by key (none when warm).
        let rules = self
            .platforms
            .routes(&launch.platform.issuer, &launch.platform.client_id)
            .await?;
        let rule = rules.as_ref().and_then(|set| {
            crate::registration::routing::resolve(
                set.rules_of(launch.platform.id),
                &launch.context.platform.deployment_id,
                launch.context.context.as_ref().map(|c| c.id.as_str()),
                &self.config,
            )
        });
        launch.context.route = rule.map(|r| r.app_route());
        let prepared = handoff::prepare(
            &self.config,
            self.random.as_ref(),
            &launch.context,
            rule.and_then(|r| r.landing_url.as_deref()),
            launch.platform.landing_url.as_deref(),
            now,
        )?;
        let writes = LaunchWrites::of(
            &launch.platform,
            &launch.context,
            launch.user.clone(),
            &launch_id,
            now,
            now.saturating_add(self.config.app_token_ttl),
        );
        Ok((prepared, writes))
    }

    /// Verifies an id_token and normalizes its claims; touches no state.
    ///
    /// This is everything but the single-use checks and the hand-off: the header, the
    /// registration, the RS256 signature with the platform's key, and every claim.
    pub async fn validate(&self, token: &str, now: i64) -> Result<ValidatedLaunch, LaunchError> {
        let (platform, mut claims) = self.verify(token, now, Profile::Standard).await?;
        let checked = self.check_lti_claims(&mut claims, &platform, now).await?;
        Self::finish_validation(platform, checked, claims, now)
    }

    /// A launch without the login step, for a platform set to the `direct` profile:
    /// signature, `iss`, the registered audience, `exp` and `iat` as usual; the token's
    /// nonce (or jti, or its hash) is recorded until it expires and refused a second
    /// time; the user lands by redirect, the app token in the URL fragment.
    pub async fn launch_direct(&self, token: &str) -> Result<Handoff, LaunchError> {
        let now = self.clock.now();
        let mut launch = self.validate_direct(token, now).await?;
        let once = match (&launch.nonce, &launch.jti) {
            (Some(nonce), _) => format!("nonce:{nonce}"),
            (None, Some(jti)) => format!("jti:{jti}"),
            (None, None) => format!("token:{}", token_hash(token)),
        };
        // A fixed-size key whatever the token carries (a 2 KB jti is no store error).
        let key = token_hash(&format!("{}\n{}", launch.platform.issuer, once));
        let (prepared, writes) = self.prepare(&mut launch, now).await?;
        // As for a standard launch: recorded once and signed at the same time.
        let (recorded, signed) = tokio::join!(
            self.launches
                .record_once(&key, once_record_until(launch.exp, now), now, &writes),
            prepared.sign(self.signer.as_ref())
        );
        recorded.map_err(|e| match e {
            ConsumeError::Store(e) => LaunchError::Store(e),
            _ => LaunchError::Replayed,
        })?;
        let mut handoff = signed?;
        // A direct launch answers with a redirect, so the token travels in the
        // fragment (never the query).
        handoff.mode = crate::config::HandoffMode::Fragment;
        Ok(handoff)
    }

    /// Verifies a direct launch's id_token and normalizes its claims; touches no state.
    pub async fn validate_direct(
        &self,
        token: &str,
        now: i64,
    ) -> Result<ValidatedLaunch, LaunchError> {
        let (platform, mut claims) = self.verify(token, now, Profile::Direct).await?;
        let checked = self.check_direct_claims(&mut claims, &platform)?;
        Self::finish_validation(platform, checked, claims, now)
    }

    fn finish_validation(
        platform: Platform,
        checked: context::Checked,
        claims: Map<String, Value>,
        now: i64,
    ) -> Result<ValidatedLaunch, LaunchError> {
        let nonce = optional_string(&claims, "nonce")?;
        let jti = optional_string(&claims, "jti")?;
        let exp = number(&claims, "exp").unwrap_or(now);
        let issuer = checked.issuer.clone();
        let client_id = checked.client_id.clone();
        let user_scope = platform.effective_user_scope().to_string();
        let context = context::normalize(checked, claims)?;
        for warning in &context.warnings {
            tracing::warn!(issuer = %issuer, client_id = %client_id, warning = %warning, "optional claim read leniently");
        }
        let user = UserRecord {
            id: context.user.id.clone(),
            issuer,
            user_scope,
            sub: context.user.sub.clone(),
            client_id,
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

    /// The header, the registration and the RS256 signature; returns the verified
    /// claims with `exp` and `iat` checked.
    async fn verify(
        &self,
        token: &str,
        now: i64,
        profile: Profile,
    ) -> Result<(Platform, Map<String, Value>), LaunchError> {
        // Header and unverified iss/aud: safe to read, only used to choose the key.
        let (header, payload, signature) = jwt::split(token).ok_or(LaunchError::NotAJwt)?;
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
        // The payload is parsed once: its iss/aud/azp choose the registration and its
        // key now, and the same claims are returned once the signature is checked.
        let payload: Value = jwt::decode_part(payload)
            .filter(Value::is_object)
            .ok_or(LaunchError::NotAJwt)?;
        let peek = Peek::deserialize(&payload).map_err(|_| LaunchError::NotAJwt)?;
        let issuer = peek
            .iss
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or(LaunchError::IssuerMissing)?;
        let audiences = audiences_of(&peek);
        crate::observe::note_claimed(
            Some(&issuer),
            peek.azp.as_deref().or(audiences.first().copied()),
        );
        if issuer.len() > limits::MAX_ISSUER_LEN {
            // Longer than any registration may be: not registered, and never a key.
            return Err(LaunchError::IssuerUnknown);
        }
        if audiences.len() > limits::MAX_AUDIENCES {
            return Err(LaunchError::AudienceInvalid);
        }

        let cold = match profile {
            Profile::Standard => self.cold_start(&issuer, &peek, now).await?,
            Profile::Direct => None,
        };
        let platform = match profile {
            Profile::Standard => self.standard_registration(&issuer, &peek, cold).await?,
            Profile::Direct => self.direct_registration(&issuer, &audiences).await?,
        };
        crate::observe::note_registration(&platform.issuer, &platform.client_id);

        // RS256 signature with the platform's keys for this kid (a kid may name several),
        // kept in the shared cache per registration.
        let keys = self
            .keys
            .keys_shared_as(
                &platform.keyset_url,
                &key_set_cache_key(&platform.issuer, &platform.client_id),
                &kid,
                now,
            )
            .await
            .map_err(|e| match e {
                KeyError::UnknownKid => LaunchError::KidUnknown,
                KeyError::Fetch(f) => LaunchError::Keys(f),
            })?;
        // The signed message is the token up to its last dot (RFC 7515 §5.2).
        let message = &token[..token.len() - signature.len() - 1];
        let mut verified = Err(LaunchError::SignatureInvalid);
        for key in &keys {
            verified = match jsonwebtoken::crypto::verify(
                signature,
                message.as_bytes(),
                key,
                jsonwebtoken::Algorithm::RS256,
            ) {
                Ok(true) => Ok(()),
                Ok(false) => Err(LaunchError::SignatureInvalid),
                Err(e) => match e.kind() {
                    jsonwebtoken::errors::ErrorKind::Base64(_) => Err(LaunchError::NotAJwt),
                    // A key that is not an RSA key cannot have made an RS256 signature.
                    _ => Err(LaunchError::SignatureInvalid),
                },
            };
            // Only a bad signature is worth trying the next key for.
            if !matches!(verified, Err(LaunchError::SignatureInvalid)) {
                break;
            }
        }
        verified?;
        let Value::Object(claims) = payload else {
            return Err(LaunchError::NotAJwt);
        };
        self.check_times(&claims, now)?;
        Ok((platform, claims))
    }

    /// `exp` in the future, `nbf` (when sent) not in the future, and `iat` neither in
    /// the future nor older than a login can be (Security Framework §5.1.3 steps 7
    /// and 8; RFC 7519 §4.1.5), each with [`LEEWAY`]. Sums saturate: `exp` of
    /// `9223372036854775807` or `1e300` is a far future, never an overflow.
    fn check_times(&self, claims: &Map<String, Value>, now: i64) -> Result<(), LaunchError> {
        let exp = number(claims, "exp").ok_or(LaunchError::ExpInvalid)?;
        if now > exp.saturating_add(LEEWAY) {
            return Err(LaunchError::Expired);
        }
        match claims.get("nbf") {
            None | Some(Value::Null) => {}
            Some(_) => {
                let nbf = number(claims, "nbf").ok_or(LaunchError::ClaimInvalid {
                    claim: "nbf",
                    reason: "it is not a number of seconds".into(),
                })?;
                if nbf > now.saturating_add(LEEWAY) {
                    return Err(LaunchError::NotYetValid);
                }
            }
        }
        let iat = number(claims, "iat").ok_or(LaunchError::IatInvalid)?;
        // A token cannot be older than the login state it answers.
        let max_age = self.config.state_ttl.saturating_add(LEEWAY);
        if iat > now.saturating_add(LEEWAY) || iat < now.saturating_sub(max_age) {
            return Err(LaunchError::IatInvalid);
        }
        Ok(())
    }

    /// On a cold instance, reads what the launch needs in one store call — the
    /// registration, the deployment, its platform keys as kept, the tool's public key —
    /// and seeds the caches with it, so the reads below answer from memory. Only reads:
    /// nothing is trusted before the signature is checked.
    ///
    /// Returns what it learnt of the registration (`Some(None)`: there is none), so the
    /// launch does not read it again.
    async fn cold_start(
        &self,
        issuer: &str,
        peek: &Peek,
        now: i64,
    ) -> Result<Option<Option<Platform>>, LaunchError> {
        let Ok((client_id, _)) = claimed_client_id(peek) else {
            return Ok(None);
        };
        if client_id.len() > limits::MAX_ID_LEN {
            return Ok(None);
        }
        let deployment_id = peek
            .deployment_id
            .as_ref()
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty() && d.len() <= limits::MAX_ID_LEN);
        let key_set = key_set_cache_key(issuer, &client_id);
        let tool_key_id = self.signer.public_key_cache_id();
        let request = ColdStartRequest {
            issuer,
            client_id: &client_id,
            deployment_id,
            key_set: &key_set,
            tool_key_id: tool_key_id.as_deref(),
        };
        let Some(cold) = self.platforms.cold_start(&request).await? else {
            return Ok(None);
        };
        if let Some(platform) = &cold.platform {
            match cold.key_set {
                Some(set) => self.keys.seed(&platform.keyset_url, set, now),
                None => self.keys.seed_absent(&platform.keyset_url, &key_set, now),
            }
        }
        if let Some(jwk) = cold.tool_key {
            self.signer.seed_public_key(jwk);
        }
        Ok(Some(cold.platform))
    }

    /// The standard registration for (iss, client_id), the client_id being the `azp`
    /// or the single audience (Security Framework §5.1.3 steps 3–5). One point read,
    /// cached when warm; when it fails, only the issuer's registrations (bounded,
    /// cached) are read to say which claim is wrong.
    async fn standard_registration(
        &self,
        issuer: &str,
        peek: &Peek,
        known: Option<Option<Platform>>,
    ) -> Result<Platform, LaunchError> {
        let (client_id, audiences) = claimed_client_id(peek)?;
        if client_id.len() > limits::MAX_ID_LEN {
            return Err(LaunchError::AudienceInvalid);
        }
        let found = match known {
            Some(found) => found,
            None => self.platforms.platform(issuer, &client_id).await?,
        };
        match found {
            Some(p) if audiences.contains(&client_id.as_str()) => Ok(p),
            // Our azp, but the token is not addressed to us.
            Some(_) => Err(LaunchError::AudienceInvalid),
            None => {
                let registered = self
                    .platforms
                    .platforms_by_issuer(issuer, limits::MAX_REGISTRATIONS_PER_ISSUER)
                    .await?;
                if registered.is_empty() {
                    return Err(LaunchError::IssuerUnknown);
                }
                if registered
                    .iter()
                    .any(|p| audiences.contains(&p.client_id.as_str()))
                {
                    return Err(LaunchError::AzpInvalid);
                }
                Err(LaunchError::AudienceInvalid)
            }
        }
    }

    /// The direct-profile registration of `issuer` whose audience the token names. A
    /// token addressed to a standard registration (its client_id in `aud`) is an LTI
    /// id_token and never launches without its state.
    async fn direct_registration(
        &self,
        issuer: &str,
        audiences: &[&str],
    ) -> Result<Platform, LaunchError> {
        let all = self
            .platforms
            .platforms_by_issuer(issuer, limits::MAX_REGISTRATIONS_PER_ISSUER)
            .await?;
        if all.is_empty() {
            return Err(LaunchError::IssuerUnknown);
        }
        let names_standard = |p: &Platform| {
            p.launch_profile == LaunchProfile::Standard && audiences.contains(&p.client_id.as_str())
        };
        if all.iter().any(names_standard) {
            return Err(LaunchError::StateMissing);
        }
        if all.len() >= limits::MAX_REGISTRATIONS_PER_ISSUER {
            // The list may be cut short: look the audiences up one by one (bounded).
            for audience in audiences.iter().filter(|a| a.len() <= limits::MAX_ID_LEN) {
                if let Some(p) = self.platforms.platform(issuer, audience).await? {
                    if names_standard(&p) {
                        return Err(LaunchError::StateMissing);
                    }
                }
            }
        }
        let mut direct = all
            .into_iter()
            .filter(|p| p.launch_profile == LaunchProfile::Direct)
            .peekable();
        if direct.peek().is_none() {
            return Err(LaunchError::StateMissing);
        }
        direct
            .find(|p| {
                p.audience
                    .as_deref()
                    .is_some_and(|a| audiences.contains(&a))
            })
            .ok_or(LaunchError::AudienceInvalid)
    }

    /// The LTI claims of LTI 1.3 Core §5.3, taken out of `claims` once checked.
    async fn check_lti_claims(
        &self,
        claims: &mut Map<String, Value>,
        platform: &Platform,
        now: i64,
    ) -> Result<context::Checked, LaunchError> {
        let (issuer, client_id) = (platform.issuer.as_str(), platform.client_id.as_str());
        let message_type = claims.remove(c::MESSAGE_TYPE);
        let version = claims.get(c::VERSION);
        if message_type.is_none() && version.is_none() {
            return Err(LaunchError::NotLtiMessage);
        }
        if version.and_then(Value::as_str) != Some(c::LTI_VERSION) {
            return Err(LaunchError::VersionInvalid);
        }
        let message_type = required_string(
            message_type,
            LaunchError::MessageTypeMissing,
            "message_type",
            limits::MAX_ID_LEN,
        )?;
        if !c::SUPPORTED_MESSAGE_TYPES.contains(&message_type.as_str()) {
            return Err(LaunchError::MessageTypeUnsupported(truncate(
                &message_type,
                60,
            )));
        }

        let deployment_id = required_string(
            claims.remove(c::DEPLOYMENT_ID),
            LaunchError::DeploymentMissing,
            "deployment_id",
            limits::MAX_ID_LEN,
        )?;
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

        let sub = required_string(
            claims.remove("sub"),
            LaunchError::SubMissing,
            "sub",
            limits::MAX_ID_LEN,
        )?;
        let roles = roles_of(claims.remove(c::ROLES))?.ok_or(LaunchError::RolesMissing)?;

        let target_link_uri = self.target_link_uri(claims)?;
        if target_link_uri.is_none() && message_type == c::RESOURCE_LINK_REQUEST {
            return Err(LaunchError::TargetLinkUriInvalid);
        }

        Ok(context::Checked {
            message_type,
            user_id: platform.user_id(&sub),
            sub,
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
            deployment_id,
            platform_name: platform.name.clone(),
            roles,
            target_link_uri,
        })
    }

    /// `target_link_uri`, which must be on this tool or an allowed app origin; the
    /// URL as checked (normalized: control characters and spaces percent-encoded) is
    /// what the rest of the launch uses, never the string as sent.
    fn target_link_uri(
        &self,
        claims: &mut Map<String, Value>,
    ) -> Result<Option<String>, LaunchError> {
        let target = match claims.remove(c::TARGET_LINK_URI) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
            Some(Value::String(s)) => s,
            Some(_) => return Err(LaunchError::TargetLinkUriInvalid),
        };
        if target.len() > limits::MAX_URL_LEN {
            return Err(LaunchError::TargetLinkUriInvalid);
        }
        let url = url::Url::parse(&target).map_err(|_| LaunchError::TargetLinkUriInvalid)?;
        if !self.config.is_tool_url(&url) && !self.config.is_app_url(&url) {
            return Err(LaunchError::TargetLinkUriInvalid);
        }
        Ok(Some(url.into()))
    }

    /// The claims of a direct launch: `sub` is required; `version` and `message_type`
    /// are checked when present; roles and deployment are optional.
    fn check_direct_claims(
        &self,
        claims: &mut Map<String, Value>,
        platform: &Platform,
    ) -> Result<context::Checked, LaunchError> {
        if let Some(version) = claims.get(c::VERSION) {
            if version.as_str() != Some(c::LTI_VERSION) {
                return Err(LaunchError::VersionInvalid);
            }
        }
        let message_type = match claims.remove(c::MESSAGE_TYPE) {
            None => c::RESOURCE_LINK_REQUEST.to_string(),
            Some(Value::String(t)) if c::SUPPORTED_MESSAGE_TYPES.contains(&t.as_str()) => t,
            Some(Value::String(t)) => {
                return Err(LaunchError::MessageTypeUnsupported(truncate(&t, 60)))
            }
            Some(_) => return Err(LaunchError::MessageTypeMissing),
        };
        let deployment_id = match claims.remove(c::DEPLOYMENT_ID) {
            None | Some(Value::Null) => String::new(),
            value => required_string(
                value,
                LaunchError::DeploymentMissing,
                "deployment_id",
                limits::MAX_ID_LEN,
            )
            .or_else(|e| match e {
                LaunchError::DeploymentMissing => Ok(String::new()),
                other => Err(other),
            })?,
        };
        let sub = required_string(
            claims.remove("sub"),
            LaunchError::SubMissing,
            "sub",
            limits::MAX_ID_LEN,
        )?;
        let roles = roles_of(claims.remove(c::ROLES))?.unwrap_or_default();
        let target_link_uri = self.target_link_uri(claims)?;
        // A direct launch is not an LTI resource-link launch: no resource link needed.
        let message_type =
            if message_type == c::RESOURCE_LINK_REQUEST && !claims.contains_key(c::RESOURCE_LINK) {
                c::DIRECT_LAUNCH.to_string()
            } else {
                message_type
            };
        Ok(context::Checked {
            message_type,
            user_id: platform.user_id(&sub),
            sub,
            issuer: platform.issuer.clone(),
            client_id: platform.client_id.clone(),
            deployment_id,
            platform_name: platform.name.clone(),
            roles,
            target_link_uri,
        })
    }
}

/// Which registrations a token may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Standard,
    Direct,
}

fn audiences_of(peek: &Peek) -> Vec<&str> {
    match &peek.aud {
        Some(Audience::One(a)) => vec![a.as_str()],
        Some(Audience::Many(list)) => list.iter().map(String::as_str).collect(),
        None => vec![],
    }
}

/// The `roles` claim: `None` when absent, an error when not a list of strings.
fn roles_of(value: Option<Value>) -> Result<Option<Vec<String>>, LaunchError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|r| match r {
                Value::String(s) => Ok(s),
                _ => Err(LaunchError::RolesInvalid),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(LaunchError::RolesInvalid),
    }
}

/// Until when a direct launch's one-time record must be kept: the token is accepted
/// while `now <= exp + LEEWAY`, so the record outlives that second, with another
/// [`LEEWAY`] for clocks of other instances running behind.
fn once_record_until(exp: i64, now: i64) -> i64 {
    exp.max(now)
        .saturating_add(LEEWAY)
        .saturating_add(LEEWAY)
        .saturating_add(1)
}

/// SHA-256 of a token, base64url: the one-time key of a token with neither nonce nor
/// jti, and of every one-time record (a fixed size whatever the token carries).
fn token_hash(token: &str) -> String {
    use base64::Engine;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}
