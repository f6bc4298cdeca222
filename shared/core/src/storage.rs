//! Launches inside the platform's iframe when the browser withholds the state cookie:
//! 1EdTech *OIDC Login with LTI Client Side postMessages* and *LTI postMessage
//! Storage* (both v0.1).
//!
//! When the login request carries `lti_storage_target`, the login page stores the
//! state in the platform's storage frame with `lti.put_data` (key `state_<state>`,
//! value `<state>.<proof>`; and `nonce_<nonce>` → nonce) before it goes on to the
//! platform's authorization endpoint. The proof is 256 random bits; the state record
//! keeps only its SHA-256 ([`proof_hash`]). A launch that arrives without the cookie
//! gets a page that reads the value back with `lti.get_data`, checks that its state
//! is the posted one, and posts the launch again with the proof, which the launch's
//! single atomic consumption checks against the stored hash. Only a browser whose
//! storage frame (on the platform's origin) holds the value can present the proof.
//!
//! Messages go to `parent.frames[lti_storage_target]` (or the parent itself) with the
//! platform's origin as `targetOrigin`: the origin of its OIDC authorization endpoint
//! ([`storage_origin`]). Only `lti.capabilities`, which carries no data, is sent with
//! `*`.

use crate::random::Random;
use base64::Engine;

/// Random bytes in a storage proof: 256 bits.
pub const PROOF_BYTES: usize = 32;

/// The longest proof accepted in a launch form, bytes (issued ones are 43).
pub const MAX_PROOF_LEN: usize = 128;

/// The longest `lti_storage_target` accepted, bytes (a frame name).
pub const MAX_TARGET_LEN: usize = 255;

/// The frame name meaning "the parent window itself".
pub const PARENT_TARGET: &str = "_parent";

/// A fresh one-time proof.
pub fn new_proof(random: &dyn Random) -> String {
    random.token(PROOF_BYTES)
}

/// What the state record keeps of a proof: its SHA-256, base64url.
pub fn proof_hash(proof: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, proof.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The storage key of a state.
pub fn state_key(state: &str) -> String {
    format!("state_{state}")
}

/// The storage key of a nonce.
pub fn nonce_key(nonce: &str) -> String {
    format!("nonce_{nonce}")
}

/// The value stored under [`state_key`]: the state and the proof.
pub fn state_value(state: &str, proof: &str) -> String {
    format!("{state}.{proof}")
}

/// The proof in a stored value, if the value's state is `state` (the check the launch
/// page makes before it posts the proof; states and proofs are base64url, no `.`).
pub fn proof_in<'a>(value: &'a str, state: &str) -> Option<&'a str> {
    let (stored, proof) = value.split_once('.')?;
    (stored == state && !proof.is_empty()).then_some(proof)
}

/// The origin storage messages go to and must come from: the origin of the platform's
/// OIDC authorization endpoint; `None` if that is not an http(s) URL.
pub fn storage_origin(auth_login_url: &str) -> Option<String> {
    let url = url::Url::parse(auth_login_url).ok()?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// A usable `lti_storage_target`: a non-empty frame name of printable ASCII (no
/// spaces), at most [`MAX_TARGET_LEN`] bytes.
pub fn valid_target(target: &str) -> bool {
    !target.is_empty()
        && target.len() <= MAX_TARGET_LEN
        && target.bytes().all(|b| b.is_ascii_graphic())
}

/// The origins of a registration that may frame the tool's login and launch pages
/// (CSP `frame-ancestors`): its issuer's and its authorization endpoint's, when they
/// are http(s) URLs.
pub fn registration_origins(platform: &crate::platform::Platform) -> Vec<String> {
    let mut origins = Vec::new();
    for url in [&platform.issuer, &platform.auth_login_url] {
        if let Some(origin) = storage_origin(url) {
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
    }
    origins
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SystemRandom;

    #[test]
    fn a_proof_is_random_and_only_its_hash_is_kept() {
        let a = new_proof(&SystemRandom);
        let b = new_proof(&SystemRandom);
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits in base64url");
        assert_ne!(proof_hash(&a), a);
        assert_eq!(proof_hash(&a), proof_hash(&a));
        assert_ne!(proof_hash(&a), proof_hash(&b));
        // SHA-256 of "abc", base64url.
        assert_eq!(
            proof_hash("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }

    #[test]
    fn the_stored_value_yields_the_proof_only_for_its_own_state() {
        let value = state_value("S1", "P1");
        assert_eq!(value, "S1.P1");
        assert_eq!(proof_in(&value, "S1"), Some("P1"));
        assert_eq!(proof_in(&value, "S2"), None, "another state");
        assert_eq!(proof_in("S1", "S1"), None, "no proof");
        assert_eq!(proof_in("S1.", "S1"), None, "empty proof");
        assert_eq!(proof_in(".P1", "S1"), None, "no state");
        assert_eq!(state_key("S1"), "state_S1");
        assert_eq!(nonce_key("N1"), "nonce_N1");
    }

    #[test]
    fn the_storage_origin_is_the_auth_endpoints() {
        assert_eq!(
            storage_origin("https://sso.canvaslms.com/api/lti/authorize_redirect").as_deref(),
            Some("https://sso.canvaslms.com")
        );
        assert_eq!(
            storage_origin("http://localhost:3000/platform/auth?x=1").as_deref(),
            Some("http://localhost:3000")
        );
        assert_eq!(storage_origin("javascript:alert(1)"), None);
        assert_eq!(storage_origin("not a url"), None);
    }

    #[test]
    fn frame_names_are_bounded_printable_ascii() {
        assert!(valid_target("post_message_forwarding"));
        assert!(valid_target(PARENT_TARGET));
        assert!(!valid_target(""));
        assert!(!valid_target("a b"));
        assert!(!valid_target("é"));
        assert!(!valid_target(&"x".repeat(MAX_TARGET_LEN + 1)));
        assert!(valid_target(&"x".repeat(MAX_TARGET_LEN)));
    }
}
