//! What every platform test needs: the tool's services over a fake platform.
#![allow(dead_code)]

use lti_core::clock::FixedClock;
use lti_core::launch::AgsEndpoint;
use lti_core::memory::MemoryStore;
use lti_core::platform::Platform;
use lti_core::random::SystemRandom;
use lti_core::services::ags::{
    Ags, SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY, SCOPE_RESULT_READONLY, SCOPE_SCORE,
};
use lti_core::services::nrps::Nrps;
use lti_core::services::testing::FakePlatform;
use lti_core::services::token::{AccessTokens, ServiceTokenCache};
use lti_core::signer::LocalRsaSigner;
use std::sync::{Arc, OnceLock};

/// 2030-03-17T17:46:40Z.
pub const NOW: i64 = 1_900_000_000;

/// The tool's services, as a handler holds them.
pub struct Tool {
    pub tokens: Arc<AccessTokens>,
    pub ags: Ags,
    pub nrps: Nrps,
    pub clock: Arc<FixedClock>,
}

/// The tool's signing key (one per test binary: RSA generation is not free).
pub fn signer() -> Arc<LocalRsaSigner> {
    static SIGNER: OnceLock<Arc<LocalRsaSigner>> = OnceLock::new();
    SIGNER
        .get_or_init(|| Arc::new(LocalRsaSigner::generate().expect("key")))
        .clone()
}

/// The tool calling `platform`, with a cache of its own.
pub fn tool(platform: &FakePlatform) -> Tool {
    tool_sharing(
        platform,
        Arc::new(MemoryStore::new()),
        Arc::new(FixedClock::at(NOW)),
    )
}

/// The tool calling `platform`, sharing tokens through `cache` (another function
/// instance of the same deployment has its own `Tool` on the same cache).
pub fn tool_sharing(
    platform: &FakePlatform,
    cache: Arc<dyn ServiceTokenCache>,
    clock: Arc<FixedClock>,
) -> Tool {
    let tokens = Arc::new(AccessTokens::new(
        Arc::new(platform.clone()),
        signer(),
        cache,
        clock.clone(),
        Arc::new(SystemRandom),
    ));
    Tool {
        ags: Ags::new(tokens.clone()),
        nrps: Nrps::new(tokens.clone()),
        tokens,
        clock,
    }
}

/// A registration; its id is derived from (issuer, client_id), so the same
/// registration built twice is the same registration.
pub fn registration(
    issuer: &str,
    client_id: &str,
    token_url: &str,
    token_audience: Option<&str>,
) -> Platform {
    let mut platform = lti_core::contract::sample_platform(issuer, client_id, NOW);
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{issuer}#{client_id}").as_bytes(),
    );
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest.as_ref()[..16]);
    platform.id = uuid::Uuid::from_bytes(id);
    platform.auth_token_url = token_url.to_string();
    platform.token_audience = token_audience.map(str::to_string);
    platform
}

/// Every AGS scope.
pub fn all_scopes() -> Vec<String> {
    [
        SCOPE_LINEITEM,
        SCOPE_LINEITEM_READONLY,
        SCOPE_RESULT_READONLY,
        SCOPE_SCORE,
    ]
    .map(str::to_string)
    .to_vec()
}

/// An AGS claim with `scopes`.
pub fn endpoint(
    lineitems: Option<&str>,
    lineitem: Option<&str>,
    scopes: Vec<String>,
) -> AgsEndpoint {
    AgsEndpoint {
        scope: scopes,
        lineitems: lineitems.map(str::to_string),
        lineitem: lineitem.map(str::to_string),
        extra: Default::default(),
    }
}
