//! Sizes the tool accepts for values that come from outside, checked in the core so
//! every store behaves the same (a value the dev server accepts is never one DynamoDB
//! refuses as an oversized key).

/// LTI and OIDC ids: `sub` (OIDC Core §2: at most 255 ASCII characters), `client_id`,
/// `deployment_id`, `context.id`, `resource_link.id` (LTI 1.3 Core §5.3: at most 255
/// ASCII characters).
pub const MAX_ID_LEN: usize = 255;
/// A platform issuer (a URL), bytes.
pub const MAX_ISSUER_LEN: usize = 500;
/// A URL the tool stores or follows (registration URLs, `target_link_uri`), bytes.
pub const MAX_URL_LEN: usize = 2048;
/// The audiences of a token looked at; a token naming more is not for this tool.
pub const MAX_AUDIENCES: usize = 10;
/// A `state` the tool issued is 43 characters; longer ones are not ours.
pub const MAX_STATE_LEN: usize = 128;
/// Registrations of one issuer read for a request that is not yet authenticated
/// (a direct launch, a login without client_id): the bound on what one anonymous
/// request can make the store read.
pub const MAX_REGISTRATIONS_PER_ISSUER: usize = 50;
