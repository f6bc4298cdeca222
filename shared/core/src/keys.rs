//! Platform public keys: the [`KeySetFetcher`] port and the [`PlatformKeys`] cache.
//!
//! The rules, per JWKS URL and per instance (the README's "Platform keys"):
//! - **Lifetime**: `Cache-Control: max-age` less `Age` (default [`DEFAULT_MAX_AGE`],
//!   capped at [`MAX_MAX_AGE`]). `no-store`, `no-cache` and `max-age=0` are honoured:
//!   such a document is used only for [`MIN_FETCH_INTERVAL`] seconds by the instance
//!   that fetched it (the floor against bursts), never put in the shared cache (and
//!   a copy kept there from before is removed), never served stale.
//! - **Bounded fetches**: concurrent launches that need a fetch of one URL wait for
//!   one fetch and share its answer (single flight). A `kid` the last document does
//!   not list causes a refetch at most [`UNKNOWN_KID_REFETCHES`] times per
//!   [`UNKNOWN_KID_REFETCH_INTERVAL`] per URL, whatever the kids: nothing is
//!   remembered per kid, so attacker-chosen kids cost no memory, and a kid longer
//!   than [`MAX_KID_BYTES`] is refused without a lookup. After a failed fetch the URL
//!   is not tried again for [`MIN_FETCH_INTERVAL`].
//! - **Several keys under one kid** (RFC 7517 only says kids SHOULD differ): every one
//!   is returned, in document order, and the launch tries each.
//! - **Stale keys**: when a document is past its lifetime and the key endpoint is down
//!   (5xx, 408, 429, timeout, connection failure), its keys are still served for
//!   [`STALE_WINDOW`] past the lifetime, with a warning — never for a `no-store`,
//!   `no-cache`, `max-age=0` or `must-revalidate` document, and never after another
//!   kind of failure (404, a refused redirect, a document that is not a JWKS).

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
/// Shortest time a fetched document is used (`no-store`, `no-cache`, `max-age=0`:
/// the floor against bursts), and the wait before a failed fetch is tried again.
pub const MIN_FETCH_INTERVAL: i64 = 5;
/// Most refetches caused by a `kid` the document does not list, per URL and instance,
/// within [`UNKNOWN_KID_REFETCH_INTERVAL`], whatever the kids: two, so a platform that
/// rotates just after an unknown kid was tried is still followed at once.
pub const UNKNOWN_KID_REFETCHES: usize = 2;
/// The window of [`UNKNOWN_KID_REFETCHES`], seconds.
pub const UNKNOWN_KID_REFETCH_INTERVAL: i64 = 30;
/// How long past its lifetime a document is still served while the platform's key
/// endpoint is down.
pub const STALE_WINDOW: i64 = 3600;
/// Longest `kid` looked up; longer ones are unknown without a lookup.
pub const MAX_KID_BYTES: usize = 256;
/// Most key set URLs one instance keeps state for (registrations decide them, not
/// requests; the bound is a backstop).
pub const MAX_URLS: usize = 4096;
/// How long (seconds) a shared-cache read that found nothing spares the next read of
/// the same entry: long enough for the launch that made it.
const SHARED_ABSENT_FOR: i64 = 2;

/// The `Cache-Control` directives that decide how long a JWKS document is used.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// `no-store`.
    pub no_store: bool,
    /// `no-cache` without field names (with field names it only concerns headers).
    pub no_cache: bool,
    /// `max-age`: the smallest when sent several times, 0 when unreadable.
    pub max_age: Option<i64>,
    /// `must-revalidate`: never used past its lifetime.
    pub must_revalidate: bool,
}

impl CacheControl {
    /// Reads every `Cache-Control` header value given (a response may send several;
    /// they combine as one list). Directive names are case-insensitive; values may be
    /// quoted, and commas inside quotes do not split directives; unknown directives
    /// are ignored.
    pub fn parse<I, S>(values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut parsed = Self::default();
        for value in values {
            for (name, argument) in directives(value.as_ref()) {
                match name.as_str() {
                    "no-store" => parsed.no_store = true,
                    "no-cache" if argument.is_none() => parsed.no_cache = true,
                    "must-revalidate" => parsed.must_revalidate = true,
                    "max-age" => {
                        let seconds = argument
                            .as_deref()
                            .map(str::trim)
                            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                            // Digits beyond i64: as long as allowed (capped later).
                            .map(|v| v.parse::<i64>().unwrap_or(i64::MAX))
                            // Unreadable: taken as already stale (RFC 9111 §4.2.1).
                            .unwrap_or(0);
                        parsed.max_age = Some(parsed.max_age.map_or(seconds, |m| m.min(seconds)));
                    }
                    _ => {}
                }
            }
        }
        parsed
    }
}

/// Splits one header value into (lowercase name, unquoted argument) pairs.
fn directives(value: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        // Name, up to '=' or ','.
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        let mut argument = None;
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            let mut text = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                text.push(escaped);
                            }
                        }
                        c => text.push(c),
                    }
                }
                // Anything between the closing quote and the next comma is ignored.
                while chars.peek().is_some_and(|c| *c != ',') {
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    text.push(c);
                    chars.next();
                }
            }
            argument = Some(text.trim().to_string());
        }
        let name = name.trim().to_ascii_lowercase();
        if !name.is_empty() {
            out.push((name, argument));
        }
        if chars.next().is_none() {
            return out;
        }
    }
}

/// Reads `max-age` from a `Cache-Control` header value.
pub fn max_age_of(cache_control: &str) -> Option<i64> {
    CacheControl::parse([cache_control]).max_age
}

/// A JWKS document as fetched, with the caching the server asked for.
#[derive(Debug, Clone, Default)]
pub struct FetchedKeySet {
    /// The raw JSON body.
    pub body: Vec<u8>,
    /// The lifetime the server gave (`max-age` less `Age`), if any.
    pub max_age: Option<i64>,
    /// `no-store` or `no-cache`: not to be kept, shared or served stale.
    pub no_store: bool,
    /// `must-revalidate`: not to be served stale.
    pub must_revalidate: bool,
}

impl FetchedKeySet {
    /// A fetched document with its `Cache-Control` and `Age` headers.
    pub fn new(body: Vec<u8>, cache_control: &CacheControl, age: Option<i64>) -> Self {
        Self {
            body,
            max_age: cache_control
                .max_age
                .map(|m| m.saturating_sub(age.unwrap_or(0).max(0)).max(0)),
            no_store: cache_control.no_store || cache_control.no_cache,
            must_revalidate: cache_control.must_revalidate,
        }
    }

    /// Seconds the document is fresh for: 0 when it must not be kept.
    fn lifetime(&self) -> i64 {
        if self.no_store {
            0
        } else {
            self.max_age
                .unwrap_or(DEFAULT_MAX_AGE)
                .clamp(0, MAX_MAX_AGE)
        }
    }

    /// True when it may be put in the shared cache and served stale.
    fn keepable(&self) -> bool {
        self.lifetime() > 0
    }

    /// Until when it may be served stale, fetched at `now`; `None` when never.
    fn stale_until(&self, now: i64) -> Option<i64> {
        (self.keepable() && !self.must_revalidate).then(|| {
            now.saturating_add(self.lifetime())
                .saturating_add(STALE_WINDOW)
        })
    }
}

/// Fetching a platform's JWKS failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the platform's keys could not be fetched from {url}: {reason}")]
pub struct FetchError {
    /// The JWKS URL (without any user name or password).
    pub url: String,
    /// What went wrong (status, timeout, unreadable body).
    pub reason: String,
    /// The key endpoint is down or overloaded (5xx, 408, 429, timeout, connection
    /// failure) rather than wrong: keys past their lifetime may still be served.
    pub transient: bool,
}

impl FetchError {
    /// The endpoint answered, but not with usable keys (4xx, not a JWKS, too large,
    /// a refused redirect or URL).
    pub fn new(url: &str, reason: impl Into<String>) -> Self {
        Self {
            url: without_credentials(url),
            reason: reason.into(),
            transient: false,
        }
    }

    /// The endpoint is down or overloaded.
    pub fn transient(url: &str, reason: impl Into<String>) -> Self {
        Self {
            transient: true,
            ..Self::new(url, reason)
        }
    }
}

/// `url` without user name and password, for messages and logs.
fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.to_string(),
    }
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

/// The decoding keys of a JWKS, by `kid`; a kid listed several times has several
/// keys, in document order.
pub type KeysByKid = HashMap<String, Vec<Arc<DecodingKey>>>;

/// Parses a JWKS body into decoding keys by `kid`. Keys that are not RSA signing keys
/// for RS256 are skipped; a JWK without `alg` is taken as RS256 when `kty` is RSA.
pub fn parse_jwks(body: &[u8]) -> Result<KeysByKid, String> {
    let raw: RawJwks =
        serde_json::from_slice(body).map_err(|e| format!("not a JWKS document ({e})"))?;
    let mut keys = KeysByKid::new();
    for value in raw.keys {
        let Ok(jwk) = serde_json::from_value::<RawJwk>(value) else {
            continue;
        };
        let (Some(kid), Some(n), Some(e)) = (jwk.kid, jwk.n, jwk.e) else {
            continue;
        };
        if kid.len() > MAX_KID_BYTES
            || jwk.kty.as_deref() != Some("RSA")
            || !matches!(jwk.alg.as_deref(), None | Some("RS256"))
            || !matches!(jwk.use_.as_deref(), None | Some("sig"))
        {
            continue;
        }
        if let Ok(key) = DecodingKey::from_rsa_components(&n, &e) {
            keys.entry(kid).or_default().push(Arc::new(key));
        }
    }
    Ok(keys)
}

/// A JWKS document kept for every instance (DynamoDB on AWS), so a cold start can
/// verify a launch without fetching the platform's keys again. Only documents the
/// platform lets us keep (not `no-store`, `no-cache`, `max-age=0`) are ever put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedKeySet {
    /// The JWKS document as fetched.
    pub body: Vec<u8>,
    /// Until when it may be used without refetching, epoch seconds.
    pub fresh_until: i64,
    /// Until when it may still be used while the platform's key endpoint is down
    /// (`fresh_until` when never), epoch seconds; the adapter may drop it after.
    pub stale_until: i64,
}

/// Storage of fetched JWKS documents shared across instances. Optional: without it,
/// each instance fetches on its first launch.
#[async_trait]
pub trait KeySetCache: Send + Sync {
    /// The document kept for `url`, if still usable at `now` (`stale_until > now`:
    /// fresh, or within its stale window).
    async fn get(&self, url: &str, now: i64) -> Option<SharedKeySet>;
    /// Keeps a freshly fetched document. Failures are the adapter's to log: the
    /// launch goes on with the keys it has.
    async fn put(&self, url: &str, set: SharedKeySet);
    /// Drops the document kept for `url`: the platform now forbids keeping it.
    async fn forget(&self, url: &str);
}

/// A document in an instance's memory.
struct Doc {
    keys: KeysByKid,
    fresh_until: i64,
    /// Until when it may be served while the endpoint is down, if ever.
    stale_until: Option<i64>,
    /// It may be in the shared cache (it was put there or read from there).
    shareable: bool,
}

/// What an instance knows about one key set URL.
#[derive(Default)]
struct UrlState {
    doc: Option<Doc>,
    /// When this instance last fetched the URL (successfully or not).
    last_attempt: Option<i64>,
    /// When it last fetched it because of a kid the document did not list (at most
    /// [`UNKNOWN_KID_REFETCHES`] times, newest last).
    kid_refetches: Vec<i64>,
    /// The failure of that fetch, if it failed.
    last_error: Option<FetchError>,
    /// Counts fetches and shared-cache reads, so a waiter sees one happened.
    generation: u64,
    /// Held while fetching: one fetch per URL at a time.
    gate: Arc<tokio::sync::Mutex<()>>,
    /// This instance removed the URL's document from the shared cache and has not
    /// put one since.
    shared_cleared: bool,
    /// The shared cache was read a moment ago (with the registration, by a cold
    /// launch) and held nothing under this key, at this time: no need to ask again.
    shared_absent: Option<(String, i64)>,
}

/// What to do for one lookup, decided under the lock.
enum Decision {
    Found(Vec<Arc<DecodingKey>>),
    Stale(Vec<Arc<DecodingKey>>),
    Unknown,
    Failed(FetchError),
    Fetch {
        generation: u64,
        gate: Arc<tokio::sync::Mutex<()>>,
        try_shared: bool,
        /// Because of a kid the last document did not list.
        for_unknown_kid: bool,
    },
}

/// Platform keys cached per JWKS URL, shared by every launch of a warm instance.
pub struct PlatformKeys {
    fetcher: Arc<dyn KeySetFetcher>,
    shared: Option<Arc<dyn KeySetCache>>,
    urls: Mutex<HashMap<String, UrlState>>,
}

impl PlatformKeys {
    /// A cache in front of `fetcher`.
    pub fn new(fetcher: Arc<dyn KeySetFetcher>) -> Self {
        Self {
            fetcher,
            shared: None,
            urls: Mutex::new(HashMap::new()),
        }
    }

    /// Also keeps fetched documents in `shared`, and reads them from there on a cold
    /// start before fetching.
    pub fn with_shared_cache(mut self, shared: Arc<dyn KeySetCache>) -> Self {
        self.shared = Some(shared);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, UrlState>> {
        // A panic elsewhere while holding the lock leaves a consistent map behind.
        self.urls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of `url`, made room for when new.
    fn state<'a>(urls: &'a mut HashMap<String, UrlState>, url: &str, now: i64) -> &'a mut UrlState {
        if !urls.contains_key(url) && urls.len() >= MAX_URLS {
            urls.retain(|_, s| {
                s.doc
                    .as_ref()
                    .is_some_and(|d| d.fresh_until > now || d.stale_until.is_some_and(|u| u > now))
            });
            if urls.len() >= MAX_URLS {
                urls.clear();
            }
        }
        urls.entry(url.to_string()).or_default()
    }

    /// Every key published at `url` under `kid` (usually one; try each), fetching or
    /// refetching as the rules of this module allow.
    pub async fn keys(
        &self,
        url: &str,
        kid: &str,
        now: i64,
    ) -> Result<Vec<Arc<DecodingKey>>, KeyError> {
        self.keys_shared_as(url, url, kid, now).await
    }

    /// [`Self::keys`], keeping the document in the shared cache under `shared_key`
    /// (a launch uses its registration, so a cold instance can read the registration
    /// and its platform's keys in one store call).
    pub async fn keys_shared_as(
        &self,
        url: &str,
        shared_key: &str,
        kid: &str,
        now: i64,
    ) -> Result<Vec<Arc<DecodingKey>>, KeyError> {
        if kid.len() > MAX_KID_BYTES {
            return Err(KeyError::UnknownKid);
        }
        let (generation, gate, try_shared, for_unknown_kid) =
            match self.decide(url, shared_key, kid, now) {
                Decision::Fetch {
                    generation,
                    gate,
                    try_shared,
                    for_unknown_kid,
                } => (generation, gate, try_shared, for_unknown_kid),
                other => return finish(other),
            };
        // Single flight: whoever holds the gate fetches; the others wait, then use
        // what that fetch left behind.
        let _held = gate.lock().await;
        {
            let mut urls = self.lock();
            let state = Self::state(&mut urls, url, now);
            if state.generation != generation {
                // A fetch completed while this launch waited: its answer is this
                // launch's answer too, whatever it was.
                return finish(answer_from_last_fetch(state, kid, now));
            }
        }
        if try_shared {
            if let Some(found) = self.read_shared(url, shared_key, kid, now).await {
                return Ok(found);
            }
        }
        self.fetch(url, shared_key, kid, now, for_unknown_kid).await
    }

    /// Decides from memory alone.
    fn decide(&self, url: &str, shared_key: &str, kid: &str, now: i64) -> Decision {
        let mut urls = self.lock();
        let state = Self::state(&mut urls, url, now);
        let fresh = state.doc.as_ref().filter(|d| d.fresh_until > now);
        if let Some(keys) = fresh.and_then(|d| d.keys.get(kid)) {
            return Decision::Found(keys.clone());
        }
        let just_fetched = state
            .last_attempt
            .is_some_and(|t| now.saturating_sub(t) < MIN_FETCH_INTERVAL);
        if fresh.is_none() && just_fetched {
            // A fetch a moment ago left nothing fresh: it failed.
            return stale_or_failure(state, kid, now);
        }
        // Not listed by the last document (fresh or not): bounded whatever the kid.
        let for_unknown_kid = state
            .doc
            .as_ref()
            .is_some_and(|d| !d.keys.contains_key(kid));
        if for_unknown_kid {
            let recent = state
                .kid_refetches
                .iter()
                .filter(|t| now.saturating_sub(**t) < UNKNOWN_KID_REFETCH_INTERVAL)
                .count();
            if recent >= UNKNOWN_KID_REFETCHES {
                return Decision::Unknown;
            }
        }
        // Nothing fresh: another instance may have fetched it (never for a document
        // the platform forbade keeping). A fresh document without the kid: refetch.
        let known_absent = state.shared_absent.as_ref().is_some_and(|(key, at)| {
            key == shared_key && now.saturating_sub(*at) < SHARED_ABSENT_FOR
        });
        let try_shared = self.shared.is_some()
            && fresh.is_none()
            && !known_absent
            && state.doc.as_ref().is_none_or(|d| d.shareable);
        Decision::Fetch {
            generation: state.generation,
            gate: state.gate.clone(),
            try_shared,
            for_unknown_kid,
        }
    }

    /// A cold instance reads the shared cache before fetching; `Some` when it holds
    /// a fresh document with the kid.
    async fn read_shared(
        &self,
        url: &str,
        shared_key: &str,
        kid: &str,
        now: i64,
    ) -> Option<Vec<Arc<DecodingKey>>> {
        let shared = self.shared.as_ref()?;
        let set = shared.get(shared_key, now).await?;
        let keys = self.adopt(url, set, now)?;
        // Stale, or without the kid: the caller fetches (this instance has not yet).
        keys.get(kid).cloned()
    }

    /// Takes `set` (read from the shared cache) as the document of `url` unless this
    /// instance has one as new; returns its keys when it was taken and is fresh.
    fn adopt(&self, url: &str, set: SharedKeySet, now: i64) -> Option<KeysByKid> {
        if set.stale_until <= now {
            return None;
        }
        let keys = parse_jwks(&set.body).ok()?;
        let mut urls = self.lock();
        let state = Self::state(&mut urls, url, now);
        if state
            .doc
            .as_ref()
            .is_some_and(|d| d.fresh_until >= set.fresh_until)
        {
            // What this instance has is as new: fetch.
            return None;
        }
        state.generation += 1;
        state.doc = Some(Doc {
            keys: keys.clone(),
            fresh_until: set.fresh_until,
            stale_until: (set.stale_until > set.fresh_until).then_some(set.stale_until),
            shareable: true,
        });
        (set.fresh_until > now).then_some(keys)
    }

    /// Seeds this instance with a document of `url` another instance kept (read by a
    /// cold launch together with its registration), as if read from the shared cache.
    pub fn seed(&self, url: &str, set: SharedKeySet, now: i64) {
        let _ = self.adopt(url, set, now);
    }

    /// Notes that the shared cache held nothing for `url` under `shared_key` just now
    /// (a cold launch read it with the registration), so the launch fetches at once
    /// instead of reading the shared cache a second time.
    pub fn seed_absent(&self, url: &str, shared_key: &str, now: i64) {
        let mut urls = self.lock();
        Self::state(&mut urls, url, now).shared_absent = Some((shared_key.to_string(), now));
    }

    /// Fetches `url` (the caller holds its gate) and answers from the result.
    async fn fetch(
        &self,
        url: &str,
        shared_key: &str,
        kid: &str,
        now: i64,
        for_unknown_kid: bool,
    ) -> Result<Vec<Arc<DecodingKey>>, KeyError> {
        if for_unknown_kid {
            let mut urls = self.lock();
            let refetches = &mut Self::state(&mut urls, url, now).kid_refetches;
            refetches.push(now);
            if refetches.len() > UNKNOWN_KID_REFETCHES {
                refetches.remove(0);
            }
        }
        let fetched = self.fetcher.fetch(url).await.and_then(|fetched| {
            parse_jwks(&fetched.body)
                .map(|keys| (keys, fetched))
                .map_err(|reason| FetchError::new(url, reason))
        });
        let (keys, fetched) = match fetched {
            Ok(ok) => ok,
            Err(error) => {
                let mut urls = self.lock();
                let state = Self::state(&mut urls, url, now);
                state.generation += 1;
                state.last_attempt = Some(now);
                state.last_error = Some(error.clone());
                let decision = stale_or_failure(state, kid, now);
                if let (Decision::Stale(_), Some(doc)) = (&decision, &state.doc) {
                    tracing::warn!(
                        url = %error.url,
                        reason = %error.reason,
                        expired_at = doc.fresh_until,
                        served_until = doc.stale_until.unwrap_or(doc.fresh_until),
                        "the platform's key endpoint is down: serving its keys past their lifetime"
                    );
                }
                return finish(decision);
            }
        };
        let lifetime = fetched.lifetime();
        let keepable = fetched.keepable();
        let stale_until = fetched.stale_until(now);
        let found = keys.get(kid).cloned();
        let forget = {
            let mut urls = self.lock();
            let state = Self::state(&mut urls, url, now);
            state.generation += 1;
            state.last_attempt = Some(now);
            state.last_error = None;
            state.doc = Some(Doc {
                keys,
                fresh_until: now.saturating_add(lifetime.max(MIN_FETCH_INTERVAL)),
                stale_until,
                shareable: keepable,
            });
            let forget = !keepable && !state.shared_cleared;
            state.shared_cleared = !keepable;
            forget
        };
        if let Some(shared) = &self.shared {
            if keepable {
                let fresh_until = now.saturating_add(lifetime);
                let set = SharedKeySet {
                    body: fetched.body,
                    fresh_until,
                    stale_until: stale_until.unwrap_or(fresh_until),
                };
                shared.put(shared_key, set).await;
            } else if forget {
                // A copy kept from before the platform said no-store must not outlive it.
                shared.forget(shared_key).await;
            }
        }
        found.ok_or(KeyError::UnknownKid)
    }
}

/// After a failed fetch: the kid's keys from a document within its stale window when
/// the endpoint is down, else the failure.
fn stale_or_failure(state: &UrlState, kid: &str, now: i64) -> Decision {
    let Some(error) = &state.last_error else {
        return Decision::Unknown;
    };
    let stale = state
        .doc
        .as_ref()
        .filter(|d| error.transient && d.stale_until.is_some_and(|u| u > now))
        .and_then(|d| d.keys.get(kid));
    match stale {
        Some(keys) => Decision::Stale(keys.clone()),
        None => Decision::Failed(error.clone()),
    }
}

/// The answer of the fetch that just completed, for a launch that waited for it.
fn answer_from_last_fetch(state: &UrlState, kid: &str, now: i64) -> Decision {
    let keys = state.doc.as_ref().and_then(|d| d.keys.get(kid));
    let fresh = state.doc.as_ref().is_some_and(|d| d.fresh_until > now);
    match keys {
        Some(keys) if fresh || state.last_error.is_none() => Decision::Found(keys.clone()),
        _ if state.last_error.is_some() => stale_or_failure(state, kid, now),
        _ => Decision::Unknown,
    }
}

fn finish(decision: Decision) -> Result<Vec<Arc<DecodingKey>>, KeyError> {
    match decision {
        Decision::Found(keys) | Decision::Stale(keys) => Ok(keys),
        Decision::Unknown | Decision::Fetch { .. } => Err(KeyError::UnknownKid),
        Decision::Failed(error) => Err(KeyError::Fetch(error)),
    }
}

#[cfg(test)]
mod tests;
