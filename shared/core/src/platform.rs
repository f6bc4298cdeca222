//! Platform registrations (an LMS the tool trusts) and their deployments.

use crate::config::ToolConfig;
use crate::error::{ErrorKind, Problem, StoreError};
use crate::limits;
use crate::registration::routing::RouteSet;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

/// How a platform launches into the tool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LaunchProfile {
    /// OIDC login initiation, then an id_token bound to state and nonce (LTI 1.3 Core).
    #[default]
    Standard,
    /// The platform posts a signed id_token without a login step. Opt-in, set by an admin.
    Direct,
}

/// A platform registration: one (issuer, client_id) pair the tool trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Platform {
    /// Stable id of the registration.
    pub id: Uuid,
    /// The platform's `iss`.
    pub issuer: String,
    /// The client_id the platform issued to this tool.
    pub client_id: String,
    /// Display name.
    pub name: String,
    /// The platform's OIDC authorization endpoint.
    pub auth_login_url: String,
    /// The platform's OAuth2 token endpoint (for AGS/NRPS access tokens).
    pub auth_token_url: String,
    /// The platform's JWKS URL.
    pub keyset_url: String,
    /// `aud` to use in client assertions when it is not the token URL (Brightspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_audience: Option<String>,
    /// Accept and record deployment ids not registered yet.
    #[serde(default)]
    pub accept_new_deployments: bool,
    /// Default AGS endpoint, if the platform gave one at registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ags_endpoint: Option<String>,
    /// Default NRPS endpoint, if the platform gave one at registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nrps_endpoint: Option<String>,
    /// How this platform launches.
    #[serde(default)]
    pub launch_profile: LaunchProfile,
    /// For `direct` launches: the audience string the tool chose at registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// For `direct` launches: where users land after the launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing_url: Option<String>,
    /// Whose users this registration's launches belong to (see [`crate::user`]): set
    /// once, when the registration is created, to its key set URL, or to the scope of a
    /// registration of the same issuer with the same key set URL (Canvas Cloud: many
    /// client_ids, one JWKS). Kept when the registration is updated, even if its key
    /// set URL changes, so user ids stay stable. `None` (registrations made before
    /// scopes existed) means the current key set URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_scope: Option<String>,
    /// Creation time, epoch seconds.
    pub created_at: i64,
    /// Last update time, epoch seconds.
    pub updated_at: i64,
}

impl Platform {
    /// The user scope launches of this registration use.
    pub fn effective_user_scope(&self) -> &str {
        self.user_scope.as_deref().unwrap_or(&self.keyset_url)
    }

    /// The stable app user id of the platform user `sub` launching through this
    /// registration.
    pub fn user_id(&self, sub: &str) -> String {
        crate::user::stable_user_id(&self.issuer, self.effective_user_scope(), sub)
    }
}

/// What [`PlatformStore::save_platform`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// The registration as stored (an update keeps `id`, `created_at`, `user_scope`).
    pub platform: Platform,
    /// True when this call created it; of two concurrent creations only one is.
    pub created: bool,
}

/// A deployment of the tool inside a platform (`deployment_id` claim).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// The platform's issuer.
    pub issuer: String,
    /// The registration's client_id.
    pub client_id: String,
    /// The deployment id, unique within the registration.
    pub deployment_id: String,
    /// When it was first registered or seen, epoch seconds.
    pub created_at: i64,
}

/// What a launch on a cold instance reads, in one store call (a `BatchGetItem` on
/// DynamoDB): the registration, the deployment, the registration's platform keys as an
/// instance kept them, the tool's public key as a function cached it, and the
/// registration's routing rules.
#[derive(Debug, Clone, Default)]
pub struct ColdStart {
    pub platform: Option<Platform>,
    pub deployment: Option<Deployment>,
    pub key_set: Option<crate::keys::SharedKeySet>,
    pub tool_key: Option<crate::signer::PublicJwk>,
    /// The registration's routing rules (`None`: it has none), read with it.
    pub routes: Option<crate::registration::RouteSet>,
}

/// What a cold launch asks for (every part derived from the unverified token: only
/// reads, only to choose keys).
#[derive(Debug, Clone, Copy)]
pub struct ColdStartRequest<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub deployment_id: Option<&'a str>,
    /// The registration's key in the shared platform key cache.
    pub key_set: &'a str,
    /// The tool key to read the public half of, when the signer has not loaded it.
    pub tool_key_id: Option<&'a str>,
}

/// The key under which a launch keeps a registration's platform keys in the shared
/// cache: per registration, so a cold launch reads them with the registration.
pub fn key_set_cache_key(issuer: &str, client_id: &str) -> String {
    format!("registration\n{issuer}\n{client_id}")
}

/// Storage of platform registrations and deployments.
#[async_trait]
pub trait PlatformStore: Send + Sync {
    /// Everything a cold launch reads, in one call, when the store can (and the
    /// instance is cold); `None` leaves the launch to its single reads.
    async fn cold_start(
        &self,
        request: &ColdStartRequest<'_>,
    ) -> Result<Option<ColdStart>, StoreError> {
        let _ = request;
        Ok(None)
    }
    /// Up to `limit` registrations of an issuer (Canvas and Blackboard share one
    /// issuer). Reads registrations only, never their deployments, so what an
    /// unauthenticated request can make the store read is bounded by `limit`.
    async fn platforms_by_issuer(
        &self,
        issuer: &str,
        limit: usize,
    ) -> Result<Vec<Platform>, StoreError>;
    /// The registration for (issuer, client_id).
    async fn platform(&self, issuer: &str, client_id: &str)
        -> Result<Option<Platform>, StoreError>;
    /// Creates or updates the registration for (issuer, client_id). An existing one keeps
    /// its `id`, `created_at` and `user_scope`; the stored value is returned, with
    /// whether this call created it.
    async fn save_platform(&self, platform: Platform) -> Result<Saved, StoreError>;
    /// Every registration, for the admin API.
    async fn list_platforms(&self) -> Result<Vec<Platform>, StoreError>;
    /// One deployment of a registration.
    async fn deployment(
        &self,
        issuer: &str,
        client_id: &str,
        deployment_id: &str,
    ) -> Result<Option<Deployment>, StoreError>;
    /// Records a deployment; saving one that exists changes nothing.
    async fn save_deployment(&self, deployment: Deployment) -> Result<(), StoreError>;
    /// The routing rules of the registration (issuer, client_id), if any were ever
    /// written: one small record read by key (a launch reads it once its token is
    /// verified; warm instances cache it with the registration). Check
    /// [`RouteSet::rules_of`] against the registration's id before using them.
    async fn routes(&self, issuer: &str, client_id: &str) -> Result<Option<RouteSet>, StoreError>;
}

/// What an admin sends to register a platform (`POST /admin/platforms`, `PUT` and,
/// merged onto the stored registration, `PATCH /admin/platforms/{id}`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlatformInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_login_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_token_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyset_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept_new_deployments: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ags_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nrps_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_profile: Option<LaunchProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing_url: Option<String>,
    /// Whose users the registration's launches belong to (see [`Platform::user_scope`]):
    /// only for a new registration (an import keeps the app user ids it had); a
    /// registration's scope never changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_scope: Option<String>,
}

impl From<&Platform> for PlatformInput {
    /// The registration as input again: what `PATCH` merges onto, what an export holds.
    fn from(p: &Platform) -> Self {
        Self {
            issuer: Some(p.issuer.clone()),
            client_id: Some(p.client_id.clone()),
            name: Some(p.name.clone()),
            auth_login_url: Some(p.auth_login_url.clone()),
            auth_token_url: Some(p.auth_token_url.clone()),
            keyset_url: Some(p.keyset_url.clone()),
            deployment_id: None,
            token_audience: p.token_audience.clone(),
            accept_new_deployments: Some(p.accept_new_deployments),
            ags_endpoint: p.ags_endpoint.clone(),
            nrps_endpoint: p.nrps_endpoint.clone(),
            launch_profile: Some(p.launch_profile),
            audience: p.audience.clone(),
            landing_url: p.landing_url.clone(),
            user_scope: Some(p.effective_user_scope().to_string()),
        }
    }
}

/// One invalid field of a request (a registration, a services call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The JSON field name, or its path (`contentItems[2].url`).
    pub field: std::borrow::Cow<'static, str>,
    /// What is wrong with it.
    pub message: String,
}

/// A registration was refused; every invalid field is listed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the platform registration is invalid: {}", .0.iter().map(|f| format!("{} {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
pub struct InvalidPlatform(pub Vec<FieldError>);

impl Problem for InvalidPlatform {
    fn code(&self) -> &'static str {
        "ADMIN_INVALID_PLATFORM"
    }
    fn kind(&self) -> ErrorKind {
        ErrorKind::BadRequest
    }
}

pub use crate::url_policy::is_loopback_host;

/// A landing URL receives app tokens: it must be an absolute URL without credentials
/// or fragment on the app's origin or one of `LTI_ALLOWED_APP_ORIGINS`.
pub(crate) fn check_landing_url(value: &str, config: &ToolConfig) -> Result<(), String> {
    let url = Url::parse(value).map_err(|_| "must be an absolute URL".to_string())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    if !config.is_app_url(&url) {
        return Err(
            "must be on the app's origin (LTI_APP_LANDING_URL) or one of LTI_ALLOWED_APP_ORIGINS"
                .into(),
        );
    }
    Ok(())
}

/// A validated registration request.
#[derive(Debug, Clone)]
pub struct PlatformRegistration {
    /// The platform to store (id and timestamps are provisional until saved).
    pub platform: Platform,
    /// A deployment to record with it.
    pub deployment_id: Option<String>,
}

impl PlatformInput {
    /// Validates every field and builds the platform to save, stamped `now`.
    ///
    /// Every platform URL must pass the tool's URL rules ([`ToolConfig::url_policy`]:
    /// https, no credentials, no private or link-local address, loopback only where
    /// allowed); a `landingUrl` receives app tokens, so it must be on the app's origin
    /// or an allowed app origin ([`ToolConfig::is_app_url`]).
    pub fn validate(
        self,
        now: i64,
        config: &ToolConfig,
    ) -> Result<PlatformRegistration, InvalidPlatform> {
        let policy = config.url_policy();
        let check_endpoint_url = |value: &str| policy.check_str(value).map(|_| ());
        let mut errors = Vec::new();
        let mut required = |field: &'static str, value: Option<String>, url: bool| -> String {
            let value = value.map(|v| v.trim().to_string()).unwrap_or_default();
            let max = match field {
                "issuer" => limits::MAX_ISSUER_LEN,
                "clientId" | "name" => limits::MAX_ID_LEN,
                _ => limits::MAX_URL_LEN,
            };
            if value.is_empty() {
                errors.push(FieldError {
                    field: field.into(),
                    message: "is required".into(),
                });
            } else if value.len() > max {
                errors.push(FieldError {
                    field: field.into(),
                    message: format!("is longer than {max} bytes"),
                });
            } else if url {
                if let Err(message) = check_endpoint_url(&value) {
                    errors.push(FieldError {
                        field: field.into(),
                        message,
                    });
                }
            }
            value
        };
        let issuer = required("issuer", self.issuer, true);
        let client_id = required("clientId", self.client_id, false);
        let name = required("name", self.name, false);
        let auth_login_url = required("authLoginUrl", self.auth_login_url, true);
        let auth_token_url = required("authTokenUrl", self.auth_token_url, true);
        let keyset_url = required("keysetUrl", self.keyset_url, true);
        let mut optional_url = |field: &'static str, value: Option<String>| -> Option<String> {
            let value = value
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())?;
            if let Err(message) = check_endpoint_url(&value) {
                errors.push(FieldError {
                    field: field.into(),
                    message,
                });
            }
            Some(value)
        };
        let ags_endpoint = optional_url("agsEndpoint", self.ags_endpoint);
        let nrps_endpoint = optional_url("nrpsEndpoint", self.nrps_endpoint);
        let landing_url = self
            .landing_url
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        if let Some(value) = &landing_url {
            if let Err(message) = check_landing_url(value, config) {
                errors.push(FieldError {
                    field: "landingUrl".into(),
                    message,
                });
            }
        }
        let token_audience = self
            .token_audience
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        let audience = self
            .audience
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        let deployment_id = self.deployment_id.map(|v| v.trim().to_string());
        if let Some(d) = &deployment_id {
            if d.is_empty() || d.len() > limits::MAX_ID_LEN {
                errors.push(FieldError {
                    field: "deploymentId".into(),
                    message: "must be 1 to 255 characters".into(),
                });
            }
        }
        let user_scope = self
            .user_scope
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        if user_scope
            .as_ref()
            .is_some_and(|v| v.len() > limits::MAX_URL_LEN)
        {
            errors.push(FieldError {
                field: "userScope".into(),
                message: format!("is longer than {} bytes", limits::MAX_URL_LEN),
            });
        }
        let launch_profile = self.launch_profile.unwrap_or_default();
        if launch_profile == LaunchProfile::Direct && audience.is_none() {
            errors.push(FieldError {
                field: "audience".into(),
                message: "is required for the direct launch profile".into(),
            });
        }
        if !errors.is_empty() {
            return Err(InvalidPlatform(errors));
        }
        Ok(PlatformRegistration {
            platform: Platform {
                id: Uuid::new_v4(),
                issuer,
                client_id,
                name,
                auth_login_url,
                auth_token_url,
                keyset_url,
                token_audience,
                accept_new_deployments: self.accept_new_deployments.unwrap_or(false),
                ags_endpoint,
                nrps_endpoint,
                launch_profile,
                audience,
                landing_url,
                user_scope,
                created_at: now,
                updated_at: now,
            },
            deployment_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(loopback: bool) -> ToolConfig {
        ToolConfig::from_lookup(|name| match name {
            "LTI_BASE_URL" => Some("https://tool.example".into()),
            "LTI_APP_LANDING_URL" => Some("https://app.example/landing".into()),
            "LTI_ALLOWED_APP_ORIGINS" => Some("https://other-app.example".into()),
            "LTI_INSECURE_ALLOW_LOOPBACK_URLS" => Some(loopback.to_string()),
            _ => None,
        })
        .expect("config")
    }

    fn valid() -> PlatformInput {
        PlatformInput {
            issuer: Some("https://lms.example.edu".into()),
            client_id: Some("c1".into()),
            name: Some("LMS".into()),
            auth_login_url: Some("https://lms.example.edu/auth".into()),
            auth_token_url: Some("https://lms.example.edu/token".into()),
            keyset_url: Some("https://lms.example.edu/jwks".into()),
            ..Default::default()
        }
    }

    fn refused_fields(input: PlatformInput, loopback: bool) -> Vec<(String, String)> {
        let err = input
            .validate(0, &config(loopback))
            .expect_err("must be refused");
        err.0
            .into_iter()
            .map(|f| (f.field.into_owned(), f.message))
            .collect()
    }

    #[test]
    fn every_invalid_field_is_listed() {
        let input = PlatformInput {
            issuer: Some("ftp://lms".into()),
            auth_login_url: Some("http://lms.example.edu/auth".into()),
            ..Default::default()
        };
        let err = input.validate(0, &config(false)).expect_err("invalid");
        let fields: Vec<_> = err.0.iter().map(|f| f.field.as_ref()).collect();
        assert_eq!(
            fields,
            vec![
                "issuer",
                "clientId",
                "name",
                "authLoginUrl",
                "authTokenUrl",
                "keysetUrl"
            ]
        );
        assert_eq!(err.0[3].message, "must use https");
    }

    #[test]
    fn plain_http_is_accepted_on_loopback_only_and_loopback_only_when_allowed() {
        let local = PlatformInput {
            issuer: Some("http://127.0.0.1:3000/platform".into()),
            auth_login_url: Some("http://localhost:3000/auth".into()),
            keyset_url: Some("http://127.0.0.1:3000/jwks".into()),
            ..valid()
        };
        assert!(local.clone().validate(0, &config(true)).is_ok());
        let fields: Vec<_> = refused_fields(local, false)
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(fields, vec!["issuer", "authLoginUrl", "keysetUrl"]);
        let http = PlatformInput {
            keyset_url: Some("http://lms.example.edu/jwks".into()),
            ..valid()
        };
        assert_eq!(
            refused_fields(http, true),
            vec![("keysetUrl".to_string(), "must use https".to_string())]
        );
    }

    #[test]
    fn internal_addresses_credentials_and_foreign_landing_urls_are_refused_together() {
        let input = PlatformInput {
            keyset_url: Some("https://169.254.169.254/latest/meta-data/".into()),
            auth_token_url: Some("https://10.0.0.1/token".into()),
            auth_login_url: Some("https://admin:secret@lms.example.edu/auth".into()),
            nrps_endpoint: Some("https://[::ffff:192.168.0.1]/nrps".into()),
            launch_profile: Some(LaunchProfile::Direct),
            audience: Some("aud".into()),
            landing_url: Some("https://evil.example/steal".into()),
            ..valid()
        };
        let fields = refused_fields(input, true);
        let names: Vec<_> = fields.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "authLoginUrl",
                "authTokenUrl",
                "keysetUrl",
                "nrpsEndpoint",
                "landingUrl"
            ]
        );
        assert!(fields[0].1.contains("user name or password"));
        assert!(fields[2].1.contains("non-public"));
        assert!(fields[4].1.contains("LTI_ALLOWED_APP_ORIGINS"));
    }

    #[test]
    fn a_landing_url_on_the_app_or_an_allowed_origin_is_accepted() {
        for landing in [
            "https://app.example/tb",
            "https://other-app.example/landing?x=1",
        ] {
            let input = PlatformInput {
                launch_profile: Some(LaunchProfile::Direct),
                audience: Some("aud".into()),
                landing_url: Some(landing.into()),
                ..valid()
            };
            let saved = input.validate(0, &config(false)).expect(landing);
            assert_eq!(saved.platform.landing_url.as_deref(), Some(landing));
        }
        let credentials = PlatformInput {
            landing_url: Some("https://u:p@app.example/tb".into()),
            ..valid()
        };
        assert_eq!(refused_fields(credentials, false)[0].0, "landingUrl");
    }
}
