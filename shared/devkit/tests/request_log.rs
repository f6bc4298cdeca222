//! The dev server's log: one line per request, at INFO below 500, and nothing at WARN
//! for requests the tool does not serve (a browser's `/favicon.ico`) or refuses.

mod common;

use common::dev::{Dev, ADMIN};
use serde_json::Value;
use std::sync::{Arc, Mutex};

/// Log output kept in memory, one `Vec` for the whole test binary.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().expect("log").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
            .collect()
    }
}

#[tokio::test]
async fn each_request_is_one_info_line_and_unserved_paths_warn_nobody() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .init();

    let dev = Dev::start().await;
    let before = captured.lines().len();
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(format!("{}{path}", dev.tool));
    let favicon = get("/favicon.ico").send().await.expect("favicon");
    assert_eq!(favicon.status(), 404);
    let login = get("/lti/login").send().await.expect("login");
    assert_eq!(login.status(), 400);
    let config = get("/lti/config").send().await.expect("config");
    assert_eq!(config.status(), 401);
    let admin = get("/admin/platforms")
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("admin");
    assert_eq!(admin.status(), 200);

    let lines: Vec<Value> = captured.lines().split_off(before);
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    let routes: Vec<(&str, u64, &str)> = requests
        .iter()
        .map(|l| {
            (
                l["route"].as_str().unwrap_or_default(),
                l["status"].as_u64().unwrap_or_default(),
                l["level"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        routes,
        vec![
            ("GET /favicon.ico", 404, "INFO"),
            ("GET /lti/login", 400, "INFO"),
            ("GET /lti/config", 401, "INFO"),
            ("GET /admin/platforms", 200, "INFO"),
        ]
    );
    assert_eq!(requests[1]["code"], "LTI_LOGIN_PARAM_MISSING");
    assert_eq!(requests[2]["code"], "ADMIN_UNAUTHORIZED");
    assert!(requests.iter().all(|l| l["latency_ms"].is_number()));
    // Fields a request has no value for are left out, not logged empty.
    assert!(requests[0].get("issuer").is_none() && requests[3].get("code").is_none());
    // Nothing else at INFO or above: refusals are in their request line only.
    let others: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] != "request" && l["level"] != "DEBUG" && l["level"] != "TRACE")
        .collect();
    assert!(
        others.is_empty(),
        "lines besides the request lines: {others:?}"
    );
}
