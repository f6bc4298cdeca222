//! Every way a Dynamic Registration can fail, one variant per case, each with a stable
//! code, one sentence, and what the LMS administrator can do about it.
//!
//! Messages name hosts, never whole URLs: a configuration URL may carry the
//! registration token in its query (Canvas), and the token is never shown or logged.

use crate::error::{ErrorKind, Problem, StoreError};
use crate::platform::FieldError;

/// Which of the platform's two endpoints a failure concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The OpenID configuration (`openid_configuration`).
    Configuration,
    /// The registration endpoint (`registration_endpoint`).
    Registration,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Configuration => "OpenID configuration",
            Endpoint::Registration => "registration endpoint",
        }
    }
}

fn list(fields: &[FieldError]) -> String {
    fields
        .iter()
        .map(|f| format!("{} {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A Dynamic Registration was refused or failed. Nothing is stored when it is.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DynRegError {
    /// The registration URL was opened without `openid_configuration`.
    #[error("the registration URL was opened without the openid_configuration parameter")]
    ConfigurationUrlMissing,
    /// A parameter is too long or repeated (the name is ours, never the caller's).
    #[error("the {name} parameter {problem}")]
    ParameterInvalid {
        name: &'static str,
        problem: &'static str,
    },
    /// A URL breaks the tool's URL rules (https, a public address; loopback only on
    /// the dev server): the tool does not call it.
    #[error("the platform's {} ({host}) is not an address the tool calls: it {reason}", .endpoint.name())]
    UrlRefused {
        endpoint: Endpoint,
        host: String,
        reason: String,
    },
    /// A redirect the tool does not follow: to another site, or any redirect of the
    /// registration request (it would carry the registration token elsewhere).
    #[error("the platform's {} ({host}) redirected to {to}; {}", .endpoint.name(), match .endpoint { Endpoint::Configuration => "the tool follows redirects only within the same site", Endpoint::Registration => "the tool does not follow redirects of the registration request, which carries the registration token" })]
    RedirectRefused {
        endpoint: Endpoint,
        host: String,
        to: String,
    },
    /// No usable answer: no connection, a timeout, an error status.
    #[error("the platform's {} at {host} could not be reached: {reason}", .endpoint.name())]
    Unreachable {
        endpoint: Endpoint,
        host: String,
        reason: String,
        timeout: bool,
    },
    /// The OpenID configuration is not a JSON object.
    #[error("the platform's OpenID configuration at {host} is not a JSON object ({detail})")]
    ConfigurationNotJson { host: String, detail: String },
    /// The configuration names an issuer on another site than the configuration URL
    /// (LTI Dynamic Registration 1.0 §3.5.1): someone else's platform could otherwise
    /// be registered from an address an attacker controls.
    #[error("the platform's OpenID configuration names the issuer {issuer}, which is not on the site it was fetched from ({origin})")]
    IssuerMismatch { issuer: String, origin: String },
    /// Required fields of the configuration are missing or of the wrong type.
    #[error("the platform's OpenID configuration is incomplete: {}", list(.0))]
    ConfigurationInvalid(Vec<FieldError>),
    /// The platform does not offer what the tool needs (RS256 id_tokens, resource
    /// link launches).
    #[error("the platform does not support what this tool needs: {0}")]
    Unsupported(String),
    /// The platform's values (issuer, endpoints, the client_id it issued) break the
    /// rules every registration follows, the admin API's included.
    #[error("the platform's values break the tool's registration rules: {}", list(.0))]
    PlatformInvalid(Vec<FieldError>),
    /// The registration endpoint answered with an error status.
    #[error("the platform refused the registration (HTTP {status})")]
    Refused {
        status: u16,
        /// What the platform said, bounded and with the token blanked out.
        platform_error: String,
    },
    /// The registration endpoint's answer cannot be used.
    #[error("the platform's answer to the registration {0}")]
    AnswerInvalid(String),
    /// The answer names no deployment and the tool accepts only deployments it knows
    /// (`LTI_DYNAMIC_REGISTRATION_ACCEPT_NEW_DEPLOYMENTS` is off).
    #[error("the platform registered the tool as client_id {client_id} but named no deployment, and this tool is set to accept only deployments it knows")]
    DeploymentMissing { client_id: String },
    /// The store failed; nothing was stored.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Problem for DynRegError {
    fn code(&self) -> &'static str {
        use DynRegError::*;
        match self {
            ConfigurationUrlMissing => "LTI_DYNREG_PARAM_MISSING",
            ParameterInvalid { .. } => "LTI_DYNREG_PARAM_INVALID",
            UrlRefused { .. } => "LTI_DYNREG_URL_REFUSED",
            RedirectRefused { .. } => "LTI_DYNREG_REDIRECT_REFUSED",
            Unreachable {
                endpoint: Endpoint::Configuration,
                ..
            } => "LTI_DYNREG_CONFIG_UNREACHABLE",
            Unreachable {
                endpoint: Endpoint::Registration,
                ..
            } => "LTI_DYNREG_REGISTRATION_UNREACHABLE",
            ConfigurationNotJson { .. } => "LTI_DYNREG_CONFIG_NOT_JSON",
            IssuerMismatch { .. } => "LTI_DYNREG_ISSUER_MISMATCH",
            ConfigurationInvalid(_) => "LTI_DYNREG_CONFIG_INVALID",
            Unsupported(_) => "LTI_DYNREG_UNSUPPORTED",
            PlatformInvalid(_) => "LTI_DYNREG_PLATFORM_INVALID",
            Refused { .. } => "LTI_DYNREG_REFUSED",
            AnswerInvalid(_) => "LTI_DYNREG_ANSWER_INVALID",
            DeploymentMissing { .. } => "LTI_DYNREG_DEPLOYMENT_MISSING",
            Store(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        use DynRegError::*;
        match self {
            ConfigurationUrlMissing | ParameterInvalid { .. } | UrlRefused { .. } => {
                ErrorKind::BadRequest
            }
            Unreachable { timeout: true, .. } => ErrorKind::PlatformTimeout,
            RedirectRefused { .. }
            | Unreachable { .. }
            | ConfigurationNotJson { .. }
            | IssuerMismatch { .. }
            | ConfigurationInvalid(_)
            | Unsupported(_)
            | PlatformInvalid(_)
            | Refused { .. }
            | AnswerInvalid(_) => ErrorKind::PlatformFailed,
            DeploymentMissing { .. } => ErrorKind::NotAllowed,
            Store(e) => e.kind(),
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Store(e) => e.public_message(),
            other => crate::error::sentence(&other.to_string()),
        }
    }
}

impl DynRegError {
    /// What the platform said when it refused, if it did.
    pub fn platform_error(&self) -> Option<&str> {
        match self {
            Self::Refused { platform_error, .. } if !platform_error.is_empty() => {
                Some(platform_error)
            }
            _ => None,
        }
    }

    /// The invalid fields, if the failure lists some.
    pub fn fields(&self) -> Option<&[FieldError]> {
        match self {
            Self::ConfigurationInvalid(f) | Self::PlatformInvalid(f) => Some(f),
            _ => None,
        }
    }

    /// What the LMS administrator can do about it, in one or two sentences.
    pub fn advice(&self) -> &'static str {
        use DynRegError::*;
        match self {
            ConfigurationUrlMissing | ParameterInvalid { .. } => {
                "Start the registration from the LMS (Moodle: Manage tools, Tool URL; Canvas: Developer Keys, LTI Registration; Brightspace: Register Tool, Dynamic): paste this tool's registration URL there and let the LMS open it."
            }
            UrlRefused { .. } => {
                "The LMS must be reachable over https at a public address. Fix the LMS's site address (wwwroot), or register it by hand with the admin API (lti-admin platforms add)."
            }
            RedirectRefused { .. } => {
                "Make the LMS serve its OpenID configuration and registration endpoint at the address it advertises, without redirects to another site, then start the registration again."
            }
            Unreachable { .. } => {
                "Check that the LMS is up and reachable from the internet at the address it advertises, then start the registration again from the LMS."
            }
            ConfigurationNotJson { .. } | ConfigurationInvalid(_) => {
                "The LMS's OpenID configuration is not what LTI Dynamic Registration 1.0 requires: update the LMS, or register it by hand with the admin API (lti-admin platforms add)."
            }
            IssuerMismatch { .. } => {
                "Register the tool from the LMS whose address the issuer names; an LMS behind another address (a proxy, a renamed site) must be registered by hand with the admin API."
            }
            Unsupported(_) => {
                "Turn on LTI 1.3 resource link launches with RS256 signatures in the LMS, or register it by hand with the admin API."
            }
            PlatformInvalid(_) => {
                "The LMS advertises addresses this tool does not accept (https on a public address only): correct the LMS's site address, or register it by hand with the admin API."
            }
            Refused { .. } => {
                "Read what the LMS said above: a registration token is valid once and for a limited time, so start the registration again from the LMS."
            }
            AnswerInvalid(_) => {
                "The LMS answered the registration in a way LTI Dynamic Registration 1.0 does not allow. Remove the half-made tool in the LMS and register it by hand with the admin API."
            }
            DeploymentMissing { .. } => {
                "Either set LTI_DYNAMIC_REGISTRATION_ACCEPT_NEW_DEPLOYMENTS=true on the tool and register again (the tool then records each deployment at its first launch), or add this client_id with its deployment id using the admin API (lti-admin platforms add … --deployment-id). Remove the tool the LMS just created before registering again."
            }
            Store(_) => {
                "Nothing was stored. Start the registration again from the LMS in a moment."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_own_code_sentence_and_advice() {
        let cases = [
            DynRegError::ConfigurationUrlMissing,
            DynRegError::Unreachable {
                endpoint: Endpoint::Configuration,
                host: "lms.example.edu".into(),
                reason: "it answered HTTP 404".into(),
                timeout: false,
            },
            DynRegError::Unreachable {
                endpoint: Endpoint::Registration,
                host: "lms.example.edu".into(),
                reason: "no answer in time".into(),
                timeout: true,
            },
            DynRegError::IssuerMismatch {
                issuer: "https://a.example".into(),
                origin: "https://b.example".into(),
            },
            DynRegError::Refused {
                status: 401,
                platform_error: "token_already_used".into(),
            },
            DynRegError::DeploymentMissing {
                client_id: "10000000000001".into(),
            },
        ];
        let codes: std::collections::HashSet<_> = cases.iter().map(|c| c.code()).collect();
        assert_eq!(codes.len(), cases.len(), "one code each");
        for case in &cases {
            let sentence = case.public_message();
            assert!(sentence.ends_with('.'), "{sentence}");
            assert!(!case.advice().is_empty());
        }
        assert_eq!(cases[2].kind(), ErrorKind::PlatformTimeout);
        assert_eq!(cases[4].platform_error(), Some("token_already_used"));
        assert!(cases[5].public_message().contains("10000000000001"));
    }
}
