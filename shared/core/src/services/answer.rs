//! Reading platforms' answers: what a status means, the bounded body excerpt an error
//! carries (never a token), `Retry-After`, and JSON bodies that may be anything.

use crate::services::outbound::{OutboundError, OutboundResponse};
use crate::services::ServiceError;
use serde_json::Value;

/// Longest body excerpt in a [`ServiceError::PlatformRejected`], in bytes.
pub const EXCERPT_MAX: usize = 300;
/// Longest `Retry-After` honoured, in seconds (a day; longer is read as a day).
pub const RETRY_AFTER_MAX: u64 = 86_400;

/// The error for a call that got no usable answer.
pub fn unanswered(error: OutboundError) -> ServiceError {
    match error {
        OutboundError::Timeout => ServiceError::PlatformTimeout,
        OutboundError::Unreachable(reason) => ServiceError::PlatformUnreachable(reason),
        OutboundError::UrlRefused(reason) => ServiceError::PlatformUnreachable(format!(
            "the URL is not one the tool calls: {reason}"
        )),
        OutboundError::TooLarge(cap) => ServiceError::PlatformAnswerInvalid(format!(
            "the answer is larger than {} KiB",
            cap / 1024
        )),
    }
}

/// The error for a non-2xx answer: `429` is rate limiting (with its `Retry-After`),
/// anything else (3xx included: redirects are not followed) a rejection carrying the
/// status and a short excerpt of the body with `secrets` and JWT-shaped strings
/// blanked out. `now` (epoch seconds) reads an HTTP-date `Retry-After`.
pub fn rejection(response: &OutboundResponse, now: i64, secrets: &[&str]) -> ServiceError {
    if response.status == 429 {
        return ServiceError::PlatformRateLimited {
            retry_after: response
                .header("retry-after")
                .and_then(|v| retry_after(v, now)),
        };
    }
    ServiceError::PlatformRejected {
        status: response.status,
        excerpt: excerpt(&response.body, secrets),
    }
}

/// `response` if its status is 2xx, else its [`rejection`].
pub fn success(
    response: OutboundResponse,
    now: i64,
    secrets: &[&str],
) -> Result<OutboundResponse, ServiceError> {
    if (200..300).contains(&response.status) {
        Ok(response)
    } else {
        Err(rejection(&response, now, secrets))
    }
}

/// Seconds to wait from a `Retry-After` value: delay-seconds or an HTTP-date.
pub fn retry_after(value: &str, now: i64) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.min(RETRY_AFTER_MAX));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at = at
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs()
        .try_into()
        .unwrap_or(i64::MAX);
    let wait = at.saturating_sub(now).max(0);
    Some(u64::try_from(wait).unwrap_or(0).min(RETRY_AFTER_MAX))
}

/// A short, single-line, UTF-8-safe excerpt of `body`: each of `secrets` and every
/// JWT-shaped string blanked out, control characters and runs of spaces collapsed, at
/// most [`EXCERPT_MAX`] bytes (cut on a character boundary, marked with `…`).
pub fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    // Enough of the body for the excerpt, even after collapsing whitespace.
    let head = &body[..body.len().min(EXCERPT_MAX * 8)];
    let mut text = String::from_utf8_lossy(head).into_owned();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "[redacted]");
    }
    let text = redact_jwts(&text);
    let mut out = String::new();
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    if out.len() > EXCERPT_MAX || body.len() > head.len() {
        let mut cut = out.len().min(EXCERPT_MAX - '…'.len_utf8());
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// `text` with every JWT-shaped run (`eyJ…` with two dots) replaced by `[redacted]`.
fn redact_jwts(text: &str) -> String {
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("eyJ") {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| !is_part(c))
            .unwrap_or(candidate.len());
        let run = &candidate[..end];
        if run.matches('.').count() >= 2 {
            out.push_str("[redacted]");
        } else {
            out.push_str(run);
        }
        rest = &candidate[end..];
    }
    out.push_str(rest);
    out
}

/// The JSON of a 2xx answer, or [`ServiceError::PlatformAnswerInvalid`] naming `what`.
/// A UTF-8 byte order mark is skipped; the media type is not checked (platforms send
/// `application/json` as often as the service's own type), the shape is.
pub fn json(response: &OutboundResponse, what: &str) -> Result<Value, ServiceError> {
    let body = response
        .body
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(&response.body);
    serde_json::from_slice(body).map_err(|_| {
        let kind = response
            .header("content-type")
            .map(|t| t.split(';').next().unwrap_or(t).trim().to_string())
            .filter(|t| !t.is_empty() && t.len() <= 100)
            .unwrap_or_else(|| "no content type".into());
        ServiceError::PlatformAnswerInvalid(format!("{what} is not JSON ({kind})"))
    })
}

/// A JSON value that should be a string id: strings as they are, integers as their
/// decimal form (platforms differ), anything else `None`.
pub fn id_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A JSON value that should be a number: numbers, and numeric strings (`"100"`).
pub fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> OutboundResponse {
        OutboundResponse {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn excerpts_are_short_single_line_utf8_safe_and_never_show_tokens() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        let body = format!(
            "{{\"error\": \"bad\",\n\t\"assertion\": \"{jwt}\", \"token\": \"opaque-token-123456\"}}"
        );
        let text = excerpt(body.as_bytes(), &["opaque-token-123456"]);
        assert_eq!(
            text,
            r#"{"error": "bad", "assertion": "[redacted]", "token": "[redacted]"}"#
        );
        let long = "é".repeat(1000);
        let text = excerpt(long.as_bytes(), &[]);
        assert!(text.len() <= EXCERPT_MAX, "{}", text.len());
        assert!(text.ends_with('…'));
        let invalid = excerpt(&[0xff, 0xfe, b'o', b'k'], &[]);
        assert_eq!(invalid, "\u{fffd}\u{fffd}ok");
        let huge = vec![b'a'; 5_000_000];
        assert!(excerpt(&huge, &[]).len() <= EXCERPT_MAX);
    }

    #[test]
    fn statuses_map_to_their_errors() {
        assert!(matches!(
            success(response(500, &[], b"<h1>Oops</h1>"), 0, &[]),
            Err(ServiceError::PlatformRejected { status: 500, ref excerpt }) if excerpt == "<h1>Oops</h1>"
        ));
        assert!(matches!(
            success(response(302, &[("location", "https://x")], b""), 0, &[]),
            Err(ServiceError::PlatformRejected { status: 302, .. })
        ));
        assert!(matches!(
            success(response(429, &[("Retry-After", "17")], b""), 0, &[]),
            Err(ServiceError::PlatformRateLimited {
                retry_after: Some(17)
            })
        ));
        assert!(matches!(
            success(response(429, &[], b""), 0, &[]),
            Err(ServiceError::PlatformRateLimited { retry_after: None })
        ));
        assert!(success(response(204, &[], b""), 0, &[]).is_ok());
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(retry_after(" 120 ", 0), Some(120));
        assert_eq!(retry_after("99999999", 0), Some(RETRY_AFTER_MAX));
        // Sun, 06 Nov 1994 08:49:37 GMT = 784111777
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_700),
            Some(77)
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784_111_800),
            Some(0)
        );
        assert_eq!(retry_after("soon", 0), None);
        assert_eq!(retry_after("-5", 0), None);
    }

    #[test]
    fn bodies_that_are_not_json_are_invalid_answers() {
        let html = response(
            200,
            &[("Content-Type", "text/html; charset=utf-8")],
            b"<html>",
        );
        let err = json(&html, "the line item").expect_err("not JSON");
        assert_eq!(
            err.to_string(),
            "the platform's answer cannot be read: the line item is not JSON (text/html)"
        );
        let bom = response(200, &[], b"\xEF\xBB\xBF{\"a\":1}");
        assert_eq!(json(&bom, "x").expect("json")["a"], 1);
    }

    #[test]
    fn lenient_ids_and_numbers() {
        use serde_json::json;
        assert_eq!(id_string(Some(&json!("a"))), Some("a".into()));
        assert_eq!(id_string(Some(&json!(42))), Some("42".into()));
        assert_eq!(id_string(Some(&json!(1.5))), None);
        assert_eq!(id_string(Some(&json!(null))), None);
        assert_eq!(number(Some(&json!(10))), Some(10.0));
        assert_eq!(number(Some(&json!(" 7.5"))), Some(7.5));
        assert_eq!(number(Some(&json!("NaN"))), None);
        assert_eq!(number(Some(&json!(true))), None);
    }
}
