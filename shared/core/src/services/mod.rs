//! LTI Advantage services for the company's app (see `SERVICES-API.md` in the design
//! notes and the README): who may call ([`keys`], [`auth`]), what the launch leaves
//! behind for them ([`records`]), and the calls to platforms — access tokens
//! ([`token`]), AGS ([`ags`]), NRPS ([`nrps`]), Deep Linking responses — as pure
//! protocol code behind one outbound-HTTP port ([`outbound`]), with the paging rules
//! in [`paging`] and the reading of answers in [`answer`]. Errors are typed once in
//! [`error`].

pub mod ags;
pub mod answer;
pub mod auth;
pub mod deep_link;
pub mod error;
pub mod keys;
pub mod nrps;
pub mod outbound;
pub mod paging;
pub mod records;
pub mod token;

#[cfg(any(test, feature = "contract"))]
pub mod testing;

pub use error::ServiceError;
