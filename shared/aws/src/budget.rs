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

/// The timeouts of every DynamoDB and KMS client.
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(CALL_TIMEOUT)
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
}
