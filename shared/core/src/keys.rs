//! Platform public keys: the [`KeySetFetcher`] port and the [`PlatformKeys`] cache.
//!
//! Keys are cached per JWKS URL and `kid`, honouring `Cache-Control: max-age`
//! (default 5 min, cap 24 h). An unknown `kid` triggers one refetch (platforms such as
//! Brightspace rotate keys hourly); a miss is then remembered for 30 s so a burst of
//! bad tokens does not hammer the platform.

use crate::error::{ErrorKind, Problem};
use async_trait::async_trait;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Default lifetime of fetched keys without `Cache-Control: max-age`.
pub const DEFAULT_MAX_AGE: i64 = 300;
/// Longest time fetched keys are trusted without refetching.
pub const MAX_MAX_AGE: i64 = 86_400;
/// How long an unknown `kid` is remembered after a refetch did not find it.
pub const MISS_TTL: i64 = 30;

/// A JWKS document as fetched, with the cache lifetime the server asked for.
#[derive(Debug, Clone)]
pub struct FetchedKeySet {
    /// The raw JSON body.
    pub body: Vec<u8>,
    /// `Cache-Control: max-age`, if sent.
    pub max_age: Option<i64>,
}

/// Fetching a platform's JWKS failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the platform's keys could not be fetched from {url}: {reason}")]
pub struct FetchError {
    /// The JWKS URL.
    pub url: String,
    /// What went wrong (status, timeout, unreadable body).
    pub reason: String,
}

impl Problem for FetchError {
    fn code(&self) -> &'static str {
        "LTI_PLATFORM_KEYS_UNAVAILABLE"
    }
    fn kind(&self) -> ErrorKind {
        ErrorKind::PlatformFailed
    }
    fn public_message(&self) -> String {
        "The platform's public keys could not be fetched, so the launch cannot be verified.".into()
    }
}

/// Fetches a JWKS document over HTTP.
#[async_trait]
pub trait KeySetFetcher: Send + Sync {
    /// GETs `url`; any non-2xx status is an error.
    async fn fetch(&self, url: &str) -> Result<FetchedKeySet, FetchError>;
}

/// Why no key could be found for a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    /// The platform does not publish this `kid`, even after a refetch.
    #[error("the platform has no key with this kid")]
    UnknownKid,
    /// Fetching failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: Option<String>,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

/// Parses a JWKS body into decoding keys by `kid`. Keys that are not RSA signing keys
/// for RS256 are skipped; a JWK without `alg` is taken as RS256 when `kty` is RSA.
pub fn parse_jwks(body: &[u8]) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
    let raw: RawJwks =
        serde_json::from_slice(body).map_err(|e| format!("not a JWKS document ({e})"))?;
    let mut keys = HashMap::new();
    for value in raw.keys {
        let Ok(jwk) = serde_json::from_value::<RawJwk>(value) else {
            continue;
        };
        let (Some(kid), Some(n), Some(e)) = (jwk.kid, jwk.n, jwk.e) else {
            continue;
        };
        if jwk.kty.as_deref() != Some("RSA")
            || !matches!(jwk.alg.as_deref(), None | Some("RS256"))
            || !matches!(jwk.use_.as_deref(), None | Some("sig"))
        {
            continue;
        }
        if let Ok(key) = DecodingKey::from_rsa_components(&n, &e) {
            keys.insert(kid, Arc::new(key));
        }
    }
    Ok(keys)
}

#[derive(Default)]
struct Entry {
    keys: HashMap<String, Arc<DecodingKey>>,
    fresh_until: i64,
}

#[derive(Default)]
struct Cache {
    sets: HashMap<String, Entry>,
    misses: HashMap<(String, String), i64>,
}

/// A JWKS document kept for every instance (DynamoDB on AWS), so a cold start can
/// verify a launch without fetching the platform's keys again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedKeySet {
    /// The JWKS document as fetched.
    pub body: Vec<u8>,
    /// Until when it may be used without refetching, epoch seconds.
    pub fresh_until: i64,
}

/// Storage of fetched JWKS documents shared across instances. Optional: without it,
/// each instance fetches on its first launch.
#[async_trait]
pub trait KeySetCache: Send + Sync {
    /// The document fetched from `url`, if still fresh at `now`.
    async fn get(&self, url: &str, now: i64) -> Option<SharedKeySet>;
    /// Keeps a freshly fetched document. Failures are the adapter's to log: the
    /// launch goes on with the keys it has.
    async fn put(&self, url: &str, set: SharedKeySet);
}

/// Platform keys cached per JWKS URL, shared by every launch of a warm instance.
pub struct PlatformKeys {
    fetcher: Arc<dyn KeySetFetcher>,
    shared: Option<Arc<dyn KeySetCache>>,
    cache: Mutex<Cache>,
}

impl PlatformKeys {
    /// A cache in front of `fetcher`.
    pub fn new(fetcher: Arc<dyn KeySetFetcher>) -> Self {
        Self {
            fetcher,
            shared: None,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Also keeps fetched documents in `shared`, and reads them from there on a cold
    /// start before fetching.
    pub fn with_shared_cache(mut self, shared: Arc<dyn KeySetCache>) -> Self {
        self.shared = Some(shared);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic elsewhere while holding the lock leaves a consistent map behind.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key `kid` published at `url`, fetching or refetching as needed.
    pub async fn key(&self, url: &str, kid: &str, now: i64) -> Result<Arc<DecodingKey>, KeyError> {
        let cold = {
            let cache = self.lock();
            let fresh = cache.sets.get(url).filter(|e| e.fresh_until > now);
            if let Some(key) = fresh.and_then(|e| e.keys.get(kid)) {
                return Ok(key.clone());
            }
            if cache
                .misses
                .get(&(url.to_string(), kid.to_string()))
                .is_some_and(|until| *until > now)
            {
                return Err(KeyError::UnknownKid);
            }
            cache.sets.get(url).is_none_or(|e| e.fresh_until <= now)
        };
        // Cold (nothing fresh in memory): another instance may have fetched already.
        if cold {
            if let Some(shared) = &self.shared {
                if let Some(set) = shared.get(url, now).await.filter(|s| s.fresh_until > now) {
                    if let Ok(keys) = parse_jwks(&set.body) {
                        let found = keys.get(kid).cloned();
                        self.lock().sets.insert(
                            url.to_string(),
                            Entry {
                                keys,
                                fresh_until: set.fresh_until,
                            },
                        );
                        if let Some(key) = found {
                            return Ok(key);
                        }
                    }
                }
            }
        }
        // Not cached, stale, or an unknown kid in a fresh set: fetch once.
        let fetched = self.fetcher.fetch(url).await?;
        let keys = parse_jwks(&fetched.body).map_err(|reason| FetchError {
            url: url.to_string(),
            reason,
        })?;
        let max_age = fetched
            .max_age
            .unwrap_or(DEFAULT_MAX_AGE)
            .clamp(0, MAX_MAX_AGE);
        if let Some(shared) = &self.shared {
            shared
                .put(
                    url,
                    SharedKeySet {
                        body: fetched.body.clone(),
                        fresh_until: now + max_age,
                    },
                )
                .await;
        }
        let mut cache = self.lock();
        let found = keys.get(kid).cloned();
        cache.sets.insert(
            url.to_string(),
            Entry {
                keys,
                fresh_until: now + max_age,
            },
        );
        cache.misses.retain(|_, until| *until > now);
        match found {
            Some(key) => Ok(key),
            None => {
                cache
                    .misses
                    .insert((url.to_string(), kid.to_string()), now + MISS_TTL);
                Err(KeyError::UnknownKid)
            }
        }
    }
}

/// Reads `max-age` from a `Cache-Control` header value.
pub fn max_age_of(cache_control: &str) -> Option<i64> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        if name.trim().eq_ignore_ascii_case("max-age") {
            value.trim().trim_matches('"').parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting {
        body: Mutex<Vec<u8>>,
        calls: AtomicUsize,
        max_age: Option<i64>,
    }

    #[async_trait]
    impl KeySetFetcher for Counting {
        async fn fetch(&self, _url: &str) -> Result<FetchedKeySet, FetchError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(FetchedKeySet {
                body: self.body.lock().expect("lock").clone(),
                max_age: self.max_age,
            })
        }
    }

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    fn jwks(kid: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"keys": [
            {"kty": "RSA", "kid": kid, "n": N, "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "x", "y": "y"},
        ]}))
        .expect("json")
    }

    fn fetcher(kid: &str, max_age: Option<i64>) -> Arc<Counting> {
        Arc::new(Counting {
            body: Mutex::new(jwks(kid)),
            calls: AtomicUsize::new(0),
            max_age,
        })
    }

    #[tokio::test]
    async fn a_cached_key_is_served_without_fetching_again() {
        let f = fetcher("k1", None);
        let keys = PlatformKeys::new(f.clone());
        keys.key("u", "k1", 0).await.expect("found");
        keys.key("u", "k1", DEFAULT_MAX_AGE - 1)
            .await
            .expect("found");
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
        keys.key("u", "k1", DEFAULT_MAX_AGE).await.expect("found");
        assert_eq!(
            f.calls.load(Ordering::SeqCst),
            2,
            "stale keys are refetched"
        );
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_once_then_is_remembered_for_30_seconds() {
        let f = fetcher("k1", Some(3600));
        let keys = PlatformKeys::new(f.clone());
        keys.key("u", "k1", 0).await.expect("found");
        for _ in 0..5 {
            assert!(matches!(
                keys.key("u", "k2", 1).await,
                Err(KeyError::UnknownKid)
            ));
        }
        assert_eq!(f.calls.load(Ordering::SeqCst), 2, "one refetch for a burst");
        // The platform rotates: after the miss expires, the new kid is found.
        *f.body.lock().expect("lock") = jwks("k2");
        keys.key("u", "k2", 1 + MISS_TTL)
            .await
            .expect("rotated key found");
        assert_eq!(f.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn max_age_is_capped_at_a_day() {
        let f = fetcher("k1", Some(10 * MAX_MAX_AGE));
        let keys = PlatformKeys::new(f.clone());
        keys.key("u", "k1", 0).await.expect("found");
        keys.key("u", "k1", MAX_MAX_AGE).await.expect("found");
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
    }

    #[derive(Default)]
    struct Shared(Mutex<HashMap<String, SharedKeySet>>);

    #[async_trait]
    impl KeySetCache for Shared {
        async fn get(&self, url: &str, now: i64) -> Option<SharedKeySet> {
            self.0
                .lock()
                .expect("lock")
                .get(url)
                .filter(|s| s.fresh_until > now)
                .cloned()
        }
        async fn put(&self, url: &str, set: SharedKeySet) {
            self.0.lock().expect("lock").insert(url.to_string(), set);
        }
    }

    #[tokio::test]
    async fn a_cold_instance_uses_keys_another_instance_fetched() {
        let f = fetcher("k1", Some(600));
        let shared = Arc::new(Shared::default());
        let first = PlatformKeys::new(f.clone()).with_shared_cache(shared.clone());
        first.key("u", "k1", 0).await.expect("found");
        assert_eq!(f.calls.load(Ordering::SeqCst), 1);
        let second = PlatformKeys::new(f.clone()).with_shared_cache(shared.clone());
        second
            .key("u", "k1", 10)
            .await
            .expect("found in the shared cache");
        assert_eq!(f.calls.load(Ordering::SeqCst), 1, "no second fetch");
        // An unknown kid still reaches the platform, and a stale shared copy is not used.
        assert!(matches!(
            second.key("u", "k9", 11).await,
            Err(KeyError::UnknownKid)
        ));
        assert_eq!(f.calls.load(Ordering::SeqCst), 2);
        let third = PlatformKeys::new(f.clone()).with_shared_cache(shared);
        third.key("u", "k1", 700).await.expect("refetched");
        assert_eq!(f.calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn jwks_without_alg_is_taken_as_rs256_and_other_keys_are_skipped() {
        let keys = parse_jwks(&jwks("k1")).expect("parsed");
        assert_eq!(keys.len(), 1);
        assert!(keys.contains_key("k1"));
        assert!(parse_jwks(b"{}").is_err());
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(max_age_of("public, max-age=600"), Some(600));
        assert_eq!(max_age_of("no-cache"), None);
    }
}
