//! How long each AWS call may take, and how often it is retried: set explicitly on
//! every client, so a launch answers well inside the function's 10 s timeout (and
//! API Gateway's 29 s), with a clean 503 when DynamoDB or KMS is slow or down.
//!
//! | call | per attempt | attempts | whole call (retries and backoff included) |
//! |---|---|---|---|
//! | DynamoDB (any operation) | 1 s | 3 | 2 s |
//! | KMS (`Sign`, `GetPublicKey`) | 1 s | 3 | 2 s |
//! | platform JWKS (lti-outbound) | 5 s (connect 3 s) | 1 | 5 s |
//!
//! A warm launch waits for one round trip (the state's consumption and the app
//! token's signature run concurrently): at most 2 s. A cold one reads its registration
//! first (2 s) and may fetch the platform's keys (5 s): at most 9 s. A
//! `TransactWriteItems` that DynamoDB cancels for a conflicting write is made again (at
//! most 4 times, [`crate::dynamo`]); each of those answers is immediate.

use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use std::time::Duration;

/// Connecting to the service endpoint.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One attempt of one call (DynamoDB answers in milliseconds; KMS in tens).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// One call, retries and backoff included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts of one call (the first included) on throttling, 5xx and timeouts.
pub const MAX_ATTEMPTS: u32 = 3;
/// First backoff between attempts (jittered, doubled each time).
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
/// Longest backoff between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_millis(400);

/// The timeouts of every DynamoDB and KMS client: the constants above, unless
/// `LTI_AWS_ATTEMPT_TIMEOUT_MS` / `LTI_AWS_CALL_TIMEOUT_MS` say otherwise (for a
/// local stand-in far slower than DynamoDB, such as moto under load; in production the
/// defaults are what keeps a launch inside the function's timeout).
pub fn timeouts() -> TimeoutConfig {
    timeouts_from(&|name| std::env::var(name).ok())
}

/// [`timeouts`] with the variables read from `var`.
pub fn timeouts_from(var: &dyn Fn(&str) -> Option<String>) -> TimeoutConfig {
    let millis = |name: &str, default: Duration| {
        var(name)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map_or(default, Duration::from_millis)
    };
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(millis("LTI_AWS_ATTEMPT_TIMEOUT_MS", ATTEMPT_TIMEOUT))
        .operation_timeout(millis("LTI_AWS_CALL_TIMEOUT_MS", CALL_TIMEOUT))
        .build()
}

/// The retries of every DynamoDB and KMS client: the SDK's standard mode (throttling,
/// transient and timeout errors; a client error such as a failed condition or a
/// disabled key is never retried).
pub fn retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cold_launch_fits_in_the_function_timeout() {
        // Registration read, platform keys, then consumption ∥ signature.
        let jwks = Duration::from_secs(5);
        let cold = CALL_TIMEOUT + jwks + CALL_TIMEOUT;
        assert!(cold < Duration::from_secs(10), "{cold:?}");
        assert!(ATTEMPT_TIMEOUT * MAX_ATTEMPTS + MAX_BACKOFF * 2 >= CALL_TIMEOUT);
    }

    #[test]
    fn the_defaults_hold_unless_a_variable_names_a_positive_number_of_milliseconds() {
        let none = timeouts_from(&|_| None);
        assert_eq!(none.operation_timeout(), Some(CALL_TIMEOUT));
        assert_eq!(none.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        let set = timeouts_from(&|name| match name {
            "LTI_AWS_CALL_TIMEOUT_MS" => Some("10000".into()),
            "LTI_AWS_ATTEMPT_TIMEOUT_MS" => Some("0".into()),
            _ => None,
        });
        assert_eq!(set.operation_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(set.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
    }
}
