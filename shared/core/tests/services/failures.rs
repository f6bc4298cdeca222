//! Every way a platform call fails, each with its stable code; none silent, none a
//! panic, and no token in any error.

use crate::support::{all_scopes, endpoint, registration, tool};
use lti_core::error::{ErrorKind, Problem};
use lti_core::platform::Platform;
use lti_core::services::ags::{LineItem, LineItemFilter, ResultsQuery, ScoreInput, SCOPE_SCORE};
use lti_core::services::nrps::MembersQuery;
use lti_core::services::outbound::{OutboundError, OutboundRequest, OutboundResponse};
use lti_core::services::paging::MAX_PAGES;
use lti_core::services::testing::{answer, bearer, is_token_request, token_answer, FakePlatform};
use lti_core::services::ServiceError;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const TOKEN_URL: &str = "https://lms.example.edu/token";
const LINEITEMS: &str = "https://lms.example.edu/courses/1/lineitems";
const LINEITEM: &str = "https://lms.example.edu/courses/1/lineitems/1";
const ROSTER: &str = "https://lms.example.edu/courses/1/memberships";

type Service =
    dyn Fn(&OutboundRequest, usize) -> Result<OutboundResponse, OutboundError> + Send + Sync;

/// A platform whose token endpoint issues `token-1`, `token-2`… and whose services
/// answer with `service` (given the request and how many service calls came before).
fn platform(
    service: impl Fn(&OutboundRequest, usize) -> Result<OutboundResponse, OutboundError>
        + Send
        + Sync
        + 'static,
) -> FakePlatform {
    let issued = AtomicUsize::new(0);
    let calls = AtomicUsize::new(0);
    let service: Arc<Service> = Arc::new(service);
    FakePlatform::new(move |request| {
        if is_token_request(request) {
            let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
            return token_answer(&format!("token-{n}"));
        }
        service(request, calls.fetch_add(1, Ordering::SeqCst))
    })
}

fn lms() -> Platform {
    registration("https://lms.example.edu", "client", TOKEN_URL, None)
}

fn score() -> ScoreInput {
    ScoreInput {
        user_id: "u1".into(),
        score_given: Some(1.0),
        score_maximum: Some(1.0),
        ..Default::default()
    }
}

async fn post_score(fake: &FakePlatform) -> Result<(), ServiceError> {
    tool(fake)
        .ags
        .post_score(
            &lms(),
            &endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes()),
            LINEITEM,
            score(),
            None,
        )
        .await
        .map(|_| ())
}

async fn roster(fake: &FakePlatform) -> Result<lti_core::services::nrps::Roster, ServiceError> {
    tool(fake)
        .nrps
        .members(&lms(), ROSTER, &MembersQuery::default(), Some("1"), None)
        .await
}

#[tokio::test]
async fn a_platform_500_is_rejected_with_its_status_and_a_short_excerpt_without_the_token() {
    let fake = platform(|request, _| {
        // A platform that echoes the request in its error page.
        let echoed = request.header_value("authorization").unwrap_or_default();
        answer(
            500,
            &[("Content-Type", "text/html")],
            format!(
                "<h1>Internal Server Error</h1>\n<pre>{echoed}</pre>{}",
                "x".repeat(5000)
            ),
        )
    });
    let err = post_score(&fake).await.expect_err("rejected");
    let ServiceError::PlatformRejected { status, excerpt } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*status, 500);
    assert!(
        excerpt.starts_with("<h1>Internal Server Error</h1> <pre>"),
        "{excerpt}"
    );
    assert!(excerpt.len() <= 300, "{}", excerpt.len());
    assert!(!excerpt.contains("token-1"), "{excerpt}");
    assert!(!err.to_string().contains("token-1"));
    assert_eq!(err.code(), "LTI_PLATFORM_REJECTED");
    assert_eq!(err.kind(), ErrorKind::PlatformFailed);
    assert_eq!(fake.service_requests().len(), 1, "a 500 is not retried");
}

#[tokio::test]
async fn a_timeout_is_a_platform_timeout_at_the_service_and_at_the_token_endpoint() {
    let fake = platform(|_, _| Err(OutboundError::Timeout));
    let err = post_score(&fake).await.expect_err("timeout");
    assert!(matches!(err, ServiceError::PlatformTimeout));
    assert_eq!(err.code(), "LTI_PLATFORM_TIMEOUT");
    assert_eq!(err.kind(), ErrorKind::PlatformTimeout);

    let token_timeout = FakePlatform::new(|_| Err(OutboundError::Timeout));
    let err = post_score(&token_timeout).await.expect_err("timeout");
    assert!(matches!(err, ServiceError::PlatformTimeout));
}

#[tokio::test]
async fn a_429_is_rate_limiting_with_its_retry_after() {
    let fake = platform(|_, _| answer(429, &[("retry-after", "30")], "slow down"));
    let err = post_score(&fake).await.expect_err("limited");
    assert!(matches!(
        err,
        ServiceError::PlatformRateLimited {
            retry_after: Some(30)
        }
    ));
    assert_eq!(err.code(), "LTI_PLATFORM_RATE_LIMITED");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(err.retry_after(), Some(30));
    assert_eq!(fake.service_requests().len(), 1);

    let token_limited = FakePlatform::new(|_| answer(429, &[("Retry-After", "7")], ""));
    let err = post_score(&token_limited).await.expect_err("limited");
    assert_eq!(err.retry_after(), Some(7), "the token endpoint's 429 too");
}

#[tokio::test]
async fn a_401_gets_exactly_one_fresh_token_and_one_retry() {
    let fake = platform(|request, call| match (call, bearer(request)) {
        (0, Some("token-1")) => answer(401, &[], r#"{"error":"token expired"}"#),
        (_, Some("token-2")) => answer(200, &[], ""),
        _ => answer(403, &[], "unexpected"),
    });
    let tool = tool(&fake);
    let ep = endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes());
    tool.ags
        .post_score(&lms(), &ep, LINEITEM, score(), None)
        .await
        .expect("the retry succeeded");
    let tokens = fake.token_requests().len();
    let calls: Vec<String> = fake
        .service_requests()
        .iter()
        .map(|r| bearer(r).unwrap_or_default().to_string())
        .collect();
    println!("401 then success: {tokens} token requests, service calls with {calls:?}");
    assert_eq!(tokens, 2);
    assert_eq!(calls, vec!["token-1", "token-2"]);

    // The fresh token replaced the refused one: the next call needs no token request.
    tool.ags
        .post_score(&lms(), &ep, LINEITEM, score(), None)
        .await
        .expect("posted");
    assert_eq!(fake.token_requests().len(), 2);
    assert_eq!(bearer(&fake.service_requests()[2]), Some("token-2"));
}

#[tokio::test]
async fn a_second_401_is_reported_never_retried_again() {
    let fake = platform(|_, _| answer(401, &[], "no"));
    let err = post_score(&fake).await.expect_err("refused");
    assert!(
        matches!(err, ServiceError::PlatformRejected { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(fake.token_requests().len(), 2);
    assert_eq!(fake.service_requests().len(), 2);
}

#[tokio::test]
async fn a_token_endpoint_refusal_carries_the_platform_error() {
    let fake = FakePlatform::new(|_| {
        answer(
            401,
            &[("content-type", "application/json")],
            r#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
        )
    });
    let err = post_score(&fake).await.expect_err("refused");
    assert!(
        matches!(&err, ServiceError::TokenRefused { error, description }
            if error == "invalid_client" && description.as_deref() == Some("Client authentication failed")),
        "{err:?}"
    );
    assert_eq!(err.code(), "LTI_SERVICE_TOKEN_REFUSED");
    assert_eq!(err.kind(), ErrorKind::PlatformFailed);
    assert_eq!(
        err.public_message(),
        "The platform refused an access token: invalid_client (Client authentication failed)."
    );
    assert_eq!(fake.requests().len(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn invalid_json_and_wrong_shapes_are_invalid_answers() {
    let not_json =
        platform(|_, _| answer(200, &[("content-type", "text/html")], "<html>login</html>"));
    let err = roster(&not_json).await.expect_err("invalid");
    assert!(
        matches!(err, ServiceError::PlatformAnswerInvalid(_)),
        "{err:?}"
    );
    assert_eq!(err.code(), "LTI_PLATFORM_ANSWER_INVALID");
    assert_eq!(err.kind(), ErrorKind::PlatformFailed);

    for body in [json!([]), json!({"members": {"a": 1}}), json!("members")] {
        let wrong = platform(move |_, _| answer(200, &[], body.to_string()));
        let err = roster(&wrong).await.expect_err("wrong shape");
        assert!(
            matches!(err, ServiceError::PlatformAnswerInvalid(_)),
            "{err:?}"
        );
    }

    let object_not_list = platform(|_, _| answer(200, &[], r#"{"lineItems":[]}"#));
    let err = tool(&object_not_list)
        .ags
        .line_items(
            &lms(),
            &endpoint(Some(LINEITEMS), None, all_scopes()),
            &LineItemFilter::default(),
            None,
        )
        .await
        .expect_err("wrong shape");
    assert!(
        matches!(err, ServiceError::PlatformAnswerInvalid(_)),
        "{err:?}"
    );

    let token_not_json = FakePlatform::new(|_| answer(200, &[], "access_token=abc"));
    let err = post_score(&token_not_json).await.expect_err("invalid");
    assert!(
        matches!(err, ServiceError::PlatformAnswerInvalid(_)),
        "{err:?}"
    );

    let created_without_id = platform(|_, _| answer(201, &[], r#"{"label":"x"}"#));
    let err = tool(&created_without_id)
        .ags
        .create_line_item(
            &lms(),
            &endpoint(Some(LINEITEMS), None, all_scopes()),
            LineItem {
                label: "x".into(),
                score_maximum: Some(1.0),
                ..Default::default()
            },
            None,
        )
        .await
        .expect_err("no id");
    assert!(
        matches!(err, ServiceError::PlatformAnswerInvalid(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_too_large_answer_is_an_invalid_answer_and_an_unreachable_platform_says_so() {
    let huge = platform(|_, _| Err(OutboundError::TooLarge(1024 * 1024)));
    let err = roster(&huge).await.expect_err("too large");
    assert!(
        matches!(err, ServiceError::PlatformAnswerInvalid(ref m) if m.contains("1024 KiB")),
        "{err:?}"
    );

    let down = platform(|_, _| {
        Err(OutboundError::Unreachable(
            "cannot connect to lms.example.edu".into(),
        ))
    });
    let err = roster(&down).await.expect_err("down");
    assert_eq!(err.code(), "LTI_PLATFORM_UNREACHABLE");
}

fn paged(total: usize, request: &OutboundRequest) -> Result<OutboundResponse, OutboundError> {
    let page: usize = request
        .url
        .rsplit("page=")
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let mut headers = Vec::new();
    let next = format!("<{ROSTER}?page={}>; rel=\"next\"", page + 1);
    if page < total {
        headers.push(("Link", next.as_str()));
    }
    answer(
        200,
        &headers,
        json!({"context": {"id": "1"}, "members": [{"user_id": format!("u{page}"), "roles": []}]})
            .to_string(),
    )
}

#[tokio::test]
async fn fifty_pages_are_read_and_fifty_one_are_a_paging_limit() {
    let fifty = platform(|request, _| paged(MAX_PAGES, request));
    let roster_of_50 = roster(&fifty).await.expect("50 pages");
    assert_eq!(roster_of_50.members.len(), 50);
    assert_eq!(roster_of_50.pages, 50);

    let fifty_one = platform(|request, _| paged(MAX_PAGES + 1, request));
    let err = roster(&fifty_one).await.expect_err("too many pages");
    assert!(matches!(err, ServiceError::PagingLimit(50)), "{err:?}");
    assert_eq!(err.code(), "LTI_PAGING_LIMIT");
    assert_eq!(err.kind(), ErrorKind::PlatformFailed);
    assert_eq!(fifty_one.service_requests().len(), 50);
}

#[tokio::test]
async fn a_repeated_next_url_stops_the_paging() {
    // Page 2 points back to page 1.
    let looping = platform(|request, _| {
        let second = request.url.ends_with("page=2");
        let link = if second {
            format!("<{ROSTER}>; rel=next")
        } else {
            format!("<{ROSTER}?page=2>; rel=next")
        };
        answer(
            200,
            &[("link", link.as_str())],
            json!({"members": [{"user_id": if second { "b" } else { "a" }}]}).to_string(),
        )
    });
    let roster = roster(&looping).await.expect("stops");
    assert_eq!(roster.pages, 2);
    assert_eq!(
        roster
            .members
            .iter()
            .map(|m| m.user_id.as_str())
            .collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    assert_eq!(looping.service_requests().len(), 2);
}

#[tokio::test]
async fn a_redirect_is_a_rejection_and_is_not_followed() {
    let fake = platform(|_, _| answer(302, &[("Location", "https://elsewhere.example.com/")], ""));
    let err = post_score(&fake).await.expect_err("rejected");
    assert!(
        matches!(err, ServiceError::PlatformRejected { status: 302, .. }),
        "{err:?}"
    );
    assert_eq!(fake.service_requests().len(), 1);
}

#[tokio::test]
async fn a_scope_the_claim_does_not_list_is_refused_before_any_request() {
    let fake = platform(|_, _| answer(200, &[], "[]"));
    let tool = tool(&fake);
    let score_only = endpoint(
        Some(LINEITEMS),
        Some(LINEITEM),
        vec![SCOPE_SCORE.to_string()],
    );
    let err = tool
        .ags
        .line_items(&lms(), &score_only, &LineItemFilter::default(), None)
        .await
        .expect_err("not granted");
    assert!(
        matches!(&err, ServiceError::ScopeNotGranted(s) if s.ends_with("lineitem.readonly")),
        "{err:?}"
    );
    assert_eq!(err.code(), "LTI_SCOPE_NOT_GRANTED");
    assert_eq!(err.kind(), ErrorKind::NotAllowed);
    let err = tool
        .ags
        .results(
            &lms(),
            &score_only,
            LINEITEM,
            &ResultsQuery::default(),
            None,
        )
        .await
        .expect_err("not granted");
    assert!(matches!(&err, ServiceError::ScopeNotGranted(s) if s.ends_with("result.readonly")));
    let err = tool
        .ags
        .delete_line_item(&lms(), &score_only, LINEITEM, None)
        .await
        .expect_err("not granted");
    assert!(matches!(&err, ServiceError::ScopeNotGranted(s) if s.ends_with("scope/lineitem")));
    let no_lineitems = endpoint(None, Some(LINEITEM), all_scopes());
    let err = tool
        .ags
        .line_items(&lms(), &no_lineitems, &LineItemFilter::default(), None)
        .await
        .expect_err("no service");
    assert_eq!(err.code(), "LTI_SERVICE_NOT_OFFERED");
    assert!(
        fake.requests().is_empty(),
        "nothing was sent, not even a token request"
    );
}

#[tokio::test]
async fn invalid_input_lists_every_field_and_sends_nothing() {
    let fake = platform(|_, _| answer(200, &[], "{}"));
    let tool = tool(&fake);
    let ep = endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes());
    let err = tool
        .ags
        .post_score(
            &lms(),
            &ep,
            LINEITEM,
            ScoreInput {
                user_id: " ".into(),
                score_given: Some(-1.0),
                timestamp: Some("yesterday".into()),
                activity_progress: Some("Done".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect_err("invalid");
    let fields: Vec<&str> = err
        .fields()
        .expect("fields")
        .iter()
        .map(|f| f.field.as_ref())
        .collect();
    assert_eq!(
        fields,
        vec![
            "userId",
            "scoreGiven",
            "scoreMaximum",
            "timestamp",
            "activityProgress"
        ]
    );
    assert_eq!(err.code(), "LTI_SERVICE_REQUEST_INVALID");
    let err = tool
        .ags
        .create_line_item(
            &lms(),
            &ep,
            LineItem {
                score_maximum: Some(0.0),
                end_date_time: Some("2030-13-01T00:00:00Z".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect_err("invalid");
    let fields: Vec<&str> = err
        .fields()
        .expect("fields")
        .iter()
        .map(|f| f.field.as_ref())
        .collect();
    assert_eq!(fields, vec!["label", "scoreMaximum", "endDateTime"]);
    // A line item URL elsewhere than the course's platform: the token never goes there.
    let err = tool
        .ags
        .line_item(
            &lms(),
            &ep,
            "https://collector.example.com/lineitems/1",
            None,
        )
        .await
        .expect_err("elsewhere");
    assert_eq!(err.fields().expect("fields")[0].field, "url");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn no_platform_answer_makes_the_tool_panic() {
    let bodies: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"null".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
        "[".repeat(100_000).into_bytes(),
        br#"[{"id": 1, "label": null, "scoreMaximum": 1e400}]"#.to_vec(),
        br#"[{"userId": {"a": 1}}, 5, "x", null, {"userId": 1.5}]"#.to_vec(),
        br#"{"members": [{"user_id": ""}, {"user_id": "a", "roles": [1, null, "Learner"], "name": 7}], "context": "c"}"#.to_vec(),
        br#"{"access_token": "t", "expires_in": -50}"#.to_vec(),
        br#"{"access_token": "t", "expires_in": 1e308}"#.to_vec(),
    ];
    for body in bodies {
        for status in [200u16, 201, 204, 301, 400, 401, 404, 429, 500, 503] {
            let body = body.clone();
            let fake = FakePlatform::new(move |_| {
                answer(
                    status,
                    &[("Link", "<::>; rel=next"), ("Retry-After", "x")],
                    body.clone(),
                )
            });
            let tool = tool(&fake);
            let ep = endpoint(Some(LINEITEMS), Some(LINEITEM), all_scopes());
            let _ = tool
                .ags
                .line_items(&lms(), &ep, &LineItemFilter::default(), None)
                .await;
            let _ = tool
                .ags
                .results(&lms(), &ep, LINEITEM, &ResultsQuery::default(), None)
                .await;
            let _ = tool
                .ags
                .post_score(&lms(), &ep, LINEITEM, score(), None)
                .await;
            let _ = tool
                .nrps
                .members(&lms(), ROSTER, &MembersQuery::default(), None, None)
                .await;
        }
    }
}
