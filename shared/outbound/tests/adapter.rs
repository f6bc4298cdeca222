//! The reqwest adapter against local servers: what it sends, what it keeps of the
//! answer, and how it fails (timeout, size cap, redirects).

use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use axum::routing::{get, post};
use axum::Router;
use lti_core::services::outbound::{Method, OutboundError, OutboundRequest, PlatformHttp};
use lti_outbound::{OutboundConfig, ReqwestPlatformHttp, MAX_BODY_BYTES};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

fn adapter() -> ReqwestPlatformHttp {
    ReqwestPlatformHttp::new(lti_core::url_policy::UrlPolicy::ALLOW_LOOPBACK).expect("client")
}

fn quick(total_ms: u64) -> ReqwestPlatformHttp {
    ReqwestPlatformHttp::with_config(
        OutboundConfig {
            total_timeout: Duration::from_millis(total_ms),
            ..OutboundConfig::default()
        },
        lti_core::url_policy::UrlPolicy::ALLOW_LOOPBACK,
    )
    .expect("client")
}

#[tokio::test]
async fn sends_method_headers_body_and_a_user_agent_and_keeps_every_answer_header() {
    let app = Router::new().route(
        "/echo",
        post(|headers: HeaderMap, body: String| async move {
            let seen = |name: &str| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string()
            };
            let summary = format!(
                "ua={}|auth={}|ct={}|accept={}|body={body}",
                seen("user-agent"),
                seen("authorization"),
                seen("content-type"),
                seen("accept")
            );
            (
                StatusCode::CREATED,
                AppendHeaders([
                    ("Link", "<http://x/2>; rel=\"next\""),
                    ("Link", "<http://x/9>; rel=\"last\""),
                    ("X-Custom-Thing", "kept"),
                ]),
                summary,
            )
        }),
    );
    let base = serve(app).await;
    let request = OutboundRequest::new(Method::Post, format!("{base}/echo"))
        .header("Authorization", "Bearer abc")
        .header("Accept", "application/vnd.ims.lis.v2.lineitem+json")
        .body(
            "application/vnd.ims.lis.v2.lineitem+json",
            br#"{"label":"Quiz"}"#.to_vec(),
        );
    let response = adapter().send(request).await.expect("answer");
    assert_eq!(response.status, 201);
    let body = String::from_utf8(response.body.clone()).expect("utf-8");
    assert_eq!(
        body,
        format!(
            "ua={}|auth=Bearer abc|ct=application/vnd.ims.lis.v2.lineitem+json|accept=application/vnd.ims.lis.v2.lineitem+json|body={{\"label\":\"Quiz\"}}",
            lti_outbound::USER_AGENT
        )
    );
    let links: Vec<&str> = response.header_values("LINK").collect();
    assert_eq!(
        links,
        vec!["<http://x/2>; rel=\"next\"", "<http://x/9>; rel=\"last\""],
        "several headers of one name are all kept, in order"
    );
    assert_eq!(response.header("x-custom-thing"), Some("kept"));
}

#[tokio::test]
async fn every_method_reaches_the_server() {
    let app = Router::new().route(
        "/m",
        get(|| async { "GET" })
            .put(|| async { "PUT" })
            .delete(|| async { StatusCode::NO_CONTENT })
            .post(|| async { "POST" }),
    );
    let base = serve(app).await;
    for (method, status, body) in [
        (Method::Get, 200, "GET"),
        (Method::Put, 200, "PUT"),
        (Method::Post, 200, "POST"),
        (Method::Delete, 204, ""),
    ] {
        let response = adapter()
            .send(OutboundRequest::new(method, format!("{base}/m")))
            .await
            .expect("answer");
        assert_eq!(
            (response.status, response.body.as_slice()),
            (status, body.as_bytes())
        );
    }
}

#[tokio::test]
async fn a_slow_platform_is_a_timeout() {
    let app = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            "late"
        }),
    );
    let base = serve(app).await;
    let started = std::time::Instant::now();
    let result = quick(300)
        .send(OutboundRequest::new(Method::Get, format!("{base}/slow")))
        .await;
    assert_eq!(result, Err(OutboundError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// A server that sends its headers at once and then the body one byte a second.
async fn trickling_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
                    .await;
                for _ in 0..100 {
                    if socket.write_all(b"x").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
    });
    url
}

#[tokio::test]
async fn the_total_timeout_covers_a_trickling_body() {
    let base = trickling_server().await;
    let result = quick(500)
        .send(OutboundRequest::new(Method::Get, format!("{base}/")))
        .await;
    assert_eq!(result, Err(OutboundError::Timeout));
}

#[tokio::test]
async fn a_body_over_the_cap_is_too_large_and_one_at_the_cap_is_read() {
    let app = Router::new()
        .route("/at", get(|| async { vec![b'a'; MAX_BODY_BYTES] }))
        .route("/over", get(|| async { vec![b'a'; MAX_BODY_BYTES + 1] }));
    let base = serve(app).await;
    let at = adapter()
        .send(OutboundRequest::new(Method::Get, format!("{base}/at")))
        .await
        .expect("answer");
    assert_eq!(at.body.len(), MAX_BODY_BYTES);
    assert_eq!(
        adapter()
            .send(OutboundRequest::new(Method::Get, format!("{base}/over")))
            .await,
        Err(OutboundError::TooLarge(MAX_BODY_BYTES))
    );
}

/// A server answering with a chunked body (no Content-Length) of `size` bytes.
async fn chunked_server(size: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await;
                let chunk = vec![b'z'; 64 * 1024];
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk.len());
                    let head = format!("{n:x}\r\n");
                    if socket.write_all(head.as_bytes()).await.is_err()
                        || socket.write_all(&chunk[..n]).await.is_err()
                        || socket.write_all(b"\r\n").await.is_err()
                    {
                        return;
                    }
                    left -= n;
                }
                let _ = socket.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    url
}

#[tokio::test]
async fn a_chunked_body_without_length_is_capped_while_reading() {
    let big = chunked_server(3 * MAX_BODY_BYTES).await;
    assert_eq!(
        adapter()
            .send(OutboundRequest::new(Method::Get, format!("{big}/")))
            .await,
        Err(OutboundError::TooLarge(MAX_BODY_BYTES))
    );
    let small = chunked_server(100_000).await;
    let response = adapter()
        .send(OutboundRequest::new(Method::Get, format!("{small}/")))
        .await
        .expect("answer");
    assert_eq!(response.body.len(), 100_000);
}

#[tokio::test]
async fn a_redirect_is_answered_not_followed() {
    let followed = Arc::new(AtomicUsize::new(0));
    let hits = followed.clone();
    let app = Router::new()
        .route(
            "/moved",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [("Location", "/elsewhere")],
                    "see elsewhere",
                )
                    .into_response()
            }),
        )
        .route(
            "/elsewhere",
            get(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                async { "followed" }
            }),
        );
    let base = serve(app).await;
    let response = adapter()
        .send(
            OutboundRequest::new(Method::Get, format!("{base}/moved"))
                .header("Authorization", "Bearer secret"),
        )
        .await
        .expect("answer");
    assert_eq!(response.status, 302);
    assert_eq!(response.header("location"), Some("/elsewhere"));
    assert_eq!(followed.load(Ordering::SeqCst), 0, "never followed");
}

#[tokio::test]
async fn a_closed_port_is_unreachable_and_a_plain_http_host_is_refused_unsent() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let closed = adapter()
        .send(OutboundRequest::new(
            Method::Get,
            format!("http://127.0.0.1:{port}/x"),
        ))
        .await;
    assert!(
        matches!(closed, Err(OutboundError::Unreachable(_))),
        "{closed:?}"
    );
    let refused = adapter()
        .send(OutboundRequest::new(
            Method::Get,
            "http://lms.example.edu/x",
        ))
        .await;
    assert!(
        matches!(refused, Err(OutboundError::UrlRefused(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_header_value_with_a_line_break_is_never_sent() {
    let app = Router::new().route("/", get(|| async { "ok" }));
    let base = serve(app).await;
    let result = adapter()
        .send(
            OutboundRequest::new(Method::Get, format!("{base}/"))
                .header("Authorization", "Bearer a\r\nX-Injected: 1"),
        )
        .await;
    let Err(OutboundError::Unreachable(message)) = result else {
        panic!("refused: {result:?}");
    };
    assert!(!message.contains("Injected"), "{message}");
}
