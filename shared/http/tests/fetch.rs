//! The reqwest JWKS fetcher against a real local HTTP server: the cache lifetime the
//! platform asks for, and the failures that become 502 LTI_PLATFORM_KEYS_UNAVAILABLE.

use lti_core::keys::KeySetFetcher;
use lti_core::Problem;
use lti_http::fetch::{HttpKeySetFetcher, MAX_JWKS_BYTES};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers one request on 127.0.0.1 with `status`, `headers` and `body`; returns the URL.
async fn serve_once(status: &'static str, headers: &'static str, body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        if let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(&body).await;
        }
    });
    url
}

#[tokio::test]
async fn a_jwks_is_fetched_with_its_cache_lifetime() {
    let url = serve_once(
        "200 OK",
        "content-type: application/json\r\ncache-control: public, max-age=120\r\n",
        br#"{"keys":[]}"#.to_vec(),
    )
    .await;
    let fetched = HttpKeySetFetcher::new()
        .expect("client")
        .fetch(&url)
        .await
        .expect("fetched");
    assert_eq!(fetched.body, br#"{"keys":[]}"#);
    assert_eq!(fetched.max_age, Some(120));
}

#[tokio::test]
async fn an_error_status_an_oversized_document_or_no_server_is_a_platform_failure() {
    let fetcher = HttpKeySetFetcher::new().expect("client");
    let cases = [
        (
            serve_once("500 Internal Server Error", "", b"oops".to_vec()).await,
            "HTTP status 500",
        ),
        (
            serve_once("200 OK", "", vec![b' '; MAX_JWKS_BYTES + 1]).await,
            "larger than 256 KiB",
        ),
        ("http://127.0.0.1:9/jwks".to_string(), ""),
    ];
    for (url, reason) in cases {
        let err = fetcher.fetch(&url).await.expect_err("refused");
        assert_eq!(err.code(), "LTI_PLATFORM_KEYS_UNAVAILABLE");
        assert_eq!(
            err.kind(),
            lti_core::ErrorKind::PlatformFailed,
            "answered as 502"
        );
        assert!(err.reason.contains(reason), "{}", err.reason);
    }
}
