//! The KMS signer on moto: real signatures that verify with the published key.

mod common;

use lti_aws::calls::CallCounter;
use lti_aws::kms::KmsSigner;
use lti_core::signer::Signer;

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn a_token_signed_in_kms_verifies_with_the_published_key() {
    let clients = common::moto(None).await;
    let (key, alias) = common::fresh_key(&clients).await;
    let signer = KmsSigner::new(clients.kms.clone(), alias, vec![]);
    let claims = serde_json::json!({"sub": "u", "aud": "app", "exp": 4_000_000_000u64});
    let token = lti_core::jwt::sign_jwt(&signer, &claims)
        .await
        .expect("signed");
    let keys = signer.public_keys().await.expect("keys");
    assert_eq!(keys.len(), 1);
    let jwk = &keys[0];
    assert_eq!(
        (jwk.kty.as_str(), jwk.alg.as_str(), jwk.use_.as_str()),
        ("RSA", "RS256", "sig")
    );
    let header = jsonwebtoken::decode_header(&token).expect("header");
    assert_eq!(header.kid.as_deref(), Some(jwk.kid.as_str()));
    let decoding = jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e).expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["app"]);
    jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).expect("verifies");

    // The kid is the key's, not the alias's: a signer on the key id agrees.
    let by_id = KmsSigner::new(clients.kms.clone(), key, vec![]);
    assert_eq!(by_id.key_id().await.expect("kid"), jwk.kid);
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn previous_keys_are_published_after_the_active_one() {
    let clients = common::moto(None).await;
    let (old, _) = common::fresh_key(&clients).await;
    let (new, _) = common::fresh_key(&clients).await;
    let signer = KmsSigner::new(clients.kms.clone(), new.clone(), vec![old.clone()]);
    let keys = signer.public_keys().await.expect("keys");
    let old_kid = KmsSigner::new(clients.kms.clone(), old, vec![])
        .key_id()
        .await
        .expect("kid");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].kid, signer.key_id().await.expect("kid"));
    assert_eq!(keys[1].kid, old_kid);
}

#[tokio::test]
#[ignore = "needs a moto server: tests/run.sh starts one"]
async fn public_keys_are_fetched_once_per_instance() {
    let counter = CallCounter::default();
    let clients = common::moto(Some(counter.clone())).await;
    let (key, _) = common::fresh_key(&clients).await;
    counter.take();
    let signer = KmsSigner::new(clients.kms.clone(), key, vec![]);
    for _ in 0..3 {
        signer.public_keys().await.expect("keys");
        signer.key_id().await.expect("kid");
    }
    assert_eq!(counter.take(), vec!["kms:GetPublicKey"]);
}
