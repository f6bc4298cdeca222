//! The randomness port: state, nonce, jti and user ids come from a CSPRNG.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// A source of unguessable values.
pub trait Random: Send + Sync {
    /// `bytes` random bytes from a CSPRNG, base64url-encoded without padding.
    fn token(&self, bytes: usize) -> String;
}

/// The operating system's CSPRNG through AWS-LC.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRandom;

impl Random for SystemRandom {
    fn token(&self, bytes: usize) -> String {
        let mut buf = vec![0u8; bytes];
        // AWS-LC's RNG only fails if the OS entropy source is gone; nothing can be
        // done safely then, and a predictable value must never be returned.
        if aws_lc_rs::rand::fill(&mut buf).is_err() {
            panic!("the operating system's random number generator failed");
        }
        URL_SAFE_NO_PAD.encode(buf)
    }
}
