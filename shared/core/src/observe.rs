//! What one request did, for its request log line and metrics: the registration it
//! concerned and the timed calls it made to platforms and to the signing key.
//!
//! The HTTP layer runs each request inside [`observed`]; the adapters that call out
//! ([`record_platform_call`], [`record_key_call`]) and the code that resolves a
//! registration ([`note_registration`], [`note_claimed`]) add to it from wherever they
//! run in that request's task. Outside [`observed`] (unit tests, tools) every
//! `record_*`/`note_*` call is a no-op.
//!
//! Only bounded values are kept: identifiers are cut to [`MAX_LOGGED_ID_CHARS`], and a
//! request keeps at most [`MAX_CALLS`] calls of each kind.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Longest issuer or client_id kept for the log line (characters); longer claimed
/// values are cut (a refused token may carry anything).
pub const MAX_LOGGED_ID_CHARS: usize = 256;

/// Most calls of one kind a request keeps (a roster read of many pages stays bounded).
pub const MAX_CALLS: usize = 100;

/// One call to a platform (key set, token endpoint, AGS, NRPS, registration).
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformCall {
    /// Milliseconds from sending the request to the end of the answer's body.
    pub latency_ms: f64,
    /// False when the platform did not answer usefully: no connection, a timeout, an
    /// answer too large or broken off, or HTTP 5xx, 408 or 429. A 4xx answer is an
    /// answer (the platform is up); the caller decides what it means.
    pub ok: bool,
}

/// One call to the signing key (KMS `Sign` or `GetPublicKey`).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyCall {
    /// `Sign` or `GetPublicKey`.
    pub operation: &'static str,
    /// Milliseconds, retries included.
    pub latency_ms: f64,
    /// The call ended in a throttling error (after the SDK's retries).
    pub throttled: bool,
    /// The call failed (for any reason, throttling included).
    pub failed: bool,
}

/// What a request did, gathered while it ran.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestFacts {
    /// The issuer the request concerned: a known registration's, else what the
    /// request claimed (see [`RequestFacts::registration_known`]).
    pub issuer: Option<String>,
    /// The client_id, same rules as `issuer`.
    pub client_id: Option<String>,
    /// True when `issuer`/`client_id` are those of a stored registration (not only
    /// what an unverified request named): only then may they label metrics.
    pub registration_known: bool,
    pub platform_calls: Vec<PlatformCall>,
    pub key_calls: Vec<KeyCall>,
}

tokio::task_local! {
    static FACTS: RefCell<RequestFacts>;
}

/// Runs `request` and returns its output with what it recorded.
pub async fn observed<F: Future>(request: F) -> (F::Output, RequestFacts) {
    FACTS
        .scope(RefCell::new(RequestFacts::default()), async move {
            let output = request.await;
            let facts = FACTS.with(|facts| facts.take());
            (output, facts)
        })
        .await
}

fn with_facts(update: impl FnOnce(&mut RequestFacts)) {
    // Outside `observed` there is nothing to record into.
    let _ = FACTS.try_with(|facts| update(&mut facts.borrow_mut()));
}

fn bounded(value: &str) -> String {
    value.chars().take(MAX_LOGGED_ID_CHARS).collect()
}

/// The request concerns the stored registration `issuer` / `client_id`.
pub fn note_registration(issuer: &str, client_id: &str) {
    with_facts(|facts| {
        facts.issuer = Some(bounded(issuer));
        facts.client_id = Some(bounded(client_id));
        facts.registration_known = true;
    });
}

/// The request names `issuer` / `client_id` (unverified): kept for the log line unless
/// a known registration was already noted.
pub fn note_claimed(issuer: Option<&str>, client_id: Option<&str>) {
    with_facts(|facts| {
        if facts.registration_known {
            return;
        }
        if let Some(issuer) = issuer.filter(|i| !i.is_empty()) {
            facts.issuer = Some(bounded(issuer));
        }
        if let Some(client_id) = client_id.filter(|c| !c.is_empty()) {
            facts.client_id = Some(bounded(client_id));
        }
    });
}

/// A call to a platform took `elapsed`; `ok` as in [`PlatformCall::ok`].
pub fn record_platform_call(elapsed: Duration, ok: bool) {
    with_facts(|facts| {
        if facts.platform_calls.len() < MAX_CALLS {
            facts.platform_calls.push(PlatformCall {
                latency_ms: millis(elapsed),
                ok,
            });
        }
    });
}

/// A call to the signing key took `elapsed`.
pub fn record_key_call(operation: &'static str, elapsed: Duration, failed: bool, throttled: bool) {
    with_facts(|facts| {
        if facts.key_calls.len() < MAX_CALLS {
            facts.key_calls.push(KeyCall {
                operation,
                latency_ms: millis(elapsed),
                throttled,
                failed,
            });
        }
    });
}

/// `elapsed` in milliseconds, to the microsecond.
pub fn millis(elapsed: Duration) -> f64 {
    (elapsed.as_micros() as f64) / 1000.0
}

static WARMED: AtomicBool = AtomicBool::new(false);

/// True for the first request this process serves (a Lambda cold start), false after.
pub fn cold_start() -> bool {
    !WARMED.swap(true, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_keeps_what_it_recorded_and_nothing_leaks_outside() {
        // Outside a request: no-ops, no panic.
        record_platform_call(Duration::from_millis(5), true);
        note_registration("https://outside.example", "c");

        let ((), facts) = observed(async {
            note_claimed(Some("https://claimed.example"), Some("claimed-client"));
            note_registration("https://lms.example", "client-1");
            // A later claim does not replace the known registration.
            note_claimed(Some("https://other.example"), None);
            let ((), ()) = tokio::join!(
                async { record_platform_call(Duration::from_micros(12_500), true) },
                async { record_key_call("Sign", Duration::from_millis(8), false, false) },
            );
            record_platform_call(Duration::from_millis(3), false);
        })
        .await;
        assert_eq!(facts.issuer.as_deref(), Some("https://lms.example"));
        assert_eq!(facts.client_id.as_deref(), Some("client-1"));
        assert!(facts.registration_known);
        assert_eq!(
            facts.platform_calls,
            vec![
                PlatformCall {
                    latency_ms: 12.5,
                    ok: true
                },
                PlatformCall {
                    latency_ms: 3.0,
                    ok: false
                }
            ]
        );
        assert_eq!(facts.key_calls.len(), 1);
        assert_eq!(facts.key_calls[0].operation, "Sign");

        // The next request starts empty.
        let ((), next) = observed(async {}).await;
        assert_eq!(next, RequestFacts::default());
    }

    #[tokio::test]
    async fn claimed_values_are_bounded_and_calls_capped() {
        let long = "x".repeat(10_000);
        let ((), facts) = observed(async {
            note_claimed(Some(&long), Some(""));
            for _ in 0..(MAX_CALLS + 50) {
                record_platform_call(Duration::from_millis(1), true);
            }
        })
        .await;
        assert_eq!(
            facts.issuer.as_deref().map(str::len),
            Some(MAX_LOGGED_ID_CHARS)
        );
        assert_eq!(facts.client_id, None);
        assert!(!facts.registration_known);
        assert_eq!(facts.platform_calls.len(), MAX_CALLS);
    }
}
