//! # lti-core
//!
//! The protocol and domain of an LTI 1.3 tool, with no AWS SDK and no Lambda types:
//! OIDC login initiation ([`login`]), id_token validation ([`launch`]), the normalized
//! launch context, user provisioning and the hand-off to the company's app ([`handoff`]).
//!
//! Everything the outside world provides comes through small ports (traits):
//! [`platform::PlatformStore`], [`state::LaunchStore`], [`user::UserStore`],
//! [`signer::Signer`], [`keys::KeySetFetcher`], [`clock::Clock`] and [`random::Random`].
//! In-memory adapters live in [`memory`]; the AWS ones in the `lti-aws` crate.

pub mod clock;
pub mod config;
pub mod error;
pub mod handoff;
pub mod jwt;
pub mod keys;
pub mod launch;
pub mod limits;
pub mod login;
pub mod memory;
pub mod observe;
pub mod platform;
pub mod platform_cache;
pub mod random;
pub mod registration;
pub mod services;
pub mod signer;
pub mod state;
pub mod storage;
pub mod url_policy;
pub mod user;

#[cfg(feature = "contract")]
pub mod contract;

pub use error::{ErrorKind, Problem, StoreError};
