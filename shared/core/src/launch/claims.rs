//! Claim names of LTI 1.3 Core, Deep Linking 2.0, AGS 2.0 and NRPS 2.0.

pub const MESSAGE_TYPE: &str = "https://purl.imsglobal.org/spec/lti/claim/message_type";
pub const VERSION: &str = "https://purl.imsglobal.org/spec/lti/claim/version";
pub const DEPLOYMENT_ID: &str = "https://purl.imsglobal.org/spec/lti/claim/deployment_id";
pub const TARGET_LINK_URI: &str = "https://purl.imsglobal.org/spec/lti/claim/target_link_uri";
pub const RESOURCE_LINK: &str = "https://purl.imsglobal.org/spec/lti/claim/resource_link";
pub const ROLES: &str = "https://purl.imsglobal.org/spec/lti/claim/roles";
pub const ROLE_SCOPE_MENTOR: &str = "https://purl.imsglobal.org/spec/lti/claim/role_scope_mentor";
pub const CONTEXT: &str = "https://purl.imsglobal.org/spec/lti/claim/context";
pub const TOOL_PLATFORM: &str = "https://purl.imsglobal.org/spec/lti/claim/tool_platform";
pub const LAUNCH_PRESENTATION: &str =
    "https://purl.imsglobal.org/spec/lti/claim/launch_presentation";
pub const CUSTOM: &str = "https://purl.imsglobal.org/spec/lti/claim/custom";
pub const LIS: &str = "https://purl.imsglobal.org/spec/lti/claim/lis";
pub const AGS: &str = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint";
pub const NRPS: &str = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice";
pub const DEEP_LINKING: &str = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings";

pub const TIMEBACK_APPLICATION_ID: &str = "https://timeback.com/lti/claim/application_id";
pub const TIMEBACK_TOOL_ID: &str = "https://timeback.com/lti/claim/tool_id";

/// The only LTI version this tool speaks.
pub const LTI_VERSION: &str = "1.3.0";
/// A resource-link launch (LTI 1.3 Core §5.1).
pub const RESOURCE_LINK_REQUEST: &str = "LtiResourceLinkRequest";
/// A deep-linking request (Deep Linking 2.0 §4.4).
pub const DEEP_LINKING_REQUEST: &str = "LtiDeepLinkingRequest";
/// The message type the normalized context gives a direct (TimeBack-style) launch
/// that names no LTI message type.
pub const DIRECT_LAUNCH: &str = "DirectLaunch";
/// Message types this tool handles.
pub const SUPPORTED_MESSAGE_TYPES: [&str; 2] = [RESOURCE_LINK_REQUEST, DEEP_LINKING_REQUEST];
