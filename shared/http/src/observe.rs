//! One log line per request, with the request's metrics in CloudWatch's Embedded
//! Metric Format (EMF).
//!
//! [`serve`] runs a handler inside [`lti_core::observe::observed`] and then writes one
//! JSON line: request id, route (method and path, never the query: platforms put
//! registration tokens there), status, error code, latency, issuer, client_id and
//! whether this was the process's first request (a cold start). A refusal or failure
//! carries its code and internal detail (never a token: errors hold none). Level
//! `INFO` for answers below 500, `ERROR` for 5xx. On Lambda the same line is an EMF
//! document, so CloudWatch turns it into metrics without an API call:
//!
//! | metric | unit | dimensions | when |
//! |---|---|---|---|
//! | `Requests`, `ServerErrors` (0/1) | Count | `Function` | every request |
//! | `Latency` | Milliseconds | `Function` | every request |
//! | `Launches` | Count | none; `Outcome` (`OK`, the error code, or `STORAGE_READ` for the page that reads the platform's storage) | launch function |
//! | `PlatformCalls`, `PlatformCallFailures` | Count | none; `Platform` (registration issuer) | requests that called a platform |
//! | `PlatformCallLatency` | Milliseconds | none; `Platform` | same |
//! | `KmsLatency` | Milliseconds | none | requests that called KMS |
//! | `KmsCalls`, `KmsThrottles`, `KmsFailures` | Count | none | same |
//!
//! `Platform` is only ever a stored registration's issuer (cut to 1,024 ASCII
//! characters), never a value a request merely claimed: an unauthenticated caller
//! cannot create metrics. Platform calls of a request with no known registration
//! (a refused Dynamic Registration) are counted under `Platform` = `unregistered`.

use crate::{request_id, HttpRequest, HttpResponse};
use lti_core::observe::{observed, RequestFacts};
use serde_json::{json, Map, Value};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The error a response answered with, left in its extensions by
/// [`crate::respond`] for the request line.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub code: &'static str,
    /// The internal detail (the error's `Display`): for operators, never shown to users.
    pub detail: String,
}

/// What an answer that is neither a refusal nor the end of its flow stands for, in
/// the launch function's `Outcome` dimension (e.g. the page that reads the platform's
/// storage before the launch is posted again): such an answer is not counted as a
/// completed launch (`OK`).
#[derive(Debug, Clone, Copy)]
pub struct Outcome(pub &'static str);

/// The X-Ray trace id of a Lambda invocation (its `Root=` part), when tracing is on.
#[derive(Debug, Clone)]
pub struct TraceId(pub String);

/// Where request lines go.
#[derive(Debug, Clone)]
pub enum RequestLog {
    /// One JSON line with EMF metrics on standard output (Lambda: CloudWatch Logs).
    Emf {
        /// The function's name in metrics and logs (`login`, `launch`, …).
        function: &'static str,
        /// The CloudWatch namespace of the metrics.
        namespace: String,
    },
    /// A `tracing` event at INFO (ERROR for 5xx), without metrics: the dev server.
    Tracing,
    /// The EMF documents kept in memory (tests).
    Memory {
        function: &'static str,
        lines: Arc<Mutex<Vec<Value>>>,
    },
}

/// Default CloudWatch namespace when `LTI_METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "lti-lambda";

/// Longest path kept in a line (characters).
const MAX_PATH_CHARS: usize = 200;

impl RequestLog {
    /// The Lambda line for `function`, in `LTI_METRICS_NAMESPACE` (default
    /// [`DEFAULT_NAMESPACE`]).
    pub fn emf_from_env(function: &'static str, namespace: Option<String>) -> Self {
        RequestLog::Emf {
            function,
            namespace: namespace
                .filter(|n| valid_namespace(n))
                .unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
        }
    }
}

/// CloudWatch namespaces: 1–255 of `[A-Za-z0-9.\-_/#:]`, not starting with `AWS/`.
fn valid_namespace(namespace: &str) -> bool {
    !namespace.is_empty()
        && namespace.len() <= 255
        && !namespace.starts_with("AWS/")
        && namespace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c))
}

/// Answers `request` with `handle` and writes its line to `log`.
pub async fn serve<F, Fut>(log: &RequestLog, request: HttpRequest, handle: F) -> HttpResponse
where
    F: FnOnce(HttpRequest) -> Fut,
    Fut: Future<Output = HttpResponse>,
{
    let started = Instant::now();
    let cold_start = lti_core::observe::cold_start();
    let summary = RequestSummary::of(&request, cold_start);
    let (response, facts) = observed(handle(request)).await;
    let latency_ms = lti_core::observe::millis(started.elapsed());
    let line = summary.finish(&response, &facts, latency_ms);
    match log {
        RequestLog::Emf {
            function,
            namespace,
        } => {
            let document = emf_document(&line, &facts, function, namespace, now_ms());
            write_stdout(&document);
        }
        RequestLog::Tracing => log_with_tracing(&line),
        RequestLog::Memory { function, lines } => {
            let document = emf_document(&line, &facts, function, DEFAULT_NAMESPACE, now_ms());
            if let Ok(mut lines) = lines.lock() {
                lines.push(document);
            }
        }
    }
    response
}

/// What the line says of the request before it is answered.
struct RequestSummary {
    request_id: String,
    route: String,
    cold_start: bool,
    trace_id: Option<String>,
}

/// The request line, before metrics are added.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestLine {
    pub request_id: String,
    pub route: String,
    pub status: u16,
    pub code: Option<&'static str>,
    /// See [`Outcome`].
    pub outcome: Option<&'static str>,
    pub detail: Option<String>,
    pub latency_ms: f64,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub cold_start: bool,
    pub trace_id: Option<String>,
}

impl RequestSummary {
    fn of(request: &HttpRequest, cold_start: bool) -> Self {
        let path: String = request.uri().path().chars().take(MAX_PATH_CHARS).collect();
        Self {
            request_id: request_id(request),
            route: format!("{} {path}", request.method()),
            cold_start,
            trace_id: request.extensions().get::<TraceId>().map(|t| t.0.clone()),
        }
    }

    fn finish(self, response: &HttpResponse, facts: &RequestFacts, latency_ms: f64) -> RequestLine {
        let refusal = response.extensions().get::<Refusal>();
        RequestLine {
            request_id: self.request_id,
            route: self.route,
            status: response.status().as_u16(),
            code: refusal.map(|r| r.code),
            outcome: response.extensions().get::<Outcome>().map(|o| o.0),
            detail: refusal.map(|r| r.detail.clone()),
            latency_ms: round3(latency_ms),
            issuer: facts.issuer.clone(),
            client_id: facts.client_id.clone(),
            cold_start: self.cold_start,
            trace_id: self.trace_id,
        }
    }
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

impl RequestLine {
    fn level(&self) -> &'static str {
        if self.status >= 500 {
            "ERROR"
        } else {
            "INFO"
        }
    }

    /// The line's own fields (no metrics), as JSON members.
    fn fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("level".into(), json!(self.level()));
        fields.insert("message".into(), json!("request"));
        fields.insert("request_id".into(), json!(self.request_id));
        fields.insert("route".into(), json!(self.route));
        fields.insert("status".into(), json!(self.status));
        if let Some(code) = self.code {
            fields.insert("code".into(), json!(code));
        }
        if let Some(outcome) = self.outcome {
            fields.insert("outcome".into(), json!(outcome));
        }
        fields.insert("latency_ms".into(), json!(self.latency_ms));
        if let Some(issuer) = &self.issuer {
            fields.insert("issuer".into(), json!(issuer));
        }
        if let Some(client_id) = &self.client_id {
            fields.insert("client_id".into(), json!(client_id));
        }
        fields.insert("cold_start".into(), json!(self.cold_start));
        if let Some(trace_id) = &self.trace_id {
            fields.insert("trace_id".into(), json!(trace_id));
        }
        if let Some(detail) = &self.detail {
            fields.insert("detail".into(), json!(detail));
        }
        fields
    }
}

/// The `Platform` dimension's value for `facts`: a stored registration's issuer, as
/// CloudWatch accepts dimension values (1–1,024 ASCII characters, no control
/// characters).
fn platform_dimension(facts: &RequestFacts) -> String {
    match (&facts.issuer, facts.registration_known) {
        (Some(issuer), true) => {
            let cleaned: String = issuer
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(1024)
                .collect();
            if cleaned.is_empty() {
                "unregistered".into()
            } else {
                cleaned
            }
        }
        _ => "unregistered".into(),
    }
}

fn metric(name: &str, unit: &str) -> Value {
    json!({ "Name": name, "Unit": unit })
}

/// The request line as an EMF document (one JSON object; see the module docs).
pub fn emf_document(
    line: &RequestLine,
    facts: &RequestFacts,
    function: &str,
    namespace: &str,
    timestamp_ms: u64,
) -> Value {
    let mut document = line.fields();
    document.insert("function".into(), json!(function));
    let mut directives = vec![json!({
        "Namespace": namespace,
        "Dimensions": [["Function"]],
        "Metrics": [metric("Requests", "Count"), metric("ServerErrors", "Count"), metric("Latency", "Milliseconds")],
    })];
    document.insert("Function".into(), json!(function));
    document.insert("Requests".into(), json!(1));
    document.insert("ServerErrors".into(), json!(u8::from(line.status >= 500)));
    document.insert("Latency".into(), json!(line.latency_ms));

    if function == "launch" {
        directives.push(json!({
            "Namespace": namespace,
            "Dimensions": [[], ["Outcome"]],
            "Metrics": [metric("Launches", "Count")],
        }));
        let outcome = match (line.code, line.outcome) {
            (Some(code), _) => code,
            (None, Some(outcome)) => outcome,
            (None, None) if line.status < 400 => "OK",
            (None, None) => "HTTP_ERROR",
        };
        document.insert("Outcome".into(), json!(outcome));
        document.insert("Launches".into(), json!(1));
    }

    if !facts.platform_calls.is_empty() {
        directives.push(json!({
            "Namespace": namespace,
            "Dimensions": [[], ["Platform"]],
            "Metrics": [
                metric("PlatformCalls", "Count"),
                metric("PlatformCallFailures", "Count"),
                metric("PlatformCallLatency", "Milliseconds"),
            ],
        }));
        document.insert("Platform".into(), json!(platform_dimension(facts)));
        document.insert("PlatformCalls".into(), json!(facts.platform_calls.len()));
        document.insert(
            "PlatformCallFailures".into(),
            json!(facts.platform_calls.iter().filter(|c| !c.ok).count()),
        );
        document.insert(
            "PlatformCallLatency".into(),
            json!(facts
                .platform_calls
                .iter()
                .map(|c| round3(c.latency_ms))
                .collect::<Vec<_>>()),
        );
    }

    if !facts.key_calls.is_empty() {
        directives.push(json!({
            "Namespace": namespace,
            "Dimensions": [[]],
            "Metrics": [
                metric("KmsCalls", "Count"),
                metric("KmsFailures", "Count"),
                metric("KmsThrottles", "Count"),
                metric("KmsLatency", "Milliseconds"),
            ],
        }));
        document.insert("KmsCalls".into(), json!(facts.key_calls.len()));
        document.insert(
            "KmsFailures".into(),
            json!(facts.key_calls.iter().filter(|c| c.failed).count()),
        );
        document.insert(
            "KmsThrottles".into(),
            json!(facts.key_calls.iter().filter(|c| c.throttled).count()),
        );
        document.insert(
            "KmsLatency".into(),
            json!(facts
                .key_calls
                .iter()
                .map(|c| round3(c.latency_ms))
                .collect::<Vec<_>>()),
        );
    }

    document.insert(
        "_aws".into(),
        json!({ "Timestamp": timestamp_ms, "CloudWatchMetrics": directives }),
    );
    Value::Object(document)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn write_stdout(document: &Value) {
    use std::io::Write;
    // One write of the whole line, so lines of concurrent requests never interleave.
    let mut line = document.to_string();
    line.push('\n');
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

fn log_with_tracing(line: &RequestLine) {
    // Absent fields (`None`) are left out of the line.
    let code = line.code;
    let outcome = line.outcome;
    let issuer = line.issuer.as_deref();
    let client_id = line.client_id.as_deref();
    let detail = line.detail.as_deref();
    if line.status >= 500 {
        tracing::error!(target: "request", request_id = %line.request_id, route = %line.route, status = line.status, code, outcome, latency_ms = line.latency_ms, issuer, client_id, cold_start = line.cold_start, detail, "request");
    } else {
        tracing::info!(target: "request", request_id = %line.request_id, route = %line.route, status = line.status, code, outcome, latency_ms = line.latency_ms, issuer, client_id, cold_start = line.cold_start, detail, "request");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lti_core::observe::{KeyCall, PlatformCall};

    fn line(status: u16, code: Option<&'static str>) -> RequestLine {
        RequestLine {
            request_id: "req-1".into(),
            route: "POST /lti/launch".into(),
            status,
            code,
            outcome: None,
            detail: code.map(|_| "the detail".into()),
            latency_ms: 12.5,
            issuer: Some("https://lms.example".into()),
            client_id: Some("client-1".into()),
            cold_start: true,
            trace_id: None,
        }
    }

    /// Every metric a directive names is a number (or list of numbers) on the root,
    /// every dimension a string on the root: what CloudWatch requires of EMF.
    fn assert_valid_emf(document: &Value) {
        let aws = &document["_aws"];
        assert!(aws["Timestamp"].is_u64());
        for directive in aws["CloudWatchMetrics"].as_array().expect("directives") {
            assert!(directive["Namespace"].is_string());
            for set in directive["Dimensions"].as_array().expect("dimension sets") {
                for key in set.as_array().expect("dimension set") {
                    let value = &document[key.as_str().expect("key")];
                    let value = value.as_str().expect("dimension values are strings");
                    assert!(!value.is_empty() && value.len() <= 1024 && value.is_ascii());
                }
            }
            for metric in directive["Metrics"].as_array().expect("metrics") {
                let value = &document[metric["Name"].as_str().expect("name")];
                assert!(
                    value.is_number()
                        || value
                            .as_array()
                            .is_some_and(|a| a.len() <= 100 && a.iter().all(Value::is_number)),
                    "{metric}: {value}"
                );
            }
        }
    }

    fn metric_names(document: &Value) -> Vec<String> {
        document["_aws"]["CloudWatchMetrics"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|d| d["Metrics"].as_array().cloned().unwrap_or_default())
            .map(|m| m["Name"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    #[test]
    fn a_refused_launch_counts_under_its_code() {
        let facts = RequestFacts {
            issuer: Some("https://lms.example".into()),
            client_id: Some("client-1".into()),
            registration_known: true,
            platform_calls: vec![PlatformCall {
                latency_ms: 40.25,
                ok: false,
            }],
            key_calls: vec![],
        };
        let doc = emf_document(
            &line(401, Some("LTI_SIGNATURE_INVALID")),
            &facts,
            "launch",
            "lti-lambda/test",
            1_700_000_000_000,
        );
        assert_valid_emf(&doc);
        assert_eq!(doc["level"], "INFO");
        assert_eq!(doc["code"], "LTI_SIGNATURE_INVALID");
        assert_eq!(doc["Outcome"], "LTI_SIGNATURE_INVALID");
        assert_eq!(doc["Launches"], 1);
        assert_eq!(doc["Platform"], "https://lms.example");
        assert_eq!(doc["PlatformCallFailures"], 1);
        assert_eq!(doc["PlatformCallLatency"], json!([40.25]));
        assert_eq!(doc["cold_start"], true);
        assert!(!metric_names(&doc).contains(&"KmsLatency".to_string()));
    }

    #[test]
    fn an_accepted_launch_is_ok_and_times_its_signature() {
        let facts = RequestFacts {
            key_calls: vec![KeyCall {
                operation: "Sign",
                latency_ms: 8.0,
                throttled: false,
                failed: false,
            }],
            ..RequestFacts::default()
        };
        let doc = emf_document(&line(200, None), &facts, "launch", "ns", 1);
        assert_valid_emf(&doc);
        assert_eq!(doc["Outcome"], "OK");
        assert_eq!(doc["KmsLatency"], json!([8.0]));
        assert_eq!(doc["KmsThrottles"], 0);
        assert!(doc.get("code").is_none());
        assert!(doc.get("Platform").is_none());
    }

    #[test]
    fn an_intermediate_page_is_not_a_completed_launch() {
        let mut storage_page = line(200, None);
        storage_page.outcome = Some("STORAGE_READ");
        let doc = emf_document(&storage_page, &RequestFacts::default(), "launch", "ns", 1);
        assert_eq!(doc["Outcome"], "STORAGE_READ");
        assert_eq!(doc["outcome"], "STORAGE_READ");
    }

    #[test]
    fn a_claimed_issuer_never_becomes_a_dimension() {
        let facts = RequestFacts {
            issuer: Some("https://attacker.example/\u{7}x".into()),
            registration_known: false,
            platform_calls: vec![PlatformCall {
                latency_ms: 1.0,
                ok: true,
            }],
            ..RequestFacts::default()
        };
        let doc = emf_document(&line(400, Some("X")), &facts, "services", "ns", 1);
        assert_valid_emf(&doc);
        assert_eq!(doc["Platform"], "unregistered");
        // Only the launch function counts launches.
        assert!(doc.get("Launches").is_none());
    }

    #[test]
    fn server_errors_are_logged_at_error() {
        let doc = emf_document(
            &line(503, Some("STORE_UNAVAILABLE")),
            &RequestFacts::default(),
            "login",
            "ns",
            1,
        );
        assert_eq!(doc["level"], "ERROR");
        assert_eq!(doc["ServerErrors"], 1);
        assert_eq!(doc["detail"], "the detail");
    }

    #[test]
    fn only_cloudwatch_namespaces_are_used() {
        let ns = |v: &str| match RequestLog::emf_from_env("login", Some(v.into())) {
            RequestLog::Emf { namespace, .. } => namespace,
            _ => unreachable!(),
        };
        assert_eq!(ns("lti-lambda/prod-stack"), "lti-lambda/prod-stack");
        assert_eq!(ns("AWS/Lambda"), DEFAULT_NAMESPACE);
        assert_eq!(ns(""), DEFAULT_NAMESPACE);
        assert_eq!(ns("bad\nname"), DEFAULT_NAMESPACE);
    }

    #[tokio::test]
    async fn serve_writes_one_line_with_what_the_handler_recorded() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let log = RequestLog::Memory {
            function: "services",
            lines: lines.clone(),
        };
        let request = http::Request::builder()
            .uri("/lti/register?registration_token=secret-value")
            .body(bytes::Bytes::new())
            .expect("request");
        let response = serve(&log, request, |_| async {
            lti_core::observe::note_registration("https://lms.example", "client-7");
            lti_core::observe::record_platform_call(std::time::Duration::from_millis(3), true);
            let mut response = http::Response::new(bytes::Bytes::new());
            *response.status_mut() = http::StatusCode::BAD_GATEWAY;
            response.extensions_mut().insert(Refusal {
                code: "PLATFORM_FAILED",
                detail: "the platform answered 500".into(),
            });
            response
        })
        .await;
        assert_eq!(response.status(), 502);
        let lines = lines.lock().expect("lines");
        assert_eq!(lines.len(), 1);
        let doc = &lines[0];
        assert_valid_emf(doc);
        assert_eq!(
            doc["route"], "GET /lti/register",
            "the query is never logged"
        );
        assert!(!doc.to_string().contains("secret-value"));
        assert_eq!(doc["level"], "ERROR");
        assert_eq!(doc["code"], "PLATFORM_FAILED");
        assert_eq!(doc["client_id"], "client-7");
        assert_eq!(doc["Platform"], "https://lms.example");
        assert_eq!(doc["PlatformCalls"], 1);
        assert!(doc["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    }
}
