//! Every way a services call can fail, one variant per case, each with a stable code
//! (SERVICES-API.md, "Errors").

use crate::error::{ErrorKind, Problem, StoreError};
use crate::platform::FieldError;
use crate::signer::SignerError;

/// A services call was refused or failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// No `x-api-key`, or not a valid, unrevoked service key.
    #[error("a valid service key (x-api-key) is required")]
    KeyInvalid,
    /// The bearer app token (or launch id) is not one this tool issued, or has expired.
    #[error("the launch token is invalid or has expired: {0}")]
    LaunchTokenInvalid(String),
    /// The launch's roles do not allow this call.
    #[error("{0}")]
    RoleNotAllowed(String),
    /// The platform did not grant the scope this call needs.
    #[error("the platform did not grant the scope {0} for this launch")]
    ScopeNotGranted(String),
    /// The platform does not offer this service here.
    #[error("the platform does not offer {0} for this course")]
    ServiceNotOffered(&'static str),
    /// No launch from this course has been seen yet.
    #[error("no launch from this course has been recorded yet, so its services are unknown")]
    ContextUnknown,
    /// No registration with this id.
    #[error("no platform registration has this id")]
    PlatformUnknown,
    /// Invalid request fields, each listed.
    #[error("the request is invalid: {}", .0.iter().map(|f| format!("{} {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The platform answered with an error status.
    #[error("the platform refused the call with HTTP {status}: {excerpt}")]
    PlatformRejected { status: u16, excerpt: String },
    /// The platform did not answer in time.
    #[error("the platform did not answer in time")]
    PlatformTimeout,
    /// The platform could not be reached.
    #[error("the platform could not be reached: {0}")]
    PlatformUnreachable(String),
    /// The platform answered 429.
    #[error("the platform is rate-limiting the tool; retry later")]
    PlatformRateLimited { retry_after: Option<u64> },
    /// The platform's token endpoint refused the client assertion.
    #[error("the platform refused an access token: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    TokenRefused {
        error: String,
        description: Option<String>,
    },
    /// More pages than the tool follows.
    #[error("the platform's answer has more than {0} pages")]
    PagingLimit(usize),
    /// The platform's answer cannot be read (not JSON, wrong shape, too large).
    #[error("the platform's answer cannot be read: {0}")]
    PlatformAnswerInvalid(String),
    /// The platform does not accept what the app sent (a content item type, several
    /// items, a presentation target, a line item), with its own code.
    #[error("the platform does not accept this: {}", .fields.iter().map(|f| format!("{} {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    NotAccepted {
        code: &'static str,
        fields: Vec<FieldError>,
    },
    /// The launch is not a deep-linking request, so there is nothing to answer.
    #[error("this launch is not a deep-linking request, so there is nothing to answer")]
    NotDeepLinking,
    /// A one-time request (a deep-linking answer) was already used.
    #[error("{0}")]
    AlreadyAnswered(String),
    /// The request body is over the endpoint's limit, bytes.
    #[error("the request body is larger than {} KiB", .0 / 1024)]
    BodyTooLarge(usize),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The tool's key failed.
    #[error(transparent)]
    Signer(#[from] SignerError),
}

impl Problem for ServiceError {
    fn code(&self) -> &'static str {
        use ServiceError::*;
        match self {
            KeyInvalid => "LTI_SERVICE_KEY_INVALID",
            LaunchTokenInvalid(_) => "LTI_LAUNCH_TOKEN_INVALID",
            RoleNotAllowed(_) => "LTI_ROLE_NOT_ALLOWED",
            ScopeNotGranted(_) => "LTI_SCOPE_NOT_GRANTED",
            ServiceNotOffered(_) => "LTI_SERVICE_NOT_OFFERED",
            ContextUnknown => "LTI_CONTEXT_UNKNOWN",
            PlatformUnknown => "LTI_PLATFORM_UNKNOWN",
            Invalid(_) => "LTI_SERVICE_REQUEST_INVALID",
            PlatformRejected { .. } => "LTI_PLATFORM_REJECTED",
            PlatformTimeout => "LTI_PLATFORM_TIMEOUT",
            PlatformUnreachable(_) => "LTI_PLATFORM_UNREACHABLE",
            PlatformRateLimited { .. } => "LTI_PLATFORM_RATE_LIMITED",
            TokenRefused { .. } => "LTI_SERVICE_TOKEN_REFUSED",
            PagingLimit(_) => "LTI_PAGING_LIMIT",
            PlatformAnswerInvalid(_) => "LTI_PLATFORM_ANSWER_INVALID",
            AlreadyAnswered(_) => "LTI_ALREADY_ANSWERED",
            NotAccepted { code, .. } => code,
            NotDeepLinking => "LTI_NOT_DEEP_LINKING",
            BodyTooLarge(_) => "HTTP_BODY_TOO_LARGE",
            Store(e) => e.code(),
            Signer(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        use ServiceError::*;
        match self {
            KeyInvalid | LaunchTokenInvalid(_) => ErrorKind::SecurityCheck,
            RoleNotAllowed(_) | ScopeNotGranted(_) => ErrorKind::NotAllowed,
            ServiceNotOffered(_) | ContextUnknown | PlatformUnknown => ErrorKind::NotFound,
            Invalid(_) | NotAccepted { .. } | NotDeepLinking => ErrorKind::BadRequest,
            PlatformRejected { .. }
            | PlatformUnreachable(_)
            | TokenRefused { .. }
            | PagingLimit(_)
            | PlatformAnswerInvalid(_) => ErrorKind::PlatformFailed,
            PlatformTimeout => ErrorKind::PlatformTimeout,
            PlatformRateLimited { .. } => ErrorKind::Unavailable,
            AlreadyAnswered(_) => ErrorKind::Replay,
            BodyTooLarge(_) => ErrorKind::TooLarge,
            Store(e) => e.kind(),
            Signer(e) => e.kind(),
        }
    }

    fn public_message(&self) -> String {
        match self {
            Self::Store(e) => e.public_message(),
            Self::Signer(e) => e.public_message(),
            other => crate::error::sentence(&other.to_string()),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::PlatformRateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}

impl ServiceError {
    /// The invalid fields, for the `fields` member of the error body.
    pub fn fields(&self) -> Option<&[FieldError]> {
        match self {
            Self::Invalid(fields) | Self::NotAccepted { fields, .. } => Some(fields),
            _ => None,
        }
    }
}
