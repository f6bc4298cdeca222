//! LTI Advantage services for the company's app (see `SERVICES-API.md` in the design
//! notes and the README): who may call ([`keys`], [`auth`]), what the launch leaves
//! behind for them ([`records`]), and the calls to platforms — access tokens, AGS,
//! NRPS, Deep Linking responses — as pure protocol code behind one outbound-HTTP port
//! ([`outbound`]). Errors are typed once in [`error`].

pub mod auth;
pub mod deep_link;
pub mod error;
pub mod keys;
pub mod outbound;
pub mod records;

pub use error::ServiceError;
