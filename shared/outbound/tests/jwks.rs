//! The reqwest JWKS fetcher against a real local HTTP server: the cache lifetime the
//! platform asks for, the failures that become 502 LTI_PLATFORM_KEYS_UNAVAILABLE, and
//! the URL rules on the key set URL and every redirect.

use lti_core::keys::KeySetFetcher;
use lti_core::url_policy::UrlPolicy;
use lti_core::Problem;
use lti_outbound::jwks::{HttpKeySetFetcher, MAX_JWKS_BYTES};

fn fetcher() -> HttpKeySetFetcher {
    HttpKeySetFetcher::new(UrlPolicy::ALLOW_LOOPBACK).expect("client")
}
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
    let fetched = fetcher().fetch(&url).await.expect("fetched");
    assert_eq!(fetched.body, br#"{"keys":[]}"#);
    assert_eq!(fetched.max_age, Some(120));
    assert!(!fetched.no_store);
}

#[tokio::test]
async fn several_cache_control_headers_and_age_are_all_read() {
    let url = serve_once(
        "200 OK",
        "cache-control: public, max-age=120\r\nCache-Control: No-Cache\r\nage: 20\r\n",
        br#"{"keys":[]}"#.to_vec(),
    )
    .await;
    let fetched = fetcher().fetch(&url).await.expect("fetched");
    assert!(fetched.no_store, "no-cache in the second header counts");
    assert_eq!(fetched.max_age, Some(100), "max-age less Age");
}

#[tokio::test]
async fn an_error_status_an_oversized_document_or_no_server_is_a_platform_failure() {
    let fetcher = fetcher();
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
        assert_eq!(err.transient, reason != "larger than 256 KiB", "{reason}");
        assert_eq!(err.code(), "LTI_PLATFORM_KEYS_UNAVAILABLE");
        assert_eq!(
            err.kind(),
            lti_core::ErrorKind::PlatformFailed,
            "answered as 502"
        );
        assert!(err.reason.contains(reason), "{}", err.reason);
    }
}

#[tokio::test]
async fn a_4xx_is_an_answer_and_a_429_an_outage() {
    let not_found = serve_once("404 Not Found", "", b"no".to_vec()).await;
    let err = fetcher().fetch(&not_found).await.expect_err("refused");
    assert!(!err.transient);
    let busy = serve_once("429 Too Many Requests", "", b"slow down".to_vec()).await;
    let err = fetcher().fetch(&busy).await.expect_err("refused");
    assert!(err.transient);
}

#[tokio::test]
async fn a_redirect_to_a_url_the_registration_rules_refuse_is_not_followed() {
    for target in [
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/jwks",
        "http://[::ffff:169.254.169.254]/",
        "https://user:pass@127.0.0.1/jwks",
        "ftp://lms.example.edu/jwks",
        "http://lms.example.edu/jwks",
    ] {
        let url = serve_once(
            "302 Found",
            Box::leak(format!("location: {target}\r\n").into_boxed_str()),
            Vec::new(),
        )
        .await;
        let err = fetcher().fetch(&url).await.expect_err(target);
        assert!(
            err.reason
                .contains("redirected to a URL the registration rules refuse"),
            "{target}: {}",
            err.reason
        );
        assert!(!err.transient, "not an outage: no stale keys");
        assert!(
            !err.reason.contains("user:pass"),
            "no credentials in the reason"
        );
    }
}

#[tokio::test]
async fn a_redirect_to_an_allowed_url_is_followed() {
    let target = serve_once(
        "200 OK",
        "cache-control: max-age=60\r\n",
        br#"{"keys":[]}"#.to_vec(),
    )
    .await;
    let url = serve_once(
        "301 Moved Permanently",
        Box::leak(format!("location: {target}\r\n").into_boxed_str()),
        Vec::new(),
    )
    .await;
    let fetched = fetcher().fetch(&url).await.expect("followed");
    assert_eq!(fetched.body, br#"{"keys":[]}"#);
    assert_eq!(fetched.max_age, Some(60));
}

#[tokio::test]
async fn loopback_is_refused_without_the_opt_in_before_any_connection() {
    let url = serve_once("200 OK", "", br#"{"keys":[]}"#.to_vec()).await;
    let strict = HttpKeySetFetcher::new(UrlPolicy::STRICT).expect("client");
    let err = strict.fetch(&url).await.expect_err("refused");
    assert!(
        err.reason.contains("refused by the URL rules"),
        "{}",
        err.reason
    );
    // A registration stored before the rules existed is not fetched either.
    for url in [
        "https://169.254.169.254/jwks",
        "https://u:p@lms.example.edu/jwks",
    ] {
        let err = strict.fetch(url).await.expect_err(url);
        assert!(
            err.reason.contains("refused by the URL rules"),
            "{}",
            err.reason
        );
        assert!(!err.to_string().contains("u:p@"));
    }
}

#[tokio::test]
async fn a_hostname_is_connected_to_only_at_addresses_the_rules_allow() {
    // `localhost` resolves (through /etc/hosts) to loopback addresses only.
    let err = lti_outbound::resolve_allowed(UrlPolicy::STRICT, "localhost")
        .await
        .expect_err("loopback only: refused");
    assert!(
        err.contains("resolves only to addresses the URL rules refuse"),
        "{err}"
    );
    let allowed = lti_outbound::resolve_allowed(UrlPolicy::ALLOW_LOOPBACK, "localhost")
        .await
        .expect("allowed with the opt-in");
    assert!(allowed.iter().all(|a| a.ip().is_loopback()) && !allowed.is_empty());
}
