//! Every way a launch can fail, one variant per check, each with a stable code.

use crate::error::{ErrorKind, Problem, StoreError};
use crate::keys::FetchError;
use crate::signer::SignerError;

/// A launch was refused. The doc of each variant names the rule it enforces.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LaunchError {
    /// The platform posted an OIDC error instead of an id_token
    /// (OpenID Connect Core §3.1.2.6). Anyone can post one, so the page shows a fixed
    /// sentence for the code (see [`platform_error_sentence`]); the platform's
    /// description goes to the log, and to the page only when `bound` (the request
    /// carried a state and this browser's cookie for it). Build it with
    /// [`LaunchError::platform_error`].
    #[error("the platform refused the login: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    PlatformError {
        error: String,
        description: Option<String>,
        bound: bool,
    },
    /// No `id_token` form field (LTI 1.3 §5.1.1; Security Framework §5.1.1.5).
    #[error("the launch has no id_token")]
    IdTokenMissing,
    /// No `state` form field (Security Framework §5.1.1.5).
    #[error("the launch has no state")]
    StateMissing,
    /// The browser did not send the state cookie set at login.
    #[error("the browser did not send back the login cookie: this launch was already used, or the browser blocks cookies; please launch again from the course")]
    StateCookieMissing,
    /// The state cookie does not match the posted state: not the browser that logged in.
    #[error("the launch state is not bound to this browser")]
    StateNotBound,
    /// A launch without the state cookie presented a platform-storage proof that is
    /// not the one the login gave this browser's storage frame (LTI postMessage
    /// Storage): posted from another browser context, or forged.
    #[error("the launch was posted from a browser that did not start this login")]
    StorageProofInvalid,
    /// The state was never issued by this tool.
    #[error("the launch state is unknown")]
    StateUnknown,
    /// The state is older than its lifetime.
    #[error("the launch state has expired; please launch again from the course")]
    StateExpired,
    /// The state was issued for another platform registration than the id_token's.
    #[error("the launch state was issued for another platform")]
    StatePlatformMismatch,
    /// The state and nonce were already used: a replayed launch.
    #[error("this launch was already used; please launch again from the course")]
    Replayed,
    /// The id_token has no `nonce` (OIDC Core §3.1.3.7 step 11).
    #[error("the id_token has no nonce")]
    NonceMissing,
    /// The id_token's nonce is not the one issued with the state.
    #[error("the id_token's nonce does not match the login")]
    NonceInvalid,
    /// Not a compact JWS at all.
    #[error("the id_token is not a JWT")]
    NotAJwt,
    /// The JWT header has no `kid` (Security Framework §6.3).
    #[error("the id_token header has no kid")]
    KidMissing,
    /// The JWT is not signed with RS256 (Security Framework §5.1.3 step 6).
    #[error("the id_token is signed with {0}, only RS256 is accepted")]
    AlgUnsupported(String),
    /// No `iss` claim.
    #[error("the id_token has no iss")]
    IssuerMissing,
    /// The issuer is not a registered platform (Security Framework §5.1.3 step 2).
    #[error("the id_token's issuer is not a registered platform")]
    IssuerUnknown,
    /// `aud` is missing or is not a client_id registered for the issuer (step 3).
    #[error("the id_token's audience is not this tool")]
    AudienceInvalid,
    /// Several audiences and no `azp`, or `azp` is not the client_id (steps 4 and 5).
    #[error("the id_token's authorized party (azp) is missing or not this tool")]
    AzpInvalid,
    /// The platform's JWKS has no key with the token's `kid`, even after a refetch.
    #[error("the platform does not publish the key that signed the id_token")]
    KidUnknown,
    /// The signature does not verify with the platform's key (step 1).
    #[error("the id_token's signature is invalid")]
    SignatureInvalid,
    /// The platform's keys could not be fetched.
    #[error(transparent)]
    Keys(#[from] FetchError),
    /// `exp` is missing or not a number.
    #[error("the id_token has no valid exp")]
    ExpInvalid,
    /// `exp` is in the past (step 7).
    #[error("the id_token has expired")]
    Expired,
    /// `nbf` is later than now plus the leeway (RFC 7519 §4.1.5).
    #[error("the id_token is not valid yet (nbf is in the future)")]
    NotYetValid,
    /// `iat` is missing, in the future or too old (step 8).
    #[error("the id_token's iat is missing, in the future or too old")]
    IatInvalid,
    /// A signed JWT that carries no LTI message claims.
    #[error("the id_token is not an LTI message")]
    NotLtiMessage,
    /// The `version` claim is missing or not `1.3.0` (LTI 1.3 §5.3.2).
    #[error("the LTI version is missing or is not 1.3.0")]
    VersionInvalid,
    /// The `message_type` claim is missing (LTI 1.3 §5.3.1).
    #[error("the LTI message type is missing")]
    MessageTypeMissing,
    /// A message type this tool does not handle.
    #[error("the LTI message type {0:?} is not supported by this tool")]
    MessageTypeUnsupported(String),
    /// The `deployment_id` claim is missing (LTI 1.3 §5.3.3).
    #[error("the id_token has no deployment_id")]
    DeploymentMissing,
    /// The deployment is not registered for this platform.
    #[error("this deployment of the tool is not registered")]
    DeploymentUnknown,
    /// `sub` is missing or empty (LTI 1.3 §5.3.6; required for resource-link launches).
    #[error("the id_token has no user (sub)")]
    SubMissing,
    /// The `roles` claim is missing (LTI 1.3 §5.3.7; an empty array is valid).
    #[error("the id_token has no roles claim")]
    RolesMissing,
    /// The `roles` claim is not an array of strings.
    #[error("the id_token's roles claim is not a list of roles")]
    RolesInvalid,
    /// A resource-link launch without `resource_link.id` (LTI 1.3 §5.3.5).
    #[error("the resource-link launch has no resource_link id")]
    ResourceLinkMissing,
    /// A deep-linking request without usable `deep_linking_settings` (DL 2.0 §4.4.1).
    #[error("the deep-linking request has no deep_linking_settings with a return URL")]
    DeepLinkingSettingsMissing,
    /// `target_link_uri` is missing or not on this tool or an allowed app origin
    /// (LTI 1.3 §5.3.4).
    #[error("the target_link_uri is missing or not on this tool")]
    TargetLinkUriInvalid,
    /// A claim has the wrong shape.
    #[error("the id_token's {claim} claim is invalid: {reason}")]
    ClaimInvalid { claim: &'static str, reason: String },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tool's key failed.
    #[error(transparent)]
    Signer(#[from] SignerError),
}

/// The OAuth 2.0 (RFC 6749 §4.1.2.1) and OpenID Connect Core (§3.1.2.6) error codes,
/// each with the sentence shown for it.
const PLATFORM_ERRORS: [(&str, &str); 16] = [
    (
        "invalid_request",
        "the platform found the login request invalid",
    ),
    (
        "unauthorized_client",
        "the platform does not allow this tool to log users in",
    ),
    ("access_denied", "the platform denied access to this tool"),
    (
        "unsupported_response_type",
        "the platform does not support the login this tool asked for",
    ),
    (
        "invalid_scope",
        "the platform does not accept the scope this tool asked for",
    ),
    (
        "server_error",
        "the platform had an internal error during the login",
    ),
    (
        "temporarily_unavailable",
        "the platform is temporarily unable to log you in; please try again in a moment",
    ),
    (
        "interaction_required",
        "the platform needs you to interact with it before this tool can open",
    ),
    (
        "login_required",
        "you are not logged in to the platform; please log in there and launch again",
    ),
    (
        "account_selection_required",
        "the platform needs you to choose an account before this tool can open",
    ),
    (
        "consent_required",
        "the platform needs your consent before this tool can open",
    ),
    (
        "invalid_request_uri",
        "the platform found the login's request URI invalid",
    ),
    (
        "invalid_request_object",
        "the platform found the login's request object invalid",
    ),
    (
        "request_not_supported",
        "the platform does not support the login's request parameter",
    ),
    (
        "request_uri_not_supported",
        "the platform does not support the login's request URI parameter",
    ),
    (
        "registration_not_supported",
        "the platform does not support the login's registration parameter",
    ),
];

/// The fixed sentence shown for a platform's error code, ending with the code when the
/// specifications define it; a generic sentence for any other code (which is never
/// echoed: it is the caller's text).
pub fn platform_error_sentence(code: &str) -> String {
    match PLATFORM_ERRORS.iter().find(|(known, _)| *known == code) {
        Some((known, text)) => crate::error::sentence(&format!("{text} ({known})")),
        None => crate::error::sentence("the platform refused the login"),
    }
}

/// `text` cut to `max` characters, without control characters (it goes to the log).
fn clean(text: &str, max: usize) -> String {
    text.chars().filter(|c| !c.is_control()).take(max).collect()
}

impl LaunchError {
    /// The platform's error response: its code and description as posted (cut and
    /// cleaned for the log), `bound` when the request carried a state and this
    /// browser's matching cookie, so the description may be shown.
    pub fn platform_error(error: &str, description: Option<&str>, bound: bool) -> Self {
        Self::PlatformError {
            error: clean(error, 100),
            description: description.map(|d| clean(d, 300)).filter(|d| !d.is_empty()),
            bound,
        }
    }
}

impl Problem for LaunchError {
    fn code(&self) -> &'static str {
        use LaunchError::*;
        match self {
            PlatformError { .. } => "LTI_PLATFORM_ERROR",
            IdTokenMissing => "LTI_ID_TOKEN_MISSING",
            StateMissing => "LTI_STATE_MISSING",
            StateCookieMissing => "LTI_STATE_COOKIE_MISSING",
            StateNotBound => "LTI_STATE_NOT_BOUND",
            StorageProofInvalid => "LTI_STORAGE_PROOF_INVALID",
            StateUnknown => "LTI_STATE_UNKNOWN",
            StateExpired => "LTI_STATE_EXPIRED",
            StatePlatformMismatch => "LTI_STATE_PLATFORM_MISMATCH",
            Replayed => "LTI_NONCE_REPLAYED",
            NonceMissing => "LTI_NONCE_MISSING",
            NonceInvalid => "LTI_NONCE_INVALID",
            NotAJwt => "LTI_JWT_MALFORMED",
            KidMissing => "LTI_KID_MISSING",
            AlgUnsupported(_) => "LTI_ALG_UNSUPPORTED",
            IssuerMissing => "LTI_ISS_MISSING",
            IssuerUnknown => "LTI_ISS_UNKNOWN",
            AudienceInvalid => "LTI_AUD_INVALID",
            AzpInvalid => "LTI_AZP_INVALID",
            KidUnknown => "LTI_KID_UNKNOWN",
            SignatureInvalid => "LTI_SIGNATURE_INVALID",
            Keys(e) => e.code(),
            ExpInvalid => "LTI_EXP_INVALID",
            Expired => "LTI_TOKEN_EXPIRED",
            IatInvalid => "LTI_IAT_INVALID",
            NotYetValid => "LTI_TOKEN_NOT_YET_VALID",
            NotLtiMessage => "LTI_NOT_LTI_MESSAGE",
            VersionInvalid => "LTI_VERSION_INVALID",
            MessageTypeMissing => "LTI_MESSAGE_TYPE_MISSING",
            MessageTypeUnsupported(_) => "LTI_MESSAGE_TYPE_UNSUPPORTED",
            DeploymentMissing => "LTI_DEPLOYMENT_MISSING",
            DeploymentUnknown => "LTI_DEPLOYMENT_UNKNOWN",
            SubMissing => "LTI_SUB_MISSING",
            RolesMissing => "LTI_ROLES_MISSING",
            RolesInvalid => "LTI_ROLES_INVALID",
            ResourceLinkMissing => "LTI_RESOURCE_LINK_MISSING",
            DeepLinkingSettingsMissing => "LTI_DEEP_LINKING_SETTINGS_MISSING",
            TargetLinkUriInvalid => "LTI_TARGET_LINK_URI_INVALID",
            ClaimInvalid { .. } => "LTI_CLAIM_INVALID",
            Store(e) => e.code(),
            Signer(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        use LaunchError::*;
        match self {
            PlatformError { .. }
            | IdTokenMissing
            | NotAJwt
            | NotLtiMessage
            | VersionInvalid
            | MessageTypeMissing
            | MessageTypeUnsupported(_)
            | DeploymentMissing
            | SubMissing
            | RolesMissing
            | RolesInvalid
            | ResourceLinkMissing
            | DeepLinkingSettingsMissing
            | TargetLinkUriInvalid
            | ClaimInvalid { .. } => ErrorKind::BadRequest,
            DeploymentUnknown => ErrorKind::NotAllowed,
            Replayed => ErrorKind::Replay,
            Keys(e) => e.kind(),
            Store(e) => e.kind(),
            Signer(e) => e.kind(),
            _ => ErrorKind::SecurityCheck,
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::PlatformError {
                error,
                description,
                bound,
            } => {
                let sentence = platform_error_sentence(error);
                match description {
                    Some(d) if *bound => {
                        format!("{sentence} The platform said: \u{201c}{d}\u{201d}")
                    }
                    _ => sentence,
                }
            }
            // The alg is the caller's text (checked before any signature): logged only.
            Self::AlgUnsupported(_) => {
                "The id_token is not signed with RS256, the only algorithm accepted.".into()
            }
            // A launch is one form post from the platform: the user cannot retry it by
            // reloading, only by launching again from the course.
            Self::Keys(_) => "The platform's public keys could not be fetched, so the launch \
                cannot be verified; please launch the tool again from your course in a \
                moment, and tell the platform's administrator if this keeps happening."
                .into(),
            Self::Store(_) => "The tool's storage is unavailable right now; please launch the \
                tool again from your course in a moment."
                .into(),
            Self::Signer(_) => "The tool could not sign you in right now; please launch the \
                tool again from your course in a moment."
                .into(),
            other => crate::error::sentence(&other.to_string()),
        }
    }
}
