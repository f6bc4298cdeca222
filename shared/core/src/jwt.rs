//! Compact JWS helpers: signing through the [`Signer`] port and reading a token's
//! header and payload before verification (only to choose the key).

use crate::signer::{Signer, SignerError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

/// Signs `claims` as an RS256 JWT with the signer's active key.
pub async fn sign_jwt<C: Serialize + ?Sized>(
    signer: &dyn Signer,
    claims: &C,
) -> Result<String, SignerError> {
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": signer.key_id().await?});
    let mut token = encode_part(&header)?;
    token.push('.');
    token.push_str(&encode_part(claims)?);
    let signature = signer.sign(token.as_bytes()).await?;
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

fn encode_part<T: Serialize + ?Sized>(value: &T) -> Result<String, SignerError> {
    let json = serde_json::to_vec(value)
        .map_err(|e| SignerError::BadKey(format!("cannot encode claims: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// Splits a compact JWS into its three parts, or `None` if it is not one.
pub fn split(token: &str) -> Option<(&str, &str, &str)> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || h.is_empty() || p.is_empty() {
        return None;
    }
    Some((h, p, s))
}

/// Decodes one base64url part into JSON of type `T`.
pub fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}
