//! LTI Dynamic Registration 1.0, the tool's side: an LMS administrator pastes the
//! tool's registration URL; the platform opens it with `openid_configuration` (and
//! usually a `registration_token`); the tool
//!
//! 1. fetches the platform's OpenID configuration ([`configuration`]): only where the
//!    URL rules allow (https, a public address; loopback only on the dev server),
//!    following redirects only within the configuration's own site, and checks it —
//!    the issuer on that same site, RS256, resource link launches;
//! 2. checks the platform's values against the rules of every registration (the admin
//!    API's validation), before anything is sent, so a platform the tool could not
//!    store is not left with a half-made registration;
//! 3. posts its registration ([`request`]) to the `registration_endpoint` with the
//!    registration token as bearer (none when the platform gave none: Brightspace),
//!    never following a redirect;
//! 4. reads the answer ([`answer`]): the `client_id`, and the `deployment_id` — which
//!    Canvas does not send: the platform is then accepted with `acceptNewDeployments`
//!    only when the tool's setting allows it
//!    (`LTI_DYNAMIC_REGISTRATION_ACCEPT_NEW_DEPLOYMENTS`).
//!
//! What to store comes back as a [`PlatformInput`], which the caller saves through the
//! same validation, upsert and audit as `POST /admin/platforms`. The registration
//! token is never logged and never shown: messages name hosts, not URLs.

pub mod answer;
pub mod configuration;
pub mod error;
pub mod request;

pub use configuration::PlatformConfiguration;
pub use error::{DynRegError, Endpoint};
pub use request::ToolDescription;

use crate::config::{origin_of, ToolConfig};
use crate::error::Secret;
use crate::platform::PlatformInput;
use crate::registration::audit::{AdminActor, AuditSink};
use crate::registration::upsert::{store_registration, Change, StoreRegistrationError, Stored};
use crate::registration::PlatformAdmin;
use crate::services::outbound::{Method, OutboundError, OutboundRequest, PlatformHttp};
use serde_json::{Map, Value};
use url::Url;

/// Longest `openid_configuration` accepted, bytes.
pub const MAX_CONFIGURATION_URL_LEN: usize = crate::limits::MAX_URL_LEN;
/// Longest `registration_token` accepted, bytes (Moodle's and Canvas's are JWTs of
/// well under 1 KB).
pub const MAX_TOKEN_LEN: usize = 4096;
/// Redirects followed within the configuration's site.
pub const MAX_REDIRECTS: usize = 3;
/// The client_id the platform values are checked with before the platform issues one.
const PENDING_CLIENT_ID: &str = "pending-dynamic-registration";

/// What the platform opened the registration URL with.
#[derive(Debug, Clone)]
pub struct RegistrationParams {
    /// `openid_configuration`.
    pub openid_configuration: String,
    /// `registration_token`, when the platform sent one.
    pub registration_token: Option<Secret>,
}

impl RegistrationParams {
    /// The parameters, checked for presence and size.
    pub fn new(
        openid_configuration: Option<String>,
        registration_token: Option<String>,
    ) -> Result<Self, DynRegError> {
        let openid_configuration = openid_configuration
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .ok_or(DynRegError::ConfigurationUrlMissing)?;
        if openid_configuration.len() > MAX_CONFIGURATION_URL_LEN {
            return Err(DynRegError::ParameterInvalid {
                name: "openid_configuration",
                problem: "is longer than 2048 bytes",
            });
        }
        let registration_token = registration_token
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        if registration_token
            .as_ref()
            .is_some_and(|t| t.len() > MAX_TOKEN_LEN)
        {
            return Err(DynRegError::ParameterInvalid {
                name: "registration_token",
                problem: "is longer than 4096 bytes",
            });
        }
        Ok(Self {
            openid_configuration,
            registration_token: registration_token.map(Secret::new),
        })
    }
}

/// A registration the platform accepted: what to store, and what it was made from.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The registration and its deployment, for the admin API's validation and upsert.
    pub input: PlatformInput,
    pub configuration: PlatformConfiguration,
    pub client_id: String,
    pub deployment_id: Option<String>,
    /// True when no deployment was named and the tool's setting accepts new ones.
    pub accept_new_deployments: bool,
    /// The product family's own members, of the configuration and of the answer.
    pub extras: Map<String, Value>,
}

/// Where a registration is stored, and what it is stored for.
pub struct Storage<'a> {
    pub store: &'a dyn PlatformAdmin,
    pub audit: &'a dyn AuditSink,
    /// The request id, for the audit line.
    pub request_id: String,
}

/// A registration made and stored.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub registered: Registered,
    pub stored: Stored,
}

/// Runs steps 1–4 and stores the registration and its deployment through the admin
/// API's own code ([`store_registration`]: same validation, same upsert, an audit line
/// whose `who` is the platform, `dynamicRegistration`).
pub async fn register_and_store(
    config: &ToolConfig,
    http: &dyn PlatformHttp,
    tool: &ToolDescription<'_>,
    params: &RegistrationParams,
    storage: &Storage<'_>,
    now: i64,
) -> Result<Outcome, DynRegError> {
    let registered = register(config, http, tool, params, now).await?;
    let who = AdminActor::DynamicRegistration {
        issuer: registered.configuration.issuer.clone(),
        product_family_code: registered.configuration.product_family_code.clone(),
    };
    let change = Change {
        store: storage.store,
        audit: storage.audit,
        config,
        now,
        who: &who,
        request_id: storage.request_id.clone(),
    };
    match store_registration(&change, registered.input.clone(), None).await {
        Ok(stored) => {
            crate::observe::note_registration(&stored.platform.issuer, &stored.platform.client_id);
            tracing::debug!(issuer = %stored.platform.issuer, client_id = %stored.platform.client_id, deployment_id = ?stored.deployment_id, accept_new_deployments = stored.platform.accept_new_deployments, extras = ?registered.extras.keys().collect::<Vec<_>>(), "dynamic registration stored");
            Ok(Outcome { registered, stored })
        }
        Err(StoreRegistrationError::Invalid(invalid)) => {
            Err(DynRegError::PlatformInvalid(invalid.0))
        }
        Err(StoreRegistrationError::Store(e)) => Err(DynRegError::Store(e)),
    }
}

/// Runs steps 1–4 (module documentation) against the platform behind `params`.
pub async fn register(
    config: &ToolConfig,
    http: &dyn PlatformHttp,
    tool: &ToolDescription<'_>,
    params: &RegistrationParams,
    now: i64,
) -> Result<Registered, DynRegError> {
    let secrets: Vec<&str> = params
        .registration_token
        .as_ref()
        .map(|t| vec![t.expose()])
        .unwrap_or_default();

    // 1. The OpenID configuration.
    let url = checked_url(
        config,
        Endpoint::Configuration,
        &params.openid_configuration,
    )?;
    let (fetched_from, body) =
        fetch_configuration(config, http, url, params.registration_token.as_ref()).await?;
    let platform = configuration::read(&body, &fetched_from)?;
    crate::observe::note_claimed(Some(&platform.issuer), None);
    tracing::debug!(issuer = %platform.issuer, product = ?platform.product_family_code, "dynamic registration: platform configuration read");

    // 2. The platform's values, under the rules of every registration.
    let registration_url = checked_url(
        config,
        Endpoint::Registration,
        &platform.registration_endpoint,
    )?;
    input(&platform, PENDING_CLIENT_ID, None, false)
        .validate(now, config)
        .map_err(|invalid| {
            DynRegError::PlatformInvalid(
                invalid
                    .0
                    .into_iter()
                    .filter(|f| f.field != "clientId")
                    .collect(),
            )
        })?;

    // 3. The registration.
    let body = request::registration(config, tool, &platform);
    let mut post = OutboundRequest::new(Method::Post, registration_url.as_str())
        .header("Accept", "application/json")
        .body(
            "application/json",
            serde_json::to_vec(&body).unwrap_or_default(),
        );
    if let Some(token) = &params.registration_token {
        post = post.header("Authorization", format!("Bearer {}", token.expose()));
    }
    let host = host_of(&registration_url);
    let response = http
        .send(post)
        .await
        .map_err(|e| unanswered(Endpoint::Registration, &host, e))?;
    match response.status {
        200..=299 => {}
        300..=399 => {
            return Err(DynRegError::RedirectRefused {
                endpoint: Endpoint::Registration,
                host,
                to: response
                    .header("location")
                    .and_then(|l| registration_url.join(l).ok())
                    .map(|u| host_of(&u))
                    .unwrap_or_else(|| "another address".into()),
            })
        }
        status => {
            let platform_error = answer::refusal(&response.body, &secrets);
            tracing::warn!(issuer = %platform.issuer, status, platform_error = %platform_error, "dynamic registration refused by the platform");
            return Err(DynRegError::Refused {
                status,
                platform_error,
            });
        }
    }

    // 4. The answer.
    let answer = answer::read(&response.body)?;
    let accept_new_deployments = answer.deployment_id.is_none();
    if accept_new_deployments && !config.dynamic_registration_accept_new_deployments {
        tracing::warn!(issuer = %platform.issuer, client_id = %answer.client_id, "dynamic registration: no deployment_id in the answer and new deployments are not accepted");
        return Err(DynRegError::DeploymentMissing {
            client_id: answer.client_id,
        });
    }
    let mut extras = platform.extras.clone();
    extras.extend(answer.extras.clone());
    Ok(Registered {
        input: input(
            &platform,
            &answer.client_id,
            answer.deployment_id.clone(),
            accept_new_deployments,
        ),
        client_id: answer.client_id,
        deployment_id: answer.deployment_id,
        accept_new_deployments,
        configuration: platform,
        extras,
    })
}

/// The registration to store for `platform` and the client_id it issued.
pub fn input(
    platform: &PlatformConfiguration,
    client_id: &str,
    deployment_id: Option<String>,
    accept_new_deployments: bool,
) -> PlatformInput {
    PlatformInput {
        issuer: Some(platform.issuer.clone()),
        client_id: Some(client_id.to_string()),
        name: Some(platform.display_name()),
        auth_login_url: Some(platform.authorization_endpoint.clone()),
        auth_token_url: Some(platform.token_endpoint.clone()),
        keyset_url: Some(platform.jwks_uri.clone()),
        deployment_id,
        token_audience: token_audience(platform),
        accept_new_deployments: Some(accept_new_deployments),
        ..Default::default()
    }
}

/// The `aud` of client assertions when it is not the token endpoint: the platform's
/// `authorization_server` when that is an absolute URL (Brightspace's
/// `https://api.brightspace.com/auth/token`). Canvas names a bare host there
/// (`sso.canvaslms.com`) and wants the token URL itself: a host is not used.
fn token_audience(platform: &PlatformConfiguration) -> Option<String> {
    platform
        .authorization_server
        .as_deref()
        .filter(|a| Url::parse(a).is_ok_and(|u| u.has_host()))
        .filter(|a| *a != platform.token_endpoint)
        .map(str::to_string)
}

/// `value` as a URL the tool may call, or why not.
fn checked_url(config: &ToolConfig, endpoint: Endpoint, value: &str) -> Result<Url, DynRegError> {
    let host = Url::parse(value)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "not a URL".into());
    config
        .url_policy()
        .check_str(value)
        .map_err(|reason| DynRegError::UrlRefused {
            endpoint,
            host,
            reason,
        })
}

fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        _ => "not a URL".into(),
    }
}

fn unanswered(endpoint: Endpoint, host: &str, error: OutboundError) -> DynRegError {
    let host = host.to_string();
    match error {
        OutboundError::Timeout => DynRegError::Unreachable {
            endpoint,
            host,
            reason: "it did not answer in time".into(),
            timeout: true,
        },
        OutboundError::Unreachable(reason) => DynRegError::Unreachable {
            endpoint,
            host,
            reason,
            timeout: false,
        },
        OutboundError::TooLarge(cap) => DynRegError::Unreachable {
            endpoint,
            host,
            reason: format!("its answer is larger than {} KiB", cap / 1024),
            timeout: false,
        },
        // The adapter checks every resolved address: a name that resolves to a private
        // address is refused here.
        OutboundError::UrlRefused(reason) => DynRegError::UrlRefused {
            endpoint,
            host,
            reason: reason.strip_prefix("it ").unwrap_or(&reason).to_string(),
        },
    }
}

/// GETs the configuration, following redirects within its site only; returns where
/// it was finally fetched from and the body. The registration token goes with it as
/// bearer: Canvas answers its configuration only to a request that carries it (the
/// URL is the one the platform gave with the token, and a redirect never leaves its
/// site).
async fn fetch_configuration(
    config: &ToolConfig,
    http: &dyn PlatformHttp,
    url: Url,
    token: Option<&Secret>,
) -> Result<(Url, Vec<u8>), DynRegError> {
    let origin = origin_of(&url);
    let mut current = url;
    for _ in 0..=MAX_REDIRECTS {
        let host = host_of(&current);
        let mut get = OutboundRequest::new(Method::Get, current.as_str())
            .header("Accept", "application/json");
        if let Some(token) = token {
            get = get.header("Authorization", format!("Bearer {}", token.expose()));
        }
        let response = http
            .send(get)
            .await
            .map_err(|e| unanswered(Endpoint::Configuration, &host, e))?;
        match response.status {
            200..=299 => return Ok((current, response.body)),
            300..=399 => {
                let Some(next) = response
                    .header("location")
                    .and_then(|l| current.join(l).ok())
                else {
                    return Err(DynRegError::Unreachable {
                        endpoint: Endpoint::Configuration,
                        host,
                        reason: format!(
                            "it answered HTTP {} without a usable Location",
                            response.status
                        ),
                        timeout: false,
                    });
                };
                if origin_of(&next) != origin {
                    return Err(DynRegError::RedirectRefused {
                        endpoint: Endpoint::Configuration,
                        host,
                        to: host_of(&next),
                    });
                }
                current = checked_url(config, Endpoint::Configuration, next.as_str())?;
            }
            status => {
                return Err(DynRegError::Unreachable {
                    endpoint: Endpoint::Configuration,
                    host,
                    reason: format!("it answered HTTP {status}"),
                    timeout: false,
                })
            }
        }
    }
    Err(DynRegError::Unreachable {
        endpoint: Endpoint::Configuration,
        host: host_of(&current),
        reason: format!("it redirected more than {MAX_REDIRECTS} times"),
        timeout: false,
    })
}

#[cfg(test)]
mod tests;
