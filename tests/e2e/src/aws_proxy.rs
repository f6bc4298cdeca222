//! A proxy in front of an AWS endpoint (moto) that holds every request for a fixed
//! delay and records the calls that go through it: which operation (from the
//! `X-Amz-Target` header, e.g. `dynamodb:BatchGetItem`, `kms:Sign`), when it started
//! and when it was answered. What a Lambda function spends on AWS is then measured
//! from outside, for the real binaries as for in-process handlers.
//!
//! `GET /__calls` answers the calls recorded since the last such request (and forgets
//! them): `{"calls": [{"name": "kms:Sign", "startUs": 1200, "endUs": 11900}]}`, times
//! in microseconds since the proxy started. Every other request is forwarded.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// At most this many calls are kept between two reads (the oldest go first).
const MAX_RECORDED: usize = 10_000;
/// The largest request or answer forwarded (a DynamoDB transaction is at most 4 MB).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One AWS call as the proxy saw it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RecordedCall {
    pub name: String,
    pub start_us: u64,
    pub end_us: u64,
}

struct Proxy {
    target: String,
    delay: Duration,
    client: reqwest::Client,
    started: Instant,
    calls: Mutex<Vec<RecordedCall>>,
}

/// The operation a request names: `DynamoDB_20120810.GetItem` → `dynamodb:GetItem`,
/// `TrentService.Sign` → `kms:Sign`.
pub fn operation(target: Option<&str>) -> String {
    let Some((service, action)) = target.and_then(|t| t.split_once('.')) else {
        return "unknown".into();
    };
    let service = match service {
        s if s.starts_with("DynamoDB") => "dynamodb",
        "TrentService" => "kms",
        other => other,
    };
    format!("{service}:{action}")
}

/// Serves the proxy on `listener`, forwarding to `target` after `delay`.
pub fn serve(
    listener: tokio::net::TcpListener,
    target: String,
    delay: Duration,
) -> tokio::task::JoinHandle<()> {
    let proxy = Arc::new(Proxy {
        target: target.trim_end_matches('/').to_string(),
        delay,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default(),
        started: Instant::now(),
        calls: Mutex::new(Vec::new()),
    });
    let router = axum::Router::new()
        .route("/__calls", axum::routing::get(recorded))
        .fallback(forward)
        .with_state(proxy);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    })
}

/// Starts the proxy on a free loopback port; its URL.
pub async fn start(target: String, delay: Duration) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    serve(listener, target, delay);
    Ok(url)
}

/// Reads (and forgets) the calls the proxy at `url` recorded.
pub async fn take_calls(url: &str) -> Result<Vec<RecordedCall>, reqwest::Error> {
    #[derive(serde::Deserialize)]
    struct Answer {
        calls: Vec<RecordedCall>,
    }
    let answer: Answer = reqwest::get(format!("{url}/__calls"))
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(answer.calls)
}

/// How many calls the user waits for one after the other: calls that overlap in time
/// count once.
pub fn critical_path(calls: &[RecordedCall]) -> usize {
    let mut spans: Vec<(u64, u64)> = calls.iter().map(|c| (c.start_us, c.end_us)).collect();
    spans.sort_unstable();
    let mut waves = 0;
    let mut wave_end: Option<u64> = None;
    for (start, end) in spans {
        match wave_end {
            Some(until) if start < until => wave_end = Some(until.max(end)),
            _ => {
                waves += 1;
                wave_end = Some(end);
            }
        }
    }
    waves
}

async fn recorded(State(proxy): State<Arc<Proxy>>) -> Response {
    let calls = std::mem::take(&mut *proxy.calls.lock().unwrap_or_else(|e| e.into_inner()));
    let body = serde_json::json!({ "calls": calls }).to_string();
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let start_us = micros_since(proxy.started);
    let (parts, body) = request.into_parts();
    let name = operation(
        parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok()),
    );
    tokio::time::sleep(proxy.delay).await;
    let answer = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => {
            let path = parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let mut outgoing = proxy
                .client
                .request(parts.method.clone(), format!("{}{path}", proxy.target));
            for (header, value) in &parts.headers {
                if header != "host" && header != "content-length" {
                    outgoing = outgoing.header(header, value);
                }
            }
            relay(outgoing.body(body).send().await).await
        }
        Err(_) => plain(413, "request body too large for the proxy"),
    };
    let call = RecordedCall {
        name,
        start_us,
        end_us: micros_since(proxy.started),
    };
    let mut calls = proxy.calls.lock().unwrap_or_else(|e| e.into_inner());
    if calls.len() >= MAX_RECORDED {
        calls.remove(0);
    }
    calls.push(call);
    answer
}

async fn relay(answer: Result<reqwest::Response, reqwest::Error>) -> Response {
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return plain(502, &format!("the AWS endpoint did not answer: {e}")),
    };
    let mut response = Response::builder().status(answer.status());
    for (header, value) in answer.headers() {
        if header != "content-length" && header != "transfer-encoding" {
            response = response.header(header, value);
        }
    }
    match answer.bytes().await {
        Ok(body) => response.body(Body::from(body)).unwrap_or_default(),
        Err(e) => plain(502, &format!("the AWS endpoint's answer broke off: {e}")),
    }
}

fn plain(status: u16, text: &str) -> Response {
    Response::builder()
        .status(status)
        .body(Body::from(text.to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_by_service_and_action() {
        assert_eq!(
            operation(Some("DynamoDB_20120810.BatchGetItem")),
            "dynamodb:BatchGetItem"
        );
        assert_eq!(operation(Some("TrentService.Sign")), "kms:Sign");
        assert_eq!(operation(None), "unknown");
    }

    #[test]
    fn overlapping_calls_count_once_on_the_critical_path() {
        let call = |start_us, end_us| RecordedCall {
            name: "x".into(),
            start_us,
            end_us,
        };
        // A read, then a transaction and a signature side by side: two waits.
        let calls = [call(0, 10), call(12, 30), call(13, 25)];
        assert_eq!(critical_path(&calls), 2);
        assert_eq!(critical_path(&[call(0, 10), call(10, 20)]), 2);
        assert_eq!(critical_path(&[]), 0);
    }

    #[tokio::test]
    async fn calls_are_forwarded_recorded_and_forgotten_once_read() {
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let upstream_url = format!("http://{}", upstream.local_addr().expect("addr"));
        let echo = axum::Router::new().fallback(|body: axum::body::Bytes| async move {
            format!("echo:{}", String::from_utf8_lossy(&body))
        });
        tokio::spawn(async move {
            let _ = axum::serve(upstream, echo).await;
        });
        let proxy = start(upstream_url, Duration::from_millis(20))
            .await
            .expect("proxy");
        let started = Instant::now();
        let answer = reqwest::Client::new()
            .post(format!("{proxy}/"))
            .header("x-amz-target", "TrentService.Sign")
            .body("{}")
            .send()
            .await
            .expect("answer");
        assert!(started.elapsed() >= Duration::from_millis(20), "held first");
        assert_eq!(answer.text().await.expect("text"), "echo:{}");
        let calls = take_calls(&proxy).await.expect("calls");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "kms:Sign");
        assert!(calls[0].end_us >= calls[0].start_us + 20_000);
        assert!(take_calls(&proxy).await.expect("calls").is_empty());
    }
}
