//! Administration of registrations: the admin store port, routing rules, the audit
//! trail of changes. (Registrations and deployments themselves: [`crate::platform`].)

pub mod audit;
pub mod routing;
pub mod store;

pub use routing::{AppRoute, RouteInput, RouteRule, RouteSet};
pub use store::{PageError, PageRequest, PlatformAdmin, PlatformPage, Removed, RoutesChanged};
