//! The launch and the platform's key set: a `kid` listed on several keys (RFC 7517
//! only says kids SHOULD be distinct) is tried key by key, whatever their order.

mod common;

use common::*;
use lti_core::error::Problem;
use lti_core::signer::{LocalRsaSigner, PublicJwk};
use std::sync::OnceLock;

fn third_key() -> &'static LocalRsaSigner {
    static KEY: OnceLock<LocalRsaSigner> = OnceLock::new();
    KEY.get_or_init(|| LocalRsaSigner::generate().expect("key"))
}

/// `key`'s public JWK published under the platform key's kid.
fn under_platform_kid(key: &LocalRsaSigner) -> PublicJwk {
    let mut jwk = key.public_jwk().clone();
    jwk.kid = platform_key().public_jwk().kid.clone();
    jwk
}

#[tokio::test]
async fn a_token_verifies_with_either_of_two_keys_under_its_kid_in_any_order() {
    let signing = platform_key().public_jwk().clone();
    let other = under_platform_kid(other_key());
    for keys in [
        vec![signing.clone(), other.clone()],
        vec![other.clone(), signing.clone()],
    ] {
        let f = Fixture::new().await;
        *f.jwks.keys.lock().expect("lock") = keys;
        let handoff = f
            .launch(learner_claims(NOW))
            .await
            .expect("signed by one of the two keys: accepted");
        assert!(!handoff.app_token.is_empty());
        assert_eq!(f.jwks.fetch_count(), 1);
    }
}

#[tokio::test]
async fn a_token_signed_by_neither_key_under_its_kid_has_an_invalid_signature() {
    let f = Fixture::new().await;
    *f.jwks.keys.lock().expect("lock") = vec![
        under_platform_kid(other_key()),
        under_platform_kid(third_key()),
    ];
    let error = f
        .launch(learner_claims(NOW))
        .await
        .expect_err("no published key signed it");
    assert_eq!(error.code(), "LTI_SIGNATURE_INVALID");
}
