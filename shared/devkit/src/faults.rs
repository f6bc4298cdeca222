//! A fault-injecting proxy in front of an AWS endpoint (moto in the tests), for the
//! failures moto cannot play (issue 14, item 2): throttling, timeouts,
//! `TransactionCanceledException` with any cancellation reason, disabled or
//! inaccessible KMS keys, 500s, a store that is down for a while.
//!
//! The real SDK clients talk to the proxy (`AWS_ENDPOINT_URL`), so their real error
//! parsing, retries and timeouts are what is tested. Faults are chosen by the
//! operation (`X-Amz-Target`, e.g. `DynamoDB_20120810.TransactWriteItems` or
//! `TrentService.Sign`) and set either in process ([`FaultProxy::inject`]) or over
//! HTTP (`POST /__faults` with a [`Fault`] as JSON, `DELETE /__faults` to clear;
//! `GET /__faults` counts the faults played), which is how `tests/load.sh` takes the
//! store down in the middle of a run.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One fault: what it matches and what it answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Fault {
    /// Substring of the operation (`X-Amz-Target`) to match; empty matches every call.
    pub target: String,
    /// HTTP status of the error answer (400 for throttling and client errors, 500 or
    /// 503 for server errors). 0: no error answer (use with `delay_ms` for a timeout).
    pub status: u16,
    /// The error's `__type`, e.g. `ThrottlingException`.
    pub error_type: String,
    /// For `TransactionCanceledException`: the reason code given to the first item
    /// (the other items get `None`), e.g. `ConditionalCheckFailed`,
    /// `TransactionConflict`, `ThrottlingError`.
    pub cancellation_reason: Option<String>,
    /// Held this long before answering (or forwarding, when `status` is 0).
    pub delay_ms: u64,
    /// How many calls the fault applies to; `None`: until cleared.
    pub count: Option<u64>,
    /// The call is passed on to the real endpoint first and its answer thrown away:
    /// the write happened, the caller never learns it (a lost answer).
    pub after_forwarding: bool,
}

impl Fault {
    /// Every call to `target` answered `status` with error `error_type`, until cleared.
    pub fn error(target: &str, status: u16, error_type: &str) -> Self {
        Self {
            target: target.into(),
            status,
            error_type: error_type.into(),
            ..Self::default()
        }
    }

    /// A `TransactionCanceledException` whose first item failed with `reason`.
    pub fn cancelled(reason: &str) -> Self {
        Self {
            target: "TransactWriteItems".into(),
            status: 400,
            error_type: "TransactionCanceledException".into(),
            cancellation_reason: Some(reason.into()),
            ..Self::default()
        }
    }

    /// Calls to `target` held `delay` and never answered in time (the proxy drops the
    /// call after the delay: nothing reaches the store).
    pub fn timeout(target: &str, delay: Duration) -> Self {
        Self {
            target: target.into(),
            status: 504,
            error_type: "ProxyTimeout".into(),
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            ..Self::default()
        }
    }

    /// The call reaches the store, then the fault is answered instead of its answer.
    pub fn after_forwarding(mut self) -> Self {
        self.after_forwarding = true;
        self
    }

    /// Applies to the next `count` calls only.
    pub fn times(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }
}

#[derive(Default)]
struct Plan {
    faults: Vec<Fault>,
    played: u64,
    forwarded: u64,
}

#[derive(Clone)]
struct Ctx {
    target: String,
    client: reqwest::Client,
    plan: Arc<Mutex<Plan>>,
}

/// The proxy: its URL and its fault plan.
#[derive(Clone)]
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`: the endpoint to give the SDK.
    pub url: String,
    plan: Arc<Mutex<Plan>>,
}

impl FaultProxy {
    /// Starts a proxy to `target` (e.g. the moto URL) on 127.0.0.1, port `port` (0: any).
    pub async fn start(target: &str, port: u16) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let plan = Arc::new(Mutex::new(Plan::default()));
        let ctx = Ctx {
            target: target.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .map_err(std::io::Error::other)?,
            plan: plan.clone(),
        };
        let app = axum::Router::new()
            .route(
                "/__faults",
                axum::routing::get(count_faults)
                    .post(add_fault)
                    .delete(clear_faults),
            )
            .fallback(proxy)
            .with_state(ctx);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, plan })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `fault` (the first matching fault of the plan plays).
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Removes every fault: the endpoint recovers.
    pub fn clear(&self) {
        self.lock().faults.clear();
    }

    /// How many calls got a fault so far.
    pub fn played(&self) -> u64 {
        self.lock().played
    }

    /// How many calls were passed on to the real endpoint so far.
    pub fn forwarded(&self) -> u64 {
        self.lock().forwarded
    }
}

async fn add_fault(State(ctx): State<Ctx>, body: Bytes) -> Response {
    match serde_json::from_slice::<Fault>(&body) {
        Ok(fault) => {
            lock(&ctx.plan).faults.push(fault);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn clear_faults(State(ctx): State<Ctx>) -> StatusCode {
    lock(&ctx.plan).faults.clear();
    StatusCode::NO_CONTENT
}

async fn count_faults(State(ctx): State<Ctx>) -> Response {
    let plan = lock(&ctx.plan);
    let counts =
        json!({"played": plan.played, "forwarded": plan.forwarded, "active": plan.faults.len()});
    ([("content-type", "application/json")], counts.to_string()).into_response()
}

fn lock(plan: &Mutex<Plan>) -> std::sync::MutexGuard<'_, Plan> {
    plan.lock().unwrap_or_else(|e| e.into_inner())
}

/// The fault for `operation`, used up by one.
fn take_fault(plan: &Mutex<Plan>, operation: &str) -> Option<Fault> {
    let mut plan = lock(plan);
    let index = plan
        .faults
        .iter()
        .position(|f| operation.contains(&f.target))?;
    let fault = plan.faults[index].clone();
    if let Some(count) = plan.faults[index].count.as_mut() {
        *count = count.saturating_sub(1);
        if *count == 0 {
            plan.faults.remove(index);
        }
    }
    plan.played += 1;
    Some(fault)
}

/// The error body of `fault` for a request with `body` (a transaction's cancellation
/// reasons are one per item of the request).
fn error_body(fault: &Fault, request: &[u8]) -> String {
    let mut answer = json!({
        "__type": format!("com.amazonaws.dynamodb.v20120810#{}", fault.error_type),
        "message": format!("injected fault: {}", fault.error_type),
    });
    if let Some(reason) = &fault.cancellation_reason {
        let items = serde_json::from_slice::<Value>(request)
            .ok()
            .and_then(|v| v["TransactItems"].as_array().map(Vec::len))
            .unwrap_or(1)
            .max(1);
        let reasons: Vec<Value> = (0..items)
            .map(|i| {
                if i == 0 {
                    json!({"Code": reason, "Message": "injected"})
                } else {
                    json!({"Code": "None"})
                }
            })
            .collect();
        answer["CancellationReasons"] = Value::Array(reasons);
        answer["Message"] = json!(format!(
            "Transaction cancelled, please refer cancellation reasons for specific reasons [{reason}]"
        ));
    }
    answer.to_string()
}

async fn proxy(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if let Some(fault) = take_fault(&ctx.plan, &operation) {
        if fault.after_forwarding {
            let _ = forward(&ctx, method.clone(), &uri, &headers, body.clone()).await;
        }
        if fault.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
        if fault.status != 0 {
            let status =
                StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let content_type = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/x-amz-json-1.0")
                .to_string();
            return (
                status,
                [
                    ("content-type", content_type),
                    ("x-amzn-errortype", fault.error_type.clone()),
                ],
                error_body(&fault, &body),
            )
                .into_response();
        }
    }
    forward(&ctx, method, &uri, &headers, body).await
}

/// Passes the call on to the real endpoint and returns its answer.
async fn forward(
    ctx: &Ctx,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    lock(&ctx.plan).forwarded += 1;
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = ctx
        .client
        .request(method, format!("{}{path}", ctx.target))
        .body(body);
    for (name, value) in headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let mut out = HeaderMap::new();
            for (name, value) in response.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    out.insert(name.clone(), value.clone());
                }
            }
            let bytes = response.bytes().await.unwrap_or_default();
            (status, out, bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
