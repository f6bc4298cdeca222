//! The protocol code over the real adapter: a platform on a local axum server (token
//! endpoint checking the client assertion, a score endpoint under a Moodle-style
//! query-string line item URL, a roster of three pages linked with lowercase headers
//! and relative URLs). Counts the platform calls of a cold and a warm score post and
//! of a 3-page roster read.

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use lti_core::clock::SystemClock;
use lti_core::memory::MemoryStore;
use lti_core::random::SystemRandom;
use lti_core::services::ags::{Ags, ScoreInput, MEDIA_SCORE, SCOPE_SCORE};
use lti_core::services::nrps::{MembersQuery, Nrps, MEDIA_MEMBERSHIPS};
use lti_core::services::testing::check_assertion;
use lti_core::services::token::AccessTokens;
use lti_core::services::ServiceError;
use lti_core::signer::{LocalRsaSigner, PublicJwk};
use lti_outbound::{OutboundConfig, ReqwestPlatformHttp};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
struct Lms {
    jwk: PublicJwk,
    token_url: Arc<std::sync::OnceLock<String>>,
    tokens: Arc<AtomicUsize>,
    scores: Arc<AtomicUsize>,
    roster_pages: Arc<AtomicUsize>,
}

const TOKEN: &str = "lms-access-token-0123456789";

async fn token(State(lms): State<Lms>, Form(form): Form<HashMap<String, String>>) -> Response {
    lms.tokens.fetch_add(1, Ordering::SeqCst);
    let audience = lms.token_url.get().cloned().unwrap_or_default();
    match check_assertion(
        form.get("client_assertion")
            .map(String::as_str)
            .unwrap_or_default(),
        &lms.jwk,
        &audience,
    ) {
        Ok(_) if form.contains_key("scope") => json_answer(
            StatusCode::OK,
            json!({"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600}),
        ),
        _ => json_answer(StatusCode::BAD_REQUEST, json!({"error": "invalid_client"})),
    }
}

fn json_answer(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

async fn scores(
    State(lms): State<Lms>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    lms.scores.fetch_add(1, Ordering::SeqCst);
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    let score: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    if !authorized(&headers)
        || content_type != Some(MEDIA_SCORE)
        || query.get("type_id").map(String::as_str) != Some("2")
        || score["userId"] != "42"
    {
        return StatusCode::BAD_REQUEST.into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn memberships(
    State(lms): State<Lms>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    lms.roster_pages.fetch_add(1, Ordering::SeqCst);
    if !authorized(&headers)
        || headers.get("accept").and_then(|v| v.to_str().ok()) != Some(MEDIA_MEMBERSHIPS)
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let page: usize = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let members: Vec<_> = (0..10)
        .map(|i| json!({"user_id": format!("u{}", (page - 1) * 10 + i), "roles": ["Learner"]}))
        .collect();
    let body = json!({"id": "roster", "context": {"id": "c1"}, "members": members}).to_string();
    let media = [("content-type", MEDIA_MEMBERSHIPS)];
    if page < 3 {
        let link = format!("<memberships?page={}>; rel=next", page + 1);
        (media, [("link", link)], body).into_response()
    } else {
        (media, body).into_response()
    }
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(5)).await;
    "late"
}

#[tokio::test]
async fn score_posts_and_a_roster_over_http_with_call_counts() {
    let signer = Arc::new(LocalRsaSigner::generate().expect("key"));
    let lms = Lms {
        jwk: signer.public_jwk().clone(),
        token_url: Arc::new(std::sync::OnceLock::new()),
        tokens: Arc::new(AtomicUsize::new(0)),
        scores: Arc::new(AtomicUsize::new(0)),
        roster_pages: Arc::new(AtomicUsize::new(0)),
    };
    let app = Router::new()
        .route("/token", post(token))
        .route(
            "/mod/lti/services.php/2/lineitems/7/lineitem/scores",
            post(scores),
        )
        .route("/courses/1/memberships", get(memberships))
        .with_state(lms.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let token_url = format!("{base}/token");
    lms.token_url.set(token_url.clone()).expect("once");

    let mut platform = lti_core::contract::sample_platform(&base, "client-1", 0);
    platform.auth_token_url = token_url;
    let tokens = Arc::new(AccessTokens::new(
        Arc::new(
            ReqwestPlatformHttp::new(lti_core::url_policy::UrlPolicy::ALLOW_LOOPBACK)
                .expect("client"),
        ),
        signer,
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
        Arc::new(SystemRandom),
    ));
    let ags = Ags::new(tokens.clone());
    let nrps = Nrps::new(tokens);
    let lineitem = format!("{base}/mod/lti/services.php/2/lineitems/7/lineitem?type_id=2");
    let endpoint = lti_core::launch::AgsEndpoint {
        scope: vec![SCOPE_SCORE.into()],
        lineitems: None,
        lineitem: Some(lineitem.clone()),
        extra: Default::default(),
    };
    let post = || {
        ags.post_score(
            &platform,
            &endpoint,
            &lineitem,
            ScoreInput {
                user_id: "42".into(),
                score_given: Some(9.0),
                score_maximum: Some(10.0),
                ..Default::default()
            },
            Some("1"),
        )
    };
    let cold = post().await.expect("posted");
    assert_eq!(cold.status, 204);
    let cold_calls = lms.tokens.load(Ordering::SeqCst) + lms.scores.load(Ordering::SeqCst);
    post().await.expect("posted");
    let warm_calls =
        lms.tokens.load(Ordering::SeqCst) + lms.scores.load(Ordering::SeqCst) - cold_calls;

    let before = lms.tokens.load(Ordering::SeqCst);
    let roster = nrps
        .members(
            &platform,
            &format!("{base}/courses/1/memberships"),
            &MembersQuery::default(),
            Some("c1"),
            Some("1"),
        )
        .await
        .expect("roster");
    let roster_calls =
        lms.roster_pages.load(Ordering::SeqCst) + lms.tokens.load(Ordering::SeqCst) - before;
    println!(
        "platform calls over HTTP: cold score post {cold_calls} (token + score), warm score post \
         {warm_calls}, roster of {} pages {roster_calls} (one more token for the NRPS scope)",
        roster.pages
    );
    assert_eq!(cold_calls, 2);
    assert_eq!(warm_calls, 1);
    assert_eq!(roster.pages, 3);
    assert_eq!(roster.members.len(), 30);
    assert_eq!(roster_calls, 4);
}

#[tokio::test]
async fn a_platform_that_does_not_answer_in_time_is_a_platform_timeout() {
    let app = Router::new().fallback(slow);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut platform = lti_core::contract::sample_platform(&base, "client-1", 0);
    platform.auth_token_url = format!("{base}/token");
    let http = ReqwestPlatformHttp::with_config(
        OutboundConfig {
            total_timeout: Duration::from_millis(300),
            ..OutboundConfig::default()
        },
        lti_core::url_policy::UrlPolicy::ALLOW_LOOPBACK,
    )
    .expect("client");
    let tokens = AccessTokens::new(
        Arc::new(http),
        Arc::new(LocalRsaSigner::generate().expect("key")),
        Arc::new(MemoryStore::new()),
        Arc::new(SystemClock),
        Arc::new(SystemRandom),
    );
    let err = tokens
        .token(&platform, &[SCOPE_SCORE], None)
        .await
        .expect_err("timeout");
    assert!(matches!(err, ServiceError::PlatformTimeout), "{err:?}");
}
