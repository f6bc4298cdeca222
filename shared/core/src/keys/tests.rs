//! The caching rules of [`PlatformKeys`], with a counting fetcher double and the clock
//! passed in as `now`.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

const URL: &str = "https://lms.example.edu/jwks";

/// A scripted key endpoint that counts its fetches.
struct Endpoint {
    answer: Mutex<Result<FetchedKeySet, FetchError>>,
    calls: AtomicUsize,
    delay: Mutex<Duration>,
}

#[async_trait]
impl KeySetFetcher for Endpoint {
    async fn fetch(&self, _url: &str) -> Result<FetchedKeySet, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let delay = *self.delay.lock().expect("lock");
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.answer.lock().expect("lock").clone()
    }
}

impl Endpoint {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn serve(&self, body: Vec<u8>, cache_control: &str) {
        *self.answer.lock().expect("lock") = Ok(FetchedKeySet::new(
            body,
            &CacheControl::parse([cache_control]),
            None,
        ));
    }
    fn fail(&self, error: FetchError) {
        *self.answer.lock().expect("lock") = Err(error);
    }
}

fn endpoint(body: Vec<u8>, cache_control: &str) -> Arc<Endpoint> {
    let e = Arc::new(Endpoint {
        answer: Mutex::new(Err(FetchError::new(URL, "unset"))),
        calls: AtomicUsize::new(0),
        delay: Mutex::new(Duration::ZERO),
    });
    e.serve(body, cache_control);
    e
}

fn down() -> FetchError {
    FetchError::transient(URL, "HTTP status 503")
}

const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

/// A JWKS with one RSA key under each of `kids` (and an EC key, skipped).
fn jwks(kids: &[&str]) -> Vec<u8> {
    let mut keys: Vec<serde_json::Value> = kids
        .iter()
        .map(|kid| serde_json::json!({"kty": "RSA", "kid": kid, "n": N, "e": "AQAB"}))
        .collect();
    keys.push(serde_json::json!({"kty": "EC", "kid": "ec", "crv": "P-256", "x": "x", "y": "y"}));
    serde_json::to_vec(&serde_json::json!({ "keys": keys })).expect("json")
}

fn found(result: Result<Vec<Arc<DecodingKey>>, KeyError>) -> usize {
    result.expect("keys found").len()
}

fn unknown(result: Result<Vec<Arc<DecodingKey>>, KeyError>) {
    assert!(
        matches!(result, Err(KeyError::UnknownKid)),
        "expected an unknown kid, got {:?}",
        result.map(|k| k.len())
    );
}

fn unavailable(result: Result<Vec<Arc<DecodingKey>>, KeyError>) -> FetchError {
    match result {
        Err(KeyError::Fetch(e)) => e,
        other => panic!("expected a fetch failure, got {:?}", other.map(|k| k.len())),
    }
}

/// A shared cache in memory that records what it was given.
#[derive(Default)]
struct Shared {
    sets: Mutex<HashMap<String, SharedKeySet>>,
    gets: AtomicUsize,
    puts: AtomicUsize,
    forgets: AtomicUsize,
}

#[async_trait]
impl KeySetCache for Shared {
    async fn get(&self, url: &str, now: i64) -> Option<SharedKeySet> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.sets
            .lock()
            .expect("lock")
            .get(url)
            .filter(|s| s.stale_until > now)
            .cloned()
    }
    async fn put(&self, url: &str, set: SharedKeySet) {
        self.puts.fetch_add(1, Ordering::SeqCst);
        self.sets.lock().expect("lock").insert(url.to_string(), set);
    }
    async fn forget(&self, url: &str) {
        self.forgets.fetch_add(1, Ordering::SeqCst);
        self.sets.lock().expect("lock").remove(url);
    }
}

#[tokio::test]
async fn a_cached_key_is_served_without_fetching_again_until_its_max_age() {
    let f = endpoint(jwks(&["k1"]), "");
    let keys = PlatformKeys::new(f.clone());
    found(keys.keys(URL, "k1", 0).await);
    found(keys.keys(URL, "k1", DEFAULT_MAX_AGE - 1).await);
    assert_eq!(f.calls(), 1);
    found(keys.keys(URL, "k1", DEFAULT_MAX_AGE).await);
    assert_eq!(f.calls(), 2, "stale keys are refetched");
}

#[tokio::test]
async fn max_age_is_capped_at_a_day() {
    let f = endpoint(jwks(&["k1"]), "max-age=99999999999");
    let keys = PlatformKeys::new(f.clone());
    found(keys.keys(URL, "k1", 0).await);
    found(keys.keys(URL, "k1", MAX_MAX_AGE).await);
    assert_eq!(f.calls(), 2);
}

#[tokio::test]
async fn a_flood_of_random_kids_makes_one_refetch_per_interval_whatever_the_kid() {
    let f = endpoint(jwks(&["k1"]), "max-age=3600");
    let keys = PlatformKeys::new(f.clone());
    found(keys.keys(URL, "k1", 0).await);
    assert_eq!(f.calls(), 1);
    // 20 tokens, each with a fresh kid, one a second: two refetches in the window.
    for t in 1..=20 {
        unknown(keys.keys(URL, &format!("random-{t}"), t).await);
    }
    assert_eq!(
        f.calls(),
        1 + UNKNOWN_KID_REFETCHES,
        "two refetches for the flood"
    );
    for t in 21..UNKNOWN_KID_REFETCH_INTERVAL {
        unknown(keys.keys(URL, &format!("more-{t}"), t).await);
    }
    assert_eq!(f.calls(), 3, "none more within the window");
    // The platform rotates: the new kid is found as soon as the window allows.
    f.serve(jwks(&["k1", "k2"]), "max-age=3600");
    unknown(keys.keys(URL, "k2", UNKNOWN_KID_REFETCH_INTERVAL).await);
    assert_eq!(
        f.calls(),
        3,
        "the refetches at 1 and 2 are still in the window"
    );
    found(keys.keys(URL, "k2", 1 + UNKNOWN_KID_REFETCH_INTERVAL).await);
    assert_eq!(f.calls(), 4);
    // Known kids never wait for anything.
    found(keys.keys(URL, "k1", 2 + UNKNOWN_KID_REFETCH_INTERVAL).await);
    assert_eq!(f.calls(), 4);
}

#[tokio::test]
async fn a_new_kid_right_after_an_unknown_one_is_still_refetched_once() {
    // A forged kid, then the platform rotates in the same second.
    let f = endpoint(jwks(&["k1"]), "max-age=3600");
    let keys = PlatformKeys::new(f.clone());
    found(keys.keys(URL, "k1", 0).await);
    unknown(keys.keys(URL, "forged", 0).await);
    f.serve(jwks(&["k1", "k2"]), "max-age=3600");
    found(keys.keys(URL, "k2", 0).await);
    assert_eq!(f.calls(), 3);
}

#[tokio::test]
async fn a_cold_flood_of_random_kids_makes_a_single_fetch() {
    let f = endpoint(jwks(&["k1"]), "");
    let keys = PlatformKeys::new(f.clone());
    for i in 0..20 {
        unknown(keys.keys(URL, &format!("random-{i}"), 0).await);
    }
    assert_eq!(f.calls(), 1 + UNKNOWN_KID_REFETCHES);
}

#[tokio::test]
async fn a_kid_longer_than_the_cap_is_unknown_without_any_fetch() {
    let f = endpoint(jwks(&["k1"]), "");
    let keys = PlatformKeys::new(f.clone());
    unknown(keys.keys(URL, &"k".repeat(MAX_KID_BYTES + 1), 0).await);
    assert_eq!(f.calls(), 0);
    // Nor is a key published under such a kid ever used.
    let long = "k".repeat(MAX_KID_BYTES + 1);
    assert!(parse_jwks(&jwks(&[&long])).expect("jwks").is_empty());
}

#[tokio::test]
async fn nothing_is_remembered_per_kid() {
    let f = endpoint(jwks(&["k1"]), "max-age=3600");
    let keys = PlatformKeys::new(f.clone());
    for i in 0..1000 {
        let _ = keys.keys(URL, &format!("{i:0>200}"), i).await;
    }
    let urls = keys.lock();
    assert_eq!(urls.len(), 1, "one entry per URL");
    assert_eq!(urls[URL].doc.as_ref().map(|d| d.keys.len()), Some(1));
}

#[tokio::test]
async fn a_burst_of_concurrent_launches_makes_one_fetch() {
    for cache_control in ["", "no-store", "max-age=0"] {
        let f = endpoint(jwks(&["k1"]), cache_control);
        *f.delay.lock().expect("lock") = Duration::from_millis(100);
        let keys = Arc::new(PlatformKeys::new(f.clone()));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..20 {
            let keys = keys.clone();
            // Known and unknown kids alike.
            let kid = if i % 2 == 0 {
                "k1".to_string()
            } else {
                format!("x{i}")
            };
            tasks.spawn(async move { keys.keys(URL, &kid, 0).await.is_ok() });
        }
        let mut ok = 0;
        while let Some(result) = tasks.join_next().await {
            ok += usize::from(result.expect("task"));
        }
        assert_eq!(ok, 10, "{cache_control}: every k1 launch verified");
        assert_eq!(f.calls(), 1, "{cache_control}: one fetch for the burst");
    }
}

#[tokio::test]
async fn a_burst_during_an_outage_makes_one_fetch() {
    let f = endpoint(jwks(&["k1"]), "");
    f.fail(down());
    *f.delay.lock().expect("lock") = Duration::from_millis(100);
    let keys = Arc::new(PlatformKeys::new(f.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let keys = keys.clone();
        tasks.spawn(async move { keys.keys(URL, "k1", 0).await });
    }
    while let Some(result) = tasks.join_next().await {
        unavailable(result.expect("task"));
    }
    assert_eq!(f.calls(), 1);
    // Right after, no new attempt either; after the gap, one.
    unavailable(keys.keys(URL, "k1", MIN_FETCH_INTERVAL - 1).await);
    assert_eq!(f.calls(), 1);
    unavailable(keys.keys(URL, "k1", MIN_FETCH_INTERVAL).await);
    assert_eq!(f.calls(), 2);
}

#[tokio::test]
async fn no_store_no_cache_and_max_age_0_are_used_only_for_the_floor_then_refetched() {
    for cache_control in [
        "no-cache, no-store",
        "No-Store",
        "private, no-cache",
        "max-age=0",
        "max-age=0, must-revalidate",
    ] {
        let f = endpoint(jwks(&["k1"]), cache_control);
        let keys = PlatformKeys::new(f.clone());
        found(keys.keys(URL, "k1", 100).await);
        // The floor: a burst within a few seconds makes no second fetch.
        found(keys.keys(URL, "k1", 100 + MIN_FETCH_INTERVAL - 1).await);
        assert_eq!(f.calls(), 1, "{cache_control}");
        // The platform withdraws k1: the next launch after the floor is refused.
        f.serve(jwks(&["k2"]), cache_control);
        unknown(keys.keys(URL, "k1", 100 + MIN_FETCH_INTERVAL).await);
        assert_eq!(f.calls(), 2, "{cache_control}");
    }
}

#[tokio::test]
async fn the_same_withdrawal_with_a_cacheable_document_waits_for_its_max_age() {
    let f = endpoint(jwks(&["k1"]), "max-age=60");
    let keys = PlatformKeys::new(f.clone());
    found(keys.keys(URL, "k1", 100).await);
    f.serve(jwks(&["k2"]), "max-age=60");
    found(keys.keys(URL, "k1", 159).await);
    unknown(keys.keys(URL, "k1", 160).await);
}

#[tokio::test]
async fn a_no_store_flood_of_random_kids_stays_bounded() {
    let f = endpoint(jwks(&["k1"]), "no-store");
    let keys = PlatformKeys::new(f.clone());
    found(keys.keys(URL, "k1", 0).await);
    for t in 0..UNKNOWN_KID_REFETCH_INTERVAL {
        unknown(keys.keys(URL, &format!("random-{t}"), t).await);
    }
    // (The two refetches happened at 0; at 30 the window allows more.)
    assert_eq!(
        f.calls(),
        1 + UNKNOWN_KID_REFETCHES,
        "unknown kids: bounded"
    );
    // Known kids (public, so anyone can send them with a bad signature): one fetch
    // per floor.
    for t in 0..20 {
        found(keys.keys(URL, "k1", 100 + t).await);
    }
    assert_eq!(
        f.calls(),
        1 + UNKNOWN_KID_REFETCHES + 20 / MIN_FETCH_INTERVAL as usize
    );
}

#[tokio::test]
async fn a_no_store_document_never_reaches_the_shared_cache() {
    let shared = Arc::new(Shared::default());
    // A copy kept from before the platform said no-store.
    shared.sets.lock().expect("lock").insert(
        URL.into(),
        SharedKeySet {
            body: jwks(&["old"]),
            fresh_until: 1000,
            stale_until: 5000,
        },
    );
    let f = endpoint(jwks(&["k1"]), "no-cache, no-store");
    let keys = PlatformKeys::new(f.clone()).with_shared_cache(shared.clone());
    found(keys.keys(URL, "k1", 10).await);
    found(keys.keys(URL, "k1", 20).await);
    assert_eq!(shared.puts.load(Ordering::SeqCst), 0, "never put");
    assert!(shared.get(URL, 10).await.is_none(), "the old copy is gone");
    assert_eq!(
        shared.forgets.load(Ordering::SeqCst),
        1,
        "removed once, not on every fetch"
    );
    // And a cold instance does not use it either.
    let cold = PlatformKeys::new(f.clone()).with_shared_cache(shared.clone());
    unknown(cold.keys(URL, "old", 21).await);
}

#[tokio::test]
async fn a_cold_instance_uses_keys_another_instance_fetched() {
    let f = endpoint(jwks(&["k1"]), "max-age=600");
    let shared = Arc::new(Shared::default());
    let first = PlatformKeys::new(f.clone()).with_shared_cache(shared.clone());
    found(first.keys(URL, "k1", 0).await);
    assert_eq!(f.calls(), 1);
    let put = shared.get(URL, 0).await.expect("put");
    assert_eq!(
        (put.fresh_until, put.stale_until),
        (600, 600 + STALE_WINDOW)
    );
    let second = PlatformKeys::new(f.clone()).with_shared_cache(shared.clone());
    found(second.keys(URL, "k1", 10).await);
    assert_eq!(f.calls(), 1, "no second fetch");
    // An unknown kid still reaches the platform, and a stale shared copy is not used
    // when the platform answers.
    unknown(second.keys(URL, "k9", 11).await);
    assert_eq!(f.calls(), 2);
    let third = PlatformKeys::new(f.clone()).with_shared_cache(shared);
    found(third.keys(URL, "k1", 700).await);
    assert_eq!(f.calls(), 3);
}

#[tokio::test]
async fn expired_keys_are_served_for_the_stale_window_while_the_endpoint_is_down() {
    let f = endpoint(jwks(&["k1"]), "max-age=60");
    let keys = PlatformKeys::new(f.clone());
    found(keys.keys(URL, "k1", 0).await);
    f.fail(down());
    found(keys.keys(URL, "k1", 60).await);
    assert_eq!(f.calls(), 2, "it tried");
    // Within the gap: no new attempt, the stale keys again.
    found(keys.keys(URL, "k1", 61).await);
    assert_eq!(f.calls(), 2);
    found(keys.keys(URL, "k1", 60 + STALE_WINDOW - 1).await);
    assert_eq!(f.calls(), 3);
    // A kid the stale document does not list is not vouched for by it.
    let e = unavailable(keys.keys(URL, "k2", 60 + STALE_WINDOW - 1).await);
    assert!(e.transient);
    // Past the window: refused.
    unavailable(keys.keys(URL, "k1", 60 + STALE_WINDOW).await);
    // Back up: fresh keys.
    f.serve(jwks(&["k1"]), "max-age=60");
    found(
        keys.keys(URL, "k1", 60 + STALE_WINDOW + MIN_FETCH_INTERVAL)
            .await,
    );
}

#[tokio::test]
async fn stale_keys_are_never_served_for_other_failures_or_documents_that_forbid_it() {
    // A 404 or a document that is not a JWKS is an answer, not an outage.
    for error in [
        FetchError::new(URL, "HTTP status 404"),
        FetchError::new(URL, "redirected to a URL the registration rules refuse"),
    ] {
        let f = endpoint(jwks(&["k1"]), "max-age=60");
        let keys = PlatformKeys::new(f.clone());
        found(keys.keys(URL, "k1", 0).await);
        f.fail(error);
        assert!(!unavailable(keys.keys(URL, "k1", 60).await).transient);
    }
    let f = endpoint(jwks(&["k1"]), "max-age=60");
    let keys = PlatformKeys::new(f.clone());
    found(keys.keys(URL, "k1", 0).await);
    f.serve(b"<html>maintenance</html>".to_vec(), "max-age=60");
    unavailable(keys.keys(URL, "k1", 60).await);
    // no-store, no-cache, max-age=0, must-revalidate: never stale.
    for cache_control in [
        "no-store",
        "no-cache",
        "max-age=0",
        "max-age=60, must-revalidate",
    ] {
        let f = endpoint(jwks(&["k1"]), cache_control);
        let keys = PlatformKeys::new(f.clone());
        found(keys.keys(URL, "k1", 0).await);
        f.fail(down());
        unavailable(keys.keys(URL, "k1", 61).await);
    }
}

#[tokio::test]
async fn nothing_usable_cached_and_the_endpoint_down_is_a_fetch_failure() {
    let f = endpoint(jwks(&["k1"]), "");
    f.fail(down());
    let keys = PlatformKeys::new(f.clone());
    let e = unavailable(keys.keys(URL, "k1", 0).await);
    assert_eq!(e.code(), "LTI_PLATFORM_KEYS_UNAVAILABLE");
    assert_eq!(e.kind(), ErrorKind::PlatformFailed);
}

#[tokio::test]
async fn a_cold_instance_serves_stale_keys_from_the_shared_cache_while_the_endpoint_is_down() {
    let f = endpoint(jwks(&["k1"]), "max-age=60");
    let shared = Arc::new(Shared::default());
    found(
        PlatformKeys::new(f.clone())
            .with_shared_cache(shared.clone())
            .keys(URL, "k1", 0)
            .await,
    );
    f.fail(down());
    let cold = PlatformKeys::new(f.clone()).with_shared_cache(shared.clone());
    found(cold.keys(URL, "k1", 600).await);
    assert_eq!(f.calls(), 2, "it tried the platform first");
    let cold = PlatformKeys::new(f.clone()).with_shared_cache(shared);
    unavailable(cold.keys(URL, "k1", 60 + STALE_WINDOW).await);
}

fn two_keys() -> &'static (crate::signer::LocalRsaSigner, crate::signer::LocalRsaSigner) {
    static KEYS: OnceLock<(crate::signer::LocalRsaSigner, crate::signer::LocalRsaSigner)> =
        OnceLock::new();
    KEYS.get_or_init(|| {
        (
            crate::signer::LocalRsaSigner::generate().expect("key"),
            crate::signer::LocalRsaSigner::generate().expect("key"),
        )
    })
}

#[tokio::test]
async fn every_key_under_a_repeated_kid_is_returned_in_document_order() {
    let (first, second) = two_keys();
    let mut a = first.public_jwk().clone();
    let mut b = second.public_jwk().clone();
    a.kid = "same".into();
    b.kid = "same".into();
    let body = serde_json::to_vec(&serde_json::json!({ "keys": [a, b] })).expect("json");
    let f = endpoint(body, "");
    let keys = PlatformKeys::new(f)
        .keys(URL, "same", 0)
        .await
        .expect("keys");
    assert_eq!(keys.len(), 2);
    // A signature by the first key verifies with the first candidate only.
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let input = format!(
        "{}.{}",
        b64(serde_json::json!({"alg": "RS256", "kid": "same"})),
        b64(serde_json::json!({"sub": "x"}))
    );
    let signature = first.sign_now(input.as_bytes()).expect("sign");
    let token = format!(
        "{input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature)
    );
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let verified: Vec<bool> = keys
        .iter()
        .map(|k| jsonwebtoken::decode::<serde_json::Value>(&token, k, &validation).is_ok())
        .collect();
    assert_eq!(verified, vec![true, false]);
}

#[test]
fn cache_control_is_read_with_care() {
    let parse = |values: &[&str]| CacheControl::parse(values);
    assert_eq!(parse(&["public, max-age=600"]).max_age, Some(600));
    assert_eq!(parse(&["PUBLIC, Max-Age=600"]).max_age, Some(600));
    assert_eq!(parse(&["max-age=\"600\""]).max_age, Some(600), "quoted");
    assert_eq!(parse(&["max-age = 600"]).max_age, Some(600));
    assert_eq!(
        parse(&["max-age=600", "max-age=60"]).max_age,
        Some(60),
        "smallest"
    );
    assert_eq!(
        parse(&["max-age=soon"]).max_age,
        Some(0),
        "unreadable: stale"
    );
    assert_eq!(parse(&["max-age=-5"]).max_age, Some(0));
    assert_eq!(
        parse(&["max-age=99999999999999999999999"]).max_age,
        Some(i64::MAX)
    );
    assert_eq!(parse(&["no-cache"]).max_age, None);
    // Several headers combine; directives may hide in any of them.
    let both = parse(&["public, max-age=600", "no-store"]);
    assert!(both.no_store && both.max_age == Some(600));
    assert!(parse(&["NO-CACHE"]).no_cache);
    assert!(parse(&["Must-Revalidate"]).must_revalidate);
    // A qualified no-cache only concerns the named header fields.
    assert!(!parse(&["no-cache=\"set-cookie\", max-age=60"]).no_cache);
    // A comma inside quotes does not start a directive.
    let quoted = parse(&["private=\"a, no-store\", max-age=60"]);
    assert!(!quoted.no_store);
    assert_eq!(quoted.max_age, Some(60));
    assert_eq!(parse(&["", " , ,"]), CacheControl::default());
    assert_eq!(max_age_of("public, max-age=600"), Some(600));
}

#[test]
fn the_lifetime_accounts_for_age_and_for_no_store() {
    let cc = |v: &str| CacheControl::parse([v]);
    let fetched = |v: &str, age: Option<i64>| FetchedKeySet::new(vec![], &cc(v), age);
    assert_eq!(fetched("max-age=600", Some(100)).lifetime(), 500);
    assert_eq!(fetched("max-age=600", Some(9000)).lifetime(), 0);
    assert_eq!(fetched("", Some(100)).lifetime(), DEFAULT_MAX_AGE);
    assert_eq!(fetched("max-age=600, no-cache", None).lifetime(), 0);
    assert!(fetched("no-store", None).no_store);
    assert!(!fetched("max-age=0", None).keepable());
    assert_eq!(
        fetched("max-age=60, must-revalidate", None).stale_until(0),
        None
    );
    assert_eq!(
        fetched("max-age=60", None).stale_until(0),
        Some(60 + STALE_WINDOW)
    );
}

#[test]
fn jwks_without_alg_is_taken_as_rs256_and_other_keys_are_skipped() {
    let keys = parse_jwks(&jwks(&["k1"])).expect("parsed");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys["k1"].len(), 1);
    assert!(parse_jwks(b"{}").is_err());
}

#[test]
fn errors_do_not_carry_credentials() {
    let e = FetchError::new(
        "https://user:secret@lms.example.edu/jwks",
        "HTTP status 500",
    );
    assert_eq!(e.url, "https://lms.example.edu/jwks");
    assert!(!e.to_string().contains("secret"));
}

#[tokio::test]
async fn a_shared_entry_known_absent_a_moment_ago_is_not_read_again() {
    let f = endpoint(jwks(&["k1"]), "");
    let shared = Arc::new(Shared::default());
    let keys = PlatformKeys::new(f.clone()).with_shared_cache(shared.clone());
    // A cold launch read the registration with its (absent) shared entry.
    keys.seed_absent(URL, "registration-a", 100);
    found(keys.keys_shared_as(URL, "registration-a", "k1", 100).await);
    assert_eq!(shared.gets.load(Ordering::SeqCst), 0, "not read twice");
    assert_eq!(f.calls(), 1);
    assert_eq!(
        shared.puts.load(Ordering::SeqCst),
        1,
        "kept for the next instance"
    );

    // Another registration's entry, or the same one later, is read as before.
    let other = PlatformKeys::new(f.clone()).with_shared_cache(shared.clone());
    other.seed_absent(URL, "registration-a", 100);
    found(other.keys_shared_as(URL, "registration-b", "k1", 100).await);
    assert_eq!(shared.gets.load(Ordering::SeqCst), 1);
    let later = PlatformKeys::new(f.clone()).with_shared_cache(shared.clone());
    later.seed_absent(URL, "registration-a", 100);
    found(
        later
            .keys_shared_as(URL, "registration-a", "k1", 100 + SHARED_ABSENT_FOR)
            .await,
    );
    assert_eq!(shared.gets.load(Ordering::SeqCst), 2);
}
